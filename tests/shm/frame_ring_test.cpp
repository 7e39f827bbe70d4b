// Multi-process tests of the frame ring: every producer and consumer here is a
// separate process (ring_peer), killed with real signals where the test says so.

#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <boost/interprocess/shared_memory_object.hpp>
#include <gtest/gtest.h>

#include "common/process.hpp"
#include "shm/frame_ring.hpp"
#include "tests/support/wait.hpp"

using namespace framehive;
using namespace std::chrono_literals;
using framehive::testing::read_lines;
using framehive::testing::wait_until;

namespace {

struct seen_frame {
  uint64_t seq;
  int64_t index;
  bool ok;
};

struct consumer_log {
  std::vector<seen_frame> frames;
  std::string end;  // status after "end", empty if none
  uint64_t first = 0, redelivered = 0, lost = 0;
  bool attached = false;
};

consumer_log parse_log(const std::string& path) {
  consumer_log log;
  for (const auto& line : read_lines(path)) {
    std::istringstream in(line);
    std::string kind;
    in >> kind;
    if (kind == "frame") {
      seen_frame f{};
      int ok = 0;
      in >> f.seq >> f.index >> ok;
      f.ok = ok == 1;
      log.frames.push_back(f);
    } else if (kind == "end") {
      in >> log.end;
    } else if (kind == "attached") {
      log.attached = true;
      unsigned long long gen = 0;
      std::sscanf(line.c_str(), "attached gen=%llu first=%lu redelivered=%lu lost=%lu", &gen, &log.first,
                  &log.redelivered, &log.lost);
    }
  }
  return log;
}

class FrameRing : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    name_ = "fhtest-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
    dir_ = std::filesystem::temp_directory_path() / ("fhtest-ring-" + name_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  shm::frame_ring make_ring(uint32_t w, uint32_t h, uint32_t slots) {
    shm::ring_options o;
    o.name = name_;
    o.width = w;
    o.height = h;
    o.slot_count = slots;
    auto r = shm::frame_ring::create(o);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return std::move(*r);
  }

  child_process peer(std::vector<std::string> args, const std::string& out) {
    args.insert(args.begin(), FRAMEHIVE_RING_PEER);
    std::string err;
    auto p = child_process::spawn(args, &err, out);
    EXPECT_TRUE(p) << err;
    return std::move(*p);
  }

  std::string out(const std::string& file) const { return (dir_ / file).string(); }

  child_process producer(long frames, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"produce", name_, std::to_string(frames)};
    args.insert(args.end(), extra.begin(), extra.end());
    return peer(args, out("producer.txt"));
  }

  child_process consumer(uint32_t id, const std::string& file, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"consume", name_, std::to_string(id)};
    args.insert(args.end(), extra.begin(), extra.end());
    return peer(args, out(file));
  }

  static void expect_exit_ok(child_process& p, std::chrono::milliseconds timeout = 60s) {
    auto st = p.wait_for(timeout);
    ASSERT_TRUE(st) << "process " << p.pid() << " still running after " << timeout.count() << " ms";
    EXPECT_TRUE(st->success()) << st->describe();
  }

  /// Every frame in order from `first_seq` to `last_seq` inclusive, each byte-identical.
  static void expect_contiguous(const consumer_log& log, uint64_t first_seq, uint64_t last_seq) {
    ASSERT_EQ(log.frames.size(), last_seq - first_seq + 1);
    for (std::size_t i = 0; i < log.frames.size(); ++i) {
      EXPECT_EQ(log.frames[i].seq, first_seq + i);
      EXPECT_EQ(log.frames[i].index, static_cast<int64_t>(first_seq + i));
      EXPECT_TRUE(log.frames[i].ok) << "frame " << log.frames[i].seq << " differs from what was written";
    }
  }

  std::string name_;
  std::filesystem::path dir_;
};

}  // namespace

TEST(FrameRingOptions, RingLargerThanFreeShmIsRefusedWithAClearError) {
  auto avail = shm::free_bytes(shm::default_shm_dir);
  ASSERT_TRUE(avail);
  shm::ring_options o;
  o.name = "fhtest-huge-" + std::to_string(getpid());
  o.width = 8192;
  o.height = 8192;
  uint64_t per_slot = shm::slot_bytes_for(o.width, o.height);
  o.slot_count = static_cast<uint32_t>(*avail / per_slot + 4);
  auto r = shm::frame_ring::create(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, shm::ring_errc::no_space);
  EXPECT_NE(r.error().message.find(o.name), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("free"), std::string::npos) << r.error().message;
  EXPECT_FALSE(std::filesystem::exists(std::string("/dev/shm/") + o.name));
}

TEST(FrameRingOptions, ByteCapTooSmallForTwoFramesIsRefused) {
  shm::ring_options o;
  o.name = "fhtest-cap-" + std::to_string(getpid());
  o.width = 1920;
  o.height = 1080;
  o.max_bytes = 8 << 20;  // one 1080p BGR frame is 6.2 MB
  auto r = shm::frame_ring::create(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, shm::ring_errc::too_large);
  o.max_bytes = 64 << 20;
  auto capped = shm::frame_ring::create(o);
  ASSERT_TRUE(capped);
  EXPECT_LT(capped->slot_count(), o.slot_count);
  EXPECT_GE(capped->slot_count(), 2u);
}

TEST_F(FrameRing, SegmentIsPrivateToItsUserAndRemovedByItsOwner) {
  std::string path = "/dev/shm/" + name_;
  {
    auto ring = make_ring(64, 48, 4);
    struct stat st{};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(FrameRing, OpeningASegmentThatIsNotARingIsRefused) {
  namespace bip = boost::interprocess;
  bip::shared_memory_object other(bip::create_only, name_.c_str(), bip::read_write);
  other.truncate(1 << 16);
  auto c = shm::ring_consumer::attach(name_, 1);
  bip::shared_memory_object::remove(name_.c_str());
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, shm::ring_errc::bad_layout);
  auto missing = shm::ring_consumer::attach(name_ + "-absent", 1);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, shm::ring_errc::not_found);
}

TEST_F(FrameRing, SecondAttachOfALiveConsumerIdIsRefused) {
  auto ring = make_ring(64, 48, 4);
  auto first = shm::ring_consumer::attach(name_, 7);
  ASSERT_TRUE(first);
  auto second = shm::ring_consumer::attach(name_, 7);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, shm::ring_errc::consumer_busy);
}

TEST_F(FrameRing, FourConsumerProcessesSeeEveryFrameOnceInOrderByteIdentical) {
  auto ring = make_ring(160, 120, 8);
  const long frames = 400;
  std::vector<child_process> consumers;
  for (uint32_t id = 1; id <= 4; ++id) {
    ASSERT_TRUE(ring.reserve_consumer(id, 0));
    consumers.push_back(consumer(id, "c" + std::to_string(id) + ".txt"));
  }
  auto prod = producer(frames);
  expect_exit_ok(prod);
  for (uint32_t id = 1; id <= 4; ++id) {
    expect_exit_ok(consumers[id - 1]);
    auto log = parse_log(out("c" + std::to_string(id) + ".txt"));
    EXPECT_EQ(log.end, "end_of_stream");
    expect_contiguous(log, 0, frames - 1);
  }
}

TEST_F(FrameRing, SlowConsumerBoundsTheProducerToTheRingCapacity) {
  const uint32_t slots = 8;
  auto ring = make_ring(160, 120, slots);
  ASSERT_TRUE(ring.reserve_consumer(1, 0));
  ASSERT_TRUE(ring.reserve_consumer(2, 0));
  auto fast = consumer(1, "fast.txt");
  auto slow = consumer(2, "slow.txt", {"--delay-us", "3000"});
  auto prod = producer(150);
  uint64_t max_fill = 0;
  while (prod.running() && !prod.poll()) {
    auto s = ring.status();
    max_fill = std::max(max_fill, s.fill());
    uint64_t fast_at = 0, slow_at = 0;
    for (const auto& c : s.consumers)
      (c.id == 1 ? fast_at : slow_at) = c.committed;
    ASSERT_LE(fast_at - std::min(fast_at, slow_at), slots) << "fast consumer ran more than the capacity ahead";
    std::this_thread::sleep_for(1ms);
  }
  expect_exit_ok(prod);
  expect_exit_ok(fast);
  expect_exit_ok(slow);
  EXPECT_LE(max_fill, slots);
  EXPECT_EQ(max_fill, slots) << "the slow consumer never held the producer back";
  EXPECT_GT(ring.status().producer_wait_ns, 0u);
  expect_contiguous(parse_log(out("fast.txt")), 0, 149);
  expect_contiguous(parse_log(out("slow.txt")), 0, 149);
}

TEST_F(FrameRing, KilledConsumerIsHeldAndItsRestartGetsEveryUncommittedFrameAgain) {
  const uint32_t slots = 8;
  auto ring = make_ring(160, 120, slots);
  ASSERT_TRUE(ring.reserve_consumer(1, 0));
  ASSERT_TRUE(ring.reserve_consumer(2, 0));
  // Reads frames 0..6, acknowledges only 0..4, then stalls until killed.
  auto victim = consumer(1, "victim.txt", {"--commit-until", "5", "--hang-after", "7"});
  auto other = consumer(2, "other.txt");
  auto prod = producer(200);
  ASSERT_TRUE(wait_until([&] { return framehive::testing::file_has_line_starting(out("victim.txt"), "hang"); }, 20s));
  ASSERT_TRUE(victim.kill(SIGKILL));
  ASSERT_TRUE(victim.wait_for(5s));

  ASSERT_TRUE(wait_until([&] { return !ring.reclaim_dead_consumers().empty(); }, 5s));
  auto s = ring.status();
  auto it = std::find_if(s.consumers.begin(), s.consumers.end(), [](const auto& c) { return c.id == 1; });
  ASSERT_NE(it, s.consumers.end());
  EXPECT_EQ(it->state, shm::entry_state::held);
  EXPECT_EQ(it->committed, 5u);
  // The producer goes on up to the capacity past the dead consumer's commit, no further.
  ASSERT_TRUE(wait_until([&] { return ring.status().produced == 5 + slots; }, 10s));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(ring.status().produced, 5u + slots);

  auto restarted = consumer(1, "restarted.txt");
  expect_exit_ok(restarted);
  expect_exit_ok(prod);
  expect_exit_ok(other);
  auto log = parse_log(out("restarted.txt"));
  EXPECT_EQ(log.first, 5u);
  EXPECT_EQ(log.redelivered, 2u) << "frames 5 and 6 were read but not acknowledged";
  EXPECT_EQ(log.end, "end_of_stream");
  expect_contiguous(log, 5, 199);
  expect_contiguous(parse_log(out("other.txt")), 0, 199);
  auto after = ring.status();
  EXPECT_TRUE(after.consumers.empty() || after.consumers.front().redelivered >= 2u);
}

TEST_F(FrameRing, AFrameIsInHandFromItsReadUntilTheConsumerIsDoneWithItNotUntilItsCommit) {
  // What the node charges a worker's death to: the frame a consumer was working
  // on. Both consumers read frames 0..6 and acknowledge 0..4; one stalls while
  // working on frame 6, the other after it was done with it (as while it waits
  // for an acknowledgement).
  auto ring = make_ring(160, 120, 8);
  ASSERT_TRUE(ring.reserve_consumer(1, 0));
  ASSERT_TRUE(ring.reserve_consumer(2, 0));
  auto working = consumer(1, "working.txt", {"--commit-until", "5", "--hang-after", "7"});
  auto waiting = consumer(2, "waiting.txt", {"--commit-until", "5", "--hang-after", "7", "--done-before-hang"});
  auto prod = producer(200);
  for (const char* file : {"working.txt", "waiting.txt"})
    ASSERT_TRUE(wait_until([&] { return framehive::testing::file_has_line_starting(out(file), "hang"); }, 20s))
        << file;
  auto s = ring.status();
  ASSERT_EQ(s.consumers.size(), 2u);
  for (const auto& c : s.consumers) {
    EXPECT_EQ(c.committed, 5u) << c.id;
    EXPECT_EQ(c.read_high, 7u) << c.id;
    EXPECT_EQ(c.in_hand, c.id == 1 ? 7u : 0u) << "consumer " << c.id << ": sequence + 1 of the frame in hand";
  }
  for (auto* p : {&working, &waiting, &prod}) {
    p->kill(SIGKILL);
    ASSERT_TRUE(p->wait_for(5s));
  }
  // A consumer that takes over an entry holds nothing until it reads.
  ASSERT_TRUE(wait_until([&] { return ring.reclaim_dead_consumers().size() == 2; }, 5s));
  auto again = shm::ring_consumer::attach(name_, 1);
  ASSERT_TRUE(again) << again.error().message;
  for (const auto& c : ring.status().consumers) {
    if (c.id == 1) {
      EXPECT_EQ(c.in_hand, 0u);
    }
  }
}

TEST_F(FrameRing, ReleasedDeadConsumerNoLongerHoldsTheProducerBack) {
  auto ring = make_ring(160, 120, 8);
  ASSERT_TRUE(ring.reserve_consumer(1, 0));
  ASSERT_TRUE(ring.reserve_consumer(2, 0));
  auto victim = consumer(1, "victim.txt", {"--commit-until", "5", "--hang-after", "7"});
  auto other = consumer(2, "other.txt");
  auto prod = producer(200);
  ASSERT_TRUE(wait_until([&] { return framehive::testing::file_has_line_starting(out("victim.txt"), "hang"); }, 20s));
  victim.kill(SIGKILL);
  victim.wait_for(5s);
  ASSERT_TRUE(wait_until([&] { return !ring.reclaim_dead_consumers().empty(); }, 5s));
  ASSERT_TRUE(ring.release_consumer(1));
  expect_exit_ok(prod);
  expect_exit_ok(other);
  expect_contiguous(parse_log(out("other.txt")), 0, 199);

  // The same id comes back after its frames were overwritten: it is told how
  // many it lost and continues with what the ring still holds.
  auto late = consumer(1, "late.txt");
  expect_exit_ok(late);
  auto log = parse_log(out("late.txt"));
  EXPECT_GT(log.lost, 0u);
  EXPECT_EQ(log.first, 5 + log.lost);
  EXPECT_EQ(log.end, "end_of_stream");
  if (!log.frames.empty())
    expect_contiguous(log, log.first, 199);
}

TEST_F(FrameRing, KilledProducerEndsConsumersWithoutHangOrTornFrames) {
  auto ring = make_ring(160, 120, 8);
  ASSERT_TRUE(ring.reserve_consumer(1, 0));
  ASSERT_TRUE(ring.reserve_consumer(2, 0));
  auto c1 = consumer(1, "c1.txt", {"--timeout-ms", "10000"});
  auto c2 = consumer(2, "c2.txt", {"--timeout-ms", "10000"});
  // 40 whole frames, then half of the 41st written into its slot, then stall.
  auto prod = producer(200, {"--torn-after", "40"});
  ASSERT_TRUE(wait_until([&] { return framehive::testing::file_has_line_starting(out("producer.txt"), "hang"); }, 20s));
  prod.kill(SIGKILL);
  prod.wait_for(5s);
  for (auto* c : {&c1, &c2}) {
    auto st = c->wait_for(8s);
    ASSERT_TRUE(st) << "a consumer hung after its producer died";
    EXPECT_EQ(st->code, 4) << "consumers end with a failure status";
  }
  for (const char* f : {"c1.txt", "c2.txt"}) {
    auto log = parse_log(out(f));
    EXPECT_EQ(log.end, "producer_lost");
    expect_contiguous(log, 0, 39);
  }
}

TEST_F(FrameRing, RestartedProducerContinuesAtTheNextFrame) {
  auto ring = make_ring(160, 120, 8);
  ASSERT_TRUE(ring.reserve_consumer(1, 0));
  auto c = consumer(1, "c.txt", {"--tolerate-lost", "--timeout-ms", "10000"});
  auto first = producer(100, {"--hang-after", "30"});
  ASSERT_TRUE(wait_until([&] { return framehive::testing::file_has_line_starting(out("producer.txt"), "hang"); }, 20s));
  first.kill(SIGKILL);
  first.wait_for(5s);
  auto second = peer({"produce", name_, "100"}, out("producer2.txt"));
  expect_exit_ok(second);
  expect_exit_ok(c);
  auto lines = read_lines(out("producer2.txt"));
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.front(), "start 30");
  expect_contiguous(parse_log(out("c.txt")), 0, 99);
}

TEST_F(FrameRing, SamplingConsumerReadsEveryKthFrameWithoutHoldingOthersBack) {
  auto ring = make_ring(160, 120, 8);
  ASSERT_TRUE(ring.reserve_consumer(1, 0, sampling{3}));
  ASSERT_TRUE(ring.reserve_consumer(2, 0));
  auto sampled = consumer(1, "sampled.txt", {"--sample", "3"});
  auto all = consumer(2, "all.txt");
  auto prod = producer(90);
  expect_exit_ok(prod);
  expect_exit_ok(sampled);
  expect_exit_ok(all);
  auto log = parse_log(out("sampled.txt"));
  ASSERT_EQ(log.frames.size(), 30u);
  for (std::size_t i = 0; i < log.frames.size(); ++i) {
    EXPECT_EQ(log.frames[i].index, static_cast<int64_t>(i * 3));
    EXPECT_TRUE(log.frames[i].ok);
  }
  expect_contiguous(parse_log(out("all.txt")), 0, 89);
}

TEST_F(FrameRing, RateSamplingConsumerReadsTheFirstFrameOfEachBucketByTimestamp) {
  auto ring = make_ring(160, 120, 8);
  sampling five_per_second;
  five_per_second.rate_num = 5;
  ASSERT_TRUE(ring.reserve_consumer(1, 0, five_per_second));
  auto producer = shm::ring_producer::open(name_);
  ASSERT_TRUE(producer.ok()) << producer.error().message;
  shm::attach_options o;
  o.sample = five_per_second;
  auto c = shm::ring_consumer::attach(name_, 1, o);
  ASSERT_TRUE(c.ok()) << c.error().message;
  // 25 fps in an MP4 time base; only the frames somebody takes are converted
  // and published, as the decoder does (ingest/ring_pump).
  std::vector<int64_t> published, read;
  for (int64_t f = 0; f < 60; ++f) {
    shm::frame_info info;
    info.frame_index = f;
    info.pts = f * 512;
    info.prev_pts = f == 0 ? no_pts : (f - 1) * 512;
    info.time_base_num = 1;
    info.time_base_den = 12800;
    if (!producer->wanted(info))
      continue;
    shm::ring_producer::slot slot;
    ASSERT_EQ(producer->acquire(slot, 1s), shm::ring_producer::acquire_status::ready) << f;
    ASSERT_TRUE(producer->publish(info));
    published.push_back(f);
    shm::frame_view v;
    ASSERT_EQ(c->next(v, 1s), shm::ring_consumer::read_status::frame);
    EXPECT_EQ(v.prev_pts, info.prev_pts);
    read.push_back(v.frame_index);
    ASSERT_TRUE(c->commit(v.seq));
  }
  std::vector<int64_t> every_fifth;
  for (int64_t f = 0; f < 60; f += 5)
    every_fifth.push_back(f);
  EXPECT_EQ(published, every_fifth) << "frames nobody takes are not converted";
  EXPECT_EQ(read, every_fifth);
  ASSERT_EQ(ring.status().consumers.size(), 1u);
  EXPECT_EQ(ring.status().consumers[0].sample, five_per_second);
}

TEST_F(FrameRing, ConsumerJoiningMidStreamStartsAtTheProducerPosition) {
  auto ring = make_ring(160, 120, 8);
  ASSERT_TRUE(ring.reserve_consumer(1, 0));
  auto early = consumer(1, "early.txt", {"--delay-us", "2000"});
  auto prod = producer(120);
  ASSERT_TRUE(wait_until([&] { return ring.status().produced >= 40; }, 20s));
  auto late = consumer(2, "late.txt", {"--start", "head"});
  expect_exit_ok(prod);
  expect_exit_ok(early);
  expect_exit_ok(late);
  auto log = parse_log(out("late.txt"));
  EXPECT_GE(log.first, 40u);
  EXPECT_EQ(log.lost, 0u);
  expect_contiguous(log, log.first, 119);
  expect_contiguous(parse_log(out("early.txt")), 0, 119);
}

TEST_F(FrameRing, StaleSegmentOfAKilledOwnerIsRemovedAndLiveOnesKept) {
  const std::string prefix = name_ + "-";
  const std::string dead_name = prefix + "dead";
  auto owner = peer({"own", dead_name, "64", "48", "4"}, out("owner.txt"));
  ASSERT_TRUE(wait_until([&] { return framehive::testing::file_has_line_starting(out("owner.txt"), "hang"); }, 10s));
  owner.kill(SIGKILL);
  owner.wait_for(5s);
  ASSERT_TRUE(std::filesystem::exists("/dev/shm/" + dead_name)) << "a killed owner cannot remove its segment";

  shm::ring_options o;
  o.name = prefix + "live";
  o.width = 64;
  o.height = 48;
  o.slot_count = 4;
  auto live = shm::frame_ring::create(o);
  ASSERT_TRUE(live);

  auto removed = shm::remove_stale_segments(prefix);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed.front(), dead_name);
  EXPECT_FALSE(std::filesystem::exists("/dev/shm/" + dead_name));
  EXPECT_TRUE(std::filesystem::exists("/dev/shm/" + o.name));
}
