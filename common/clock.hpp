#pragma once

#include <cstdint>

namespace framehive {

/// CLOCK_MONOTONIC in nanoseconds: comparable across processes on one machine,
/// which is what publish-to-consume latencies in shared memory need.
uint64_t monotonic_ns() noexcept;

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
