// Failures inside workers, injected with the node's fault switch: crashes,
// exceptions and hangs at chosen frames, in real worker processes.

#include <map>

#include "tests/cluster/cluster_fixture.hpp"

using namespace framehive::testing;
using nlohmann::json;

namespace {

class Supervision : public cluster {
 protected:
  json video_result(uint64_t job) {
    const json r = cli_json("results " + std::to_string(job) + " --json --frames");
    return r["videos"][0];
  }

  uint32_t worker_restarts() {
    uint32_t n = 0;
    const json tree = cli_json("tree --json");  // kept alive for the loop
    for (const auto& e : tree["entries"])
      if (e["kind"] == "worker")
        n += e["restarts"].get<uint32_t>();
    return n;
  }
};

/// Every frame has exactly one stored result; returns the quarantined ones.
std::vector<int64_t> check_frames(const json& analyzer, int64_t total) {
  std::vector<int64_t> quarantined;
  const auto& frames = analyzer["frames"];
  EXPECT_EQ(static_cast<int64_t>(frames.size()), total);
  for (std::size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i]["frame"].get<int64_t>(), static_cast<int64_t>(i));
    if (frames[i].value("quarantined", false))
      quarantined.push_back(static_cast<int64_t>(i));
  }
  return quarantined;
}

}  // namespace

TEST_F(Supervision, PoisonFrameThatCrashesItsWorkerIsQuarantinedAfterThreeCrashes) {
  start_one_node({"--supervision.faults=stats:crash@40"});
  const auto job = submit(make_clip("clip.mp4", 6, 15) + " --analyzers stats,motion");
  ASSERT_EQ(wait_job(job), "done");
  auto v = video_result(job);
  EXPECT_EQ(check_frames(v["analyzers"]["stats"], 90), std::vector<int64_t>{40});
  EXPECT_TRUE(check_frames(v["analyzers"]["motion"], 90).empty()) << "other analyzers are not affected";
  const auto& s = v["analyzers"]["stats"]["summary"];
  EXPECT_EQ(s["frames_processed"], 89);
  ASSERT_EQ(s["quarantined"].size(), 1u);
  const std::string reason = s["quarantined"][0]["reason"];
  EXPECT_NE(reason.find("crashed on this frame 3 times"), std::string::npos) << reason;
  // The tree is refreshed from the node twice a second.
  EXPECT_TRUE(wait_until([&] { return worker_restarts() >= 3; }, std::chrono::seconds(5))) << cli("tree").out;
}

TEST_F(Supervision, AnalyzerExceptionQuarantinesOnlyThatFrame) {
  start_one_node({"--supervision.faults=motion:throw@10,motion:throw@11"});
  const auto job = submit(make_clip("clip.mp4", 4, 15) + " --analyzers motion");
  ASSERT_EQ(wait_job(job), "done");
  auto v = video_result(job);
  EXPECT_EQ(check_frames(v["analyzers"]["motion"], 60), (std::vector<int64_t>{10, 11}));
  const std::string reason = v["analyzers"]["motion"]["summary"]["quarantined"][0]["reason"];
  EXPECT_NE(reason.find("analyzer threw: injected fault"), std::string::npos) << reason;
  EXPECT_EQ(worker_restarts(), 0u) << "an exception must not cost a worker";
}

TEST_F(Supervision, HungAnalyzerIsDetectedItsWorkerKilledAndTheFrameQuarantined) {
  start_one_node({"--supervision.faults=stats:hang@20", "--supervision.hang-timeout-s=3"});
  const auto job = submit(make_clip("clip.mp4", 3, 15) + " --analyzers stats");
  ASSERT_EQ(wait_job(job, std::chrono::seconds(90)), "done");
  auto v = video_result(job);
  EXPECT_EQ(check_frames(v["analyzers"]["stats"], 45), std::vector<int64_t>{20});
  const std::string reason = v["analyzers"]["stats"]["summary"]["quarantined"][0]["reason"];
  EXPECT_NE(reason.find("hung"), std::string::npos) << reason;
}

TEST_F(Supervision, RestartLimitFailsTheVideoWithTheReasonWhenNoOtherNodeCanTakeIt) {
  start_one_node({"--supervision.faults=stats:crash@30", "--supervision.poison-attempts=100",
                  "--supervision.restart-limit=2"});
  const auto job = submit(make_clip("clip.mp4", 4, 15) + " --analyzers stats");
  ASSERT_EQ(wait_job(job), "failed");
  const std::string err = video_result(job)["error"];
  EXPECT_NE(err.find("restarted more than 2 times"), std::string::npos) << err;
  // The cluster keeps serving.
  EXPECT_EQ(wait_job(submit(make_clip("ok.mp4", 1, 10) + " --analyzers motion")), "done");
}

TEST_F(Supervision, EachBadInputFailsOnlyItsVideoWithItsReasonAndTheClusterKeepsServing) {
  start_coordinator();
  start_node("n1", 2, 512);
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  const std::string ff = "ffmpeg -v error -y -nostdin ";
  auto path = [&](const std::string& n) { return (dir_ / n).string(); };
  auto sh = [&](const std::string& cmd) { ASSERT_EQ(run_command(cmd + " 2>&1").code, 0) << cmd; };
  sh(ff + "-f lavfi -i testsrc2=size=320x240:rate=15 -t 2 -c:v libx264 -preset ultrafast " + path("whole.mp4"));
  sh("head -c 30000 " + path("whole.mp4") + " > " + path("cut.mp4"));
  sh(ff + "-f lavfi -i sine=frequency=440:duration=1 -c:a aac " + path("audio.m4a"));
  sh(ff + "-f lavfi -i testsrc2=size=16x16:rate=10 -t 1 -vf scale=1:1 -c:v ffv1 " + path("tiny.mkv"));
  sh(ff + "-f lavfi -i color=c=blue:size=64x64:rate=1 -vf scale=8192:8192 -frames:v 1 -c:v ffv1 " + path("huge.mkv"));
  sh(ff + "-f lavfi -i testsrc2=size=320x240:rate=15 -frames:v 0 -c:v libx264 " + path("zero.mp4"));
  sh("echo 'just some text' > " + path("text.mp4") + " && : > " + path("empty.mp4") + " && mkdir " + path("dir.mp4"));
  const std::string bugy = "/usr/share/doc/opencv-doc/examples/data/Megamind_bugy.avi";
  // input -> expected state and words of the reason
  const std::map<std::string, std::pair<std::string, std::string>> expect{
      {path("missing.mp4"), {"failed", "no such file"}},
      {path("dir.mp4"), {"failed", "is a directory"}},
      {path("empty.mp4"), {"failed", "empty file"}},
      {path("text.mp4"), {"failed", "not a media file"}},
      {path("cut.mp4"), {"failed", "not a media file"}},
      {path("audio.m4a"), {"failed", "no video stream"}},
      {path("zero.mp4"), {"failed", "no video stream"}},
      {path("huge.mkv"), {"failed", "8192x8192"}},
      {"rtsp://127.0.0.1:9/none", {"failed", "cannot open"}},
      {path("tiny.mkv"), {"done", ""}},
      {bugy, {"done", ""}},
  };
  std::string inputs;
  for (const auto& [in, e] : expect)
    inputs += in + " ";
  const auto job = submit(inputs + "--analyzers stats,motion");
  ASSERT_EQ(wait_job(job, std::chrono::seconds(180)), "failed");
  const json r = cli_json("results " + std::to_string(job) + " --json");
  ASSERT_EQ(r["videos"].size(), expect.size());
  for (const auto& v : r["videos"]) {
    const auto& [state, words] = expect.at(v["input"].get<std::string>());
    EXPECT_EQ(v["state"], state) << v["input"];
    if (state == "failed") {
      const std::string err = v["error"];
      EXPECT_NE(err.find(words), std::string::npos) << v["input"] << ": " << err;
      EXPECT_NE(err.find(v["input"].get<std::string>()), std::string::npos) << "reason must name the input: " << err;
    } else {
      EXPECT_EQ(v["analyzers"]["stats"]["frames_processed"], v["frames_total"]) << v["input"];
    }
  }
  // The human-readable results show the reasons too.
  EXPECT_NE(cli("results " + std::to_string(job)).out.find("no such file"), std::string::npos);
  EXPECT_EQ(wait_job(submit(make_clip("ok.mp4", 1, 10) + " --analyzers stats")), "done");
}

TEST_F(Supervision, ResultsTheCoordinatorRefusesForGoodFailTheVideoWithTheReasonInsteadOfRetryingForever) {
  // A coordinator that takes at most 4 frames per batch, a node that sends 8:
  // the same batch sent again is refused again, so the video fails naming the
  // limit. Fixing the node's setting makes the next job pass.
  coordinator_flags_ = {"--limits.max-frames-per-batch=4"};
  start_one_node({"--batch-frames=8"});
  const std::string clip = make_clip("clip.mp4", 2, 15);
  const auto job = submit(clip + " --analyzers stats");
  ASSERT_EQ(wait_job(job, std::chrono::seconds(60)), "failed");
  const json v = video_result(job);
  EXPECT_EQ(v["state"], "failed");
  const std::string err = v.value("error", "");
  EXPECT_NE(err.find("stats results refused"), std::string::npos) << err;
  EXPECT_NE(err.find("max_frames_per_batch = 4"), std::string::npos) << err;
  EXPECT_NE(err.find(clip), std::string::npos) << "the reason names the input: " << err;

  stop(nodes_["n1"]);
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 0; }, std::chrono::seconds(30)));
  start_node("n2", 2, 1024, {"--batch-frames=4"});
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  const auto again = submit(clip + " --analyzers stats");
  ASSERT_EQ(wait_job(again), "done");
  EXPECT_EQ(check_frames(video_result(again)["analyzers"]["stats"], 30).size(), 0u);
}
