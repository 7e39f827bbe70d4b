// detect with a DNN model (issue 13 item 5), in process: models the tests
// write themselves (tiny_models.hpp) load through OpenCV's dnn module, and
// their outputs on synthetic frames are known in advance, so these prove the
// loading, the input geometry (size, scale, channel order) and both output
// layouts (YOLO rows from Darknet, SSD rows from ONNX), and that a missing,
// corrupt or mismatched model is refused with the file named.

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "analysis/analyzer.hpp"
#include "analysis/result_keys.hpp"
#include "tests/analysis/tiny_models.hpp"

namespace framehive::analysis {
namespace {

namespace fs = std::filesystem;
using framehive::testing::tiny_model_files;

class DetectDnn : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "dnn_test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  /// Settings that run `m` at `size` x `size`, RGB, 1/255, threshold 0.5.
  static analyzer_settings settings_for(const tiny_model_files& m, uint32_t size) {
    analyzer_settings s;
    s.detect_dnn.network = m.network;
    s.detect_dnn.weights = m.weights;
    s.detect_dnn.names = m.names;
    s.detect_dnn.width = s.detect_dnn.height = size;
    return s;
  }

  static std::unique_ptr<analyzer> make(const analyzer_settings& s, std::string* why = nullptr) {
    return make_analyzer("detect", s, why);
  }

  /// Why `s` cannot make a detect analyzer (fails the test if it can).
  static std::string refusal(const analyzer_settings& s) {
    std::string why;
    std::unique_ptr<analyzer> an;
    EXPECT_NO_THROW(an = make(s, &why));
    EXPECT_EQ(an, nullptr) << "made an analyzer";
    return why;
  }

  /// A black frame with a filled rectangle of `bgr` colour.
  static cv::Mat frame_with(cv::Size size, cv::Rect r, cv::Scalar bgr) {
    cv::Mat m(size, CV_8UC3, cv::Scalar::all(0));
    cv::rectangle(m, r, bgr, cv::FILLED);
    return m;
  }

  static std::vector<cv::Rect> boxes_of(const nlohmann::json& r, const std::string& cls) {
    std::vector<cv::Rect> out;
    for (const auto& b : r[keys::boxes])
      if (b[keys::box_class] == cls)
        out.emplace_back(b[keys::box_x].get<int>(), b[keys::box_y].get<int>(), b[keys::box_w].get<int>(),
                         b[keys::box_h].get<int>());
    return out;
  }

  fs::path dir_;
};

const cv::Scalar red(0, 0, 255);   // BGR
const cv::Scalar blue(255, 0, 0);  // BGR

TEST_F(DetectDnn, ADarknetModelFindsTheRedSquareAsOneBoxCoveringItsQuadrant) {
  const auto m = framehive::testing::write_darknet_model(dir_, 32);
  std::string why;
  auto an = make(settings_for(m, 64), &why);
  ASSERT_NE(an, nullptr) << why;
  // 256x192 frame stretched to 64x64: a 2x2 grid, each cell a 128x96 quadrant.
  const auto r = an->process(frame_with({256, 192}, {0, 96, 128, 96}, red), 0, 0.0);
  EXPECT_EQ(r["red_thing"], 1) << r.dump();
  EXPECT_EQ(r["blue_thing"], 0) << r.dump();
  ASSERT_EQ(boxes_of(r, "red_thing").size(), 1u) << r.dump();
  EXPECT_EQ(boxes_of(r, "red_thing")[0], cv::Rect(0, 96, 128, 96));  // the bottom-left quadrant, in source pixels
  EXPECT_EQ(r.size(), 3u) << r.dump();                               // two counts and "boxes"
}

TEST_F(DetectDnn, TheInputSizeDecidesTheGridTheModelSees) {
  const auto m = framehive::testing::write_darknet_model(dir_, 32);
  const auto frame = frame_with({256, 256}, {0, 0, 128, 128}, red);
  // At 64x64 the red square is one cell of four; at 128x128 it is four cells
  // of sixteen, each box a 32x32 anchor on a 128 input: 64x64 source pixels.
  auto small = make(settings_for(m, 64))->process(frame, 0, 0.0);
  auto large = make(settings_for(m, 128))->process(frame, 0, 0.0);
  EXPECT_EQ(boxes_of(small, "red_thing"), (std::vector<cv::Rect>{{0, 0, 128, 128}})) << small.dump();
  auto boxes = boxes_of(large, "red_thing");
  std::sort(boxes.begin(), boxes.end(), [](auto& a, auto& b) { return std::tie(a.y, a.x) < std::tie(b.y, b.x); });
  EXPECT_EQ(boxes, (std::vector<cv::Rect>{{0, 0, 64, 64}, {64, 0, 64, 64}, {0, 64, 64, 64}, {64, 64, 64, 64}}))
      << large.dump();
  EXPECT_EQ(large["red_thing"], 4);
}

TEST_F(DetectDnn, ScaleAndChannelOrderReachTheNetwork) {
  const auto m = framehive::testing::write_darknet_model(dir_, 32);
  const auto frame = frame_with({64, 64}, {0, 0, 32, 32}, red);
  auto s = settings_for(m, 64);
  auto rgb = make(s)->process(frame, 0, 0.0);
  EXPECT_EQ(rgb["red_thing"], 1) << rgb.dump();
  // BGR as it is: the network's first channel is now blue, so red reads as blue.
  s.detect_dnn.swap_rb = false;
  auto bgr = make(s)->process(frame, 0, 0.0);
  EXPECT_EQ(bgr["red_thing"], 0) << bgr.dump();
  EXPECT_EQ(bgr["blue_thing"], 1) << bgr.dump();
  // Half the scale: objectness logit 0, confidence 0.5 x 0.95 < 0.5.
  s.detect_dnn.swap_rb = true;
  s.detect_dnn.scale = 0.5 / 255.0;
  auto dim = make(s)->process(frame, 0, 0.0);
  EXPECT_EQ(dim["red_thing"], 0) << dim.dump();
  // ... which a lower threshold keeps.
  s.detect_dnn.threshold = 0.4;
  EXPECT_EQ(make(s)->process(frame, 0, 0.0)["red_thing"], 1);
  // A mean subtracted before scaling works the same way: 127.5 off channel 0 halves red.
  s = settings_for(m, 64);
  s.detect_dnn.mean = {127.5, 0, 0};
  EXPECT_EQ(make(s)->process(frame, 0, 0.0)["red_thing"], 0);
}

TEST_F(DetectDnn, OnlyTheChosenClassesAreCounted) {
  const auto m = framehive::testing::write_darknet_model(dir_, 32);
  auto s = settings_for(m, 64);
  s.detect_classes = {"blue_thing"};
  auto an = make(s);
  ASSERT_NE(an, nullptr);
  const auto r = an->process(frame_with({64, 64}, {0, 0, 32, 32}, red), 0, 0.0);
  EXPECT_EQ(r, (nlohmann::json{{"blue_thing", 0}, {"boxes", nlohmann::json::array()}}));
  s.detect_classes = {"red_thing", "unicorn"};
  const auto why = refusal(s);
  EXPECT_NE(why.find("'unicorn'"), std::string::npos) << why;
  EXPECT_NE(why.find(m.names), std::string::npos) << why;
}

TEST_F(DetectDnn, FramesSmallerThanTheInputCountZeroNotAnError) {
  const auto m = framehive::testing::write_darknet_model(dir_, 32);
  auto an = make(settings_for(m, 64));
  ASSERT_NE(an, nullptr);
  for (const auto& size : {cv::Size(63, 64), cv::Size(64, 63), cv::Size(16, 16), cv::Size(1, 1)}) {
    nlohmann::json r;
    ASSERT_NO_THROW(r = an->process(frame_with(size, {0, 0, size.width, size.height}, red), 0, 0.0)) << size;
    EXPECT_EQ(r["red_thing"], 0) << size;
    EXPECT_EQ(r["blue_thing"], 0) << size;
    EXPECT_EQ(r[keys::boxes], nlohmann::json::array()) << size;
  }
}

TEST_F(DetectDnn, AnOnnxModelWithSsdRowsGivesItsBoxesInSourcePixels) {
  const auto m = framehive::testing::write_onnx_ssd_model(dir_, 32);
  std::string why;
  auto an = make(settings_for(m, 32), &why);
  ASSERT_NE(an, nullptr) << why;
  // All red: detection 0 (red_thing, confidence 1) at (0.25, 0.25)-(0.75, 0.5).
  const auto r = an->process(frame_with({200, 100}, {0, 0, 200, 100}, red), 0, 0.0);
  EXPECT_EQ(r["red_thing"], 1) << r.dump();
  EXPECT_EQ(r["blue_thing"], 0) << r.dump();
  EXPECT_EQ(boxes_of(r, "red_thing"), (std::vector<cv::Rect>{{50, 25, 100, 25}})) << r.dump();
  // Blue over 3/4 of the frame: detection 1 at confidence 0.75, (0, 0.5)-(0.5, 1).
  const auto b = an->process(frame_with({200, 100}, {0, 0, 150, 100}, blue), 0, 0.0);
  EXPECT_EQ(b["red_thing"], 0) << b.dump();
  EXPECT_EQ(boxes_of(b, "blue_thing"), (std::vector<cv::Rect>{{0, 50, 100, 50}})) << b.dump();
}

TEST_F(DetectDnn, SummariesCountAModelsClassesLikeTheBuiltInOnes) {
  const auto m = framehive::testing::write_darknet_model(dir_, 32);
  auto an = make(settings_for(m, 64));
  ASSERT_NE(an, nullptr);
  std::vector<stored_frame> frames;
  for (int i = 0; i < 6; ++i) {
    // Red in frames 0..3 (twice in frame 0), blue in frame 5.
    cv::Mat f(64, 64, CV_8UC3, cv::Scalar::all(0));
    if (i < 4)
      cv::rectangle(f, cv::Rect(0, 0, 32, 32), red, cv::FILLED);
    if (i == 0)
      cv::rectangle(f, cv::Rect(32, 32, 32, 32), red, cv::FILLED);
    if (i == 5)
      cv::rectangle(f, cv::Rect(32, 0, 32, 32), blue, cv::FILLED);
    auto r = an->process(f, i, 0.0);
    r[keys::ms] = 1.0;
    r[keys::t] = i * 0.1;
    frames.push_back({i, r});
  }
  const auto s = summarize("detect", frames);
  auto number = [&](const std::string& name) {
    for (const auto& n : s.numbers)
      if (n.name == name)
        return n.value;
    return -1.0;
  };
  EXPECT_EQ(number("total_red_thing"), 5);
  EXPECT_EQ(number("frames_with_red_thing"), 4);
  EXPECT_EQ(number("total_blue_thing"), 1);
  EXPECT_EQ(number("frames_with_blue_thing"), 1);
  EXPECT_EQ(s.top_classes, (std::vector<std::string>{"red_thing", "blue_thing"}));
  EXPECT_EQ(number("total_ms"), -1);  // the timing is not a class
}

// -- what fails, and how it is named -------------------------------------------------------

TEST_F(DetectDnn, AMissingFileIsNamed) {
  const auto m = framehive::testing::write_darknet_model(dir_, 32);
  for (const std::string* file : {&m.network, &m.weights, &m.names}) {
    auto s = settings_for(m, 64);
    const std::string gone = dir_ / "gone" / fs::path(*file).filename();
    (file == &m.network ? s.detect_dnn.network : file == &m.weights ? s.detect_dnn.weights : s.detect_dnn.names) =
        gone;
    const auto why = refusal(s);
    EXPECT_NE(why.find(gone), std::string::npos) << why;
    EXPECT_NE(why.find("missing"), std::string::npos) << why;
  }
  auto s = settings_for(m, 64);
  s.detect_dnn.weights.clear();
  const auto why = refusal(s);
  EXPECT_NE(why.find(m.network), std::string::npos) << why;
  EXPECT_NE(why.find(".weights"), std::string::npos) << why;
}

TEST_F(DetectDnn, ACorruptModelIsNamedNotThrown) {
  const auto m = framehive::testing::write_darknet_model(dir_, 32);
  // A cfg that is not one.
  framehive::testing::write_text(m.network, "[convolutional]\nfilters=banana\n[nonsense]\n");
  auto why = refusal(settings_for(m, 64));
  EXPECT_NE(why.find(m.network), std::string::npos) << why;
  // An ONNX file of random bytes.
  const auto onnx = framehive::testing::write_onnx_ssd_model(dir_ / "onnx", 32);
  framehive::testing::write_text(onnx.network, std::string(300, '\x9c') + "not protobuf");
  why = refusal(settings_for(onnx, 32));
  EXPECT_NE(why.find(onnx.network), std::string::npos) << why;
  EXPECT_NE(why.find("cannot load"), std::string::npos) << why;
}

TEST_F(DetectDnn, WeightsThatDoNotFitTheCfgAreRefusedNamingBothFiles) {
  const auto m = framehive::testing::write_darknet_model(dir_, 32);
  const auto size = fs::file_size(m.weights);
  for (const auto new_size : {size - 4, size + 4, uintmax_t{10}}) {
    fs::resize_file(m.weights, new_size);
    const auto why = refusal(settings_for(m, 64));
    EXPECT_NE(why.find(m.weights), std::string::npos) << new_size << ": " << why;
    EXPECT_NE(why.find(m.network), std::string::npos) << new_size << ": " << why;
  }
  // The weights of another cfg: three classes' worth of filters for a two-class cfg.
  const auto other = framehive::testing::write_darknet_model(dir_ / "other", 32);
  std::ifstream in(other.weights, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  framehive::testing::write_text(m.weights, bytes + std::string(4 * 4, '\0'));  // one more filter: bias + 3 weights
  const auto why = refusal(settings_for(m, 64));
  EXPECT_NE(why.find("does not fit"), std::string::npos) << why;
}

TEST_F(DetectDnn, ANamesFileThatDoesNotMatchTheOutputsIsRefusedNamingIt) {
  const auto m = framehive::testing::write_darknet_model(dir_, 32);
  framehive::testing::write_names(m.names, {"red_thing"});
  auto why = refusal(settings_for(m, 64));
  EXPECT_NE(why.find(m.names), std::string::npos) << why;
  EXPECT_NE(why.find("names 1 classes"), std::string::npos) << why;
  EXPECT_NE(why.find("outputs 2"), std::string::npos) << why;
  framehive::testing::write_text(m.names, "\n  \n");
  why = refusal(settings_for(m, 64));
  EXPECT_NE(why.find(m.names), std::string::npos) << why;
  framehive::testing::write_names(m.names, {"red_thing", "boxes"});  // a key every result uses
  why = refusal(settings_for(m, 64));
  EXPECT_NE(why.find("'boxes'"), std::string::npos) << why;
}

TEST_F(DetectDnn, AnInputSizeTheModelRejectsIsRefusedNamingIt) {
  // The ONNX model's kernel covers exactly 32x32: a 24x24 input cannot run.
  const auto m = framehive::testing::write_onnx_ssd_model(dir_, 32);
  const auto why = refusal(settings_for(m, 24));
  EXPECT_NE(why.find(m.network), std::string::npos) << why;
  EXPECT_NE(why.find("24x24"), std::string::npos) << why;
}

}  // namespace
}  // namespace framehive::analysis
