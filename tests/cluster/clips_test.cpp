// Clips and the digest (issue 13 items 1-3 and 7), with real processes: a
// generated video whose activity is known frame by frame goes through
// `motion,clips`; the clips it yields are exactly the expected ranges, and
// every frame of every clip matches the source frame at the same index in an
// independent decode (PSNR >= 35 dB), also when the worker running the clips
// consumer is killed in the middle of a clip.

#include <csignal>

#include "tests/cluster/cluster_fixture.hpp"
#include "tests/support/frame_compare.hpp"

using namespace framehive::testing;
using nlohmann::json;

namespace {

constexpr int fps = 25;
constexpr int width = 320;
constexpr int height = 240;
constexpr double min_psnr_db = 35.0;

/// 0.2 s of padding (5 frames), runs 0.5 s apart (12 frames) merge,
/// segments shorter than 0.3 s (8 frames) are no clip.
const std::vector<std::string> clip_rules{"--analyzers.clips-padding-s=0.2", "--analyzers.clips-merge-gap-s=0.5",
                                          "--analyzers.clips-min-length-s=0.3"};

struct expected_clip {
  int64_t start = 0;
  int64_t end = 0;
};

class Clips : public cluster {
 protected:
  /// A grey frame with a white 80x80 square that moves (8 px a frame, enough
  /// to change 1% of the pixels) only during the given runs of frames and
  /// stands still otherwise: frame f is active iff it is in a run.
  std::string make_activity_clip(const std::string& name, int frames,
                                 const std::vector<std::pair<int, int>>& runs) {
    // The square's x moves by 8 px on each frame of a run: x = 8 * (run
    // frames so far) mod 240, so it stands still between runs. overlay's n
    // is frame index + 1 here (measured on the decoded output), hence n - first.
    std::string moved = "0";
    for (const auto& [first, last] : runs)
      moved += "+clip(n-" + std::to_string(first) + "\\,0\\," + std::to_string(last - first + 1) + ")";
    const auto path = (dir_ / name).string();
    const auto r = run_command(
        "ffmpeg -v error -y -nostdin -f lavfi -i color=c=0x606060:s=" + std::to_string(width) + "x" +
        std::to_string(height) + ":r=" + std::to_string(fps) + " -f lavfi -i color=c=white:s=80x80:r=" +
        std::to_string(fps) + " -filter_complex \"[0][1]overlay=x='mod(8*(" + moved + ")\\,240)':y=80\" -frames:v " +
        std::to_string(frames) + " -c:v libx264 -preset ultrafast -g 50 -pix_fmt yuv420p '" + path + "' 2>&1");
    EXPECT_EQ(r.code, 0) << r.out;
    return path;
  }

  json clips_summary(uint64_t job) {
    const auto r = cli_json("results " + std::to_string(job) + " --json");
    return r["videos"][0]["analyzers"]["clips"]["summary"];
  }

  /// Fetches the job's artifacts; the folder of its only video's clips.
  std::filesystem::path fetch_clips(uint64_t job) {
    const auto out = dir_ / ("fetched-" + std::to_string(job));
    const auto r = cli("fetch " + std::to_string(job) + " --out '" + out.string() + "'");
    EXPECT_EQ(r.code, 0) << cli_stderr();
    for (const auto& v : std::filesystem::directory_iterator(out))
      return v.path() / "clips";
    return {};
  }

  /// The summary lists exactly `expected`, and each artifact holds exactly
  /// its source frames: count, timestamps and pixels; the digest is all of them in order.
  void expect_exact_clips(uint64_t job, const std::string& source, const std::vector<expected_clip>& expected) {
    const json s = clips_summary(job);
    ASSERT_EQ(s["clips"].size(), expected.size()) << s.dump();
    const auto folder = fetch_clips(job);
    const auto source_frames = decode_bgr_frames(source, width, height);
    ASSERT_GT(source_frames.size(), 0u);
    std::vector<std::vector<uint8_t>> all;
    for (std::size_t k = 0; k < expected.size(); ++k) {
      const auto& c = s["clips"][k];
      EXPECT_EQ(c["start_frame"].get<int64_t>(), expected[k].start) << c.dump();
      EXPECT_EQ(c["end_frame"].get<int64_t>(), expected[k].end) << c.dump();
      EXPECT_NEAR(c["start_s"].get<double>(), static_cast<double>(expected[k].start) / fps, 1e-6);
      EXPECT_NEAR(c["end_s"].get<double>(), static_cast<double>(expected[k].end) / fps, 1e-6);
      const auto file = folder / c["artifact"].get<std::string>();
      ASSERT_TRUE(std::filesystem::exists(file)) << file;
      const int64_t n = expected[k].end - expected[k].start + 1;
      EXPECT_EQ(ffprobe_frame_count(file.string()), n) << file;
      // The clip's timestamps are the source's.
      const auto pts = ffprobe_pts(file.string());
      ASSERT_FALSE(pts.empty());
      const auto source_pts = ffprobe_pts(source);
      EXPECT_EQ(pts.front(), source_pts.at(static_cast<std::size_t>(expected[k].start))) << file;
      const auto frames = decode_bgr_frames(file.string(), width, height);
      ASSERT_EQ(static_cast<int64_t>(frames.size()), n) << file;
      for (int64_t i = 0; i < n; ++i) {
        const auto& want = source_frames.at(static_cast<std::size_t>(expected[k].start + i));
        const double db = psnr(frames[static_cast<std::size_t>(i)], want);
        EXPECT_GE(db, min_psnr_db) << file << " frame " << i << " (source frame " << expected[k].start + i << ")";
        // Closer to its own source frame than to the neighbours: not shifted by one.
        if (expected[k].start + i + 1 < static_cast<int64_t>(source_frames.size()) &&
            source_frames[static_cast<std::size_t>(expected[k].start + i + 1)] != want) {
          EXPECT_GT(db, psnr(frames[static_cast<std::size_t>(i)],
                             source_frames[static_cast<std::size_t>(expected[k].start + i + 1)]))
              << file << " frame " << i;
        }
      }
      all.insert(all.end(), frames.begin(), frames.end());
    }
    ASSERT_TRUE(s["digest"].is_string()) << s.dump();
    const auto digest = decode_bgr_frames((folder / s["digest"].get<std::string>()).string(), width, height);
    ASSERT_EQ(digest.size(), all.size());
    for (std::size_t i = 0; i < all.size(); ++i)
      EXPECT_GE(psnr(digest[i], all[i]), min_psnr_db) << "digest frame " << i;
  }

  /// Every frame's clips result stored exactly once.
  void expect_every_frame_once(uint64_t job, int64_t total) {
    const auto r = cli_json("results " + std::to_string(job) + " --json --frames");
    const auto& frames = r["videos"][0]["analyzers"]["clips"]["frames"];
    ASSERT_EQ(static_cast<int64_t>(frames.size()), total);
    for (int64_t i = 0; i < total; ++i)
      EXPECT_EQ(frames[static_cast<std::size_t>(i)]["frame"].get<int64_t>(), i);
  }
};

// Runs 100-199 and 400-449 are clips (with 5 frames of padding); 600-602 is too short.
const std::vector<std::pair<int, int>> runs{{100, 199}, {400, 449}, {600, 602}};
const std::vector<expected_clip> expected{{95, 204}, {395, 454}};
constexpr int total_frames = 700;

}  // namespace

TEST_F(Clips, MotionAndClipsCutTheKnownSegmentsIntoFrameExactClipsAndADigest) {
  start_cluster({"n1"}, clip_rules);
  const auto source = make_activity_clip("match.mp4", total_frames, runs);
  const auto job = submit(source + " --analyzers motion,clips");
  ASSERT_EQ(wait_job(job), "done");
  const json s = clips_summary(job);
  EXPECT_EQ(s["frames_seen"].get<int64_t>(), total_frames);
  EXPECT_EQ(s["clips"].size(), 2u) << s.dump();
  EXPECT_EQ(s["active_frames"].get<int64_t>(), 100 + 50 + 3) << s.dump();
  expect_exact_clips(job, source, expected);
  expect_every_frame_once(job, total_frames);
  // The same decode fed motion: its results are there too.
  const auto r = cli_json("results " + std::to_string(job) + " --json");
  EXPECT_EQ(r["videos"][0]["analyzers"]["motion"]["frames_processed"].get<int64_t>(), total_frames);
  EXPECT_EQ(r["videos"][0]["frames_decoded"].get<int64_t>(), total_frames) << "one decode";
  // The node keeps nothing of it: artifacts went to the coordinator, working files are gone.
  EXPECT_TRUE(wait_until([&] { return !std::filesystem::exists(dir_ / "out-n1" / ("job-" + std::to_string(job))); },
                         std::chrono::seconds(10)))
      << "node output left behind";
}

TEST_F(Clips, AWorkerKilledInTheMiddleOfAClipLeavesItCompleteAndExact) {
  // Held at frame 150 until the kill: it lands inside the first clip (frames 95-204).
  auto flags = clip_rules;
  flags.push_back(hold_at(150));
  start_cluster({"n1"}, flags);
  const auto source = make_activity_clip("match.mp4", total_frames, runs);
  const auto job = submit(source + " --analyzers motion,clips");
  uint32_t victim = 0;
  int64_t at = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        auto t = cli_json("tree --json");
        for (const auto& e : t["entries"])
          if (e["kind"] == "consumer" && e["name"].get<std::string>().find("clips") != std::string::npos && e["state"] == "running" &&
              e["position"].get<int64_t>() >= 130) {
            victim = e["pid"];
            at = e["position"];
          }
        return victim != 0;
      },
      std::chrono::seconds(60)));
  ASSERT_LT(at, 195) << "the kill must land inside the first clip";
  ASSERT_EQ(::kill(static_cast<pid_t>(victim), SIGKILL), 0);
  release();
  ASSERT_EQ(wait_job(job), "done");
  const auto log = run_command("cat '" + (dir_ / "n1.log").string() + "'").out;
  EXPECT_NE(log.find("died"), std::string::npos) << "the worker was not restarted";
  expect_exact_clips(job, source, expected);
  expect_every_frame_once(job, total_frames);
}

TEST_F(Clips, NoActivityGivesNoClipsAndActivityIntoTheLastFrameEndsThere) {
  start_cluster({"n1"}, clip_rules);
  const auto still = make_activity_clip("still.mp4", 150, {});
  const auto job = submit(still + " --analyzers clips");
  ASSERT_EQ(wait_job(job), "done");
  const json s = clips_summary(job);
  EXPECT_TRUE(s["clips"].empty()) << s.dump();
  EXPECT_TRUE(s["digest"].is_null()) << s.dump();
  EXPECT_EQ(s["note"], "no activity: no clips, no digest");
  EXPECT_EQ(cli("fetch " + std::to_string(job) + " --out '" + (dir_ / "none").string() + "'").code, 7)
      << "no artifacts at all: " << cli_stderr();

  const auto tail = make_activity_clip("tail.mp4", 200, {{150, 199}});
  const auto job2 = submit(tail + " --analyzers clips");
  ASSERT_EQ(wait_job(job2), "done");
  expect_exact_clips(job2, tail, {{145, 199}});
}

TEST_F(Clips, ClipsTakeEveryFrameAndAFailureStopsOnlyTheClips) {
  auto flags = clip_rules;
  flags.push_back("--supervision.faults=clips:throw@120");
  start_cluster({"n1"}, flags);
  const auto source = make_activity_clip("match.mp4", 300, {{100, 199}});
  EXPECT_EQ(cli("submit --node-visible " + source + " --analyzers clips/2").code, 2);
  EXPECT_NE(cli_stderr().find("clips takes every frame"), std::string::npos) << cli_stderr();
  const auto job = submit(source + " --analyzers stats,clips");
  ASSERT_EQ(wait_job(job), "done");
  const auto r = cli_json("results " + std::to_string(job) + " --json");
  const auto& a = r["videos"][0]["analyzers"];
  EXPECT_EQ(a["stats"]["frames_processed"].get<int64_t>(), 300);
  const auto& clips = a["clips"]["summary"];
  ASSERT_TRUE(clips["error"].is_string()) << a.dump();
  EXPECT_NE(clips["error"].get<std::string>().find("clips at frame 120"), std::string::npos) << a.dump();
  EXPECT_TRUE(clips["clips"].empty()) << a.dump();
}

TEST_F(Clips, PaddingLongerThanABatchSettlesInSeveralBatchesAndStaysExact) {
  // 2 s of padding at 25 fps: a clip closing settles 50+ frames at once,
  // more than a result batch may hold (the node refuses batches above 4 x
  // its batch size): they must leave as several batches.
  start_cluster({"n1"}, {"--analyzers.clips-padding-s=2", "--analyzers.clips-merge-gap-s=0.5",
                         "--analyzers.clips-min-length-s=0.3"});
  const auto source = make_activity_clip("long-pad.mp4", 300, {{100, 149}});
  const auto job = submit(source + " --analyzers clips");
  ASSERT_EQ(wait_job(job, std::chrono::seconds(60)), "done");
  expect_exact_clips(job, source, {{50, 199}});
  expect_every_frame_once(job, 300);
  const auto log = run_command("cat '" + (dir_ / "n1.log").string() + "'").out;
  EXPECT_EQ(log.find("rejected a clips result batch"), std::string::npos) << "a batch too big for the node";
}
