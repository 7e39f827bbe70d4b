#pragma once

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace framehive::testing {

/// Polls `cond` until it holds or `timeout` passes; returns the last result.
template <class Cond>
bool wait_until(Cond cond, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= deadline)
      return cond();
    std::this_thread::sleep_for(pause);
    if (pause < std::chrono::milliseconds(20))
      pause *= 2;
  }
  return true;
}

inline std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

inline bool file_has_line_starting(const std::string& path, const std::string& prefix) {
  for (const auto& l : read_lines(path))
    if (l.rfind(prefix, 0) == 0)
      return true;
  return false;
}

inline bool file_has_line_containing(const std::string& path, const std::string& text) {
  for (const auto& l : read_lines(path))
    if (l.find(text) != std::string::npos)
      return true;
  return false;
}

}  // namespace framehive::testing
