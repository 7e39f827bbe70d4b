// The coordinator actor as a thin adapter, in one process: fake node actors
// register, take assignments and send results (as themselves, so the
// coordinator sees them as the sender, as it would a real node); the CLI's
// requests get typed replies. Inputs are bytes (0xff), a corrupt row answers
// with an error while the coordinator keeps serving, a restarted coordinator
// lets a node that re-registers claim its video; identities come from the
// connection, limits are errors, challenges are single-use, finished jobs
// can be erased and expire. No processes, no sleeps.

#include "coordinator/coordinator_actor.hpp"
#include "analysis/result_codec.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <map>

#include "caf/all.hpp"
#include "common/digest.hpp"
#include "common/identity.hpp"
#include "coordinator/admission.hpp"

namespace framehive {
namespace {

using namespace std::chrono_literals;

constexpr auto reply_timeout = std::chrono::seconds(5);

struct fake_node_state {
  coordinator_actor coord;
};

/// Sends `xs` to the coordinator as this actor and relays the reply.
template <class Reply, class Self, class... Ts>
caf::result<Reply> relay(Self* self, Ts... xs) {
  auto rp = self->template make_response_promise<Reply>();
  self->request(self->state.coord, reply_timeout, std::move(xs)...)
      .then([rp](Reply& r) mutable { rp.deliver(std::move(r)); },
            [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
  return rp;
}

/// A node: hands every assignment and cancel to the test, and sends what the
/// test gives it to the coordinator as itself.
caf::behavior fake_node(caf::stateful_actor<fake_node_state>* self, caf::actor sink) {
  return {
      [sink](video_task& t) {
        caf::anon_send(sink, t);
        return caf::ok_atom::value;
      },
      [sink](cancel_atom, uint64_t video) { caf::anon_send(sink, cancel_atom::value, video); },
      [self](coordinator_actor& c) { self->state.coord = std::move(c); },
      [self](node_info& info) {
        return relay<node_welcome>(self, std::move(info), caf::actor_cast<node_actor>(self));
      },
      [self](challenge_atom) { return relay<std::string>(self, challenge_atom::value); },
      [self](result_batch& b) { return relay<batch_ack>(self, std::move(b)); },
      [self](result_batches& m) { return relay<batch_outcomes>(self, std::move(m)); },
      [self](video_report& r) { return relay<caf::ok_atom>(self, std::move(r)); },
      [self](artifact_chunk& c) { return relay<uint64_t>(self, std::move(c)); },
      [self](node_status& s) {
        self->send(self->state.coord, std::move(s));
        return caf::ok_atom::value;  // sent before this reply: the test's next request comes after it
      },
      // A barrier: answered after everything this node got before it was passed on.
      [](caf::ok_atom) { return caf::ok_atom::value; },
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
    node = spawn_node();
  }

  void TearDown() override {
    stop();
    for (auto& n : nodes)
      caf::anon_send_exit(n, caf::exit_reason::kill);
    std::filesystem::remove_all(dir);
  }

  void start() {
    auto store = job_store::open(dir);
    ASSERT_TRUE(store.ok()) << store.error();
    auto blobs = blob_store::open(dir, blob_limits{});
    ASSERT_TRUE(blobs.ok()) << blobs.error();
    coord = spawn_coordinator(sys, std::move(*store), options, std::move(*blobs));
    for (auto& n : nodes)
      self->send(n, coord);
  }

  void stop() {
    self->monitor(coord);
    caf::anon_send_exit(coord, caf::exit_reason::kill);
    self->receive([](const caf::down_msg&) {});
  }

  void restart_with(const coordinator_options& o) {
    stop();
    options = o;
    start();
  }

  caf::actor spawn_node() {
    auto n = sys.spawn(fake_node, caf::actor_cast<caf::actor>(self));
    self->send(n, coord);
    nodes.push_back(n);
    return n;
  }

  /// The reply of `to` to `args`, or a test failure naming the error.
  template <class T, class Handle, class... Ts>
  T ask_to(const Handle& to, Ts&&... args) {
    T out{};
    self->request(to, reply_timeout, std::forward<Ts>(args)...)
        .receive([&](T& x) { out = std::move(x); },
                 [&](caf::error& e) { ADD_FAILURE() << "error reply: " << describe(e); });
    return out;
  }

  /// The error `to` answers `args` with (code 0 and "" if it succeeded).
  template <class T, class Handle, class... Ts>
  std::pair<uint8_t, std::string> error_of(const Handle& to, Ts&&... args) {
    std::pair<uint8_t, std::string> out{0, ""};
    self->request(to, reply_timeout, std::forward<Ts>(args)...)
        .receive([&](T&) {},
                 [&](caf::error& e) {
                   out = {e.code(), describe(e)};
                 });
    return out;
  }

  template <class T, class... Ts>
  T ask(Ts&&... args) {
    return ask_to<T>(coord, std::forward<Ts>(args)...);
  }

  template <class T, class... Ts>
  std::string ask_error(Ts&&... args) {
    return error_of<T>(coord, std::forward<Ts>(args)...).second;
  }

  static node_info info_of(const std::string& name, std::vector<uint64_t> running = {}) {
    node_info info;
    info.name = name;
    info.cores = 2;
    info.running = std::move(running);
    return info;
  }

  void register_node(const std::string& name, std::vector<uint64_t> running = {}) {
    ask_to<node_welcome>(node, info_of(name, std::move(running)));
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
      b.frames.push_back({f, f * 40, analysis::encode_result({{"ms", 1.0}, {"brightness", 5.0}})});
    return b;
  }

  static video_report report(const video_task& t, video_outcome outcome,
                             const std::string& node_name = "n1") {
    video_report r;
    r.video = t.video;
    r.epoch = t.epoch;
    r.node = node_name;
    r.outcome = outcome;
    r.frames_total = 6;
    return r;
  }

  /// The coordinator's refusal count under `key`.
  uint64_t refusals(const std::string& key) {
    for (const auto& r : ask<cluster_nodes>(nodes_atom::value).refusals)
      if (r.reason == key)
        return r.count;
    return 0;
  }

  /// Waits (bounded) until the coordinator has no node registered: it processed their down messages.
  void wait_for_no_nodes() {
    for (int i = 0; i < 1000 && !ask<cluster_nodes>(nodes_atom::value).nodes.empty(); ++i)
      self->receive(caf::after(std::chrono::milliseconds(5)) >> [] {});
    ASSERT_TRUE(ask<cluster_nodes>(nodes_atom::value).nodes.empty());
  }

  static constexpr uint8_t code(errc e) { return static_cast<uint8_t>(e); }

  config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  std::string dir;
  coordinator_options options;
  coordinator_actor coord;
  std::vector<caf::actor> nodes;
  caf::actor node;  ///< the first fake node (it registers as n1)
};

TEST_F(CoordinatorActor, InputWithByte0xffIsAnalysedReportedAndSurvivesARestart) {
  const std::string input = "/tmp/clip\xff\xfe.mp4";
  const auto job = ask<uint64_t>(job_spec{{input}, {"stats"}, 1});
  register_node("n1");
  const video_task t = next_task();
  EXPECT_EQ(t.input, input);
  EXPECT_EQ(t.epoch, 1u);
  EXPECT_EQ(t.decode_from, 0);

  EXPECT_EQ(ask_to<batch_ack>(node, batch(t, {0, 1, 2, 3})).watermark, 3);
  auto never = batch(t, {4});
  never.epoch = t.epoch + 1;
  EXPECT_EQ(error_of<batch_ack>(node, never).first, code(errc::refused));
  // The `node` field is the sender's word, not its identity: stored as n1's.
  EXPECT_EQ(ask_to<batch_ack>(node, batch(t, {4}, "intruder")).watermark, 4);

  auto status = ask<job_status>(status_atom::value, job);
  ASSERT_EQ(status.videos.size(), 1u);
  EXPECT_EQ(status.videos[0].input, input);
  EXPECT_EQ(status.videos[0].state, video_state::running);
  EXPECT_EQ(ask<cluster_nodes>(nodes_atom::value).nodes.at(0).running, 1u);

  // Restart: the node comes back claiming the video, which goes on under its epoch.
  stop();
  start();
  register_node("n1", {t.video});
  EXPECT_EQ(ask_to<batch_ack>(node, batch(t, {4, 5})).watermark, 5);
  ask_to<caf::ok_atom>(node, report(t, video_outcome::done));

  const auto results = ask<job_results>(results_atom::value, job, true);
  EXPECT_EQ(results.state, job_state::done);
  ASSERT_EQ(results.videos.size(), 1u);
  EXPECT_EQ(results.videos[0].input, input);
  EXPECT_EQ(results.videos[0].frames_total, 6);
  ASSERT_EQ(results.videos[0].analyzers.size(), 1u);
  EXPECT_EQ(results.videos[0].analyzers[0].frames.size(), 6u);
  EXPECT_EQ(results.videos[0].analyzers[0].result_nodes, std::vector<std::string>{"n1"});
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

// -- identity from the connection ----------------------------------------------------------

TEST_F(CoordinatorActor, ANameHeldByALiveNodeCannotBeTakenOverButComesBackAfterItsDeath) {
  register_node("n1");
  const auto rogue = spawn_node();
  const auto takeover = error_of<node_welcome>(rogue, info_of("n1"));
  EXPECT_EQ(takeover.first, code(errc::refused));
  EXPECT_NE(takeover.second.find("held by a live node"), std::string::npos) << takeover.second;
  EXPECT_EQ(refusals(refusal_key::name_taken), 1u);
  // The holder may register again (a reconnect); one actor cannot hold two names.
  register_node("n1");
  EXPECT_EQ(error_of<node_welcome>(node, info_of("n2")).first, code(errc::refused));
  EXPECT_EQ(refusals(refusal_key::already_registered), 1u);
  // A registration that hands over another actor's handle is refused too.
  EXPECT_EQ(error_of<node_welcome>(coord, info_of("n3"), caf::actor_cast<node_actor>(rogue)).first,
            code(errc::refused));
  EXPECT_EQ(refusals(refusal_key::handle_mismatch), 1u);
  // The holder dies; once the coordinator has seen it go, the name is free.
  caf::anon_send_exit(node, caf::exit_reason::kill);
  wait_for_no_nodes();
  ask_to<node_welcome>(rogue, info_of("n1"));
  const auto nodes_now = ask<cluster_nodes>(nodes_atom::value);
  ASSERT_EQ(nodes_now.nodes.size(), 1u);
  EXPECT_EQ(nodes_now.nodes[0].name, "n1");
}

TEST_F(CoordinatorActor, ResultsReportsAndStatusCountOnlyFromTheActorHoldingTheAssignment) {
  const auto job = ask<uint64_t>(job_spec{{"/v/a.mp4"}, {"stats"}, 1});
  register_node("n1");
  const video_task t = next_task();
  const auto other = spawn_node();
  ask_to<node_welcome>(other, info_of("n2"));

  // Not a node at all (the test's own actor), and a node that does not hold it, both naming n1.
  EXPECT_EQ(error_of<batch_ack>(coord, batch(t, {0, 1})).first, code(errc::refused));
  EXPECT_EQ(error_of<batch_ack>(other, batch(t, {0, 1})).first, code(errc::refused));
  EXPECT_EQ(error_of<caf::ok_atom>(coord, report(t, video_outcome::done)).first, code(errc::refused));
  EXPECT_EQ(error_of<caf::ok_atom>(other, report(t, video_outcome::failed)).first, code(errc::refused));
  EXPECT_EQ(refusals(refusal_key::not_registered), 2u);
  EXPECT_EQ(refusals(refusal_key::not_assigned), 2u);
  // Nothing was stored or decided.
  EXPECT_EQ(ask<job_results>(results_atom::value, job, true).videos.at(0).analyzers.at(0).frames.size(), 0u);
  EXPECT_EQ(ask<job_status>(status_atom::value, job).videos.at(0).state, video_state::running);

  // A status under n1's name from n2 is refused; n1's own is taken.
  node_status forged;
  forged.node = "n1";
  forged.entries.push_back(tree_entry{});
  forged.entries.back().id = "node:n1";
  ask_to<caf::ok_atom>(other, forged);
  EXPECT_EQ(refusals(refusal_key::name_mismatch), 1u);
  EXPECT_EQ(ask<cluster_tree>(tree_atom::value).entries.size(), 1u);
  ask_to<caf::ok_atom>(node, forged);
  EXPECT_EQ(ask<cluster_tree>(tree_atom::value).entries.size(), 2u);

  // The holder's results and report count.
  EXPECT_EQ(ask_to<batch_ack>(node, batch(t, {0, 1, 2, 3, 4, 5})).watermark, 5);
  ask_to<caf::ok_atom>(node, report(t, video_outcome::done));
  EXPECT_EQ(ask<job_status>(status_atom::value, job).state, job_state::done);
}

TEST_F(CoordinatorActor, AFormerHolderIsToldItsAssignmentIsStaleAndItsLateReportIsTaken) {
  ask<uint64_t>(job_spec{{"/v/a.mp4"}, {"stats"}, 1});
  register_node("n1");
  const video_task first = next_task();
  const auto other = spawn_node();
  ask_to<node_welcome>(other, info_of("n2"));
  // n1 has no room: the video goes to n2 under a new epoch.
  ask_to<caf::ok_atom>(node, report(first, video_outcome::retry_later));
  const video_task second = next_task();
  EXPECT_EQ(second.video, first.video);
  EXPECT_EQ(second.epoch, first.epoch + 1);
  // n1's late batch: stale (the node stops the video); its report again: taken, nothing recorded.
  EXPECT_EQ(error_of<batch_ack>(node, batch(first, {0})).first, code(errc::stale_epoch));
  EXPECT_EQ(refusals(refusal_key::stale_epoch), 1u);
  ask_to<caf::ok_atom>(node, report(first, video_outcome::done));
  EXPECT_EQ(ask_to<batch_ack>(other, batch(second, {0, 1})).watermark, 1);
}

TEST_F(CoordinatorActor, ANodeRejoiningWithAVideoGivenAwayIsToldToDropItAndItsClaimCountsAsStale) {
  ask<uint64_t>(job_spec{{"/v/a.mp4"}, {"stats"}, 1});
  register_node("n1");
  const video_task first = next_task();
  const auto other = spawn_node();
  ask_to<node_welcome>(other, info_of("n2"));
  ask_to<caf::ok_atom>(node, report(first, video_outcome::retry_later));
  const video_task second = next_task();
  ASSERT_EQ(second.epoch, first.epoch + 1);
  // n1 registers again, still running the video it had under the first epoch.
  register_node("n1", {first.video});
  EXPECT_EQ(refusals(refusal_key::stale_epoch), 1u);
  uint64_t dropped = 0;
  self->receive([&](cancel_atom, uint64_t video) { dropped = video; },
                caf::after(reply_timeout) >> [] { ADD_FAILURE() << "n1 was not told to drop the video"; });
  EXPECT_EQ(dropped, first.video);
  EXPECT_EQ(ask_to<batch_ack>(other, batch(second, {0, 1}, "n2")).watermark, 1);
}

// -- limits ------------------------------------------------------------------------------

TEST_F(CoordinatorActor, AJobOverALimitIsAnErrorNamingTheLimitAndNothingIsQueued) {
  coordinator_options o;
  o.limits.max_inputs_per_job = 2;
  o.limits.max_input_bytes = 64;
  o.limits.max_queued_videos = 3;
  restart_with(o);
  const auto inputs = error_of<uint64_t>(coord, job_spec{{"/v/a", "/v/b", "/v/c"}, {"stats"}, 1});
  EXPECT_EQ(inputs.first, code(errc::over_limit));
  EXPECT_NE(inputs.second.find("max_inputs_per_job = 2"), std::string::npos) << inputs.second;
  const auto analyzers =
      error_of<uint64_t>(coord, job_spec{{"/v/a"}, std::vector<std::string>(33, "stats"), 1});
  EXPECT_EQ(analyzers.first, code(errc::over_limit));
  EXPECT_NE(analyzers.second.find("max_analyzers_per_job = 32"), std::string::npos) << analyzers.second;
  EXPECT_EQ(error_of<uint64_t>(coord, job_spec{{std::string(65, 'x')}, {"stats"}, 1}).first,
            code(errc::over_limit));
  EXPECT_TRUE(ask<cluster_status>(status_atom::value).jobs.empty());
  // The queue: 2 + 2 > 3 (no node, nothing runs).
  ask<uint64_t>(job_spec{{"/v/a", "/v/b"}, {"stats"}, 1});
  const auto queue = error_of<uint64_t>(coord, job_spec{{"/v/c", "/v/d"}, {"stats"}, 1});
  EXPECT_EQ(queue.first, code(errc::over_limit));
  EXPECT_NE(queue.second.find("max_queued_videos"), std::string::npos) << queue.second;
  EXPECT_EQ(ask<cluster_status>(status_atom::value).jobs.size(), 1u);
  EXPECT_EQ(refusals("max_inputs_per_job"), 1u);
  EXPECT_EQ(refusals("max_queued_videos"), 1u);
}

TEST_F(CoordinatorActor, NodeFiguresOverTheLimitsAreRefused) {
  auto zero = info_of("n1");
  zero.cores = 0;
  EXPECT_EQ(error_of<node_welcome>(node, zero).first, code(errc::invalid_request));
  auto greedy = info_of("n1");
  greedy.cores = 4'000'000'000u;
  const auto cores = error_of<node_welcome>(node, greedy);
  EXPECT_EQ(cores.first, code(errc::over_limit));
  EXPECT_NE(cores.second.find("max_node_cores"), std::string::npos) << cores.second;
  auto shm = info_of("n1");
  shm.shm_budget = ~uint64_t{0};
  EXPECT_EQ(error_of<node_welcome>(node, shm).first, code(errc::over_limit));
  EXPECT_TRUE(ask<cluster_nodes>(nodes_atom::value).nodes.empty());
  EXPECT_EQ(refusals(refusal_key::bad_node_info), 1u);
}

TEST_F(CoordinatorActor, ABatchOverTheLimitsOrOutsideTheVideoIsRefusedAndMovesNothing) {
  coordinator_options o;
  o.limits.max_frames_per_batch = 8;
  restart_with(o);
  const auto job = ask<uint64_t>(job_spec{{"/v/a.mp4"}, {"stats"}, 1});
  register_node("n1");
  const video_task t = next_task();
  EXPECT_EQ(ask_to<batch_ack>(node, batch(t, {0, 1})).watermark, 1);
  const auto far = error_of<batch_ack>(node, batch(t, {2, 1'000'000'000'000'000}));
  EXPECT_EQ(far.first, code(errc::over_limit));
  EXPECT_NE(far.second.find("frame 1000000000000000 is outside"), std::string::npos) << far.second;
  EXPECT_EQ(error_of<batch_ack>(node, batch(t, {-1})).first, code(errc::invalid_request));
  const auto big = error_of<batch_ack>(node, batch(t, {2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(big.first, code(errc::over_limit));
  EXPECT_NE(big.second.find("max_frames_per_batch = 8"), std::string::npos) << big.second;
  // Once the node reported the video's frame count (its status), frames far past it are refused too.
  node_status st;
  st.node = "n1";
  st.entries.push_back(tree_entry{});
  st.entries.back().id = "video:" + std::to_string(t.video);
  st.entries.back().kind = actor_kind::video;
  st.entries.back().total = 100;
  ask_to<caf::ok_atom>(node, st);
  EXPECT_EQ(error_of<batch_ack>(node, batch(t, {2, 100'000})).first, code(errc::over_limit));
  EXPECT_EQ(refusals(refusal_key::frame_range), 3u);
  EXPECT_EQ(refusals("max_frames_per_batch"), 1u);
  // Nothing of the refused batches was stored; the watermark did not move.
  EXPECT_EQ(ask<job_results>(results_atom::value, job, true).videos.at(0).analyzers.at(0).frames.size(), 2u);
  EXPECT_EQ(ask_to<batch_ack>(node, batch(t, {2})).watermark, 2);
}

TEST_F(CoordinatorActor, BatchesInOneMessageAreEachStoredOrRefusedOnTheirOwnInOrder) {
  coordinator_options o;
  o.limits.max_frames_per_batch = 8;
  o.limits.max_batches_per_message = 4;
  restart_with(o);
  const auto job = ask<uint64_t>(job_spec{{"/v/a.mp4"}, {"stats"}, 1});
  register_node("n1");
  const video_task t = next_task();
  auto other = t;
  other.video = t.video + 1000;  // no such video
  result_batches m;
  m.batches = {batch(t, {0, 1, 2}), batch(t, {3, 4, 5, 6, 7, 8, 9, 10, 11}), batch(other, {0}), batch(t, {3, 4})};
  const auto r = ask_to<batch_outcomes>(node, m);
  ASSERT_EQ(r.outcomes.size(), 4u);
  EXPECT_FALSE(r.outcomes[0].error);
  EXPECT_EQ(r.outcomes[0].ack.watermark, 2);
  EXPECT_EQ(r.outcomes[0].ack.stored, 3u);
  EXPECT_EQ(r.outcomes[1].error.code(), code(errc::over_limit));  // 9 frames: refused alone
  EXPECT_TRUE(r.outcomes[2].error);                                // not this node's video
  EXPECT_FALSE(r.outcomes[3].error);
  EXPECT_EQ(r.outcomes[3].ack.watermark, 4);  // after the first: answered in order
  EXPECT_EQ(ask<job_results>(results_atom::value, job, true).videos.at(0).analyzers.at(0).frames.size(), 5u);
  // More batches than the limit: the message is refused whole, nothing stored.
  m.batches = {batch(t, {5}), batch(t, {6}), batch(t, {7}), batch(t, {8}), batch(t, {9})};
  const auto over = error_of<batch_outcomes>(node, m);
  EXPECT_EQ(over.first, code(errc::over_limit));
  EXPECT_NE(over.second.find("max_batches_per_message = 4"), std::string::npos) << over.second;
  EXPECT_EQ(ask<job_results>(results_atom::value, job, true).videos.at(0).analyzers.at(0).frames.size(), 5u);
}

// -- challenges (a coordinator with a cluster CA) -----------------------------------------------

class CoordinatorActorWithCa : public CoordinatorActor {
 protected:
  void SetUp() override {
    CoordinatorActor::SetUp();
    pki = dir + "/pki";
    ASSERT_TRUE(create_ca(pki).ok());
    for (const auto& [name, role] :
         {std::pair{"n1", cert_role::node}, {"n2", cert_role::node}, {"cli", cert_role::client}})
      ASSERT_TRUE(issue_certificate(pki, name, role).ok());
    coordinator_options o;
    o.tls_ca = pki + "/ca.crt";
    restart_with(o);
  }

  /// `info` for `name`, carrying `cert`'s certificate and its key's signature over `challenge`.
  node_info signed_info(const std::string& name, const std::string& cert, const std::string& challenge) {
    auto info = info_of(name);
    auto pem = read_certificate(pki + "/" + cert + ".crt");
    EXPECT_TRUE(pem.ok());
    auto sig = sign_challenge(pki + "/" + cert + ".key", challenge);
    EXPECT_TRUE(sig.ok());
    info.certificate = pem ? *pem : "";
    info.proof = sig ? *sig : "";
    return info;
  }

  std::string pki;
};

TEST_F(CoordinatorActorWithCa, ANodeRegistersWithItsCertificateAndASignedChallengeUsedOnce) {
  const auto challenge = ask_to<std::string>(node, challenge_atom::value);
  EXPECT_GE(challenge.size(), 32u);
  const auto info = signed_info("n1", "n1", challenge);
  ask_to<node_welcome>(node, info);
  EXPECT_EQ(ask<cluster_nodes>(nodes_atom::value).nodes.size(), 1u);
  // The same answer again (a replay): the challenge was used.
  const auto replay = error_of<node_welcome>(node, info);
  EXPECT_EQ(replay.first, code(errc::refused));
  EXPECT_EQ(refusals(refusal_key::no_challenge), 1u);
}

TEST_F(CoordinatorActorWithCa, NoChallengeAnotherNamesCertificateOrAClientCertificateIsRefused) {
  EXPECT_EQ(error_of<node_welcome>(node, info_of("n1")).first, code(errc::refused));
  EXPECT_EQ(refusals(refusal_key::no_challenge), 1u);
  // n2's certificate for the name n1, and a client certificate.
  for (const char* cert : {"n2", "cli"}) {
    const auto c = ask_to<std::string>(node, challenge_atom::value);
    EXPECT_EQ(error_of<node_welcome>(node, signed_info("n1", cert, c)).first, code(errc::refused)) << cert;
  }
  // A challenge issued to another actor does not count for this one.
  const auto other = spawn_node();
  const auto theirs = ask_to<std::string>(other, challenge_atom::value);
  EXPECT_EQ(error_of<node_welcome>(node, signed_info("n1", "n1", theirs)).first, code(errc::refused));
  EXPECT_EQ(refusals(refusal_key::bad_proof), 2u);
  EXPECT_EQ(refusals(refusal_key::no_challenge), 2u);
  EXPECT_TRUE(ask<cluster_nodes>(nodes_atom::value).nodes.empty());
}

// -- erasing and retention --------------------------------------------------------------------

TEST_F(CoordinatorActor, ARunningJobIsNotErasedAFinishedOneIsErasedWhole) {
  const auto job = ask<uint64_t>(job_spec{{"/v/a.mp4"}, {"stats"}, 1});
  register_node("n1");
  const video_task t = next_task();
  EXPECT_EQ(error_of<caf::ok_atom>(coord, erase_atom::value, job).first, code(errc::invalid_request));
  EXPECT_EQ(error_of<caf::ok_atom>(coord, erase_atom::value, uint64_t{999}).first, code(errc::not_found));
  ask_to<batch_ack>(node, batch(t, {0, 1, 2}));
  ask_to<caf::ok_atom>(node, report(t, video_outcome::done));
  ask<caf::ok_atom>(erase_atom::value, job);
  EXPECT_EQ(ask_error<job_status>(status_atom::value, job), "no job " + std::to_string(job));
  EXPECT_TRUE(ask<cluster_status>(status_atom::value).jobs.empty());
  // Its node's late report about the erased video is taken (it would otherwise send it for ever).
  ask_to<caf::ok_atom>(node, report(t, video_outcome::done));
}

// -- blobs: uploads, fetches, artifacts -----------------------------------------------------

std::string sha_of(const std::string& bytes) {
  framehive::sha256 h;
  h.update(bytes.data(), bytes.size());
  return h.hex_digest();
}

std::vector<char> bytes_of(const std::string& s) {
  return {s.begin(), s.end()};
}

TEST_F(CoordinatorActor, AnUploadIsStoredOnceAndFetchedInRanges) {
  const std::string video = "not really a video, but bytes all the same";
  const std::string sha = sha_of(video);
  auto offer = ask<upload_offer>(upload_begin{sha, video.size(), "clip.mp4"});
  EXPECT_FALSE(offer.complete);
  EXPECT_EQ(offer.offset, 0u);
  // Not visible before its last byte.
  EXPECT_EQ(ask<uint64_t>(upload_chunk{offer.upload, 0, bytes_of(video.substr(0, 10))}), 10u);
  EXPECT_EQ(error_of<blob_chunk>(coord, fetch_atom::value, sha, uint64_t{0}).first, code(errc::not_found));
  // A gap, an oversized chunk and an unknown session are refused.
  EXPECT_EQ(error_of<uint64_t>(coord, upload_chunk{offer.upload, 12, bytes_of("xx")}).first,
            code(errc::invalid_request));
  EXPECT_EQ(error_of<uint64_t>(coord, upload_chunk{offer.upload, 10, std::vector<char>(blob_chunk_bytes + 1)})
                .first,
            code(errc::invalid_request));
  EXPECT_EQ(error_of<uint64_t>(coord, upload_chunk{offer.upload + 100, 0, bytes_of("x")}).first,
            code(errc::not_found));
  // Another session of the same bytes resumes where this one stopped.
  const auto resumed = ask<upload_offer>(upload_begin{sha, video.size(), "clip.mp4"});
  EXPECT_EQ(resumed.offset, 10u);
  EXPECT_EQ(ask<uint64_t>(upload_chunk{resumed.upload, 10, bytes_of(video.substr(10))}), video.size());
  EXPECT_TRUE(ask<upload_offer>(upload_begin{sha, video.size(), "again.mp4"}).complete);

  const auto head = ask<blob_chunk>(fetch_atom::value, sha, uint64_t{0});
  EXPECT_EQ(head.size, video.size());
  EXPECT_EQ(std::string(head.data.begin(), head.data.end()), video);
  const auto tail = ask<blob_chunk>(fetch_atom::value, sha, uint64_t{30});
  EXPECT_EQ(std::string(tail.data.begin(), tail.data.end()), video.substr(30));
  EXPECT_TRUE(ask<blob_chunk>(fetch_atom::value, sha, uint64_t{1000}).data.empty());
  EXPECT_EQ(error_of<blob_chunk>(coord, fetch_atom::value, std::string(64, 'e'), uint64_t{0}).first,
            code(errc::not_found));
  EXPECT_EQ(error_of<upload_offer>(coord, upload_begin{"not-a-hash", 3, "x"}).first,
            code(errc::invalid_request));

  // A mismatch is an error and leaves nothing behind.
  const std::string liar = "announced";
  const auto bad = ask<upload_offer>(upload_begin{sha_of(liar), liar.size(), "liar.mp4"});
  const auto mismatch = error_of<uint64_t>(coord, upload_chunk{bad.upload, 0, bytes_of("annoUnced")});
  EXPECT_EQ(mismatch.first, code(errc::invalid_request));
  EXPECT_NE(mismatch.second.find("SHA-256"), std::string::npos) << mismatch.second;
  EXPECT_EQ(error_of<blob_chunk>(coord, fetch_atom::value, sha_of(liar), uint64_t{0}).first,
            code(errc::not_found));
}

artifact_chunk artifact(const video_task& t, const std::string& name, const std::string& bytes,
                        uint64_t offset, uint64_t length) {
  artifact_chunk c;
  c.video = t.video;
  c.epoch = t.epoch;
  c.analyzer = "stats";
  c.name = name;
  c.total = bytes.size();
  c.offset = offset;
  c.data = bytes_of(bytes.substr(offset, length));
  return c;
}

TEST_F(CoordinatorActor, ArtifactsFromTheHolderAreListedInResultsAndErasedWithTheJob) {
  const auto job = ask<uint64_t>(job_spec{{"/v/a.mp4"}, {"stats"}, 1});
  register_node("n1");
  const video_task t = next_task();
  const auto other = spawn_node();
  ask_to<node_welcome>(other, info_of("n2"));
  const std::string thumb = "thumbnail bytes, in two chunks";

  // Only the node holding the assignment may send artifacts of the video.
  EXPECT_EQ(error_of<uint64_t>(other, artifact(t, "t.jpg", thumb, 0, 10)).first, code(errc::refused));
  EXPECT_EQ(error_of<uint64_t>(coord, artifact(t, "t.jpg", thumb, 0, 10)).first, code(errc::refused));
  EXPECT_EQ(error_of<uint64_t>(node, artifact(t, "../t.jpg", thumb, 0, 10)).first,
            code(errc::invalid_request));
  EXPECT_EQ(error_of<uint64_t>(node, artifact(t, "t.jpg", thumb, 5, 10)).first, code(errc::not_found));

  EXPECT_EQ(ask_to<uint64_t>(node, artifact(t, "t.jpg", thumb, 0, 10)), 10u);
  EXPECT_TRUE(ask<job_artifacts>(artifacts_atom::value, job).artifacts.empty());  // not complete yet
  EXPECT_EQ(ask_to<uint64_t>(node, artifact(t, "t.jpg", thumb, 10, 100)), thumb.size());

  const auto listed = ask<job_artifacts>(artifacts_atom::value, job);
  ASSERT_EQ(listed.artifacts.size(), 1u);
  const artifact_row& a = listed.artifacts[0];
  EXPECT_EQ(a.video, t.video);
  EXPECT_EQ(a.analyzer, "stats");
  EXPECT_EQ(a.name, "t.jpg");
  EXPECT_EQ(a.size, thumb.size());
  EXPECT_EQ(a.sha256, sha_of(thumb));
  const auto fetched = ask<blob_chunk>(fetch_atom::value, a.sha256, uint64_t{0});
  EXPECT_EQ(std::string(fetched.data.begin(), fetched.data.end()), thumb);
  const auto results = ask<job_results>(results_atom::value, job, false);
  ASSERT_EQ(results.videos.at(0).artifacts.size(), 1u);
  EXPECT_EQ(results.videos.at(0).artifacts[0].sha256, a.sha256);
  EXPECT_EQ(error_of<job_artifacts>(coord, artifacts_atom::value, uint64_t{999}).first,
            code(errc::not_found));

  // Retention follows the job's: erased with it, rows and bytes.
  ask_to<batch_ack>(node, batch(t, {0, 1, 2}));
  ask_to<caf::ok_atom>(node, report(t, video_outcome::done));
  ask<caf::ok_atom>(erase_atom::value, job);
  EXPECT_EQ(error_of<job_artifacts>(coord, artifacts_atom::value, job).first, code(errc::not_found));
  EXPECT_EQ(error_of<blob_chunk>(coord, fetch_atom::value, a.sha256, uint64_t{0}).first,
            code(errc::not_found));
}

TEST_F(CoordinatorActor, RetentionSweepErasesOnlyFinishedJobsOlderThanTheRetention) {
  const auto old_job = ask<uint64_t>(job_spec{{"/v/a.mp4"}, {"stats"}, 1});
  const auto recent = ask<uint64_t>(job_spec{{"/v/b.mp4"}, {"stats"}, 1});
  const auto queued = ask<uint64_t>(job_spec{{"/v/c.mp4"}, {"stats"}, 1});
  ask<job_status>(cancel_atom::value, old_job);
  ask<job_status>(cancel_atom::value, recent);
  // Ended 31 days ago (the default retention is 30); the queued job's row claims so too.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir + "/framehive.db").c_str(), &db), SQLITE_OK);
  const std::string sql = "UPDATE jobs SET finished = strftime('%s','now') - 31 * 86400 WHERE id IN (" +
                          std::to_string(old_job) + "," + std::to_string(queued) + ")";
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  // Retention 0 keeps everything; the default sweeps at start.
  coordinator_options keep;
  keep.limits.retention_days = 0;
  restart_with(keep);
  EXPECT_EQ(ask<cluster_status>(status_atom::value).jobs.size(), 3u);
  restart_with(coordinator_options{});
  const auto jobs = ask<cluster_status>(status_atom::value).jobs;
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].job, recent);
  EXPECT_EQ(jobs[1].job, queued);
}

// -- a large job: answered at once, scheduled in slices ------------------------------------

/// A job of `n` inputs with one analyzer.
job_spec many_videos(std::size_t n) {
  job_spec spec;
  spec.analyzers = {"stats"};
  for (std::size_t i = 0; i < n; ++i)
    spec.inputs.push_back("/tmp/slice-" + std::to_string(i) + ".mp4");
  return spec;
}

TEST_F(CoordinatorActor, ASubmitIsAnsweredBeforeAnyOfItsVideosIsAssignedAndEachIsAssignedOnce) {
  constexpr std::size_t n = 1000;
  node_info info = info_of("n1");
  info.cores = static_cast<uint32_t>(n);
  ask_to<node_welcome>(node, info);
  // Sent, not requested: the answer arrives as a message among the
  // assignments the fake node passes on, so their order is observable.
  self->send(coord, many_videos(n));
  uint64_t job = 0;
  std::size_t before_answer = 0;
  std::map<uint64_t, int> assigned;
  bool timed_out = false;
  while (job == 0 && !timed_out)
    self->receive([&](uint64_t id) { job = id; },
                  [&](video_task& t) {
                    ++before_answer;
                    ++assigned[t.video];
                  },
                  caf::after(reply_timeout) >> [&] { timed_out = true; });
  ASSERT_NE(job, 0u) << "no answer to the submit";
  EXPECT_EQ(before_answer, 0u) << "the answer waited for assignments";
  while (assigned.size() < n && !timed_out)
    self->receive([&](video_task& t) { ++assigned[t.video]; },
                  caf::after(reply_timeout) >> [&] { timed_out = true; });
  self->receive([&](video_task& t) { ++assigned[t.video]; },
                caf::after(std::chrono::milliseconds(200)) >> [] {});
  ASSERT_EQ(assigned.size(), n);
  for (const auto& [video, times] : assigned)
    EXPECT_EQ(times, 1) << "video " << video;
  std::size_t running = 0;
  for (const auto& v : ask<job_status>(status_atom::value, job).videos)
    running += v.state == video_state::running ? 1 : 0;
  EXPECT_EQ(running, n);
}

TEST_F(CoordinatorActor, ACoordinatorStoppedWhileSchedulingAJobSchedulesTheRestAfterItsRestart) {
  constexpr std::size_t n = 3000;
  coordinator_options o;
  o.limits.max_node_cores = static_cast<uint32_t>(n);
  restart_with(o);
  node_info info = info_of("n1");
  info.cores = static_cast<uint32_t>(n);
  ask_to<node_welcome>(node, info);
  const auto job = ask<uint64_t>(many_videos(n));
  std::map<uint64_t, int> first;
  bool timed_out = false;
  while (first.size() < 150 && !timed_out)
    self->receive([&](video_task& t) { ++first[t.video]; },
                  caf::after(reply_timeout) >> [&] { timed_out = true; });
  stop();  // the job is stored; its videos are partly assigned
  // Every assignment the coordinator sent before it died is in the node's
  // mailbox: the barrier's answer comes after the node passed them all on.
  ask_to<caf::ok_atom>(node, caf::ok_atom::value);
  for (bool more = true; more;)
    self->receive([&](video_task& t) { ++first[t.video]; }, caf::after(std::chrono::seconds(0)) >> [&] { more = false; });
  ASSERT_LT(first.size(), n) << "scheduling finished before the stop; nothing left to restore";
  for (const auto& [video, times] : first)
    EXPECT_EQ(times, 1) << "video " << video;

  // Restart: the node claims what it got; every other video is assigned, once.
  start();
  std::vector<uint64_t> claimed;
  for (const auto& [video, times] : first)
    claimed.push_back(video);
  info.running = claimed;
  ask_to<node_welcome>(node, info);
  std::map<uint64_t, int> rest;
  timed_out = false;
  while (first.size() + rest.size() < n && !timed_out)
    self->receive([&](video_task& t) { ++rest[t.video]; },
                  caf::after(reply_timeout) >> [&] { timed_out = true; });
  self->receive([&](video_task& t) { ++rest[t.video]; }, caf::after(std::chrono::milliseconds(200)) >> [] {});
  EXPECT_EQ(first.size() + rest.size(), n);
  for (const auto& [video, times] : rest) {
    EXPECT_EQ(times, 1) << "video " << video;
    EXPECT_EQ(first.count(video), 0u) << "video " << video << " was assigned before the stop and again after";
  }
  std::size_t running = 0;
  for (const auto& v : ask<job_status>(status_atom::value, job).videos)
    running += v.state == video_state::running ? 1 : 0;
  EXPECT_EQ(running, n);
}

}  // namespace
}  // namespace framehive
