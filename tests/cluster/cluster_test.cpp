// The cluster as users run it: real coordinator, node and worker processes on
// loopback, driven through the real CLI.

#include <set>

#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "tests/cluster/cluster_fixture.hpp"

using namespace framehive::testing;
using nlohmann::json;

namespace {

const std::string opencv_data = "/usr/share/doc/opencv-doc/examples/data";

class Cluster : public cluster {};

/// The per-frame results of one analyzer of one video, checked for "exactly once".
void expect_one_result_per_frame(const json& analyzer, int64_t frames_total, const std::string& what) {
  ASSERT_TRUE(analyzer.contains("frames")) << what;
  const auto& frames = analyzer["frames"];
  ASSERT_EQ(static_cast<int64_t>(frames.size()), frames_total) << what;
  for (int64_t i = 0; i < frames_total; ++i)
    ASSERT_EQ(frames[static_cast<std::size_t>(i)]["frame"].get<int64_t>(), i) << what << ": frame missing or doubled";
  EXPECT_EQ(analyzer["frames_processed"].get<int64_t>(), frames_total) << what;
}

}  // namespace

TEST_F(Cluster, OneVideoThreeAnalyzersGiveOneResultPerFrameAndStatsMatchADirectDecode) {
  start_cluster({"n1"});
  const auto clip = make_clip("clip.mp4", 6, 15);
  const int64_t expected = ffprobe_frame_count(clip);
  ASSERT_EQ(expected, 90);
  const auto job = submit(clip + " --analyzers stats,motion,thumbnails");
  ASSERT_EQ(wait_job(job), "done");
  auto r = cli_json("results " + std::to_string(job) + " --json --frames");
  ASSERT_EQ(r["state"], "done");
  const auto& v = r["videos"][0];
  EXPECT_EQ(v["frames_total"].get<int64_t>(), expected);
  for (const char* a : {"stats", "motion", "thumbnails"})
    expect_one_result_per_frame(v["analyzers"][a], expected, a);

  // An independent single-process computation: OpenCV's own FFmpeg reader.
  cv::VideoCapture cap(clip);
  ASSERT_TRUE(cap.isOpened());
  cv::Mat frame, gray;
  const auto& stats = v["analyzers"]["stats"]["frames"];
  for (int64_t i = 0; i < expected; ++i) {
    ASSERT_TRUE(cap.read(frame)) << "frame " << i;
    cv::cvtColor(frame, gray, cv::COLOR_BGR2GRAY);
    const double direct = cv::mean(gray)[0];
    EXPECT_NEAR(stats[static_cast<std::size_t>(i)]["brightness"].get<double>(), direct, 1.0) << "frame " << i;
  }
  EXPECT_GE(v["analyzers"]["thumbnails"]["summary"]["count"].get<int>(), 2);
  EXPECT_TRUE(rings().empty()) << "the ring outlived its video";
}

TEST_F(Cluster, FourVideosOnTwoNodesKeepEachVideoOnOneNodeAndUseBothNodes) {
  start_cluster({"n1", "n2"});
  std::string inputs;
  for (int i = 0; i < 4; ++i)
    inputs += make_clip("clip" + std::to_string(i) + ".mp4", 3, 15) + " ";
  const auto job = submit(inputs + "--analyzers stats,motion");
  ASSERT_EQ(wait_job(job), "done");
  auto r = cli_json("results " + std::to_string(job) + " --json");
  std::set<std::string> used;
  ASSERT_EQ(r["videos"].size(), 4u);
  for (const auto& v : r["videos"]) {
    const std::string node = v["node"];
    used.insert(node);
    for (const auto& [name, a] : v["analyzers"].items()) {
      // Affinity: the decoder and every consumer of a video ran on its node.
      EXPECT_EQ(a["result_nodes"], json::array({node})) << v["input"] << " " << name;
      EXPECT_EQ(a["frames_processed"], v["frames_total"]) << v["input"] << " " << name;
    }
  }
  EXPECT_EQ(used, (std::set<std::string>{"n1", "n2"})) << "both nodes should get work";
}

TEST_F(Cluster, TwoAnalyzersOnOneVideoDecodeEachFrameOnce) {
  start_cluster({"n1"});
  const auto clip = make_clip("clip.mp4", 5, 20);
  const auto job = submit(clip + " --analyzers stats,motion");
  ASSERT_EQ(wait_job(job), "done");
  auto r = cli_json("results " + std::to_string(job) + " --json");
  const auto& v = r["videos"][0];
  const int64_t total = v["frames_total"];
  EXPECT_EQ(total, 100);
  EXPECT_EQ(v["frames_decoded"].get<int64_t>(), total) << "each frame decoded once for both analyzers";
  EXPECT_EQ(v["analyzers"]["stats"]["frames_processed"].get<int64_t>(), total);
  EXPECT_EQ(v["analyzers"]["motion"]["frames_processed"].get<int64_t>(), total);
  // One decoder instance ran for the video (the worker logs one line per decoder).
  auto starts = run_command("grep -c 'decoder video=' '" + (dir_ / "n1.log").string() + "'").out;
  EXPECT_EQ(std::stoi(starts), 1);
}

TEST_F(Cluster, InstancesOfOneKindAreSeparateConsumersOfTheSameFrames) {
  start_cluster({"n1"});
  const auto clip = make_clip("clip.mp4", 3, 20);
  const auto job = submit(clip + " --analyzers touch.a,touch.b,stats");
  ASSERT_EQ(wait_job(job), "done");
  auto r = cli_json("results " + std::to_string(job) + " --json --frames");
  const auto& v = r["videos"][0];
  const int64_t total = v["frames_total"];
  ASSERT_EQ(total, 60);
  EXPECT_EQ(v["frames_decoded"].get<int64_t>(), total);
  const auto& a = v["analyzers"]["touch.a"];
  const auto& b = v["analyzers"]["touch.b"];
  expect_one_result_per_frame(a, total, "touch.a");
  expect_one_result_per_frame(b, total, "touch.b");
  expect_one_result_per_frame(v["analyzers"]["stats"], total, "stats");
  // Both instances read the same ring slots: identical per-frame sums.
  for (std::size_t i = 0; i < static_cast<std::size_t>(total); ++i)
    EXPECT_EQ(a["frames"][i]["sum"], b["frames"][i]["sum"]) << "frame " << i;
  EXPECT_GT(a["summary"]["checksum"].get<uint64_t>(), 0u);
  EXPECT_EQ(a["summary"]["checksum"], b["summary"]["checksum"]);
}

TEST_F(Cluster, CancelStopsTheJobAndRemovesItsRingWhileTheClusterKeepsServing) {
  start_cluster({"n1"});
  const auto job = submit(opencv_data + "/vtest.avi --analyzers people");
  ASSERT_TRUE(wait_until([&] { return !rings().empty(); }, std::chrono::seconds(20))) << "video never started";
  auto c = cli_json("cancel " + std::to_string(job) + " --json");
  EXPECT_EQ(c["state"], "cancelled");
  EXPECT_TRUE(wait_until([&] { return rings().empty(); }, std::chrono::seconds(10))) << "ring not removed";
  EXPECT_EQ(cli_json("status " + std::to_string(job) + " --json")["state"], "cancelled");
  const auto next = submit(make_clip("after.mp4", 2, 15) + " --analyzers stats");
  EXPECT_EQ(wait_job(next), "done");
}

TEST_F(Cluster, MissingFileFailsOnlyItsVideoWithAClearReason) {
  start_cluster({"n1"});
  const std::string missing = (dir_ / "no-such-video.mp4").string();
  const auto clip = make_clip("good.mp4", 2, 15);
  const auto job = submit(missing + " " + clip + " --analyzers stats");
  EXPECT_EQ(wait_job(job), "failed");
  auto r = cli_json("results " + std::to_string(job) + " --json");
  for (const auto& v : r["videos"]) {
    if (v["input"] == missing) {
      EXPECT_EQ(v["state"], "failed");
      const std::string err = v["error"];
      EXPECT_NE(err.find(missing), std::string::npos) << err;
      EXPECT_NE(err.find("no such file"), std::string::npos) << err;
    } else {
      EXPECT_EQ(v["state"], "done");
    }
  }
  // `submit --wait` reports the failure through its exit code.
  EXPECT_EQ(cli("submit --node-visible " + missing + " --analyzers stats --wait --json").code, 1);
  const auto next = submit(clip + " --analyzers stats");
  EXPECT_EQ(wait_job(next), "done");
}

TEST_F(Cluster, PeopleFindsPeopleInMostFramesOfVtest) {
  start_cluster({"n1"});
  const auto job = submit(opencv_data + "/vtest.avi --analyzers people --stride 5");
  ASSERT_EQ(wait_job(job, std::chrono::seconds(240)), "done");
  auto r = cli_json("results " + std::to_string(job) + " --json");
  const auto& s = r["videos"][0]["analyzers"]["people"]["summary"];
  const double processed = s["frames_processed"];
  EXPECT_EQ(processed, 159);  // frames 0, 5, ..., 790 of 795
  EXPECT_GT(s["frames_with_people"].get<double>() / processed, 0.5) << s.dump();
  EXPECT_GE(s["max_people"].get<int>(), 2);
}

TEST_F(Cluster, DetectCountsClassesPerFrameOfVtestAndRanksThem) {
  start_cluster({"n1"});
  // Every 40th frame (0, 40, ..., 760): 20 frames with the default classes, a few seconds.
  const auto job = submit(opencv_data + "/vtest.avi --analyzers detect --stride 40");
  ASSERT_EQ(wait_job(job), "done");
  auto r = cli_json("results " + std::to_string(job) + " --json --frames");
  const auto& a = r["videos"][0]["analyzers"]["detect"];
  const auto& s = a["summary"];
  ASSERT_EQ(s["frames_processed"], 20) << s.dump();
  EXPECT_GE(s["frames_with_person"].get<int>(), 12) << s.dump();  // 60%
  EXPECT_GE(s["total_person"].get<int>(), s["frames_with_person"].get<int>());
  EXPECT_TRUE(s.contains("total_face") && s.contains("frames_with_face")) << s.dump();
  ASSERT_FALSE(s["top_classes"].empty()) << s.dump();
  EXPECT_EQ(s["top_classes"][0], "person") << s.dump();
  int64_t person_boxes = 0;
  for (const auto& f : a["frames"]) {
    ASSERT_TRUE(f["person"].is_number_integer() && f["face"].is_number_integer()) << f.dump();
    for (const auto& b : f["boxes"])
      person_boxes += b["class"] == "person";
  }
  EXPECT_EQ(person_boxes, s["total_person"].get<int64_t>());
}

TEST_F(Cluster, DetectWithoutItsCascadeFileFailsTheVideoNamingTheFile) {
  const std::string models = (dir_ / "no-models").string();
  start_cluster({"n1"}, {"--analyzers.detect-model-dir=" + models});
  const auto job = submit(make_clip("clip.mp4", 1, 15) + " --analyzers detect");
  EXPECT_EQ(wait_job(job), "failed");
  auto r = cli_json("results " + std::to_string(job) + " --json");
  const std::string err = r["videos"][0]["error"];
  EXPECT_NE(err.find(models + "/lbpcascades/lbpcascade_frontalface_improved.xml"), std::string::npos) << err;
}

TEST_F(Cluster, NodeRefusesToStartWithAnUnknownDetectClass) {
  const auto r = run_command("timeout 20 " + bin("framehive-node") + " --coordinator=" + address() +
                             " --shm-prefix=" + shm_prefix() + " --output-dir=" + (dir_ / "out").string() +
                             " '--analyzers.detect-classes=[\"person\",\"unicorn\"]' 2>&1");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("unknown detect class 'unicorn'"), std::string::npos) << r.out;
}

TEST_F(Cluster, KilledWorkerIsRestartedAndTheJobStillGetsEveryFrameOnce) {
  // Held at frame 300 of 600 until the kill, so it lands while the decoder
  // runs (unheld, the video could end within a second).
  start_cluster({"n1"}, {hold_at(300)});
  const auto clip = make_clip("long.mp4", 20, 30, "640x360");
  const int64_t expected = ffprobe_frame_count(clip);
  const auto job = submit(clip + " --analyzers stats,motion");
  // Kill the worker that hosts the decoder once it is under way.
  uint32_t victim = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        auto t = cli_json("tree --json");
        for (const auto& e : t["entries"])
          if (e["kind"] == "decoder" && e["position"].get<int64_t>() > 60 && e["state"] == "running")
            victim = e["pid"];
        return victim != 0;
      },
      std::chrono::seconds(30)));
  ASSERT_EQ(::kill(static_cast<pid_t>(victim), SIGKILL), 0);
  release();
  ASSERT_EQ(wait_job(job), "done");
  auto r = cli_json("results " + std::to_string(job) + " --json --frames");
  const auto& v = r["videos"][0];
  EXPECT_EQ(v["frames_total"].get<int64_t>(), expected);
  expect_one_result_per_frame(v["analyzers"]["stats"], expected, "stats");
  expect_one_result_per_frame(v["analyzers"]["motion"], expected, "motion");
  // The tree is the node's last status push (every 0.5 s): under load the job
  // may be done before a push has shown the restart.
  uint32_t restarts = 0;
  wait_until(
      [&] {
        auto t = cli_json("tree --json");
        restarts = 0;
        for (const auto& e : t["entries"])
          if (e["kind"] == "worker")
            restarts += e["restarts"].get<uint32_t>();
        return restarts >= 1;
      },
      std::chrono::seconds(10));
  EXPECT_GE(restarts, 1u);
}

TEST_F(Cluster, CliGivesUsageErrorsAndDocumentedExitCodes) {
  start_cluster({"n1"});
  EXPECT_EQ(cli("submit " + make_clip("c.mp4", 1, 10)).code, 2) << "--analyzers is required";
  auto unknown = cli("submit " + (dir_ / "c.mp4").string() + " --analyzers stats,colour");
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(cli_stderr().find("unknown analyzer 'colour'"), std::string::npos) << cli_stderr();
  EXPECT_EQ(cli("submit " + (dir_ / "c.mp4").string() + " --analyzers touch.").code, 2) << "empty instance label";
  EXPECT_EQ(cli("submit " + (dir_ / "c.mp4").string() + " --analyzers colour.1").code, 2) << "unknown kind";
  EXPECT_EQ(cli("results 999999 --json").code, 4);
  EXPECT_NE(cli_stderr().find("no job 999999"), std::string::npos);
  EXPECT_EQ(cli("frobnicate").code, 2);
  EXPECT_EQ(run_command(bin("framehive") + " --coordinator 127.0.0.1:" + std::to_string(free_port()) +
                        " nodes 2>/dev/null")
                .code,
            3);
}

TEST_F(Cluster, VideoThatCanNeverFitTheShmBudgetFailsNamingTheSizes) {
  start_coordinator();
  start_node("small", 2, 16);  // 16 MiB: not even 4 frames of 1080p BGR (6 MiB each)
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  const auto clip = make_clip("big.mp4", 1, 5, "1920x1080");
  const auto job = submit(clip + " --analyzers stats");
  EXPECT_EQ(wait_job(job), "failed");
  const std::string err = cli_json("results " + std::to_string(job) + " --json")["videos"][0]["error"];
  EXPECT_NE(err.find("1920x1080"), std::string::npos) << err;
  EXPECT_NE(err.find("shared-memory budget"), std::string::npos) << err;
  EXPECT_EQ(wait_job(submit(make_clip("small.mp4", 1, 10) + " --analyzers stats")), "done");
}

TEST_F(Cluster, VideoWaitsInTheQueueWhileNoNodeHasSharedMemoryForIt) {
  start_coordinator();
  start_node("n1", 2, 64, {paced(30)});  // room for one 1080p ring of at most 10 frames at a time; paced, so the first holds it 2 s
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  const auto a = make_clip("a.mp4", 4, 15, "1920x1080");
  const auto b = make_clip("b.mp4", 4, 15, "1920x1080");
  const auto job = submit(a + " " + b + " --analyzers stats");
  ASSERT_EQ(wait_job(job), "done");
  const json results = cli_json("results " + std::to_string(job) + " --json");
  for (const auto& v : results["videos"])
    EXPECT_EQ(v["analyzers"]["stats"]["frames_processed"].get<int64_t>(), 60) << v["input"];
  auto requeued = run_command("sqlite3 '" + (dir_ / "data" / "framehive.db").string() +
                              "' \"SELECT COUNT(*) FROM events WHERE kind='requeued'\"");
  EXPECT_GE(std::stoi(requeued.out), 1) << "the second video should have waited for room";
}

// A Linux file name is bytes, not text: a name with 0xff is a valid input end
// to end, renders with U+FFFD in JSON, and cannot take the coordinator down
// (before, the first status after such a submit killed the coordinator actor,
// and the reloaded row killed it again after every restart).
TEST_F(Cluster, InputNameThatIsNotUtf8IsAnalysedShownAndSurvivesACoordinatorRestart) {
  start_cluster({"n1"}, {hold_at(30)});
  const std::string replacement = "\xEF\xBF\xBD";
  const auto clip = make_clip("clip.mp4", 4, 15);
  const auto odd = (dir_ / "match\xff.mp4").string();
  std::filesystem::rename(clip, odd);
  const auto job = submit("'" + odd + "' --analyzers stats");
  ASSERT_NE(job, 0u);

  // While it runs (held at frame 30 of 60), the tree shows it.
  bool in_tree = false;
  EXPECT_TRUE(wait_until(
      [&] {
        const json t = cli_json("tree --json");
        for (const auto& e : t["entries"])
          in_tree |= e["kind"] == "video" && e["name"] == "match" + replacement + ".mp4";
        return in_tree;
      },
      std::chrono::seconds(60)))
      << "the running video never showed in the tree";
  release();
  ASSERT_EQ(wait_job(job), "done");

  const std::string shown = (dir_ / ("match" + replacement + ".mp4")).string();
  auto check_everything_answers = [&] {
    const json st = cli_json("status " + std::to_string(job) + " --json");
    EXPECT_EQ(st["videos"][0]["input"], shown);
    EXPECT_EQ(st["videos"][0]["state"], "done");
    const json all = cli_json("status --json");
    EXPECT_EQ(all["jobs"].size(), 1u);
    const json r = cli_json("results " + std::to_string(job) + " --json --frames");
    EXPECT_EQ(r["videos"][0]["input"], shown);
    EXPECT_EQ(r["videos"][0]["analyzers"]["stats"]["frames"].size(), 60u);
    EXPECT_EQ(cli("results " + std::to_string(job)).code, 0) << cli_stderr();
    EXPECT_EQ(cli("status").code, 0) << cli_stderr();
    EXPECT_EQ(cli("tree").code, 0) << cli_stderr();
    EXPECT_EQ(cli("nodes --json").code, 0) << cli_stderr();
  };
  check_everything_answers();

  // The row is reloaded at restart; the coordinator still answers everything.
  coordinator_.kill(SIGKILL);
  coordinator_.wait();
  start_coordinator();
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  check_everything_answers();
  // And it still takes work.
  const auto next = submit(make_clip("after.mp4", 1, 15) + " --analyzers stats");
  EXPECT_EQ(wait_job(next), "done");
}

TEST_F(Cluster, ResultBatchesThatQueueOnANodeLeaveTogetherInOneMessage) {
  // A node keeps one message of result batches in flight; what its consumers
  // send meanwhile queues and leaves in the next message, together. Held at
  // frame 60 until everything before is stored, then the coordinator stops
  // answering (SIGSTOP) while the frames after come: batches queue behind the
  // unanswered message, and once it answers they reach it as one message.
  const uint16_t coordinator_metrics = free_port();
  uint16_t node_metrics = free_port();
  while (node_metrics == coordinator_metrics)
    node_metrics = free_port();
  coordinator_flags_ = {"--metrics.port=" + std::to_string(coordinator_metrics)};
  start_coordinator();
  start_node("n1", 2, 1024, {hold_at(60), "--metrics.port=" + std::to_string(node_metrics)});
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  const auto clip = make_clip("clip.mp4", 8, 15);  // 120 frames
  const auto job = submit(clip + " --analyzers stats,motion,touch,touch.b");
  ASSERT_TRUE(wait_until(
      [&] { return metric_sum(coordinator_metrics, "framehive_frames_stored_total") == 4 * 60; },
      std::chrono::seconds(60)))
      << metric_sum(coordinator_metrics, "framehive_frames_stored_total") << " results stored";
  const double messages_before = metric_sum(coordinator_metrics, "framehive_result_messages_total");
  const double batches_before = metric_sum(coordinator_metrics, "framehive_result_batches_total");
  ASSERT_GT(batches_before, 0);

  coordinator_.kill(SIGSTOP);
  release();
  // Four consumers, up to two batches each in flight: one message goes out and
  // stays unanswered, the next batches wait behind it.
  const bool queued = wait_until(
      [&] { return metric_sum(node_metrics, "framehive_result_batches_waiting") >= 3; }, std::chrono::seconds(30));
  coordinator_.kill(SIGCONT);
  ASSERT_TRUE(queued) << "no batches queued behind the unanswered message";
  ASSERT_EQ(wait_job(job), "done");
  const double messages = metric_sum(coordinator_metrics, "framehive_result_messages_total") - messages_before;
  const double batches = metric_sum(coordinator_metrics, "framehive_result_batches_total") - batches_before;
  EXPECT_GE(batches - messages, 2) << batches << " batches in " << messages << " messages";
  EXPECT_EQ(metric_sum(coordinator_metrics, "framehive_frames_stored_total"), 4 * 120);
  const json r = cli_json("results " + std::to_string(job) + " --json --frames");
  for (const char* an : {"stats", "motion", "touch", "touch.b"})
    expect_one_result_per_frame(r["videos"][0]["analyzers"][an], 120, an);
}
