#pragma once

// Analyzers: a small interface and one factory per kind (analyzers.cpp); what
// the cluster knows about a kind without OpenCV is in analysis/catalog.hpp.
// OpenCV only; no weights are downloaded (HOG's people detector is built into
// OpenCV, detect's cascades come with Debian's opencv-data).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "analysis/catalog.hpp"

namespace framehive::analysis {

struct video_context {
  int width = 0;
  int height = 0;
  double fps = 0;
  std::string output_dir;  ///< where analyzers write files (thumbnails)
  int64_t may_hold = 0;    ///< holding analyzers: frames the ring lets it keep unsettled
};

/// A frame as a holding analyzer sees it: where it is and when.
struct frame_at {
  int64_t frame = 0;
  int64_t pts = 0;
  int32_t time_base_num = 0;  ///< seconds per pts unit: num / den
  int32_t time_base_den = 1;
  double t = 0;  ///< seconds
};

/// A holding analyzer's result for one frame, decided after later frames came.
struct settled_result {
  int64_t frame = 0;
  nlohmann::json result;
};

class analyzer {
 public:
  virtual ~analyzer() = default;

  virtual std::string name() const = 0;

  virtual void begin(const video_context& ctx) { ctx_ = ctx; }

  /// Analyses one BGR frame at time `t` seconds. The returned JSON object is
  /// the frame's stored result; the caller adds "ms" (time spent) and "t".
  virtual nlohmann::json process(const cv::Mat& bgr, int64_t frame, double t) = 0;

  // -- holding analyzers ------------------------------------------------------------
  // An analyzer whose result for a frame depends on later frames (clips: is
  // this frame padding before a clip?) takes frames with take() and returns
  // results when it has decided them, in frame order. A frame's pixels stay
  // valid until its result is returned: the consumer commits ring frames
  // only up to the last settled one, so the ring keeps the held ones.

  /// From now on the analyzer does no more work for this video and reports
  /// `why` with its results (an injected fault, a poison frame).
  virtual void stop(const std::string& /*why*/) {}

  /// True for a holding analyzer (take/finish/checkpoint instead of process).
  virtual bool holds_frames() const { return false; }

  /// Takes the next frame; appends the results of the frames it settles.
  /// After a restart, the first frame taken is the one after the last
  /// checkpoint's settled frames.
  virtual void take(const cv::Mat& /*bgr*/, const frame_at& /*at*/, std::vector<settled_result>& /*out*/) {}

  /// The video ended: settles every frame still held.
  virtual void finish(std::vector<settled_result>& /*out*/) {}

  /// Makes everything settled so far durable, so that a consumer restarted
  /// after the last settled frame continues exactly. Called before the
  /// results of those frames leave; an error text if it cannot.
  virtual std::optional<std::string> checkpoint() { return std::nullopt; }

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
