#include "common/clock.hpp"

#include <cerrno>
#include <ctime>

namespace framehive {

uint64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

pacer::pacer(double per_second) noexcept
    : period_ns_(per_second > 0 ? static_cast<int64_t>(1e9 / per_second) : 0),
      next_ns_(static_cast<int64_t>(monotonic_ns())) {}

void pacer::wait() noexcept {
  next_ns_ += period_ns_;
  timespec until{};
  until.tv_sec = static_cast<time_t>(next_ns_ / 1'000'000'000);
  until.tv_nsec = static_cast<long>(next_ns_ % 1'000'000'000);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nullptr) == EINTR) {
  }
}

}  // namespace framehive

#include <malloc.h>

namespace framehive {

void keep_freed_memory() noexcept {
  mallopt(M_MMAP_THRESHOLD, 256 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024);
}

}  // namespace framehive
