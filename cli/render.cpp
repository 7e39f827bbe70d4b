#include "cli/render.hpp"

#include <cmath>

#include "analysis/catalog.hpp"
#include "common/text.hpp"

namespace framehive::cli {

namespace {

using json = nlohmann::json;

std::string text(const std::string& bytes) { return printable_utf8(bytes); }

/// Null for an empty string (results show "no node" / "no error" as null).
json text_or_null(const std::string& bytes) { return bytes.empty() ? json(nullptr) : json(text(bytes)); }

/// Whole numbers print as integers (counts, checksums), others as reals.
json number(double v) {
  constexpr double exact = 9007199254740992.0;  // 2^53: beyond it a double is not an exact integer
  if (std::isfinite(v) && std::floor(v) == v && std::fabs(v) < exact)
    return static_cast<int64_t>(v);
  return v;
}

/// people's boxes stay [x, y, w, h]; a labelled box (detect) is {class, x, y, w, h}.
json box_json(const analysis::box& b) {
  if (b.label.empty())
    return {b.x, b.y, b.width, b.height};
  return {{"class", text(b.label)}, {"x", b.x}, {"y", b.y}, {"w", b.width}, {"h", b.height}};
}

json video_json(const video_status& v) {
  return {{"video", v.video},          {"input", text(v.input)},
          {"state", to_string(v.state)}, {"node", text(v.node)},
          {"error", text(v.error)},      {"frames_total", v.frames_total},
          {"position", v.position},      {"total", v.total}};
}

json analyzer_json(const analyzer_results& a, bool with_frames) {
  json out;
  out["frames_seen"] = a.summary.frames_seen;
  out["sampling"] = text(a.summary.sampling);
  out["frames_processed"] = a.summary.frames_processed;
  out["mean_ms"] = a.summary.mean_ms;
  out["p95_ms"] = a.summary.p95_ms;
  out["summary"] = to_json(a.analyzer, a.summary);
  out["result_nodes"] = json::array();
  for (const auto& n : a.result_nodes)
    out["result_nodes"].push_back(text(n));
  if (with_frames) {
    json frames = json::array();
    for (const auto& f : a.frames)
      frames.push_back(to_json(a.analyzer, f));
    out["frames"] = std::move(frames);
  }
  return out;
}

}  // namespace

json to_json(const job_status& x) {
  json videos = json::array();
  for (const auto& v : x.videos)
    videos.push_back(video_json(v));
  return {{"job", x.job}, {"state", to_string(x.state)}, {"videos", std::move(videos)}};
}

json to_json(const cluster_status& x) {
  json jobs = json::array();
  for (const auto& j : x.jobs)
    jobs.push_back(to_json(j));
  return {{"jobs", std::move(jobs)}};
}

json to_json(const std::string& analyzer, const analysis::analyzer_summary& s) {
  const std::string kind = analysis::analyzer_kind(analyzer);
  json out;
  out["frames_seen"] = s.frames_seen;
  out["sampling"] = text(s.sampling);
  out["frames_processed"] = s.frames_processed;
  out["mean_ms"] = s.mean_ms;
  out["p95_ms"] = s.p95_ms;
  out["quarantined"] = json::array();
  for (const auto& q : s.quarantined)
    out["quarantined"].push_back({{"frame", q.frame}, {"reason", text(q.reason)}});
  for (const auto& n : s.numbers)
    out[text(n.name)] = number(n.value);
  if (kind == "clips") {
    // Each clip with its artifact; the digest (the last path) after them.
    out["clips"] = json::array();
    for (std::size_t i = 0; i < s.segments.size(); ++i) {
      const auto& g = s.segments[i];
      out["clips"].push_back({{"start_frame", g.start_frame},
                              {"end_frame", g.end_frame},
                              {"start_s", g.start_s},
                              {"end_s", g.end_s},
                              {"artifact", i < s.paths.size() ? json(text(s.paths[i])) : json()}});
    }
    out["digest"] = s.paths.size() > s.segments.size() ? json(text(s.paths.back())) : json();
    if (s.segments.empty() && s.error.empty())
      out["note"] = "no activity: no clips, no digest";
    if (!s.error.empty())
      out["error"] = text(s.error);
    return out;
  }
  if (!s.error.empty())
    out["error"] = text(s.error);
  if (kind == "motion" || !s.segments.empty()) {
    out["segments"] = json::array();
    for (const auto& g : s.segments)
      out["segments"].push_back(
          {{"start_frame", g.start_frame}, {"end_frame", g.end_frame}, {"start_s", g.start_s}, {"end_s", g.end_s}});
  }
  if (kind == "thumbnails" || !s.paths.empty()) {
    out["paths"] = json::array();
    for (const auto& p : s.paths)
      out["paths"].push_back(text(p));
  }
  if (kind == "detect" || !s.top_classes.empty()) {
    out["top_classes"] = json::array();
    for (const auto& c : s.top_classes)
      out["top_classes"].push_back(text(c));
  }
  return out;
}

json to_json(const std::string& analyzer, const analysis::frame_record& f) {
  json out;
  for (const auto& n : f.numbers)
    out[text(n.name)] = number(n.value);
  for (const auto& t : f.texts)
    out[text(t.name)] = text(t.value);
  const std::string kind = analysis::analyzer_kind(analyzer);
  if (kind == "people" || kind == "detect" || !f.boxes.empty()) {
    out["boxes"] = json::array();
    for (const auto& b : f.boxes)
      out["boxes"].push_back(box_json(b));
  }
  if (f.quarantined) {
    out["quarantined"] = true;
    out["reason"] = text(f.reason);
  }
  out["frame"] = f.frame;
  out["pts"] = f.pts;
  out["t"] = f.t;
  out["ms"] = f.ms;
  return out;
}

json to_json(const job_results& x, bool with_frames) {
  json videos = json::array();
  for (const auto& v : x.videos) {
    json jv{{"video", v.video},
            {"input", text(v.input)},
            {"state", to_string(v.state)},
            {"node", text_or_null(v.node)},
            {"frames_total", v.frames_total},
            {"frames_decoded", v.frames_decoded},
            {"decode_errors", v.decode_errors},
            {"error", text_or_null(v.error)},
            {"analyzers", json::object()}};
    for (const auto& a : v.analyzers)
      jv["analyzers"][text(a.analyzer)] = analyzer_json(a, with_frames);
    jv["artifacts"] = json::array();
    for (const auto& a : v.artifacts)
      jv["artifacts"].push_back(
          {{"analyzer", text(a.analyzer)}, {"name", text(a.name)}, {"size", a.size}, {"sha256", text(a.sha256)}});
    videos.push_back(std::move(jv));
  }
  return {{"job", x.job}, {"state", to_string(x.state)}, {"videos", std::move(videos)}};
}

json to_json(const cluster_tree& x) {
  json rows = json::array();
  for (const auto& e : x.entries)
    rows.push_back({{"id", text(e.id)},
                    {"parent", text(e.parent)},
                    {"kind", to_string(e.kind)},
                    {"name", text(e.name)},
                    {"state", to_string(e.state)},
                    {"fps", e.fps},
                    {"position", e.position},
                    {"total", e.total},
                    {"ring_fill", e.ring_fill},
                    {"ring_slots", e.ring_slots},
                    {"lag", e.lag},
                    {"pid", e.pid},
                    {"restarts", e.restarts},
                    {"redelivered", e.redelivered},
                    {"quarantined", e.quarantined}});
  return {{"entries", std::move(rows)}};
}

json to_json(const cluster_nodes& x) {
  json rows = json::array();
  for (const auto& n : x.nodes)
    rows.push_back({{"name", text(n.name)},
                    {"host", text(n.host)},
                    {"cores", n.cores},
                    {"shm_budget", n.shm_budget},
                    {"version", text(n.version)},
                    {"pid", n.pid},
                    {"running", n.running}});
  // Refusals by reason; a reason repeated by a peer adds up instead of overwriting.
  json refusals = json::object();
  for (const auto& r : x.refusals)
    refusals[text(r.reason)] = refusals.value(text(r.reason), uint64_t{0}) + r.count;
  return {{"nodes", std::move(rows)}, {"refusals", std::move(refusals)}};
}

std::string dump(const json& j, int indent) { return j.dump(indent, ' ', false, json::error_handler_t::replace); }

}  // namespace framehive::cli
