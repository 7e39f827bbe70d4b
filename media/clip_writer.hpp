#pragma once

// Frame-accurate H.264/MP4 clips from raw BGR24 frames, and joining such clips
// without re-encoding. No CAF, no shm: the clips analyzer feeds it frames it
// read from a ring.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace framehive::media {

/// How a clip is encoded. Clips that are to be joined must share one format.
struct clip_format {
  int width = 0;  ///< of the BGR24 frames given to write(); any size >= 1, odd too
  int height = 0;
  int64_t time_base_num = 1;  ///< the source's pts unit: pts * num / den seconds
  int64_t time_base_den = 25;
  double fps = 25;  ///< nominal rate: x264 rate control, avg_frame_rate, duration of the last frame
  /// x264 constant rate factor 0..51. At 18, frames decoded from a clip of
  /// camera footage stay above 35 dB PSNR (BGR) vs the frames written: 37 dB
  /// and more on opencv-doc's vtest.avi. Fine colour detail (full-resolution
  /// chroma, which camera footage does not have) loses more to 4:2:0.
  int crf = 18;
  std::string preset = "veryfast";  ///< x264 preset
};

/// Writes one MP4 file with one H.264 stream, frame by frame. Every frame
/// written is one frame of the file, with the source's timestamp: a clip cut
/// at source pts 4000 (1/1000) starts at 4 s and its frames carry pts 4000,
/// 4040, ... The stream's time base is 1/den of the source's reduced time base
/// num/den (mp4 counts whole ticks): with num = 1 the pts are the source's,
/// otherwise each is num times the source's (1001/30000: pts 100 -> 100100).
/// The file starts with a keyframe, so clips of one format can be joined.
///
/// Pixel format: yuv420p (the format every player reads) when width and height
/// are even; yuv444p (H.264 High 4:4:4) when either is odd, since 4:2:0 cannot
/// represent an odd size and padding or cropping would change the frames.
class clip_writer {
 public:
  /// Creates (truncates) `path` and opens the encoder. The error names the
  /// path and the cause (bad format, no libx264, cannot create the file).
  static result<std::unique_ptr<clip_writer>, std::string> create(const std::string& path,
                                                                  const clip_format& f);

  /// Closes best effort (as close()); never throws.
  ~clip_writer();
  clip_writer(const clip_writer&) = delete;
  clip_writer& operator=(const clip_writer&) = delete;

  /// Encodes one packed BGR24 frame of the format's size, rows `stride` bytes
  /// apart, at `pts` (source units, strictly increasing). A refused frame
  /// (no pixels, short stride, pts not after the last) leaves the clip as it
  /// was; an encoding or write error (disk full) is final: later calls and
  /// close() return it again. Error text: "PATH: cause".
  std::optional<std::string> write(const uint8_t* bgr, int stride, int64_t pts);

  /// Flushes the encoder and writes the trailer; the file is complete only
  /// after this. Idempotent: later calls return the first call's result.
  std::optional<std::string> close();

  /// Frames accepted by write() so far.
  int64_t frames_written() const noexcept;

  const std::string& path() const noexcept;

  struct impl;

 private:
  explicit clip_writer(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// Joins files made by clip_writer with one clip_format into `output` without
/// re-encoding (packets are remuxed). Inputs whose stream parameters (size,
/// SPS/PPS) differ from the first are refused, as is an input that does not
/// start with a keyframe; on any error `output` is removed.
///
/// keep_timestamps = true: packets keep their timestamps (consecutive pieces
/// of one clip); each input must start after the previous one's last frame.
/// false: a digest played continuously: the first input starts at 0 and each
/// next one starts where the previous one ends (its last frame's pts plus
/// that frame's duration).
std::optional<std::string> join_clips(const std::vector<std::string>& inputs, const std::string& output,
                                      bool keep_timestamps);

}  // namespace framehive::media
