#pragma once

// The whole cross-process protocol of framehive: every message type with its
// inspect(), every atom, the typed interfaces of coordinator, node and worker,
// and the one type-ID block that registers them. Every process calls
// framehive::register_protocol(cfg) before creating its actor_system.
//
// Who talks to whom:
//   framehive CLI  --request-->  coordinator_actor
//   node           --request-->  coordinator_actor   (hello, result batches, video reports, status)
//   coordinator    --request-->  node_actor          (assign, cancel)
//   worker         --request-->  node_port_actor     (hello, result batches, progress)
//   node           --request-->  worker_actor        (probe, start decoder/consumer, stop)

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "analysis/types.hpp"
#include "caf/all.hpp"

namespace framehive {

// -- atoms ------------------------------------------------------------------------

using status_atom = caf::atom_constant<caf::atom("status")>;
using results_atom = caf::atom_constant<caf::atom("results")>;
using tree_atom = caf::atom_constant<caf::atom("tree")>;
using nodes_atom = caf::atom_constant<caf::atom("nodes")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using probe_atom = caf::atom_constant<caf::atom("probe")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;
using connect_to_atom = caf::atom_constant<caf::atom("connect")>;
using challenge_atom = caf::atom_constant<caf::atom("challenge")>;
using erase_atom = caf::atom_constant<caf::atom("erase")>;
using fetch_atom = caf::atom_constant<caf::atom("fetch")>;
using artifacts_atom = caf::atom_constant<caf::atom("artifacts")>;

// -- errors -------------------------------------------------------------------------

/// The one project error enum; errors travel as caf::error with a message
/// that names the input and the cause.
enum class errc : uint8_t {
  invalid_request = 1,  ///< malformed request (unknown analyzer, no inputs, ...)
  bad_input,            ///< the video cannot be used (missing, not media, ...)
  no_capacity,          ///< not enough shared memory or workers
  not_found,            ///< no such job or video
  stale_epoch,          ///< results from an assignment that was revoked
  unavailable,          ///< a peer is not connected (yet)
  internal,
  refused,              ///< the sender may not do this (identity, role, not its assignment)
  over_limit,           ///< a size or count above a configured limit
};

inline caf::error make_error(errc code, std::string message) {
  return caf::error{static_cast<uint8_t>(code), caf::atom("framehive"), caf::make_message(std::move(message))};
}

/// The message of an error made with make_error (or CAF's own rendering).
std::string describe(const caf::error& e);

// -- states ---------------------------------------------------------------------------
// Every state and role is an enum with one to_string (for logs, tables and
// JSON) and one from_string (for the job store's text columns). A value out
// of range (a forged or corrupt message) renders as "unknown".

enum class job_state : uint8_t { queued, running, done, failed, cancelled };
enum class video_state : uint8_t { queued, running, done, failed, cancelled };

/// What a node's final word on a video means.
enum class video_outcome : uint8_t {
  done,         ///< every analyzer finished
  failed,       ///< the video cannot be analysed (its reason says why)
  retry_later,  ///< not failed: the node has no room now; queue it again
  escalated,    ///< failed on this node (restart limit): another node may try
};

/// Kinds of rows in the live tree.
enum class actor_kind : uint8_t { coordinator, node, worker, video, decoder, consumer };

/// States of rows in the live tree and of decoder/consumer progress.
enum class actor_state : uint8_t {
  running,     ///< working (coordinator, video, decoder, consumer)
  connecting,  ///< node: not registered with the coordinator (yet)
  connected,   ///< node: registered
  starting,    ///< worker process or actor started, not ready yet
  ready,       ///< worker: connected to its node, takes work
  restarting,  ///< worker: dead, restarts after its backoff
  probing,     ///< video: a worker is probing the input
  pending,     ///< decoder/consumer: waits for a worker
  waiting,     ///< consumer: its results wait for the coordinator
  lost,        ///< decoder/consumer: its worker died; placed again
  done,
  failed,
};

std::string to_string(job_state x);
std::string to_string(video_state x);
std::string to_string(video_outcome x);
std::string to_string(actor_kind x);
std::string to_string(actor_state x);
bool from_string(std::string_view text, job_state& out) noexcept;
bool from_string(std::string_view text, video_state& out) noexcept;

/// True for states a job or video does not leave.
constexpr bool is_final(video_state s) noexcept {
  return s == video_state::done || s == video_state::failed || s == video_state::cancelled;
}

// -- jobs ---------------------------------------------------------------------------

/// What `framehive submit` asks for.
struct job_spec {
  std::vector<std::string> inputs;  ///< paths (absolute) or URLs
  /// KIND[.LABEL][/K | @Nfps] (analysis/catalog.hpp, parse_analyzer): an
  /// analyzer of the registry and, optionally, the frames it takes.
  std::vector<std::string> analyzers;
  uint32_t stride = 1;  ///< /stride for every analyzer that names no sampling of its own
  /// detect's classes and model for this job (files: "blob:SHA256/NAME" or node paths).
  analysis::detect_options detect{};  // {}: job_spec{inputs, analyzers, stride} stays warning-free
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_spec& x) {
  return f(caf::meta::type_name("job_spec"), x.inputs, x.analyzers, x.stride, x.detect);
}

// -- node registration --------------------------------------------------------------

struct node_info {
  std::string name;
  std::string host;
  uint32_t cores = 0;
  uint64_t shm_budget = 0;  ///< bytes of /dev/shm the node may use for rings
  std::string version;
  uint32_t pid = 0;
  std::vector<uint64_t> running;  ///< videos it still runs (after a coordinator restart)
  /// With TLS: the node's certificate (PEM; CN = name, OU = node) and its
  /// signature over the coordinator's challenge (see common/identity.hpp), so
  /// only the holder of a node key can register, and only under its own name.
  std::string certificate;
  std::string proof;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_info& x) {
  return f(caf::meta::type_name("node_info"), x.name, x.host, x.cores, x.shm_budget, x.version, x.pid,
           x.running, x.certificate, x.proof);
}

struct node_welcome {
  std::string coordinator_version;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_welcome& x) {
  return f(caf::meta::type_name("node_welcome"), x.coordinator_version);
}

// -- video assignment ------------------------------------------------------------------

/// One video assigned to one node. `epoch` fences results of older assignments.
struct video_task {
  uint64_t job = 0;
  uint64_t video = 0;
  uint64_t epoch = 0;
  std::string input;
  std::vector<std::string> analyzers;  ///< names (KIND[.LABEL]): the keys of their results
  std::vector<sampling> samplings;     ///< the frames each of `analyzers` takes, same order (missing: every frame)
  int64_t start_frame = 0;  ///< first frame whose results are stored
  int64_t decode_from = 0;  ///< first frame to decode: start_frame minus the analyzers' largest pre-roll
  /// The job's detect choices; its model files are fetched (blobs) before the video starts.
  analysis::detect_options detect{};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, video_task& x) {
  return f(caf::meta::type_name("video_task"), x.job, x.video, x.epoch, x.input, x.analyzers, x.samplings,
           x.start_frame, x.decode_from, x.detect);
}

/// What probing a video tells the node (from a worker: the node never runs FFmpeg).
struct video_meta {
  uint32_t width = 0;
  uint32_t height = 0;
  double fps = 0;
  double duration_s = 0;
  int64_t frames = 0;  ///< -1 if unknown
  std::string codec;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, video_meta& x) {
  return f(caf::meta::type_name("video_meta"), x.width, x.height, x.fps, x.duration_s, x.frames, x.codec);
}

/// The node's final word on a video.
struct video_report {
  uint64_t video = 0;
  uint64_t epoch = 0;
  std::string node;
  video_outcome outcome = video_outcome::failed;
  std::string error;           ///< the reason, unless done
  int64_t frames_total = 0;    ///< frames in the video (decoder's last index + 1)
  int64_t frames_decoded = 0;  ///< frames the decoder decoded (once per node)
  int64_t decode_errors = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, video_report& x) {
  return f(caf::meta::type_name("video_report"), x.video, x.epoch, x.node, x.outcome, x.error, x.frames_total,
           x.frames_decoded, x.decode_errors);
}

// -- results ------------------------------------------------------------------------------

/// One analyzer's result for one frame. `data` is the result's compact
/// stored form (analysis/result_codec.hpp: typed members, no JSON text); the
/// frame's time is pts x the batch's time_base. Small results (a `stats`
/// frame is 15 bytes) fit the string's own buffer: no allocation per frame.
struct frame_result {
  int64_t frame = 0;
  int64_t pts = 0;
  std::string data;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, frame_result& x) {
  return f(caf::meta::type_name("frame_result"), x.frame, x.pts, x.data);
}

/// Results of one (video, analyzer), in frame order, and the frames they
/// account for: every frame in [covered_from, covered_through] that the
/// analyzer's sampling takes is in this batch or was stored by an earlier
/// one. Frames the sampling skips leave no gap, so the watermark is exact for
/// sparse results too. A batch that states no coverage (covered_through < 0)
/// covers exactly [its first frame, its last frame].
struct result_batch {
  uint64_t video = 0;
  uint64_t epoch = 0;
  std::string analyzer;
  std::string node;  ///< filled in by the node that forwards it
  double time_base = 0;  ///< seconds per pts unit
  std::vector<frame_result> frames;
  int64_t covered_from = 0;
  int64_t covered_through = -1;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, result_batch& x) {
  return f(caf::meta::type_name("result_batch"), x.video, x.epoch, x.analyzer, x.node, x.time_base, x.frames,
           x.covered_from, x.covered_through);
}

/// The coordinator stored a batch (idempotently); the consumer may commit its frames.
struct batch_ack {
  uint64_t video = 0;
  std::string analyzer;
  int64_t watermark = -1;  ///< every frame up to it that the analyzer takes is stored
  uint64_t stored = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch_ack& x) {
  return f(caf::meta::type_name("batch_ack"), x.video, x.analyzer, x.watermark, x.stored);
}

/// Several result batches a node forwards in one message: what its consumers
/// sent while its previous message was being answered (a node has one in
/// flight), so the coordinator's work per message (a wake-up, a socket read,
/// a savepoint, a reply) is paid once for all of them. Each batch is checked,
/// stored and answered on its own, in order; the answers come after the
/// transaction holding them committed.
struct result_batches {
  std::vector<result_batch> batches;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, result_batches& x) {
  return f(caf::meta::type_name("result_batches"), x.batches);
}

/// The answer to one batch of a result_batches: its ack, or why it was refused.
struct batch_outcome {
  batch_ack ack;
  caf::error error;  ///< none: stored and committed
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch_outcome& x) {
  return f(caf::meta::type_name("batch_outcome"), x.ack, x.error);
}

/// The answers to a result_batches, one per batch, in its order.
struct batch_outcomes {
  std::vector<batch_outcome> outcomes;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch_outcomes& x) {
  return f(caf::meta::type_name("batch_outcomes"), x.outcomes);
}

// -- the live actor tree ---------------------------------------------------------------------

/// One row of `framehive tree`. Rows form a tree through `parent`.
struct tree_entry {
  std::string id;
  std::string parent;
  actor_kind kind = actor_kind::node;
  std::string name;  ///< bytes: a video's name is its input's file name
  actor_state state = actor_state::running;
  double fps = 0;
  int64_t position = 0;
  int64_t total = 0;
  uint64_t ring_fill = 0;
  uint64_t ring_slots = 0;
  int64_t lag = 0;
  uint32_t pid = 0;
  uint32_t restarts = 0;
  uint64_t redelivered = 0;
  uint64_t quarantined = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tree_entry& x) {
  return f(caf::meta::type_name("tree_entry"), x.id, x.parent, x.kind, x.name, x.state, x.fps, x.position,
           x.total, x.ring_fill, x.ring_slots, x.lag, x.pid, x.restarts, x.redelivered, x.quarantined);
}

/// A node's part of the tree, pushed to the coordinator twice a second.
struct node_status {
  std::string node;
  std::vector<tree_entry> entries;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_status& x) {
  return f(caf::meta::type_name("node_status"), x.node, x.entries);
}


// -- query replies (status, results, tree, nodes) ------------------------------------------
// Typed like every other message; only cli/ turns them into JSON or tables.
// Inputs and names are bytes (a Linux path need not be UTF-8); renderers
// replace invalid sequences, nothing else has to care.

/// One video of `framehive status`.
struct video_status {
  uint64_t video = 0;
  std::string input;
  video_state state = video_state::queued;
  std::string node;   ///< empty unless assigned
  std::string error;  ///< empty unless failed
  int64_t frames_total = 0;
  int64_t position = 0;  ///< slowest analyzer's next frame (live while running)
  int64_t total = 0;     ///< frames expected (probed while running)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, video_status& x) {
  return f(caf::meta::type_name("video_status"), x.video, x.input, x.state, x.node, x.error, x.frames_total,
           x.position, x.total);
}

struct job_status {
  uint64_t job = 0;
  job_state state = job_state::queued;
  std::vector<video_status> videos;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_status& x) {
  return f(caf::meta::type_name("job_status"), x.job, x.state, x.videos);
}

/// `framehive status` without a job: every job.
struct cluster_status {
  std::vector<job_status> jobs;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_status& x) {
  return f(caf::meta::type_name("cluster_status"), x.jobs);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sampling& x) {
  return f(caf::meta::type_name("sampling"), x.every, x.rate_num, x.rate_den);
}

// inspect() of the plain analysis types lives in their namespace, where ADL finds it.
namespace analysis {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, analysis::named_number& x) {
  return f(caf::meta::type_name("named_number"), x.name, x.value);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, analysis::named_text& x) {
  return f(caf::meta::type_name("named_text"), x.name, x.value);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, analysis::box& x) {
  return f(caf::meta::type_name("box"), x.x, x.y, x.width, x.height, x.label);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, analysis::frame_record& x) {
  return f(caf::meta::type_name("frame_record"), x.frame, x.pts, x.t, x.ms, x.quarantined, x.reason, x.numbers,
           x.texts, x.boxes);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, analysis::segment& x) {
  return f(caf::meta::type_name("segment"), x.start_frame, x.end_frame, x.start_s, x.end_s);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, analysis::quarantined_frame& x) {
  return f(caf::meta::type_name("quarantined_frame"), x.frame, x.reason);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, analysis::analyzer_summary& x) {
  return f(caf::meta::type_name("analyzer_summary"), x.frames_seen, x.sampling, x.frames_processed, x.mean_ms,
           x.p95_ms, x.quarantined, x.numbers, x.segments, x.paths, x.top_classes, x.error);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, analysis::dnn_model& x) {
  return f(caf::meta::type_name("dnn_model"), x.network, x.weights, x.names, x.width, x.height, x.scale, x.mean,
           x.swap_rb, x.threshold, x.nms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, analysis::detect_options& x) {
  return f(caf::meta::type_name("detect_options"), x.classes, x.model);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, analysis::analyzer_settings& x) {
  return f(caf::meta::type_name("analyzer_settings"), x.people_max_width, x.motion_width, x.thumbnail_every_s,
           x.detect_classes, x.detect_max_width, x.detect_model_dir, x.detect_dnn, x.clips_padding_s, x.clips_merge_gap_s,
           x.clips_min_length_s, x.clips_crf, x.faults);
}

}  // namespace analysis

/// One analyzer of one video in `framehive results`.
struct analyzer_results {
  std::string analyzer;
  analysis::analyzer_summary summary;
  std::vector<std::string> result_nodes;     ///< nodes that produced these results
  std::vector<analysis::frame_record> frames;  ///< only when asked for (--frames)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, analyzer_results& x) {
  return f(caf::meta::type_name("analyzer_results"), x.analyzer, x.summary, x.result_nodes, x.frames);
}

/// One stored artifact of a job, as `results` lists it and `fetch` gets it.
struct artifact_row {
  uint64_t video = 0;
  std::string analyzer;
  std::string name;
  uint64_t size = 0;
  std::string sha256;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, artifact_row& x) {
  return f(caf::meta::type_name("artifact_row"), x.video, x.analyzer, x.name, x.size, x.sha256);
}

struct video_results {
  uint64_t video = 0;
  std::string input;
  video_state state = video_state::queued;
  std::string node;
  std::string error;
  int64_t frames_total = 0;
  int64_t frames_decoded = 0;
  int64_t decode_errors = 0;
  std::vector<analyzer_results> analyzers;
  std::vector<artifact_row> artifacts;  ///< files its analyzers produced, in the coordinator's store
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, video_results& x) {
  return f(caf::meta::type_name("video_results"), x.video, x.input, x.state, x.node, x.error, x.frames_total,
           x.frames_decoded, x.decode_errors, x.analyzers, x.artifacts);
}

struct job_results {
  uint64_t job = 0;
  job_state state = job_state::queued;
  std::vector<video_results> videos;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_results& x) {
  return f(caf::meta::type_name("job_results"), x.job, x.state, x.videos);
}

/// `framehive tree`: the coordinator's row and every node's rows.
struct cluster_tree {
  std::vector<tree_entry> entries;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_tree& x) {
  return f(caf::meta::type_name("cluster_tree"), x.entries);
}

/// One row of `framehive nodes`.
struct node_row {
  std::string name;
  std::string host;
  uint32_t cores = 0;
  uint64_t shm_budget = 0;
  std::string version;
  uint32_t pid = 0;
  uint64_t running = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_row& x) {
  return f(caf::meta::type_name("node_row"), x.name, x.host, x.cores, x.shm_budget, x.version, x.pid, x.running);
}

/// Requests the coordinator refused since it started, by reason.
struct refusal_count {
  std::string reason;  ///< a short fixed key: "not_assigned", "name_taken", "over_limit", ...
  uint64_t count = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, refusal_count& x) {
  return f(caf::meta::type_name("refusal_count"), x.reason, x.count);
}

struct cluster_nodes {
  std::vector<node_row> nodes;
  std::vector<refusal_count> refusals;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_nodes& x) {
  return f(caf::meta::type_name("cluster_nodes"), x.nodes, x.refusals);
}

// -- blobs: uploads, node fetches, artifacts ---------------------------------------------
// Bytes move through the coordinator's content-addressed store (SHA-256, hex):
// a client uploads a local video in chunks, a node fetches it in chunks into
// its cache, and a node sends every file a job produced (thumbnails, clips)
// back the same way; users fetch those artifacts from anywhere. An uploaded
// video's input is "blob:SHA256/NAME" (NAME: the file's name, for display).

/// Size of one chunk on the wire.
inline constexpr uint32_t blob_chunk_bytes = 1u << 20;

/// A client wants to upload `size` bytes whose SHA-256 is `sha256`.
struct upload_begin {
  std::string sha256;
  uint64_t size = 0;
  std::string name;  ///< the local file name (bytes), for logs
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, upload_begin& x) {
  return f(caf::meta::type_name("upload_begin"), x.sha256, x.size, x.name);
}

/// The coordinator's answer: the blob is already stored (`complete`: send
/// nothing), or send from `offset` on (an interrupted upload of the same
/// bytes resumes where it stopped).
struct upload_offer {
  uint64_t upload = 0;  ///< id of this upload session
  uint64_t offset = 0;
  bool complete = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, upload_offer& x) {
  return f(caf::meta::type_name("upload_offer"), x.upload, x.offset, x.complete);
}

/// Bytes [offset, offset + data.size()) of an upload (replies the next offset).
/// The last chunk completes it: the store checks size and hash and only then
/// makes the blob visible; a mismatch discards it with an error.
struct upload_chunk {
  uint64_t upload = 0;
  uint64_t offset = 0;
  std::vector<char> data;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, upload_chunk& x) {
  return f(caf::meta::type_name("upload_chunk"), x.upload, x.offset, x.data);
}

/// Bytes of a stored blob (video or artifact), from (fetch_atom, sha256, offset).
struct blob_chunk {
  uint64_t size = 0;  ///< of the whole blob
  uint64_t offset = 0;
  std::vector<char> data;  ///< at most blob_chunk_bytes; empty at the end
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, blob_chunk& x) {
  return f(caf::meta::type_name("blob_chunk"), x.size, x.offset, x.data);
}

/// A node sends a file one of its analyzers produced, in chunks (replies the
/// next offset); the chunk that reaches `total` completes it.
struct artifact_chunk {
  uint64_t video = 0;
  uint64_t epoch = 0;
  std::string analyzer;
  std::string name;  ///< file name, unique per (video, analyzer)
  uint64_t total = 0;
  uint64_t offset = 0;
  std::vector<char> data;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, artifact_chunk& x) {
  return f(caf::meta::type_name("artifact_chunk"), x.video, x.epoch, x.analyzer, x.name, x.total, x.offset,
           x.data);
}

struct job_artifacts {
  uint64_t job = 0;
  std::vector<artifact_row> artifacts;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_artifacts& x) {
  return f(caf::meta::type_name("job_artifacts"), x.job, x.artifacts);
}

// -- node <-> worker ----------------------------------------------------------------------------

struct worker_hello {
  uint32_t index = 0;
  uint32_t pid = 0;
  std::string secret;  ///< the node's per-start secret, handed to its workers in the environment
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, worker_hello& x) {
  return f(caf::meta::type_name("worker_hello"), x.index, x.pid, x.secret);
}

struct decoder_task {
  uint64_t video = 0;
  uint64_t epoch = 0;
  std::string input;
  std::string ring;
  int64_t start_frame = 0;
  uint32_t max_width = 0;
  double pace_fps = 0;  ///< test-only: publish at most this many frames per second (0: as fast as it decodes)
  /// Test-only: frames from `hold_at` on wait until the file `hold_until` exists (-1: off).
  int64_t hold_at = -1;
  std::string hold_until;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, decoder_task& x) {
  return f(caf::meta::type_name("decoder_task"), x.video, x.epoch, x.input, x.ring, x.start_frame, x.max_width,
           x.pace_fps, x.hold_at, x.hold_until);
}

struct consumer_task {
  uint64_t video = 0;
  uint64_t epoch = 0;
  std::string ring;
  uint32_t consumer_id = 0;
  std::string analyzer;  ///< its name, KIND[.LABEL]
  sampling take;         ///< the frames it reads from the ring
  std::string output_dir;
  double fps = 0;
  uint32_t batch_frames = 8;
  analysis::analyzer_settings settings;
  int64_t emit_from = 0;  ///< earlier frames only warm up stateful analyzers (pre-roll)
  std::vector<int64_t> quarantine;             ///< poison frames: stored as failed, not analysed
  std::vector<std::string> quarantine_reasons;  ///< one per quarantined frame
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, consumer_task& x) {
  return f(caf::meta::type_name("consumer_task"), x.video, x.epoch, x.ring, x.consumer_id, x.analyzer, x.take,
           x.output_dir, x.fps, x.batch_frames, x.settings, x.emit_from, x.quarantine,
           x.quarantine_reasons);
}

/// Progress of a decoder or consumer actor, sent to the node every half second
/// and once at the end (state done or failed).
struct actor_progress {
  uint64_t video = 0;
  uint64_t epoch = 0;
  actor_kind kind = actor_kind::decoder;  ///< decoder or consumer
  std::string analyzer;                   ///< the consumer's analyzer; empty for the decoder
  actor_state state = actor_state::running;
  int64_t position = 0;  ///< next frame index
  int64_t frames = 0;    ///< frames handled by this actor instance
  double fps = 0;
  uint32_t pid = 0;
  std::string error;
  int64_t decode_errors = 0;
  uint64_t redelivered = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, actor_progress& x) {
  return f(caf::meta::type_name("actor_progress"), x.video, x.epoch, x.kind, x.analyzer, x.state, x.position, x.frames, x.fps,
           x.pid, x.error, x.decode_errors, x.redelivered);
}

// -- typed interfaces -----------------------------------------------------------------------------

/// A worker process: hosts decoder and consumer actors (FFmpeg and OpenCV live here).
using worker_actor = caf::typed_actor<
    caf::replies_to<probe_atom, std::string>::with<video_meta>,
    caf::replies_to<decoder_task>::with<caf::ok_atom>,
    caf::replies_to<consumer_task>::with<caf::ok_atom>,
    caf::reacts_to<stop_atom, uint64_t>>;

/// The node as its workers see it (published on loopback only).
using node_port_actor = caf::typed_actor<
    caf::replies_to<worker_hello, worker_actor>::with<caf::ok_atom>,
    caf::replies_to<result_batch>::with<batch_ack>,
    caf::reacts_to<actor_progress>>;

/// The node as the coordinator sees it.
using node_actor = caf::typed_actor<
    caf::replies_to<video_task>::with<caf::ok_atom>,
    caf::reacts_to<cancel_atom, uint64_t>>;

/// The coordinator as nodes and the CLI see it.
using coordinator_actor = caf::typed_actor<
    caf::replies_to<job_spec>::with<uint64_t>,
    caf::replies_to<challenge_atom>::with<std::string>,
    caf::replies_to<erase_atom, uint64_t>::with<caf::ok_atom>,
    caf::replies_to<upload_begin>::with<upload_offer>,
    caf::replies_to<upload_chunk>::with<uint64_t>,
    caf::replies_to<fetch_atom, std::string, uint64_t>::with<blob_chunk>,
    caf::replies_to<artifact_chunk>::with<uint64_t>,
    caf::replies_to<artifacts_atom, uint64_t>::with<job_artifacts>,
    caf::replies_to<status_atom>::with<cluster_status>,
    caf::replies_to<status_atom, uint64_t>::with<job_status>,
    caf::replies_to<results_atom, uint64_t, bool>::with<job_results>,
    caf::replies_to<tree_atom>::with<cluster_tree>,
    caf::replies_to<nodes_atom>::with<cluster_nodes>,
    caf::replies_to<cancel_atom, uint64_t>::with<job_status>,
    caf::replies_to<node_info, node_actor>::with<node_welcome>,
    caf::replies_to<result_batch>::with<batch_ack>,
    caf::replies_to<result_batches>::with<batch_outcomes>,
    caf::replies_to<video_report>::with<caf::ok_atom>,
    caf::reacts_to<node_status>,
    caf::reacts_to<tick_atom>>;

/// Registers every type above with CAF; call before constructing actor_system.
void register_protocol(caf::actor_system_config& cfg);

/// Heartbeats and connection timeouts for every framehive process. They must be
/// on at both ends of a connection, or the side that has them declares an idle
/// peer dead (see CAF-0.17.md). INI and flags override them.
void configure_network(caf::actor_system_config& cfg);

/// Splits "host:port"; false if malformed.
bool split_host_port(const std::string& s, std::string& host, uint16_t& port);

/// Version string every process reports.
inline constexpr const char* version = "0.1.0";

}  // namespace framehive

CAF_BEGIN_TYPE_ID_BLOCK(framehive, caf::first_custom_type_id)
  CAF_ADD_TYPE_ID(framehive, (framehive::job_spec))
  CAF_ADD_TYPE_ID(framehive, (framehive::node_info))
  CAF_ADD_TYPE_ID(framehive, (framehive::node_welcome))
  CAF_ADD_TYPE_ID(framehive, (framehive::video_task))
  CAF_ADD_TYPE_ID(framehive, (framehive::video_meta))
  CAF_ADD_TYPE_ID(framehive, (framehive::video_report))
  CAF_ADD_TYPE_ID(framehive, (framehive::frame_result))
  CAF_ADD_TYPE_ID(framehive, (std::vector<framehive::frame_result>))
  CAF_ADD_TYPE_ID(framehive, (framehive::result_batch))
  CAF_ADD_TYPE_ID(framehive, (framehive::batch_ack))
  CAF_ADD_TYPE_ID(framehive, (framehive::tree_entry))
  CAF_ADD_TYPE_ID(framehive, (std::vector<framehive::tree_entry>))
  CAF_ADD_TYPE_ID(framehive, (framehive::node_status))
  CAF_ADD_TYPE_ID(framehive, (framehive::worker_hello))
  CAF_ADD_TYPE_ID(framehive, (framehive::decoder_task))
  CAF_ADD_TYPE_ID(framehive, (framehive::consumer_task))
  CAF_ADD_TYPE_ID(framehive, (framehive::actor_progress))
  CAF_ADD_TYPE_ID(framehive, (framehive::video_status))
  CAF_ADD_TYPE_ID(framehive, (framehive::job_status))
  CAF_ADD_TYPE_ID(framehive, (framehive::cluster_status))
  CAF_ADD_TYPE_ID(framehive, (framehive::analyzer_results))
  CAF_ADD_TYPE_ID(framehive, (framehive::video_results))
  CAF_ADD_TYPE_ID(framehive, (framehive::job_results))
  CAF_ADD_TYPE_ID(framehive, (framehive::cluster_tree))
  CAF_ADD_TYPE_ID(framehive, (framehive::node_row))
  CAF_ADD_TYPE_ID(framehive, (framehive::cluster_nodes))
  CAF_ADD_TYPE_ID(framehive, (framehive::refusal_count))
  CAF_ADD_TYPE_ID(framehive, (framehive::upload_begin))
  CAF_ADD_TYPE_ID(framehive, (framehive::upload_offer))
  CAF_ADD_TYPE_ID(framehive, (framehive::upload_chunk))
  CAF_ADD_TYPE_ID(framehive, (framehive::blob_chunk))
  CAF_ADD_TYPE_ID(framehive, (framehive::artifact_chunk))
  CAF_ADD_TYPE_ID(framehive, (framehive::artifact_row))
  CAF_ADD_TYPE_ID(framehive, (framehive::job_artifacts))
  CAF_ADD_TYPE_ID(framehive, (framehive::worker_actor))
  CAF_ADD_TYPE_ID(framehive, (framehive::node_port_actor))
  CAF_ADD_TYPE_ID(framehive, (framehive::node_actor))
  CAF_ADD_TYPE_ID(framehive, (framehive::coordinator_actor))
  CAF_ADD_TYPE_ID(framehive, (std::vector<uint64_t>))
  CAF_ADD_TYPE_ID(framehive, (std::vector<framehive::result_batch>))
  CAF_ADD_TYPE_ID(framehive, (framehive::result_batches))
  CAF_ADD_TYPE_ID(framehive, (framehive::batch_outcome))
  CAF_ADD_TYPE_ID(framehive, (std::vector<framehive::batch_outcome>))
  CAF_ADD_TYPE_ID(framehive, (framehive::batch_outcomes))
CAF_END_TYPE_ID_BLOCK(framehive)
