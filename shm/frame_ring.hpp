#pragma once

// A single-producer, multi-consumer frame ring in POSIX shared memory.
//
// Three roles, usually three kinds of process:
//  - frame_ring (owner, the node): creates and sizes the segment, pre-registers
//    consumers, notices dead ones and decides whether their frames are kept;
//    removes the segment in its destructor.
//  - ring_producer (the decoder): writes frames straight into slots.
//  - ring_consumer (an analysis): reads frames zero-copy, commits them.
//
// Coordination is atomics in the segment plus futex waits with timeouts. No
// process ever holds a lock, so a process killed at any instruction cannot
// block the others; liveness of peers is checked through /proc.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "common/sampling.hpp"
#include "shm/errors.hpp"
#include "shm/ring_layout.hpp"
#include "shm/segment.hpp"
#include "shm/spin_policy.hpp"

namespace framehive::shm {

// -- options and snapshots ----------------------------------------------------

/// What the owner creates. Capacity is in frames, capped in bytes.
struct ring_options {
  std::string name;             ///< segment name, [A-Za-z0-9._-]+ (no slash)
  uint32_t width = 0;           ///< largest frame the ring holds
  uint32_t height = 0;
  uint32_t slot_count = 16;     ///< wanted capacity in frames
  uint64_t max_bytes = 0;       ///< cap on the segment size; 0 = none
  std::string shm_dir = default_shm_dir;  ///< where free space is checked
};

/// Frames are at most this many pixels wide and high.
inline constexpr uint32_t max_frame_side = 32768;

/// A ring's geometry, checked once when the ring is created or opened. Every
/// role keeps its own copy and never re-reads these fields from the shared
/// header: any process that maps the ring can overwrite them, and a slot
/// count or size that changes under a reader must not crash it.
struct ring_geometry {
  uint32_t slot_count = 0;
  uint32_t consumer_capacity = 0;  ///< entries of the consumer table in use (<= max_consumers)
  uint64_t slot_bytes = 0;
  uint64_t slots_offset = 0;
  uint64_t segment_bytes = 0;
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t stride = 0;
};

/// Reads the geometry of ring `name` from its header, mapped `mapped_bytes`
/// long, and checks that it is possible: our magic and layout version, at
/// least 2 slots, no more consumer entries than the layout has, frame sizes
/// within max_frame_side, and slots whose sizes neither overflow nor reach
/// past the segment. The error names the ring and the field.
result<ring_geometry, ring_error> read_geometry(const ring_header& header, uint64_t mapped_bytes,
                                                const std::string& name);

/// Bytes of one slot (header plus BGR24 rows, page aligned) for a geometry.
uint64_t slot_bytes_for(uint32_t width, uint32_t height);

/// Bytes of a whole segment for a geometry and slot count.
uint64_t segment_bytes_for(uint32_t width, uint32_t height, uint32_t slot_count);

/// One consumer entry as the owner sees it.
struct consumer_status {
  uint32_t id = 0;
  entry_state state = entry_state::free;
  uint32_t pid = 0;
  uint64_t generation = 0;
  uint64_t committed = 0;
  uint64_t read_high = 0;
  uint64_t in_hand = 0;  ///< sequence + 1 of the frame it works on; 0 for none
  sampling sample;
  uint32_t restarts = 0;
  uint64_t redelivered = 0;
};

/// The ring as a whole, for the actor tree and metrics.
struct ring_status {
  std::string name;
  uint32_t slot_count = 0;
  uint32_t width = 0;
  uint32_t height = 0;
  uint64_t segment_bytes = 0;
  uint64_t produced = 0;        ///< frames published
  int64_t next_frame_index = 0; ///< the frame index the producer publishes next
  uint64_t retain_from = 0;
  stream_state stream = stream_state::running;
  std::string error;            ///< set when stream == failed
  uint32_t producer_pid = 0;
  bool producer_alive = false;
  uint64_t producer_wait_ns = 0;
  std::vector<consumer_status> consumers;  ///< entries not free
  uint64_t fill() const;                   ///< frames held for the slowest consumer
};

/// A frame as a consumer sees it. `pixels` points into shared memory and stays
/// valid until the consumer commits this frame's sequence.
struct frame_view {
  uint64_t seq = 0;
  int64_t frame_index = 0;
  int64_t pts = 0;
  int32_t time_base_num = 0;
  int32_t time_base_den = 1;
  bool keyframe = false;
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t stride = 0;
  pixel_format format = pixel_format::bgr24;
  uint64_t publish_ns = 0;
  int64_t prev_pts = no_pts;  ///< the timestamp of frame frame_index - 1 (no_pts for the first)
  const uint8_t* pixels = nullptr;
};

/// What a producer states about the frame it publishes.
struct frame_info {
  int64_t frame_index = 0;
  int64_t pts = 0;
  int32_t time_base_num = 0;
  int32_t time_base_den = 1;
  bool keyframe = false;
  int64_t prev_pts = no_pts;  ///< the timestamp of frame frame_index - 1 (no_pts for the first)
  uint32_t width = 0;   ///< 0 = the ring's width
  uint32_t height = 0;  ///< 0 = the ring's height
};

// -- owner --------------------------------------------------------------------

/// Creates a ring and owns its name: the destructor removes the segment.
class frame_ring {
 public:
  static result<frame_ring, ring_error> create(const ring_options& options);

  frame_ring(frame_ring&&) noexcept = default;
  frame_ring& operator=(frame_ring&&) noexcept = default;

  const std::string& name() const noexcept { return seg_.name(); }
  uint32_t slot_count() const noexcept { return geo_.slot_count; }
  /// The geometry this ring was created with (never re-read from the segment).
  const ring_geometry& geometry() const noexcept { return geo_; }

  /// Registers consumer `id` before any process attaches: the producer keeps
  /// every frame from `start_seq` on for it (the entry is "held"), and
  /// converts the frames its `sample` takes.
  result<unit, ring_error> reserve_consumer(uint32_t id, uint64_t start_seq, const sampling& sample = {});

  /// Marks attached consumers whose process is gone as held: their position is
  /// kept (so a restart gets every unacknowledged frame again) and a late
  /// commit from the old process is fenced. Returns the ids.
  std::vector<uint32_t> reclaim_dead_consumers();

  /// Same for one consumer the caller knows is dead (after waitpid).
  bool mark_consumer_dead(uint32_t id);

  /// Gives up on consumer `id`: the producer stops waiting for it. Its last
  /// position is remembered; a later attach under the same id resumes there if
  /// those frames are still in the ring and is told how many it lost if not.
  bool release_consumer(uint32_t id);

  /// Wakes and fences the producer (a new one may then claim the ring).
  void revoke_producer();

  ring_status status() const;

  /// The frame index stored at sequence `seq`, if that slot still holds it
  /// (used to name the frame a consumer died on).
  std::optional<int64_t> frame_index_at(uint64_t seq) const;

  /// The frame index the producer publishes next: no frame at or past it has
  /// been decoded yet. One atomic load (status() reads /proc; this does not).
  int64_t next_frame_index() const noexcept;

 private:
  frame_ring(segment seg, ring_geometry geo) : seg_(std::move(seg)), geo_(geo) {}
  ring_header* header() const noexcept;

  segment seg_;
  ring_geometry geo_;
};

// -- producer -----------------------------------------------------------------

class ring_producer {
 public:
  /// Opens `name` and claims the producer role; fails with producer_busy while
  /// another live process holds it. A producer that died is replaced: the new
  /// one continues at the next sequence (`next_frame_index()` tells where).
  static result<ring_producer, ring_error> open(const std::string& name);

  ring_producer(ring_producer&&) noexcept = default;
  ring_producer& operator=(ring_producer&&) noexcept = default;

  enum class acquire_status { ready, timeout, fenced, closed };

  /// Where the next frame goes.
  struct slot {
    uint8_t* pixels = nullptr;
    uint32_t stride = 0;
    uint32_t width = 0;   ///< the ring's geometry (the largest frame)
    uint32_t height = 0;
    uint64_t seq = 0;
  };

  /// Waits (at most `timeout`) until the next slot is free of frames any
  /// consumer still needs, then returns it for writing.
  acquire_status acquire(slot& out, std::chrono::nanoseconds timeout);

  /// Publishes the slot from the last successful acquire. False when fenced.
  bool publish(const frame_info& info);

  /// True if any registered consumer's sampling takes this frame (so the
  /// decoder can skip converting frames nobody reads).
  bool wanted(const frame_info& frame) const noexcept;

  void finish();                       ///< end of stream: consumers drain and stop
  void fail(std::string_view reason);  ///< failed stream: consumers stop with `reason`

  uint64_t sequence() const noexcept { return seq_; }
  int64_t next_frame_index() const noexcept;
  uint32_t width() const noexcept;
  uint32_t height() const noexcept;
  uint32_t stride() const noexcept;
  uint32_t slot_count() const noexcept;

 private:
  ring_producer(segment seg, ring_geometry geo) : seg_(std::move(seg)), geo_(geo) {}
  ring_header* header() const noexcept;
  uint64_t scan_floor() const noexcept;
  void refresh_limit() noexcept;
  bool fenced() const noexcept;

  segment seg_;
  ring_geometry geo_;
  uint64_t token_ = 0;
  uint64_t seq_ = 0;
  uint64_t limit_ = 0;  ///< sequences below this may be written without rescanning
  bool slot_ready_ = false;
};

// -- consumer -----------------------------------------------------------------

struct attach_options {
  enum class start_mode {
    resume,  ///< a known id resumes at its committed sequence; a new one joins at the head
    head,    ///< a new id joins at the producer's position
    at,      ///< a new id joins at `at_seq` (or the oldest frame still kept)
  };
  start_mode start = start_mode::resume;
  uint64_t at_seq = 0;
  sampling sample;  ///< read only the frames this takes (common/sampling.hpp)
  /// Whether next() spins before it sleeps (shm/spin_policy.hpp). The
  /// environment variables FRAMEHIVE_RING_SPIN (off, adaptive, always) and
  /// FRAMEHIVE_RING_SPIN_US override these two, so that a benchmark can switch
  /// every consumer of a cluster without new options on the way.
  spin_mode spin = spin_mode::adaptive;
  uint64_t max_spin_ns = spin_policy::default_max_spin_ns;
};

class ring_consumer {
 public:
  /// Attaches consumer `id` to ring `name` from this process. An id that is
  /// held (its process died, or the owner reserved it) is taken over: reading
  /// resumes at its committed sequence, so unacknowledged frames come again.
  static result<ring_consumer, ring_error> attach(const std::string& name, uint32_t id,
                                                  const attach_options& options = {});

  ring_consumer(ring_consumer&&) noexcept;
  ring_consumer& operator=(ring_consumer&&) noexcept;
  ring_consumer(const ring_consumer&) = delete;
  ring_consumer& operator=(const ring_consumer&) = delete;
  /// Leaves the entry held (not released): the owner decides about its frames.
  ~ring_consumer();

  enum class read_status {
    frame,            ///< `out` holds the next frame
    end_of_stream,    ///< every frame was read
    producer_failed,  ///< the producer declared an error (see error_text())
    producer_lost,    ///< the producer process died without finishing
    timeout,          ///< nothing arrived in time
    fenced,           ///< this consumer was declared dead and replaced
  };

  /// The next frame this consumer samples, waiting at most `timeout`.
  read_status next(frame_view& out, std::chrono::nanoseconds timeout);

  /// The frame next() handed out last is dealt with (analysed, or taken by
  /// an analyzer that holds frames): from now until the next frame, a death
  /// of this process is not this frame's doing. One relaxed store.
  void done_with_frame() noexcept;

  /// Acknowledges every frame up to and including `seq`; the producer may
  /// then reuse their slots. False when fenced.
  bool commit(uint64_t seq);

  /// Leaves for good: the producer stops waiting for this id.
  void detach();

  uint32_t id() const noexcept { return id_; }
  uint64_t generation() const noexcept { return generation_; }
  uint64_t committed() const noexcept { return committed_; }
  uint64_t start_seq() const noexcept { return start_seq_; }
  uint64_t redelivered() const noexcept { return redelivered_; }  ///< at this attach
  uint64_t lost() const noexcept { return lost_; }  ///< frames gone before this attach
  std::string error_text() const;
  uint32_t width() const noexcept;
  uint32_t height() const noexcept;
  uint32_t slot_count() const noexcept { return geo_.slot_count; }

 private:
  ring_consumer() = default;
  ring_header* header() const noexcept;
  consumer_entry& entry() const noexcept;
  bool store_committed(uint64_t committed);
  bool producer_gone() const;
  bool spin_for_news(uint64_t until_ns) const noexcept;

  segment seg_;
  ring_geometry geo_;
  uint32_t id_ = 0;
  uint32_t index_ = 0;
  uint64_t generation_ = 0;
  uint64_t committed_ = 0;  ///< next sequence not yet acknowledged
  uint64_t cursor_ = 0;     ///< next sequence to look at
  uint64_t handed_high_ = 0;  ///< highest sequence handed out + 1
  uint64_t start_seq_ = 0;
  uint64_t redelivered_ = 0;
  uint64_t lost_ = 0;
  sampling sample_;
  spin_policy spin_;
  bool attached_ = false;
};

const char* to_string(ring_consumer::read_status s) noexcept;

}  // namespace framehive::shm
