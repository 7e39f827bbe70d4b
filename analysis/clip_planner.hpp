#pragma once

// Which frames of a video belong to which clip, decided online from one
// "active" bit per frame, in frame order, holding back only the frames whose
// fate is still open. Plain data and logic (no OpenCV, no FFmpeg): the clips
// analyzer feeds it and encodes what it settles; the tests drive it directly.
//
// A segment is a run of active frames; runs separated by at most
// merge_gap_frames inactive frames are one segment; a segment whose active
// span (first to last active frame) is shorter than min_active_frames is no
// clip. A clip is its segment widened by pad_frames on both sides, clamped to
// the video and to the end of the clip before it, so clips never overlap.
//
// Frames are settled strictly in order. A frame waits while it may still be
// padding of a clip that has not started (at most pad_frames of them), or
// part of a gap that may yet be merged or the padding after a segment (at
// most max(merge_gap_frames + 1, pad_frames) of them); while a clip is open
// its newest frame waits too, so that the clip can end on a frame not yet
// settled. max_held() bounds held() for these rules.
//
// The whole state is a few integers (state(), restore()): a consumer that
// restarts from a checkpoint feeds the held frames' pixels again without
// pushing them, and decides exactly what an uninterrupted run decides.

#include <cstdint>
#include <utility>
#include <vector>

namespace framehive::analysis {

struct clip_rules {
  int64_t pad_frames = 0;         ///< frames before the first and after the last active frame
  int64_t merge_gap_frames = 0;   ///< inactive frames between two runs that still join them
  int64_t min_active_frames = 1;  ///< a segment's active span must be at least this long
};

/// One frame's fate, in frame order.
struct settled_frame {
  int64_t frame = 0;
  bool in_clip = false;  ///< part of the clip being built
  bool opens = false;    ///< the first frame of a clip
  bool closes = false;   ///< the last frame of a clip (its range is in clip_end)
  bool kept = false;     ///< with closes: the clip is long enough to keep
  int64_t clip_start = 0;    ///< with in_clip: the clip's first frame
  int64_t active_start = 0;  ///< with closes: its segment's first active frame
  int64_t active_end = 0;    ///< with closes: its segment's last active frame
};

/// Everything the planner knows; restore() continues from it.
struct clip_plan_state {
  int64_t next_frame = 0;    ///< the frame it expects next
  int64_t settled_next = 0;  ///< the first frame not settled; held frames are [settled_next, next_frame)
  bool in_segment = false;   ///< a clip is open
  int64_t clip_start = 0;    ///< with in_segment
  int64_t active_start = 0;  ///< with in_segment
  int64_t last_active = -1;  ///< with in_segment
  int64_t floor = 0;         ///< no clip may start before this (the end of the last one + 1)
};

class clip_planner {
 public:
  explicit clip_planner(clip_rules rules);

  /// Frames it may hold back for `rules` (a ring must have room for them).
  static int64_t max_held(const clip_rules& rules);

  /// Frame `frame` (the next one: frames come in order, one by one) is
  /// active or not; appends the frames this settles.
  void push(int64_t frame, bool active, std::vector<settled_frame>& out);

  /// The video ended after the last pushed frame: settles every held frame
  /// (an open clip closes at its padding or at the last frame).
  void finish(std::vector<settled_frame>& out);

  /// Frames pushed and not settled yet.
  int64_t held() const { return st_.next_frame - st_.settled_next; }

  const clip_plan_state& state() const { return st_; }

  /// Continues from a state() taken earlier: the next pushed frame is s.next_frame.
  void restore(clip_plan_state s) { st_ = std::move(s); }

  const clip_rules& rules() const { return rules_; }

 private:
  /// Settles the oldest held frames through `last`, in the open clip or not.
  void settle_through(int64_t last, bool in_clip, std::vector<settled_frame>& out);
  /// Closes the open clip at `end` (a held frame): it settles in, marked.
  void close(int64_t end, std::vector<settled_frame>& out);
  /// Idle: only the last pad_frames frames may still become a clip's padding.
  void trim_idle(std::vector<settled_frame>& out);

  clip_rules rules_;
  clip_plan_state st_;
};

}  // namespace framehive::analysis
