#pragma once

// Shell tools the tests compare against: the ffmpeg and ffprobe CLIs.

#include <sys/wait.h>

#include <cstdio>
#include <string>
#include <vector>

namespace framehive::testing {

/// Runs a shell command; returns its exit code and standard output.
struct command_result {
  int code = -1;
  std::string out;
};

inline command_result run_command(const std::string& cmd) {
  command_result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p)
    return r;
  char buf[4096];
  std::size_t n = 0;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
    r.out.append(buf, n);
  int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

inline std::vector<std::string> run_lines(const std::string& cmd) {
  std::vector<std::string> lines;
  std::string cur;
  for (char c : run_command(cmd).out) {
    if (c == '\n' || c == '\r') {
      if (!cur.empty())
        lines.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty())
    lines.push_back(cur);
  return lines;
}

/// Frames of the first video stream, counted by decoding (ffprobe -count_frames).
inline int64_t ffprobe_frame_count(const std::string& path) {
  auto l = run_lines("ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames "
                     "-of csv=p=0 '" + path + "'");
  return l.empty() ? -1 : std::stoll(l.front());
}

/// Best-effort timestamps of every frame; -1 where ffprobe prints N/A.
inline std::vector<int64_t> ffprobe_pts(const std::string& path) {
  std::vector<int64_t> out;
  for (const auto& l : run_lines("ffprobe -v error -select_streams v:0 -show_entries frame=best_effort_timestamp "
                                 "-of csv=p=0 '" + path + "'"))
    out.push_back(l == "N/A" ? -1 : std::stoll(l));
  return out;
}

}  // namespace framehive::testing
