#pragma once

// The keys of a stored per-frame result (frame_result::data, a JSON object):
// written by the analyzers and the consumer, read by the catalog. One list,
// so a writer and its reader cannot drift apart.

namespace framehive::analysis::keys {

// -- added by the consumer to every frame ------------------------------------------
inline constexpr const char* ms = "ms";                    ///< analysis time
inline constexpr const char* t = "t";                      ///< seconds since the start of the video
inline constexpr const char* quarantined = "quarantined";  ///< true: not analysed (poison or exception)
inline constexpr const char* reason = "reason";            ///< why it was quarantined

// -- written by the analyzers ----------------------------------------------------------
inline constexpr const char* brightness = "brightness";  ///< stats
inline constexpr const char* sharpness = "sharpness";    ///< stats
inline constexpr const char* count = "count";            ///< people: detections
inline constexpr const char* boxes = "boxes";            ///< people: [[x, y, w, h], ...]; detect: objects (below)
inline constexpr const char* fg = "fg";                  ///< motion: foreground ratio
inline constexpr const char* path = "path";              ///< thumbnails: the file written
inline constexpr const char* error = "error";            ///< thumbnails: why no file was written
inline constexpr const char* sum = "sum";                ///< touch
// clips: "changed" on every frame; "in_clip" on the frames of a clip; "clip"
// on a kept clip's last frame: {"index", "start_frame", "end_frame",
// "start_s", "end_s", "artifact"}; on the video's last frame "clips" (how
// many) and "digest" (its artifact, if any clip); "error" once it failed.
inline constexpr const char* changed = "changed";
inline constexpr const char* in_clip = "in_clip";
inline constexpr const char* clip = "clip";
inline constexpr const char* clips = "clips";
inline constexpr const char* digest = "digest";
inline constexpr const char* index = "index";
inline constexpr const char* start_frame = "start_frame";
inline constexpr const char* end_frame = "end_frame";
inline constexpr const char* start_s = "start_s";
inline constexpr const char* end_s = "end_s";
inline constexpr const char* artifact = "artifact";
// detect: one count per selected class, keyed by the class name ("person": 2,
// "face": 0), and "boxes": [{"class": "person", "x": .., "y": .., "w": .., "h": ..}, ...]
inline constexpr const char* box_class = "class";
inline constexpr const char* box_x = "x";
inline constexpr const char* box_y = "y";
inline constexpr const char* box_w = "w";
inline constexpr const char* box_h = "h";

}  // namespace framehive::analysis::keys
