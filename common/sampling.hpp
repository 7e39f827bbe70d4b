#pragma once

// Which frames of a video one analysis takes: every k-th frame by index, or
// N frames per second of video time by timestamp. The rule is a pure function
// of a frame's own index and timestamp and of its predecessor's timestamp, so
// the decoder (which skips converting frames nobody takes), the ring (which
// hands each consumer only its frames) and a consumer restarted in the middle
// of a video all make the same choice. The ring and the catalog both use it:
// it lives here, below both.

#include <cstdint>
#include <limits>

namespace framehive {

/// A timestamp that is not known: the predecessor of a video's first frame.
inline constexpr int64_t no_pts = std::numeric_limits<int64_t>::min();

/// One analysis' sampling. The default takes every frame.
struct sampling {
  uint32_t every = 1;     ///< frames whose index % every == 0 (0 counts as 1)
  uint32_t rate_num = 0;  ///< with rate_num > 0: rate_num / rate_den frames per second of video time
  uint32_t rate_den = 1;

  bool by_time() const noexcept { return rate_num > 0 && rate_den > 0; }
  bool takes_all() const noexcept { return every <= 1 && !by_time(); }
  friend bool operator==(const sampling& a, const sampling& b) noexcept {
    return a.every == b.every && a.rate_num == b.rate_num && a.rate_den == b.rate_den;
  }
  friend bool operator!=(const sampling& a, const sampling& b) noexcept { return !(a == b); }
};

/// The 1/N-second bucket of video time that `pts` falls in:
/// floor(pts * tb_num / tb_den * rate_num / rate_den), in exact integer
/// arithmetic (128 bits: no product of these widths overflows), so every
/// process computes the same bucket for the same frame.
constexpr int64_t rate_bucket(const sampling& s, int64_t pts, int32_t tb_num, int32_t tb_den) noexcept {
  const __int128 num = static_cast<__int128>(pts) * tb_num * s.rate_num;
  const __int128 den = static_cast<__int128>(tb_den) * s.rate_den;
  __int128 q = num / den;
  if ((num % den != 0) && ((num < 0) != (den < 0)))
    --q;  // floor, not truncation, for timestamps before 0
  return static_cast<int64_t>(q);
}

/// True if `s` takes the frame `index` with timestamp `pts` (time base
/// tb_num/tb_den) whose predecessor, frame index - 1, had `prev_pts`
/// (no_pts for a video's first frame).
///  - every k: index % k == 0.
///  - N per second: the frame is the first of its 1/N-second bucket, i.e. its
///    predecessor lies in an earlier bucket (a video's first frame always
///    is). At 25 fps, 5 per second takes frames 0, 5, 10, ...; with variable
///    timestamps it takes the first frame at or after each k/N seconds.
///    A frame without a usable time base is taken (more frames, never none).
/// Both parts must hold when both are set.
constexpr bool takes(const sampling& s, int64_t index, int64_t pts, int64_t prev_pts, int32_t tb_num,
                     int32_t tb_den) noexcept {
  if (s.every > 1 && index % s.every != 0)
    return false;
  if (!s.by_time() || prev_pts == no_pts || tb_num <= 0 || tb_den <= 0)
    return true;
  return rate_bucket(s, pts, tb_num, tb_den) > rate_bucket(s, prev_pts, tb_num, tb_den);
}

}  // namespace framehive
