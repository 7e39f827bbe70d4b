#pragma once

// The byte layout of a frame ring segment. This is the contract between every
// process that maps a ring (node, decoder, consumers, a future reader in
// another language), so it holds only fixed-size, address-free members:
// lock-free std::atomic of 32/64 bits and plain integers. Bump
// ring_layout_version on any change.

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace framehive::shm {

inline constexpr uint64_t ring_magic = 0x3130304752484646ull;  // "FFHRG001" little-endian
inline constexpr uint32_t ring_layout_version = 3;
inline constexpr uint32_t max_consumers = 32;
inline constexpr uint32_t slot_header_bytes = 128;
inline constexpr uint32_t row_alignment = 64;

/// A consumer's position packs its generation and committed sequence into one
/// word so that a commit from a fenced (superseded) consumer fails atomically.
inline constexpr unsigned committed_bits = 40;
inline constexpr uint64_t committed_mask = (uint64_t{1} << committed_bits) - 1;
constexpr uint64_t pack_position(uint64_t generation, uint64_t committed) {
  return (generation << committed_bits) | (committed & committed_mask);
}
constexpr uint64_t position_generation(uint64_t pos) { return pos >> committed_bits; }
constexpr uint64_t position_committed(uint64_t pos) { return pos & committed_mask; }

enum class pixel_format : uint32_t { bgr24 = 1 };

enum class stream_state : uint32_t { running = 0, end_of_stream = 1, failed = 2 };

enum class entry_state : uint32_t {
  free = 0,      ///< unused; may remember the id and position of a consumer that left
  attached = 1,  ///< a live process reads from this entry
  held = 2,      ///< no process, but the producer keeps the frames after `committed`
  claiming = 3,  ///< being filled in by an attaching process; ignored by the producer
};

/// One registered consumer. `committed` is the next sequence it needs: every
/// frame before it has been acknowledged and may be overwritten.
struct alignas(64) consumer_entry {
  std::atomic<uint32_t> state;
  std::atomic<uint32_t> id;
  std::atomic<uint32_t> pid;
  std::atomic<uint32_t> sample_every;  ///< sampling (common/sampling.hpp): frames whose index % k == 0
  std::atomic<uint64_t> position;      ///< pack_position(generation, committed)
  std::atomic<uint64_t> read_high;     ///< highest sequence handed out + 1
  std::atomic<uint64_t> pid_start;     ///< start time of `pid`, guards against pid reuse
  std::atomic<uint64_t> redelivered;   ///< frames handed out again after restarts
  std::atomic<uint32_t> restarts;      ///< takeovers of this entry by a new process
  std::atomic<uint32_t> ever_used;
  std::atomic<uint32_t> sample_rate_num;  ///< sampling: > 0 takes rate_num/rate_den frames per second
  std::atomic<uint32_t> sample_rate_den;
  /// Sequence + 1 of the frame the consumer is working on (handed out by
  /// next(), not yet done_with_frame()); 0 while it works on none, e.g. while
  /// it waits for an acknowledgement. A worker's death is charged to this frame.
  std::atomic<uint64_t> in_hand;
};
static_assert(sizeof(consumer_entry) == 128, "two cache lines per consumer entry");

/// Metadata at the start of every slot; the pixels follow at slot_header_bytes.
struct slot_header {
  uint64_t seq;
  int64_t frame_index;
  int64_t pts;
  int32_t time_base_num;
  int32_t time_base_den;
  uint32_t keyframe;
  uint32_t width;
  uint32_t height;
  uint32_t stride;
  uint32_t format;
  uint32_t reserved0;
  uint64_t publish_ns;  ///< CLOCK_MONOTONIC when the producer published it
  int64_t prev_pts;     ///< pts of frame frame_index - 1 (no_pts for the first): sampling by time needs it
};
static_assert(sizeof(slot_header) <= slot_header_bytes);

struct ring_header {
  std::atomic<uint64_t> magic;  ///< written last by the creator: a reader seeing it sees the rest
  uint32_t layout_version;
  uint32_t header_bytes;
  uint32_t slot_count;
  uint32_t consumer_capacity;
  uint64_t slot_bytes;
  uint64_t slots_offset;
  uint64_t segment_bytes;
  uint32_t width;
  uint32_t height;
  uint32_t stride;
  uint32_t format;
  uint32_t owner_pid;
  uint32_t reserved0;
  uint64_t owner_start;
  uint64_t created_ns;
  char name[128];

  // -- producer side ---------------------------------------------------------
  alignas(64) std::atomic<uint64_t> producer_seq;  ///< sequences published so far
  std::atomic<uint32_t> publish_word;               ///< futex: bumped on publish and state change
  std::atomic<uint32_t> consumer_waiters;
  std::atomic<uint32_t> stream;                     ///< stream_state
  std::atomic<int64_t> next_frame_index;            ///< where a restarted producer resumes
  std::atomic<uint64_t> producer_token;             ///< generation << 32 | pid
  std::atomic<uint64_t> producer_start;
  std::atomic<uint64_t> producer_wait_ns;           ///< total time blocked on slow consumers

  // -- consumer side ---------------------------------------------------------
  alignas(64) std::atomic<uint64_t> retain_from;    ///< producer keeps every sequence >= this
  std::atomic<uint32_t> commit_word;                ///< futex: bumped on commit while producer waits
  std::atomic<uint32_t> producer_waiting;

  char error_text[256];

  consumer_entry consumers[max_consumers];
};

static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(std::atomic<int64_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));

}  // namespace framehive::shm
