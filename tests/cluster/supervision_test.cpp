// Failures inside workers, injected with the node's fault switch: crashes,
// exceptions and hangs at chosen frames, in real worker processes.

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
  start_one_node({"--supervision.faults=stats:hang@20", "--supervision.hang-timeout-s=2"});
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
