#include <cmath>
#include <filesystem>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>
#include <opencv2/video/background_segm.hpp>

#include "analysis/analyzer.hpp"

namespace framehive::analysis {

namespace {

/// brightness = mean of the grey image; sharpness = variance of its Laplacian.
class stats_analyzer final : public analyzer {
 public:
  std::string name() const override { return "stats"; }
  nlohmann::json process(const cv::Mat& bgr, int64_t, double) override {
    cv::cvtColor(bgr, gray_, cv::COLOR_BGR2GRAY);
    cv::Laplacian(gray_, lap_, CV_64F);
    cv::Scalar mean, stddev;
    cv::meanStdDev(lap_, mean, stddev);
    return {{"brightness", cv::mean(gray_)[0]}, {"sharpness", stddev[0] * stddev[0]}};
  }

 private:
  cv::Mat gray_, lap_;
};

/// OpenCV's default HOG people detector on a frame scaled to at most max_width.
class people_analyzer final : public analyzer {
 public:
  explicit people_analyzer(int max_width) : max_width_(max_width) {
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
    hog_.detectMultiScale(*img, found, 0, cv::Size(8, 8), cv::Size(0, 0), 1.08, 2);
    nlohmann::json boxes = nlohmann::json::array();
    for (const auto& r : found)
      boxes.push_back({std::lround(r.x / scale), std::lround(r.y / scale), std::lround(r.width / scale),
                       std::lround(r.height / scale)});
    return {{"count", found.size()}, {"boxes", boxes}};
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
  explicit motion_analyzer(int width) : width_(width) {}
  std::string name() const override { return "motion"; }
  void begin(const video_context& ctx) override {
    analyzer::begin(ctx);
    mog_ = cv::createBackgroundSubtractorMOG2(200, 16.0, true);
  }
  nlohmann::json process(const cv::Mat& bgr, int64_t, double) override {
    if (!mog_)
      mog_ = cv::createBackgroundSubtractorMOG2(200, 16.0, true);
    const double scale = bgr.cols > width_ ? static_cast<double>(width_) / bgr.cols : 1.0;
    cv::resize(bgr, small_, cv::Size(), scale, scale, cv::INTER_AREA);
    mog_->apply(small_, mask_);
    cv::threshold(mask_, fg_, 200, 255, cv::THRESH_BINARY);  // 127 = shadow
    const double ratio = static_cast<double>(cv::countNonZero(fg_)) / static_cast<double>(fg_.total());
    return {{"fg", ratio}};
  }

 private:
  int width_;
  cv::Ptr<cv::BackgroundSubtractorMOG2> mog_;
  cv::Mat small_, mask_, fg_;
};

/// A JPEG (at most 320 px wide) for the first frame of every N-second period.
class thumbnails_analyzer final : public analyzer {
 public:
  explicit thumbnails_analyzer(double every_s) : every_s_(every_s) {}
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
    const double scale = bgr.cols > 320 ? 320.0 / bgr.cols : 1.0;
    cv::resize(bgr, small_, cv::Size(), scale, scale, cv::INTER_AREA);
    if (!cv::imwrite(path, small_))
      return {{"error", "cannot write " + path}};
    return {{"path", path}};
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
  std::string name() const override { return "touch"; }
  nlohmann::json process(const cv::Mat& bgr, int64_t, double) override {
    uint64_t sum = 0;
    const auto row_bytes = static_cast<std::size_t>(bgr.cols) * bgr.elemSize();
    for (int r = 0; r < bgr.rows; ++r)
      sum += bgr.ptr<uint8_t>(r)[static_cast<std::size_t>(r) % row_bytes];
    return {{"sum", sum}};
  }
};

}  // namespace

analyzer_options parse_analyzer_options(const std::string& text) {
  analyzer_options o;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object())
    return o;
  o.people_max_width = j.value("people_max_width", o.people_max_width);
  o.motion_width = std::max(16, j.value("motion_width", o.motion_width));
  o.thumbnail_every_s = std::max(0.1, j.value("thumbnail_every_s", o.thumbnail_every_s));
  return o;
}

std::unique_ptr<analyzer> make_analyzer(const std::string& instance, const analyzer_options& o) {
  if (!is_analyzer(instance))
    return nullptr;
  const std::string name = analyzer_kind(instance);
  if (name == "stats")
    return std::make_unique<stats_analyzer>();
  if (name == "people")
    return std::make_unique<people_analyzer>(o.people_max_width);
  if (name == "motion")
    return std::make_unique<motion_analyzer>(o.motion_width);
  if (name == "thumbnails")
    return std::make_unique<thumbnails_analyzer>(o.thumbnail_every_s);
  if (name == "touch")
    return std::make_unique<touch_analyzer>();
  return nullptr;
}

}  // namespace framehive::analysis
