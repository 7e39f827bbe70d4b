// The clips analyzer in-process: frames made in memory go through take(),
// checkpoint() and finish() as a consumer drives them, including a restart
// from a checkpoint in the middle of a clip (a new analyzer on the same
// folder, fed again from the first frame whose result had not gone out).

#include <filesystem>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include "analysis/analyzer.hpp"
#include "analysis/result_keys.hpp"
#include "tests/support/frame_compare.hpp"

namespace fs = std::filesystem;
using namespace framehive::analysis;

namespace {

constexpr int width = 160;
constexpr int height = 120;
constexpr double fps = 25;

/// Grey with a white square that moves during the runs only.
std::vector<cv::Mat> make_frames(int total, const std::vector<std::pair<int, int>>& runs) {
  std::vector<cv::Mat> out;
  int moved = 0;
  for (int f = 0; f < total; ++f) {
    for (const auto& [first, last] : runs)
      moved += f >= first && f <= last;
    cv::Mat m(height, width, CV_8UC3, cv::Scalar(96, 96, 96));
    cv::rectangle(m, cv::Rect((moved * 6) % (width - 40), 40, 40, 40), cv::Scalar(255, 255, 255), cv::FILLED);
    out.push_back(m);
  }
  return out;
}

struct fed {
  std::vector<settled_result> results;
};

class ClipsAnalyzer : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fh-clips-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    settings_.clips_padding_s = 0.2;      // 5 frames
    settings_.clips_merge_gap_s = 0.5;    // 12 frames (rounded)
    settings_.clips_min_length_s = 0.3;   // 8 frames (rounded)
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<analyzer> make() {
    std::string why;
    auto a = make_analyzer("clips", settings_, &why);
    EXPECT_TRUE(a) << why;
    video_context ctx;
    ctx.width = width;
    ctx.height = height;
    ctx.fps = fps;
    ctx.output_dir = dir_.string();
    ctx.may_hold = 64;
    a->begin(ctx);
    return a;
  }

  static frame_at at(int f) { return {f, f, 1, static_cast<int32_t>(fps), f / fps}; }

  /// Feeds frames [from, to) with a checkpoint every `batch` results, as the
  /// consumer does before each batch leaves; returns the results that left.
  static void feed(analyzer& a, const std::vector<cv::Mat>& frames, int from, int to, std::size_t batch,
                   std::vector<settled_result>& sent, bool end) {
    std::vector<settled_result> building;
    auto flush = [&] {
      if (building.empty())
        return;
      EXPECT_FALSE(a.checkpoint());
      sent.insert(sent.end(), building.begin(), building.end());
      building.clear();
    };
    for (int f = from; f < to; ++f) {
      a.take(frames[static_cast<std::size_t>(f)], at(f), building);
      if (building.size() >= batch)
        flush();
    }
    if (end) {
      a.finish(building);
      flush();
    }
  }

  static std::vector<std::pair<int64_t, int64_t>> clips_in(const std::vector<settled_result>& results) {
    std::vector<std::pair<int64_t, int64_t>> out;
    for (const auto& r : results)
      if (r.result.contains(keys::clip))
        out.emplace_back(r.result[keys::clip][keys::start_frame].get<int64_t>(),
                         r.result[keys::clip][keys::end_frame].get<int64_t>());
    return out;
  }

  void expect_clip_matches(const std::string& name, const std::vector<cv::Mat>& frames, int64_t start, int64_t end) {
    const auto got = framehive::testing::decode_bgr_frames((dir_ / name).string(), width, height);
    ASSERT_EQ(static_cast<int64_t>(got.size()), end - start + 1) << name;
    for (int64_t i = 0; i < static_cast<int64_t>(got.size()); ++i) {
      const cv::Mat& want = frames[static_cast<std::size_t>(start + i)];
      EXPECT_GE(framehive::testing::psnr(got[static_cast<std::size_t>(i)].data(), want.data, want.total() * 3), 35.0)
          << name << " frame " << i;
    }
  }

  fs::path dir_;
  analyzer_settings settings_;
};

}  // namespace

TEST_F(ClipsAnalyzer, CutsTheActiveRunsWithPaddingAndJoinsADigest) {
  const auto frames = make_frames(300, {{50, 99}, {200, 239}, {280, 282}});
  auto a = make();
  std::vector<settled_result> sent;
  feed(*a, frames, 0, 300, 8, sent, true);
  ASSERT_EQ(sent.size(), 300u);
  for (std::size_t i = 0; i < sent.size(); ++i)
    EXPECT_EQ(sent[i].frame, static_cast<int64_t>(i));
  EXPECT_EQ(clips_in(sent), (std::vector<std::pair<int64_t, int64_t>>{{45, 104}, {195, 244}}));
  EXPECT_EQ(sent.back().result[keys::clips], 2);
  EXPECT_EQ(sent.back().result[keys::digest], "digest.mp4");
  expect_clip_matches("clip_000.mp4", frames, 45, 104);
  expect_clip_matches("clip_001.mp4", frames, 195, 244);
}

TEST_F(ClipsAnalyzer, ActivityIntoTheLastFrameEndsTheClipThere) {
  const auto frames = make_frames(200, {{150, 199}});
  auto a = make();
  std::vector<settled_result> sent;
  feed(*a, frames, 0, 200, 8, sent, true);
  ASSERT_EQ(sent.size(), 200u);
  EXPECT_EQ(clips_in(sent), (std::vector<std::pair<int64_t, int64_t>>{{145, 199}})) << sent.back().result.dump();
  expect_clip_matches("clip_000.mp4", frames, 145, 199);
}

TEST_F(ClipsAnalyzer, ARestartFromACheckpointInTheMiddleOfAClipMakesTheSameClip) {
  const auto frames = make_frames(300, {{50, 149}});
  for (int kill_at : {70, 77, 100, 151, 154}) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::vector<settled_result> sent;
    {
      auto first = make();
      // Frames up to kill_at were taken; what left is what was checkpointed.
      feed(*first, frames, 0, kill_at, 8, sent, false);
    }  // killed: no finish, no last checkpoint
    ASSERT_FALSE(sent.empty());
    const int resume = static_cast<int>(sent.back().frame) + 1;
    auto second = make();
    feed(*second, frames, resume, 300, 8, sent, true);
    ASSERT_EQ(sent.size(), 300u) << "kill at " << kill_at;
    for (std::size_t i = 0; i < sent.size(); ++i)
      ASSERT_EQ(sent[i].frame, static_cast<int64_t>(i)) << "kill at " << kill_at;
    EXPECT_EQ(clips_in(sent), (std::vector<std::pair<int64_t, int64_t>>{{45, 154}})) << "kill at " << kill_at;
    expect_clip_matches("clip_000.mp4", frames, 45, 154);
  }
}
