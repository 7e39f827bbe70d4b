#pragma once

// Small helpers shared by the benchmark programs.

#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace framehive::bench {

/// Generates a testsrc2 H.264 clip with the ffmpeg CLI unless it exists.
inline bool ensure_clip(const std::filesystem::path& path, int width, int height, int fps, int seconds) {
  if (std::filesystem::exists(path))
    return true;
  std::filesystem::create_directories(path.parent_path());
  auto tmp = path.parent_path() / ("tmp-" + path.filename().string());
  std::string cmd = "ffmpeg -v error -y -nostdin -f lavfi -i testsrc2=size=" + std::to_string(width) + "x" +
                    std::to_string(height) + ":rate=" + std::to_string(fps) + " -t " + std::to_string(seconds) +
                    " -c:v libx264 -preset veryfast -g " + std::to_string(fps * 2) + " -pix_fmt yuv420p '" +
                    tmp.string() + "'";
  if (std::system(cmd.c_str()) != 0)
    return false;
  std::filesystem::rename(tmp, path);
  return true;
}

inline double percentile(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

struct usage {
  double cpu_s = 0;
  long minor_faults = 0;
  long max_rss_kb = 0;
};

inline usage usage_of(int who) {
  rusage ru{};
  getrusage(who, &ru);
  usage u;
  u.cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
            static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  u.minor_faults = ru.ru_minflt;
  u.max_rss_kb = ru.ru_maxrss;
  return u;
}

}  // namespace framehive::bench
