#pragma once

// What the coordinator lets in, as a plain class: the limits on jobs, node
// registrations and result batches; the challenges nodes sign to prove who
// they are; and the count of every refusal by its reason. The coordinator
// actor asks, and turns a refusal into the caller's error, a log line and a
// count. No CAF actors, no SQLite, no wall time (time comes from the clock),
// so every rule is unit-tested with a manual_clock.
//
// Who a sender *is* is not decided here: the actor knows which actor
// registered under which name. This class decides what a request may contain.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "actors/messages.hpp"
#include "common/clock.hpp"
#include "coordinator/coordinator_actor.hpp"

namespace framehive {

/// Highest frame index + 1 that any video may have. The ring packs committed
/// sequences into 40 bits (shm::committed_bits), so no real video gets near it.
inline constexpr int64_t max_frame_index = int64_t{1} << 40;

/// A node's frame count comes from the container header (nb_frames, or
/// duration x rate): an estimate. Results may run this far past it before
/// they are refused, so an honest node is never stuck on a rounding error.
constexpr int64_t frame_count_slack(int64_t frames) {
  return frames / 8 + 64;
}

/// How long a challenge may be answered, and how many may be outstanding
/// (one per connecting peer; a peer that asks again replaces its own).
inline constexpr std::chrono::seconds challenge_ttl{30};
inline constexpr std::size_t max_challenges = 1024;

/// Rows a node's status may carry (workers + videos x (decoder + consumers)).
inline constexpr std::size_t max_status_entries = 65'536;

/// Refusal keys (cluster_nodes.refusals). Limits are counted under the name
/// of the limit (coordinator_limits' field names).
namespace refusal_key {
inline constexpr const char* anonymous = "anonymous";                    ///< a request without a sender
inline constexpr const char* handle_mismatch = "handle_mismatch";        ///< registers another actor's handle
inline constexpr const char* name_taken = "name_taken";                  ///< a live node holds the name
inline constexpr const char* already_registered = "already_registered";  ///< one actor, a second name
inline constexpr const char* no_challenge = "no_challenge";      ///< TLS: none issued, used or expired
inline constexpr const char* bad_proof = "bad_proof";            ///< TLS: certificate or signature
inline constexpr const char* bad_node_info = "bad_node_info";    ///< 0 cores, empty or long name
inline constexpr const char* not_registered = "not_registered";  ///< results/report/status from a non-node
inline constexpr const char* not_assigned = "not_assigned";      ///< for a video it never held
inline constexpr const char* stale_epoch = "stale_epoch";        ///< for a video it no longer holds
inline constexpr const char* bad_batch = "bad_batch";            ///< unknown video or analyzer
inline constexpr const char* frame_range = "frame_range";        ///< frame < 0 or past the video's end
inline constexpr const char* name_mismatch = "name_mismatch";    ///< status under another node's name
inline constexpr const char* invalid_job = "invalid_job";        ///< no inputs, unknown analyzer, ...
}  // namespace refusal_key

/// Why a request is refused: the caller's error code and message, and the key
/// it is counted under.
struct refusal {
  errc code = errc::refused;
  std::string key;
  std::string message;
};

using verdict = std::optional<refusal>;

class admission {
 public:
  admission(const clock& clk, coordinator_limits limits);

  const coordinator_limits& limits() const noexcept { return limits_; }

  // -- requests ------------------------------------------------------------------------

  /// A job as submitted (before analyzers are de-duplicated); `queued` videos wait already.
  verdict check_job(const job_spec& spec, std::size_t queued) const;

  /// A node's registration figures: cores in [1, max_node_cores], shm budget
  /// up to max_node_shm_bytes, a name of 1..255 bytes, claims bounded.
  verdict check_node(const node_info& info) const;

  /// A batch's size, frame indexes and coverage (a range of frames in the
  /// video that holds the batch's frames). `frame_count` is the video's frame
  /// count as its node probed it (<= 0: unknown; then only max_frame_index bounds it).
  verdict check_batch(const result_batch& b, int64_t frame_count) const;

  /// A final report's figures.
  verdict check_report(const video_report& r) const;

  /// A node status's size.
  verdict check_status(const node_status& s) const;

  // -- challenges ----------------------------------------------------------------------

  /// Remembers `token` as the challenge for `peer` (replacing an older one),
  /// for challenge_ttl; returns it.
  const std::string& issue_challenge(const std::string& peer, std::string token);

  /// The peer's challenge, once: it is forgotten whether or not it was still
  /// valid. nullopt if none was issued, it was used, or it expired.
  std::optional<std::string> take_challenge(const std::string& peer);

  std::size_t challenges() const noexcept { return challenges_.size(); }

  // -- counts --------------------------------------------------------------------------

  /// Counts a refusal; returns how many there were under its key.
  uint64_t count(const std::string& key);
  /// Every key counted since the start, by key.
  std::vector<refusal_count> counts() const;

 private:
  struct challenge {
    std::string peer;
    std::string token;
    uint64_t expires_ns = 0;
  };

  void drop_expired(uint64_t now);
  /// A batch's coverage: a range of frames below `end` that holds its frames.
  verdict check_coverage(const result_batch& b, int64_t end) const;

  const clock& clock_;
  coordinator_limits limits_;
  std::deque<challenge> challenges_;  ///< oldest first
  std::map<std::string, uint64_t> counts_;
};

}  // namespace framehive
