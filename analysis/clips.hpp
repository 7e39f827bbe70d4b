#pragma once

// The clips analyzer (clips.cpp): frame-accurate clips of a video's activity
// and a digest of them, encoded on the node from the ring's frames.

#include <memory>
#include <string>

#include "analysis/analyzer.hpp"

namespace framehive::analysis {

std::unique_ptr<analyzer> make_clips_analyzer(const analyzer_settings& settings, std::string& why);

}  // namespace framehive::analysis
