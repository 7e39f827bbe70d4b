// The node actor: a thin adapter between CAF messages and the two classes that
// decide, worker_pool (processes) and video_supervisor (one per video). It
// owns what those classes must not touch: actor handles, rings, the link to
// the coordinator and the reports still to send.

#include "node/node_actor.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <deque>
#include <memory>
#include <optional>
#include <variant>

#include <spdlog/spdlog.h>

#include "actors/guard.hpp"
#include "actors/lifecycle.hpp"
#include "caf/io/middleman.hpp"
#include "common/backoff.hpp"
#include "common/chunk_window.hpp"
#include "common/clock.hpp"
#include "common/digest.hpp"
#include "common/identity.hpp"
#include "common/logging.hpp"
#include "common/metrics.hpp"
#include "node/artifact_sender.hpp"
#include "node/blob_cache.hpp"
#include "node/input_policy.hpp"
#include "node/worker_pool.hpp"
#include "shm/frame_ring.hpp"

namespace framehive {

namespace {

// -- constants ------------------------------------------------------------------------

constexpr auto tick_interval = std::chrono::milliseconds(200);
constexpr auto status_interval = std::chrono::milliseconds(500);
constexpr auto request_timeout = std::chrono::seconds(10);
constexpr auto connect_timeout = std::chrono::seconds(5);
constexpr auto probe_timeout = std::chrono::seconds(60);
/// Reconnecting to the coordinator: 250 ms, 500 ms, ... up to 5 s.
constexpr backoff_policy reconnect_backoff{std::chrono::milliseconds(250), std::chrono::seconds(5), 2};
/// A result batch is at most this share of the ring, so a consumer waiting for
/// an acknowledgement never holds back the decoder.
constexpr uint32_t batches_per_ring = 4;
/// A clips consumer's ring: its held frames plus this many batches (in
/// flight, and the one being built) plus spare slots for the decoder.
constexpr uint32_t clips_batches_in_flight = 4;
constexpr uint64_t clips_spare_slots = 4;
/// A batch with more frames than this many times batch_frames is refused: our
/// consumers never send one (they flush at batch_frames).
constexpr uint32_t batch_cap_factor = 4;
/// Result batches in one message to the coordinator at most (its limit,
/// max_batches_per_message, is larger).
constexpr std::size_t max_batches_per_message = 64;
/// Fetching a blob from the coordinator: a few retries, 250 ms, 500 ms, ... up to 5 s.
constexpr backoff_policy fetch_backoff{std::chrono::milliseconds(250), std::chrono::seconds(5), 2};
constexpr uint32_t fetch_attempts = 5;
/// Sending artifacts: retried with this backoff for as long as the coordinator is away.
constexpr backoff_policy artifact_backoff{std::chrono::milliseconds(250), std::chrono::seconds(5), 2};
/// Failed connection attempts are logged the first time and then every this many.
constexpr uint32_t log_every_connect_failures = 10;

// -- state ----------------------------------------------------------------------------

/// A blob being fetched from the coordinator into the cache, a window of
/// chunk requests at a time (the first chunk, asked alone, tells the size).
struct blob_fetch {
  std::string sha256;
  std::string name;         ///< the file's name (the video's or a model file's), for messages
  int model_file = -1;      ///< which file of the detect model (model_file_of); -1: the video input
  bool reserved = false;    ///< the cache handed out the temp file (size known)
  std::ofstream out;        ///< the temp file
  uint64_t size = 0;
  bool asking_size = false;  ///< the first request (offset 0) is out
  /// Chunks in flight once the size is known; completed() bytes are written.
  std::optional<chunk_window> window;
  /// Bumped when requests are given up (a failure): replies to them, which may
  /// still come, are ignored.
  uint64_t generation = 0;
  framehive::sha256 hasher;  ///< of the bytes written, so the cache need not read them again
  uint64_t started_ns = 0;   ///< the first request, for the throughput in the log
  uint64_t resume_ns = 0;    ///< the tick asks again from then on (after a failure, or a wait)
  backoff retries{fetch_backoff};

  bool in_flight() const { return asking_size || (window && window->in_flight() > 0); }
  /// Bytes written to the temp file, in order.
  uint64_t written() const { return window ? window->completed() : 0; }
};

/// A done video's artifacts on their way to the coordinator; its report waits for them.
struct artifact_upload {
  artifact_sender sender;
  video_report report;
  bool in_flight = false;
  uint64_t resume_ns = 0;
  backoff retries{artifact_backoff};

  artifact_upload(artifact_sender s, video_report r) : sender(std::move(s)), report(std::move(r)) {}
};

/// One assigned video: its supervisor (the decisions) and its ring (the resource).
struct video_entry {
  video_supervisor sup;
  std::optional<shm::frame_ring> ring;  ///< the segment is removed with the entry
  uint64_t ring_bytes = 0;
  std::string output_dir;
  std::string blob;         ///< the cached blob this video uses (released with the entry)
  std::string local_input;  ///< the cached file the decoder reads (blob inputs)
  /// The job's detect model with the node's paths: each "blob:" file is
  /// replaced by its cached copy once fetched, before any consumer starts.
  analysis::dnn_model local_model;
  std::vector<std::string> model_blobs;  ///< cached blobs of the model this video uses (released with it)
  std::unique_ptr<blob_fetch> fetch;
  std::unique_ptr<artifact_upload> upload;
  bool artifacts_taken = false;  ///< done once: its artifacts were sent (or dropped) already
};

/// A consumer's result batch waiting to go to the coordinator, and whom to answer.
struct outgoing_batch {
  result_batch batch;
  caf::typed_response_promise<batch_ack> promise;
};

struct node_state {
  static inline const char* name = "node";
  steady_clock clock;  ///< first: the pool and the supervisors hold references to it
  node_options opt;
  coordinator_actor coord;
  bool registered = false;
  bool connecting = false;
  backoff reconnect{reconnect_backoff};
  // Destroyed in reverse order when the actor ends: videos (and their rings)
  // before the workers that use them.
  std::unique_ptr<worker_pool> workers;      ///< made once published (it needs the port)
  std::vector<worker_actor> worker_handles;  ///< by slot; set by the worker's hello
  std::unique_ptr<blob_cache> cache;  ///< null if its folder cannot be used (cache_error says why)
  std::string cache_error;
  std::map<uint64_t, video_entry> videos;
  std::vector<video_report> unsent_reports;  ///< sent again until acknowledged
  uint64_t last_status_ns = 0;
  uint64_t refused_inputs = 0;   ///< videos failed by the input policy
  uint64_t refused_batches = 0;  ///< result batches refused (size, frames, analyzer)
  // -- result batches to the coordinator: see send_batches --------------------------
  std::deque<outgoing_batch> outbox;  ///< waiting for the message in flight to be answered
  /// The batches of the message in flight (null if none); answered with an
  /// error at once when the coordinator is lost, and a late answer finds them gone.
  std::shared_ptr<std::vector<outgoing_batch>> in_flight;
};

using node_ptr = node_full_actor::stateful_pointer<node_state>;

template <class... Fs>
struct overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
overloaded(Fs...) -> overloaded<Fs...>;

std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s)
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') ? c : '_';
  return out;
}

bool is_stale_epoch(const caf::error& e) {
  return e.category() == caf::atom("framehive") && e.code() == static_cast<uint8_t>(errc::stale_epoch);
}

/// The video under this assignment, or nullptr (unknown, or an older epoch).
video_entry* find_video(node_ptr self, uint64_t id, uint64_t epoch) {
  auto it = self->state.videos.find(id);
  return it != self->state.videos.end() && it->second.sup.task().epoch == epoch ? &it->second : nullptr;
}

void place_pending(node_ptr self);
void start_artifacts(node_ptr self, video_entry& v, video_report r);

video_entry make_entry(const node_state& st, const video_task& t) {
  video_entry e{video_supervisor{t, st.opt.name, st.opt.supervision, st.clock}, {}, 0, {}, {}, {}, t.detect.model,
                {}, {}, {}, false};
  return e;
}

/// The files of a detect model, by index (blob_fetch::model_file).
constexpr int model_file_count = 3;
std::string& model_file_of(analysis::dnn_model& m, int i) {
  return i == 0 ? m.network : i == 1 ? m.weights : m.names;
}

bool is_detect(const std::string& analyzer) {
  return analyzer == "detect" || analyzer.rfind("detect.", 0) == 0;
}

/// Where a video's model files are linked under the names the job gave them
/// (CACHE/models/vV-eE/network/yolo.cfg -> CACHE/SHA), so that an error of
/// the worker that loads them names the user's file, not a hash.
std::string model_links_dir(const node_state& st, const video_task& t) {
  return cache_dir_of(st.opt) + "/models/v" + std::to_string(t.video) + "-e" + std::to_string(t.epoch);
}

/// A file name from a job, as one safe path component.
std::string link_name(const std::string& name) {
  std::string out;
  for (char c : name)
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '_';
  return out.empty() || out == "." || out == ".." ? std::string("file") : out;
}

/// The path consumers are given for a cached model file: a link named as the
/// job named it, or the cached blob itself if the link cannot be made.
std::string link_model_file(const node_state& st, const video_task& t, int i, const std::string& name,
                            const std::string& cached) {
  static const char* const roles[model_file_count] = {"network", "weights", "names"};
  const auto dir = std::filesystem::path(model_links_dir(st, t)) / roles[i];
  const auto link = dir / link_name(name);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::filesystem::remove(link, ec);
  std::filesystem::create_symlink(cached, link, ec);
  if (ec) {
    spdlog::warn("node {}: cannot link {} as {}: {}; the worker reads the blob itself", st.opt.name, cached,
                 link.string(), ec.message());
    return cached;
  }
  return link.string();
}

/// Gives back what the video holds in the blob cache (its use, or its unfinished download).
void release_blob(node_state& st, video_entry& v) {
  if (!st.cache)
    return;
  if (v.fetch && v.fetch->reserved) {
    v.fetch->out.close();
    st.cache->abort_download(v.fetch->sha256);
  }
  v.fetch.reset();
  if (!v.blob.empty())
    st.cache->release(v.blob);
  v.blob.clear();
  for (const auto& sha : v.model_blobs)
    st.cache->release(sha);
  if (!v.model_blobs.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(model_links_dir(st, v.sup.task()), ec);
  }
  v.model_blobs.clear();
}

// -- reports to the coordinator ---------------------------------------------------------

void send_reports(node_ptr self) {
  auto& st = self->state;
  if (!st.registered)
    return;
  for (const auto& r : st.unsent_reports)
    self->request(st.coord, request_timeout, r)
        .then(
            [self, video = r.video, epoch = r.epoch](caf::ok_atom) {
              auto& u = self->state.unsent_reports;
              u.erase(
                  std::remove_if(u.begin(), u.end(),
                                 [&](const video_report& x) { return x.video == video && x.epoch == epoch; }),
                  u.end());
            },
            [](caf::error&) {});  // kept; sent again with the next status
}

/// Stops the video's actors and removes its ring (with the entry).
void stop_video(node_ptr self, uint64_t id) {
  auto& st = self->state;
  auto it = st.videos.find(id);
  if (it == st.videos.end())
    return;
  for (uint32_t w : it->second.sup.workers())
    if (st.workers->is_ready(w) && st.worker_handles[w])
      self->send(st.worker_handles[w], stop_atom::value, id);
  release_blob(st, it->second);
  st.videos.erase(it);
}

void submit_report(node_ptr self, video_report r) {
  auto& st = self->state;
  if (auto it = st.videos.find(r.video); r.outcome == video_outcome::done && it != st.videos.end() &&
                                         !it->second.artifacts_taken && !it->second.output_dir.empty()) {
    start_artifacts(self, it->second, std::move(r));  // reports once they are stored
    return;
  }
  const auto known = st.videos.find(r.video);
  const log_subject about =
      known != st.videos.end() ? about_video(known->second.sup.task().job, r.video) : about_video(r.video);
  switch (r.outcome) {
    case video_outcome::done:
      log_about(spdlog::level::info, about, "node {}: video {} done: {} frames, decoded once ({} decode errors)",
                st.opt.name, r.video, r.frames_total, r.decode_errors);
      break;
    case video_outcome::retry_later:
      log_about(spdlog::level::info, about, "node {}: video {} goes back to the queue: {}", st.opt.name, r.video,
                r.error);
      break;
    case video_outcome::failed:
    case video_outcome::escalated:
      log_about(spdlog::level::warn, about, "node {}: video {} {}: {}", st.opt.name, r.video, to_string(r.outcome),
                r.error);
      break;
  }
  const uint64_t id = r.video;
  st.unsent_reports.push_back(std::move(r));
  stop_video(self, id);
  send_reports(self);
}

void finish_video(node_ptr self, video_entry& v, video_outcome outcome, std::string error) {
  submit_report(self, v.sup.finish(outcome, std::move(error)));
}

// -- supervisor commands ----------------------------------------------------------------

void carry_out(node_ptr self, uint64_t id, supervisor_commands commands) {
  auto& st = self->state;
  for (auto& c : commands)
    std::visit(overloaded{
                   [&](kill_worker& k) {
                     spdlog::warn("node {}: {}; killing worker {} (pid {})", st.opt.name, k.reason, k.worker,
                                  st.workers->slots().at(k.worker).pid);
                     st.workers->kill(k.worker);
                   },
                   [&](mark_consumer_dead& m) {
                     // Its unacknowledged frames stay in the ring for the restarted consumer.
                     if (auto it = st.videos.find(id); it != st.videos.end() && it->second.ring)
                       it->second.ring->mark_consumer_dead(m.consumer_id);
                   },
                   [&](report_video& r) { submit_report(self, std::move(r.report)); },
               },
               c);
}

/// The frame each consumer was working on: the one in its hands. A consumer
/// that had analysed every frame it read (waiting for an acknowledgement,
/// say) holds none, so a death then is no frame's fault.
frames_in_hand frames_in_hand_of(const shm::frame_ring& ring) {
  frames_in_hand out;
  for (const auto& c : ring.status().consumers)
    if (c.in_hand > c.committed)
      if (auto frame = ring.frame_index_at(c.in_hand - 1))
        out.emplace(c.id, *frame);
  return out;
}

/// Frames the supervision quarantined so far (the tree's `quarantined`).
std::size_t quarantined_frames(const video_supervisor& sup) {
  std::size_t n = 0;
  for (const auto& r : sup.roles())
    n += r.quarantine.size();
  return n;
}

void on_worker_exit(node_ptr self, const worker_exit& e) {
  auto& st = self->state;
  if (st.opt.metrics)
    st.opt.metrics->worker_restarts.Increment();
  spdlog::warn("node {}: worker {} (pid {}) died ({}); restarting it and re-placing its actors", st.opt.name,
               e.index, e.pid, e.why);
  st.worker_handles[e.index] = nullptr;
  std::vector<uint64_t> ids;
  for (const auto& [id, v] : st.videos)
    ids.push_back(id);
  for (uint64_t id : ids)  // commands may end videos
    if (auto it = st.videos.find(id); it != st.videos.end()) {
      auto& v = it->second;
      const std::size_t quarantined = quarantined_frames(v.sup);
      auto commands =
          v.sup.on_worker_died(e.index, e.why, v.ring ? frames_in_hand_of(*v.ring) : frames_in_hand{});
      if (st.opt.metrics)
        st.opt.metrics->quarantined.Increment(static_cast<double>(quarantined_frames(v.sup) - quarantined));
      carry_out(self, id, std::move(commands));
    }
}

/// Hang detection: every video's supervisor looks at its roles' silence.
void supervise_videos(node_ptr self) {
  std::vector<uint64_t> ids;
  for (const auto& [id, v] : self->state.videos)
    ids.push_back(id);
  for (uint64_t id : ids)
    if (auto it = self->state.videos.find(id); it != self->state.videos.end())
      carry_out(self, id, it->second.sup.on_tick());
}

// -- placing decoders and consumers ------------------------------------------------------

decoder_task make_decoder_task(const node_state& st, const video_entry& v) {
  decoder_task t;
  t.video = v.sup.task().video;
  t.epoch = v.sup.task().epoch;
  t.input = v.local_input.empty() ? v.sup.task().input : v.local_input;
  t.ring = v.ring->name();
  t.start_frame = v.sup.task().decode_from;  // the coordinator includes the analyzers' pre-roll
  t.pace_fps = st.opt.pace_fps;
  t.hold_at = st.opt.hold_at;
  t.hold_until = st.opt.hold_until;
  return t;
}

consumer_task make_consumer_task(const node_state& st, const video_entry& v, const supervised_role& r) {
  consumer_task t;
  t.video = v.sup.task().video;
  t.epoch = v.sup.task().epoch;
  t.ring = v.ring->name();
  t.consumer_id = r.consumer_id;
  t.analyzer = r.analyzer;
  t.take = r.take;
  t.output_dir = v.output_dir + "/" + r.analyzer;  // a plain name: checked when the task came (check_task)
  t.fps = v.sup.meta().fps;
  t.batch_frames =
      std::max<uint32_t>(1, std::min(st.opt.batch_frames, v.ring->slot_count() / batches_per_ring));
  t.settings = st.opt.analyzers;
  if (is_detect(r.analyzer)) {  // the job's choices win over the node's INI
    const auto& d = v.sup.task().detect;
    if (!d.classes.empty() || !d.model.empty())  // the INI's classes are built-in ones: not a model's
      t.settings.detect_classes = d.classes;
    t.settings.detect_dnn = v.local_model;  // local copies, fetched before any consumer was placed
  }
  t.emit_from = v.sup.task().start_frame;
  for (const auto& [frame, why] : r.quarantine) {
    t.quarantine.push_back(frame);
    t.quarantine_reasons.push_back(why);
  }
  return t;
}

void on_start_failed(node_ptr self, uint64_t id, uint64_t epoch, role_id r, uint32_t worker,
                     const caf::error& e) {
  auto* v = find_video(self, id, epoch);
  if (!v)
    return;
  spdlog::warn("node {}: starting {} of video {} on worker {} failed: {}", self->state.opt.name,
               role_name(v->sup.roles().at(r)), id, worker, describe(e));
  v->sup.on_start_failed(r, worker);
}

/// Sends role `r` of video `id` to a ready worker; false if none is ready.
bool place_role(node_ptr self, uint64_t id, role_id r) {
  auto& st = self->state;
  const auto w = st.workers->pick();
  if (!w)
    return false;
  auto& v = st.videos.at(id);
  v.sup.on_placed(r, *w, st.workers->slots()[*w].pid);
  const auto& handle = st.worker_handles[*w];
  auto on_error = [self, id, epoch = v.sup.task().epoch, r, w = *w](caf::error& e) {
    guarded("node: start role", [&] { on_start_failed(self, id, epoch, r, w, e); });
  };
  if (r == decoder_role)
    self->request(handle, request_timeout, make_decoder_task(st, v)).then([](caf::ok_atom) {}, on_error);
  else
    self->request(handle, request_timeout, make_consumer_task(st, v, v.sup.roles().at(r)))
        .then([](caf::ok_atom) {}, on_error);
  return true;
}

void place_pending(node_ptr self) {
  for (const auto& [id, v] : self->state.videos)
    for (role_id r : v.sup.unplaced())  // consumers first
      if (!place_role(self, id, r))
        return;  // no ready worker: the next tick or hello tries again
}

// -- starting a video -----------------------------------------------------------------------

uint64_t shm_free(const node_state& st) {
  uint64_t used = 0;
  for (const auto& [id, v] : st.videos)
    used += v.ring_bytes;
  return st.opt.shm_budget > used ? st.opt.shm_budget - used : 0;
}

/// Frames the video's ring should hold: the configured count, or more where
/// a clips analyzer holds frames back (its padding and merge gap, and the
/// frames since its last checkpoint) beside the batches in flight.
uint64_t wanted_slots(const node_state& st, const video_task& task, const video_meta& meta) {
  uint64_t wanted = st.opt.ring_slots;
  for (const auto& a : task.analyzers)
    if (analysis::is_clips(a)) {
      const uint64_t held = static_cast<uint64_t>(analysis::clips_max_held(st.opt.analyzers, meta.fps) +
                                                  analysis::clips_checkpoint_frames(meta.fps));
      const uint64_t in_flight = static_cast<uint64_t>(clips_batches_in_flight) * st.opt.batch_frames;
      wanted = std::max(wanted, held + in_flight + clips_spare_slots);
    }
  return wanted;
}

/// Creates the video's ring within the shared-memory budget. When it cannot,
/// the video is reported (and gone) and the result is false.
bool create_ring(node_ptr self, video_entry& v, const video_meta& meta) {
  auto& st = self->state;
  const auto& task = v.sup.task();
  const uint64_t per_slot = std::max<uint64_t>(1, shm::slot_bytes_for(meta.width, meta.height));
  const uint64_t left = shm_free(st);
  const uint64_t fit = left / per_slot;
  if (fit < min_ring_slots) {
    // Too big for the whole budget: the video can never run here. Too big for
    // what is free now: it waits in the coordinator's queue.
    const bool never = st.opt.shm_budget / per_slot < min_ring_slots;
    finish_video(self, v, never ? video_outcome::failed : video_outcome::retry_later,
                 task.input + ": frames of " + std::to_string(meta.width) + "x" +
                     std::to_string(meta.height) + " need " + shm::format_bytes(per_slot) + " each; node '" +
                     st.opt.name + "' has " + shm::format_bytes(left) + " of its " +
                     shm::format_bytes(st.opt.shm_budget) +
                     " shared-memory budget free (a ring needs at least " + std::to_string(min_ring_slots) +
                     " frames)");
    return false;
  }
  shm::ring_options ro;
  ro.name = ring_prefix(st.opt) + "v" + std::to_string(task.video) + "-e" + std::to_string(task.epoch);
  ro.width = meta.width;
  ro.height = meta.height;
  ro.slot_count = static_cast<uint32_t>(std::min<uint64_t>(wanted_slots(st, task, meta), fit));
  auto ring = shm::frame_ring::create(ro);
  if (!ring) {
    finish_video(self, v, video_outcome::failed, task.input + ": " + ring.error().message);
    return false;
  }
  v.ring.emplace(std::move(*ring));
  v.ring_bytes = v.ring->status().segment_bytes;
  return true;
}

void on_probed(node_ptr self, uint64_t id, uint64_t epoch, const video_meta& meta) {
  auto& st = self->state;
  auto* v = find_video(self, id, epoch);
  if (!v || !create_ring(self, *v, meta))
    return;
  const auto& task = v->sup.task();
  v->output_dir = video_output_dir(st.opt.output_dir, task.job, id);
  for (const auto& r : v->sup.roles())
    if (r.kind == actor_kind::consumer)
      v->ring->reserve_consumer(r.consumer_id, 0, r.take);
  v->sup.start(meta);
  log_about(spdlog::level::info, about_video(task.job, id),
            "node {}: video {} ({}x{}, {} frames) on ring {} ({} slots), analyzers: {}", st.opt.name, id,
            meta.width, meta.height, meta.frames, v->ring->name(), v->ring->slot_count(), task.analyzers.size());
  place_pending(self);
}

void on_probe_failed(node_ptr self, uint64_t id, uint64_t epoch, const caf::error& e) {
  if (auto* v = find_video(self, id, epoch))
    finish_video(self, *v, video_outcome::failed, describe(e));
}

// -- blob inputs: fetched from the coordinator into the cache ----------------------------

/// Asks a worker to probe the video's input (its cached copy for a blob).
void probe_video(node_ptr self, video_entry& v) {
  auto& st = self->state;
  const auto w = st.workers ? st.workers->pick() : std::nullopt;
  if (!w) {
    finish_video(self, v, video_outcome::retry_later, "node " + st.opt.name + " has no ready worker");
    return;
  }
  const auto& t = v.sup.task();
  const std::string input = v.local_input.empty() ? t.input : v.local_input;
  // A cached blob is judged by the node's own cache folder, not by allowed_roots.
  // (Other inputs passed check_task when the video came.)
  if (!v.local_input.empty())
    if (auto ok = check_input(input, st.opt.allowed_protocols, {cache_dir_of(st.opt)}); !ok) {
      finish_video(self, v, video_outcome::failed, ok.error());
      return;
    }
  self->request(st.worker_handles[*w], probe_timeout, probe_atom::value, input)
      .then([self, id = t.video, epoch = t.epoch](
                video_meta& m) { guarded("node: probed", [&] { on_probed(self, id, epoch, m); }); },
            [self, id = t.video, epoch = t.epoch](caf::error& e) {
              guarded("node: probe failed", [&] { on_probe_failed(self, id, epoch, e); });
            });
}

void request_chunk(node_ptr self, video_entry& v);
void start_blob(node_ptr self, video_entry& v);

/// Gets what the video needs from the coordinator's store, one blob at a
/// time into the cache: the detect model's files (so no node needs a model
/// installed), then a blob input; then probes it. Consumers are placed only
/// after the probe, so they always find the model's local copies.
void fetch_next(node_ptr self, video_entry& v) {
  for (int i = 0; i < model_file_count; ++i)
    if (auto blob = parse_blob_input(model_file_of(v.local_model, i)); blob && *blob) {
      v.fetch = std::make_unique<blob_fetch>();
      v.fetch->sha256 = (*blob)->first;
      v.fetch->name = (*blob)->second;
      v.fetch->model_file = i;
      start_blob(self, v);
      return;
    }
  if (v.local_input.empty())
    if (auto blob = parse_blob_input(v.sup.task().input); blob && *blob) {
      v.fetch = std::make_unique<blob_fetch>();
      v.fetch->sha256 = (*blob)->first;
      v.fetch->name = (*blob)->second;
      start_blob(self, v);  // probes once the blob is in the cache
      return;
    }
  probe_video(self, v);
}

/// The blob being fetched is in the cache at `path` (in use by this video): next one.
void blob_ready(node_ptr self, video_entry& v, const std::string& path) {
  const auto& f = *v.fetch;
  if (f.model_file >= 0) {
    model_file_of(v.local_model, f.model_file) =
        link_model_file(self->state, v.sup.task(), f.model_file, f.name, path);
    v.model_blobs.push_back(f.sha256);
  } else {
    v.blob = f.sha256;
    v.local_input = path;
  }
  v.fetch.reset();
  fetch_next(self, v);
}

/// Starts (or, after waiting for another video's download of the same blob,
/// retries) getting the video's blob: a cache hit goes on at once.
void start_blob(node_ptr self, video_entry& v) {
  auto& st = self->state;
  auto& f = *v.fetch;
  if (!st.cache) {
    finish_video(self, v, video_outcome::failed, f.name + ": " + st.cache_error);
    return;
  }
  if (auto path = st.cache->acquire(f.sha256)) {
    blob_ready(self, v, *path);
    return;
  }
  if (st.cache->downloading(f.sha256)) {  // another video fetches it: the tick looks again
    f.resume_ns = st.clock.now_ns() + to_ns(tick_interval);
    return;
  }
  request_chunk(self, v);
}

/// The first chunk tells the size: the cache makes room and hands out the temp file.
bool reserve_blob(node_ptr self, video_entry& v, uint64_t size) {
  auto& f = *v.fetch;
  auto temp = self->state.cache->begin_download(f.sha256, size, f.name);
  if (!temp) {
    const bool never = temp.error().rfind("cache too small", 0) == 0;
    finish_video(self, v, never ? video_outcome::failed : video_outcome::retry_later, temp.error());
    return false;
  }
  f.reserved = true;
  f.size = size;
  f.out.open(*temp, std::ios::binary | std::ios::trunc);
  if (!f.out) {
    finish_video(self, v, video_outcome::failed, f.name + ": cannot write the cache file " + *temp);
    return false;
  }
  spdlog::info("node {}: fetching blob {} ({}, {}) for video {}", self->state.opt.name, f.sha256, f.name,
               format_size(size), v.sup.task().video);
  return true;
}

/// The whole blob is in the temp file: verified, it becomes the video's input.
void complete_blob(node_ptr self, video_entry& v) {
  auto& st = self->state;
  auto& f = *v.fetch;
  f.out.close();
  if (!f.out) {
    finish_video(self, v, video_outcome::failed, f.name + ": cannot write to the blob cache");
    return;
  }
  f.reserved = false;  // finish_download owns the temp file now
  auto path = st.cache->finish_download(f.sha256, f.hasher.hex_digest());
  if (!path) {
    finish_video(self, v, video_outcome::failed, path.error());
    return;
  }
  const double secs = static_cast<double>(st.clock.now_ns() - f.started_ns) / 1e9;
  spdlog::info("node {}: fetched blob {} ({} bytes) in {:.3f} s, {:.1f} MB/s", st.opt.name, f.sha256, f.size, secs,
               secs > 0 ? static_cast<double>(f.size) / 1e6 / secs : 0.0);
  blob_ready(self, v, *path);
}

/// Writes a chunk that arrived in order into the temp file; false (the video
/// ended) if it is not the chunk the window waits for or cannot be written.
bool write_chunk(node_ptr self, video_entry& v, const blob_chunk& c) {
  auto& f = *v.fetch;
  const auto want = f.window->oldest();
  if (!want || c.offset != want->offset || c.data.size() != want->length || c.size != f.size) {
    finish_video(self, v, video_outcome::retry_later,
                 "blob " + f.sha256 + " (" + f.name + "): the coordinator sent an inconsistent chunk (offset " +
                     std::to_string(c.offset) + ", " + std::to_string(c.data.size()) + " bytes, size " +
                     std::to_string(c.size) + ")");
    return false;
  }
  if (!f.out.write(c.data.data(), static_cast<std::streamsize>(c.data.size()))) {
    finish_video(self, v, video_outcome::failed, f.name + ": cannot write to the blob cache");
    return false;
  }
  f.hasher.update(c.data.data(), c.data.size());
  f.window->complete(*want);
  return true;
}

void on_chunk(node_ptr self, uint64_t id, uint64_t epoch, uint64_t generation, const blob_chunk& c) {
  auto* v = find_video(self, id, epoch);
  if (!v || !v->fetch || v->fetch->generation != generation)
    return;  // cancelled or replaced meanwhile, or a reply to requests given up
  auto& f = *v->fetch;
  if (!f.window) {  // the first chunk: it tells the size
    f.asking_size = false;
    auto& cache = *self->state.cache;
    if (cache.contains(f.sha256) || cache.downloading(f.sha256)) {
      // Another video of this node got (or is getting) the same bytes meanwhile: use its copy.
      f.resume_ns = self->state.clock.now_ns() + to_ns(tick_interval);
      return;
    }
    if (!reserve_blob(self, *v, c.size))
      return;
    f.window.emplace(0, f.size, blob_chunk_bytes, transfer_window_chunks);
    f.window->next();  // the chunk that just came was asked as the window's first
  }
  if (f.size > 0 && !write_chunk(self, *v, c))
    return;
  if (self->state.opt.metrics)
    self->state.opt.metrics->fetch_bytes.Increment(static_cast<double>(c.data.size()));
  f.retries.reset();
  if (f.window->done())
    complete_blob(self, *v);
  else
    request_chunk(self, *v);
}

bool is_framehive_error(const caf::error& e, errc code) {
  return e.category() == caf::atom("framehive") && e.code() == static_cast<uint8_t>(code);
}

void on_chunk_failed(node_ptr self, uint64_t id, uint64_t epoch, uint64_t generation, const caf::error& e) {
  auto* v = find_video(self, id, epoch);
  if (!v || !v->fetch || v->fetch->generation != generation)
    return;
  auto& f = *v->fetch;
  // The other requests in flight are given up: the next try starts after the
  // last byte written.
  ++f.generation;
  f.asking_size = false;
  if (f.window)
    f.window->restart();
  const std::string what = "cannot fetch blob " + f.sha256 + " (" + f.name + "): " + describe(e);
  if (is_framehive_error(e, errc::not_found) || is_framehive_error(e, errc::invalid_request)) {
    finish_video(self, *v, video_outcome::failed, what);
    return;
  }
  if (f.retries.attempts() >= fetch_attempts) {
    finish_video(self, *v, video_outcome::retry_later, what);
    return;
  }
  const auto delay = f.retries.next();
  spdlog::warn("node {}: {} (at byte {}); retrying in {} ms", self->state.opt.name, what, f.written(),
               delay.count());
  f.resume_ns = self->state.clock.now_ns() + to_ns(delay);
}

/// Asks the coordinator for chunks until the window is full (before the size
/// is known, for the first chunk alone); without a coordinator the tick asks later.
void request_chunk(node_ptr self, video_entry& v) {
  auto& st = self->state;
  auto& f = *v.fetch;
  if (!st.registered) {
    f.resume_ns = st.clock.now_ns() + to_ns(tick_interval);
    return;
  }
  const auto id = v.sup.task().video;
  const auto epoch = v.sup.task().epoch;
  const uint64_t generation = f.generation;
  auto ask = [&](uint64_t offset) {
    self->request(st.coord, request_timeout, fetch_atom::value, f.sha256, offset)
        .then(
            [self, id, epoch, generation](blob_chunk& c) {
              guarded("node: blob chunk", [&] { on_chunk(self, id, epoch, generation, c); });
            },
            [self, id, epoch, generation](caf::error& e) {
              guarded("node: blob chunk failed", [&] { on_chunk_failed(self, id, epoch, generation, e); });
            });
  };
  if (f.started_ns == 0)
    f.started_ns = st.clock.now_ns();
  if (!f.window) {
    if (!f.asking_size) {
      f.asking_size = true;
      ask(0);
    }
    return;
  }
  while (auto c = f.window->next())
    ask(c->offset);
}

// -- artifacts: a done video's files go to the coordinator before its report --------------

void send_artifact(node_ptr self, video_entry& v);

/// The artifacts are stored (or dropped): local copies go, and the report with them.
void end_artifacts(node_ptr self, video_entry& v, std::optional<std::string> failure) {
  auto u = std::move(v.upload);
  u->sender.remove_local();
  if (failure) {
    u->report.outcome = video_outcome::failed;
    u->report.error = std::move(*failure);
  }
  submit_report(self, std::move(u->report));
}

void start_artifacts(node_ptr self, video_entry& v, video_report r) {
  auto& st = self->state;
  const auto id = v.sup.task().video;
  v.artifacts_taken = true;
  auto sender = artifact_sender::scan(v.output_dir, id, v.sup.task().epoch);
  // The roles are done: free the workers and the ring while the files travel.
  for (uint32_t w : v.sup.workers())
    if (st.workers->is_ready(w) && st.worker_handles[w])
      self->send(st.worker_handles[w], stop_atom::value, id);
  v.ring.reset();
  v.ring_bytes = 0;
  if (!sender) {
    v.upload = std::make_unique<artifact_upload>(artifact_sender{}, std::move(r));
    end_artifacts(self, v, sender.error());
    return;
  }
  if (!sender->files().empty())
    spdlog::info("node {}: video {}: sending {} artifacts to the coordinator", st.opt.name, id,
                 sender->files().size());
  v.upload = std::make_unique<artifact_upload>(std::move(*sender), std::move(r));
  send_artifact(self, v);
}

void on_artifact_accepted(node_ptr self, uint64_t id, uint64_t epoch, uint64_t next_offset) {
  auto* v = find_video(self, id, epoch);
  if (!v || !v->upload)
    return;
  v->upload->in_flight = false;
  v->upload->retries.reset();
  v->upload->sender.on_accepted(next_offset);
  send_artifact(self, *v);
}

void on_artifact_failed(node_ptr self, uint64_t id, uint64_t epoch, const caf::error& e) {
  auto* v = find_video(self, id, epoch);
  if (!v || !v->upload)
    return;
  auto& u = *v->upload;
  u.in_flight = false;
  if (is_framehive_error(e, errc::stale_epoch) || is_framehive_error(e, errc::refused)) {
    // Fenced, as for results: the video is someone else's now.
    spdlog::warn("node {}: video {} epoch {}: artifacts refused ({}); dropping them", self->state.opt.name, id,
                 epoch, describe(e));
    u.sender.remove_local();
    stop_video(self, id);
    return;
  }
  if (is_framehive_error(e, errc::not_found) && u.sender.restart_file()) {
    // The coordinator lost the partial file (it restarted): start it over.
    u.resume_ns = self->state.clock.now_ns() + to_ns(u.retries.next());
    return;
  }
  // A coordinator that does not know the message will not learn it by waiting.
  const bool transient = e.category() == caf::atom("framehive")
                             ? is_framehive_error(e, errc::unavailable)
                             : !(e.category() == caf::atom("system") &&
                                 e.code() == static_cast<uint8_t>(caf::sec::unexpected_message));
  if (!transient) {
    end_artifacts(self, *v, "artifacts of video " + std::to_string(id) + " refused: " + describe(e));
    return;
  }
  const auto delay = u.retries.next();
  spdlog::warn("node {}: video {}: sending an artifact failed ({}); retrying in {} ms", self->state.opt.name,
               id, describe(e), delay.count());
  u.resume_ns = self->state.clock.now_ns() + to_ns(delay);
}

/// Sends the next chunk (one at a time); after the last one the video is reported.
void send_artifact(node_ptr self, video_entry& v) {
  auto& st = self->state;
  auto& u = *v.upload;
  if (u.in_flight)
    return;
  if (!st.registered) {
    u.resume_ns = st.clock.now_ns() + to_ns(tick_interval);
    return;
  }
  auto chunk = u.sender.next();
  if (!chunk) {
    end_artifacts(self, v, chunk.error());
    return;
  }
  if (!*chunk) {
    end_artifacts(self, v, std::nullopt);
    return;
  }
  u.in_flight = true;
  const auto id = v.sup.task().video;
  const auto epoch = v.sup.task().epoch;
  self->request(st.coord, request_timeout, std::move(**chunk))
      .then(
          [self, id, epoch](uint64_t next) {
            guarded("node: artifact accepted", [&] { on_artifact_accepted(self, id, epoch, next); });
          },
          [self, id, epoch](caf::error& e) {
            guarded("node: artifact failed", [&] { on_artifact_failed(self, id, epoch, e); });
          });
}

/// Fetches and artifact uploads waiting for their next try (backoff, or a coordinator).
void resume_transfers(node_ptr self) {
  const uint64_t now = self->state.clock.now_ns();
  std::vector<uint64_t> ids;
  for (const auto& [id, v] : self->state.videos)
    ids.push_back(id);
  for (uint64_t id : ids) {  // each step may end videos
    auto it = self->state.videos.find(id);
    if (it == self->state.videos.end())
      continue;
    auto& v = it->second;
    if (v.fetch && !v.fetch->in_flight() && v.fetch->resume_ns && now >= v.fetch->resume_ns) {
      v.fetch->resume_ns = 0;
      if (v.fetch->reserved)
        request_chunk(self, v);
      else
        start_blob(self, v);
    } else if (v.upload && !v.upload->in_flight && v.upload->resume_ns && now >= v.upload->resume_ns) {
      v.upload->resume_ns = 0;
      send_artifact(self, v);
    }
  }
}

// -- the live tree ------------------------------------------------------------------------

void add_worker_rows(const node_state& st, const std::string& node_id, node_status& s) {
  for (const auto& w : st.workers->slots()) {
    tree_entry e;
    e.id = node_id + "/worker-" + std::to_string(w.index);
    e.parent = node_id;
    e.kind = actor_kind::worker;
    e.name = "worker-" + std::to_string(w.index);
    e.state = w.state;
    e.pid = w.pid;
    e.restarts = w.restarts;
    s.entries.push_back(e);
  }
}

tree_entry role_row(const video_entry& v, const supervised_role& r, const tree_entry& video,
                    const std::optional<shm::ring_status>& rs) {
  const bool consumer = r.kind == actor_kind::consumer;
  const std::string id = std::to_string(v.sup.task().video);
  tree_entry x;
  x.id = consumer ? "consumer:" + id + "/" + r.analyzer : "decoder:" + id;
  x.parent = video.id;
  x.kind = r.kind;
  x.name = role_name(r);
  x.state = r.state;
  x.fps = r.last.fps;
  x.position = r.last.position;
  x.total = v.sup.meta().frames;
  x.pid = r.last.pid;
  x.restarts = r.restarts;
  x.ring_slots = video.ring_slots;
  x.quarantined = r.quarantine.size();
  x.ring_fill = video.ring_fill;
  if (consumer) {
    x.lag = std::max<int64_t>(0, v.sup.decoder().last.position - r.last.position);
    x.ring_fill = 0;
    if (rs)
      for (const auto& c : rs->consumers)
        if (c.id == r.consumer_id) {
          x.redelivered = c.redelivered;
          x.ring_fill = rs->produced - std::min(rs->produced, c.committed);
        }
  }
  return x;
}

void add_video_rows(const video_entry& v, const std::string& node_id, node_status& s) {
  const bool running = v.sup.phase() == video_phase::running;
  tree_entry e;
  e.id = "video:" + std::to_string(v.sup.task().video);
  e.parent = node_id;
  e.kind = actor_kind::video;
  e.name = std::filesystem::path(v.sup.task().input).filename().string();
  e.state = running ? actor_state::running : actor_state::probing;
  e.total = v.sup.meta().frames;
  e.position = v.sup.decoder().last.position;
  std::optional<shm::ring_status> rs;
  if (v.ring) {
    rs = v.ring->status();
    e.ring_fill = rs->fill();
    e.ring_slots = rs->slot_count;
  }
  s.entries.push_back(e);
  if (running)
    for (const auto& r : v.sup.roles())
      s.entries.push_back(role_row(v, r, e, rs));
}

node_status build_status(node_ptr self) {
  auto& st = self->state;
  node_status s;
  s.node = st.opt.name;
  const std::string node_id = "node:" + st.opt.name;
  tree_entry n;
  n.id = node_id;
  n.parent = "coordinator";
  n.kind = actor_kind::node;
  n.name = st.opt.name;
  n.state = st.registered ? actor_state::connected : actor_state::connecting;
  n.pid = static_cast<uint32_t>(getpid());
  n.position = static_cast<int64_t>(st.videos.size());
  s.entries.push_back(n);
  add_worker_rows(st, node_id, s);
  for (const auto& [id, v] : st.videos)
    add_video_rows(v, node_id, s);
  return s;
}

// -- coordinator link ----------------------------------------------------------------------

/// Tries again after the reconnect backoff. `why` (if any) is logged the
/// first time and then every log_every_connect_failures attempts.
void retry_connect(node_ptr self, const std::string& why = {}) {
  auto& st = self->state;
  st.connecting = false;
  const uint32_t failures = st.reconnect.attempts();
  const auto delay = st.reconnect.next();
  if (!why.empty() && failures % log_every_connect_failures == 0)
    spdlog::warn("node {}: cannot register with coordinator {}:{}: {} (attempt {}, next in {} ms)",
                 st.opt.name, st.opt.coordinator_host, st.opt.coordinator_port, why, failures + 1,
                 delay.count());
  self->delayed_send(self, delay, connect_to_atom::value);
}

node_info make_node_info(const node_state& st) {
  node_info info;
  info.name = st.opt.name;
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  info.host = host;
  info.cores = st.workers ? st.workers->size() : 0;
  info.shm_budget = st.opt.shm_budget;
  info.version = version;
  info.pid = static_cast<uint32_t>(getpid());
  for (const auto& [id, v] : st.videos)
    info.running.push_back(id);
  // Finished here but not yet reported: still ours until the report lands.
  for (const auto& r : st.unsent_reports)
    info.running.push_back(r.video);
  return info;
}

void on_registered(node_ptr self, const coordinator_actor& coord) {
  auto& st = self->state;
  st.coord = coord;
  st.registered = true;
  st.connecting = false;
  st.reconnect.reset();
  self->monitor(coord);
  spdlog::info("node {}: registered with coordinator {}:{}", st.opt.name, st.opt.coordinator_host,
               st.opt.coordinator_port);
  send_reports(self);
}

/// Runs a step of the connection and, if it throws, retries later instead of
/// staying "connecting" for ever.
template <class F>
void connect_step(node_ptr self, const char* where, F&& step) {
  if (guarded(where, [&]() -> caf::error {
        step();
        return caf::none;
      }))
    retry_connect(self, std::string(where) + " failed");
}

void send_registration(node_ptr self, const coordinator_actor& coord, node_info info) {
  self->request(coord, connect_timeout, std::move(info), caf::actor_cast<node_actor>(self))
      .then(
          [self, coord](node_welcome&) {
            connect_step(self, "node: registered", [&] { on_registered(self, coord); });
          },
          [self](caf::error& e) {
            spdlog::warn("node {}: registration refused: {}", self->state.opt.name, describe(e));
            retry_connect(self);
          });
}

/// With TLS: proves this node's identity by signing the coordinator's challenge
/// with the key of its certificate, and registers with both.
void answer_challenge(node_ptr self, const coordinator_actor& coord, const std::string& challenge) {
  const auto& tls = self->state.opt.tls;
  auto cert = read_certificate(tls.cert);
  if (!cert) {
    retry_connect(self, "cannot read the node certificate: " + cert.error());
    return;
  }
  auto proof = sign_challenge(tls.key, challenge);
  if (!proof) {
    retry_connect(self, "cannot sign the coordinator's challenge: " + proof.error());
    return;
  }
  auto info = make_node_info(self->state);
  info.certificate = std::move(*cert);
  info.proof = std::move(*proof);
  send_registration(self, coord, std::move(info));
}

void on_connected(node_ptr self, const caf::strong_actor_ptr& ptr) {
  if (!ptr) {
    retry_connect(self, "the coordinator's port offers no actor");
    return;
  }
  auto coord = caf::actor_cast<coordinator_actor>(ptr);
  if (!self->state.opt.tls.enabled()) {
    send_registration(self, coord, make_node_info(self->state));  // no certificate, no proof
    return;
  }
  self->request(coord, connect_timeout, challenge_atom::value)
      .then(
          [self, coord](std::string& challenge) {
            connect_step(self, "node: challenge", [&] { answer_challenge(self, coord, challenge); });
          },
          [self](caf::error& e) {
            retry_connect(self, "no challenge from the coordinator: " + describe(e));
          });
}

/// Who opens the connection: CAF's openssl module with TLS (loaded by
/// use_tls() in node_main), else the plain middleman.
std::optional<caf::io::middleman_actor> connector(node_ptr self) {
  auto& sys = self->system();
  if (self->state.opt.tls.enabled() && !sys.has_openssl_manager())
    return std::nullopt;  // never fall back to plaintext
  return connection_manager(sys);
}

void connect(node_ptr self) {
  auto& st = self->state;
  if (st.registered || st.connecting)
    return;
  st.connecting = true;
  auto mm = connector(self);
  if (!mm) {
    retry_connect(self, "TLS files are set but CAF's openssl module is not loaded");
    return;
  }
  self->request(*mm, connect_timeout, caf::connect_atom::value, st.opt.coordinator_host,
                st.opt.coordinator_port)
      .then(
          [self](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
            connect_step(self, "node: connected", [&] { on_connected(self, ptr); });
          },
          [self](caf::error& e) {
            retry_connect(self, std::string(self->state.opt.tls.enabled() ? "TLS " : "") +
                                    "connection failed: " + describe(e));
          });
}

// -- handlers --------------------------------------------------------------------------------

std::string comma_list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& x : items)
    out += (out.empty() ? "" : ",") + x;
  return out;
}

void on_publish(node_ptr self, uint16_t port) {
  auto& st = self->state;
  if (st.workers)
    return;  // published once
  // Only the workers started here learn this (in their environment), so only
  // they can say hello on the worker port.
  worker_pool_options po;
  po.secret = random_token();
  auto launcher = std::make_unique<process_launcher>(
      st.opt.worker_exe, port, po.secret,
      std::vector<std::string>{"--allowed-protocols=" + comma_list(st.opt.allowed_protocols),
                               std::string("--log-format=") + to_string(st.opt.logs), "--node-name=" + st.opt.name});
  st.workers = std::make_unique<worker_pool>(st.opt.workers, std::move(launcher), st.clock, po);
  st.worker_handles.assign(st.opt.workers, worker_actor{});
  self->send(self, tick_atom::value);  // the tick starts (and restarts) the workers
}

void on_tick(node_ptr self) {
  auto& st = self->state;
  if (!st.workers)
    return;
  for (const auto& e : st.workers->on_tick())
    on_worker_exit(self, e);
  for (auto& [id, v] : st.videos)
    if (v.ring)
      v.ring->reclaim_dead_consumers();
  supervise_videos(self);
  resume_transfers(self);
  place_pending(self);
  const uint64_t now = st.clock.now_ns();
  if (now - st.last_status_ns >= to_ns(status_interval)) {
    st.last_status_ns = now;
    auto status = build_status(self);
    if (st.opt.metrics)
      st.opt.metrics->observe(status);
    if (st.registered) {
      self->send(st.coord, std::move(status));
      send_reports(self);
    }
  }
}

caf::result<caf::ok_atom> on_worker_hello(node_ptr self, const worker_hello& h, const worker_actor& w) {
  auto& st = self->state;
  if (!st.workers)
    return make_error(errc::unavailable, "node " + st.opt.name + " has not started its workers");
  if (auto ok = st.workers->on_hello(h.index, h.pid, h.secret); !ok) {
    spdlog::warn("node {}: refused a worker hello: {} ({} refused so far)", st.opt.name, ok.error(),
                 st.workers->refused_hellos());
    return make_error(errc::refused, ok.error());
  }
  st.worker_handles[h.index] = w;
  self->monitor(w);
  spdlog::info("node {}: worker {} ready (pid {})", st.opt.name, h.index, h.pid);
  connect(self);
  place_pending(self);
  return caf::ok_atom::value;
}

/// A batch of a size our consumers send, from one of the video's consumers,
/// for frames decoded already; refusals are logged and counted.
caf::error check_batch(node_state& st, const result_batch& b, const video_entry& v) {
  const std::size_t cap = std::size_t{batch_cap_factor} * std::max<uint32_t>(1, st.opt.batch_frames);
  const int64_t produced = v.ring ? v.ring->next_frame_index() : 0;
  auto refusal = v.sup.check_batch(b, cap, produced);
  if (!refusal)
    return caf::none;
  ++st.refused_batches;
  spdlog::warn("node {}: rejected a {} result batch of {} frames for video {}: {} ({} refused so far)",
               st.opt.name, b.analyzer, b.frames.size(), b.video, refusal->reason, st.refused_batches);
  return make_error(refusal->code, refusal->reason);
}

/// Fenced: the coordinator gave this video to someone else (we were presumed
/// dead). Stop working on it here.
void on_batch_refused(node_ptr self, uint64_t video, uint64_t epoch, const caf::error& e) {
  if (!is_stale_epoch(e) || !find_video(self, video, epoch))
    return;
  spdlog::warn("node {}: video {} epoch {} was revoked by the coordinator; dropping it", self->state.opt.name,
               video, epoch);
  stop_video(self, video);
}

// -- result batches to the coordinator ---------------------------------------------------
//
// Consumers' batches go to the coordinator in messages of several
// (result_batches), one message in flight: what arrives while it is being
// answered waits in the outbox and leaves in the next one. Nothing waits on
// an idle path (a lone batch leaves at once), and under load the coordinator
// pays its per-message costs once per message instead of once per batch. A
// consumer sees its own batch answered as before.

void send_batches(node_ptr self);

/// The gauges of the batches in the message in flight and of those waiting behind it.
void batch_gauges(node_state& st) {
  if (auto* m = st.opt.metrics.get()) {
    m->batches_unanswered.Set(static_cast<double>(st.in_flight ? st.in_flight->size() : 0));
    m->batches_waiting.Set(static_cast<double>(st.outbox.size()));
  }
}

/// Answers one batch: `error` (refused, or the whole message failed) or its ack.
void answer_batch(node_ptr self, outgoing_batch& o, batch_outcome&& out, uint64_t sent_ns) {
  auto& st = self->state;
  if (out.error) {
    guarded("node: batch refused", [&] { on_batch_refused(self, o.batch.video, o.batch.epoch, out.error); });
    o.promise.deliver(std::move(out.error));
    return;
  }
  if (auto* m = st.opt.metrics.get())
    m->batch_acked(out.ack.analyzer, out.ack.stored, static_cast<double>(st.clock.now_ns() - sent_ns) / 1e9);
  o.promise.deliver(std::move(out.ack));
}

/// Sends what waits in the outbox (up to max_batches_per_message) unless a message is in flight.
void send_batches(node_ptr self) {
  auto& st = self->state;
  if (st.in_flight || st.outbox.empty())
    return;
  if (!st.registered) {
    for (auto& o : std::exchange(st.outbox, {}))
      o.promise.deliver(make_error(errc::unavailable, "coordinator not connected"));
    batch_gauges(st);
    return;
  }
  auto sent = std::make_shared<std::vector<outgoing_batch>>();
  result_batches msg;
  while (!st.outbox.empty() && sent->size() < max_batches_per_message) {
    msg.batches.push_back(std::move(st.outbox.front().batch));
    sent->push_back(std::move(st.outbox.front()));
    st.outbox.pop_front();
  }
  st.in_flight = sent;
  batch_gauges(st);
  const uint64_t sent_ns = st.clock.now_ns();
  self->request(st.coord, request_timeout, std::move(msg))
      .then(
          [self, sent, sent_ns](batch_outcomes& r) {
            if (self->state.in_flight != sent)
              return;  // answered already: the coordinator was lost meanwhile
            auto& outs = r.outcomes;
            for (std::size_t i = 0; i < sent->size(); ++i)
              answer_batch(self, (*sent)[i], i < outs.size() ? std::move(outs[i])
                                                             : batch_outcome{{}, make_error(errc::internal,
                                                                                 "the coordinator's answer "
                                                                                 "misses this batch")},
                           sent_ns);
            self->state.in_flight = nullptr;
            batch_gauges(self->state);
            send_batches(self);
          },
          [self, sent, sent_ns](caf::error& e) {
            if (self->state.in_flight != sent)
              return;
            for (auto& o : *sent)
              answer_batch(self, o, batch_outcome{{}, e}, sent_ns);
            self->state.in_flight = nullptr;
            batch_gauges(self->state);
            send_batches(self);
          });
}

caf::result<batch_ack> on_result_batch(node_ptr self, result_batch& b) {
  auto& st = self->state;
  const auto* v = find_video(self, b.video, b.epoch);
  if (!v)
    return make_error(errc::stale_epoch, "video " + std::to_string(b.video) + " epoch " +
                                             std::to_string(b.epoch) + " is not assigned to this node");
  if (auto err = check_batch(st, b, *v))
    return err;
  if (!st.registered)
    return make_error(errc::unavailable, "coordinator not connected");
  b.node = st.opt.name;
  auto rp = self->make_response_promise<batch_ack>();
  st.outbox.push_back(outgoing_batch{std::move(b), rp});  // they leave in the order they arrive
  send_batches(self);
  batch_gauges(st);
  return rp;
}

/// The role's latest progress as the supervisor keeps it (default if it has no such role).
actor_progress last_progress(const video_supervisor& sup, const actor_progress& p) {
  for (const auto& r : sup.roles())
    if (r.kind == p.kind && r.analyzer == p.analyzer)
      return r.last;
  return {};
}

void on_progress(node_ptr self, const actor_progress& p) {
  auto* v = find_video(self, p.video, p.epoch);
  if (!v)
    return;
  const actor_progress before = last_progress(v->sup, p);
  auto commands = v->sup.on_progress(p);
  if (auto* m = self->state.opt.metrics.get())  // counts only what the supervisor took
    m->progress(before, last_progress(v->sup, p));
  carry_out(self, p.video, std::move(commands));
}

/// The input policy and the output folders: why this node will not run `t`, if it will not.
/// A blob input is not judged by the input policy: only its cached copy is opened.
result<unit, std::string> check_task(const node_options& opt, const video_task& t) {
  if (auto blob = parse_blob_input(t.input)) {
    if (!*blob)
      return blob->error();
  } else if (auto ok = check_input(t.input, opt.allowed_protocols, opt.allowed_roots); !ok) {
    return ok.error();
  }
  // The detect model's files: uploads, or local files under the same policy as inputs.
  for (const std::string* file : {&t.detect.model.network, &t.detect.model.weights, &t.detect.model.names}) {
    if (file->empty())
      continue;
    if (auto blob = parse_blob_input(*file)) {
      if (!*blob)
        return "detect model: " + blob->error();
    } else if (auto ok = check_input(*file, {"file"}, opt.allowed_roots); !ok) {
      return "detect model: " + ok.error();
    }
  }
  const auto dir = video_output_dir(opt.output_dir, t.job, t.video);
  for (const auto& a : t.analyzers)
    if (auto folder = analyzer_output_dir(dir, a); !folder)
      return folder.error();
  return unit{};
}

/// Fails a video this node will not run, without probing it.
void refuse_video(node_ptr self, const video_task& t, std::string why) {
  auto& st = self->state;
  ++st.refused_inputs;
  spdlog::warn("node {}: refused video {} ({} refused so far)", st.opt.name, t.video, st.refused_inputs);
  auto& v = st.videos.emplace(t.video, make_entry(st, t)).first->second;
  finish_video(self, v, video_outcome::failed, std::move(why));
}

caf::result<caf::ok_atom> on_video_task(node_ptr self, const video_task& t) {
  auto& st = self->state;
  if (auto it = st.videos.find(t.video); it != st.videos.end()) {
    if (it->second.sup.task().epoch >= t.epoch)
      return caf::ok_atom::value;  // already running this assignment
    stop_video(self, t.video);     // an older assignment: replace it
  }
  if (auto ok = check_task(st.opt, t); !ok) {
    refuse_video(self, t, ok.error());
    return caf::ok_atom::value;  // taken, and already reported failed
  }
  if (!st.workers || !st.workers->pick())
    return make_error(errc::no_capacity, "node " + st.opt.name + " has no ready worker");
  auto& v = st.videos.emplace(t.video, make_entry(st, t)).first->second;
  log_about(spdlog::level::info, about_video(t.job, t.video),
            "node {}: assigned video {} epoch {} ({}), from frame {} (decoding from {})", st.opt.name, t.video,
            t.epoch, t.input, t.start_frame, t.decode_from);
  fetch_next(self, v);  // the model's and the input's blobs, then the probe
  return caf::ok_atom::value;
}

void on_cancel(node_ptr self, uint64_t video) {
  log_about(spdlog::level::info, about_video(video), "node {}: video {} cancelled", self->state.opt.name, video);
  stop_video(self, video);
}

void on_down(node_ptr self, const caf::down_msg& dm) {
  auto& st = self->state;
  if (st.coord && dm.source == st.coord.address()) {
    spdlog::warn("node {}: lost the coordinator ({}); reconnecting", st.opt.name, caf::to_string(dm.reason));
    st.registered = false;
    st.coord = nullptr;
    // Its consumers retry (with backoff) rather than wait for the request timeout.
    if (auto sent = std::exchange(st.in_flight, nullptr))
      for (auto& o : *sent)
        o.promise.deliver(make_error(errc::unavailable, "coordinator lost with the batch unanswered"));
    send_batches(self);  // not registered: what waits in the outbox is answered likewise
    batch_gauges(st);
    self->delayed_send(self, st.reconnect.next(), connect_to_atom::value);
    return;
  }
  for (uint32_t i = 0; i < st.worker_handles.size(); ++i)
    if (st.worker_handles[i] && dm.source == st.worker_handles[i].address()) {
      // The actor is gone but the process may linger: end it; the tick restarts it.
      st.workers->kill(i);
      st.worker_handles[i] = nullptr;
    }
}

/// Protocol names go to the workers as one comma-separated flag: drop any that FFmpeg cannot name.
void drop_invalid_protocols(node_options& opt) {
  auto& p = opt.allowed_protocols;
  for (const auto& name : p)
    if (!valid_protocol_name(name))
      spdlog::error("node {}: ignoring allowed protocol '{}': not a protocol name", opt.name, name);
  p.erase(std::remove_if(p.begin(), p.end(), [](const std::string& n) { return !valid_protocol_name(n); }),
          p.end());
}

/// Opens the blob cache (scanning what an earlier run left); without it blob inputs fail, naming why.
void open_cache(node_state& st) {
  std::error_code ec;
  std::filesystem::remove_all(cache_dir_of(st.opt) + "/models", ec);  // links of videos an earlier run had
  auto cache = std::make_unique<blob_cache>(cache_dir_of(st.opt), st.opt.cache_bytes);
  if (auto ok = cache->open(); !ok) {
    st.cache_error = ok.error();
    spdlog::error("node {}: {}; uploaded videos will fail here", st.opt.name, st.cache_error);
    return;
  }
  spdlog::info("node {}: blob cache {} ({} of {} used)", st.opt.name, cache->dir(),
               format_size(cache->used_bytes()), format_size(cache->max_bytes()));
  st.cache = std::move(cache);
}

node_full_actor::behavior_type node_behavior(node_ptr self, node_options opt) {
  self->state.opt = std::move(opt);
  drop_invalid_protocols(self->state.opt);
  guarded("node: open cache", [&] { open_cache(self->state); });
  self->set_down_handler([self](caf::down_msg& dm) { guarded("node: down", [&] { on_down(self, dm); }); });
  // No cleanup functor: CAF destroys the state when the actor ends (before
  // attached functors run, so a functor touching the state would use freed
  // memory). node_state's member order does the cleanup: videos (their rings
  // remove their segments) go before workers (the launcher kills and reaps them).
  return {
      [self](caf::publish_atom, uint16_t port) { guarded("node: publish", [&] { on_publish(self, port); }); },
      [self](connect_to_atom) { guarded("node: connect", [&] { connect(self); }); },
      [self](tick_atom) {
        guarded("node: tick", [&] { on_tick(self); });
        self->delayed_send(self, tick_interval, tick_atom::value);  // even after a failed tick
      },
      [self](worker_hello& h, worker_actor& w) -> caf::result<caf::ok_atom> {
        return guarded("node: worker hello", [&] { return on_worker_hello(self, h, w); });
      },
      [self](result_batch& b) -> caf::result<batch_ack> {
        return guarded("node: result batch", [&] { return on_result_batch(self, b); });
      },
      [self](actor_progress& p) { guarded("node: progress", [&] { on_progress(self, p); }); },
      [self](video_task& t) -> caf::result<caf::ok_atom> {
        return guarded("node: video task", [&] { return on_video_task(self, t); });
      },
      [self](cancel_atom, uint64_t video) { guarded("node: cancel", [&] { on_cancel(self, video); }); },
  };
}

}  // namespace

std::string ring_prefix(const node_options& o) {
  return o.shm_prefix + "-" + sanitize(o.name) + "-";
}

std::string cache_dir_of(const node_options& o) {
  if (!o.cache_dir.empty())
    return o.cache_dir;
  // One folder per node name: two nodes on one machine must not share a cache.
  const std::string dirname = std::string(default_cache_dirname) + "-" + sanitize(o.name);
  return (std::filesystem::path(o.output_dir).parent_path() / dirname).string();
}

node_full_actor spawn_node(caf::actor_system& sys, node_options options) {
  return sys.spawn(node_behavior, std::move(options));
}

}  // namespace framehive
