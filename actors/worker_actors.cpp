#include "actors/worker_actors.hpp"

#include <unistd.h>

#include <deque>
#include <filesystem>
#include <map>
#include <optional>

#include <spdlog/spdlog.h>
#include <opencv2/core.hpp>

#include "actors/guard.hpp"
#include "analysis/analyzer.hpp"
#include "analysis/result_codec.hpp"
#include "analysis/result_keys.hpp"
#include "common/backoff.hpp"
#include "common/clock.hpp"
#include "common/faults.hpp"
#include "common/logging.hpp"
#include "ingest/ring_pump.hpp"
#include "media/decoder.hpp"
#include "shm/frame_ring.hpp"

namespace framehive {

namespace {

// -- constants --------------------------------------------------------------------------

/// Work per tick: short enough that stop and exit messages get through.
constexpr auto slice = std::chrono::milliseconds(50);
/// How long one look at the ring (a free slot, the next frame) may block.
constexpr auto ring_wait = std::chrono::milliseconds(20);
/// Progress goes to the node this often while running.
constexpr uint64_t report_every_ns = to_ns(std::chrono::milliseconds(500));
/// A result batch not confirmed within this is sent again.
constexpr auto batch_timeout = std::chrono::seconds(15);
/// A batch that is not full yet is sent anyway once its first frame is this old.
constexpr uint64_t batch_max_age_ns = to_ns(std::chrono::milliseconds(200));
/// Batches sent but not acknowledged: the ring holds their frames meanwhile.
constexpr std::size_t max_batches_in_flight = 2;
/// Retries of an unconfirmed batch while the coordinator is away (restarting,
/// unreachable): 200 ms, 400 ms, ... up to 5 s.
constexpr backoff_policy batch_retry_policy{std::chrono::milliseconds(200), std::chrono::seconds(5)};
/// Retries are logged the first time and then every this many.
constexpr uint32_t log_every_retries = 10;
constexpr double ns_per_s = 1e9;
constexpr double ns_per_ms = 1e6;

uint32_t my_pid() {
  return static_cast<uint32_t>(getpid());
}

/// Frames per second over the interval since the last report.
struct rate_meter {
  uint64_t since_ns = monotonic_ns();
  int64_t since_frames = 0;
  double fps = 0;
  bool due(int64_t frames, uint64_t now) {
    if (now - since_ns < report_every_ns)
      return false;
    fps = static_cast<double>(frames - since_frames) / (static_cast<double>(now - since_ns) / ns_per_s);
    since_ns = now;
    since_frames = frames;
    return true;
  }
  /// The rate of the final report, whenever it comes.
  void close(int64_t frames) { due(frames, monotonic_ns() + report_every_ns); }
};

/// A ring frame as OpenCV sees it (no copy).
cv::Mat as_mat(const shm::frame_view& v) {
  return cv::Mat(static_cast<int>(v.height), static_cast<int>(v.width), CV_8UC3,
                 const_cast<uint8_t*>(v.pixels), v.stride);
}

/// Seconds per pts unit of a ring frame (0 if unknown).
double time_base_of(const shm::frame_view& v) {
  return v.time_base_den ? static_cast<double>(v.time_base_num) / v.time_base_den : 0.0;
}

// -- decoder -----------------------------------------------------------------------------

struct decoder_state {
  static inline const char* name = "decoder";
  decoder_task task;
  node_port_actor node;
  worker_options options;
  std::unique_ptr<media::decoder> dec;
  std::optional<shm::ring_producer> ring;
  ingest::pump_cursor cursor;
  std::optional<pacer> pace;  ///< only with task.pace_fps (tests)
  int64_t published = 0;
  int64_t first_frame = 0;  ///< where this decoder instance started
  int64_t position = 0;
  rate_meter rate;
  bool finished = false;
};

using decoder_self = decoder_actor::stateful_pointer<decoder_state>;

actor_progress progress_of(const decoder_state& st, actor_state state) {
  actor_progress p;
  p.video = st.task.video;
  p.epoch = st.task.epoch;
  p.kind = actor_kind::decoder;
  p.state = state;
  p.position = st.position;
  p.frames = st.published;
  p.fps = st.rate.fps;
  p.pid = my_pid();
  p.decode_errors = st.dec ? st.dec->decode_errors() : 0;
  return p;
}

void decoder_fail(decoder_self self, const std::string& why) {
  auto p = progress_of(self->state, actor_state::failed);
  p.error = why;
  self->send(self->state.node, p);
  self->quit();
}

/// Opens the ring and the input; the error's message if either fails.
std::optional<std::string> decoder_open(decoder_state& st) {
  auto producer = shm::ring_producer::open(st.task.ring);
  if (!producer)
    return producer.error().message;
  st.ring.emplace(std::move(*producer));
  // A restarted decoder continues at the ring's next frame.
  media::decoder_options opt;
  opt.start_frame = std::max<int64_t>(st.task.start_frame, st.ring->next_frame_index());
  opt.max_width = static_cast<int>(st.task.max_width);
  opt.allowed_protocols = st.options.allowed_protocols;
  auto dec = media::decoder::open(st.task.input, opt);
  if (!dec) {
    st.ring->fail(dec.error().message());
    return dec.error().message();
  }
  st.dec = std::move(*dec);
  st.position = opt.start_frame;
  st.first_frame = opt.start_frame;
  if (st.task.pace_fps > 0)
    st.pace.emplace(st.task.pace_fps);
  return std::nullopt;
}

/// Test-only hold (task.hold_at): true while the next frame is held back.
bool held(const decoder_state& s) {
  if (s.task.hold_at < 0 || s.position < s.task.hold_at)
    return false;
  std::error_code ec;
  return !std::filesystem::exists(s.task.hold_until, ec);
}

/// Decodes into the ring for one slice; when paced, one frame per slice.
result<ingest::pump_stats, media::media_error> decode_slice(decoder_state& s) {
  const uint64_t until = monotonic_ns() + to_ns(slice);
  const bool paced = s.pace.has_value();
  int64_t published_now = 0;
  ingest::pump_options o;
  o.slot_wait = ring_wait;
  o.should_stop = [until, paced, &published_now, &s] {
    return monotonic_ns() >= until || (paced && published_now > 0) || held(s);
  };
  o.on_frame = [&s, &published_now](const media::decoded_frame& f) {
    s.position = f.index + 1;
    ++s.published;
    ++published_now;
  };
  auto r = ingest::pump_into_ring(*s.dec, *s.ring, o, s.cursor);
  if (r && paced && published_now > 0)
    s.pace->wait();  // test-only pacing: at most pace_fps frames per second
  return r;
}

void decoder_tick(decoder_self self) {
  auto& s = self->state;
  if (s.finished)
    return;
  if (held(s)) {
    // Still alive while held: the node's hang detector hears from us.
    if (s.rate.due(s.published, monotonic_ns()))
      self->send(s.node, progress_of(s, actor_state::running));
    self->delayed_send(self, std::chrono::milliseconds(20), tick_atom::value);
    return;
  }
  auto r = decode_slice(s);
  if (!r) {
    decoder_fail(self, r.error().message());
    return;
  }
  if (r->fenced) {
    self->quit();  // another decoder owns the ring now
    return;
  }
  if (!r->stopped) {
    s.finished = true;
    // Frames skipped at the end (sampling) still count towards the total.
    s.position = std::max<int64_t>(s.position, s.dec->frames_decoded() + s.first_frame);
    s.rate.close(s.published);
    self->send(s.node, progress_of(s, actor_state::done));
    self->quit();
    return;
  }
  if (s.rate.due(s.published, monotonic_ns()))
    self->send(s.node, progress_of(s, actor_state::running));
  self->send(self, tick_atom::value);
}

decoder_actor::behavior_type decoder_behavior(decoder_self self, decoder_task task, node_port_actor node,
                                              worker_options options) {
  auto& st = self->state;
  st.task = std::move(task);
  st.node = std::move(node);
  st.options = std::move(options);
  if (auto err = decoder_open(st)) {
    decoder_fail(self, *err);
    return {[](tick_atom) {}};
  }
  log_about(spdlog::level::info, about_actor(st.task.video, "decoder"),
            "decoder video={} epoch={} input={} starts at frame {}", st.task.video, st.task.epoch, st.task.input,
            st.first_frame);
  self->send(self, tick_atom::value);
  return {[self](tick_atom) { decoder_tick(self); }};
}

// -- consumer ------------------------------------------------------------------------------

/// A result batch sent to the node and not acknowledged yet.
struct pending_batch {
  uint64_t id = 0;
  uint64_t last_seq = 0;  ///< ring sequence of its last frame: committed once acknowledged
  /// A holding analyzer checkpointed right before it left: only then is its
  /// end a point a restarted consumer can resume from, so only then does its
  /// acknowledgement commit the ring (others are stored and sent again).
  bool durable = true;
  bool acked = false;
  backoff retry{batch_retry_policy};
  result_batch batch;
};

/// A frame a holding analyzer took and has not settled yet.
struct held_frame {
  int64_t frame = 0;
  int64_t pts = 0;
  uint64_t seq = 0;
  double ms = 0;  ///< time take() spent on it
};

struct consumer_state {
  static inline const char* name = "consumer";
  consumer_task task;
  node_port_actor node;
  std::optional<shm::ring_consumer> ring;
  std::unique_ptr<analysis::analyzer> an;
  bool warms_up = false;  ///< the kind has a pre-roll: frames before emit_from warm it up
  /// A holding analyzer (clips) settles frames after later ones came: the
  /// frames it took and has not settled, in order; the ring keeps them
  /// (committed only through the last settled frame).
  bool holds = false;
  int64_t checkpoint_every = 0;     ///< holding: settled frames between checkpoints
  int64_t since_checkpoint = 0;     ///< holding: settled frames since the last one
  std::deque<held_frame> held;
  std::vector<analysis::settled_result> settled;
  result_batch building;
  /// Where the next batch's coverage starts. A consumer starts only where
  /// every earlier frame it takes is stored (its assignment starts at or
  /// below its watermark + 1; a restarted one resumes at its committed ring
  /// position, committed only once acknowledged), so its first batch covers
  /// from frame 0, and each later one from where the one before ended.
  int64_t covered_next = 0;
  uint64_t building_last_seq = 0;
  uint64_t building_since = 0;
  std::deque<pending_batch> unacked;  ///< in send order; committed strictly in order
  uint64_t next_batch_id = 1;
  bool eos = false;
  bool ticking = false;
  int64_t processed = 0;
  int64_t position = 0;
  rate_meter rate;
  fault_plan faults;
  std::map<int64_t, std::string> quarantine;  ///< frame -> reason
};

using consumer_self = consumer_actor::stateful_pointer<consumer_state>;

actor_progress progress_of(const consumer_state& st, actor_state state) {
  actor_progress p;
  p.video = st.task.video;
  p.epoch = st.task.epoch;
  p.kind = actor_kind::consumer;
  p.analyzer = st.task.analyzer;
  p.state = state;
  p.position = st.position;
  p.frames = st.processed;
  p.fps = st.rate.fps;
  p.pid = my_pid();
  p.redelivered = st.ring ? st.ring->redelivered() : 0;
  return p;
}

void consumer_fail(consumer_self self, const std::string& why) {
  auto p = progress_of(self->state, actor_state::failed);
  p.error = why;
  self->send(self->state.node, p);
  self->quit();
}

/// Every frame is committed and acknowledged: the final report, then leave.
void consumer_finish(consumer_self self) {
  auto& s = self->state;
  s.rate.close(s.processed);
  self->send(s.node, progress_of(s, actor_state::done));
  s.ring->detach();
  self->quit();
}

/// Makes the analyzer, attaches to the ring, reads faults and poison frames;
/// the error's message if the consumer cannot run.
std::optional<std::string> consumer_open(consumer_state& st) {
  std::string why;
  st.an = analysis::make_analyzer(st.task.analyzer, st.task.settings, &why);
  if (!st.an)
    return why;  // an unknown name, or a model this node lacks (named)
  st.warms_up = analysis::preroll_frames(st.task.analyzer) > 0;
  st.holds = st.an->holds_frames();
  shm::attach_options ao;
  ao.sample = st.task.take;
  auto ring = shm::ring_consumer::attach(st.task.ring, st.task.consumer_id, ao);
  if (!ring)
    return ring.error().message;
  st.ring.emplace(std::move(*ring));
  analysis::video_context ctx;
  ctx.width = static_cast<int>(st.ring->width());
  ctx.height = static_cast<int>(st.ring->height());
  ctx.fps = st.task.fps;
  ctx.output_dir = st.task.output_dir;
  if (st.holds) {
    // The ring keeps a holding analyzer's frames from its last checkpoint
    // on: the frames sent since (about a second of video, as the node sized
    // the ring), the batches in flight, and what the analyzer holds.
    const int64_t in_flight = static_cast<int64_t>(max_batches_in_flight + 1) * st.task.batch_frames;
    const int64_t room = std::max<int64_t>(2, static_cast<int64_t>(st.ring->slot_count()) - in_flight - 1);
    st.checkpoint_every = std::clamp<int64_t>(analysis::clips_checkpoint_frames(st.task.fps), 1, room / 2);
    ctx.may_hold = room - st.checkpoint_every;
  }
  st.an->begin(ctx);
  std::string err;
  st.faults = fault_plan::parse(st.task.settings.faults, &err);
  if (!err.empty())
    spdlog::warn("consumer: ignoring fault spec parts: {}", err);
  for (std::size_t i = 0; i < st.task.quarantine.size(); ++i)
    st.quarantine[st.task.quarantine[i]] =
        i < st.task.quarantine_reasons.size() ? st.task.quarantine_reasons[i] : "quarantined";
  st.building.video = st.task.video;
  st.building.epoch = st.task.epoch;
  st.building.analyzer = st.task.analyzer;
  return std::nullopt;
}

nlohmann::json quarantined_result(const std::string& reason) {
  return {{analysis::keys::quarantined, true}, {analysis::keys::reason, reason}};
}

/// The analyzer's result for one frame. Never throws: a poison frame, a fault
/// or an exception costs this frame only (quarantined, with the reason).
nlohmann::json analyse(consumer_state& s, const shm::frame_view& v, double t) {
  if (auto q = s.quarantine.find(v.frame_index); q != s.quarantine.end())
    return quarantined_result(q->second);
  try {
    if (auto f = s.faults.at(s.task.analyzer, v.frame_index))
      trigger(*f, s.task.analyzer + " at frame " + std::to_string(v.frame_index));
    auto r = s.an->process(as_mat(v), v.frame_index, t);
    return r.is_object() ? r : quarantined_result("analyzer returned no object");
  } catch (const std::exception& e) {
    return quarantined_result(std::string("analyzer threw: ") + e.what());
  } catch (...) {
    return quarantined_result("analyzer threw an unknown exception");
  }
}

/// Analyses one frame at or after emit_from into the batch being built.
void consume_frame(consumer_state& s, const shm::frame_view& v) {
  const double tb = time_base_of(v);
  const double t = static_cast<double>(v.pts) * tb;
  const uint64_t t0 = monotonic_ns();
  auto r = analyse(s, v, t);
  r[analysis::keys::ms] = static_cast<double>(monotonic_ns() - t0) / ns_per_ms;
  if (s.building.frames.empty())
    s.building_since = t0;
  s.building.time_base = tb;
  // The compact stored form (its time is pts x time base, not a member);
  // strings are kept as bytes: a path's bytes reach the user as they are.
  s.building.frames.push_back(frame_result{v.frame_index, v.pts, analysis::encode_result(r)});
  s.building_last_seq = v.seq;
  s.position = v.frame_index + 1;
  ++s.processed;
}

/// Results a holding analyzer settled go into the batch being built, in order.
void add_settled(consumer_state& s) {
  for (auto& r : s.settled) {
    while (!s.held.empty() && s.held.front().frame < r.frame)
      s.held.pop_front();  // never: an analyzer settles every frame it took
    if (s.held.empty() || s.held.front().frame != r.frame)
      continue;
    const auto h = s.held.front();
    s.held.pop_front();
    r.result[analysis::keys::ms] = h.ms;
    if (s.building.frames.empty())
      s.building_since = monotonic_ns();
    s.building.frames.push_back(frame_result{h.frame, h.pts, analysis::encode_result(r.result)});
    s.building_last_seq = h.seq;
    ++s.processed;
    ++s.since_checkpoint;
  }
  s.settled.clear();
}

/// One frame for a holding analyzer: taken now, its result whenever it settles.
void hold_frame(consumer_state& s, const shm::frame_view& v) {
  const double tb = time_base_of(v);
  analysis::frame_at at{v.frame_index, v.pts, v.time_base_num, v.time_base_den, static_cast<double>(v.pts) * tb};
  s.building.time_base = tb;
  const uint64_t t0 = monotonic_ns();
  try {
    if (auto q = s.quarantine.find(v.frame_index); q != s.quarantine.end())
      s.an->stop("frame " + std::to_string(v.frame_index) + " quarantined: " + q->second);
    if (auto f = s.faults.at(s.task.analyzer, v.frame_index))
      trigger(*f, s.task.analyzer + " at frame " + std::to_string(v.frame_index));
  } catch (const std::exception& e) {
    s.an->stop(e.what());
  }
  s.held.push_back({v.frame_index, v.pts, v.seq, 0});
  try {
    s.an->take(as_mat(v), at, s.settled);
  } catch (const std::exception& e) {
    s.an->stop(std::string("analyzer threw: ") + e.what());
  }
  s.held.back().ms = static_cast<double>(monotonic_ns() - t0) / ns_per_ms;
  add_settled(s);
  s.position = v.frame_index + 1;
}

/// The video ended: a holding analyzer settles what it still holds.
void finish_held(consumer_state& s) {
  if (!s.holds)
    return;
  try {
    s.an->finish(s.settled);
  } catch (const std::exception& e) {
    s.an->stop(std::string("analyzer threw at the end: ") + e.what());
  }
  add_settled(s);
}

/// A frame before the resume point: warms up a stateful analyzer, stores nothing.
void warm_up(consumer_state& s, const shm::frame_view& v) {
  if (s.warms_up) {
    try {
      s.an->process(as_mat(v), v.frame_index, static_cast<double>(v.pts) * time_base_of(v));
    } catch (...) {
      // A warm-up frame has no result to quarantine; the stored frames decide.
    }
  }
  if (s.unacked.empty() && s.building.frames.empty() && s.held.empty())
    s.ring->commit(v.seq);
  s.position = v.frame_index + 1;
}

void send_batch(consumer_self self, uint64_t id);

pending_batch* find_batch(consumer_state& s, uint64_t id) {
  auto it = std::find_if(s.unacked.begin(), s.unacked.end(), [id](const auto& b) { return b.id == id; });
  return it == s.unacked.end() ? nullptr : &*it;
}

/// The batch being built goes out (if it has frames).
void flush(consumer_self self) {
  auto& s = self->state;
  if (s.building.frames.empty())
    return;
  // A holding analyzer checkpoints every checkpoint_every frames (each one
  // ends a piece of its encoding, so not at every batch) and at the end.
  bool durable = true;
  if (s.holds) {
    durable = s.eos || s.since_checkpoint >= s.checkpoint_every;
    if (durable) {
      if (auto err = s.an->checkpoint())
        s.an->stop(*err);
      s.since_checkpoint = 0;
    }
  }
  // One take() of a holding analyzer may settle more frames than a batch
  // holds (a clip closing settles its padding): they leave as several
  // batches, and only the last one ends at the checkpoint.
  std::vector<frame_result> frames = std::move(s.building.frames);
  const std::size_t per = std::max<std::size_t>(1, s.task.batch_frames);
  for (std::size_t at = 0; at < frames.size(); at += per) {
    const bool last = at + per >= frames.size();
    pending_batch b;
    b.durable = last && durable;
    b.id = s.next_batch_id++;
    b.last_seq = s.building_last_seq;  // used only when durable: the last part's end
    b.batch = s.building;
    b.batch.frames.assign(frames.begin() + static_cast<std::ptrdiff_t>(at),
                          frames.begin() + static_cast<std::ptrdiff_t>(std::min(at + per, frames.size())));
    // Frames between this batch's results that the sampling skipped are
    // accounted for too: the ring hands the consumer every frame it takes.
    // A frame index seen twice (a decoder resumed on a file with duplicate
    // timestamps numbers frames by timestamp) must not fall outside the range.
    b.batch.covered_from = std::min(s.covered_next, b.batch.frames.front().frame);
    b.batch.covered_through = std::max(s.covered_next - 1, b.batch.frames.back().frame);
    s.covered_next = b.batch.covered_through + 1;
    s.unacked.push_back(std::move(b));
    send_batch(self, s.unacked.back().id);
  }
  s.building.frames.clear();
}

void tick_again(consumer_self self) {
  self->state.ticking = true;
  self->send(self, tick_atom::value);
}

void on_batch_ack(consumer_self self, uint64_t id) {
  auto& s = self->state;
  if (auto* b = find_batch(s, id))
    b->acked = true;
  // Commit the acknowledged prefix only: the ring commit is cumulative.
  while (!s.unacked.empty() && s.unacked.front().acked) {
    if (s.unacked.front().durable)
      s.ring->commit(s.unacked.front().last_seq);
    s.unacked.pop_front();
  }
  if (s.eos && s.unacked.empty() && s.building.frames.empty()) {
    consumer_finish(self);
    return;
  }
  if (!s.ticking)
    tick_again(self);
}

/// A refusal of what the batch holds or of its size: sending the same batch
/// again cannot succeed (a retry helps only while a peer is away or busy).
bool refused_for_good(const caf::error& e) {
  return e.category() == caf::atom("framehive") &&
         (e.code() == static_cast<uint8_t>(errc::invalid_request) ||
          e.code() == static_cast<uint8_t>(errc::over_limit));
}

void on_batch_error(consumer_self self, uint64_t id, const caf::error& err) {
  auto& s = self->state;
  auto* b = find_batch(s, id);
  if (!b)
    return;
  if (refused_for_good(err)) {
    // The analyzer's results for this video cannot be stored: the video
    // fails with the coordinator's reason instead of waiting forever.
    consumer_fail(self, s.task.analyzer + " results refused: " + describe(err));
    return;
  }
  const auto delay = b->retry.next();
  const uint32_t n = b->retry.attempts();
  if (n == 1 || n % log_every_retries == 0)
    log_about(spdlog::level::warn, about_actor(s.task.video, "consumer:" + s.task.analyzer),
              "consumer video={} analyzer={}: result batch not confirmed ({}), retry {} in {} ms", s.task.video,
              s.task.analyzer, describe(err), n, delay.count());
  self->delayed_send(self, delay, retry_atom::value, id);
}

/// Sends one batch; on failure the same batch is sent again (idempotent upsert).
void send_batch(consumer_self self, uint64_t id) {
  auto* b = find_batch(self->state, id);
  if (!b)
    return;
  self->request(self->state.node, batch_timeout, b->batch)
      .then([self, id](batch_ack&) { on_batch_ack(self, id); },
            [self, id](caf::error& err) { on_batch_error(self, id, err); });
}

void on_batch_retry(consumer_self self, uint64_t id) {
  // Still alive while waiting: the node's hang detector hears from us.
  self->send(self->state.node, progress_of(self->state, actor_state::waiting));
  send_batch(self, id);
}

/// How a slice of reading ended.
enum class slice_end { look_later, batch_full, end_of_stream, left };

/// Reads ring frames for one slice, or until the batch is full.
slice_end read_slice(consumer_self self) {
  auto& s = self->state;
  const uint64_t until = monotonic_ns() + to_ns(slice);
  shm::frame_view v;
  while (monotonic_ns() < until) {
    if (s.building.frames.size() >= s.task.batch_frames)
      return slice_end::batch_full;
    switch (s.ring->next(v, ring_wait)) {
      case shm::ring_consumer::read_status::frame:
        if (v.frame_index < s.task.emit_from)
          warm_up(s, v);
        else if (s.holds)
          hold_frame(s, v);
        else
          consume_frame(s, v);
        s.ring->done_with_frame();
        continue;
      case shm::ring_consumer::read_status::end_of_stream:
        s.eos = true;
        finish_held(s);
        return slice_end::end_of_stream;
      case shm::ring_consumer::read_status::producer_failed:
        consumer_fail(self, "decoder failed: " + s.ring->error_text());
        return slice_end::left;
      case shm::ring_consumer::read_status::fenced:
        self->quit();  // replaced by a newer consumer
        return slice_end::left;
      default:
        // Timeout or producer_lost: the node restarts decoders; look again later.
        // A sampling consumer sends what it has now: the frames it skipped
        // after its batch's first one stay unacknowledged until that batch
        // is, and may be what holds the decoder back.
        if (!s.task.take.takes_all() && !s.building.frames.empty())
          return slice_end::batch_full;
        return slice_end::look_later;
    }
  }
  return slice_end::look_later;
}

void consumer_tick(consumer_self self) {
  auto& s = self->state;
  s.ticking = false;
  if (s.eos || s.unacked.size() >= max_batches_in_flight)
    return;  // an ack ticks us again
  const auto end = read_slice(self);
  if (end == slice_end::left)
    return;
  const uint64_t now = monotonic_ns();
  const bool stale = !s.building.frames.empty() && now - s.building_since > batch_max_age_ns;
  if (s.eos || end == slice_end::batch_full || s.building.frames.size() >= s.task.batch_frames || stale)
    flush(self);
  if (s.rate.due(s.processed, now))
    self->send(s.node, progress_of(s, actor_state::running));
  if (s.eos && s.unacked.empty()) {
    consumer_finish(self);
    return;
  }
  if (!s.eos && s.unacked.size() < max_batches_in_flight)
    tick_again(self);
}

consumer_actor::behavior_type consumer_behavior(consumer_self self, consumer_task task,
                                                node_port_actor node) {
  auto& st = self->state;
  st.task = std::move(task);
  st.node = std::move(node);
  if (auto err = consumer_open(st)) {
    consumer_fail(self, *err);
    return {[](tick_atom) {}, [](retry_atom, uint64_t) {}};
  }
  if (st.ring->redelivered() > 0)
    log_about(spdlog::level::info, about_actor(st.task.video, "consumer:" + st.task.analyzer),
              "consumer video={} analyzer={} resumes at seq {}: {} frames delivered again", st.task.video,
              st.task.analyzer, st.ring->committed(), st.ring->redelivered());
  tick_again(self);
  return {
      [self](tick_atom) { consumer_tick(self); },
      [self](retry_atom, uint64_t id) { on_batch_retry(self, id); },
  };
}

// -- worker front actor -------------------------------------------------------------------------

struct worker_state {
  static inline const char* name = "worker";
  node_port_actor node;
  worker_options options;
  std::multimap<uint64_t, caf::actor> by_video;
};

using worker_self = worker_actor::stateful_pointer<worker_state>;

void on_worker_down(worker_self self, const caf::down_msg& dm) {
  auto& st = self->state;
  if (dm.source == st.node) {
    spdlog::warn("worker: node went away ({}), shutting down", caf::to_string(dm.reason));
    for (auto& [video, a] : st.by_video)
      self->send_exit(a, caf::exit_reason::user_shutdown);
    self->quit();
    return;
  }
  // A decoder or consumer actor ended: forget it. A crash (exception) ends
  // it with an error; the node hears about it through its missing progress.
  for (auto it = st.by_video.begin(); it != st.by_video.end(); ++it)
    if (it->second.address() == dm.source) {
      if (dm.reason && dm.reason != caf::exit_reason::user_shutdown)
        log_about(spdlog::level::err, about_video(it->first), "worker: actor for video {} died: {}", it->first,
                  caf::to_string(dm.reason));
      st.by_video.erase(it);
      break;
    }
}

caf::result<video_meta> probe(const worker_options& options, const std::string& input) {
  media::decoder_options o;
  o.allowed_protocols = options.allowed_protocols;
  auto dec = media::decoder::open(input, o);
  if (!dec)
    return make_error(errc::bad_input, dec.error().message());
  const auto& i = (*dec)->info();
  video_meta m;
  m.width = static_cast<uint32_t>(i.width);
  m.height = static_cast<uint32_t>(i.height);
  m.fps = i.frame_rate.value();
  m.duration_s = i.duration_s;
  m.frames = i.frame_count;
  m.codec = i.codec;
  return m;
}

/// Watches a decoder or consumer of `video`, so stop and shutdown reach it.
template <class Handle>
caf::result<caf::ok_atom> adopt(worker_self self, uint64_t video, const Handle& a) {
  self->monitor(a);
  self->state.by_video.emplace(video, caf::actor_cast<caf::actor>(a));
  return caf::ok_atom::value;
}

void stop_video(worker_self self, uint64_t video) {
  auto range = self->state.by_video.equal_range(video);
  for (auto it = range.first; it != range.second; ++it)
    self->send_exit(it->second, caf::exit_reason::user_shutdown);
  self->state.by_video.erase(range.first, range.second);
}

worker_actor::behavior_type worker_behavior(worker_self self, node_port_actor node, worker_options options) {
  self->state.node = std::move(node);
  self->state.options = std::move(options);
  self->monitor(self->state.node);
  self->set_down_handler(
      [self](caf::down_msg& dm) { guarded("worker down", [&] { on_worker_down(self, dm); }); });
  return {
      [self](probe_atom, const std::string& input) -> caf::result<video_meta> {
        return guarded("worker probe", [&] { return probe(self->state.options, input); });
      },
      [self](decoder_task& t) -> caf::result<caf::ok_atom> {
        return guarded("worker decoder", [&] {
          return adopt(self, t.video,
                       spawn_decoder(self->system(), t, self->state.node, self->state.options));
        });
      },
      [self](consumer_task& t) -> caf::result<caf::ok_atom> {
        return guarded("worker consumer", [&] {
          return adopt(self, t.video, spawn_consumer(self->system(), t, self->state.node));
        });
      },
      [self](stop_atom, uint64_t video) { guarded("worker stop", [&] { stop_video(self, video); }); },
  };
}

}  // namespace

decoder_actor spawn_decoder(caf::actor_system& sys, decoder_task task, node_port_actor node,
                            worker_options options) {
  return sys.spawn<caf::detached>(decoder_behavior, std::move(task), std::move(node), std::move(options));
}

consumer_actor spawn_consumer(caf::actor_system& sys, consumer_task task, node_port_actor node) {
  return sys.spawn<caf::detached>(consumer_behavior, std::move(task), std::move(node));
}

worker_actor spawn_worker(caf::actor_system& sys, node_port_actor node, worker_options options) {
  return sys.spawn(worker_behavior, std::move(node), std::move(options));
}

}  // namespace framehive
