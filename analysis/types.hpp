#pragma once

// Plain data about analyzers that crosses process boundaries: the settings a
// node hands its consumers, one frame's stored result as the user reads it,
// and a (video, analyzer) summary. No OpenCV and no code: actors/messages.hpp
// gives these their inspect(), the node includes them without linking any
// analysis code, and only cli/ turns them into JSON.

#include <cstdint>
#include <string>
#include <vector>

#include "common/sampling.hpp"

namespace framehive::analysis {

// -- a job's analyzers ----------------------------------------------------------------

/// One analyzer of a job: which one (its identity: the key of its results,
/// watermark and summary) and which frames it takes. Parsed and written by
/// the catalog (parse_analyzer, to_text): "people.left@5fps", "stats/10".
struct analyzer_spec {
  std::string name;  ///< KIND[.LABEL]
  sampling take;     ///< every frame unless /K or @Nfps (or the job's --stride) says otherwise
};

// -- settings -------------------------------------------------------------------------

/// Defaults of the analyzers' settings (node.ini [analyzers]).
inline constexpr uint32_t default_people_max_width = 640;
inline constexpr uint32_t default_motion_width = 160;
inline constexpr double default_thumbnail_every_s = 5.0;
inline constexpr uint32_t default_detect_max_width = 640;
/// Where Debian's opencv-data puts the cascades (haarcascades/, lbpcascades/).
inline constexpr const char* default_detect_model_dir = "/usr/share/opencv4";

/// Motion: a frame is active when at least this share of its pixels is foreground.
inline constexpr double motion_active_ratio = 0.01;
/// Motion: active runs closer than this are merged into one segment.
inline constexpr double motion_merge_gap_s = 0.5;
/// Motion: segments shorter than this are dropped.
inline constexpr double motion_min_length_s = 0.3;
/// Motion: frames MOG2 (history 200) needs before a resume point to be close
/// to a model that saw the video from the start.
inline constexpr int motion_preroll_frames = 100;

/// What a node's consumers are told about their analyzers; typed end to end
/// (INI -> node_options -> consumer_task -> analyzer), never re-parsed.
struct analyzer_settings {
  uint32_t people_max_width = default_people_max_width;  ///< people: scale frames down to this width
  uint32_t motion_width = default_motion_width;          ///< motion: width the background model sees
  double thumbnail_every_s = default_thumbnail_every_s;   ///< thumbnails: one JPEG per period
  /// detect: the classes to look for (catalog.hpp, detect_class_table); empty = the default set.
  std::vector<std::string> detect_classes;
  uint32_t detect_max_width = default_detect_max_width;     ///< detect: scale frames down to this width
  std::string detect_model_dir = default_detect_model_dir;  ///< detect: folder of the cascade files
  std::string faults;  ///< fault injection for tests ("stats:crash@120"); empty = off
};

// -- results -----------------------------------------------------------------------------

struct named_number {
  std::string name;
  double value = 0;
};

struct named_text {
  std::string name;
  std::string value;
};

/// A detection's box in source pixels.
struct box {
  int32_t x = 0;
  int32_t y = 0;
  int32_t width = 0;
  int32_t height = 0;
  std::string label;  ///< the class ("person", "face"); empty for people's unlabelled boxes
};

/// One analyzer's stored result for one frame, as the user reads it.
struct frame_record {
  int64_t frame = 0;
  int64_t pts = 0;
  double t = 0;    ///< seconds
  double ms = 0;   ///< analysis time
  bool quarantined = false;
  std::string reason;                 ///< why it was quarantined
  std::vector<named_number> numbers;  ///< e.g. brightness, count, fg, sum
  std::vector<named_text> texts;      ///< e.g. path, error
  std::vector<box> boxes;             ///< detections
};

/// A run of active frames (motion), by source index and time.
struct segment {
  int64_t start_frame = 0;
  int64_t end_frame = 0;
  double start_s = 0;
  double end_s = 0;
};

struct quarantined_frame {
  int64_t frame = 0;
  std::string reason;
};

/// Summary of one (video, analyzer), computed from the stored frames.
struct analyzer_summary {
  uint64_t frames_seen = 0;       ///< frames its sampling took: processed + quarantined
  std::string sampling;           ///< which frames those were ("every frame", "every 10th frame", "5 fps")
  uint64_t frames_processed = 0;  ///< analysed successfully
  double mean_ms = 0;
  double p95_ms = 0;
  std::vector<quarantined_frame> quarantined;
  std::vector<named_number> numbers;  ///< the analyzer's own figures (total_detections, checksum, ...)
  std::vector<segment> segments;      ///< motion
  std::vector<std::string> paths;     ///< files it wrote (thumbnails)
  std::vector<std::string> top_classes;  ///< detect: up to 3 classes found most often, most first
};

}  // namespace framehive::analysis
