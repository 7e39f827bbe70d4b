// Whole processes dying: the coordinator (SIGKILL, then restarted), a node
// (SIGKILL), a hung node (SIGSTOP, later SIGCONT). Every job still finishes
// with per-frame stats identical to a clean run.
//
// The nodes' decoders wait at frame held_at until the test releases them,
// so the test's kill always lands while the video runs, whatever the
// machine's speed (unheld, a fast machine finished the clip before the test
// could stop the node; paced, a slow one could miss the window).

#include <csignal>

#include "tests/cluster/cluster_fixture.hpp"

using namespace framehive::testing;
using nlohmann::json;

namespace {

constexpr int held_at = 450;  ///< of the 900-frame clips

class Failover : public cluster {
 protected:
  /// Waits until a video of `job` runs on some node past `frame`; returns the node.
  std::string running_node(uint64_t job, int64_t frame) {
    std::string node;
    wait_until(
        [&] {
          const json st = cli_json("status " + std::to_string(job) + " --json");
          for (const auto& v : st["videos"])
            if (v["state"] == "running" && v["position"].get<int64_t>() > frame)
              node = v["node"];
          return !node.empty();
        },
        std::chrono::seconds(30));
    return node;
  }

  /// The clip's per-frame stats from a job with no faults, in this cluster.
  std::vector<std::pair<double, double>> clean_run(const std::string& clip) {
    release();
    const auto job = submit(clip + " --analyzers stats");
    EXPECT_EQ(wait_job(job), "done");
    hold_again();  // the next job waits at held_at
    return stats_of(job);
  }

  void expect_same_stats(const std::vector<std::pair<double, double>>& clean,
                         const std::vector<std::pair<double, double>>& faulty) {
    ASSERT_EQ(clean.size(), faulty.size());
    for (std::size_t i = 0; i < clean.size(); ++i)
      ASSERT_EQ(clean[i], faulty[i]) << "stats differ at frame " << i;
  }
};

}  // namespace

TEST_F(Failover, KilledCoordinatorComesBackAndTheJobFinishesWithNothingLost) {
  start_cluster({"n1"}, {hold_at(held_at)});
  const auto clip = make_clip("clip.mp4", 30, 30, "640x360");
  const auto clean = clean_run(clip);
  ASSERT_EQ(clean.size(), 900u);
  const auto job = submit(clip + " --analyzers stats,motion");
  ASSERT_FALSE(running_node(job, 100).empty());
  coordinator_.kill(SIGKILL);
  coordinator_.wait();
  release();
  start_coordinator();  // same port, same job store
  ASSERT_TRUE(wait_until([&] { return cli("nodes").code == 0; }, std::chrono::seconds(20)));
  ASSERT_EQ(wait_job(job), "done");
  expect_same_stats(clean, stats_of(job));
  const json r = cli_json("results " + std::to_string(job) + " --json");
  EXPECT_EQ(r["videos"][0]["analyzers"]["motion"]["frames_processed"], 900);
  EXPECT_EQ(r["videos"][0]["node"], "n1");
}

TEST_F(Failover, KilledNodesVideoFinishesOnAnotherNodeWithIdenticalStats) {
  start_cluster({"n1", "n2"}, {hold_at(held_at)});
  const auto clip = make_clip("clip.mp4", 30, 30, "640x360");
  const auto clean = clean_run(clip);
  const auto job = submit(clip + " --analyzers stats,motion");
  const std::string victim = running_node(job, 100);
  ASSERT_FALSE(victim.empty());
  nodes_[victim].kill(SIGKILL);
  nodes_[victim].wait();
  release();
  ASSERT_EQ(wait_job(job), "done");
  expect_same_stats(clean, stats_of(job));
  const json r = cli_json("results " + std::to_string(job) + " --json");
  EXPECT_NE(r["videos"][0]["node"], victim);
  EXPECT_EQ(r["videos"][0]["analyzers"]["motion"]["frames_processed"], 900);
}

TEST_F(Failover, HungNodeIsDeclaredDeadFencedAndItsLateResultsRefused) {
  start_cluster({"n1", "n2"}, {hold_at(held_at)});
  const auto clip = make_clip("clip.mp4", 30, 30, "640x360");
  const auto clean = clean_run(clip);
  const auto job = submit(clip + " --analyzers stats");
  const std::string victim = running_node(job, 100);
  ASSERT_FALSE(victim.empty());
  nodes_[victim].kill(SIGSTOP);
  release();
  ASSERT_EQ(wait_job(job), "done");  // heartbeats: declared dead after the connection timeout
  nodes_[victim].kill(SIGCONT);
  // The woken node learns its assignment was revoked and drops the video.
  EXPECT_TRUE(wait_until(
      [&] {
        auto log = run_command("cat '" + (dir_ / (victim + ".log")).string() + "'").out;
        return log.find("revoked") != std::string::npos || log.find("cancelled") != std::string::npos;
      },
      std::chrono::seconds(20)));
  expect_same_stats(clean, stats_of(job));
  const json r = cli_json("results " + std::to_string(job) + " --json");
  EXPECT_NE(r["videos"][0]["node"], victim);
}

TEST_F(Failover, ACoordinatorLostWithBatchesUnansweredFreesItsNodesConsumersAtOnce) {
  // The coordinator stops (SIGSTOP) with the node's message of result batches
  // unanswered, then dies. The node answers those batches itself when the
  // connection drops ("coordinator lost"), so its consumers retry at once
  // instead of each waiting out the request timeout; the job still finishes
  // exactly once the coordinator is back.
  const uint16_t node_metrics = free_port();
  coordinator_flags_ = {};
  start_coordinator();
  start_node("n1", 2, 1024, {hold_at(180), "--metrics.port=" + std::to_string(node_metrics)});
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  const auto clip = make_clip("clip.mp4", 12, 30, "320x240");
  const auto clean = clean_run(clip);
  ASSERT_EQ(clean.size(), 360u);
  const auto job = submit(clip + " --analyzers stats,motion");
  ASSERT_FALSE(running_node(job, 30).empty());

  coordinator_.kill(SIGSTOP);
  release();  // frames 180 on: new batches, for a coordinator that answers nothing
  // Once a message is out, it stays out.
  ASSERT_TRUE(wait_until([&] { return metric_sum(node_metrics, "framehive_result_batches_unanswered") > 0; },
                         std::chrono::seconds(30)))
      << "the node sent no result batches while the coordinator was stopped";
  coordinator_.kill(SIGKILL);
  coordinator_.wait();
  ASSERT_TRUE(wait_until([&] { return metric_sum(node_metrics, "framehive_result_batches_unanswered") == 0; },
                         std::chrono::seconds(30)));
  const auto log = (dir_ / "n1.log").string();
  ASSERT_TRUE(wait_until([&] { return file_has_line_containing(log, "coordinator lost with the batch unanswered"); },
                         std::chrono::seconds(30)))
      << "no consumer heard that its batch was lost with the coordinator";
  EXPECT_FALSE(file_has_line_containing(log, "request_timeout")) << "a consumer waited out a request timeout";

  start_coordinator();  // same port, same job store
  ASSERT_EQ(wait_job(job), "done");
  expect_same_stats(clean, stats_of(job));
  EXPECT_FALSE(file_has_line_containing(log, "request_timeout"));
}
