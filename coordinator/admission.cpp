#include "coordinator/admission.hpp"

#include <algorithm>
#include <cmath>

#include "analysis/result_codec.hpp"
#include "shm/ring_layout.hpp"

namespace framehive {

namespace {

/// Longest node name: it becomes part of shm names and log lines.
constexpr std::size_t max_node_name_bytes = 255;
/// Longest free text a node sends (host, version, a report's reason, a row's name).
constexpr std::size_t max_text_bytes = 64 * 1024;

/// "`what`: `value` is over the limit `limit` = `max`", counted under the limit's name.
verdict over(const char* limit, const std::string& what, uint64_t value, uint64_t max) {
  return refusal{
      errc::over_limit, limit,
      what + ": " + std::to_string(value) + " is over the limit " + limit + " = " + std::to_string(max)};
}

}  // namespace

admission::admission(const clock& clk, coordinator_limits limits) : clock_(clk), limits_(limits) {
  // More consumers than a ring has entries would fail silently on the node.
  limits_.max_analyzers_per_job = std::min(limits_.max_analyzers_per_job, shm::max_consumers);
}

// -- requests ------------------------------------------------------------------------

verdict admission::check_job(const job_spec& spec, std::size_t queued) const {
  if (spec.inputs.empty())
    return refusal{errc::invalid_request, refusal_key::invalid_job, "no input videos given"};
  if (spec.analyzers.empty())
    return refusal{errc::invalid_request, refusal_key::invalid_job, "no analyzers given"};
  if (spec.inputs.size() > limits_.max_inputs_per_job)
    return over("max_inputs_per_job", "inputs in the job", spec.inputs.size(), limits_.max_inputs_per_job);
  if (spec.analyzers.size() > limits_.max_analyzers_per_job)
    return over("max_analyzers_per_job", "analyzers in the job", spec.analyzers.size(),
                limits_.max_analyzers_per_job);
  for (std::size_t i = 0; i < spec.inputs.size(); ++i) {
    if (spec.inputs[i].empty())
      return refusal{errc::invalid_request, refusal_key::invalid_job,
                     "input " + std::to_string(i + 1) + " is empty"};
    if (spec.inputs[i].size() > limits_.max_input_bytes)
      return over("max_input_bytes", "bytes in input " + std::to_string(i + 1), spec.inputs[i].size(),
                  limits_.max_input_bytes);
  }
  if (queued + spec.inputs.size() > limits_.max_queued_videos)
    return over("max_queued_videos", "videos queued with this job", queued + spec.inputs.size(),
                limits_.max_queued_videos);
  return std::nullopt;
}

verdict admission::check_node(const node_info& info) const {
  if (info.name.empty() || info.name.size() > max_node_name_bytes)
    return refusal{errc::invalid_request, refusal_key::bad_node_info,
                   "a node name has 1 to " + std::to_string(max_node_name_bytes) + " bytes, not " +
                       std::to_string(info.name.size())};
  if (info.cores == 0)
    return refusal{errc::invalid_request, refusal_key::bad_node_info,
                   "node " + info.name + " claims 0 cores"};
  if (info.cores > limits_.max_node_cores)
    return over("max_node_cores", "cores of node " + info.name, info.cores, limits_.max_node_cores);
  if (info.shm_budget > limits_.max_node_shm_bytes)
    return over("max_node_shm_bytes", "shm budget (bytes) of node " + info.name, info.shm_budget,
                limits_.max_node_shm_bytes);
  if (info.running.size() > limits_.max_queued_videos)
    return over("max_queued_videos", "running videos claimed by node " + info.name, info.running.size(),
                limits_.max_queued_videos);
  if (info.host.size() > max_text_bytes || info.version.size() > max_text_bytes)
    return refusal{errc::invalid_request, refusal_key::bad_node_info,
                   "node " + info.name + ": host or version longer than " + std::to_string(max_text_bytes)};
  return std::nullopt;
}

verdict admission::check_batch(const result_batch& b, int64_t frame_count) const {
  if (b.frames.size() > limits_.max_frames_per_batch)
    return over("max_frames_per_batch", "frames in the batch", b.frames.size(), limits_.max_frames_per_batch);
  if (!std::isfinite(b.time_base) || b.time_base < 0)
    return refusal{errc::invalid_request, refusal_key::bad_batch,
                   "batch of video " + std::to_string(b.video) + ": time base " + std::to_string(b.time_base) +
                       " is not a number of seconds >= 0"};
  const int64_t end = frame_count > 0
                          ? std::min(max_frame_index, frame_count + frame_count_slack(frame_count))
                          : max_frame_index;
  for (const auto& f : b.frames) {
    if (f.frame < 0 || f.frame >= end)
      return refusal{f.frame < 0 ? errc::invalid_request : errc::over_limit, refusal_key::frame_range,
                     "frame " + std::to_string(f.frame) + " is outside video " + std::to_string(b.video) +
                         " (frames 0 to " + std::to_string(end - 1) +
                         (frame_count > 0 ? ", probed " + std::to_string(frame_count) + ")" : ")")};
    if (f.data.size() > limits_.max_frame_data_bytes)
      return over("max_frame_data_bytes", "bytes in the result of frame " + std::to_string(f.frame),
                  f.data.size(), limits_.max_frame_data_bytes);
    // Stored as sent and decoded when read: a result that does not decode is
    // refused here, with where it breaks.
    if (auto why = analysis::check_result(f.data); !why.empty())
      return refusal{errc::invalid_request, refusal_key::bad_batch,
                     "the result of frame " + std::to_string(f.frame) + " of video " + std::to_string(b.video) +
                         " is not a stored result: " + why};
  }
  return check_coverage(b, end);
}

verdict admission::check_coverage(const result_batch& b, int64_t end) const {
  if (b.covered_through < 0)
    return std::nullopt;  // covers its own frames, checked above
  const auto outside = [&](const std::string& why) {
    return refusal{errc::invalid_request, refusal_key::frame_range,
                   "batch of video " + std::to_string(b.video) + " covering frames " +
                       std::to_string(b.covered_from) + " to " + std::to_string(b.covered_through) + ": " + why};
  };
  if (b.covered_from < 0 || b.covered_from > b.covered_through)
    return outside("not a range of frames");
  if (b.covered_through >= end)
    return outside("past the video's last frame " + std::to_string(end - 1));
  for (const auto& f : b.frames)
    if (f.frame < b.covered_from || f.frame > b.covered_through)
      return outside("holds frame " + std::to_string(f.frame) + " outside it");
  return std::nullopt;
}

verdict admission::check_report(const video_report& r) const {
  for (int64_t x : {r.frames_total, r.frames_decoded, r.decode_errors})
    if (x < 0 || x > max_frame_index)
      return refusal{errc::invalid_request, refusal_key::frame_range,
                     "report on video " + std::to_string(r.video) + ": frame figure " + std::to_string(x) +
                         " is outside 0 to " + std::to_string(max_frame_index)};
  if (r.error.size() > max_text_bytes)
    return over("max_text_bytes", "bytes in the report's reason", r.error.size(), max_text_bytes);
  return std::nullopt;
}

verdict admission::check_status(const node_status& s) const {
  if (s.entries.size() > max_status_entries)
    return over("max_status_entries", "rows in the node status", s.entries.size(), max_status_entries);
  return std::nullopt;
}

// -- challenges ----------------------------------------------------------------------

void admission::drop_expired(uint64_t now) {
  challenges_.erase(std::remove_if(challenges_.begin(), challenges_.end(),
                                   [now](const challenge& c) { return c.expires_ns <= now; }),
                    challenges_.end());
}

const std::string& admission::issue_challenge(const std::string& peer, std::string token) {
  const uint64_t now = clock_.now_ns();
  drop_expired(now);
  challenges_.erase(std::remove_if(challenges_.begin(), challenges_.end(),
                                   [&](const challenge& c) { return c.peer == peer; }),
                    challenges_.end());
  // Full of live challenges (many peers connecting at once, or one peer
  // asking under many actors): the oldest goes; its peer asks again.
  if (challenges_.size() >= max_challenges)
    challenges_.pop_front();
  challenges_.push_back(challenge{peer, std::move(token), now + to_ns(challenge_ttl)});
  return challenges_.back().token;
}

std::optional<std::string> admission::take_challenge(const std::string& peer) {
  const uint64_t now = clock_.now_ns();
  auto it = std::find_if(challenges_.begin(), challenges_.end(),
                         [&](const challenge& c) { return c.peer == peer; });
  if (it == challenges_.end())
    return std::nullopt;
  const bool live = it->expires_ns > now;
  std::string token = std::move(it->token);
  challenges_.erase(it);
  if (!live)
    return std::nullopt;
  return token;
}

// -- counts --------------------------------------------------------------------------

uint64_t admission::count(const std::string& key) {
  return ++counts_[key];
}

std::vector<refusal_count> admission::counts() const {
  std::vector<refusal_count> out;
  for (const auto& [key, n] : counts_)
    out.push_back(refusal_count{key, n});
  return out;
}

}  // namespace framehive
