#include "bench/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace framehive::bench {

namespace {

// BGR: framehive orange-red, naive green, messages blue, decode grey.
const cv::Scalar colors[] = {{20, 90, 230}, {60, 160, 60}, {200, 120, 30}, {110, 110, 110}, {170, 60, 170}};

void text(cv::Mat& img, const std::string& s, cv::Point at, double scale = 0.5, int thick = 1,
          cv::Scalar color = {30, 30, 30}) {
  cv::putText(img, s, at, cv::FONT_HERSHEY_SIMPLEX, scale, color, thick, cv::LINE_AA);
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, v >= 100 ? "%.0f" : "%.1f", v);
  return buf;
}

void draw_panel(cv::Mat& img, cv::Rect area, const panel& p) {
  const int left = area.x + 70, right = area.x + area.width - 20, top = area.y + 64,
            bottom = area.y + area.height - 140;
  text(img, p.title, {area.x + 20, area.y + 26}, 0.6, 2);
  int max_n = 1;
  double max_v = 1;
  for (const auto& s : p.lines)
    for (const auto& [n, v] : s.points) {
      max_n = std::max(max_n, n);
      max_v = std::max(max_v, v);
    }
  // A round top for the y axis.
  const double mag = std::pow(10.0, std::floor(std::log10(max_v)));
  double top_v = std::ceil(max_v * 1.1 / (mag / 2)) * (mag / 2);
  const int steps = 5;
  for (int i = 0; i <= steps; ++i) {
    const double v = top_v * i / steps;
    const int y = bottom - static_cast<int>((bottom - top) * v / top_v);
    cv::line(img, {left, y}, {right, y}, {225, 225, 225}, 1);
    text(img, fmt(v), {area.x + 15, y + 5}, 0.45);
  }
  const double max_log = std::max(1.0, std::log2(static_cast<double>(max_n)));
  auto x_of = [&](int n) {
    return left + static_cast<int>((right - left) * std::log2(static_cast<double>(n)) / max_log);
  };
  auto y_of = [&](double v) { return bottom - static_cast<int>((bottom - top) * v / top_v); };
  for (int n = 1; n <= max_n; n *= 2) {
    cv::line(img, {x_of(n), top}, {x_of(n), bottom}, {235, 235, 235}, 1);
    text(img, std::to_string(n), {x_of(n) - 5, bottom + 20}, 0.5);
  }
  cv::line(img, {left, bottom}, {right, bottom}, {60, 60, 60}, 1);
  cv::line(img, {left, top}, {left, bottom}, {60, 60, 60}, 1);
  text(img, "N analyses of the same video", {(left + right) / 2 - 110, bottom + 42}, 0.5);
  text(img, p.y_label, {area.x + 15, top - 12}, 0.45);
  for (std::size_t i = 0; i < p.lines.size(); ++i) {
    const auto& s = p.lines[i];
    const auto color = colors[i % (sizeof colors / sizeof colors[0])];
    for (std::size_t k = 0; k < s.points.size(); ++k) {
      cv::Point pt{x_of(s.points[k].first), y_of(s.points[k].second)};
      cv::circle(img, pt, 4, color, cv::FILLED, cv::LINE_AA);
      if (k > 0)
        cv::line(img, {x_of(s.points[k - 1].first), y_of(s.points[k - 1].second)}, pt, color, 2, cv::LINE_AA);
    }
    const int ly = bottom + 65 + static_cast<int>(i) * 18;
    cv::line(img, {left, ly - 5}, {left + 30, ly - 5}, color, 3, cv::LINE_AA);
    text(img, s.label, {left + 40, ly}, 0.45);
  }
}

}  // namespace

bool write_line_chart(const std::string& png_path, const std::vector<panel>& panels) {
  const int w = 560, h = 480;
  cv::Mat img(h, w * static_cast<int>(std::max<std::size_t>(1, panels.size())), CV_8UC3, cv::Scalar(255, 255, 255));
  for (std::size_t i = 0; i < panels.size(); ++i)
    draw_panel(img, {static_cast<int>(i) * w, 0, w, h}, panels[i]);
  return cv::imwrite(png_path, img);
}

}  // namespace framehive::bench
