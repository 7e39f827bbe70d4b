#include "analysis/analyzer.hpp"

#include <stdlib.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "analysis/result_keys.hpp"

namespace framehive::analysis {
namespace {

namespace fs = std::filesystem;

/// A small frame with some structure (not one flat colour).
cv::Mat test_frame(int width = 160, int height = 120) {
  cv::Mat m(height, width, CV_8UC3);
  cv::randu(m, cv::Scalar::all(0), cv::Scalar::all(255));
  return m;
}

/// A directory below /tmp, removed with its files.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "analyzers_test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) ? tmpl : std::string();
  }
  ~temp_dir() {
    std::error_code ec;
    if (!path_.empty())
      fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(Analyzers, EveryKindOfTheCatalogHasAFactory) {
  for (const auto& e : analyzer_table()) {
    const std::string kind(e.kind);
    auto an = make_analyzer(kind);
    ASSERT_NE(an, nullptr) << kind;
    EXPECT_EQ(an->name(), kind);
    auto labelled = make_analyzer(kind + ".b-2");
    ASSERT_NE(labelled, nullptr) << kind;
    EXPECT_EQ(labelled->name(), kind);
  }
}

TEST(Analyzers, InvalidNamesMakeNothing) {
  for (const std::string name : {"", "nope", "stats.", "stats.a b", "Stats"})
    EXPECT_EQ(make_analyzer(name), nullptr) << name;
}

TEST(Analyzers, EachWritesTheKeysItsSummaryReads) {
  const auto frame = test_frame();
  auto process = [&](const std::string& kind) {
    auto an = make_analyzer(kind);
    an->begin({frame.cols, frame.rows, 25.0, ""});
    return an->process(frame, 0, 0.0);
  };
  const auto stats = process("stats");
  EXPECT_TRUE(stats[keys::brightness].is_number());
  EXPECT_GT(stats[keys::sharpness].get<double>(), 0);
  const auto people = process("people");
  EXPECT_TRUE(people[keys::count].is_number());
  EXPECT_TRUE(people[keys::boxes].is_array());
  const auto motion = process("motion");
  EXPECT_GE(motion[keys::fg].get<double>(), 0);
  EXPECT_LE(motion[keys::fg].get<double>(), 1);
  EXPECT_TRUE(process("touch")[keys::sum].is_number());
  EXPECT_TRUE(process("thumbnails").is_object());  // no output folder: nothing written
}

TEST(Analyzers, ThumbnailsFollowTheirPeriodSetting) {
  temp_dir dir;
  ASSERT_FALSE(dir.path().empty());
  const auto frame = test_frame();
  auto written = [&](double every_s, int64_t index) {
    analyzer_settings settings;
    settings.thumbnail_every_s = every_s;
    auto an = make_analyzer("thumbnails", settings);
    an->begin({frame.cols, frame.rows, 10.0, dir.path()});
    const auto r = an->process(frame, index, static_cast<double>(index) / 10.0);
    return r.contains(keys::path) && fs::exists(r[keys::path].get<std::string>());
  };
  EXPECT_TRUE(written(1.0, 0));
  EXPECT_TRUE(written(1.0, 10));   // t = 1.0 s starts a 1 s period ...
  EXPECT_FALSE(written(2.0, 10));  // ... but not a 2 s one
  EXPECT_FALSE(written(1.0, 5));
}

}  // namespace
}  // namespace framehive::analysis
