#pragma once

// The node's input policy as plain functions (no CAF, no FFmpeg): which inputs
// this node opens, and where a video's outputs may go. The node checks every
// assigned video with them before a worker probes it; a refused input fails
// its video with the reason these return, which names the input and the policy.

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace framehive {

/// May this node open `input`? Its protocol (media::locate_input(): a bare
/// path or a file: URL is "file") must be in `protocols`; a local file must,
/// once resolved (symlinks followed, "." and ".." removed; for a missing file
/// as far as it exists), lie below one of `roots` unless `roots` is empty.
/// The error reads "input 'X' refused by the node's input policy: WHY".
result<unit, std::string> check_input(const std::string& input, const std::vector<std::string>& protocols,
                                      const std::vector<std::string>& roots);

/// True when `path` is `root` or lies below it, comparing whole components of
/// the lexically normal forms ("/data/in" is not below "/data/i").
bool is_below(const std::string& path, const std::string& root);

/// Where the outputs of one video go: OUTPUT_DIR/job-J/video-V, numeric ids only.
std::string video_output_dir(const std::string& output_dir, uint64_t job, uint64_t video);

/// Where analyzer `analyzer` of a video writes: a folder named after it inside
/// `video_dir`. An analyzer name that is not one plain path component ("..",
/// "a/b", "") is refused, and so is a folder that would not be below `video_dir`.
result<std::string, std::string> analyzer_output_dir(const std::string& video_dir,
                                                     const std::string& analyzer);

/// A protocol name as FFmpeg spells them: lower-case letters, digits, '+', '-', '.'.
bool valid_protocol_name(const std::string& name);

}  // namespace framehive
