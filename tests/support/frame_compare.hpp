#pragma once

// Comparing frames with what an independent decoder (the ffmpeg CLI) makes of
// a file: PSNR over packed pixels, and a video's frames as BGR24.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/media_tools.hpp"

namespace framehive::testing {

/// Peak signal-to-noise ratio in dB of two buffers of `bytes` 8-bit samples;
/// 99 when they are identical (the usual cap: the ratio is infinite).
inline double psnr(const uint8_t* a, const uint8_t* b, std::size_t bytes) {
  if (bytes == 0)
    return 99;
  double sum = 0;
  for (std::size_t i = 0; i < bytes; ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    sum += d * d;
  }
  if (sum == 0)
    return 99;
  const double mse = sum / static_cast<double>(bytes);
  return std::min(99.0, 10.0 * std::log10(255.0 * 255.0 / mse));
}

inline double psnr(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  return a.size() == b.size() ? psnr(a.data(), b.data(), a.size()) : 0.0;
}

/// Every frame of the video stream ffmpeg picks in `path`, decoded by the CLI
/// to packed BGR24 rows of width * 3 bytes (no padding), in presentation
/// order. With count >= 0, only frames first .. first + count - 1 (0-based, in
/// presentation order). Frames pass through as decoded (-fps_mode passthrough):
/// the CLI's default for raw output would duplicate or drop frames to a
/// constant rate and hide exactly the errors a test looks for. A trailing
/// partial frame (wrong width/height given) is dropped.
inline std::vector<std::vector<uint8_t>> decode_bgr_frames(const std::string& path, int width, int height,
                                                           int64_t first = 0, int64_t count = -1) {
  std::string filter;
  if (first > 0 || count >= 0) {
    const std::string last = count >= 0 ? std::to_string(first + count - 1) : "1e18";
    filter = " -vf \"select=between(n\\," + std::to_string(first) + "\\," + last + ")\"";
  }
  const command_result r = run_command("ffmpeg -v error -nostdin -i '" + path + "'" + filter +
                                       " -fps_mode passthrough -f rawvideo -pix_fmt bgr24 -");
  const std::size_t frame_bytes = static_cast<std::size_t>(width) * height * 3;
  std::vector<std::vector<uint8_t>> frames;
  if (frame_bytes == 0)
    return frames;
  for (std::size_t at = 0; at + frame_bytes <= r.out.size(); at += frame_bytes)
    frames.emplace_back(r.out.begin() + static_cast<std::ptrdiff_t>(at),
                        r.out.begin() + static_cast<std::ptrdiff_t>(at + frame_bytes));
  return frames;
}

}  // namespace framehive::testing
