#pragma once

#include <chrono>
#include <cstdint>

namespace framehive {

/// CLOCK_MONOTONIC in nanoseconds: comparable across processes on one machine,
/// which is what publish-to-consume latencies in shared memory need.
uint64_t monotonic_ns() noexcept;

/// Time as the logic that decides sees it (supervisor, worker pool, scheduler).
/// Daemons pass a `steady_clock`; unit tests pass a `manual_clock` and move it
/// by hand, so timeouts and backoffs are tested without sleeping.
class clock {
 public:
  virtual ~clock() = default;
  /// Nanoseconds on a monotonic scale (the origin is the clock's business).
  virtual uint64_t now_ns() const noexcept = 0;
};

/// The real monotonic clock.
class steady_clock final : public clock {
 public:
  uint64_t now_ns() const noexcept override { return monotonic_ns(); }
};

/// A clock that moves only when told to: for unit tests.
class manual_clock final : public clock {
 public:
  explicit manual_clock(uint64_t start_ns = 1'000'000'000) noexcept : now_(start_ns) {}
  uint64_t now_ns() const noexcept override { return now_; }
  void advance(std::chrono::nanoseconds d) noexcept { now_ += static_cast<uint64_t>(d.count()); }

 private:
  uint64_t now_;
};

/// Nanoseconds in a std::chrono duration, as the unsigned scale clocks use.
template <class Rep, class Period>
constexpr uint64_t to_ns(std::chrono::duration<Rep, Period> d) noexcept {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

/// Sleeps until evenly spaced instants (absolute deadlines, so the error of
/// one sleep does not add up): the n-th wait() returns n periods after the
/// pacer was made. For publishing at a source's frame rate.
class pacer {
 public:
  explicit pacer(double per_second) noexcept;
  void wait() noexcept;

 private:
  int64_t period_ns_;
  int64_t next_ns_;
};

}  // namespace framehive

namespace framehive {

/// Makes glibc keep freed memory for reuse instead of returning it to the
/// kernel: FFmpeg frees and reallocates large packet and frame buffers all
/// the time, and each round trip through mmap/munmap costs page faults on
/// every frame. Call once at the start of processes that decode.
void keep_freed_memory() noexcept;

}  // namespace framehive
