#include "analysis/clip_planner.hpp"

#include <algorithm>
#include <cassert>

namespace framehive::analysis {

namespace {

/// Inactive frames after a segment's last active one before it may close:
/// past the merge gap, and with its padding seen.
int64_t close_after(const clip_rules& r) {
  return std::max(r.merge_gap_frames + 1, r.pad_frames);
}

}  // namespace

clip_planner::clip_planner(clip_rules rules) : rules_(rules) {
  rules_.pad_frames = std::max<int64_t>(0, rules_.pad_frames);
  rules_.merge_gap_frames = std::max<int64_t>(0, rules_.merge_gap_frames);
  rules_.min_active_frames = std::max<int64_t>(1, rules_.min_active_frames);
}

int64_t clip_planner::max_held(const clip_rules& rules) {
  const int64_t pad = std::max<int64_t>(0, rules.pad_frames);
  const int64_t gap = std::max<int64_t>(0, rules.merge_gap_frames);
  // Open: the last active frame and the frames after it until the clip
  // closes; idle: pad + 1 frames at the moment of a push.
  return std::max(gap + 2, pad + 1);
}

void clip_planner::settle_through(int64_t last, bool in_clip, std::vector<settled_frame>& out) {
  for (; st_.settled_next <= last; ++st_.settled_next) {
    settled_frame f;
    f.frame = st_.settled_next;
    f.in_clip = in_clip;
    if (in_clip) {
      f.clip_start = st_.clip_start;
      f.opens = f.frame == st_.clip_start;
    }
    out.push_back(f);
  }
}

void clip_planner::close(int64_t end, std::vector<settled_frame>& out) {
  // An open clip always holds its newest frame, so `end` is still held.
  assert(st_.in_segment && end >= st_.settled_next && end < st_.next_frame);
  settle_through(end, true, out);
  auto& last = out.back();
  last.closes = true;
  last.active_start = st_.active_start;
  last.active_end = st_.last_active;
  last.kept = st_.last_active - st_.active_start + 1 >= rules_.min_active_frames;
  st_.in_segment = false;
  st_.floor = end + 1;
}

void clip_planner::trim_idle(std::vector<settled_frame>& out) {
  if (held() > rules_.pad_frames)
    settle_through(st_.next_frame - 1 - rules_.pad_frames, false, out);
}

void clip_planner::push(int64_t frame, bool active, std::vector<settled_frame>& out) {
  assert(frame == st_.next_frame);
  (void)frame;
  const int64_t f = st_.next_frame++;
  if (!st_.in_segment) {
    if (!active) {
      trim_idle(out);
      return;
    }
    st_.in_segment = true;
    st_.clip_start = std::max({f - rules_.pad_frames, st_.floor, st_.settled_next});
    st_.active_start = f;
    st_.last_active = f;
    settle_through(st_.clip_start - 1, false, out);
    settle_through(f - 1, true, out);  // f stays held: the clip may close on it
    return;
  }
  if (active) {
    st_.last_active = f;
    settle_through(f - 1, true, out);  // a gap that joined two runs is part of the clip
    return;
  }
  if (f - st_.last_active >= close_after(rules_)) {
    close(st_.last_active + rules_.pad_frames, out);
    trim_idle(out);
  }
}

void clip_planner::finish(std::vector<settled_frame>& out) {
  if (st_.in_segment)
    close(std::min(st_.last_active + rules_.pad_frames, st_.next_frame - 1), out);
  settle_through(st_.next_frame - 1, false, out);
}

}  // namespace framehive::analysis
