#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "common/sampling.hpp"
#include "media/errors.hpp"

namespace framehive::media {

struct rational {
  int num = 0;
  int den = 1;
  double value() const { return den ? static_cast<double>(num) / den : 0.0; }
};

/// What probing tells about a video before decoding.
struct video_info {
  std::string input;
  std::string codec;
  std::string pixel_format;
  int width = 0;
  int height = 0;
  rational frame_rate;        ///< average frame rate (0/1 if unknown)
  rational time_base;         ///< unit of `pts`
  double duration_s = 0;      ///< 0 if unknown (live sources)
  int64_t frame_count = 0;    ///< -1 if unknown
  bool frame_count_exact = false;  ///< counted packets instead of trusting the header
};

struct decoder_options {
  int64_t start_frame = 0;  ///< first frame to return; earlier ones are decoded and dropped
  int max_width = 0;        ///< downscale (keeping aspect) to at most this width; 0 = keep
  int threads = 0;          ///< decoder threads; 0 = FFmpeg's choice
  bool count_frames = false;  ///< count packets at open when the container does not say
  /// Input policy: the protocols an input may name (see locate_input(); local
  /// files are "file"). FFmpeg gets the matching protocol_whitelist, so nested
  /// opens (playlists, redirects) stay within them too. Empty: no restriction.
  std::vector<std::string> allowed_protocols;
};

/// FFmpeg's protocol_whitelist for inputs of the `allowed` protocols: each one
/// plus the protocols it opens underneath (https: tls and tcp; rtsp: rtp, udp
/// and tcp; ...), without duplicates, comma-separated.
std::string ffmpeg_protocol_whitelist(const std::vector<std::string>& allowed);

/// One decoded frame's identity. The pixels stay inside the decoder until
/// convert_bgr() writes them where the caller wants them.
struct decoded_frame {
  int64_t index = 0;  ///< position in presentation order, from 0 at the start of the video
  int64_t pts = 0;    ///< best-effort timestamp in time_base units
  /// The timestamp of frame index - 1 (no_pts for the first frame): what
  /// sampling by time needs (common/sampling.hpp). A decoder started past
  /// frame 0 takes it from its packet index, so it matches a full decode.
  int64_t prev_pts = no_pts;
  rational time_base;
  bool keyframe = false;
};

/// Decodes one input (a path or anything FFmpeg opens) in presentation order.
class decoder {
 public:
  /// Opens and probes `input`; with start_frame > 0, positions on that frame.
  static result<std::unique_ptr<decoder>, media_error> open(const std::string& input,
                                                            const decoder_options& options = {});
  ~decoder();
  decoder(const decoder&) = delete;
  decoder& operator=(const decoder&) = delete;

  const video_info& info() const noexcept;

  /// Geometry of convert_bgr()'s output (after any downscale).
  int output_width() const noexcept;
  int output_height() const noexcept;

  enum class step { frame, end };

  /// Decodes the next frame. At the end of the input returns step::end, or an
  /// error if nothing could be decoded (damaged_stream / zero_frames) or the
  /// input broke off mid-read (io_error).
  result<step, media_error> next(decoded_frame& out);

  /// Converts the current frame to packed BGR24 at `dst` with `stride` bytes
  /// per row: swscale writes there directly, no intermediate copy.
  void convert_bgr(uint8_t* dst, int stride);

  int64_t frames_decoded() const noexcept;  ///< frames returned so far
  int64_t decode_errors() const noexcept;   ///< packets or frames FFmpeg reported damaged

  struct impl;

 private:
  explicit decoder(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// Presentation timestamps of every video frame, in order, from a packet scan
/// (no decoding): what frame N's timestamp is, for seeking to frame N.
result<std::vector<int64_t>, media_error> scan_frame_pts(
    const std::string& input, const std::vector<std::string>& allowed_protocols = {});

}  // namespace framehive::media
