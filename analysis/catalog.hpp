#pragma once

// What the coordinator needs to know about analyzers without linking OpenCV:
// their names, and how a summary follows from stored per-frame results.
// Summaries are computed from the stored results (not by the analyzer
// instance), so restarts and redeliveries cannot skew them.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace framehive::analysis {

/// Every analyzer kind the registry can make, in a stable order.
const std::vector<std::string>& analyzer_names();

/// An analyzer name is a kind, optionally with an instance label after a dot
/// ("touch.3", "people.left"): one job may run several instances of a kind,
/// each its own consumer with its own results. The kind is the part before
/// the first dot.
std::string analyzer_kind(const std::string& name);

/// True for a known kind with an optional label of letters, digits, '-' or '_'.
bool is_analyzer(const std::string& name);

/// Frames a stateful analyzer must see before a resume point to warm up (its
/// results for them are not stored). 0 for stateless analyzers. The decoder of
/// a video resumed at frame S starts at S minus the largest pre-roll.
int preroll_frames(const std::string& name);

/// One stored per-frame result.
struct stored_frame {
  int64_t frame = 0;
  nlohmann::json data;
};

/// Summary of one (video, analyzer): frames_processed (analysed successfully),
/// quarantined ([{frame, reason}]: poison frames, not analysed), mean_ms, p95_ms, and the
/// analyzer's own fields. `frames` are in frame order.
nlohmann::json summarize(const std::string& analyzer, const std::vector<stored_frame>& frames);

/// Motion segments: runs of frames whose foreground ratio is at least
/// `threshold`, gaps up to `max_gap_s` merged, runs shorter than `min_len_s`
/// dropped.
struct segment {
  int64_t start_frame = 0;
  int64_t end_frame = 0;
  double start_s = 0;
  double end_s = 0;
};
std::vector<segment> motion_segments(const std::vector<stored_frame>& frames, double threshold = 0.01,
                                     double max_gap_s = 0.5, double min_len_s = 0.3);

}  // namespace framehive::analysis
