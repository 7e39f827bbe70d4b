#include "node/video_supervisor.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace framehive {

namespace {

/// Placed and not finished: the states in which a role is expected to talk.
bool is_active(actor_state s) noexcept {
  return s == actor_state::starting || s == actor_state::running || s == actor_state::waiting;
}

bool needs_worker(actor_state s) noexcept {
  return s == actor_state::pending || s == actor_state::lost;
}

std::string seconds(std::chrono::milliseconds d) {
  return fmt::format("{:g} s", d.count() / 1000.0);
}

std::string times(uint32_t n) {
  return n == 1 ? std::string("once") : fmt::format("{} times", n);
}

/// Why a frame is quarantined, from what happened to it.
std::string poison_reason(const frame_crashes& c, const std::string& last) {
  std::string what;
  if (c.hangs == 0)
    what = "crashed on this frame " + times(c.crashes);
  else if (c.crashes == 0)
    what = "hung on this frame " + times(c.hangs);
  else
    what = "crashed " + times(c.crashes) + " and hung " + times(c.hangs) + " on this frame";
  return fmt::format("analyzer {} (last: worker {})", what, last);
}

}  // namespace

std::string to_string(video_phase x) {
  switch (x) {
    case video_phase::probing:
      return "probing";
    case video_phase::running:
      return "running";
    case video_phase::finished:
      return "finished";
  }
  return "unknown";
}

std::string role_name(const supervised_role& r) {
  return r.kind == actor_kind::decoder ? std::string("decoder") : r.analyzer;
}

video_supervisor::video_supervisor(video_task task, std::string node, supervision_options options,
                                   const clock& clk)
    : task_(std::move(task)), node_(std::move(node)), options_(options), clock_(&clk) {
  roles_.emplace_back();  // the decoder
  for (std::size_t i = 0; i < task_.analyzers.size(); ++i) {
    supervised_role c;
    c.kind = actor_kind::consumer;
    c.analyzer = task_.analyzers[i];
    if (i < task_.samplings.size())
      c.take = task_.samplings[i];
    c.consumer_id = static_cast<uint32_t>(roles_.size());
    roles_.push_back(std::move(c));
  }
}

// -- events ---------------------------------------------------------------------------

void video_supervisor::start(const video_meta& meta) {
  if (phase_ != video_phase::probing)
    return;
  meta_ = meta;
  phase_ = video_phase::running;
}

std::vector<role_id> video_supervisor::unplaced() const {
  std::vector<role_id> out;
  if (phase_ != video_phase::running)
    return out;
  for (role_id r = decoder_role + 1; r < roles_.size(); ++r)
    if (needs_worker(roles_[r].state))
      out.push_back(r);
  if (needs_worker(decoder().state))
    out.push_back(decoder_role);
  return out;
}

void video_supervisor::on_placed(role_id id, uint32_t worker, uint32_t pid) {
  auto& r = roles_.at(id);
  r.state = actor_state::starting;
  r.worker = worker;
  r.worker_pid = pid;
  r.last_seen_ns = clock_->now_ns();
  r.hung = false;
}

void video_supervisor::on_start_failed(role_id id, uint32_t worker) {
  auto& r = roles_.at(id);
  // Only the placement this answer is about: the role may have moved on since.
  if (r.state == actor_state::starting && r.worker == worker)
    r.state = actor_state::lost;
}

supervisor_commands video_supervisor::on_progress(const actor_progress& p) {
  if (phase_ != video_phase::running || p.epoch != task_.epoch)
    return {};
  auto* r = find(p);
  // A lost or re-placed role can still hear from its old, dying instance.
  if (!r || !is_active(r->state) || p.pid != r->worker_pid)
    return {};
  switch (p.state) {
    case actor_state::running:
    case actor_state::waiting:
    case actor_state::done:
      break;
    case actor_state::failed: {
      r->last = p;
      r->state = actor_state::failed;
      std::string why = p.error.empty() ? role_name(*r) + " failed" : p.error;
      if (why.find(task_.input) == std::string::npos)
        why = task_.input + ": " + why;  // the reason names the input (a decoder's does already)
      return report(video_outcome::failed, std::move(why));
    }
    default:
      return {};  // not a state a decoder or consumer reports
  }
  r->last = p;
  r->last_seen_ns = clock_->now_ns();
  r->state = p.state;
  const bool all_done = std::all_of(roles_.begin(), roles_.end(),
                                    [](const supervised_role& x) { return x.state == actor_state::done; });
  return all_done ? report(video_outcome::done, {}) : supervisor_commands{};
}

supervisor_commands video_supervisor::on_worker_died(uint32_t worker, const std::string& why,
                                                     const frames_in_hand& in_hand) {
  if (phase_ != video_phase::running)
    return {};
  const uint64_t now = clock_->now_ns();
  supervisor_commands out;
  const supervised_role* too_often = nullptr;
  for (auto& r : roles_) {
    if (r.worker != worker || !is_active(r.state))
      continue;
    if (r.kind == actor_kind::consumer) {
      if (auto it = in_hand.find(r.consumer_id); it != in_hand.end())
        count_crash(r, it->second, why);
      out.push_back(mark_consumer_dead{r.consumer_id});
    }
    r.hung = false;
    r.state = actor_state::lost;
    ++r.restarts;
    if (restarted_too_often(r, now) && !too_often)
      too_often = &r;
  }
  if (too_often) {
    auto reason = fmt::format("{}: {} restarted more than {} times in {} on node {} (last: worker {})",
                              task_.input, role_name(*too_often), options_.restart_limit,
                              seconds(options_.restart_window), node_, why);
    for (auto& c : report(video_outcome::escalated, std::move(reason)))
      out.push_back(std::move(c));
  }
  return out;
}

supervisor_commands video_supervisor::on_tick() {
  if (phase_ != video_phase::running)
    return {};
  const uint64_t now = clock_->now_ns();
  const uint64_t limit = to_ns(options_.hang_timeout);
  supervisor_commands out;
  std::vector<uint32_t> killed;
  for (auto& r : roles_) {
    if (!is_active(r.state) || !r.worker || now - r.last_seen_ns < limit)
      continue;
    const auto silent =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(now - r.last_seen_ns));
    r.hung = true;
    r.last_seen_ns = now;  // one kill per timeout, even if the death is slow to show
    if (std::find(killed.begin(), killed.end(), *r.worker) != killed.end())
      continue;
    killed.push_back(*r.worker);
    out.push_back(kill_worker{
        *r.worker, fmt::format("{} of video {} silent for {}", role_name(r), task_.video, seconds(silent))});
  }
  return out;
}

std::optional<batch_refusal> video_supervisor::check_batch(const result_batch& b, std::size_t max_frames,
                                                           int64_t produced) const {
  if (b.frames.size() > max_frames)
    return batch_refusal{errc::over_limit, "a result batch holds at most " + std::to_string(max_frames) +
                                               " frames, got " + std::to_string(b.frames.size())};
  const bool known = std::any_of(roles_.begin(), roles_.end(), [&](const supervised_role& r) {
    return r.kind == actor_kind::consumer && r.analyzer == b.analyzer;
  });
  if (!known)
    return batch_refusal{errc::refused,
                         "video " + std::to_string(task_.video) + " has no analyzer '" + b.analyzer + "'"};
  for (const auto& f : b.frames)
    if (f.frame < 0 || f.frame >= produced)
      return batch_refusal{errc::invalid_request, "frame " + std::to_string(f.frame) + " is outside video " +
                                                      std::to_string(task_.video) +
                                                      " (decoded so far: " + std::to_string(produced) + ")"};
  if (b.covered_through >= produced)
    return batch_refusal{errc::invalid_request, "a batch of video " + std::to_string(task_.video) +
                                                    " covers frames to " + std::to_string(b.covered_through) +
                                                    ", past those decoded so far (" + std::to_string(produced) + ")"};
  return std::nullopt;
}

video_report video_supervisor::finish(video_outcome outcome, std::string error) {
  phase_ = video_phase::finished;
  video_report r;
  r.video = task_.video;
  r.epoch = task_.epoch;
  r.node = node_;
  r.outcome = outcome;
  r.error = std::move(error);
  r.frames_total = decoder().last.position;
  r.frames_decoded = decoder().last.frames;
  r.decode_errors = decoder().last.decode_errors;
  return r;
}

// -- properties ----------------------------------------------------------------------

std::vector<uint32_t> video_supervisor::workers() const {
  std::vector<uint32_t> out;
  for (const auto& r : roles_)
    if (r.worker && std::find(out.begin(), out.end(), *r.worker) == out.end())
      out.push_back(*r.worker);
  return out;
}

// -- helpers ---------------------------------------------------------------------------

supervised_role* video_supervisor::find(const actor_progress& p) {
  if (p.kind == actor_kind::decoder)
    return &roles_[decoder_role];
  if (p.kind != actor_kind::consumer)
    return nullptr;
  for (auto& r : roles_)
    if (r.kind == actor_kind::consumer && r.analyzer == p.analyzer)
      return &r;
  return nullptr;
}

void video_supervisor::count_crash(supervised_role& r, int64_t frame, const std::string& why) {
  auto& c = r.crashes[frame];
  ++(r.hung ? c.hangs : c.crashes);
  if (c.total() < options_.poison_attempts || r.quarantine.count(frame))
    return;
  auto reason = poison_reason(c, why);
  spdlog::warn("node {}: video {} frame {} quarantined for {}: {}", node_, task_.video, frame, r.analyzer,
               reason);
  r.quarantine.emplace(frame, std::move(reason));
}

bool video_supervisor::restarted_too_often(supervised_role& r, uint64_t now) {
  const uint64_t window = to_ns(options_.restart_window);
  r.restart_times_ns.push_back(now);
  while (now - r.restart_times_ns.front() > window)
    r.restart_times_ns.pop_front();
  return r.restart_times_ns.size() > options_.restart_limit;
}

supervisor_commands video_supervisor::report(video_outcome outcome, std::string error) {
  return {report_video{finish(outcome, std::move(error))}};
}

}  // namespace framehive
