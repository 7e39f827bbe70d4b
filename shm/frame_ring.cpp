#include "shm/frame_ring.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>

#include "common/clock.hpp"
#include "shm/futex.hpp"

namespace framehive::shm {

namespace {

constexpr uint64_t page_bytes = 4096;
constexpr auto wait_slice = std::chrono::milliseconds(20);

constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

uint64_t header_region_bytes() { return align_up(sizeof(ring_header), page_bytes); }

uint32_t row_stride_for(uint32_t width) {
  return static_cast<uint32_t>(align_up(uint64_t{width} * 3, row_alignment));
}

bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > 100)
    return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

bool counted(uint32_t state) {
  return state == static_cast<uint32_t>(entry_state::attached) ||
         state == static_cast<uint32_t>(entry_state::held);
}

ring_header* header_of(const segment& seg) { return static_cast<ring_header*>(seg.data()); }

/// Slot addresses come from the caller's validated copy of the geometry, never
/// from the shared header (a slot count of 0 there must not divide by zero here).
slot_header* slot_at(ring_header* h, const ring_geometry& g, uint64_t seq) {
  auto* base = reinterpret_cast<uint8_t*>(h) + g.slots_offset;
  return reinterpret_cast<slot_header*>(base + (seq % g.slot_count) * g.slot_bytes);
}

uint8_t* pixels_at(ring_header* h, const ring_geometry& g, uint64_t seq) {
  return reinterpret_cast<uint8_t*>(slot_at(h, g, seq)) + slot_header_bytes;
}

ring_error bad_field(const std::string& name, const char* field, uint64_t value, const std::string& why) {
  return ring_error{ring_errc::bad_layout, "ring '" + name + "': header field " + field + " is " +
                                               std::to_string(value) + " (" + why + ")"};
}

/// The sizes of a geometry: rows fit their slots and the slots fit the segment,
/// computed so that no product can overflow.
std::optional<ring_error> check_sizes(const ring_geometry& g, uint64_t mapped, const std::string& name) {
  if (g.stride != row_stride_for(g.width))
    return bad_field(name, "stride", g.stride,
                     "a frame " + std::to_string(g.width) + " wide has rows of " +
                         std::to_string(row_stride_for(g.width)) + " bytes");
  const uint64_t frame_bytes = uint64_t{g.stride} * g.height;  // < 2^17 * 2^15: no overflow
  if (g.slot_bytes < slot_header_bytes + frame_bytes || g.slot_bytes > mapped ||
      g.slot_bytes % alignof(slot_header) != 0)
    return bad_field(name, "slot_bytes", g.slot_bytes,
                     "a slot holds " + std::to_string(slot_header_bytes + frame_bytes) +
                         " bytes of header and pixels and must fit the segment of " + std::to_string(mapped));
  if (g.slots_offset < sizeof(ring_header) || g.slots_offset > mapped ||
      g.slots_offset % alignof(slot_header) != 0)
    return bad_field(name, "slots_offset", g.slots_offset,
                     "slots start after the header, inside the segment");
  if (g.segment_bytes != mapped)
    return bad_field(name, "segment_bytes", g.segment_bytes,
                     "the segment is " + std::to_string(mapped) + " bytes long");
  uint64_t slots_total = 0;
  if (__builtin_mul_overflow(uint64_t{g.slot_count}, g.slot_bytes, &slots_total) ||
      slots_total > mapped - g.slots_offset)
    return bad_field(name, "slot_count", g.slot_count,
                     std::to_string(g.slot_count) + " slots of " + std::to_string(g.slot_bytes) +
                         " bytes do not fit the segment of " + std::to_string(mapped) + " bytes");
  return std::nullopt;
}

struct validated_segment {
  segment seg;
  ring_geometry geo;
};

/// Opens a segment and checks that it is a ring of our layout with a possible geometry.
result<validated_segment, ring_error> open_validated(const std::string& name) {
  if (!valid_name(name))
    return ring_error{ring_errc::invalid_argument, "invalid ring name '" + name + "'"};
  auto seg = segment::open(name);
  if (!seg)
    return seg.error();
  if (seg->size() < sizeof(ring_header))
    return ring_error{ring_errc::bad_layout, "'" + name + "' is too small to be a frame ring"};
  auto geo = read_geometry(*header_of(*seg), seg->size(), name);
  if (!geo)
    return geo.error();
  return validated_segment{std::move(*seg), *geo};
}

void wake_producer(ring_header* h) {
  h->commit_word.fetch_add(1, std::memory_order_seq_cst);
  futex_wake_all(&h->commit_word);
}

void wake_consumers(ring_header* h) {
  h->publish_word.fetch_add(1, std::memory_order_seq_cst);
  futex_wake_all(&h->publish_word);
}

/// Makes entry `e` count for the producer from sequence `want` on. Returns the
/// sequence granted: `want`, or the oldest sequence the producer still keeps
/// if it already let go of `want`; `lost` grows by the difference.
///
/// Protocol with ring_producer::refresh_limit(): the producer publishes its
/// floor in retain_from and then scans the entries again; we store our
/// position and then read retain_from. With sequentially consistent
/// operations at least one side sees the other's store, so either the
/// producer's second scan counts us or we see its floor and move up to it.
uint64_t join_at(ring_header* h, consumer_entry& e, uint64_t generation, uint64_t want,
                 entry_state state, uint64_t& lost) {
  uint64_t pos = want;
  e.position.store(pack_position(generation, pos), std::memory_order_seq_cst);
  e.state.store(static_cast<uint32_t>(state), std::memory_order_seq_cst);
  while (true) {
    uint64_t floor = h->retain_from.load(std::memory_order_seq_cst);
    if (pos >= floor)
      return pos;
    lost += floor - pos;
    pos = floor;
    e.position.store(pack_position(generation, pos), std::memory_order_seq_cst);
  }
}

/// Claims a free entry for a new id, preferring never-used ones so that the
/// remembered positions of departed consumers last as long as possible.
consumer_entry* claim_free_entry(ring_header* h, const ring_geometry& g) {
  for (int pass = 0; pass < 2; ++pass) {
    for (uint32_t i = 0; i < g.consumer_capacity; ++i) {
      auto& e = h->consumers[i];
      if (pass == 0 && e.ever_used.load() != 0)
        continue;
      uint32_t expected = static_cast<uint32_t>(entry_state::free);
      if (e.state.compare_exchange_strong(expected, static_cast<uint32_t>(entry_state::claiming)))
        return &e;
    }
  }
  return nullptr;
}

/// The entry that belongs to `id`: a live one first, else a free one that remembers it.
/// A consumer's sampling, in its entry (the producer reads it in wanted()).
void store_sampling(consumer_entry& e, const sampling& s) noexcept {
  e.sample_every.store(std::max<uint32_t>(1, s.every));
  e.sample_rate_num.store(s.rate_den > 0 ? s.rate_num : 0);
  e.sample_rate_den.store(std::max<uint32_t>(1, s.rate_den));
}

sampling load_sampling(const consumer_entry& e) noexcept {
  sampling s;
  s.every = e.sample_every.load(std::memory_order_relaxed);
  s.rate_num = e.sample_rate_num.load(std::memory_order_relaxed);
  s.rate_den = e.sample_rate_den.load(std::memory_order_relaxed);
  return s;
}

consumer_entry* find_entry(ring_header* h, const ring_geometry& g, uint32_t id) {
  consumer_entry* remembered = nullptr;
  for (uint32_t i = 0; i < g.consumer_capacity; ++i) {
    auto& e = h->consumers[i];
    uint32_t st = e.state.load();
    if (e.id.load() != id)
      continue;
    if (st != static_cast<uint32_t>(entry_state::free))
      return &e;
    if (e.ever_used.load() != 0)
      remembered = &e;
  }
  return remembered;
}

/// Bumps the generation of `e` (fencing whoever held it), keeping `committed`.
uint64_t bump_generation(consumer_entry& e) {
  uint64_t pos = e.position.load();
  while (!e.position.compare_exchange_weak(
      pos, pack_position(position_generation(pos) + 1, position_committed(pos)))) {
  }
  return position_generation(pos) + 1;
}

pid_t token_pid(uint64_t token) { return static_cast<pid_t>(token & 0xffffffffu); }

/// The spin settings a consumer attaches with: the options, unless the
/// environment overrides them (see attach_options::spin).
spin_policy spin_policy_for(const attach_options& o) {
  spin_mode mode = o.spin;
  uint64_t max_ns = o.max_spin_ns;
  if (const char* m = std::getenv("FRAMEHIVE_RING_SPIN"))
    mode = parse_spin_mode(m).value_or(mode);
  if (const char* us = std::getenv("FRAMEHIVE_RING_SPIN_US")) {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(us, &end, 10);
    if (end != us && *end == '\0' && v <= 10'000)
      max_ns = v * 1000;
  }
  return spin_policy{mode, max_ns};
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

uint64_t self_start_time() {
  auto t = process_start_time(getpid());
  return t ? *t : 0;
}

}  // namespace

// -- sizes --------------------------------------------------------------------

uint64_t slot_bytes_for(uint32_t width, uint32_t height) {
  return align_up(slot_header_bytes + uint64_t{row_stride_for(width)} * height, page_bytes);
}

uint64_t segment_bytes_for(uint32_t width, uint32_t height, uint32_t slot_count) {
  return header_region_bytes() + slot_bytes_for(width, height) * slot_count;
}

// -- geometry -----------------------------------------------------------------

result<ring_geometry, ring_error> read_geometry(const ring_header& h, uint64_t mapped_bytes,
                                                const std::string& name) {
  const uint64_t magic = h.magic.load(std::memory_order_acquire);
  if (magic != ring_magic)
    return ring_error{
        ring_errc::bad_layout,
        "'" + name + "' is not a framehive frame ring (header field magic is " + std::to_string(magic) + ")"};
  // One read of each field: the checks below and the caller see the same values.
  const uint32_t version = h.layout_version;
  const uint32_t header_bytes = h.header_bytes;
  const uint32_t format = h.format;
  ring_geometry g;
  g.slot_count = h.slot_count;
  g.consumer_capacity = h.consumer_capacity;
  g.slot_bytes = h.slot_bytes;
  g.slots_offset = h.slots_offset;
  g.segment_bytes = h.segment_bytes;
  g.width = h.width;
  g.height = h.height;
  g.stride = h.stride;
  if (version != ring_layout_version)
    return ring_error{ring_errc::bad_layout, "ring '" + name + "' has layout version " +
                                                 std::to_string(version) + ", expected " +
                                                 std::to_string(ring_layout_version)};
  if (header_bytes != sizeof(ring_header))
    return bad_field(name, "header_bytes", header_bytes,
                     "this layout's header is " + std::to_string(sizeof(ring_header)) + " bytes");
  if (g.consumer_capacity == 0 || g.consumer_capacity > max_consumers)
    return bad_field(name, "consumer_capacity", g.consumer_capacity,
                     "the layout has 1 to " + std::to_string(max_consumers) + " consumer entries");
  if (g.slot_count < 2)
    return bad_field(name, "slot_count", g.slot_count, "a ring has at least 2 slots");
  if (g.width == 0 || g.width > max_frame_side)
    return bad_field(name, "width", g.width,
                     "frames are 1 to " + std::to_string(max_frame_side) + " pixels wide");
  if (g.height == 0 || g.height > max_frame_side)
    return bad_field(name, "height", g.height,
                     "frames are 1 to " + std::to_string(max_frame_side) + " pixels high");
  if (format != static_cast<uint32_t>(pixel_format::bgr24))
    return bad_field(name, "format", format, "the only pixel format is bgr24 (1)");
  if (auto err = check_sizes(g, mapped_bytes, name))
    return *err;
  return g;
}

uint64_t ring_status::fill() const {
  uint64_t floor = produced;
  for (const auto& c : consumers)
    if (c.state == entry_state::attached || c.state == entry_state::held)
      floor = std::min(floor, c.committed);
  return produced - floor;
}

// -- frame_ring (owner) -------------------------------------------------------

result<frame_ring, ring_error> frame_ring::create(const ring_options& o) {
  if (!valid_name(o.name))
    return ring_error{ring_errc::invalid_argument,
                      "invalid ring name '" + o.name + "' (use letters, digits, '.', '_', '-')"};
  if (o.width == 0 || o.height == 0 || o.width > max_frame_side || o.height > max_frame_side)
    return ring_error{ring_errc::invalid_argument, "ring '" + o.name + "': frame geometry " +
                                                       std::to_string(o.width) + "x" +
                                                       std::to_string(o.height) + " is out of range (1.." +
                                                       std::to_string(max_frame_side) + ")"};
  if (o.slot_count < 2)
    return ring_error{ring_errc::invalid_argument,
                      "ring '" + o.name + "' needs at least 2 slots, got " + std::to_string(o.slot_count)};
  const uint64_t slot_bytes = slot_bytes_for(o.width, o.height);
  uint32_t slots = o.slot_count;
  if (o.max_bytes != 0) {
    uint64_t fit = o.max_bytes > header_region_bytes() ? (o.max_bytes - header_region_bytes()) / slot_bytes : 0;
    if (fit < 2)
      return ring_error{ring_errc::too_large,
                        "ring '" + o.name + "': a " + std::to_string(o.width) + "x" + std::to_string(o.height) +
                            " frame needs " + format_bytes(slot_bytes) + " per slot, and the cap of " +
                            format_bytes(o.max_bytes) + " holds fewer than 2 slots"};
    slots = static_cast<uint32_t>(std::min<uint64_t>(slots, fit));
  }
  const uint64_t bytes = header_region_bytes() + slot_bytes * slots;
  auto seg = segment::create(o.name, bytes, o.shm_dir);
  if (!seg)
    return seg.error();

  ring_geometry g;
  g.slot_count = slots;
  g.consumer_capacity = max_consumers;
  g.slot_bytes = slot_bytes;
  g.slots_offset = header_region_bytes();
  g.segment_bytes = bytes;
  g.width = o.width;
  g.height = o.height;
  g.stride = row_stride_for(o.width);
  auto* h = new (seg->data()) ring_header();
  h->layout_version = ring_layout_version;
  h->header_bytes = sizeof(ring_header);
  h->slot_count = g.slot_count;
  h->consumer_capacity = g.consumer_capacity;
  h->slot_bytes = g.slot_bytes;
  h->slots_offset = g.slots_offset;
  h->segment_bytes = g.segment_bytes;
  h->width = g.width;
  h->height = g.height;
  h->stride = g.stride;
  h->format = static_cast<uint32_t>(pixel_format::bgr24);
  h->owner_pid = static_cast<uint32_t>(getpid());
  h->owner_start = self_start_time();
  h->created_ns = monotonic_ns();
  std::snprintf(h->name, sizeof(h->name), "%s", o.name.c_str());
  for (uint32_t s = 0; s < slots; ++s)
    slot_at(h, g, s)->seq = ~uint64_t{0};  // no sequence yet
  h->magic.store(ring_magic, std::memory_order_release);
  return frame_ring{std::move(*seg), g};
}

ring_header* frame_ring::header() const noexcept { return header_of(seg_); }

result<unit, ring_error> frame_ring::reserve_consumer(uint32_t id, uint64_t start_seq, const sampling& sample) {
  auto* h = header();
  if (auto* e = find_entry(h, geo_, id); e && e->state.load() != static_cast<uint32_t>(entry_state::free))
    return ring_error{ring_errc::consumer_busy,
                      "ring '" + name() + "': consumer " + std::to_string(id) + " is already registered"};
  auto* e = claim_free_entry(h, geo_);
  if (!e)
    return ring_error{ring_errc::table_full, "ring '" + name() + "': all " +
                                                 std::to_string(max_consumers) + " consumer entries are taken"};
  uint64_t gen = position_generation(e->position.load()) + 1;
  e->id.store(id);
  e->pid.store(0);
  e->pid_start.store(0);
  store_sampling(*e, sample);
  e->read_high.store(start_seq);
  e->redelivered.store(0);
  e->restarts.store(0);
  e->ever_used.store(1);
  uint64_t lost = 0;
  join_at(h, *e, gen, start_seq, entry_state::held, lost);
  return unit{};
}

std::vector<uint32_t> frame_ring::reclaim_dead_consumers() {
  std::vector<uint32_t> ids;
  auto* h = header();
  for (uint32_t i = 0; i < geo_.consumer_capacity; ++i) {
    auto& e = h->consumers[i];
    if (e.state.load() != static_cast<uint32_t>(entry_state::attached))
      continue;
    uint64_t pos = e.position.load();
    auto pid = static_cast<pid_t>(e.pid.load());
    if (process_alive(pid, e.pid_start.load()))
      continue;
    // Fence first: if the process was only paused, its late commits now fail.
    uint64_t fenced = pack_position(position_generation(pos) + 1, position_committed(pos));
    if (!e.position.compare_exchange_strong(pos, fenced))
      continue;  // taken over meanwhile by a new process
    uint32_t attached = static_cast<uint32_t>(entry_state::attached);
    e.state.compare_exchange_strong(attached, static_cast<uint32_t>(entry_state::held));
    e.pid.store(0);
    ids.push_back(e.id.load());
  }
  return ids;
}

bool frame_ring::mark_consumer_dead(uint32_t id) {
  auto* h = header();
  auto* e = find_entry(h, geo_, id);
  if (!e || e->state.load() != static_cast<uint32_t>(entry_state::attached))
    return false;
  bump_generation(*e);
  e->state.store(static_cast<uint32_t>(entry_state::held));
  e->pid.store(0);
  return true;
}

bool frame_ring::release_consumer(uint32_t id) {
  auto* h = header();
  auto* e = find_entry(h, geo_, id);
  if (!e || !counted(e->state.load()))
    return false;
  bump_generation(*e);
  e->pid.store(0);
  e->state.store(static_cast<uint32_t>(entry_state::free), std::memory_order_seq_cst);
  wake_producer(h);
  return true;
}

void frame_ring::revoke_producer() {
  auto* h = header();
  uint64_t tok = h->producer_token.load();
  while (!h->producer_token.compare_exchange_weak(tok, ((tok >> 32) + 1) << 32)) {
  }
  wake_producer(h);
  wake_consumers(h);
}

ring_status frame_ring::status() const {
  auto* h = header();
  ring_status s;
  s.name = name();
  s.slot_count = geo_.slot_count;
  s.width = geo_.width;
  s.height = geo_.height;
  s.segment_bytes = geo_.segment_bytes;
  s.produced = h->producer_seq.load();
  s.next_frame_index = h->next_frame_index.load();
  s.retain_from = h->retain_from.load();
  s.stream = static_cast<stream_state>(h->stream.load());
  if (s.stream == stream_state::failed)
    s.error = std::string(h->error_text, strnlen(h->error_text, sizeof(h->error_text)));
  s.producer_pid = static_cast<uint32_t>(token_pid(h->producer_token.load()));
  s.producer_alive = s.producer_pid != 0 && process_alive(static_cast<pid_t>(s.producer_pid),
                                                          h->producer_start.load());
  s.producer_wait_ns = h->producer_wait_ns.load();
  for (uint32_t i = 0; i < geo_.consumer_capacity; ++i) {
    const auto& e = h->consumers[i];
    auto st = static_cast<entry_state>(e.state.load());
    if (st == entry_state::free || st == entry_state::claiming)
      continue;
    uint64_t pos = e.position.load();
    consumer_status c;
    c.id = e.id.load();
    c.state = st;
    c.pid = e.pid.load();
    c.generation = position_generation(pos);
    c.committed = position_committed(pos);
    c.read_high = e.read_high.load();
    c.in_hand = e.in_hand.load();
    c.sample = load_sampling(e);
    c.restarts = e.restarts.load();
    c.redelivered = e.redelivered.load();
    s.consumers.push_back(c);
  }
  return s;
}

int64_t frame_ring::next_frame_index() const noexcept { return header()->next_frame_index.load(); }

std::optional<int64_t> frame_ring::frame_index_at(uint64_t seq) const {
  auto* h = header();
  if (seq >= h->producer_seq.load())
    return std::nullopt;
  const auto* sh = slot_at(h, geo_, seq);
  if (sh->seq != seq)
    return std::nullopt;
  return sh->frame_index;
}

// -- ring_producer ------------------------------------------------------------

result<ring_producer, ring_error> ring_producer::open(const std::string& name) {
  auto seg = open_validated(name);
  if (!seg)
    return seg.error();
  auto* h = header_of(seg->seg);
  if (h->stream.load() != static_cast<uint32_t>(stream_state::running))
    return ring_error{ring_errc::invalid_argument, "ring '" + name + "' has already ended"};
  const auto me = static_cast<uint32_t>(getpid());
  const uint64_t my_start = self_start_time();
  uint64_t tok = h->producer_token.load();
  while (true) {
    pid_t holder = token_pid(tok);
    if (holder != 0 && static_cast<uint32_t>(holder) != me &&
        process_alive(holder, h->producer_start.load()))
      return ring_error{ring_errc::producer_busy, "ring '" + name + "' already has a producer (pid " +
                                                      std::to_string(holder) + ")"};
    // Start time before the token: an observer that sees our pid sees our start.
    h->producer_start.store(my_start);
    uint64_t mine = (((tok >> 32) + 1) << 32) | me;
    if (h->producer_token.compare_exchange_strong(tok, mine)) {
      ring_producer p{std::move(seg->seg), seg->geo};
      p.token_ = mine;
      p.seq_ = h->producer_seq.load();
      return p;
    }
  }
}

ring_header* ring_producer::header() const noexcept { return header_of(seg_); }

bool ring_producer::fenced() const noexcept {
  return header()->producer_token.load(std::memory_order_relaxed) != token_;
}

uint64_t ring_producer::scan_floor() const noexcept {
  auto* h = header();
  uint64_t floor = seq_;
  for (uint32_t i = 0; i < geo_.consumer_capacity; ++i) {
    auto& e = h->consumers[i];
    if (counted(e.state.load(std::memory_order_seq_cst)))
      floor = std::min(floor, position_committed(e.position.load(std::memory_order_seq_cst)));
  }
  return floor;
}

void ring_producer::refresh_limit() noexcept {
  // See join_at(): publish the floor, then scan once more for late joiners.
  auto* h = header();
  uint64_t first = scan_floor();
  h->retain_from.store(first, std::memory_order_seq_cst);
  uint64_t second = scan_floor();
  uint64_t floor = std::min(first, second);
  if (floor < first)
    h->retain_from.store(floor, std::memory_order_seq_cst);
  limit_ = floor + geo_.slot_count;
}

ring_producer::acquire_status ring_producer::acquire(slot& out, std::chrono::nanoseconds timeout) {
  auto* h = header();
  if (fenced())
    return acquire_status::fenced;
  if (h->stream.load() != static_cast<uint32_t>(stream_state::running))
    return acquire_status::closed;
  if (seq_ >= limit_)
    refresh_limit();
  if (seq_ >= limit_) {
    const uint64_t start = monotonic_ns();
    const uint64_t deadline = start + static_cast<uint64_t>(timeout.count());
    auto status = acquire_status::ready;
    h->producer_waiting.store(1, std::memory_order_seq_cst);
    while (true) {
      uint32_t word = h->commit_word.load(std::memory_order_seq_cst);
      refresh_limit();
      if (seq_ < limit_)
        break;
      if (fenced()) {
        status = acquire_status::fenced;
        break;
      }
      uint64_t now = monotonic_ns();
      if (now >= deadline) {
        status = acquire_status::timeout;
        break;
      }
      futex_wait(&h->commit_word, word,
                 std::min<std::chrono::nanoseconds>(std::chrono::nanoseconds(deadline - now), wait_slice));
    }
    h->producer_waiting.store(0, std::memory_order_seq_cst);
    h->producer_wait_ns.fetch_add(monotonic_ns() - start, std::memory_order_relaxed);
    if (status != acquire_status::ready)
      return status;
  }
  out.pixels = pixels_at(h, geo_, seq_);
  out.stride = geo_.stride;
  out.width = geo_.width;
  out.height = geo_.height;
  out.seq = seq_;
  slot_ready_ = true;
  return acquire_status::ready;
}

bool ring_producer::publish(const frame_info& info) {
  if (!slot_ready_ || fenced())
    return false;
  auto* h = header();
  auto* sh = slot_at(h, geo_, seq_);
  sh->seq = seq_;
  sh->frame_index = info.frame_index;
  sh->pts = info.pts;
  sh->time_base_num = info.time_base_num;
  sh->time_base_den = info.time_base_den;
  sh->keyframe = info.keyframe ? 1 : 0;
  sh->prev_pts = info.prev_pts;
  sh->width = info.width ? std::min(info.width, geo_.width) : geo_.width;
  sh->height = info.height ? std::min(info.height, geo_.height) : geo_.height;
  sh->stride = geo_.stride;
  sh->format = static_cast<uint32_t>(pixel_format::bgr24);
  h->next_frame_index.store(info.frame_index + 1, std::memory_order_relaxed);
  sh->publish_ns = monotonic_ns();
  h->producer_seq.store(seq_ + 1, std::memory_order_seq_cst);
  ++seq_;
  slot_ready_ = false;
  h->publish_word.fetch_add(1, std::memory_order_seq_cst);
  if (h->consumer_waiters.load(std::memory_order_seq_cst) != 0)
    futex_wake_all(&h->publish_word);
  return true;
}

bool ring_producer::wanted(const frame_info& f) const noexcept {
  auto* h = header();
  bool any = false;
  for (uint32_t i = 0; i < geo_.consumer_capacity; ++i) {
    auto& e = h->consumers[i];
    if (!counted(e.state.load(std::memory_order_relaxed)))
      continue;
    any = true;
    if (takes(load_sampling(e), f.frame_index, f.pts, f.prev_pts, f.time_base_num, f.time_base_den))
      return true;
  }
  return !any;  // nobody registered yet: keep everything for whoever joins
}

void ring_producer::finish() {
  if (fenced())
    return;
  auto* h = header();
  h->stream.store(static_cast<uint32_t>(stream_state::end_of_stream), std::memory_order_seq_cst);
  wake_consumers(h);
}

void ring_producer::fail(std::string_view reason) {
  if (fenced())
    return;
  auto* h = header();
  std::size_t n = std::min(reason.size(), sizeof(h->error_text) - 1);
  std::memcpy(h->error_text, reason.data(), n);
  h->error_text[n] = '\0';
  h->stream.store(static_cast<uint32_t>(stream_state::failed), std::memory_order_seq_cst);
  wake_consumers(h);
}

int64_t ring_producer::next_frame_index() const noexcept {
  return header()->next_frame_index.load();
}
uint32_t ring_producer::width() const noexcept {
  return geo_.width;
}
uint32_t ring_producer::height() const noexcept {
  return geo_.height;
}
uint32_t ring_producer::stride() const noexcept {
  return geo_.stride;
}
uint32_t ring_producer::slot_count() const noexcept {
  return geo_.slot_count;
}

// -- ring_consumer ------------------------------------------------------------

result<ring_consumer, ring_error> ring_consumer::attach(const std::string& name, uint32_t id,
                                                        const attach_options& o) {
  auto seg = open_validated(name);
  if (!seg)
    return seg.error();
  auto* h = header_of(seg->seg);
  const auto me = static_cast<uint32_t>(getpid());
  const uint64_t my_start = self_start_time();
  ring_consumer c;
  c.id_ = id;
  c.sample_ = o.sample;
  c.spin_ = spin_policy_for(o);

  for (int attempt = 0; attempt < 1000; ++attempt) {
    consumer_entry* e = find_entry(h, seg->geo, id);
    uint32_t st = e ? e->state.load() : static_cast<uint32_t>(entry_state::free);
    if (e && st == static_cast<uint32_t>(entry_state::claiming))
      continue;  // someone is setting it up; look again
    if (e && counted(st)) {
      // Take over a held entry, or an attached one whose process is gone.
      if (st == static_cast<uint32_t>(entry_state::attached) &&
          process_alive(static_cast<pid_t>(e->pid.load()), e->pid_start.load()))
        return ring_error{ring_errc::consumer_busy, "ring '" + name + "': consumer " + std::to_string(id) +
                                                        " is attached by live pid " +
                                                        std::to_string(e->pid.load())};
      // Claim the pid first so the owner's dead-consumer scan leaves us alone,
      // then fence the previous holder by bumping the generation.
      e->pid_start.store(my_start);
      e->pid.store(me);
      uint64_t pos = e->position.load();
      uint64_t gen = position_generation(pos) + 1;
      if (!e->position.compare_exchange_strong(pos, pack_position(gen, position_committed(pos))))
        continue;
      store_sampling(*e, o.sample);
      e->in_hand.store(0);
      e->state.store(static_cast<uint32_t>(entry_state::attached), std::memory_order_seq_cst);
      c.generation_ = gen;
      c.committed_ = position_committed(pos);
      uint64_t high = e->read_high.load();
      c.redelivered_ = high > c.committed_ ? high - c.committed_ : 0;
      e->redelivered.fetch_add(c.redelivered_);
      e->restarts.fetch_add(1);
      c.index_ = static_cast<uint32_t>(e - h->consumers);
    } else {
      // A new id, or one that left earlier (free entry remembering it).
      bool remembered = e != nullptr;
      if (remembered) {
        uint32_t expected = static_cast<uint32_t>(entry_state::free);
        if (!e->state.compare_exchange_strong(expected, static_cast<uint32_t>(entry_state::claiming)))
          continue;
      } else {
        e = claim_free_entry(h, seg->geo);
        if (!e)
          return ring_error{ring_errc::table_full, "ring '" + name + "': all " +
                                                       std::to_string(max_consumers) +
                                                       " consumer entries are taken"};
      }
      uint64_t old = e->position.load();
      uint64_t gen = position_generation(old) + 1;
      uint64_t want = h->producer_seq.load();
      if (remembered && o.start == attach_options::start_mode::resume)
        want = position_committed(old);
      else if (o.start == attach_options::start_mode::at)
        want = o.at_seq;
      e->id.store(id);
      e->pid_start.store(my_start);
      e->pid.store(me);
      store_sampling(*e, o.sample);
      if (!remembered) {
        e->redelivered.store(0);
        e->restarts.store(0);
      }
      e->read_high.store(want);
      e->in_hand.store(0);
      e->ever_used.store(1);
      c.committed_ = join_at(h, *e, gen, want, entry_state::attached, c.lost_);
      c.generation_ = gen;
      c.index_ = static_cast<uint32_t>(e - h->consumers);
    }
    c.cursor_ = c.committed_;
    c.handed_high_ = c.committed_;
    c.start_seq_ = c.committed_;
    c.seg_ = std::move(seg->seg);
    c.geo_ = seg->geo;
    c.attached_ = true;
    return c;
  }
  return ring_error{ring_errc::consumer_busy,
                    "ring '" + name + "': consumer " + std::to_string(id) + " kept changing while attaching"};
}

ring_consumer::ring_consumer(ring_consumer&& o) noexcept { *this = std::move(o); }

ring_consumer& ring_consumer::operator=(ring_consumer&& o) noexcept {
  if (this != &o) {
    seg_ = std::move(o.seg_);
    geo_ = o.geo_;
    id_ = o.id_;
    index_ = o.index_;
    generation_ = o.generation_;
    committed_ = o.committed_;
    cursor_ = o.cursor_;
    handed_high_ = o.handed_high_;
    start_seq_ = o.start_seq_;
    redelivered_ = o.redelivered_;
    lost_ = o.lost_;
    sample_ = o.sample_;
    spin_ = o.spin_;
    attached_ = o.attached_;
    o.attached_ = false;
  }
  return *this;
}

ring_consumer::~ring_consumer() {
  if (!attached_)
    return;
  // Gone without detach(): keep the position, like a crash, but say so at once.
  auto& e = entry();
  if (position_generation(e.position.load()) == generation_) {
    uint32_t attached = static_cast<uint32_t>(entry_state::attached);
    if (e.state.compare_exchange_strong(attached, static_cast<uint32_t>(entry_state::held)))
      e.pid.store(0);
  }
}

ring_header* ring_consumer::header() const noexcept { return header_of(seg_); }
consumer_entry& ring_consumer::entry() const noexcept { return header()->consumers[index_]; }

bool ring_consumer::producer_gone() const {
  auto* h = header();
  pid_t pid = token_pid(h->producer_token.load());
  if (pid == 0)
    return false;  // not started yet (or revoked): a new one may come
  return !process_alive(pid, h->producer_start.load());
}

ring_consumer::read_status ring_consumer::next(frame_view& out, std::chrono::nanoseconds timeout) {
  auto* h = header();
  auto& e = entry();
  const uint64_t deadline = monotonic_ns() + static_cast<uint64_t>(std::max<int64_t>(0, timeout.count()));
  bool registered = false;
  int waits = 0;
  uint64_t wait_began = 0;  // when this call first found nothing new (0: it has not)
  auto leave = [&](read_status s) {
    if (registered)
      h->consumer_waiters.fetch_sub(1, std::memory_order_seq_cst);
    return s;
  };
  while (true) {
    if (position_generation(e.position.load(std::memory_order_relaxed)) != generation_)
      return leave(read_status::fenced);
    const uint64_t produced = h->producer_seq.load(std::memory_order_seq_cst);
    while (cursor_ < produced) {
      const slot_header* sh = slot_at(h, geo_, cursor_);
      if (sh->seq != cursor_)
        return leave(read_status::fenced);  // overwritten: we were released
      if (!sample_.takes_all() && !takes(sample_, sh->frame_index, sh->pts, sh->prev_pts, sh->time_base_num,
                                         sh->time_base_den)) {
        ++cursor_;
        continue;
      }
      out.seq = cursor_;
      out.frame_index = sh->frame_index;
      out.pts = sh->pts;
      out.time_base_num = sh->time_base_num;
      out.time_base_den = sh->time_base_den;
      out.keyframe = sh->keyframe != 0;
      // The slot says how much of it the frame fills; never more than the ring's geometry.
      out.width = std::min(sh->width, geo_.width);
      out.height = std::min(sh->height, geo_.height);
      out.stride = geo_.stride;
      out.format = static_cast<pixel_format>(sh->format);
      out.publish_ns = sh->publish_ns;
      out.prev_pts = sh->prev_pts;
      out.pixels = pixels_at(h, geo_, cursor_);
      if (wait_began != 0)  // how soon the frame came after we began to wait: the spin's measure
        spin_.record(sh->publish_ns > wait_began ? sh->publish_ns - wait_began : 0);
      ++cursor_;
      if (cursor_ > handed_high_) {
        handed_high_ = cursor_;
        e.read_high.store(handed_high_, std::memory_order_relaxed);
      }
      e.in_hand.store(cursor_, std::memory_order_relaxed);
      return leave(read_status::frame);
    }
    // Frames skipped by sampling with nothing else outstanding: acknowledge
    // them now so that they do not hold the producer back.
    if (handed_high_ <= committed_ && cursor_ > committed_ && !store_committed(cursor_))
      return leave(read_status::fenced);

    uint32_t st = h->stream.load(std::memory_order_seq_cst);
    if (st != static_cast<uint32_t>(stream_state::running)) {
      if (cursor_ < h->producer_seq.load(std::memory_order_seq_cst))
        continue;
      return leave(st == static_cast<uint32_t>(stream_state::end_of_stream) ? read_status::end_of_stream
                                                                           : read_status::producer_failed);
    }
    const uint64_t now = monotonic_ns();
    if (now >= deadline) {
      if (wait_began != 0)
        spin_.record(now - wait_began);
      return leave(read_status::timeout);
    }
    if (wait_began == 0) {
      wait_began = now;
      // Spin first, unregistered: while we spin the producer needs no futex_wake for us.
      if (const uint64_t budget = spin_.budget_ns(); budget > 0 && spin_for_news(std::min(deadline, now + budget)))
        continue;
    }
    if (!registered) {
      h->consumer_waiters.fetch_add(1, std::memory_order_seq_cst);
      registered = true;
      continue;  // look again now that the producer will wake us
    }
    if (waits > 0 && producer_gone() && cursor_ >= h->producer_seq.load())
      return leave(read_status::producer_lost);
    uint32_t word = h->publish_word.load(std::memory_order_seq_cst);
    if (cursor_ < h->producer_seq.load(std::memory_order_seq_cst) ||
        h->stream.load() != static_cast<uint32_t>(stream_state::running))
      continue;
    futex_wait(&h->publish_word, word,
               std::min<std::chrono::nanoseconds>(std::chrono::nanoseconds(deadline - now), wait_slice));
    ++waits;
  }
}

/// Spins until a frame past our cursor is published, the stream changes state,
/// or `until_ns`. Pauses between looks, and yields the CPU every few looks:
/// on two cores the decoder's threads need it more than we do.
bool ring_consumer::spin_for_news(uint64_t until_ns) const noexcept {
  auto* h = header();
  for (unsigned looks = 1;; ++looks) {
    if (cursor_ < h->producer_seq.load(std::memory_order_acquire) ||
        h->stream.load(std::memory_order_relaxed) != static_cast<uint32_t>(stream_state::running))
      return true;
    if (monotonic_ns() >= until_ns)
      return false;
    for (int i = 0; i < 8; ++i)
      cpu_relax();
    if (looks % 4 == 0)
      sched_yield();
  }
}

bool ring_consumer::store_committed(uint64_t committed) {
  auto& e = entry();
  uint64_t expected = e.position.load(std::memory_order_relaxed);
  while (true) {
    if (position_generation(expected) != generation_)
      return false;
    if (position_committed(expected) >= committed)
      break;  // moved up already (join clamp)
    if (e.position.compare_exchange_weak(expected, pack_position(generation_, committed),
                                         std::memory_order_seq_cst))
      break;
  }
  committed_ = std::max(committed_, committed);
  auto* h = header();
  if (h->producer_waiting.load(std::memory_order_seq_cst) != 0)
    wake_producer(h);
  return true;
}

void ring_consumer::done_with_frame() noexcept {
  if (attached_)
    entry().in_hand.store(0, std::memory_order_relaxed);
}

bool ring_consumer::commit(uint64_t seq) {
  if (!attached_)
    return false;
  uint64_t want = std::min(seq + 1, cursor_);
  if (want <= committed_)
    return position_generation(entry().position.load()) == generation_;
  return store_committed(want);
}

void ring_consumer::detach() {
  if (!attached_)
    return;
  attached_ = false;
  auto& e = entry();
  uint64_t pos = e.position.load();
  if (position_generation(pos) != generation_)
    return;  // fenced: the entry is no longer ours
  if (!e.position.compare_exchange_strong(pos, pack_position(generation_ + 1, position_committed(pos))))
    return;
  e.pid.store(0);
  e.state.store(static_cast<uint32_t>(entry_state::free), std::memory_order_seq_cst);
  wake_producer(header());
}

std::string ring_consumer::error_text() const {
  auto* h = header();
  return std::string(h->error_text, strnlen(h->error_text, sizeof(h->error_text)));
}

uint32_t ring_consumer::width() const noexcept {
  return geo_.width;
}
uint32_t ring_consumer::height() const noexcept {
  return geo_.height;
}

const char* to_string(ring_consumer::read_status s) noexcept {
  switch (s) {
    case ring_consumer::read_status::frame: return "frame";
    case ring_consumer::read_status::end_of_stream: return "end_of_stream";
    case ring_consumer::read_status::producer_failed: return "producer_failed";
    case ring_consumer::read_status::producer_lost: return "producer_lost";
    case ring_consumer::read_status::timeout: return "timeout";
    case ring_consumer::read_status::fenced: return "fenced";
  }
  return "unknown";
}

}  // namespace framehive::shm
