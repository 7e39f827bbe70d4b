#include "coordinator/scheduler.hpp"

#include <algorithm>
#include <utility>

namespace framehive {

scheduler::scheduler(const clock& clk, resume_points& resume, std::chrono::nanoseconds grace)
    : clock_(clk), resume_(resume), grace_(grace) {}

// -- events --------------------------------------------------------------------------

sched_commands scheduler::restore(const std::vector<restored_video>& videos) {
  sched_commands out;
  const uint64_t deadline = clock_.now_ns() + static_cast<uint64_t>(grace_.count());
  bool waiting = false;
  for (const auto& r : videos) {
    if (r.state != video_state::queued && r.state != video_state::running)
      continue;
    video_entry v;
    v.epoch = r.epoch;
    v.start_frame = r.start_frame;
    if (r.state == video_state::running) {
      v.ph = phase::awaiting;
      v.node = r.node;
      v.deadline_ns = deadline;
      waiting = true;
    } else {
      queue_.push_back(r.video);
    }
    videos_[r.video] = std::move(v);
  }
  if (waiting)
    arm(deadline, out);
  place(out);
  return out;
}

sched_commands scheduler::on_submit(const std::vector<uint64_t>& videos) {
  sched_commands out;
  for (uint64_t id : videos) {
    videos_[id] = video_entry{};
    queue_.push_back(id);
  }
  if (pass_limit_ == 0) {
    place(out);
  } else if (!videos.empty() && !more_asked_) {
    more_asked_ = true;
    out.push_back(sched::place_more{});
  }
  return out;
}

sched_commands scheduler::on_node_registered(const std::string& node, uint32_t cores,
                                             const std::vector<uint64_t>& claimed) {
  sched_commands out;
  auto& n = nodes_[node];
  n.cores = std::max<uint32_t>(1, cores);
  for (uint64_t id : claimed) {
    auto it = videos_.find(id);
    const bool ours = it != videos_.end() && it->second.ph != phase::queued && it->second.node == node;
    if (!ours) {
      out.push_back(sched::cancel{node, id});
      continue;
    }
    it->second.ph = phase::assigned;
    n.running.insert(id);
  }
  // Videos it ran before the coordinator restarted but no longer has: no
  // reason to wait for the rest of the grace period.
  for (auto& [id, v] : videos_)
    if (v.ph == phase::awaiting && v.node == node)
      requeue(id, v, "node " + node + " no longer runs it", out);
  place(out);
  return out;
}

sched_commands scheduler::on_node_lost(const std::string& node) {
  sched_commands out;
  auto n = nodes_.find(node);
  if (n == nodes_.end())
    return out;
  const auto running = std::move(n->second.running);
  nodes_.erase(n);
  for (uint64_t id : running)
    if (auto it = videos_.find(id);
        it != videos_.end() && it->second.ph == phase::assigned && it->second.node == node)
      requeue(id, it->second, "node " + node + " lost", out);
  place(out);
  return out;
}

sched_commands scheduler::on_report(uint64_t video, uint64_t epoch, const std::string& node,
                                    video_outcome outcome, const std::string& reason) {
  sched_commands out;
  video_entry* v = current(video, epoch, node);
  if (!v)
    return out;  // an older assignment: nothing to decide
  switch (outcome) {
    case video_outcome::done:
      finish(video, video_state::done, {}, out);
      break;
    case video_outcome::retry_later:
      requeue(video, *v, reason, out);
      if (auto n = nodes_.find(node); n != nodes_.end())
        n->second.full = true;
      break;
    case video_outcome::escalated: {
      // Failed on that node: another node may try, from the watermark.
      v->avoid.insert(node);
      const bool other = std::any_of(nodes_.begin(), nodes_.end(),
                                     [&](const auto& n) { return v->avoid.count(n.first) == 0; });
      if (other)
        requeue(video, *v, reason, out);
      else
        finish(video, video_state::failed, reason, out);
      break;
    }
    case video_outcome::failed:
    default:  // an outcome this build does not know is a failure, not a silent success
      finish(video, video_state::failed, reason, out);
      break;
  }
  place(out);
  return out;
}

sched_commands scheduler::on_assign_failed(uint64_t video, uint64_t epoch, const std::string& reason,
                                           std::chrono::nanoseconds retry_after) {
  sched_commands out;
  auto it = videos_.find(video);
  if (it == videos_.end() || it->second.ph != phase::assigned || it->second.epoch != epoch)
    return out;
  requeue(video, it->second, reason, out);
  if (retry_after.count() > 0) {
    it->second.not_before_ns = clock_.now_ns() + static_cast<uint64_t>(retry_after.count());
    arm(it->second.not_before_ns, out);
  }
  place(out);
  return out;
}

sched_commands scheduler::on_cancel(const std::vector<uint64_t>& videos) {
  sched_commands out;
  for (uint64_t id : videos) {
    auto it = videos_.find(id);
    if (it == videos_.end())
      continue;
    if (it->second.ph == phase::assigned)
      out.push_back(sched::cancel{it->second.node, id});
    // An awaiting video's node is not connected; if it comes back claiming
    // the video, on_node_registered cancels it there.
    release(id, it->second);
    videos_.erase(it);
  }
  queue_.erase(
      std::remove_if(queue_.begin(), queue_.end(), [this](uint64_t id) { return !videos_.count(id); }),
      queue_.end());
  place(out);
  return out;
}

sched_commands scheduler::on_tick() {
  sched_commands out;
  const uint64_t now = clock_.now_ns();
  more_asked_ = false;
  tick_at_ = 0;
  uint64_t next = 0;
  auto later = [&next](uint64_t t) { next = next == 0 ? t : std::min(next, t); };
  for (auto& [id, v] : videos_) {
    if (v.ph == phase::awaiting) {
      if (v.deadline_ns <= now)
        requeue(id, v, "its node did not come back after the coordinator restarted", out);
      else
        later(v.deadline_ns);
    } else if (v.ph == phase::queued && v.not_before_ns > now) {
      later(v.not_before_ns);
    }
  }
  if (next != 0)
    arm(next, out);
  place(out);
  return out;
}

// -- queries -------------------------------------------------------------------------

bool scheduler::accepts(uint64_t video, uint64_t epoch, const std::string& node) const {
  auto it = videos_.find(video);
  return it != videos_.end() && it->second.ph != phase::queued && it->second.epoch == epoch &&
         it->second.node == node;
}

std::size_t scheduler::running_on(const std::string& node) const {
  auto n = nodes_.find(node);
  return n == nodes_.end() ? 0 : n->second.running.size();
}

bool scheduler::is_full(const std::string& node) const {
  auto n = nodes_.find(node);
  return n != nodes_.end() && n->second.full;
}

// -- internals -----------------------------------------------------------------------

void scheduler::place(sched_commands& out) {
  const uint64_t now = clock_.now_ns();
  std::deque<uint64_t> waiting;
  std::size_t placed = 0;
  while (!queue_.empty()) {
    if (pass_limit_ != 0 && placed == pass_limit_) {
      // The rest waits, in order, for the next slice.
      waiting.insert(waiting.end(), queue_.begin(), queue_.end());
      queue_.clear();
      if (!more_asked_) {
        more_asked_ = true;
        out.push_back(sched::place_more{});
      }
      break;
    }
    const uint64_t id = queue_.front();
    queue_.pop_front();
    auto it = videos_.find(id);
    if (it == videos_.end() || it->second.ph != phase::queued)
      continue;
    video_entry& v = it->second;
    if (v.not_before_ns > now) {
      waiting.push_back(id);  // a tick is armed for it
      continue;
    }
    const std::string* node = pick(v);
    if (node) {
      start(id, v, *node, out);
      ++placed;
      continue;
    }
    waiting.push_back(id);
    // No node with room for a video that avoids none: no node has room at
    // all, and a pass over the rest would find none either.
    if (v.avoid.empty()) {
      waiting.insert(waiting.end(), queue_.begin(), queue_.end());
      queue_.clear();
    }
  }
  queue_ = std::move(waiting);
}

const std::string* scheduler::pick(const video_entry& v) const {
  const std::string* best = nullptr;
  double best_load = 0;
  for (const auto& [name, n] : nodes_) {
    if (n.full || n.running.size() >= n.cores || v.avoid.count(name))
      continue;
    const double load = static_cast<double>(n.running.size()) / n.cores;
    if (!best || load < best_load) {
      best = &name;
      best_load = load;
    }
  }
  return best;
}

void scheduler::start(uint64_t id, video_entry& v, const std::string& node, sched_commands& out) {
  v.ph = phase::assigned;
  v.node = node;
  v.epoch += 1;
  v.not_before_ns = 0;
  nodes_[node].running.insert(id);
  out.push_back(sched::assign{id, node, v.epoch, v.start_frame});
}

void scheduler::release(uint64_t id, video_entry& v) {
  if (auto n = nodes_.find(v.node); n != nodes_.end() && n->second.running.erase(id) > 0)
    n->second.full = false;
}

void scheduler::requeue(uint64_t id, video_entry& v, std::string reason, sched_commands& out) {
  release(id, v);
  v.ph = phase::queued;
  v.node.clear();
  v.deadline_ns = 0;
  v.start_frame = std::max<int64_t>(0, resume_.resume_frame(id));
  queue_.push_back(id);
  out.push_back(sched::requeue{id, v.start_frame, std::move(reason)});
}

void scheduler::finish(uint64_t id, video_state state, std::string reason, sched_commands& out) {
  auto it = videos_.find(id);
  if (it == videos_.end())
    return;
  release(id, it->second);
  videos_.erase(it);
  out.push_back(sched::finish{id, state, std::move(reason)});
}

void scheduler::arm(uint64_t at_ns, sched_commands& out) {
  if (tick_at_ != 0 && tick_at_ <= at_ns)
    return;  // an earlier tick is armed; it arms the next one
  tick_at_ = at_ns;
  out.push_back(sched::arm_tick{at_ns});
}

scheduler::video_entry* scheduler::current(uint64_t video, uint64_t epoch, const std::string& node) {
  if (!accepts(video, epoch, node))
    return nullptr;
  return &videos_.find(video)->second;
}

}  // namespace framehive
