#pragma once

// Which chunks of a transfer to request next when several are in flight
// (issue 12: upload, artifact fetch, node fetch). One request per chunk at a
// time left the link idle for a round trip and a disk write per chunk; a
// small window of requests keeps it busy while memory stays bounded at
// `depth` chunks.
//
// The window relies on replies coming back in the order of the requests: one
// peer handles them one by one over one connection. A reply for any chunk
// but the oldest outstanding one is therefore an error of the peer, and
// complete() refuses it.

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>

namespace framehive {

/// Chunks in flight per transfer (upload, artifact fetch, node fetch): with
/// 1 MiB chunks, 8 MiB per transfer covers a 1 Gbit/s link with a round trip
/// of up to 60 ms.
inline constexpr uint32_t transfer_window_chunks = 8;

/// A chunk of a transfer: `length` bytes from `offset`.
struct chunk_span {
  uint64_t offset = 0;
  uint64_t length = 0;

  uint64_t end() const noexcept { return offset + length; }
  friend bool operator==(const chunk_span& a, const chunk_span& b) {
    return a.offset == b.offset && a.length == b.length;
  }
};

/// Chunks in flight over [start, size): at most `depth` of `chunk` bytes each.
class chunk_window {
 public:
  chunk_window(uint64_t start, uint64_t size, uint64_t chunk, uint32_t depth)
      : size_(size),
        chunk_(std::max<uint64_t>(chunk, 1)),
        depth_(std::max<uint32_t>(depth, 1)),
        acked_(std::min(start, size)),
        next_(acked_) {}

  /// The next chunk to request, or nullopt while the window is full or every
  /// byte has been requested.
  std::optional<chunk_span> next() {
    if (in_flight_.size() >= depth_ || next_ >= size_)
      return std::nullopt;
    chunk_span s{next_, std::min(chunk_, size_ - next_)};
    in_flight_.push_back(s);
    next_ = s.end();
    return s;
  }

  /// The chunk the next reply must be for (the oldest in flight).
  std::optional<chunk_span> oldest() const {
    if (in_flight_.empty())
      return std::nullopt;
    return in_flight_.front();
  }

  /// The reply to the oldest chunk arrived and `s` is what it carried; false
  /// (and nothing changes) if `s` is not that chunk.
  bool complete(const chunk_span& s) {
    if (in_flight_.empty() || !(in_flight_.front() == s))
      return false;
    in_flight_.pop_front();
    acked_ = s.end();
    return true;
  }

  /// Forgets the chunks in flight (their replies failed or will be ignored);
  /// requests start again after the last completed chunk.
  void restart() {
    in_flight_.clear();
    next_ = acked_;
  }

  // -- properties --

  /// Every byte requested has been completed, up to the size.
  bool done() const noexcept { return acked_ >= size_; }
  /// Bytes completed, in order, from the start of the transfer (not of the window).
  uint64_t completed() const noexcept { return acked_; }
  std::size_t in_flight() const noexcept { return in_flight_.size(); }
  uint64_t size() const noexcept { return size_; }

 private:
  uint64_t size_;
  uint64_t chunk_;
  uint32_t depth_;
  uint64_t acked_;  ///< every byte before this is done
  uint64_t next_;   ///< the next chunk to request starts here
  std::deque<chunk_span> in_flight_;
};

}  // namespace framehive
