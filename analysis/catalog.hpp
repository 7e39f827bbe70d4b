#pragma once

// What the cluster needs to know about analyzers without linking OpenCV: one
// table with an entry per analyzer kind (name, what it does, pre-roll, how a
// summary follows from stored per-frame results), and the conversion of a
// stored per-frame result into the typed record users read. Summaries are
// computed from the stored results (not by the analyzer instance), so
// restarts and redeliveries cannot skew them.
//
// Adding an analyzer: one entry in the table (catalog.cpp) plus its code and
// its factory line (analyzers.cpp).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/types.hpp"
#include "common/result.hpp"

namespace framehive::analysis {

/// One stored per-frame result: the object the analyzer returned plus "ms"
/// (analysis/result_codec.hpp decodes it), and the frame's time.
struct stored_frame {
  int64_t frame = 0;
  nlohmann::json data;
  double t = 0;  ///< seconds since the start of the video: pts x time base
};

/// One analyzer kind.
struct analyzer_entry {
  std::string_view kind;         ///< "people", "motion", ...
  std::string_view description;  ///< one line for --help and errors
  int preroll_frames = 0;        ///< frames a resumed run warms up on before its first stored frame
  /// Fills the kind's own fields of a summary (frames are the analysed ones, in frame order).
  void (*summarize)(const std::vector<stored_frame>& frames, analyzer_summary& out) = nullptr;
};

/// Every analyzer kind, in a stable order.
const std::vector<analyzer_entry>& analyzer_table();

/// An analyzer name is a kind, optionally with an instance label after a dot
/// ("touch.3", "people.left"): one job may run several instances of a kind,
/// each its own consumer with its own results. The kind is the part before
/// the first dot.
std::string analyzer_kind(const std::string& name);

/// The table entry of `name`'s kind, or nullptr if `name` is not a valid
/// analyzer name (unknown kind, or a label other than letters, digits, '-', '_').
const analyzer_entry* find_analyzer(const std::string& name);

/// True if find_analyzer(name) finds an entry.
bool is_analyzer(const std::string& name);

/// The kinds, in table order ("stats, people, ...") for error messages.
std::string analyzer_list();

// -- a job's analyzers: KIND[.LABEL][/K | @Nfps] ---------------------------------------

/// Largest K of /K and N of @Nfps: beyond them a typo is likelier than a wish.
inline constexpr uint32_t max_sample_every = 1'000'000;
inline constexpr uint32_t max_sample_fps = 1000;
/// @Nfps takes N with up to this many decimals ("@0.5fps", "@29.97fps").
inline constexpr int sample_fps_decimals = 3;

/// Parses one analyzer as a job names it: KIND[.LABEL], then optionally
/// "/K" (every K-th frame by index, K >= 1) or "@Nfps" (N frames per second
/// of video time, by timestamp; N > 0). One that names neither takes every
/// `stride`-th frame (the job's --stride). The error names the text and what
/// is wrong with it ("people@0fps: the rate must be more than 0 fps").
result<analyzer_spec, std::string> parse_analyzer(const std::string& text, uint32_t stride = 1);

/// A job's analyzers, parsed, in the order given, each name once: the same
/// text twice counts once; one name with two samplings ("stats" and
/// "stats/10") is an error, as their results would share a key (give one a
/// label: "stats.sparse/10").
result<std::vector<analyzer_spec>, std::string> parse_analyzers(const std::vector<std::string>& texts,
                                                                uint32_t stride = 1);

/// The text parse_analyzer reads back as `spec` ("people@5fps", "stats/10", "motion").
std::string to_text(const analyzer_spec& spec);

/// Which frames `s` takes, for summaries: "every frame", "every 10th frame", "5 fps".
std::string describe(const sampling& s);

/// The syntax, for --help.
std::string analyzer_syntax();

/// Frames a stateful analyzer must see before a resume point to warm up (its
/// results for them are not stored). 0 for stateless or unknown analyzers.
int preroll_frames(const std::string& name);

/// Where the decoder of a video resumed at `start_frame` starts: early enough
/// for the largest pre-roll among `analyzers`.
int64_t decode_start(int64_t start_frame, const std::vector<std::string>& analyzers);

/// Summary of one (video, analyzer): the frames its sampling `take` gave it
/// (frames_seen), frames_processed, quarantined frames, mean_ms, p95_ms, and
/// the kind's own fields. `frames` are in frame order.
analyzer_summary summarize(const std::string& analyzer, const std::vector<stored_frame>& frames,
                           const sampling& take = {});

/// A stored per-frame result (its decoded object, see result_codec.hpp) as a
/// typed record at time `t`. Members of unexpected types are left out; it
/// never throws.
frame_record to_record(int64_t frame, int64_t pts, double t, const nlohmann::json& data);

/// A summary as text for the job store, and back (false if `text` is not one).
std::string summary_to_text(const analyzer_summary& s);
bool summary_from_text(const std::string& text, analyzer_summary& out);

// -- detect's classes -----------------------------------------------------------------

/// What finds a class: OpenCV's built-in HOG people detector, or a cascade file.
enum class detect_model { hog_people, cascade };

/// One class `detect` can look for. The table is plain data so that a node can
/// check its INI without OpenCV; analyzers.cpp builds the models from it.
struct detect_class {
  std::string_view name;  ///< "person", "face", ...: the per-frame key and the box label
  detect_model model = detect_model::cascade;
  std::string_view file;    ///< cascade: path below analyzer_settings::detect_model_dir
  bool in_default = false;  ///< looked for when no classes are chosen
};

/// Every class, in a stable order (selections, summaries and top-3 ties follow it).
const std::vector<detect_class>& detect_class_table();

/// The outcome of choosing classes: the table entries, or an error naming an unknown class.
struct detect_selection {
  std::vector<const detect_class*> classes;  ///< in table order, each once
  std::string error;                         ///< empty if every name is a class
};

/// The classes `chosen` names (analyzer_settings::detect_classes), or the default set if empty.
detect_selection select_detect_classes(const std::vector<std::string>& chosen);

/// The class names, in table order ("person, face, ...") for errors and help.
std::string detect_class_list();

/// True for a key of a stored frame's result (analysis/result_keys.hpp: ms,
/// t, boxes, count, ...): never a class, so a model's names file may not use one.
bool is_result_key(const std::string& name);

/// A DNN model's input is at most this many pixels a side.
inline constexpr uint32_t max_dnn_input = 4096;
/// A job chooses at most this many detect classes, and no class name or
/// model file name is longer than max_detect_text bytes (as an input's limit).
inline constexpr std::size_t max_detect_classes = 4096;
inline constexpr std::size_t max_detect_text = 4096;

/// Why a job's detect options cannot run (empty: they can): options without a
/// detect analyzer among `analyzers`, an unknown built-in class, a model
/// without a names file, an input size, scale, mean, threshold or NMS overlap
/// out of range. Files are not opened here (the CLI checks its local files,
/// the worker loads them); checked by the CLI and again by the coordinator.
std::string check_detect_options(const detect_options& d, const std::vector<std::string>& analyzers);

/// Motion segments: runs of frames whose foreground ratio is at least
/// `threshold`, gaps up to `max_gap_s` merged, runs shorter than `min_len_s`
/// dropped.
std::vector<segment> motion_segments(const std::vector<stored_frame>& frames, double threshold = motion_active_ratio,
                                     double max_gap_s = motion_merge_gap_s, double min_len_s = motion_min_length_s);

}  // namespace framehive::analysis
