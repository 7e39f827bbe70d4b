#pragma once

// Analyzers: a small interface and one factory per kind (analyzers.cpp); what
// the cluster knows about a kind without OpenCV is in analysis/catalog.hpp.
// OpenCV only; no weights are downloaded (HOG's people detector is built into
// OpenCV, detect's cascades come with Debian's opencv-data).

#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "analysis/catalog.hpp"

namespace framehive::analysis {

struct video_context {
  int width = 0;
  int height = 0;
  double fps = 0;
  std::string output_dir;  ///< where analyzers write files (thumbnails)
};

class analyzer {
 public:
  virtual ~analyzer() = default;

  virtual std::string name() const = 0;

  virtual void begin(const video_context& ctx) { ctx_ = ctx; }

  /// Analyses one BGR frame at time `t` seconds. The returned JSON object is
  /// the frame's stored result; the caller adds "ms" (time spent) and "t".
  virtual nlohmann::json process(const cv::Mat& bgr, int64_t frame, double t) = 0;

 protected:
  video_context ctx_;
};

/// Makes an analyzer of `name`'s kind (see analyzer_kind) with `settings`, or
/// nullptr if the name is not a valid analyzer name or the analyzer cannot run
/// here (detect: an unknown class, a missing or broken cascade file); then
/// `why`, if given, says which. Settings out of range are clamped to what the
/// analyzer can work with.
std::unique_ptr<analyzer> make_analyzer(const std::string& name, const analyzer_settings& settings = {},
                                        std::string* why = nullptr);

}  // namespace framehive::analysis
