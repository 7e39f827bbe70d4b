#pragma once

// The one retry policy of framehive: exponential backoff with a cap. Worker
// restarts, reconnects to the coordinator and result-batch retries all use it
// (with their own constants), so "how long until the next try" has one answer.

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace framehive {

struct backoff_policy {
  std::chrono::milliseconds first{100};  ///< delay before the first retry
  std::chrono::milliseconds max{5000};   ///< no delay is longer than this
  uint32_t factor = 2;                   ///< each retry waits this much longer

  /// The delay before retry number `attempt` (0-based): first * factor^attempt, capped.
  constexpr std::chrono::milliseconds delay(uint32_t attempt) const noexcept {
    int64_t d = first.count();
    for (uint32_t i = 0; i < attempt && d < max.count(); ++i)
      d *= std::max<uint32_t>(1, factor);
    return std::chrono::milliseconds(std::min<int64_t>(d, max.count()));
  }
};

/// A policy plus the count of consecutive failures.
class backoff {
 public:
  constexpr explicit backoff(backoff_policy p = {}) noexcept : policy_(p) {}

  /// The delay to wait now, and counts one more failure.
  std::chrono::milliseconds next() noexcept { return policy_.delay(attempts_++); }
  /// The delay next() would return, without counting.
  std::chrono::milliseconds peek() const noexcept { return policy_.delay(attempts_); }
  /// After a success: the next failure waits `first` again.
  void reset() noexcept { attempts_ = 0; }
  uint32_t attempts() const noexcept { return attempts_; }

 private:
  backoff_policy policy_;
  uint32_t attempts_ = 0;
};

}  // namespace framehive
