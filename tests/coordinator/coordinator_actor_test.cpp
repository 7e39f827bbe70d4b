// The coordinator actor as a thin adapter, in one process: a fake node actor
// registers, takes assignments and sends results; the CLI's requests get
// typed replies. Inputs are bytes (0xff), a corrupt row answers with an
// error while the coordinator keeps serving, and a restarted coordinator
// lets a node that re-registers claim its video. No processes, no sleeps.

#include "coordinator/coordinator_actor.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>

#include "caf/all.hpp"

namespace framehive {
namespace {

using namespace std::chrono_literals;

constexpr auto reply_timeout = std::chrono::seconds(5);

/// A node that hands every assignment and cancel to the test.
node_actor::behavior_type fake_node(node_actor::pointer, caf::actor sink) {
  return {
      [sink](video_task& t) {
        caf::anon_send(sink, t);
        return caf::ok_atom::value;
      },
      [sink](cancel_atom, uint64_t video) { caf::anon_send(sink, cancel_atom::value, video); },
  };
}

struct config : caf::actor_system_config {
  config() { register_protocol(*this); }
};

class CoordinatorActor : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "framehive-coord-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir = pattern;
    start();
    node = sys.spawn(fake_node, caf::actor_cast<caf::actor>(self));
  }

  void TearDown() override {
    stop();
    caf::anon_send_exit(node, caf::exit_reason::kill);
    std::filesystem::remove_all(dir);
  }

  void start() {
    auto store = job_store::open(dir);
    ASSERT_TRUE(store.ok()) << store.error();
    coord = spawn_coordinator(sys, std::move(*store));
  }

  void stop() {
    self->monitor(coord);
    caf::anon_send_exit(coord, caf::exit_reason::kill);
    self->receive([](const caf::down_msg&) {});
  }

  /// The reply to `args`, or a test failure naming the error.
  template <class T, class... Ts>
  T ask(Ts&&... args) {
    T out{};
    self->request(coord, reply_timeout, std::forward<Ts>(args)...)
        .receive([&](T& x) { out = std::move(x); },
                 [&](caf::error& e) { ADD_FAILURE() << "error reply: " << describe(e); });
    return out;
  }

  /// The error a request is answered with (empty if it succeeded).
  template <class T, class... Ts>
  std::string ask_error(Ts&&... args) {
    std::string out;
    self->request(coord, reply_timeout, std::forward<Ts>(args)...)
        .receive([&](T&) {}, [&](caf::error& e) { out = describe(e); });
    return out;
  }

  void register_node(const std::string& name, std::vector<uint64_t> running = {}) {
    node_info info;
    info.name = name;
    info.cores = 2;
    info.running = std::move(running);
    ask<node_welcome>(info, node);
  }

  video_task next_task() {
    video_task out;
    self->receive([&](video_task& t) { out = std::move(t); },
                  caf::after(reply_timeout) >> [] { ADD_FAILURE() << "no assignment"; });
    return out;
  }

  result_batch batch(const video_task& t, std::vector<int64_t> frames, const std::string& node_name = "n1") {
    result_batch b;
    b.video = t.video;
    b.epoch = t.epoch;
    b.analyzer = "stats";
    b.node = node_name;
    b.time_base = 0.04;
    for (int64_t f : frames)
      b.frames.push_back({f, f * 40, R"({"ms":1.0,"brightness":5.0})"});
    return b;
  }

  config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  std::string dir;
  coordinator_actor coord;
  node_actor node;
};

TEST_F(CoordinatorActor, InputWithByte0xffIsAnalysedReportedAndSurvivesARestart) {
  const std::string input = "/tmp/clip\xff\xfe.mp4";
  const auto job = ask<uint64_t>(job_spec{{input}, {"stats"}, 1});
  register_node("n1");
  const video_task t = next_task();
  EXPECT_EQ(t.input, input);
  EXPECT_EQ(t.epoch, 1u);
  EXPECT_EQ(t.decode_from, 0);

  EXPECT_EQ(ask<batch_ack>(batch(t, {0, 1, 2, 3})).watermark, 3);
  auto stale = batch(t, {4});
  stale.epoch = t.epoch - 1;
  EXPECT_NE(ask_error<batch_ack>(stale), "");
  EXPECT_NE(ask_error<batch_ack>(batch(t, {4}, "intruder")), "");

  auto status = ask<job_status>(status_atom::value, job);
  ASSERT_EQ(status.videos.size(), 1u);
  EXPECT_EQ(status.videos[0].input, input);
  EXPECT_EQ(status.videos[0].state, video_state::running);
  EXPECT_EQ(ask<cluster_nodes>(nodes_atom::value).nodes.at(0).running, 1u);

  // Restart: the node comes back claiming the video, which goes on under its epoch.
  stop();
  start();
  register_node("n1", {t.video});
  EXPECT_EQ(ask<batch_ack>(batch(t, {4, 5})).watermark, 5);
  video_report done;
  done.video = t.video;
  done.epoch = t.epoch;
  done.node = "n1";
  done.outcome = video_outcome::done;
  done.frames_total = 6;
  ask<caf::ok_atom>(done);

  const auto results = ask<job_results>(results_atom::value, job, true);
  EXPECT_EQ(results.state, job_state::done);
  ASSERT_EQ(results.videos.size(), 1u);
  EXPECT_EQ(results.videos[0].input, input);
  EXPECT_EQ(results.videos[0].frames_total, 6);
  ASSERT_EQ(results.videos[0].analyzers.size(), 1u);
  EXPECT_EQ(results.videos[0].analyzers[0].frames.size(), 6u);
  EXPECT_EQ(ask<cluster_status>(status_atom::value).jobs.at(0).videos.at(0).position, 6);
  EXPECT_EQ(ask<cluster_tree>(tree_atom::value).entries.at(0).kind, actor_kind::coordinator);
}

TEST_F(CoordinatorActor, CorruptRowIsAnErrorReplyAndTheCoordinatorKeepsServing) {
  const auto broken = ask<uint64_t>(job_spec{{"/v/a.mp4"}, {"stats"}, 1});
  const auto fine = ask<uint64_t>(job_spec{{"/v/b.mp4"}, {"stats"}, 1});
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir + "/framehive.db").c_str(), &db), SQLITE_OK);
  const std::string sql = "UPDATE videos SET state = 'waiting' WHERE job = " + std::to_string(broken);
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);

  EXPECT_NE(ask_error<job_status>(status_atom::value, broken).find("'waiting'"), std::string::npos);
  EXPECT_NE(ask_error<job_results>(results_atom::value, broken, false), "");
  EXPECT_NE(ask_error<job_status>(cancel_atom::value, broken), "");
  // Everything else still answers.
  EXPECT_EQ(ask<job_status>(status_atom::value, fine).videos.size(), 1u);
  EXPECT_EQ(ask<cluster_tree>(tree_atom::value).entries.size(), 1u);
  EXPECT_EQ(ask_error<job_status>(status_atom::value, uint64_t{999}), "no job 999");
  EXPECT_NE(ask_error<uint64_t>(job_spec{{"/v/c.mp4"}, {"no-such-analyzer"}, 1}), "");
  EXPECT_GT(ask<uint64_t>(job_spec{{"/v/c.mp4"}, {"stats"}, 1}), fine);
}

}  // namespace
}  // namespace framehive
