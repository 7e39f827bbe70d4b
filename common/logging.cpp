#include "common/logging.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>

#include <spdlog/sinks/sink.h>

#include "common/text.hpp"

namespace framehive {

namespace {

/// UTC, milliseconds: 2026-11-25T18:46:16.123Z.
void append_time(std::string& out, std::chrono::system_clock::time_point t) {
  const auto ms_since_epoch =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  // Floor division, so a time before 1970 still gets 0..999 ms.
  std::time_t secs = static_cast<std::time_t>(ms_since_epoch / 1000);
  long long ms = ms_since_epoch % 1000;
  if (ms < 0) {
    ms += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[128];  // room for any int the compiler cannot rule out (-Wformat-truncation)
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  out += buf;
}

void append_quoted(std::string& out, std::string_view bytes) {
  static constexpr char hex[] = "0123456789abcdef";
  // Valid UTF-8 first (inputs' names are bytes), then JSON's escapes; every
  // byte of the result is then either ASCII or part of a valid sequence.
  const std::string text = printable_utf8(bytes);
  out += '"';
  for (const char c : text) {
    const auto b = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (b < 0x20 || b == 0x7f) {  // DEL is legal JSON, but not something to print raw
          out += "\\u00";
          out += hex[b >> 4];
          out += hex[b & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void append_key(std::string& out, const char* key) {
  out += ",\"";
  out += key;
  out += "\":";
}

/// Writes JSON lines to a file descriptor, each with a single write(2): the
/// node and its workers share one output, and their lines must not
/// interleave. Formats on the calling thread (log_about's subject is there).
class json_sink final : public spdlog::sinks::sink {
 public:
  json_sink(int fd, log_origin origin)
      : fd_(fd), origin_(std::move(origin)), pid_(static_cast<uint32_t>(getpid())) {}

  void log(const spdlog::details::log_msg& m) override {
    const std::string line = json_log_line(m.time, m.level, origin_, pid_, detail::current_log_subject(),
                                           std::string_view(m.payload.data(), m.payload.size()));
    std::lock_guard<std::mutex> guard{mutex_};  // a partial write's rest must follow it directly
    std::string_view rest = line;
    while (!rest.empty()) {
      const ssize_t n = ::write(fd_, rest.data(), rest.size());
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return;  // nowhere left to say it (closed or full output)
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  void flush() override {}                          // unbuffered
  void set_pattern(const std::string&) override {}  // the JSON line has no pattern
  void set_formatter(std::unique_ptr<spdlog::formatter>) override {}

 private:
  int fd_;
  log_origin origin_;
  uint32_t pid_;
  std::mutex mutex_;
};

/// The human-readable line the daemons always wrote: "worker-2[PID]", "node[PID]".
std::string text_pattern(const log_origin& o) {
  std::string who = to_string(o.process);
  if (o.worker)
    who += "-" + std::to_string(*o.worker);
  return "%Y-%m-%dT%H:%M:%S.%e %^%l%$ " + who + "[%P] %v";
}

}  // namespace

const char* to_string(log_format f) noexcept {
  switch (f) {
    case log_format::text:
      return "text";
    case log_format::json:
      return "json";
  }
  return "text";
}

const char* to_string(log_process p) noexcept {
  switch (p) {
    case log_process::coordinator:
      return "coordinator";
    case log_process::node:
      return "node";
    case log_process::worker:
      return "worker";
  }
  return "unknown";
}

std::optional<log_format> parse_log_format(std::string_view name) noexcept {
  if (name == "text")
    return log_format::text;
  if (name == "json")
    return log_format::json;
  return std::nullopt;
}

const log_subject*& detail::current_log_subject() noexcept {
  thread_local const log_subject* current = nullptr;
  return current;
}

std::string json_quote(std::string_view bytes) {
  std::string out;
  append_quoted(out, bytes);
  return out;
}

std::string json_log_line(std::chrono::system_clock::time_point time, spdlog::level::level_enum level,
                          const log_origin& origin, uint32_t pid, const log_subject* about,
                          std::string_view msg) {
  std::string out;
  out.reserve(160 + msg.size());
  out += "{\"time\":\"";
  append_time(out, time);
  out += '"';
  const auto lv = spdlog::level::to_string_view(level);
  append_key(out, "level");
  append_quoted(out, std::string_view(lv.data(), lv.size()));
  append_key(out, "process");
  out += '"';
  out += to_string(origin.process);  // plain ASCII names
  out += '"';
  append_key(out, "pid");
  out += std::to_string(pid);
  if (!origin.node.empty()) {
    append_key(out, "node");
    append_quoted(out, origin.node);
  }
  if (origin.worker) {
    append_key(out, "worker");
    out += std::to_string(*origin.worker);
  }
  if (about) {
    if (about->job) {
      append_key(out, "job");
      out += std::to_string(*about->job);
    }
    if (about->video) {
      append_key(out, "video");
      out += std::to_string(*about->video);
    }
    if (!about->actor.empty()) {
      append_key(out, "actor");
      append_quoted(out, about->actor);
    }
  }
  append_key(out, "msg");
  append_quoted(out, msg);
  out += "}\n";
  return out;
}

void setup_logging(const log_origin& origin, log_format format) {
  if (format == log_format::text) {
    spdlog::set_pattern(text_pattern(origin));
    return;
  }
  auto logger = std::make_shared<spdlog::logger>(to_string(origin.process),
                                                 std::make_shared<json_sink>(STDOUT_FILENO, origin));
  logger->set_level(spdlog::default_logger_raw()->level());
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace framehive
