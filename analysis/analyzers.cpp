#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>
#include <opencv2/video/background_segm.hpp>

#include "analysis/analyzer.hpp"
#include "analysis/clips.hpp"
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

// -- detect with a DNN model the job shipped ---------------------------------------------
// Output layouts read (each output blob of the network's unconnected layers):
//  * YOLO rows: a [N, 5 + C] matrix (or [1, N, 5 + C]), a row per candidate:
//    cx, cy, w, h, objectness, then C class scores. Darknet's [region] and
//    [yolo] layers write the box as fractions of the input and scores that
//    already include the objectness; other formats (ONNX exports of YOLOv5,
//    ...) write input pixels and raw scores, so a class's confidence there is
//    objectness x score. C must equal the names file's classes.
//  * SSD: [1, 1, N, 7], a row per detection: image id, class id, confidence,
//    x1, y1, x2, y2 as fractions of the input. The class id indexes the names
//    file (line 0 first: a Caffe SSD's background class 0 needs its line).
// The frame is stretched to the input size (no letterbox), so a fraction of
// the input is the same fraction of the frame.

/// Values of one YOLO row before its class scores.
constexpr int yolo_box_values = 5;
/// Values of one SSD row.
constexpr int ssd_row_values = 7;

std::string trimmed(std::string s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos)
    return {};
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

bool is_darknet_cfg(const std::string& path) {
  auto ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".cfg";
}

/// The first line of an OpenCV error: its file, line and function are noise for a user.
std::string cv_reason(const cv::Exception& e) {
  std::string msg = e.err.empty() ? std::string(e.what()) : e.err;
  return trimmed(msg.substr(0, msg.find('\n')));
}

std::string shape_text(const cv::Mat& m) {
  std::string out = "[";
  for (int i = 0; i < m.dims; ++i)
    out += (i ? ", " : "") + std::to_string(m.size[i]);
  return out + "]";
}

class dnn_detector {
 public:
  /// Loads the model and runs it once on a blank input, so every problem
  /// shows here, naming the file: missing, not a model, weights that do not
  /// fit a Darknet cfg, an input size it rejects, outputs that are neither
  /// layout, a names file that does not match its classes, a chosen class it
  /// lacks. nullptr and `why` then.
  static std::unique_ptr<dnn_detector> load(const dnn_model& m, const std::vector<std::string>& chosen,
                                            std::string& why) {
    auto d = std::unique_ptr<dnn_detector>(new dnn_detector(m));
    why = d->open(chosen);
    return why.empty() ? std::move(d) : nullptr;
  }

  /// Counts (0 included) of the selected classes into `out`, their boxes (in
  /// `bgr`'s pixels) into `boxes`. A frame smaller than the input finds nothing.
  void find(const cv::Mat& bgr, nlohmann::json& out, nlohmann::json& boxes) {
    std::vector<std::vector<cv::Rect>> found(names_.size());
    if (bgr.cols >= input_.width && bgr.rows >= input_.height)
      found = detect(bgr);
    for (std::size_t c : selected_) {
      out[names_[c]] = found[c].size();
      for (const auto& r : found[c])
        boxes.push_back({{keys::box_class, names_[c]},
                         {keys::box_x, r.x},
                         {keys::box_y, r.y},
                         {keys::box_w, r.width},
                         {keys::box_h, r.height}});
    }
  }

 private:
  enum class layout { yolo, ssd };

  explicit dnn_detector(const dnn_model& m)
      : model_(m), input_(static_cast<int>(m.width), static_cast<int>(m.height)) {
    if (m.mean.size() == 1)
      mean_ = cv::Scalar::all(m.mean[0]);
    else
      for (std::size_t i = 0; i < m.mean.size() && i < 3; ++i)
        mean_[static_cast<int>(i)] = m.mean[i];
  }

  /// The error, or empty.
  std::string open(const std::vector<std::string>& chosen) {
    const bool darknet = is_darknet_cfg(model_.network);
    yolo_fractions_ = darknet;
    if (auto err = check_file("model", model_.network); !err.empty())
      return err;
    if (darknet && model_.weights.empty())
      return "detect: the Darknet model " + model_.network + " needs its .weights file";
    if (!model_.weights.empty())
      if (auto err = check_file("weights", model_.weights); !err.empty())
        return err;
    if (auto err = check_file("class names", model_.names); !err.empty())
      return err;
    if (auto err = read_names(); !err.empty())
      return err;
    const std::string files = model_.network + (model_.weights.empty() ? "" : " with " + model_.weights);
    try {
      net_ = cv::dnn::readNet(model_.network, model_.weights);
    } catch (const cv::Exception& e) {
      return "detect: cannot load the model " + files + ": " + cv_reason(e);
    }
    if (net_.empty())
      return "detect: cannot load the model " + files + ": OpenCV read no layers";
    if (darknet)
      if (auto err = check_darknet_weights(); !err.empty())
        return err;
    out_names_ = net_.getUnconnectedOutLayersNames();
    std::vector<cv::Mat> outs;
    try {
      forward(cv::Mat::zeros(input_, CV_8UC3), outs);
    } catch (const cv::Exception& e) {
      return "detect: the model " + files + " rejects a " + std::to_string(input_.width) + "x" +
             std::to_string(input_.height) + " input: " + cv_reason(e);
    }
    if (auto err = read_layouts(outs); !err.empty())
      return err;
    return select(chosen);
  }

  std::string check_file(const std::string& what, const std::string& path) const {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
      return "detect: the " + what + " file " + path + " is missing";
    if (std::filesystem::file_size(path, ec) == 0)
      return "detect: the " + what + " file " + path + " is empty";
    return {};
  }

  std::string read_names() {
    std::ifstream in(model_.names);
    if (!in)
      return "detect: cannot read the class names file " + model_.names;
    for (std::string line; std::getline(in, line);) {
      line = trimmed(line);
      if (line.empty())
        continue;
      if (is_result_key(line))
        return "detect: the class names file " + model_.names + " names a class '" + line +
               "', a key every frame's result uses; rename it";
      if (std::find(names_.begin(), names_.end(), line) != names_.end())
        return "detect: the class names file " + model_.names + " names '" + line + "' twice";
      names_.push_back(line);
    }
    if (names_.empty())
      return "detect: the class names file " + model_.names + " names no class";
    return {};
  }

  /// OpenCV reads a Darknet weights file without checking its length, so a
  /// file that does not fit the cfg would load garbage: its size must be the
  /// header plus exactly the floats the cfg's layers hold.
  std::string check_darknet_weights() const {
    std::ifstream in(model_.weights, std::ios::binary);
    int32_t version[3] = {0, 0, 0};
    in.read(reinterpret_cast<char*>(version), sizeof(version));
    if (!in)
      return "detect: the weights file " + model_.weights + " does not fit " + model_.network +
             ": it is too short for a Darknet header";
    const uint64_t header = sizeof(version) + ((version[0] * 10 + version[1]) >= 2 ? 8 : 4);
    uint64_t floats = 0;
    for (const auto& name : net_.getLayerNames()) {
      const auto layer = net_.getLayer(name);
      if (layer->type == "Region")
        continue;  // its blob is the cfg's anchors, not weights
      for (const auto& b : layer->blobs)
        floats += b.total();
    }
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(model_.weights, ec);
    const uint64_t want = header + floats * sizeof(float);
    if (size != want)
      return "detect: the weights file " + model_.weights + " does not fit " + model_.network + ": it holds " +
             std::to_string(size) + " bytes, the cfg's layers need " + std::to_string(want);
    return {};
  }

  std::string read_layouts(const std::vector<cv::Mat>& outs) {
    for (std::size_t i = 0; i < outs.size(); ++i) {
      const auto& o = outs[i];
      const std::string name = i < out_names_.size() ? out_names_[i] : std::to_string(i);
      if (o.dims == 4 && o.size[0] == 1 && o.size[1] == 1 && o.size[3] == ssd_row_values) {
        layouts_.push_back(layout::ssd);
        continue;
      }
      const int cols = o.dims == 2 ? o.size[1] : (o.dims == 3 && o.size[0] == 1 ? o.size[2] : 0);
      if (cols <= yolo_box_values)
        return "detect: the output '" + name + "' of " + model_.network + " has the shape " + shape_text(o) +
               ": neither YOLO rows [cx, cy, w, h, objectness, class scores...] nor SSD [1, 1, N, 7]";
      const auto classes = static_cast<std::size_t>(cols - yolo_box_values);
      if (classes != names_.size())
        return "detect: the class names file " + model_.names + " names " + std::to_string(names_.size()) +
               " classes, but the model " + model_.network + " outputs " + std::to_string(classes);
      layouts_.push_back(layout::yolo);
    }
    if (layouts_.empty())
      return "detect: the model " + model_.network + " has no output";
    return {};
  }

  std::string select(const std::vector<std::string>& chosen) {
    for (const auto& c : chosen) {
      auto it = std::find(names_.begin(), names_.end(), c);
      if (it == names_.end())
        return "detect: class '" + c + "' is not in the class names file " + model_.names;
      selected_.push_back(static_cast<std::size_t>(it - names_.begin()));
    }
    std::sort(selected_.begin(), selected_.end());
    selected_.erase(std::unique(selected_.begin(), selected_.end()), selected_.end());
    if (chosen.empty())
      for (std::size_t i = 0; i < names_.size(); ++i)
        selected_.push_back(i);
    return {};
  }

  void forward(const cv::Mat& bgr, std::vector<cv::Mat>& outs) {
    cv::dnn::blobFromImage(bgr, blob_, model_.scale, input_, mean_, model_.swap_rb, /*crop=*/false, CV_32F);
    net_.setInput(blob_);
    net_.forward(outs, out_names_);
  }

  /// Boxes per class (in `bgr`'s pixels) after per-class non-maximum suppression.
  std::vector<std::vector<cv::Rect>> detect(const cv::Mat& bgr) {
    forward(bgr, outs_);
    std::vector<std::vector<cv::Rect>> boxes(names_.size());
    std::vector<std::vector<float>> scores(names_.size());
    for (std::size_t i = 0; i < outs_.size() && i < layouts_.size(); ++i) {
      if (layouts_[i] == layout::ssd)
        read_ssd(outs_[i], bgr.size(), boxes, scores);
      else
        read_yolo(outs_[i], bgr.size(), boxes, scores);
    }
    std::vector<std::vector<cv::Rect>> kept(names_.size());
    for (std::size_t c = 0; c < names_.size(); ++c) {
      std::vector<int> keep;
      cv::dnn::NMSBoxes(boxes[c], scores[c], static_cast<float>(model_.threshold), static_cast<float>(model_.nms),
                        keep);
      std::sort(keep.begin(), keep.end());  // stable order: as the model listed them
      for (int k : keep)
        kept[c].push_back(boxes[c][static_cast<std::size_t>(k)]);
    }
    return kept;
  }

  /// A box given as fractions of the input, in `frame`'s pixels.
  static cv::Rect to_frame(double x1, double y1, double x2, double y2, const cv::Size& frame) {
    auto px = [](double v, int size) { return static_cast<int>(std::lround(std::clamp(v, 0.0, 1.0) * size)); };
    const int left = px(x1, frame.width), top = px(y1, frame.height);
    return {left, top, px(x2, frame.width) - left, px(y2, frame.height) - top};
  }

  void read_yolo(const cv::Mat& out, const cv::Size& frame, std::vector<std::vector<cv::Rect>>& boxes,
                 std::vector<std::vector<float>>& scores) const {
    const int rows = out.dims == 2 ? out.size[0] : out.size[1];
    const int cols = out.dims == 2 ? out.size[1] : out.size[2];
    const cv::Mat m(rows, cols, CV_32F, const_cast<float*>(out.ptr<float>()));
    const double sx = yolo_fractions_ ? 1.0 : 1.0 / input_.width;
    const double sy = yolo_fractions_ ? 1.0 : 1.0 / input_.height;
    for (int r = 0; r < rows; ++r) {
      const float* row = m.ptr<float>(r);
      const float* cls = row + yolo_box_values;
      const auto best = static_cast<std::size_t>(std::max_element(cls, cls + (cols - yolo_box_values)) - cls);
      const double confidence = yolo_fractions_ ? cls[best] : row[4] * cls[best];
      if (confidence < model_.threshold)
        continue;
      const double cx = row[0] * sx, cy = row[1] * sy, w = row[2] * sx, h = row[3] * sy;
      boxes[best].push_back(to_frame(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, frame));
      scores[best].push_back(static_cast<float>(confidence));
    }
  }

  void read_ssd(const cv::Mat& out, const cv::Size& frame, std::vector<std::vector<cv::Rect>>& boxes,
                std::vector<std::vector<float>>& scores) const {
    const cv::Mat m(out.size[2], ssd_row_values, CV_32F, const_cast<float*>(out.ptr<float>()));
    for (int r = 0; r < m.rows; ++r) {
      const float* row = m.ptr<float>(r);
      if (row[2] < model_.threshold)
        continue;
      const double id = row[1];
      if (!(id >= 0 && id < static_cast<double>(names_.size())) || id != std::floor(id))
        throw std::runtime_error("detect: the model " + model_.network + " gave class id " + std::to_string(id) +
                                 ", beyond the " + std::to_string(names_.size()) + " classes of " + model_.names);
      const auto c = static_cast<std::size_t>(id);
      boxes[c].push_back(to_frame(row[3], row[4], row[5], row[6], frame));
      scores[c].push_back(row[2]);
    }
  }

  dnn_model model_;
  cv::Size input_;
  cv::Scalar mean_{0, 0, 0, 0};
  bool yolo_fractions_ = false;  ///< Darknet: YOLO rows in fractions of the input, confidences final
  cv::dnn::Net net_;
  std::vector<std::string> out_names_;
  std::vector<layout> layouts_;       ///< per output
  std::vector<std::string> names_;    ///< the names file's classes, in order
  std::vector<std::size_t> selected_;  ///< indexes into names_, ascending
  cv::Mat blob_;
  std::vector<cv::Mat> outs_;
};

/// Per class of the selection: the count in the frame (0 included) and the
/// labelled boxes, on a frame scaled to at most max_width; with a DNN model
/// (settings.detect_dnn) the model's classes instead, on the whole frame.
class detect_analyzer final : public analyzer {
 public:
  /// nullptr and `why` if a class is unknown or its model cannot be loaded.
  static std::unique_ptr<analyzer> make(const analyzer_settings& s, std::string& why) {
    if (!s.detect_dnn.empty()) {
      auto an = std::unique_ptr<detect_analyzer>(new detect_analyzer(s));
      an->dnn_ = dnn_detector::load(s.detect_dnn, s.detect_classes, why);
      return an->dnn_ ? std::move(an) : nullptr;
    }
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
    nlohmann::json out = nlohmann::json::object();
    nlohmann::json boxes = nlohmann::json::array();
    if (dnn_) {
      dnn_->find(bgr, out, boxes);
      out[keys::boxes] = std::move(boxes);
      return out;
    }
    double scale = 1.0;
    const cv::Mat& img = at_most(bgr, max_width_, small_, scale);
    if (needs_gray_) {
      cv::cvtColor(img, gray_, cv::COLOR_BGR2GRAY);
      cv::equalizeHist(gray_, gray_);
    }
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
  std::unique_ptr<dnn_detector> dnn_;
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
    {"clips", make_clips_analyzer},
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
