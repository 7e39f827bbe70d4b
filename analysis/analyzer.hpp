#pragma once

// Analyzers: a small interface, a registry by name. OpenCV only; no weights
// are downloaded (HOG's people detector is built into OpenCV).

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

/// Settings an analyzer may read; unset fields keep defaults.
struct analyzer_options {
  int people_max_width = 640;
  int motion_width = 160;
  double thumbnail_every_s = 5.0;
};

/// Reads analyzer_options from a JSON object; unknown or missing keys keep defaults.
analyzer_options parse_analyzer_options(const std::string& json_text);

/// Makes an analyzer of `name`'s kind (see analyzer_kind), or nullptr if the
/// name is not a valid analyzer name.
std::unique_ptr<analyzer> make_analyzer(const std::string& name, const analyzer_options& options = {});

}  // namespace framehive::analysis
