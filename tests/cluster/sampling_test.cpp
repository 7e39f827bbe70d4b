// Sampling per analysis in one decode (issue 13 item 6), with real processes:
// each analyzer gets exactly the frames its sampling takes (every K-th, or N
// per second of video time), the video is decoded once for all of them, and a
// worker killed in the middle changes nothing.

#include <csignal>
#include <map>

#include "tests/cluster/cluster_fixture.hpp"

using namespace framehive::testing;
using nlohmann::json;

namespace {

class Cluster : public cluster {
 protected:
  /// The analyzers under test, on a 25 fps clip.
  static constexpr const char* analyzers = "stats,stats.fast/5,touch@5fps,touch.slow@2fps";
  static constexpr int fps = 25;

  /// The frame indexes an analyzer stored, in order.
  static std::vector<int64_t> frames_of(const json& analyzer) {
    std::vector<int64_t> out;
    for (const auto& f : analyzer["frames"])
      out.push_back(f["frame"].get<int64_t>());
    return out;
  }

  /// Every frame < total whose index is a multiple of k.
  static std::vector<int64_t> every(int64_t k, int64_t total) {
    std::vector<int64_t> out;
    for (int64_t f = 0; f < total; f += k)
      out.push_back(f);
    return out;
  }

  /// N per second of a constant-rate clip: the first frame at or after each
  /// k/N seconds, frame f being at f/fps: f = ceil(k * fps / N).
  static std::vector<int64_t> per_second(int64_t n, int64_t total) {
    std::vector<int64_t> out;
    for (int64_t k = 0;; ++k) {
      const int64_t f = (k * fps + n - 1) / n;
      if (f >= total)
        return out;
      out.push_back(f);
    }
  }

  /// The frame sets and summaries a clean or a disturbed run must give.
  static void expect_sampled(const json& v, int64_t total) {
    const auto& a = v["analyzers"];
    ASSERT_EQ(a.size(), 4u) << a.dump();
    EXPECT_EQ(frames_of(a["stats"]), every(1, total));
    EXPECT_EQ(frames_of(a["stats.fast"]), every(5, total));
    EXPECT_EQ(frames_of(a["touch"]), per_second(5, total));
    EXPECT_EQ(frames_of(a["touch.slow"]), per_second(2, total));
    EXPECT_EQ(a["stats"]["frames_seen"].get<int64_t>(), total);
    EXPECT_EQ(a["stats"]["sampling"], "every frame");
    EXPECT_EQ(a["stats.fast"]["frames_seen"].get<std::size_t>(), every(5, total).size());
    EXPECT_EQ(a["stats.fast"]["sampling"], "every 5th frame");
    EXPECT_EQ(a["touch.slow"]["frames_seen"].get<std::size_t>(), per_second(2, total).size());
    EXPECT_EQ(a["touch.slow"]["frames_processed"].get<std::size_t>(), per_second(2, total).size());
    EXPECT_EQ(a["touch.slow"]["sampling"], "2 fps");
  }

  /// A variable-rate clip (Matroska: pts in ms): frames 40 ms apart in
  /// threes, then a 160 ms gap (0, 40, 80, 200, 240, 280, 400, ...), so a
  /// bucket of video time holds 0 to 3 frames.
  std::string make_vfr_clip(const std::string& name, int frames) {
    const auto path = (dir_ / name).string();
    auto r = run_command("ffmpeg -v error -y -nostdin -f lavfi -i testsrc2=size=640x360:rate=25 -frames:v " +
                         std::to_string(frames) + " -vf \"settb=1/1000,setpts='N*40+floor(N/3)*80'\" " +
                         "-fps_mode passthrough " +
                         "-c:v libx264 -preset ultrafast -g 25 -pix_fmt yuv420p '" + path + "' 2>&1");
    EXPECT_EQ(r.code, 0) << r.out;
    return path;
  }

  /// Every analyzer's frame indexes in one job.
  std::map<std::string, std::vector<int64_t>> frame_sets(uint64_t job) {
    const auto r = cli_json("results " + std::to_string(job) + " --json --frames");
    std::map<std::string, std::vector<int64_t>> out;
    for (const auto& [name, a] : r["videos"][0]["analyzers"].items())
      out[name] = frames_of(a);
    return out;
  }
};

}  // namespace

TEST_F(Cluster, EachAnalyzerGetsExactlyTheFramesItsSamplingTakesFromOneDecode) {
  start_cluster({"n1"});
  const auto clip = make_clip("clip.mp4", 6, fps);
  const int64_t total = ffprobe_frame_count(clip);
  ASSERT_EQ(total, 6 * fps);
  const auto job = submit(clip + " --analyzers " + analyzers);
  ASSERT_EQ(wait_job(job), "done");
  const auto r = cli_json("results " + std::to_string(job) + " --json --frames");
  const auto& v = r["videos"][0];
  EXPECT_EQ(v["frames_total"].get<int64_t>(), total);
  EXPECT_EQ(v["frames_decoded"].get<int64_t>(), total) << "one decode for the four analyzers";
  expect_sampled(v, total);
  // Stats on the frames both instances took are the same numbers.
  std::map<int64_t, double> all;
  for (const auto& f : v["analyzers"]["stats"]["frames"])
    all[f["frame"]] = f["brightness"];
  for (const auto& f : v["analyzers"]["stats.fast"]["frames"])
    EXPECT_EQ(f["brightness"].get<double>(), all.at(f["frame"])) << f.dump();
}

TEST_F(Cluster, SamplingAloneSkipsFramesAndStrideIsSugarForSlashK) {
  start_cluster({"n1"});
  const auto clip = make_clip("clip.mp4", 4, fps);
  const int64_t total = ffprobe_frame_count(clip);
  // --stride 10 applies to the analyzer without sampling of its own only.
  const auto job = submit(clip + " --analyzers stats,touch@5fps --stride 10");
  ASSERT_EQ(wait_job(job), "done");
  const auto r = cli_json("results " + std::to_string(job) + " --json --frames");
  const auto& a = r["videos"][0]["analyzers"];
  EXPECT_EQ(frames_of(a["stats"]), every(10, total));
  EXPECT_EQ(a["stats"]["sampling"], "every 10th frame");
  EXPECT_EQ(frames_of(a["touch"]), per_second(5, total));
}

TEST_F(Cluster, SamplingMistakesAreUsageErrorsNamingTheText) {
  start_cluster({"n1"});
  const auto clip = make_clip("c.mp4", 1, 10);
  auto expect_usage_error = [&](const std::string& spec, const std::string& says) {
    EXPECT_EQ(cli("submit " + clip + " --analyzers " + spec).code, 2) << spec;
    EXPECT_NE(cli_stderr().find(says), std::string::npos) << spec << ": " << cli_stderr();
  };
  expect_usage_error("people@0fps", "the rate must be more than 0 fps");
  expect_usage_error("stats/0", "/K takes every K-th frame");
  expect_usage_error("stats@5", "ends in fps");
  expect_usage_error("colour/2", "unknown analyzer 'colour/2'");
  expect_usage_error("stats,stats/10", "give one a label");
  EXPECT_NE(cli("submit --help").out.find("@Nfps"), std::string::npos);
}

TEST_F(Cluster, KilledWorkerMidVideoLeavesEverySampledFrameSetExact) {
  // Held at frame 150 until the kill, so it lands while the decoder runs.
  start_cluster({"n1"}, {hold_at(150)});
  const auto clip = make_clip("long.mp4", 12, fps, "640x360");
  const int64_t total = ffprobe_frame_count(clip);
  const auto job = submit(clip + " --analyzers " + analyzers);
  uint32_t victim = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        auto t = cli_json("tree --json");
        for (const auto& e : t["entries"])
          if (e["kind"] == "decoder" && e["position"].get<int64_t>() > 80 && e["state"] == "running")
            victim = e["pid"];
        return victim != 0;
      },
      std::chrono::seconds(30)));
  ASSERT_EQ(::kill(static_cast<pid_t>(victim), SIGKILL), 0);
  release();
  ASSERT_EQ(wait_job(job), "done");
  const auto r = cli_json("results " + std::to_string(job) + " --json --frames");
  const auto& v = r["videos"][0];
  EXPECT_EQ(v["frames_total"].get<int64_t>(), total);
  expect_sampled(v, total);
}

TEST_F(Cluster, KilledNodeResumesElsewhereWithTheSameSampledFramesOnAVariableRateClip) {
  start_cluster({"n1", "n2"}, {hold_at(300)});  // the second run waits mid-video until released
  const auto clip = make_vfr_clip("vfr.mkv", 600);
  const std::string sampled = "stats,stats.fast/5,touch@5fps,touch.slow@2fps";
  release();
  const auto clean_job = submit(clip + " --analyzers " + sampled);
  ASSERT_EQ(wait_job(clean_job), "done");
  hold_again();
  const auto clean = frame_sets(clean_job);
  ASSERT_EQ(clean.at("stats").size(), 600u);
  // The rule, from the stored timestamps (ms): the first frame of each 1/N s.
  const auto r = cli_json("results " + std::to_string(clean_job) + " --json --frames");
  std::vector<int64_t> pts;
  for (const auto& f : r["videos"][0]["analyzers"]["stats"]["frames"])
    pts.push_back(f["pts"].get<int64_t>());
  for (const auto& [name, n] : std::map<std::string, int64_t>{{"touch", 5}, {"touch.slow", 2}}) {
    std::vector<int64_t> expected{0};
    for (std::size_t f = 1; f < pts.size(); ++f)
      if (pts[f] * n / 1000 > pts[f - 1] * n / 1000)
        expected.push_back(static_cast<int64_t>(f));
    EXPECT_EQ(clean.at(name), expected) << name;
    EXPECT_NE(expected, every(25 / n, 600)) << name << ": by time, not by index";
  }
  EXPECT_EQ(clean.at("stats.fast"), every(5, 600));

  // Again, with the node running it killed mid-video: it resumes on the other
  // node from the lowest watermark, its decoder started in the middle.
  const auto job = submit(clip + " --analyzers " + sampled);
  std::string victim;
  ASSERT_TRUE(wait_until(
      [&] {
        const json st = cli_json("status " + std::to_string(job) + " --json");
        for (const auto& v : st["videos"])
          if (v["state"] == "running" && v["position"].get<int64_t>() > 150)
            victim = v["node"];
        return !victim.empty();
      },
      std::chrono::seconds(30)));
  nodes_[victim].kill(SIGKILL);
  nodes_[victim].wait();
  release();
  ASSERT_EQ(wait_job(job), "done");
  EXPECT_EQ(frame_sets(job), clean);
  EXPECT_NE(cli_json("results " + std::to_string(job) + " --json")["videos"][0]["node"], victim);
}
