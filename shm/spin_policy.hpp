#pragma once

// How long a consumer that finds no new frame spins before it sleeps on the
// futex. Sleeping costs a wake-up: the producer's futex_wake, and on a VM the
// host waking a halted vCPU (40 us at the median, milliseconds at the tail
// here). Spinning costs the CPU the decoder needs. So a consumer spins only
// when the frames of its recent waits arrived within the spin bound, and for
// about as long as they took; otherwise it sleeps at once.
//
// A plain class with no clock of its own: the caller states how soon each
// frame arrived after its wait began, so tests drive it with numbers.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace framehive::shm {

enum class spin_mode : uint8_t {
  off,       ///< sleep on the futex at once (the behaviour before issue 15)
  adaptive,  ///< spin when recent frames arrived within max_spin_ns of a wait's start
  always,    ///< spin max_spin_ns before every sleep (for measurements only)
};

const char* to_string(spin_mode m) noexcept;
std::optional<spin_mode> parse_spin_mode(std::string_view text) noexcept;

class spin_policy {
 public:
  /// Waits remembered; the decision looks at all of them.
  static constexpr std::size_t window = 16;
  /// At most this many of the remembered waits may have been longer than the
  /// bound (a quarter): spinning must catch the frame most of the time.
  static constexpr std::size_t tolerated_long = window / 4;
  static constexpr uint64_t default_max_spin_ns = 50'000;

  explicit spin_policy(spin_mode mode = spin_mode::off, uint64_t max_spin_ns = default_max_spin_ns) noexcept
      : mode_(mode), max_spin_ns_(max_spin_ns) {
    decide();
  }

  /// Nanoseconds to spin at the start of the next wait; 0 = sleep at once.
  uint64_t budget_ns() const noexcept { return budget_; }

  /// A frame arrived `arrived_after_ns` after the consumer began to wait for
  /// it (a wait that timed out counts as the timeout).
  void record(uint64_t arrived_after_ns) noexcept;

  spin_mode mode() const noexcept { return mode_; }
  uint64_t max_spin_ns() const noexcept { return max_spin_ns_; }

 private:
  void decide() noexcept;

  spin_mode mode_;
  uint64_t max_spin_ns_;
  std::array<uint64_t, window> recent_{};
  std::size_t count_ = 0;  ///< waits recorded, saturating at window
  std::size_t next_ = 0;
  uint64_t budget_ = 0;
};

}  // namespace framehive::shm
