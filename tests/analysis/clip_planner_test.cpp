// The clips analyzer's decisions (analysis/clip_planner): which frames form
// which clip, decided online in frame order, holding back at most max_held()
// frames, and the same decisions after a restore from any checkpoint.

#include "analysis/clip_planner.hpp"

#include <random>

#include <gtest/gtest.h>

using framehive::analysis::clip_plan_state;
using framehive::analysis::clip_planner;
using framehive::analysis::clip_rules;
using framehive::analysis::settled_frame;

namespace {

struct clip_range {
  int64_t start = 0;
  int64_t end = 0;
  bool operator==(const clip_range& o) const { return start == o.start && end == o.end; }
};

std::ostream& operator<<(std::ostream& os, const clip_range& c) {
  return os << "[" << c.start << ", " << c.end << "]";
}

/// Activity from a list of active runs [first, last] over `total` frames.
std::vector<bool> activity(int64_t total, const std::vector<std::pair<int64_t, int64_t>>& runs) {
  std::vector<bool> a(static_cast<std::size_t>(total), false);
  for (const auto& [first, last] : runs)
    for (int64_t f = first; f <= last; ++f)
      a[static_cast<std::size_t>(f)] = true;
  return a;
}

/// What a run decides: every frame's fate, in order, and the kept clips.
struct outcome {
  std::vector<settled_frame> frames;
  std::vector<clip_range> kept() const {
    std::vector<clip_range> out;
    for (const auto& f : frames)
      if (f.closes && f.kept)
        out.push_back({f.clip_start, f.frame});
    return out;
  }
};

outcome run(const clip_rules& rules, const std::vector<bool>& active) {
  clip_planner p(rules);
  outcome o;
  // A fresh vector per call, as the analyzer uses: a decision may only mark
  // frames it settles in that call.
  std::vector<settled_frame> step;
  auto keep = [&] {
    o.frames.insert(o.frames.end(), step.begin(), step.end());
    step.clear();
  };
  for (std::size_t f = 0; f < active.size(); ++f) {
    p.push(static_cast<int64_t>(f), active[f], step);
    keep();
    EXPECT_LE(p.held(), clip_planner::max_held(rules)) << "frame " << f;
  }
  p.finish(step);
  keep();
  return o;
}

void expect_every_frame_once_in_order(const outcome& o, std::size_t total) {
  ASSERT_EQ(o.frames.size(), total);
  for (std::size_t i = 0; i < total; ++i)
    EXPECT_EQ(o.frames[i].frame, static_cast<int64_t>(i));
}

clip_rules rules(int64_t pad, int64_t gap, int64_t min_active) {
  clip_rules r;
  r.pad_frames = pad;
  r.merge_gap_frames = gap;
  r.min_active_frames = min_active;
  return r;
}

}  // namespace

TEST(ClipPlanner, SegmentsArePaddedMergedAndShortOnesDropped) {
  // Runs: 100-199, 205-210 (a 5-frame pause: merged), 400-449, 600-602 (too short).
  const auto a = activity(700, {{100, 199}, {205, 210}, {400, 449}, {600, 602}});
  const auto o = run(rules(5, 12, 8), a);
  expect_every_frame_once_in_order(o, 700);
  EXPECT_EQ(o.kept(), (std::vector<clip_range>{{95, 215}, {395, 454}}));
  // The frames inside the kept clips are exactly the ones marked in a clip
  // (the dropped one's frames are marked too: they were encoded, then deleted).
  int64_t in_kept = 0;
  for (const auto& f : o.frames)
    in_kept += f.in_clip && ((f.frame >= 95 && f.frame <= 215) || (f.frame >= 395 && f.frame <= 454));
  EXPECT_EQ(in_kept, (215 - 95 + 1) + (454 - 395 + 1));
  for (const auto& f : o.frames) {
    if (f.frame == 95 || f.frame == 395) {
      EXPECT_TRUE(f.opens) << f.frame;
    }
    if (f.closes && f.frame == 215) {
      EXPECT_EQ(f.active_start, 100);
      EXPECT_EQ(f.active_end, 210);
    }
  }
}

TEST(ClipPlanner, NoActivityGivesNoClip) {
  const auto o = run(rules(5, 12, 8), activity(300, {}));
  expect_every_frame_once_in_order(o, 300);
  EXPECT_TRUE(o.kept().empty());
  for (const auto& f : o.frames)
    EXPECT_FALSE(f.in_clip);
}

TEST(ClipPlanner, ActivityIntoTheLastFrameClosesTheClipThere) {
  const auto o = run(rules(5, 12, 8), activity(200, {{150, 199}}));
  expect_every_frame_once_in_order(o, 200);
  EXPECT_EQ(o.kept(), (std::vector<clip_range>{{145, 199}}));
  // And padding cut short by the end: active to 197, padding would reach 202.
  EXPECT_EQ(run(rules(5, 12, 8), activity(200, {{150, 197}})).kept(), (std::vector<clip_range>{{145, 199}}));
}

TEST(ClipPlanner, ActivityFromTheFirstFrameStartsTheClipThere) {
  EXPECT_EQ(run(rules(5, 2, 1), activity(50, {{0, 9}})).kept(), (std::vector<clip_range>{{0, 14}}));
}

TEST(ClipPlanner, PaddingNeverOverlapsTheClipBefore) {
  // Gap of 12 frames (> merge gap 3), padding 10 each side: the second clip
  // starts right after the first one ends.
  const auto o = run(rules(10, 3, 1), activity(100, {{20, 29}, {42, 50}}));
  EXPECT_EQ(o.kept(), (std::vector<clip_range>{{10, 39}, {40, 60}}));
}

TEST(ClipPlanner, PaddingLongerThanTheMergeGapStillSeesItsPadding) {
  const auto o = run(rules(8, 2, 1), activity(60, {{10, 12}}));
  EXPECT_EQ(o.kept(), (std::vector<clip_range>{{2, 20}}));
}

TEST(ClipPlanner, NoPaddingNoGapIsTheActiveRunsThemselves) {
  const auto o = run(rules(0, 0, 1), activity(30, {{3, 5}, {7, 7}, {20, 29}}));
  EXPECT_EQ(o.kept(), (std::vector<clip_range>{{3, 5}, {7, 7}, {20, 29}}));
}

TEST(ClipPlanner, RestoredFromAnyPointItDecidesWhatAnUninterruptedRunDecides) {
  // Random activity; for each cut, run to a point, take the state after the
  // last settled frame as a checkpoint does (the planner's state plus the
  // held frames, which come again), restore a new planner from it and feed
  // the rest: the fates of all frames are those of the clean run.
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 40; ++trial) {
    const int64_t total = 400;
    std::vector<bool> a(total);
    bool on = false;
    for (auto&& x : a) {
      if (std::uniform_int_distribution<int>(0, 9)(rng) == 0)
        on = !on;
      x = on;
    }
    const auto r = rules(std::uniform_int_distribution<int64_t>(0, 8)(rng),
                         std::uniform_int_distribution<int64_t>(0, 8)(rng),
                         std::uniform_int_distribution<int64_t>(1, 6)(rng));
    const auto clean = run(r, a);
    expect_every_frame_once_in_order(clean, total);
    const int64_t cut = std::uniform_int_distribution<int64_t>(1, total - 1)(rng);
    clip_planner first(r);
    outcome o;
    for (int64_t f = 0; f < cut; ++f)
      first.push(f, a[static_cast<std::size_t>(f)], o.frames);
    const clip_plan_state saved = first.state();
    clip_planner second(r);
    second.restore(saved);
    // Held frames come again but are not pushed again: the planner has them.
    for (int64_t f = saved.next_frame; f < total; ++f)
      second.push(f, a[static_cast<std::size_t>(f)], o.frames);
    second.finish(o.frames);
    ASSERT_EQ(o.frames.size(), clean.frames.size()) << "trial " << trial;
    for (std::size_t i = 0; i < o.frames.size(); ++i) {
      const auto& x = o.frames[i];
      const auto& y = clean.frames[i];
      ASSERT_TRUE(x.frame == y.frame && x.in_clip == y.in_clip && x.opens == y.opens && x.closes == y.closes &&
                  x.kept == y.kept && x.clip_start == y.clip_start)
          << "trial " << trial << " frame " << y.frame;
    }
  }
}
