#pragma once

// Where an input lives, decided in one place for the node's input policy and
// the decoder: a URL "SCHEME://..." names an FFmpeg protocol; "file://PATH",
// "file:PATH" and a bare path are local files. Header-only, no FFmpeg, so the
// node (which never links FFmpeg) reads inputs exactly as its workers do.

#include <string>

namespace framehive::media {

struct input_location {
  std::string scheme;  ///< the FFmpeg protocol: "file" for local inputs
  std::string path;    ///< local inputs: the file's path; URLs: empty
  bool local() const { return scheme == "file"; }
};

inline input_location locate_input(const std::string& input) {
  const auto pos = input.find("://");
  if (pos != std::string::npos) {
    std::string scheme = input.substr(0, pos);
    if (scheme == "file")
      return {scheme, input.substr(pos + 3)};
    return {scheme, {}};
  }
  if (input.rfind("file:", 0) == 0)
    return {"file", input.substr(5)};
  return {"file", input};
}

}  // namespace framehive::media
