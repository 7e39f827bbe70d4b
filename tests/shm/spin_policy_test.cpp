// The consumer's spin-before-sleep decision (shm/spin_policy.hpp), driven by
// stated arrival times instead of a clock, and a ring read by a spinning
// consumer, which must see what a sleeping one sees.

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "shm/frame_ring.hpp"
#include "shm/spin_policy.hpp"

using namespace framehive;
using namespace framehive::shm;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t us = 1000;
constexpr uint64_t ms = 1000 * us;

void record_n(spin_policy& p, std::size_t n, uint64_t arrived_after_ns) {
  for (std::size_t i = 0; i < n; ++i)
    p.record(arrived_after_ns);
}

}  // namespace

TEST(SpinPolicy, OffNeverSpins) {
  spin_policy p{spin_mode::off, 50 * us};
  EXPECT_EQ(p.budget_ns(), 0u);
  record_n(p, 32, 1 * us);
  EXPECT_EQ(p.budget_ns(), 0u);
}

TEST(SpinPolicy, AlwaysSpinsTheWholeBound) {
  spin_policy p{spin_mode::always, 30 * us};
  EXPECT_EQ(p.budget_ns(), 30 * us);
  record_n(p, 32, 40 * ms);
  EXPECT_EQ(p.budget_ns(), 30 * us);
}

TEST(SpinPolicy, AdaptiveSleepsUntilItHasSeenAWholeWindow) {
  spin_policy p{spin_mode::adaptive, 50 * us};
  record_n(p, spin_policy::window - 1, 5 * us);
  EXPECT_EQ(p.budget_ns(), 0u);
  p.record(5 * us);
  EXPECT_GT(p.budget_ns(), 0u);
}

TEST(SpinPolicy, AdaptiveSpinsAboutAsLongAsRecentFramesTook) {
  spin_policy p{spin_mode::adaptive, 50 * us};
  record_n(p, spin_policy::window, 10 * us);
  // A quarter more than the waits it must cover, and 2 us for jitter.
  EXPECT_EQ(p.budget_ns(), 10 * us + 10 * us / 4 + 2 * us);
}

TEST(SpinPolicy, AdaptiveSleepsWhenFramesComeAtAVideosRate) {
  spin_policy p{spin_mode::adaptive, 50 * us};
  record_n(p, spin_policy::window, 33 * ms);  // paced 30 frames/s: spinning would never catch one
  EXPECT_EQ(p.budget_ns(), 0u);
}

TEST(SpinPolicy, AdaptiveToleratesAQuarterOfLateFramesButNoMore) {
  spin_policy p{spin_mode::adaptive, 50 * us};
  record_n(p, spin_policy::window - spin_policy::tolerated_long, 8 * us);
  record_n(p, spin_policy::tolerated_long, 5 * ms);
  EXPECT_EQ(p.budget_ns(), 8 * us + 2 * us + 2 * us);
  p.record(5 * ms);  // one more late frame replaces a short one: now most waits would be wasted spins
  EXPECT_EQ(p.budget_ns(), 0u);
}

TEST(SpinPolicy, AdaptiveNeverSpinsPastTheBound) {
  spin_policy p{spin_mode::adaptive, 50 * us};
  record_n(p, spin_policy::window, 45 * us);
  EXPECT_EQ(p.budget_ns(), 50 * us);
  record_n(p, spin_policy::window, 51 * us);
  EXPECT_EQ(p.budget_ns(), 0u);
}

TEST(SpinPolicy, AdaptiveFollowsTheProducerWhenItSlowsDownAndSpeedsUp) {
  spin_policy p{spin_mode::adaptive, 50 * us};
  record_n(p, spin_policy::window, 4 * us);
  EXPECT_GT(p.budget_ns(), 0u);
  record_n(p, spin_policy::window, 6 * ms);  // the decoder became the bottleneck
  EXPECT_EQ(p.budget_ns(), 0u);
  record_n(p, spin_policy::window, 4 * us);
  EXPECT_EQ(p.budget_ns(), 4 * us + 1 * us + 2 * us);
}

TEST(SpinPolicy, ParsesTheModesTheEnvironmentMayName) {
  EXPECT_EQ(parse_spin_mode("off"), spin_mode::off);
  EXPECT_EQ(parse_spin_mode("0"), spin_mode::off);
  EXPECT_EQ(parse_spin_mode("adaptive"), spin_mode::adaptive);
  EXPECT_EQ(parse_spin_mode("always"), spin_mode::always);
  EXPECT_FALSE(parse_spin_mode("fast").has_value());
  EXPECT_STREQ(to_string(spin_mode::adaptive), "adaptive");
}

namespace {

// A consumer attached with `ao`, in this process, against a producer thread
// that publishes some frames at once and some only once the consumer has
// caught up and waits: it must see every frame once, in order, then the end
// of the stream.
void expect_every_frame_in_order(const attach_options& ao, const std::string& tag) {
  ring_options ro;
  ro.name = "fhtest-" + tag + "-" + std::to_string(getpid());
  ro.width = 64;
  ro.height = 16;
  ro.slot_count = 4;
  auto ring = frame_ring::create(ro);
  ASSERT_TRUE(ring) << ring.error().message;
  ASSERT_TRUE(ring->reserve_consumer(1, 0));
  auto consumer = ring_consumer::attach(ro.name, 1, ao);
  ASSERT_TRUE(consumer) << consumer.error().message;
  auto producer = ring_producer::open(ro.name);
  ASSERT_TRUE(producer) << producer.error().message;

  constexpr int frames = 300;
  std::atomic<int> taken{0};  // frames the consumer holds so far
  std::thread writer([&] {
    for (int i = 0; i < frames; ++i) {
      ring_producer::slot s;
      if (producer->acquire(s, 10s) != ring_producer::acquire_status::ready)
        return;
      std::memset(s.pixels, i & 0xff, s.stride);
      frame_info info;
      info.frame_index = i;
      producer->publish(info);
      // Every third frame waits until the consumer has taken it, so the next
      // one comes while the consumer waits (spinning, then on the futex);
      // the others come at once, while it works.
      if (i % 3 == 0) {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (taken.load() <= i && std::chrono::steady_clock::now() < deadline)
          std::this_thread::yield();
      }
    }
    producer->finish();
  });
  std::vector<int64_t> seen;
  frame_view v;
  ring_consumer::read_status st;
  while ((st = consumer->next(v, 10s)) == ring_consumer::read_status::frame) {
    EXPECT_EQ(v.pixels[0], static_cast<uint8_t>(v.frame_index & 0xff));
    seen.push_back(v.frame_index);
    taken.store(static_cast<int>(seen.size()));
    consumer->commit(v.seq);
  }
  writer.join();
  EXPECT_EQ(st, ring_consumer::read_status::end_of_stream);
  ASSERT_EQ(seen.size(), static_cast<std::size_t>(frames));
  for (int i = 0; i < frames; ++i)
    EXPECT_EQ(seen[static_cast<std::size_t>(i)], i);
  consumer->detach();
}

}  // namespace

TEST(FrameRing, SpinningConsumerSeesEveryFrameInOrderAndTheEnd) {
  attach_options ao;
  ao.spin = spin_mode::always;
  ao.max_spin_ns = 200 * us;
  expect_every_frame_in_order(ao, "spin");
}
