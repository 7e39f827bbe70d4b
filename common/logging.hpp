#pragma once

// The daemons' log lines, set up in one place. `text` (the default) is the
// human-readable line the daemons always wrote; `json` is one object per line
// for log collectors:
//
//   {"time":"2026-11-25T18:46:16.123Z","level":"info","process":"node","pid":4711,
//    "node":"node-a","job":3,"video":12,"msg":"node node-a: assigned video 12 ..."}
//
// Every line has time (UTC, ms), level, process, pid and msg; node and worker
// lines have node, worker lines worker (the slot index); job, video and actor
// appear on the lines logged through log_about(), where the call site knows
// them. Lines are written to standard output with one write(2) each, so the
// lines of a node and of the workers that share its output stay whole.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <spdlog/spdlog.h>

namespace framehive {

// -- configuration ----------------------------------------------------------------------

enum class log_format : uint8_t { text, json };

/// "text" or "json".
const char* to_string(log_format f) noexcept;

/// The format named `name` ("text", "json"); none for anything else.
std::optional<log_format> parse_log_format(std::string_view name) noexcept;

/// The daemons that log.
enum class log_process : uint8_t { coordinator, node, worker };

/// "coordinator", "node" or "worker".
const char* to_string(log_process p) noexcept;

/// Which process writes the lines.
struct log_origin {
  log_process process = log_process::coordinator;
  std::string node;                ///< the node's name (node and worker; empty: no field)
  std::optional<uint32_t> worker;  ///< a worker's slot index
};

/// Makes the default spdlog logger write `format` lines for `origin` to
/// standard output. Call once, early in main, before any other thread logs.
/// The logger stays synchronous: log_about() relies on the line being
/// written on the thread that logs it.
void setup_logging(const log_origin& origin, log_format format);

// -- what a line is about ---------------------------------------------------------------

/// The job, video and actor a line is about, as far as the call site knows.
struct log_subject {
  std::optional<uint64_t> job;
  std::optional<uint64_t> video;
  std::string actor;  ///< "decoder", "consumer:ANALYZER"; empty: no field
};

inline log_subject about_video(uint64_t job, uint64_t video) {
  return {job, video, {}};
}
inline log_subject about_video(uint64_t video) {
  return {std::nullopt, video, {}};
}
inline log_subject about_job(uint64_t job) {
  return {job, std::nullopt, {}};
}
inline log_subject about_actor(uint64_t video, std::string actor) {
  return {std::nullopt, video, std::move(actor)};
}

namespace detail {

/// The subject of the line this thread is logging right now (null: none).
/// Set only by log_about(), for the duration of one spdlog call; the JSON
/// sink reads it while it formats that line on the same thread.
const log_subject*& current_log_subject() noexcept;

class log_subject_scope {
 public:
  explicit log_subject_scope(const log_subject& s) noexcept : previous_(current_log_subject()) {
    current_log_subject() = &s;
  }
  ~log_subject_scope() { current_log_subject() = previous_; }
  log_subject_scope(const log_subject_scope&) = delete;
  log_subject_scope& operator=(const log_subject_scope&) = delete;

 private:
  const log_subject* previous_;
};

}  // namespace detail

/// spdlog::log(level, fmt, args...) with the line's subject: the message is
/// the same in both formats (so text lines do not change); JSON lines carry
/// the subject's fields besides it.
template <class... Args>
void log_about(spdlog::level::level_enum level, const log_subject& about,
               spdlog::format_string_t<Args...> fmt, Args&&... args) {
  detail::log_subject_scope scope{about};
  spdlog::log(level, fmt, std::forward<Args>(args)...);
}

// -- the JSON line (exposed for tests) --------------------------------------------------

/// One JSON log line, newline included. `msg`, the node name and the actor
/// may be any bytes: invalid UTF-8 becomes U+FFFD and control characters,
/// quotes and backslashes are escaped, so the line always parses.
std::string json_log_line(std::chrono::system_clock::time_point time, spdlog::level::level_enum level,
                          const log_origin& origin, uint32_t pid, const log_subject* about,
                          std::string_view msg);

/// `bytes` as a JSON string literal, quotes included (see json_log_line).
std::string json_quote(std::string_view bytes);

}  // namespace framehive
