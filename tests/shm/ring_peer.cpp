// A real separate process for the multi-process ring tests:
//   ring_peer produce NAME FRAMES [--delay-us N] [--hang-after N] [--torn-after N]
//   ring_peer consume NAME ID [--sample K] [--delay-us N] [--commit-until SEQ]
//                     [--hang-after N] [--timeout-ms T] [--tolerate-lost] [--start head|resume]
//   ring_peer own NAME WIDTH HEIGHT SLOTS      (creates a ring, prints "ready", sleeps)
// Consumers print one line per frame, "frame SEQ INDEX CHECKSUM_OK", and a last
// line "end STATUS redelivered=N lost=N first=SEQ"; every line is flushed at once
// so that a test that kills the process still sees what it read.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "shm/frame_ring.hpp"
#include "tests/support/frame_pattern.hpp"

using namespace framehive;
using namespace std::chrono_literals;

namespace {

long opt(int argc, char** argv, const char* name, long fallback) {
  for (int i = 0; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0)
      return std::strtol(argv[i + 1], nullptr, 10);
  return fallback;
}

bool flag(int argc, char** argv, const char* name) {
  for (int i = 0; i < argc; ++i)
    if (std::strcmp(argv[i], name) == 0)
      return true;
  return false;
}

const char* opt_str(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 0; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0)
      return argv[i + 1];
  return fallback;
}

[[noreturn]] void hang() {
  std::printf("hang\n");
  std::fflush(stdout);
  while (true)
    pause();
}

int produce(int argc, char** argv) {
  std::string name = argv[2];
  long frames = std::strtol(argv[3], nullptr, 10);
  long delay_us = opt(argc, argv, "--delay-us", 0);
  long hang_after = opt(argc, argv, "--hang-after", -1);
  long torn_after = opt(argc, argv, "--torn-after", -1);
  auto p = shm::ring_producer::open(name);
  if (!p) {
    std::fprintf(stderr, "producer: %s\n", p.error().message.c_str());
    return 2;
  }
  // A restarted producer continues where the previous one stopped.
  int64_t index = p->next_frame_index();
  std::printf("start %lld\n", static_cast<long long>(index));
  std::fflush(stdout);
  for (long n = 0; index < frames; ++n, ++index) {
    if (n == hang_after)
      hang();
    shm::ring_producer::slot s;
    auto st = p->acquire(s, 30s);
    if (st != shm::ring_producer::acquire_status::ready) {
      std::fprintf(stderr, "producer: acquire failed (%d)\n", static_cast<int>(st));
      return 3;
    }
    if (n == torn_after) {
      // Half a frame written, never published: consumers must not see it.
      testing::fill_pattern(s.pixels, s.stride, s.width, s.height / 2, index + 1000);
      hang();
    }
    testing::fill_pattern(s.pixels, s.stride, s.width, s.height, index);
    shm::frame_info info;
    info.frame_index = index;
    info.pts = index * 1001;
    info.time_base_num = 1;
    info.time_base_den = 30000;
    info.keyframe = index % 30 == 0;
    p->publish(info);
    if (delay_us > 0)
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
  }
  p->finish();
  std::printf("done %lld\n", static_cast<long long>(p->sequence()));
  return 0;
}

int consume(int argc, char** argv) {
  std::string name = argv[2];
  auto id = static_cast<uint32_t>(std::strtoul(argv[3], nullptr, 10));
  shm::attach_options o;
  o.sample.every = static_cast<uint32_t>(opt(argc, argv, "--sample", 1));
  if (std::strcmp(opt_str(argc, argv, "--start", "resume"), "head") == 0)
    o.start = shm::attach_options::start_mode::head;
  long delay_us = opt(argc, argv, "--delay-us", 0);
  long commit_until = opt(argc, argv, "--commit-until", -1);
  long hang_after = opt(argc, argv, "--hang-after", -1);
  long timeout_ms = opt(argc, argv, "--timeout-ms", 20000);
  bool tolerate_lost = flag(argc, argv, "--tolerate-lost");
  bool done_before_hang = flag(argc, argv, "--done-before-hang");  // as if waiting for an ack, not analysing
  auto c = shm::ring_consumer::attach(name, id, o);
  if (!c) {
    std::printf("error %s %s\n", shm::to_string(c.error().code), c.error().message.c_str());
    return 2;
  }
  std::printf("attached gen=%llu first=%llu redelivered=%llu lost=%llu\n",
              static_cast<unsigned long long>(c->generation()), static_cast<unsigned long long>(c->start_seq()),
              static_cast<unsigned long long>(c->redelivered()), static_cast<unsigned long long>(c->lost()));
  std::fflush(stdout);
  long read = 0;
  shm::frame_view v;
  auto waited_since = std::chrono::steady_clock::now();
  while (true) {
    auto st = c->next(v, std::chrono::milliseconds(timeout_ms));
    if (st == shm::ring_consumer::read_status::producer_lost && tolerate_lost &&
        std::chrono::steady_clock::now() - waited_since < std::chrono::milliseconds(timeout_ms)) {
      std::this_thread::sleep_for(5ms);
      continue;
    }
    if (st != shm::ring_consumer::read_status::frame) {
      std::printf("end %s\n", shm::to_string(st));
      std::fflush(stdout);
      if (st == shm::ring_consumer::read_status::end_of_stream)
        c->detach();
      return st == shm::ring_consumer::read_status::end_of_stream ? 0 : 4;
    }
    waited_since = std::chrono::steady_clock::now();
    uint64_t sum = testing::frame_checksum(v.pixels, v.stride, v.width, v.height);
    bool ok = sum == testing::expected_checksum(v.width, v.height, v.frame_index);
    std::printf("frame %llu %lld %d\n", static_cast<unsigned long long>(v.seq),
                static_cast<long long>(v.frame_index), ok ? 1 : 0);
    std::fflush(stdout);
    ++read;
    if (delay_us > 0)
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    if (commit_until < 0 || static_cast<long>(v.seq) < commit_until)
      c->commit(v.seq);
    if (read == hang_after) {
      if (done_before_hang)
        c->done_with_frame();
      hang();
    }
  }
}

int own(int, char** argv) {
  shm::ring_options o;
  o.name = argv[2];
  o.width = static_cast<uint32_t>(std::strtoul(argv[3], nullptr, 10));
  o.height = static_cast<uint32_t>(std::strtoul(argv[4], nullptr, 10));
  o.slot_count = static_cast<uint32_t>(std::strtoul(argv[5], nullptr, 10));
  auto r = shm::frame_ring::create(o);
  if (!r) {
    std::printf("error %s\n", r.error().message.c_str());
    return 2;
  }
  hang();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: ring_peer produce|consume|own NAME ...\n");
    return 64;
  }
  std::string mode = argv[1];
  if (mode == "produce" && argc >= 4)
    return produce(argc, argv);
  if (mode == "consume" && argc >= 4)
    return consume(argc, argv);
  if (mode == "own" && argc >= 6)
    return own(argc, argv);
  std::fprintf(stderr, "ring_peer: bad arguments\n");
  return 64;
}
