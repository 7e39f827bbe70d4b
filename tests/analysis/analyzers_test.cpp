#include "analysis/analyzer.hpp"

#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

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
  const auto detect = process("detect");
  EXPECT_TRUE(detect["person"].is_number());
  EXPECT_TRUE(detect["face"].is_number());
  EXPECT_TRUE(detect[keys::boxes].is_array());
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

// -- detect ------------------------------------------------------------------------------

const std::string vtest = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";

/// `count` frames of vtest.avi spread evenly over its 795, read by OpenCV itself.
std::vector<cv::Mat> vtest_sample(int count) {
  cv::VideoCapture cap(vtest);
  const auto total = static_cast<int64_t>(cap.get(cv::CAP_PROP_FRAME_COUNT));
  std::vector<cv::Mat> out;
  int64_t index = 0;
  for (cv::Mat f; static_cast<int>(out.size()) < count && cap.read(f); ++index)
    if (index == total * static_cast<int64_t>(out.size()) / count)
      out.push_back(f.clone());
  return out;
}

std::unique_ptr<analyzer> make_detect(const std::vector<std::string>& classes, std::string* why = nullptr) {
  analyzer_settings settings;
  settings.detect_classes = classes;
  return make_analyzer("detect", settings, why);
}

std::vector<std::string> keys_of(const nlohmann::json& r) {
  std::vector<std::string> out;
  for (const auto& [k, v] : r.items())
    out.push_back(k);
  return out;
}

TEST(Detect, FindsAPersonInMostFramesOfVtestWithTheDefaultClasses) {
  const auto frames = vtest_sample(40);
  ASSERT_EQ(frames.size(), 40u) << vtest;
  auto an = make_analyzer("detect");
  ASSERT_NE(an, nullptr);
  an->begin({frames[0].cols, frames[0].rows, 10.0, ""});
  int with_person = 0;
  double ms = 0;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = an->process(frames[i], static_cast<int64_t>(i), 0.0);
    ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(keys_of(r), (std::vector<std::string>{"boxes", "face", "person"}));
    const auto people = r["person"].get<int>();
    with_person += people > 0;
    int person_boxes = 0;
    for (const auto& b : r[keys::boxes]) {
      const std::string cls = b[keys::box_class];
      EXPECT_TRUE(cls == "person" || cls == "face") << cls;
      person_boxes += cls == "person";
      // In source pixels: inside the 768x576 frame, at least the HOG window.
      EXPECT_GE(b[keys::box_x].get<int>() + b[keys::box_w].get<int>(), 0);
      EXPECT_LE(b[keys::box_x].get<int>(), frames[i].cols);
      if (cls == "person") {
        EXPECT_GE(b[keys::box_h].get<int>(), 128);
      }
    }
    EXPECT_EQ(person_boxes, people);
  }
  std::printf("detect (person, face) on vtest.avi 768x576: %.1f ms per frame, person in %d of %zu frames\n",
              ms / static_cast<double>(frames.size()), with_person, frames.size());
  EXPECT_GE(with_person, 24);  // 60%
}

TEST(Detect, LooksOnlyForTheChosenClasses) {
  const auto frame = vtest_sample(4)[1];
  for (const auto& chosen : std::vector<std::vector<std::string>>{
           {"face"}, {"cat_face", "licence_plate"}, {"upper_body", "person"}}) {
    std::string why;
    auto an = make_detect(chosen, &why);
    ASSERT_NE(an, nullptr) << why;
    an->begin({frame.cols, frame.rows, 10.0, ""});
    const auto r = an->process(frame, 0, 0.0);
    for (const auto& c : chosen)
      EXPECT_TRUE(r[c].is_number()) << c;
    EXPECT_EQ(r.size(), chosen.size() + 1) << r.dump();  // the counts and "boxes"
    for (const auto& b : r[keys::boxes])
      EXPECT_NE(std::find(chosen.begin(), chosen.end(), b[keys::box_class].get<std::string>()), chosen.end());
  }
  // The person class is people's detector: the same boxes on the same frame.
  auto people = make_analyzer("people");
  auto detect = make_detect({"person"});
  const auto p = people->process(frame, 0, 0.0);
  const auto d = detect->process(frame, 0, 0.0);
  ASSERT_EQ(p[keys::count], d["person"]);
  for (std::size_t i = 0; i < d[keys::boxes].size(); ++i)
    EXPECT_EQ(p[keys::boxes][i][0], d[keys::boxes][i][keys::box_x]);
}

TEST(Detect, AnUnknownClassIsRefusedNamingIt) {
  std::string why;
  EXPECT_EQ(make_detect({"person", "unicorn"}, &why), nullptr);
  EXPECT_NE(why.find("'unicorn'"), std::string::npos) << why;
  EXPECT_EQ(make_analyzer("nope", {}, &why), nullptr);
  EXPECT_EQ(why, "unknown analyzer 'nope'");
}

TEST(Detect, AMissingOrBrokenCascadeFileIsNamedNotThrown) {
  temp_dir dir;
  ASSERT_FALSE(dir.path().empty());
  analyzer_settings settings;
  settings.detect_classes = {"person", "face"};
  settings.detect_model_dir = dir.path();
  const std::string file = dir.path() + "/lbpcascades/lbpcascade_frontalface_improved.xml";
  std::string why;
  EXPECT_EQ(make_analyzer("detect", settings, &why), nullptr);
  EXPECT_NE(why.find(file), std::string::npos) << why;
  EXPECT_NE(why.find("missing"), std::string::npos) << why;

  // A truncated copy of the real file: OpenCV's parser throws, make_analyzer does not.
  fs::create_directories(dir.path() + "/lbpcascades");
  {
    std::ifstream in(std::string(default_detect_model_dir) + "/lbpcascades/lbpcascade_frontalface_improved.xml");
    std::string head(2000, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    std::ofstream(file) << head.substr(0, static_cast<std::size_t>(in.gcount()));
  }
  why.clear();
  std::unique_ptr<analyzer> an;
  ASSERT_NO_THROW(an = make_analyzer("detect", settings, &why));
  EXPECT_EQ(an, nullptr);
  EXPECT_NE(why.find(file), std::string::npos) << why;
}

TEST(Detect, FramesSmallerThanEveryModelsWindowGiveZeros) {
  auto an = make_detect({"person", "face", "upper_body", "cat_face", "licence_plate"});
  ASSERT_NE(an, nullptr);
  for (const auto& size : {cv::Size(32, 32), cv::Size(63, 200), cv::Size(200, 127), cv::Size(1, 1)}) {
    const auto frame = test_frame(size.width, size.height);
    an->begin({frame.cols, frame.rows, 25.0, ""});
    nlohmann::json r;
    ASSERT_NO_THROW(r = an->process(frame, 0, 0.0)) << size;
    for (const char* c : {"person", "face", "upper_body", "cat_face", "licence_plate"})
      EXPECT_EQ(r[c], 0) << c << " at " << size;
    EXPECT_EQ(r[keys::boxes], nlohmann::json::array()) << size;
  }
}

TEST(Detect, BoxesOfAScaledDownFrameAreInSourcePixels) {
  // vtest at twice its size, scaled back down to 768 wide: the same pixels, so
  // the same people at exactly twice the coordinates.
  const auto frame = vtest_sample(4)[2];
  cv::Mat big;
  cv::resize(frame, big, cv::Size(), 2, 2, cv::INTER_NEAREST);
  analyzer_settings settings;
  settings.detect_classes = {"person"};
  settings.detect_max_width = static_cast<uint32_t>(frame.cols);
  const auto small = make_analyzer("detect", settings)->process(frame, 0, 0.0);
  const auto large = make_analyzer("detect", settings)->process(big, 0, 0.0);
  ASSERT_GT(small["person"].get<int>(), 0);
  ASSERT_EQ(small[keys::boxes].size(), large[keys::boxes].size());
  for (std::size_t i = 0; i < small[keys::boxes].size(); ++i)
    for (const char* k : {keys::box_x, keys::box_y, keys::box_w, keys::box_h})
      EXPECT_EQ(large[keys::boxes][i][k].get<int>(), 2 * small[keys::boxes][i][k].get<int>()) << k;
}

}  // namespace
}  // namespace framehive::analysis
