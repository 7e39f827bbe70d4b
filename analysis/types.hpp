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

/// Clips: seconds of padding before and after each segment, the gap that
/// still joins two runs of activity, the shortest segment kept (active span),
/// and x264's quality (CRF; lower is better, 18 is visually lossless).
inline constexpr double default_clips_padding_s = 0.5;
inline constexpr double default_clips_merge_gap_s = motion_merge_gap_s;
inline constexpr double default_clips_min_length_s = motion_min_length_s;
inline constexpr uint32_t default_clips_crf = 18;
/// Clips: a frame is active when at least this share of its pixels changed
/// since the frame before (by more than clips_pixel_change grey levels, at
/// motion_width): a difference, not a background model, so that the state
/// a restarted consumer needs is one small grey frame.
inline constexpr double clips_active_ratio = motion_active_ratio;
inline constexpr int clips_pixel_change = 25;

/// detect with a DNN model (OpenCV's dnn module): defaults of its options.
inline constexpr uint32_t default_dnn_input_size = 416;
inline constexpr double default_dnn_scale = 1.0 / 255.0;
inline constexpr double default_dnn_threshold = 0.5;
inline constexpr double default_dnn_nms = 0.45;

/// A DNN model for detect, as a job gives it. In a job spec and a video task
/// each file is "blob:SHA256/NAME" (uploaded by the CLI) or an absolute path
/// on the node (--node-visible); in a consumer's settings it is the node's
/// local copy. No network file: detect uses the built-in classes.
struct dnn_model {
  std::string network;  ///< Darknet .cfg, .onnx, Caffe .prototxt, TensorFlow .pb, ...: what cv::dnn::readNet takes
  std::string weights;  ///< Darknet .weights, .caffemodel, ...; empty for a single-file model (ONNX)
  std::string names;    ///< class names, one per line, in the model's class order
  uint32_t width = default_dnn_input_size;   ///< the network's input, pixels
  uint32_t height = default_dnn_input_size;
  double scale = default_dnn_scale;  ///< input = (pixel - mean) * scale
  std::vector<double> mean;          ///< per input channel (in the network's channel order); empty = 0
  bool swap_rb = true;               ///< feed RGB (true) or the frame's BGR (false)
  double threshold = default_dnn_threshold;  ///< lowest confidence kept
  double nms = default_dnn_nms;              ///< overlap (IoU) above which the weaker box of a class goes

  bool empty() const { return network.empty(); }
};

/// What a job chooses for its detect analyzers; empty = the node's settings.
struct detect_options {
  /// Built-in classes (detect_class_table), overriding the node's
  /// detect-classes for this job; with a model: classes of its names file.
  std::vector<std::string> classes;
  dnn_model model;

  bool empty() const {
    return classes.empty() && model.network.empty() && model.weights.empty() && model.names.empty();
  }
};

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
  dnn_model detect_dnn{};  ///< detect: a model the job shipped (local files); empty = the built-in classes
  double clips_padding_s = default_clips_padding_s;        ///< clips: padding before and after a segment
  double clips_merge_gap_s = default_clips_merge_gap_s;    ///< clips: inactive gap that still joins two runs
  double clips_min_length_s = default_clips_min_length_s;  ///< clips: shortest segment kept (active span)
  uint32_t clips_crf = default_clips_crf;                  ///< clips: x264 quality
  std::string faults;  ///< fault injection for tests ("stats:crash@120"); empty = off
};

/// Frames of `fps` video a clips analyzer with `s` may hold unsettled (the
/// node sizes the ring so that they fit beside the batches in flight).
inline int64_t clips_frames(double seconds, double fps) {
  return fps > 0 && seconds > 0 ? static_cast<int64_t>(seconds * fps + 0.5) : 0;
}
inline int64_t clips_max_held(const analyzer_settings& s, double fps) {
  const int64_t pad = clips_frames(s.clips_padding_s, fps);
  const int64_t gap = clips_frames(s.clips_merge_gap_s, fps);
  // clip_planner::max_held (max(gap + 2, pad + 1)), plus the last settled frame kept for the end.
  return (gap + 2 > pad + 1 ? gap + 2 : pad + 1) + 1;
}
/// Frames between a clips consumer's checkpoints: about a second of video.
/// Each checkpoint ends a piece of the clip being encoded (a keyframe and an
/// encoder restart), and the ring keeps the frames since the last one.
inline int64_t clips_checkpoint_frames(double fps) {
  return fps > 0 ? static_cast<int64_t>(fps + 0.5) : 25;
}
/// True for an analyzer name of the clips kind ("clips", "clips.LABEL").
inline bool is_clips(const std::string& name) {
  return name.rfind("clips", 0) == 0 && (name.size() == 5 || name[5] == '.');
}

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
  std::string error;  ///< why the analyzer stopped working for this video (clips: the encoder failed)
};

}  // namespace framehive::analysis
