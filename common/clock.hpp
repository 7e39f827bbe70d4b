#pragma once

#include <cstdint>

namespace framehive {

/// CLOCK_MONOTONIC in nanoseconds: comparable across processes on one machine,
/// which is what publish-to-consume latencies in shared memory need.
uint64_t monotonic_ns() noexcept;

}  // namespace framehive
