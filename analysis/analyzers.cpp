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

/// detect: cascades' scale step and the neighbours a detection needs (more: fewer false ones).
constexpr double cascade_scale_step = 1.1;
constexpr int cascade_min_neighbours = 4;

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

/// `bgr`, or a copy scaled down into `small` if it is wider than `max_width`
/// (0: never); `scale` maps its pixels back (source = scaled / scale).
const cv::Mat& at_most(const cv::Mat& bgr, int max_width, cv::Mat& small, double& scale) {
  scale = 1.0;
  if (max_width <= 0 || bgr.cols <= max_width)
    return bgr;
  scale = static_cast<double>(max_width) / bgr.cols;
  cv::resize(bgr, small, cv::Size(), scale, scale, cv::INTER_AREA);
  return small;
}

/// A box found at `scale`, in source pixels.
cv::Rect to_source(const cv::Rect& r, double scale) {
  auto px = [scale](int v) { return static_cast<int>(std::lround(v / scale)); };
  return {px(r.x), px(r.y), px(r.width), px(r.height)};
}

bool smaller_than(const cv::Mat& img, const cv::Size& window) {
  return img.cols < window.width || img.rows < window.height;
}

/// OpenCV's default HOG people detector (people, and detect's "person").
class hog_people {
 public:
  hog_people() { hog_.setSVMDetector(cv::HOGDescriptor::getDefaultPeopleDetector()); }
  /// People in `img`'s pixels; none in an image smaller than the 64x128 window.
  std::vector<cv::Rect> find(const cv::Mat& img) {
    std::vector<cv::Rect> found;
    if (!smaller_than(img, hog_.winSize))
      hog_.detectMultiScale(img, found, 0, hog_win_stride, cv::Size(0, 0), hog_scale_step, hog_group_threshold);
    return found;
  }

 private:
  cv::HOGDescriptor hog_;
};

/// OpenCV's default HOG people detector on a frame scaled to at most max_width.
class people_analyzer final : public analyzer {
 public:
  explicit people_analyzer(const analyzer_settings& s) : max_width_(static_cast<int>(s.people_max_width)) {}
  std::string name() const override { return "people"; }
  nlohmann::json process(const cv::Mat& bgr, int64_t, double) override {
    double scale = 1.0;
    const auto found = hog_.find(at_most(bgr, max_width_, small_, scale));
    nlohmann::json boxes = nlohmann::json::array();
    for (const auto& r : found) {
      const auto b = to_source(r, scale);
      boxes.push_back({b.x, b.y, b.width, b.height});
    }
    return {{keys::count, found.size()}, {keys::boxes, boxes}};
  }

 private:
  int max_width_;
  hog_people hog_;
  cv::Mat small_;
};

/// One class's model in detect.
class detector {
 public:
  virtual ~detector() = default;
  /// Boxes in the pixels of `bgr` (and of `gray`, its equalised grey image).
  virtual std::vector<cv::Rect> find(const cv::Mat& bgr, const cv::Mat& gray) = 0;
};

class hog_detector final : public detector {
 public:
  std::vector<cv::Rect> find(const cv::Mat& bgr, const cv::Mat&) override { return hog_.find(bgr); }

 private:
  hog_people hog_;
};

/// A Haar or LBP cascade from a file; its training window is the smallest box it finds.
class cascade_detector final : public detector {
 public:
  /// Loads `path`; nullptr and `why` (naming the file) if it is missing or not a cascade.
  static std::unique_ptr<detector> load(const std::string& cls, const std::string& path, std::string& why) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      why = "detect: the model of class '" + cls + "' is missing: " + path + " (Debian package opencv-data)";
      return nullptr;
    }
    auto d = std::make_unique<cascade_detector>();
    try {
      if (!d->cascade_.load(path) || d->cascade_.empty())
        why = "detect: " + path + " (class '" + cls + "') is not a cascade OpenCV can load";
    } catch (const cv::Exception& e) {
      why = "detect: " + path + " (class '" + cls + "') is not a cascade OpenCV can load: " + e.what();
    }
    if (!why.empty())
      return nullptr;
    d->window_ = d->cascade_.getOriginalWindowSize();
    return d;
  }
  std::vector<cv::Rect> find(const cv::Mat&, const cv::Mat& gray) override {
    std::vector<cv::Rect> found;
    if (!smaller_than(gray, window_))
      cascade_.detectMultiScale(gray, found, cascade_scale_step, cascade_min_neighbours, 0, window_);
    return found;
  }

 private:
  cv::CascadeClassifier cascade_;
  cv::Size window_;
};

/// Per class of the selection: the count in the frame (0 included) and the
/// labelled boxes, on a frame scaled to at most max_width.
class detect_analyzer final : public analyzer {
 public:
  /// nullptr and `why` if a class is unknown or its model cannot be loaded.
  static std::unique_ptr<analyzer> make(const analyzer_settings& s, std::string& why) {
    const auto selection = select_detect_classes(s.detect_classes);
    if (!selection.error.empty()) {
      why = "detect: " + selection.error;
      return nullptr;
    }
    auto an = std::unique_ptr<detect_analyzer>(new detect_analyzer(s));
    for (const auto* c : selection.classes) {
      std::unique_ptr<detector> d;
      if (c->model == detect_model::hog_people)
        d = std::make_unique<hog_detector>();
      else
        d = cascade_detector::load(std::string(c->name), s.detect_model_dir + "/" + std::string(c->file), why);
      if (!d)
        return nullptr;
      an->needs_gray_ |= c->model != detect_model::hog_people;
      an->models_.push_back({std::string(c->name), std::move(d)});
    }
    return an;
  }
  std::string name() const override { return "detect"; }
  nlohmann::json process(const cv::Mat& bgr, int64_t, double) override {
    double scale = 1.0;
    const cv::Mat& img = at_most(bgr, max_width_, small_, scale);
    if (needs_gray_) {
      cv::cvtColor(img, gray_, cv::COLOR_BGR2GRAY);
      cv::equalizeHist(gray_, gray_);
    }
    nlohmann::json out = nlohmann::json::object();
    nlohmann::json boxes = nlohmann::json::array();
    for (auto& m : models_) {
      const auto found = m.model->find(img, gray_);
      out[m.name] = found.size();
      for (const auto& r : found) {
        const auto b = to_source(r, scale);
        boxes.push_back({{keys::box_class, m.name},
                         {keys::box_x, b.x},
                         {keys::box_y, b.y},
                         {keys::box_w, b.width},
                         {keys::box_h, b.height}});
      }
    }
    out[keys::boxes] = std::move(boxes);
    return out;
  }

 private:
  struct model {
    std::string name;
    std::unique_ptr<detector> model;
  };

  explicit detect_analyzer(const analyzer_settings& s) : max_width_(static_cast<int>(s.detect_max_width)) {}

  int max_width_;
  bool needs_gray_ = false;
  std::vector<model> models_;
  cv::Mat small_, gray_;
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

/// An analyzer, or nullptr and `why` if it cannot run with these settings on this node.
using factory = std::unique_ptr<analyzer> (*)(const analyzer_settings&, std::string& why);

template <class T>
std::unique_ptr<analyzer> make(const analyzer_settings& settings, std::string&) {
  return std::make_unique<T>(settings);
}

struct factory_entry {
  std::string_view kind;
  factory make;
};

const factory_entry factories[] = {
    {"stats", make<stats_analyzer>},   {"people", make<people_analyzer>},
    {"motion", make<motion_analyzer>}, {"thumbnails", make<thumbnails_analyzer>},
    {"touch", make<touch_analyzer>},   {"detect", detect_analyzer::make},
};

}  // namespace

std::unique_ptr<analyzer> make_analyzer(const std::string& name, const analyzer_settings& settings,
                                        std::string* why) {
  std::string error = "unknown analyzer '" + name + "'";
  if (const auto* entry = find_analyzer(name)) {
    for (const auto& f : factories) {
      if (f.kind != entry->kind)
        continue;
      error.clear();
      try {
        if (auto an = f.make(settings, error))
          return an;
      } catch (const cv::Exception& e) {  // OpenCV's exceptions stop at this boundary
        error = name + ": " + e.what();
      }
      break;
    }
  }
  if (why)
    *why = error;
  return nullptr;
}

}  // namespace framehive::analysis
