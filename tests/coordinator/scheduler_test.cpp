// The coordinator's scheduler on its own: events in, commands out, time from a
// manual clock. No actors, no processes, no sleeps.

#include "coordinator/scheduler.hpp"

#include <gtest/gtest.h>

#include <map>

namespace framehive {
namespace {

using namespace std::chrono_literals;

/// The job store's answer to "where does this video resume", set by the test.
class fake_resume_points final : public resume_points {
 public:
  std::map<uint64_t, int64_t> frame;
  int64_t resume_frame(uint64_t video) override {
    auto it = frame.find(video);
    return it == frame.end() ? 0 : it->second;
  }
};

template <class C>
std::vector<C> all(const sched_commands& cmds) {
  std::vector<C> out;
  for (const auto& c : cmds)
    if (const auto* x = std::get_if<C>(&c))
      out.push_back(*x);
  return out;
}

/// The node each assigned video went to, in order.
std::vector<std::pair<uint64_t, std::string>> placements(const sched_commands& cmds) {
  std::vector<std::pair<uint64_t, std::string>> out;
  for (const auto& a : all<sched::assign>(cmds))
    out.emplace_back(a.video, a.node);
  return out;
}

using placed = std::vector<std::pair<uint64_t, std::string>>;

class Scheduler : public ::testing::Test {
 protected:
  manual_clock clock;
  fake_resume_points resume;
  scheduler s{clock, resume};
};

// -- placement -------------------------------------------------------------------------

TEST_F(Scheduler, PlacesEachVideoOnTheNodeWithTheLowestRunningPerCore) {
  s.on_node_registered("a", 4, {});
  s.on_node_registered("b", 2, {});
  auto cmds = s.on_submit({1, 2, 3, 4});
  // 1: tie at 0 -> a (first by name); 2: a 1/4 vs b 0/2 -> b; 3: a 1/4 vs b 1/2 -> a;
  // 4: a 2/4 vs b 1/2 -> a (first on a tie).
  EXPECT_EQ(placements(cmds), (placed{{1, "a"}, {2, "b"}, {3, "a"}, {4, "a"}}));
  for (const auto& a : all<sched::assign>(cmds)) {
    EXPECT_EQ(a.epoch, 1u);
    EXPECT_EQ(a.start_frame, 0);
  }
  EXPECT_EQ(s.running_on("a"), 3u);
  EXPECT_EQ(s.running_on("b"), 1u);
}

TEST_F(Scheduler, VideosWaitInOrderUntilANodeHasRoom) {
  s.on_node_registered("a", 1, {});
  EXPECT_EQ(placements(s.on_submit({1, 2, 3})), (placed{{1, "a"}}));
  EXPECT_EQ(s.queued(), 2u);

  auto cmds = s.on_report(1, 1, "a", video_outcome::done, "");
  ASSERT_EQ(all<sched::finish>(cmds).size(), 1u);
  EXPECT_EQ(all<sched::finish>(cmds)[0].state, video_state::done);
  EXPECT_EQ(placements(cmds), (placed{{2, "a"}}));  // first in, first out
  EXPECT_EQ(s.queued(), 1u);
}

TEST_F(Scheduler, NodeThatRanOutOfSharedMemoryIsSkippedUntilOneOfItsVideosEnds) {
  s.on_node_registered("a", 4, {});
  s.on_node_registered("b", 4, {});
  EXPECT_EQ(placements(s.on_submit({1, 2, 3})), (placed{{1, "a"}, {2, "b"}, {3, "a"}}));

  // a has no room for video 3's ring: it goes elsewhere, and a takes nothing new.
  auto cmds = s.on_report(3, 1, "a", video_outcome::retry_later, "no shared memory");
  EXPECT_TRUE(s.is_full("a"));
  ASSERT_EQ(all<sched::requeue>(cmds).size(), 1u);
  EXPECT_EQ(placements(cmds), (placed{{3, "b"}}));
  EXPECT_EQ(placements(s.on_submit({4})), (placed{{4, "b"}}));  // a: 1/4, b: 2/4, but a is full

  // One of a's videos ends: its ring is gone, a takes videos again.
  s.on_report(1, 1, "a", video_outcome::done, "");
  EXPECT_FALSE(s.is_full("a"));
  EXPECT_EQ(placements(s.on_submit({5})), (placed{{5, "a"}}));
}

// -- avoid-lists -----------------------------------------------------------------------

TEST_F(Scheduler, VideoThatEscalatedOnANodeMovesToAnotherFromItsResumeFrame) {
  s.on_node_registered("a", 2, {});
  s.on_node_registered("b", 2, {});
  s.on_submit({1});
  resume.frame[1] = 40;
  auto cmds = s.on_report(1, 1, "a", video_outcome::escalated, "restart limit");
  ASSERT_EQ(all<sched::requeue>(cmds).size(), 1u);
  EXPECT_EQ(all<sched::requeue>(cmds)[0].start_frame, 40);
  ASSERT_EQ(all<sched::assign>(cmds).size(), 1u);
  const auto a = all<sched::assign>(cmds)[0];
  EXPECT_EQ(a.node, "b");  // a is as free, but the video avoids it
  EXPECT_EQ(a.epoch, 2u);
  EXPECT_EQ(a.start_frame, 40);
}

TEST_F(Scheduler, VideoFailsWhenItEscalatedOnEveryNode) {
  s.on_node_registered("a", 2, {});
  s.on_node_registered("b", 2, {});
  s.on_submit({1});
  s.on_report(1, 1, "a", video_outcome::escalated, "restart limit on a");
  auto cmds = s.on_report(1, 2, "b", video_outcome::escalated, "restart limit on b");
  ASSERT_EQ(all<sched::finish>(cmds).size(), 1u);
  EXPECT_EQ(all<sched::finish>(cmds)[0].state, video_state::failed);
  EXPECT_EQ(all<sched::finish>(cmds)[0].reason, "restart limit on b");
  EXPECT_TRUE(all<sched::assign>(cmds).empty());
  EXPECT_TRUE(all<sched::requeue>(cmds).empty());
  EXPECT_FALSE(s.accepts(1, 2, "b"));
}

TEST_F(Scheduler, VideoNoNodeMayTakeDoesNotBlockTheQueue) {
  s.on_node_registered("a", 1, {});
  s.on_node_registered("b", 1, {});
  s.on_submit({1, 2});  // 1 -> a, 2 -> b
  // 1 escalates on a: a is free now, but 1 may only go to b, which is busy.
  auto cmds = s.on_report(1, 1, "a", video_outcome::escalated, "restart limit");
  EXPECT_TRUE(all<sched::assign>(cmds).empty());
  EXPECT_EQ(s.queued(), 1u);
  // 3 is behind 1 in the queue and still gets a.
  EXPECT_EQ(placements(s.on_submit({3})), (placed{{3, "a"}}));
  // b frees up: 1 goes there.
  EXPECT_EQ(placements(s.on_report(2, 1, "b", video_outcome::done, "")), (placed{{1, "b"}}));
}

// -- restart grace ---------------------------------------------------------------------

TEST_F(Scheduler, AfterARestartAClaimedVideoKeepsRunningAndAnUnclaimedOneIsRequeued) {
  resume.frame[2] = 300;
  auto cmds = s.restore({{1, video_state::running, "a", 3, 100},
                         {2, video_state::running, "a", 5, 200},
                         {3, video_state::queued, "", 2, 7}});
  ASSERT_EQ(all<sched::arm_tick>(cmds).size(), 1u);
  EXPECT_EQ(all<sched::arm_tick>(cmds)[0].at_ns, clock.now_ns() + to_ns(restart_grace));
  EXPECT_TRUE(s.accepts(1, 3, "a"));  // while it waits, its node's results still count
  EXPECT_EQ(s.queued(), 1u);

  clock.advance(2s);
  cmds = s.on_node_registered("a", 4, {1});
  // 1 is a's and goes on under its epoch; 2 is not there any more: queued at
  // once from its resume frame, and placed with a new epoch, like 3.
  EXPECT_TRUE(s.accepts(1, 3, "a"));
  EXPECT_EQ(s.running_on("a"), 3u);
  ASSERT_EQ(all<sched::requeue>(cmds).size(), 1u);
  EXPECT_EQ(all<sched::requeue>(cmds)[0].video, 2u);
  EXPECT_EQ(all<sched::requeue>(cmds)[0].start_frame, 300);
  const auto assigned = all<sched::assign>(cmds);
  ASSERT_EQ(assigned.size(), 2u);
  EXPECT_EQ(assigned[0].video, 3u);  // it was queued first
  EXPECT_EQ(assigned[0].epoch, 3u);
  EXPECT_EQ(assigned[0].start_frame, 7);
  EXPECT_EQ(assigned[1].video, 2u);
  EXPECT_EQ(assigned[1].epoch, 6u);
  EXPECT_EQ(assigned[1].start_frame, 300);
  EXPECT_TRUE(all<sched::cancel>(cmds).empty());
}

TEST_F(Scheduler, AfterARestartAVideoWhoseNodeDoesNotComeBackIsRequeuedAtTheDeadlineNotBefore) {
  resume.frame[1] = 50;
  s.restore({{1, video_state::running, "gone", 4, 0}});
  s.on_node_registered("b", 2, {});  // another node is ready, but 1 waits for its own
  clock.advance(restart_grace - 1ms);
  auto cmds = s.on_tick();
  EXPECT_TRUE(all<sched::requeue>(cmds).empty());
  EXPECT_TRUE(all<sched::assign>(cmds).empty());
  ASSERT_EQ(all<sched::arm_tick>(cmds).size(), 1u);  // for the rest of the grace period
  EXPECT_TRUE(s.accepts(1, 4, "gone"));

  clock.advance(1ms);
  cmds = s.on_tick();
  ASSERT_EQ(all<sched::requeue>(cmds).size(), 1u);
  EXPECT_EQ(all<sched::requeue>(cmds)[0].start_frame, 50);
  ASSERT_EQ(all<sched::assign>(cmds).size(), 1u);
  EXPECT_EQ(all<sched::assign>(cmds)[0].node, "b");
  EXPECT_EQ(all<sched::assign>(cmds)[0].epoch, 5u);
  EXPECT_FALSE(s.accepts(1, 4, "gone"));

  // Late: the old node comes back claiming it; it is told to stop.
  cmds = s.on_node_registered("gone", 2, {1});
  ASSERT_EQ(all<sched::cancel>(cmds).size(), 1u);
  EXPECT_EQ(all<sched::cancel>(cmds)[0].node, "gone");
  EXPECT_EQ(all<sched::cancel>(cmds)[0].video, 1u);
  EXPECT_TRUE(s.accepts(1, 5, "b"));
}

// -- epochs ----------------------------------------------------------------------------

TEST_F(Scheduler, ReportsAndResultsOfAnOlderAssignmentAreRefused) {
  s.on_node_registered("a", 2, {});
  s.on_submit({1});
  s.on_node_lost("a");
  auto cmds = s.on_node_registered("b", 2, {});
  ASSERT_EQ(all<sched::assign>(cmds).size(), 1u);
  EXPECT_EQ(all<sched::assign>(cmds)[0].epoch, 2u);

  EXPECT_FALSE(s.accepts(1, 1, "a"));  // the revoked assignment
  EXPECT_FALSE(s.accepts(1, 1, "b"));  // right node, old epoch
  EXPECT_FALSE(s.accepts(1, 2, "a"));  // right epoch, wrong node
  EXPECT_TRUE(s.accepts(1, 2, "b"));
  EXPECT_TRUE(s.on_report(1, 1, "a", video_outcome::done, "").empty());
  EXPECT_TRUE(s.on_report(1, 1, "a", video_outcome::failed, "boom").empty());
  EXPECT_TRUE(s.accepts(1, 2, "b"));  // still running, untouched
}

// -- node loss -------------------------------------------------------------------------

TEST_F(Scheduler, NodeLossRequeuesItsVideosFromTheirResumeFrameWithANewEpoch) {
  s.on_node_registered("a", 2, {});
  s.on_node_registered("b", 1, {});
  s.on_submit({1, 2, 3});  // 1 -> a, 2 -> b, 3 -> a
  resume.frame[1] = 120;
  resume.frame[3] = 9;
  auto cmds = s.on_node_lost("a");
  const auto requeued = all<sched::requeue>(cmds);
  ASSERT_EQ(requeued.size(), 2u);
  EXPECT_EQ(requeued[0].video, 1u);
  EXPECT_EQ(requeued[0].start_frame, 120);
  EXPECT_EQ(requeued[1].video, 3u);
  EXPECT_EQ(requeued[1].start_frame, 9);
  EXPECT_TRUE(all<sched::assign>(cmds).empty());  // b is busy
  EXPECT_EQ(s.queued(), 2u);

  cmds = s.on_node_registered("c", 2, {});
  const auto assigned = all<sched::assign>(cmds);
  ASSERT_EQ(assigned.size(), 2u);
  EXPECT_EQ(assigned[0].video, 1u);
  EXPECT_EQ(assigned[0].node, "c");
  EXPECT_EQ(assigned[0].epoch, 2u);
  EXPECT_EQ(assigned[0].start_frame, 120);
  EXPECT_EQ(assigned[1].start_frame, 9);
}

// -- failures of the coordinator's own ------------------------------------------------------

TEST_F(Scheduler, AssignmentThatCouldNotBeRecordedIsRetriedAfterTheDelay) {
  s.on_node_registered("a", 1, {});
  s.on_submit({1});
  auto cmds = s.on_assign_failed(1, 1, "disk I/O error", assign_retry_delay);
  EXPECT_EQ(all<sched::requeue>(cmds).size(), 1u);
  EXPECT_TRUE(all<sched::assign>(cmds).empty());  // not at once: that would spin
  ASSERT_EQ(all<sched::arm_tick>(cmds).size(), 1u);
  EXPECT_EQ(all<sched::arm_tick>(cmds)[0].at_ns, clock.now_ns() + to_ns(assign_retry_delay));
  EXPECT_TRUE(all<sched::assign>(s.on_tick()).empty());

  clock.advance(assign_retry_delay);
  cmds = s.on_tick();
  ASSERT_EQ(all<sched::assign>(cmds).size(), 1u);
  EXPECT_EQ(all<sched::assign>(cmds)[0].epoch, 2u);
  // A late failure of the older assignment changes nothing.
  EXPECT_TRUE(s.on_assign_failed(1, 1, "timeout").empty());
  EXPECT_TRUE(s.accepts(1, 2, "a"));
}

TEST_F(Scheduler, CancelStopsRunningVideosDropsQueuedOnesAndFreesTheirPlaces) {
  s.on_node_registered("a", 1, {});
  s.on_submit({1, 2});  // 1 runs, 2 waits
  s.on_submit({3});
  auto cmds = s.on_cancel({1, 2});
  ASSERT_EQ(all<sched::cancel>(cmds).size(), 1u);
  EXPECT_EQ(all<sched::cancel>(cmds)[0].video, 1u);
  EXPECT_EQ(all<sched::cancel>(cmds)[0].node, "a");
  EXPECT_EQ(placements(cmds), (placed{{3, "a"}}));
  EXPECT_EQ(s.queued(), 0u);
  EXPECT_FALSE(s.accepts(1, 1, "a"));
  EXPECT_TRUE(s.on_report(1, 1, "a", video_outcome::done, "").empty());
}

// -- slices ------------------------------------------------------------------------------

TEST_F(Scheduler, WithAPassLimitASubmittedJobIsOnlyQueuedThenPlacedInSlicesEachVideoOnce) {
  s.set_pass_limit(10);
  s.on_node_registered("a", 100, {});
  std::vector<uint64_t> job;
  for (uint64_t v = 1; v <= 35; ++v)
    job.push_back(v);
  auto cmds = s.on_submit(job);
  // The submitter's answer waits for nothing: no assignment, one request for a slice.
  EXPECT_TRUE(all<sched::assign>(cmds).empty());
  EXPECT_EQ(all<sched::place_more>(cmds).size(), 1u);
  EXPECT_EQ(s.queued(), 35u);
  std::map<uint64_t, int> times;
  auto count = [&](const sched_commands& c) {
    const auto assigned = all<sched::assign>(c);
    for (const auto& x : assigned)
      ++times[x.video];
    return assigned.size();
  };
  auto first = s.on_tick();
  EXPECT_EQ(placements(first), (placed{{1, "a"}, {2, "a"}, {3, "a"}, {4, "a"}, {5, "a"}, {6, "a"}, {7, "a"},
                                       {8, "a"}, {9, "a"}, {10, "a"}}));
  EXPECT_EQ(all<sched::place_more>(first).size(), 1u);
  count(first);
  for (int round = 0; round < 20 && s.queued() > 0; ++round) {
    // Another event between slices places at most a slice too, and repeats nothing.
    EXPECT_LE(count(s.on_node_registered("a", 100, {})), 10u);
    EXPECT_LE(count(s.on_tick()), 10u);
  }
  // Every video is placed once.
  ASSERT_EQ(times.size(), 35u);
  for (const auto& [video, n] : times)
    EXPECT_EQ(n, 1) << "video " << video;
  EXPECT_EQ(s.queued(), 0u);
  EXPECT_EQ(s.running_on("a"), 35u);
}

}  // namespace
}  // namespace framehive
