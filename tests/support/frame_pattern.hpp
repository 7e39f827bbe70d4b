#pragma once

// Deterministic synthetic frames for ring tests: every byte depends on the
// frame index, the row and the column, so a checksum tells whether a consumer
// saw exactly the frame the producer wrote (not a neighbour, not a torn mix).

#include <cstdint>

namespace framehive::testing {

inline uint8_t pattern_byte(int64_t frame_index, uint32_t row, uint32_t col) {
  return static_cast<uint8_t>((static_cast<uint64_t>(frame_index) * 131u + row * 7u + col * 3u +
                               (static_cast<uint64_t>(frame_index) >> 8)) & 0xffu);
}

inline void fill_pattern(uint8_t* dst, uint32_t stride, uint32_t width, uint32_t height, int64_t frame_index) {
  for (uint32_t r = 0; r < height; ++r) {
    uint8_t* row = dst + static_cast<uint64_t>(r) * stride;
    for (uint32_t c = 0; c < width * 3; ++c)
      row[c] = pattern_byte(frame_index, r, c);
  }
}

/// FNV-1a over the visible bytes of every row (padding excluded).
inline uint64_t frame_checksum(const uint8_t* src, uint32_t stride, uint32_t width, uint32_t height) {
  uint64_t h = 1469598103934665603ull;
  for (uint32_t r = 0; r < height; ++r) {
    const uint8_t* row = src + static_cast<uint64_t>(r) * stride;
    for (uint32_t c = 0; c < width * 3; ++c) {
      h ^= row[c];
      h *= 1099511628211ull;
    }
  }
  return h;
}

inline uint64_t expected_checksum(uint32_t width, uint32_t height, int64_t frame_index) {
  uint64_t h = 1469598103934665603ull;
  for (uint32_t r = 0; r < height; ++r)
    for (uint32_t c = 0; c < width * 3; ++c) {
      h ^= pattern_byte(frame_index, r, c);
      h *= 1099511628211ull;
    }
  return h;
}

}  // namespace framehive::testing
