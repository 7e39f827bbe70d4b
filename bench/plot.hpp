#pragma once

// A small line chart written as PNG with OpenCV (already a dependency): no
// plotting package needed on the machine that runs the benchmark.

#include <string>
#include <utility>
#include <vector>

namespace framehive::bench {

struct series {
  std::string label;
  std::vector<std::pair<int, double>> points;  ///< (N, value), N a power of two
};

struct panel {
  std::string title;
  std::string y_label;
  std::vector<series> lines;
};

/// Panels side by side; x is N on a log2 axis. False if the file cannot be written.
bool write_line_chart(const std::string& png_path, const std::vector<panel>& panels);

}  // namespace framehive::bench
