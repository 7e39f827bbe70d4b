#include <cmath>
#include <filesystem>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>
#include <opencv2/video/background_segm.hpp>

#include "analysis/analyzer.hpp"
#include "analysis/result_keys.hpp"

namespace framehive::analysis {

namespace {

// -- parameters -----------------------------------------------------------------------

/// people: HOG's window stride and scale step, and the grouping threshold.
const cv::Size hog_win_stride(8, 8);
constexpr double hog_scale_step = 1.08;
constexpr double hog_group_threshold = 2;

/// motion: MOG2's history (frames) and variance threshold; mask values above
/// this are foreground (MOG2 marks shadows 127).
constexpr int mog_history = 200;
constexpr double mog_var_threshold = 16.0;
constexpr bool mog_detect_shadows = true;
constexpr double mog_foreground_min = 200;
constexpr double mask_max = 255;
/// motion: narrower images say little about motion.
constexpr uint32_t min_motion_width = 16;

/// thumbnails: width of the JPEGs; no period is shorter than this.
constexpr int thumbnail_width = 320;
constexpr double min_thumbnail_every_s = 0.1;

/// brightness = mean of the grey image; sharpness = variance of its Laplacian.
class stats_analyzer final : public analyzer {
 public:
  explicit stats_analyzer(const analyzer_settings&) {}
  std::string name() const override { return "stats"; }
  nlohmann::json process(const cv::Mat& bgr, int64_t, double) override {
    cv::cvtColor(bgr, gray_, cv::COLOR_BGR2GRAY);
    cv::Laplacian(gray_, lap_, CV_64F);
    cv::Scalar mean, stddev;
    cv::meanStdDev(lap_, mean, stddev);
    return {{keys::brightness, cv::mean(gray_)[0]}, {keys::sharpness, stddev[0] * stddev[0]}};
  }

 private:
  cv::Mat gray_, lap_;
};

/// OpenCV's default HOG people detector on a frame scaled to at most max_width.
class people_analyzer final : public analyzer {
 public:
  explicit people_analyzer(const analyzer_settings& s) : max_width_(static_cast<int>(s.people_max_width)) {
    hog_.setSVMDetector(cv::HOGDescriptor::getDefaultPeopleDetector());
  }
  std::string name() const override { return "people"; }
  nlohmann::json process(const cv::Mat& bgr, int64_t, double) override {
    double scale = 1.0;
    const cv::Mat* img = &bgr;
    if (max_width_ > 0 && bgr.cols > max_width_) {
      scale = static_cast<double>(max_width_) / bgr.cols;
      cv::resize(bgr, small_, cv::Size(), scale, scale, cv::INTER_AREA);
      img = &small_;
    }
    std::vector<cv::Rect> found;
    hog_.detectMultiScale(*img, found, 0, hog_win_stride, cv::Size(0, 0), hog_scale_step,
                          hog_group_threshold);
    nlohmann::json boxes = nlohmann::json::array();
    for (const auto& r : found)
      boxes.push_back({std::lround(r.x / scale), std::lround(r.y / scale), std::lround(r.width / scale),
                       std::lround(r.height / scale)});
    return {{keys::count, found.size()}, {keys::boxes, boxes}};
  }

 private:
  int max_width_;
  cv::HOGDescriptor hog_;
  cv::Mat small_;
};

/// MOG2 background subtraction on a downscaled frame: the ratio of foreground
/// pixels (shadows excluded). Segments follow from the ratios (catalog.cpp).
class motion_analyzer final : public analyzer {
 public:
  explicit motion_analyzer(const analyzer_settings& s)
      : width_(static_cast<int>(std::max(min_motion_width, s.motion_width))) {}
  std::string name() const override { return "motion"; }
  void begin(const video_context& ctx) override {
    analyzer::begin(ctx);
    mog_ = new_model();
  }
  nlohmann::json process(const cv::Mat& bgr, int64_t, double) override {
    if (!mog_)
      mog_ = new_model();
    const double scale = bgr.cols > width_ ? static_cast<double>(width_) / bgr.cols : 1.0;
    cv::resize(bgr, small_, cv::Size(), scale, scale, cv::INTER_AREA);
    mog_->apply(small_, mask_);
    cv::threshold(mask_, fg_, mog_foreground_min, mask_max, cv::THRESH_BINARY);
    const double ratio = static_cast<double>(cv::countNonZero(fg_)) / static_cast<double>(fg_.total());
    return {{keys::fg, ratio}};
  }

 private:
  static cv::Ptr<cv::BackgroundSubtractorMOG2> new_model() {
    return cv::createBackgroundSubtractorMOG2(mog_history, mog_var_threshold, mog_detect_shadows);
  }

  int width_;
  cv::Ptr<cv::BackgroundSubtractorMOG2> mog_;
  cv::Mat small_, mask_, fg_;
};

/// A JPEG (at most thumbnail_width px wide) for the first frame of every N-second period.
class thumbnails_analyzer final : public analyzer {
 public:
  explicit thumbnails_analyzer(const analyzer_settings& s)
      : every_s_(std::max(min_thumbnail_every_s, s.thumbnail_every_s)) {}
  std::string name() const override { return "thumbnails"; }
  nlohmann::json process(const cv::Mat& bgr, int64_t frame, double t) override {
    // Decided per frame from its own time, so a resumed run writes the same files.
    const double step = ctx_.fps > 0 ? 1.0 / ctx_.fps : 0.0;
    const bool first_of_period =
        frame == 0 || std::floor(t / every_s_) != std::floor(std::max(0.0, t - step) / every_s_);
    if (!first_of_period || ctx_.output_dir.empty())
      return nlohmann::json::object();
    std::filesystem::create_directories(ctx_.output_dir);
    const std::string path = ctx_.output_dir + "/thumb_" + std::to_string(frame) + ".jpg";
    const double scale = bgr.cols > thumbnail_width ? static_cast<double>(thumbnail_width) / bgr.cols : 1.0;
    cv::resize(bgr, small_, cv::Size(), scale, scale, cv::INTER_AREA);
    if (!cv::imwrite(path, small_))
      return {{keys::error, "cannot write " + path}};
    return {{keys::path, path}};
  }

 private:
  double every_s_;
  cv::Mat small_;
};

/// The lightest analysis that still looks at the whole frame: one byte from
/// every row (so every page of the frame is read), summed. It measures what
/// the framework costs per frame, not what an analysis costs.
class touch_analyzer final : public analyzer {
 public:
  explicit touch_analyzer(const analyzer_settings&) {}
  std::string name() const override { return "touch"; }
  nlohmann::json process(const cv::Mat& bgr, int64_t, double) override {
    uint64_t sum = 0;
    const auto row_bytes = static_cast<std::size_t>(bgr.cols) * bgr.elemSize();
    for (int r = 0; r < bgr.rows; ++r)
      sum += bgr.ptr<uint8_t>(r)[static_cast<std::size_t>(r) % row_bytes];
    return {{keys::sum, sum}};
  }
};

// -- factories: one line per kind of the catalog --------------------------------------

using factory = std::unique_ptr<analyzer> (*)(const analyzer_settings&);

template <class T>
std::unique_ptr<analyzer> make(const analyzer_settings& settings) {
  return std::make_unique<T>(settings);
}

struct factory_entry {
  std::string_view kind;
  factory make;
};

const factory_entry factories[] = {
    {"stats", make<stats_analyzer>},   {"people", make<people_analyzer>},
    {"motion", make<motion_analyzer>}, {"thumbnails", make<thumbnails_analyzer>},
    {"touch", make<touch_analyzer>},
};

}  // namespace

std::unique_ptr<analyzer> make_analyzer(const std::string& name, const analyzer_settings& settings) {
  const auto* entry = find_analyzer(name);
  if (!entry)
    return nullptr;
  for (const auto& f : factories)
    if (f.kind == entry->kind)
      return f.make(settings);
  return nullptr;
}

}  // namespace framehive::analysis
