#pragma once

// The decisions about one video assigned to this node, with no CAF inside:
// which roles (the decoder and one consumer per analyzer) need a worker, what
// a worker's death costs each of its roles (a restart, a crash on the frame in
// hand, maybe a poison quarantine or the restart limit), when a silent role is
// hung, and when the video is finished. The node actor turns messages into
// events here and carries out the commands that come back; the ring itself
// stays with the node, which passes in what it says as plain facts.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "actors/messages.hpp"
#include "common/clock.hpp"

namespace framehive {

// -- options ------------------------------------------------------------------------

inline constexpr uint32_t default_poison_attempts = 3;
inline constexpr uint32_t default_restart_limit = 5;
inline constexpr std::chrono::seconds default_restart_window{30};
inline constexpr std::chrono::seconds default_hang_timeout{60};

/// Limits of supervision (node.ini [supervision]).
struct supervision_options {
  uint32_t poison_attempts = default_poison_attempts;  ///< crashes on one frame before it is quarantined
  uint32_t restart_limit = default_restart_limit;      ///< restarts of one role within restart_window ...
  std::chrono::milliseconds restart_window = default_restart_window;  ///< ... before the video escalates
  std::chrono::milliseconds hang_timeout = default_hang_timeout;      ///< a role silent this long is hung
};

// -- states and roles -------------------------------------------------------------------

enum class video_phase : uint8_t {
  probing,   ///< a worker is probing the input; no ring, no roles placed
  running,   ///< the ring exists; roles are placed and supervised
  finished,  ///< the report is out; no more commands
};

std::string to_string(video_phase x);

/// Index of a role: 0 is the decoder, k >= 1 the consumer with ring id k.
using role_id = uint32_t;
inline constexpr role_id decoder_role = 0;

/// Worker deaths while one frame was in a consumer's hand.
struct frame_crashes {
  uint32_t crashes = 0;  ///< the worker died on its own
  uint32_t hangs = 0;    ///< the worker was killed because the consumer fell silent
  uint32_t total() const noexcept { return crashes + hangs; }
};

/// The decoder or one consumer, and how it is doing.
struct supervised_role {
  actor_kind kind = actor_kind::decoder;
  std::string analyzer;                      ///< the consumer's analyzer; empty for the decoder
  sampling take;                             ///< the frames the consumer reads
  uint32_t consumer_id = 0;                  ///< the consumer's ring entry; 0 for the decoder
  actor_state state = actor_state::pending;  ///< pending|starting|running|waiting|lost|done|failed
  std::optional<uint32_t> worker;            ///< the worker it was last placed on
  uint32_t worker_pid = 0;                   ///< that worker's process: progress from any other is stale
  uint32_t restarts = 0;
  std::deque<uint64_t> restart_times_ns;      ///< within the restart window
  uint64_t last_seen_ns = 0;                  ///< placed or last progress (hang detection)
  bool hung = false;                          ///< its worker was killed because it fell silent
  actor_progress last;                        ///< its latest progress
  std::map<int64_t, frame_crashes> crashes;   ///< frame -> worker deaths while it was in hand
  std::map<int64_t, std::string> quarantine;  ///< poison frames -> why; skipped from now on
};

/// "decoder" or the consumer's analyzer, for logs and reasons.
std::string role_name(const supervised_role& r);

// -- commands -----------------------------------------------------------------------------

/// End worker `worker`'s process: a role on it is hung.
struct kill_worker {
  uint32_t worker = 0;
  std::string reason;
};

/// Mark the ring entry of consumer `consumer_id` dead: its worker died, and its
/// unacknowledged frames wait in the ring for its restart.
struct mark_consumer_dead {
  uint32_t consumer_id = 0;
};

/// The video is finished on this node: send `report`, stop its roles, remove its ring.
struct report_video {
  video_report report;
};

using supervisor_command = std::variant<kill_worker, mark_consumer_dead, report_video>;
using supervisor_commands = std::vector<supervisor_command>;

/// What the ring says when a worker died: consumer id -> the frame it had read
/// but not committed (the one it was analysing). Consumers with nothing in
/// hand are absent.
using frames_in_hand = std::map<uint32_t, int64_t>;

/// Why a result batch is refused: the error code for the sender and the reason.
struct batch_refusal {
  errc code = errc::refused;
  std::string reason;
};

// -- the supervisor ------------------------------------------------------------------------

class video_supervisor {
 public:
  /// Starts in phase probing with one pending role per analyzer plus the decoder.
  video_supervisor(video_task task, std::string node, supervision_options options, const clock& clk);

  // -- events --

  /// Probed, and the ring exists: the roles now wait for workers.
  void start(const video_meta& meta);

  /// Roles that need a worker, consumers first: the decoder must never run
  /// ahead of its readers' registration. Empty unless running.
  std::vector<role_id> unplaced() const;

  /// Role `r` was sent to worker `worker`, whose process is `pid`.
  void on_placed(role_id r, uint32_t worker, uint32_t pid);

  /// The worker did not take role `r` (refused, or no answer): place it again.
  void on_start_failed(role_id r, uint32_t worker);

  /// Progress of a decoder or consumer; may finish the video (done or failed).
  supervisor_commands on_progress(const actor_progress& p);

  /// Worker `worker` ended (`why`): its roles are lost, each a restart, and a
  /// consumer's frame in hand counts a crash. May quarantine or escalate.
  supervisor_commands on_worker_died(uint32_t worker, const std::string& why, const frames_in_hand& in_hand);

  /// Hang detection: a placed role silent for hang_timeout gets its worker killed.
  supervisor_commands on_tick();

  /// Ends the video for a reason found outside (no room, probe failed, ...).
  video_report finish(video_outcome outcome, std::string error);

  // -- checks --

  /// Whether a result batch for this video can be one of its consumers': at
  /// most `max_frames` frames (over_limit), from an analyzer the video runs
  /// (refused), every frame within the decoded frames [0, `produced`)
  /// (invalid_request: no result can exist for a frame not decoded yet), and
  /// a coverage (result_batch::covered_through) within them too.
  std::optional<batch_refusal> check_batch(const result_batch& b, std::size_t max_frames,
                                           int64_t produced) const;

  // -- properties --

  const video_task& task() const noexcept { return task_; }
  const video_meta& meta() const noexcept { return meta_; }
  video_phase phase() const noexcept { return phase_; }
  const std::vector<supervised_role>& roles() const noexcept { return roles_; }
  const supervised_role& decoder() const noexcept { return roles_[decoder_role]; }
  /// Workers that host (or were last given) one of its roles.
  std::vector<uint32_t> workers() const;

 private:
  supervised_role* find(const actor_progress& p);
  void count_crash(supervised_role& r, int64_t frame, const std::string& why);
  bool restarted_too_often(supervised_role& r, uint64_t now);
  supervisor_commands report(video_outcome outcome, std::string error);

  video_task task_;
  std::string node_;
  supervision_options options_;
  const clock* clock_;
  video_meta meta_;
  video_phase phase_ = video_phase::probing;
  std::vector<supervised_role> roles_;
};

}  // namespace framehive
