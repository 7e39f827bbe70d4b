// video_supervisor: the decisions about one video, driven by a manual clock.
// No processes, no rings, no sleeps: the ring's facts are passed in.

#include "node/video_supervisor.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

using namespace framehive;
using namespace std::chrono_literals;

namespace {

constexpr uint32_t pid_of_worker(uint32_t worker) {
  return 1000 + worker;
}

constexpr role_id stats = 1;   // consumer ring id 1
constexpr role_id motion = 2;  // consumer ring id 2

video_task make_task() {
  video_task t;
  t.job = 1;
  t.video = 7;
  t.epoch = 3;
  t.input = "/videos/clip.mp4";
  t.analyzers = {"stats", "motion"};
  return t;
}

/// The report among `cmds` (which must outlive it), if any.
const video_report* report_in(const supervisor_commands& cmds) {
  for (const auto& c : cmds)
    if (auto* r = std::get_if<report_video>(&c))
      return &r->report;
  return nullptr;
}

std::vector<uint32_t> killed_in(const supervisor_commands& cmds) {
  std::vector<uint32_t> out;
  for (const auto& c : cmds)
    if (auto* k = std::get_if<kill_worker>(&c))
      out.push_back(k->worker);
  return out;
}

std::vector<uint32_t> marked_dead_in(const supervisor_commands& cmds) {
  std::vector<uint32_t> out;
  for (const auto& c : cmds)
    if (auto* m = std::get_if<mark_consumer_dead>(&c))
      out.push_back(m->consumer_id);
  return out;
}

class VideoSupervisor : public ::testing::Test {
 protected:
  void make(supervision_options o = {}) {
    sup = std::make_unique<video_supervisor>(make_task(), "node-a", o, clock);
    video_meta m;
    m.width = 64;
    m.height = 48;
    m.frames = 90;
    sup->start(m);
  }

  /// The decoder and motion on worker 0, stats alone on worker 1.
  void place_all() {
    for (role_id r : sup->unplaced())
      place(r, r == stats ? 1 : 0);
  }

  void place(role_id r, uint32_t worker) { sup->on_placed(r, worker, pid_of_worker(worker)); }

  actor_progress progress(role_id r, actor_state s, int64_t position = 0) {
    const auto& role = sup->roles().at(r);
    actor_progress p;
    p.video = 7;
    p.epoch = 3;
    p.kind = role.kind;
    p.analyzer = role.analyzer;
    p.state = s;
    p.position = position;
    p.frames = position;
    p.pid = pid_of_worker(*role.worker);
    return p;
  }

  /// Worker `w` dies while stats (ring consumer 1) has `frame` in hand.
  supervisor_commands crash(uint32_t w, int64_t frame, const std::string& why = "killed by signal 11") {
    return sup->on_worker_died(w, why, frames_in_hand{{stats, frame}});
  }

  manual_clock clock;
  std::unique_ptr<video_supervisor> sup;
};

}  // namespace

// -- placement ------------------------------------------------------------------------

TEST_F(VideoSupervisor, NothingIsPlacedWhileProbing) {
  video_supervisor s(make_task(), "node-a", {}, clock);
  EXPECT_EQ(s.phase(), video_phase::probing);
  EXPECT_TRUE(s.unplaced().empty());
}

TEST_F(VideoSupervisor, ConsumersArePlacedBeforeTheDecoder) {
  make();
  EXPECT_EQ(sup->unplaced(), (std::vector<role_id>{stats, motion, decoder_role}));
  EXPECT_EQ(sup->roles()[stats].consumer_id, 1u);
  EXPECT_EQ(sup->roles()[motion].consumer_id, 2u);
  place_all();
  EXPECT_TRUE(sup->unplaced().empty());
  EXPECT_EQ(sup->roles()[stats].state, actor_state::starting);
  EXPECT_EQ(sup->workers(), (std::vector<uint32_t>{0, 1}));
}

TEST_F(VideoSupervisor, AFailedStartIsPlacedAgainUnlessTheRoleMovedOn) {
  make();
  place_all();
  sup->on_start_failed(stats, 0);  // not where stats is
  EXPECT_EQ(sup->roles()[stats].state, actor_state::starting);
  sup->on_start_failed(stats, 1);
  EXPECT_EQ(sup->roles()[stats].state, actor_state::lost);
  EXPECT_EQ(sup->unplaced(), std::vector<role_id>{stats});
  EXPECT_EQ(sup->roles()[stats].restarts, 0u) << "a refused start is no restart";
}

// -- completion -------------------------------------------------------------------------

TEST_F(VideoSupervisor, AllRolesDoneReportsDoneWithTheDecodersCounts) {
  make();
  place_all();
  auto d = progress(decoder_role, actor_state::done, 90);
  d.decode_errors = 2;
  EXPECT_TRUE(sup->on_progress(d).empty());
  EXPECT_TRUE(sup->on_progress(progress(stats, actor_state::done, 90)).empty());
  auto cmds = sup->on_progress(progress(motion, actor_state::done, 90));
  const auto* r = report_in(cmds);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->outcome, video_outcome::done);
  EXPECT_EQ(r->video, 7u);
  EXPECT_EQ(r->epoch, 3u);
  EXPECT_EQ(r->node, "node-a");
  EXPECT_EQ(r->frames_total, 90);
  EXPECT_EQ(r->frames_decoded, 90);
  EXPECT_EQ(r->decode_errors, 2);
  EXPECT_EQ(sup->phase(), video_phase::finished);
  EXPECT_TRUE(sup->on_tick().empty()) << "a finished video gives no more commands";
}

TEST_F(VideoSupervisor, AFailedRoleReportsFailedWithItsError) {
  make();
  place_all();
  auto p = progress(decoder_role, actor_state::failed, 12);
  p.error = "/videos/clip.mp4: invalid data found when processing input";
  const auto cmds = sup->on_progress(p);
  const auto* r = report_in(cmds);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->outcome, video_outcome::failed);
  EXPECT_EQ(r->error, p.error);
  EXPECT_EQ(r->frames_total, 12);
}

TEST_F(VideoSupervisor, AFailedRolesReasonNamesTheInput) {
  make();
  place_all();
  auto p = progress(stats, actor_state::failed, 3);
  p.error = "stats results refused: frames in the batch: 8 is over the limit max_frames_per_batch = 4";
  const auto cmds = sup->on_progress(p);
  const auto* r = report_in(cmds);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->error, make_task().input + ": " + p.error);
}

TEST_F(VideoSupervisor, FinishCarriesTheOutcomeAndEndsTheVideo) {
  video_supervisor s(make_task(), "node-a", {}, clock);
  auto r = s.finish(video_outcome::retry_later, "no room");
  EXPECT_EQ(r.outcome, video_outcome::retry_later);
  EXPECT_EQ(r.error, "no room");
  EXPECT_EQ(s.phase(), video_phase::finished);
}

TEST_F(VideoSupervisor, ProgressFromAStaleInstanceIsIgnored) {
  make();
  place_all();
  auto old = progress(stats, actor_state::done, 90);
  old.pid = 4242;  // a process this role is not placed on
  EXPECT_TRUE(sup->on_progress(old).empty());
  EXPECT_EQ(sup->roles()[stats].state, actor_state::starting);
  auto other_epoch = progress(stats, actor_state::running, 5);
  other_epoch.epoch = 2;
  sup->on_progress(other_epoch);
  EXPECT_EQ(sup->roles()[stats].state, actor_state::starting);
  // Lost: its dying instance may still talk; it must not look alive again.
  auto late = progress(stats, actor_state::running, 5);
  crash(1, 4);
  sup->on_progress(late);
  EXPECT_EQ(sup->roles()[stats].state, actor_state::lost);
}

// -- worker deaths ------------------------------------------------------------------------

TEST_F(VideoSupervisor, AWorkersDeathLosesOnlyItsRolesAndFreesTheirRingEntries) {
  make();
  place_all();
  sup->on_progress(progress(decoder_role, actor_state::running, 10));
  auto cmds = sup->on_worker_died(0, "killed by signal 9", {});
  EXPECT_EQ(marked_dead_in(cmds), std::vector<uint32_t>{motion});
  EXPECT_EQ(report_in(cmds), nullptr);
  EXPECT_EQ(sup->roles()[decoder_role].state, actor_state::lost);
  EXPECT_EQ(sup->roles()[motion].state, actor_state::lost);
  EXPECT_EQ(sup->roles()[stats].state, actor_state::starting);
  EXPECT_EQ(sup->roles()[decoder_role].restarts, 1u);
  EXPECT_EQ(sup->unplaced(), (std::vector<role_id>{motion, decoder_role}));
}

TEST_F(VideoSupervisor, ADoneRoleIsNotRestartedWhenItsWorkerDies) {
  make();
  place_all();
  sup->on_progress(progress(stats, actor_state::done, 90));
  auto cmds = crash(1, 89);
  EXPECT_TRUE(cmds.empty());
  EXPECT_EQ(sup->roles()[stats].state, actor_state::done);
  EXPECT_EQ(sup->roles()[stats].restarts, 0u);
}

TEST_F(VideoSupervisor, RestartLimitWithinTheWindowEscalates) {
  supervision_options o;
  o.restart_limit = 2;
  o.restart_window = 10s;
  o.poison_attempts = 100;
  make(o);
  place_all();
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(report_in(crash(1, 30)), nullptr) << "restart " << i + 1 << " is within the limit";
    place(stats, 1);
    clock.advance(3s);
  }
  const auto cmds = crash(1, 30);
  const auto* r = report_in(cmds);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->outcome, video_outcome::escalated);
  EXPECT_EQ(
      r->error,
      "/videos/clip.mp4: stats restarted more than 2 times in 10 s on node node-a (last: worker killed by "
      "signal 11)");
  EXPECT_EQ(sup->phase(), video_phase::finished);
}

TEST_F(VideoSupervisor, RestartsSpreadBeyondTheWindowDoNotEscalate) {
  supervision_options o;
  o.restart_limit = 2;
  o.restart_window = 10s;
  o.poison_attempts = 100;
  make(o);
  place_all();
  for (int i = 0; i < 10; ++i) {
    clock.advance(6s);  // at most two restarts in any 10 s
    ASSERT_EQ(report_in(crash(1, 30)), nullptr) << "restart " << i + 1;
    place(stats, 1);
  }
  EXPECT_EQ(sup->roles()[stats].restarts, 10u);
  EXPECT_EQ(sup->phase(), video_phase::running);
}

// -- poison frames -----------------------------------------------------------------------------

TEST_F(VideoSupervisor, AFrameIsQuarantinedAfterKCrashesOnIt) {
  supervision_options o;
  o.poison_attempts = 3;
  make(o);
  place_all();
  const auto& role = sup->roles()[stats];
  crash(1, 40);
  place(stats, 1);
  crash(1, 41);  // another frame: counted apart
  place(stats, 1);
  crash(1, 40);
  place(stats, 1);
  EXPECT_TRUE(role.quarantine.empty()) << "two crashes on frame 40 are not enough";
  crash(1, 40, "killed by signal 11 (the third)");
  ASSERT_EQ(role.quarantine.size(), 1u);
  EXPECT_EQ(role.quarantine.begin()->first, 40);
  EXPECT_EQ(role.quarantine.begin()->second,
            "analyzer crashed on this frame 3 times (last: worker killed by signal 11 (the third))");
  EXPECT_TRUE(sup->roles()[motion].quarantine.empty()) << "other analyzers are not affected";
  EXPECT_EQ(sup->phase(), video_phase::running) << "a poison frame does not fail the video";
}

TEST_F(VideoSupervisor, AHangKillCountsLikeACrashForTheFrameInHand) {
  supervision_options o;
  o.poison_attempts = 2;
  o.hang_timeout = 2s;
  make(o);
  place_all();
  crash(1, 20);
  place(stats, 1);
  sup->on_progress(progress(decoder_role, actor_state::running, 50));
  sup->on_progress(progress(motion, actor_state::running, 50));
  clock.advance(2s);  // decoder and motion keep talking; stats went silent on frame 20
  sup->on_progress(progress(decoder_role, actor_state::running, 60));
  sup->on_progress(progress(motion, actor_state::running, 60));
  EXPECT_EQ(killed_in(sup->on_tick()), std::vector<uint32_t>{1});
  EXPECT_TRUE(sup->roles()[stats].hung);
  crash(1, 20, "killed by signal 9");
  const auto& q = sup->roles()[stats].quarantine;
  ASSERT_EQ(q.count(20), 1u);
  EXPECT_EQ(q.at(20), "analyzer crashed once and hung once on this frame (last: worker killed by signal 9)");
}

TEST_F(VideoSupervisor, AFrameThatHangsKTimesIsQuarantinedAsHung) {
  supervision_options o;
  o.poison_attempts = 1;
  o.hang_timeout = 2s;
  make(o);
  place_all();
  clock.advance(2s);
  ASSERT_FALSE(killed_in(sup->on_tick()).empty());
  crash(1, 20, "killed by signal 9");
  EXPECT_EQ(sup->roles()[stats].quarantine.at(20),
            "analyzer hung on this frame once (last: worker killed by signal 9)");
}

TEST_F(VideoSupervisor, AnExceptionQuarantinedByTheConsumerCountsNoCrash) {
  // The consumer stores a frame whose analyzer threw as quarantined by itself
  // and goes on; the supervisor sees only progress, and nothing else breaks.
  make();
  place_all();
  sup->on_progress(progress(stats, actor_state::running, 11));
  sup->on_progress(progress(stats, actor_state::running, 30));
  sup->on_progress(progress(decoder_role, actor_state::done, 90));
  sup->on_progress(progress(motion, actor_state::done, 90));
  const auto cmds = sup->on_progress(progress(stats, actor_state::done, 90));
  const auto* r = report_in(cmds);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->outcome, video_outcome::done);
  EXPECT_TRUE(sup->roles()[stats].crashes.empty());
  EXPECT_TRUE(sup->roles()[stats].quarantine.empty());
  EXPECT_EQ(sup->roles()[stats].restarts, 0u);
}

// -- hangs ------------------------------------------------------------------------------------

TEST_F(VideoSupervisor, ARoleSilentForTheHangTimeoutGetsItsWorkerKilledOnce) {
  supervision_options o;
  o.hang_timeout = 2s;
  make(o);
  place_all();
  clock.advance(1999ms);
  EXPECT_TRUE(sup->on_tick().empty());
  sup->on_progress(progress(stats, actor_state::running, 5));
  clock.advance(1ms);
  // Decoder and motion are both silent on worker 0: one kill for the worker.
  auto cmds = sup->on_tick();
  EXPECT_EQ(killed_in(cmds), std::vector<uint32_t>{0});
  EXPECT_NE(std::get<kill_worker>(cmds[0]).reason.find("silent for 2 s"), std::string::npos);
  EXPECT_TRUE(sup->on_tick().empty()) << "no second kill while the first takes effect";
  clock.advance(1999ms);
  EXPECT_EQ(killed_in(sup->on_tick()), std::vector<uint32_t>{1})
      << "stats went silent 2 s after its progress";
}

TEST_F(VideoSupervisor, AWaitingConsumerThatKeepsTalkingIsNotHung) {
  supervision_options o;
  o.hang_timeout = 2s;
  make(o);
  place_all();
  for (int i = 0; i < 10; ++i) {
    clock.advance(1s);
    sup->on_progress(progress(decoder_role, actor_state::running, i));
    sup->on_progress(progress(motion, actor_state::running, i));
    sup->on_progress(progress(stats, actor_state::waiting, 0));
    ASSERT_TRUE(sup->on_tick().empty());
  }
  EXPECT_EQ(sup->roles()[stats].state, actor_state::waiting);
}

TEST_F(VideoSupervisor, RolesWithoutAWorkerAreNeverHung) {
  supervision_options o;
  o.hang_timeout = 2s;
  make(o);  // nothing placed: no worker ready yet
  clock.advance(1h);
  EXPECT_TRUE(sup->on_tick().empty());
}

TEST_F(VideoSupervisor, ResultBatchesAreCheckedForSizeAnalyzerAndDecodedFrames) {
  make();
  result_batch b;
  b.video = 7;
  b.epoch = 3;
  b.analyzer = "stats";
  for (int64_t f = 0; f < 8; ++f)
    b.frames.push_back(frame_result{f, f, ""});  // an empty result: no members
  EXPECT_FALSE(sup->check_batch(b, 32, 8)) << "a batch our consumers send";

  auto too_big = b;
  for (int64_t f = 8; f < 33; ++f)
    too_big.frames.push_back(frame_result{f, f, ""});
  auto r = sup->check_batch(too_big, 32, 100);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, errc::over_limit);
  EXPECT_EQ(r->reason, "a result batch holds at most 32 frames, got 33");

  auto stranger = b;
  stranger.analyzer = "people";
  r = sup->check_batch(stranger, 32, 8);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, errc::refused);
  EXPECT_EQ(r->reason, "video 7 has no analyzer 'people'");

  for (int64_t bad : {int64_t{8}, int64_t{-1}, int64_t{1} << 50}) {
    auto out_of_range = b;
    out_of_range.frames.back().frame = bad;
    r = sup->check_batch(out_of_range, 32, 8);
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->code, errc::invalid_request);
    EXPECT_NE(r->reason.find("frame " + std::to_string(bad) + " is outside video 7 (decoded so far: 8)"),
              std::string::npos)
        << r->reason;
  }

  auto covered = b;
  covered.covered_from = 0;
  covered.covered_through = 7;
  EXPECT_FALSE(sup->check_batch(covered, 32, 8)) << "coverage within the decoded frames";
  covered.covered_through = 8;
  r = sup->check_batch(covered, 32, 8);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, errc::invalid_request);
  EXPECT_NE(r->reason.find("covers frames to 8, past those decoded so far (8)"), std::string::npos) << r->reason;
}

TEST_F(VideoSupervisor, EachConsumerRoleKeepsItsAnalyzersSampling) {
  auto t = make_task();
  t.analyzers = {"stats", "people"};
  sampling rate;
  rate.rate_num = 5;
  t.samplings = {sampling{10}, rate};
  video_supervisor s(t, "n1", supervision_options{}, clock);
  ASSERT_EQ(s.roles().size(), 3u);
  EXPECT_EQ(s.roles()[1].analyzer, "stats");
  EXPECT_EQ(s.roles()[1].take, sampling{10});
  EXPECT_EQ(s.roles()[2].analyzer, "people");
  EXPECT_EQ(s.roles()[2].take, rate);
  // A task without samplings (an older coordinator): every frame.
  video_supervisor plain(make_task(), "n1", supervision_options{}, clock);
  EXPECT_TRUE(plain.roles()[1].take.takes_all());
}

TEST(VideoPhase, HasOneNamePerCase) {
  EXPECT_EQ(to_string(video_phase::probing), "probing");
  EXPECT_EQ(to_string(video_phase::running), "running");
  EXPECT_EQ(to_string(video_phase::finished), "finished");
}
