#pragma once

#include <string>

namespace framehive::media {

enum class media_errc {
  missing_input,      ///< no such file
  not_a_file,         ///< a directory or other non-regular file
  empty_input,        ///< a file of zero bytes
  not_media,          ///< FFmpeg cannot read it as a container
  no_video_stream,    ///< a container without video (audio only, ...)
  unsupported_codec,  ///< no decoder for the video codec
  damaged_stream,     ///< decode errors and not a single frame decoded
  zero_frames,        ///< a valid stream that holds no frames
  unreachable,        ///< a URL that could not be opened (network)
  io_error,           ///< a read failed mid-stream
  invalid_argument,   ///< a bad option (start frame, size)
  refused,            ///< the input names a protocol the input policy does not allow
};

const char* to_string(media_errc code) noexcept;

/// An error about one input: which input, what kind, and the detail.
struct media_error {
  media_errc code;
  std::string input;
  std::string detail;

  /// "INPUT: detail" - ready to show a user or store with a job.
  std::string message() const { return input + ": " + detail; }
};

}  // namespace framehive::media
