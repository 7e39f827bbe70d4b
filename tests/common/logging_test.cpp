// The JSON log line (fields, time, escaping, bytes that are not UTF-8) and
// the logger setup_logging() installs, captured from standard output.

#include "common/logging.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <nlohmann/json.hpp>

namespace framehive {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::system_clock;

// 1700000000 s after the epoch is 2023-11-14T22:13:20Z.
const system_clock::time_point known_time = system_clock::time_point(seconds(1700000000) + milliseconds(45));

const log_origin a_worker{log_process::worker, "node-a", 3u};

json parse_line(const std::string& line) {
  EXPECT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n') << "a line ends with exactly one newline";
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "a newline inside a line would split it";
  return json::parse(line);  // throws on invalid JSON or invalid UTF-8
}

TEST(Logging, FormatNamesParseAndNothingElseDoes) {
  EXPECT_EQ(parse_log_format("text"), log_format::text);
  EXPECT_EQ(parse_log_format("json"), log_format::json);
  EXPECT_FALSE(parse_log_format("JSON"));
  EXPECT_FALSE(parse_log_format(""));
  EXPECT_FALSE(parse_log_format("json "));
  EXPECT_STREQ(to_string(log_format::json), "json");
  EXPECT_STREQ(to_string(log_format::text), "text");
  EXPECT_STREQ(to_string(log_process::coordinator), "coordinator");
  EXPECT_STREQ(to_string(log_process::node), "node");
  EXPECT_STREQ(to_string(log_process::worker), "worker");
}

TEST(Logging, JsonLineCarriesTimeLevelProcessPidNodeAndMessage) {
  const json j = parse_line(json_log_line(known_time, spdlog::level::warn, a_worker, 4711, nullptr, "hello"));
  EXPECT_EQ(j["time"], "2023-11-14T22:13:20.045Z");
  EXPECT_EQ(j["level"], "warning");
  EXPECT_EQ(j["process"], "worker");
  EXPECT_EQ(j["pid"], 4711);
  EXPECT_EQ(j["node"], "node-a");
  EXPECT_EQ(j["worker"], 3);
  EXPECT_EQ(j["msg"], "hello");
  EXPECT_FALSE(j.contains("job"));
  EXPECT_FALSE(j.contains("video"));
  EXPECT_FALSE(j.contains("actor"));
}

TEST(Logging, CoordinatorLinesHaveNoNodeOrWorkerField) {
  const json j = parse_line(json_log_line(known_time, spdlog::level::info,
                                          {log_process::coordinator, {}, std::nullopt}, 1, nullptr, "x"));
  EXPECT_EQ(j["process"], "coordinator");
  EXPECT_EQ(j["level"], "info");
  EXPECT_FALSE(j.contains("node"));
  EXPECT_FALSE(j.contains("worker"));
}

TEST(Logging, TimeIsUtcWithThreeDigitsOfMilliseconds) {
  const auto t = system_clock::time_point(seconds(1700000000) + milliseconds(999));
  EXPECT_EQ(parse_line(json_log_line(t, spdlog::level::info, a_worker, 1, nullptr, ""))["time"],
            "2023-11-14T22:13:20.999Z");
  EXPECT_EQ(parse_line(json_log_line(system_clock::time_point(seconds(0)), spdlog::level::info, a_worker, 1,
                                     nullptr, ""))["time"],
            "1970-01-01T00:00:00.000Z");
}

TEST(Logging, SubjectFieldsAppearOnlyWhereTheCallSiteKnowsThem) {
  const log_subject video = about_video(3, 12);
  json j = parse_line(json_log_line(known_time, spdlog::level::info, a_worker, 1, &video, "m"));
  EXPECT_EQ(j["job"], 3);
  EXPECT_EQ(j["video"], 12);
  EXPECT_FALSE(j.contains("actor"));

  const log_subject actor = about_actor(12, "consumer:stats.fast");
  j = parse_line(json_log_line(known_time, spdlog::level::info, a_worker, 1, &actor, "m"));
  EXPECT_FALSE(j.contains("job"));
  EXPECT_EQ(j["video"], 12);
  EXPECT_EQ(j["actor"], "consumer:stats.fast");

  const log_subject job = about_job(7);
  j = parse_line(json_log_line(known_time, spdlog::level::info, a_worker, 1, &job, "m"));
  EXPECT_EQ(j["job"], 7);
  EXPECT_FALSE(j.contains("video"));
}

TEST(Logging, QuotesBackslashesAndControlCharactersAreEscaped) {
  const std::string msg =
      std::string("say \"hi\" C:\\dir\\ line1\nline2\r\ttab \b\f bell\x07 esc\x1b del\x7f nul") +
      std::string(1, '\0') + "end";
  const std::string line = json_log_line(known_time, spdlog::level::err, a_worker, 1, nullptr, msg);
  for (std::size_t i = 0; i + 1 < line.size(); ++i) {
    const auto b = static_cast<unsigned char>(line[i]);
    EXPECT_TRUE(b >= 0x20 && b != 0x7f) << "raw control byte " << int(b) << " at " << i;
  }
  EXPECT_NE(line.find("\\u0007"), std::string::npos);
  EXPECT_NE(line.find("\\u0000"), std::string::npos);
  EXPECT_NE(line.find("\\u007f"), std::string::npos);
  const json j = parse_line(line);
  EXPECT_EQ(j["msg"], msg) << "every byte of valid UTF-8 comes back as it was";
  EXPECT_EQ(j["level"], "error");
}

TEST(Logging, InvalidUtf8BecomesTheReplacementCharacterAndValidTextStays) {
  const std::string fffd = "\xEF\xBF\xBD";
  // A lone 0xff, a truncated sequence, an overlong '/', a surrogate; then valid é, ✓ and 😀.
  const std::string msg =
      "input /tmp/x\xff.mp4 \xC3 \xC0\xAF \xED\xA0\x80 \xC3\xA9\xE2\x9C\x93\xF0\x9F\x98\x80";
  const log_origin odd_node{log_process::node, std::string("n\xfe") + "1",
                            std::nullopt};  // 0xfe is never UTF-8
  const log_subject odd_actor = about_actor(1, "consumer:\xff");
  const json j = parse_line(json_log_line(known_time, spdlog::level::info, odd_node, 1, &odd_actor, msg));
  EXPECT_EQ(j["msg"], "input /tmp/x" + fffd + ".mp4 " + fffd + " " + fffd + fffd + " " + fffd + fffd + fffd +
                          " \xC3\xA9\xE2\x9C\x93\xF0\x9F\x98\x80");
  EXPECT_EQ(j["node"], "n" + fffd + "1");
  EXPECT_EQ(j["actor"], "consumer:" + fffd);
}

TEST(Logging, JsonQuoteIsAStringLiteral) {
  EXPECT_EQ(json_quote("a\"b"), "\"a\\\"b\"");
  EXPECT_EQ(json::parse(json_quote("\x01\xff")).get<std::string>(), "\x01\xEF\xBF\xBD");
}

/// Standard output redirected to a file for the life of the object.
class captured_stdout {
 public:
  captured_stdout() {
    path_ = std::filesystem::temp_directory_path() / ("fh-log-" + std::to_string(getpid()) + ".txt");
    std::fflush(stdout);
    saved_ = ::dup(STDOUT_FILENO);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, STDOUT_FILENO);
    ::close(fd);
  }
  ~captured_stdout() {
    restore();
    std::filesystem::remove(path_);
  }
  /// Everything written so far (stdout restored first).
  std::string text() {
    restore();
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  void restore() {
    if (saved_ < 0)
      return;
    std::fflush(stdout);
    ::dup2(saved_, STDOUT_FILENO);
    ::close(saved_);
    saved_ = -1;
  }
  std::filesystem::path path_;
  int saved_ = -1;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    out.push_back(l + "\n");
  return out;
}

TEST(Logging, JsonLoggerWritesOneLinePerMessageWithTheSubjectOfLogAbout) {
  auto previous = spdlog::default_logger();
  std::string out;
  {
    captured_stdout cap;
    setup_logging({log_process::node, "node-a", std::nullopt}, log_format::json);
    spdlog::info("plain {}", 1);
    log_about(spdlog::level::warn, about_video(3, 12), "node {}: video {} failed: {}", "node-a", 12, "a\"b");
    spdlog::info("after the subject's scope");
    out = cap.text();
  }
  spdlog::set_default_logger(previous);
  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 3u) << out;
  const json a = parse_line(lines[0]), b = parse_line(lines[1]), c = parse_line(lines[2]);
  EXPECT_EQ(a["msg"], "plain 1");
  EXPECT_FALSE(a.contains("video"));
  EXPECT_EQ(a["pid"], getpid());
  EXPECT_EQ(a["node"], "node-a");
  EXPECT_EQ(b["msg"], "node node-a: video 12 failed: a\"b");
  EXPECT_EQ(b["level"], "warning");
  EXPECT_EQ(b["job"], 3);
  EXPECT_EQ(b["video"], 12);
  EXPECT_FALSE(c.contains("video")) << "the subject is only for the one line";
  EXPECT_FALSE(c.contains("job"));
}

TEST(Logging, TextFormatIsTheHumanReadableLineAsBefore) {
  auto previous = spdlog::default_logger();
  std::string out;
  {
    captured_stdout cap;
    // A fresh stdout logger, as a daemon starts with (the test's own may differ).
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(
        "text", std::make_shared<spdlog::sinks::stdout_color_sink_mt>(spdlog::color_mode::never)));
    setup_logging({log_process::worker, "node-a", 2u}, log_format::text);
    log_about(spdlog::level::info, about_video(3, 12), "worker {} ready", 2);
    spdlog::default_logger()->flush();
    out = cap.text();
  }
  spdlog::set_default_logger(previous);
  const std::regex expected(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} info worker-2\[)" +
                            std::to_string(getpid()) + R"(\] worker 2 ready\n)");
  EXPECT_TRUE(std::regex_match(out, expected)) << out;
}

}  // namespace
}  // namespace framehive
