#include "shm/spin_policy.hpp"

#include <algorithm>

namespace framehive::shm {

const char* to_string(spin_mode m) noexcept {
  switch (m) {
    case spin_mode::off: return "off";
    case spin_mode::adaptive: return "adaptive";
    case spin_mode::always: return "always";
  }
  return "unknown";
}

std::optional<spin_mode> parse_spin_mode(std::string_view text) noexcept {
  if (text == "off" || text == "0")
    return spin_mode::off;
  if (text == "adaptive" || text == "1")
    return spin_mode::adaptive;
  if (text == "always")
    return spin_mode::always;
  return std::nullopt;
}

void spin_policy::record(uint64_t arrived_after_ns) noexcept {
  recent_[next_] = arrived_after_ns;
  next_ = (next_ + 1) % window;
  count_ = std::min(count_ + 1, window);
  decide();
}

void spin_policy::decide() noexcept {
  if (mode_ != spin_mode::adaptive) {
    budget_ = mode_ == spin_mode::always ? max_spin_ns_ : 0;
    return;
  }
  if (count_ < window) {
    budget_ = 0;  // too little seen yet: sleeping is the cheap default
    return;
  }
  // The wait that the spin must still cover: the longest but `tolerated_long`.
  std::array<uint64_t, window> sorted = recent_;
  auto covered = sorted.begin() + static_cast<std::ptrdiff_t>(window - 1 - tolerated_long);
  std::nth_element(sorted.begin(), covered, sorted.end());
  if (*covered > max_spin_ns_) {
    budget_ = 0;
    return;
  }
  // A quarter more than that wait, and a few microseconds for the jitter of short ones.
  budget_ = std::min(max_spin_ns_, *covered + *covered / 4 + 2'000);
}

}  // namespace framehive::shm
