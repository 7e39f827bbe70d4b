#pragma once

// The typed query replies as JSON: the one place where framehive's protocol
// becomes text for scripts (`--json`). Byte strings (inputs, names, errors)
// go through printable_utf8, so any input name renders.

#include <nlohmann/json.hpp>

#include "actors/messages.hpp"

namespace framehive::cli {

nlohmann::json to_json(const job_status& x);
nlohmann::json to_json(const cluster_status& x);
/// With `with_frames`, every analyzer has a "frames" array (possibly empty).
nlohmann::json to_json(const job_results& x, bool with_frames);
nlohmann::json to_json(const cluster_tree& x);
/// {"nodes": [...], "refusals": {reason: count}} (refusals since the coordinator started).
nlohmann::json to_json(const cluster_nodes& x);

/// An analyzer's summary as the object under "summary" (its own figures
/// included); `analyzer` decides which optional lists appear.
nlohmann::json to_json(const std::string& analyzer, const analysis::analyzer_summary& s);

/// One frame's result as an object: frame, pts, t, ms and the analyzer's fields.
nlohmann::json to_json(const std::string& analyzer, const analysis::frame_record& f);

/// Text of a JSON document; never throws on encoding (invalid UTF-8 is replaced).
std::string dump(const nlohmann::json& j, int indent = 2);

}  // namespace framehive::cli
