#include "analysis/catalog.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace framehive::analysis {

const std::vector<std::string>& analyzer_names() {
  static const std::vector<std::string> names{"stats", "people", "motion", "thumbnails", "touch"};
  return names;
}

std::string analyzer_kind(const std::string& name) { return name.substr(0, name.find('.')); }

bool is_analyzer(const std::string& name) {
  const auto& n = analyzer_names();
  if (std::find(n.begin(), n.end(), analyzer_kind(name)) == n.end())
    return false;
  const auto dot = name.find('.');
  if (dot == std::string::npos)
    return true;
  const auto label = name.substr(dot + 1);
  return !label.empty() && std::all_of(label.begin(), label.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_';
  });
}

int preroll_frames(const std::string& name) {
  // MOG2's model (history 200) is close to a from-the-start model after ~100 frames.
  return analyzer_kind(name) == "motion" ? 100 : 0;
}

namespace {

double num(const nlohmann::json& j, const char* key, double fallback = 0) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

}  // namespace

std::vector<segment> motion_segments(const std::vector<stored_frame>& frames, double threshold,
                                     double max_gap_s, double min_len_s) {
  std::vector<segment> raw;
  for (const auto& f : frames) {
    if (num(f.data, "fg") < threshold)
      continue;
    const double t = num(f.data, "t");
    if (!raw.empty() && t - raw.back().end_s <= max_gap_s) {
      raw.back().end_frame = f.frame;
      raw.back().end_s = t;
    } else {
      raw.push_back({f.frame, f.frame, t, t});
    }
  }
  std::vector<segment> out;
  for (const auto& s : raw)
    if (s.end_s - s.start_s >= min_len_s)
      out.push_back(s);
  return out;
}

nlohmann::json summarize(const std::string& name, const std::vector<stored_frame>& all) {
  const std::string analyzer = analyzer_kind(name);
  nlohmann::json s;
  std::vector<stored_frame> frames;
  nlohmann::json quarantined = nlohmann::json::array();
  for (const auto& f : all) {
    if (f.data.value("quarantined", false))
      quarantined.push_back({{"frame", f.frame}, {"reason", f.data.value("reason", "")}});
    else
      frames.push_back(f);
  }
  s["quarantined"] = quarantined;
  std::vector<double> ms;
  ms.reserve(frames.size());
  for (const auto& f : frames)
    ms.push_back(num(f.data, "ms"));
  double mean = 0;
  for (double v : ms)
    mean += v;
  mean = ms.empty() ? 0 : mean / static_cast<double>(ms.size());
  double p95 = 0;
  if (!ms.empty()) {
    auto sorted = ms;
    std::sort(sorted.begin(), sorted.end());
    p95 = sorted[static_cast<std::size_t>(std::ceil(0.95 * static_cast<double>(sorted.size()))) - 1];
  }
  s["frames_processed"] = frames.size();
  s["mean_ms"] = mean;
  s["p95_ms"] = p95;

  if (analyzer == "people") {
    int64_t total = 0, with = 0, most = 0;
    for (const auto& f : frames) {
      auto c = static_cast<int64_t>(num(f.data, "count"));
      total += c;
      with += c > 0;
      most = std::max(most, c);
    }
    s["total_detections"] = total;
    s["frames_with_people"] = with;
    s["max_people"] = most;
  } else if (analyzer == "motion") {
    auto segs = motion_segments(frames);
    nlohmann::json arr = nlohmann::json::array();
    int64_t active = 0;
    for (const auto& f : frames)
      active += num(f.data, "fg") >= 0.01;
    for (const auto& g : segs)
      arr.push_back({{"start_frame", g.start_frame}, {"end_frame", g.end_frame}, {"start_s", g.start_s},
                     {"end_s", g.end_s}});
    s["segments"] = arr;
    s["active_frames"] = active;
  } else if (analyzer == "stats") {
    double b = 0, sh = 0;
    for (const auto& f : frames) {
      b += num(f.data, "brightness");
      sh += num(f.data, "sharpness");
    }
    s["mean_brightness"] = frames.empty() ? 0 : b / static_cast<double>(frames.size());
    s["mean_sharpness"] = frames.empty() ? 0 : sh / static_cast<double>(frames.size());
  } else if (analyzer == "touch") {
    uint64_t sum = 0;
    for (const auto& f : frames)
      sum += static_cast<uint64_t>(num(f.data, "sum"));
    s["checksum"] = sum;
  } else if (analyzer == "thumbnails") {
    nlohmann::json paths = nlohmann::json::array();
    for (const auto& f : frames)
      if (f.data.contains("path"))
        paths.push_back(f.data["path"]);
    s["count"] = paths.size();
    s["paths"] = paths;
  }
  return s;
}

}  // namespace framehive::analysis
