#pragma once

// The coordinator's content-addressed store of bytes: uploaded videos and the
// artifacts nodes send back. A blob is the file `dir`/blobs/<sha256>; it is
// written as `dir`/blobs/partial/<name> and renamed into place only after its
// size and SHA-256 are checked, so a reader never sees half a blob. The hash
// is computed while the bytes arrive (the hasher lives with the session), so
// completing costs no second read.
//
// A plain class (no actors): the coordinator actor owns one and calls it from
// its single thread. Errors carry the project's errc so the actor can answer
// with them unchanged.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/messages.hpp"
#include "common/clock.hpp"
#include "common/digest.hpp"
#include "common/result.hpp"

namespace framehive {

/// What the store refuses to hold. Going over one is errc::over_limit, and
/// the message names the option.
struct blob_limits {
  uint64_t max_blob_bytes = 64ull << 30;    ///< [storage] max-blob-bytes: one blob
  uint64_t max_store_bytes = 512ull << 30;  ///< [storage] max-store-bytes: all blobs and partial uploads
  /// Uploads in progress at once (each holds an open file).
  uint32_t max_sessions = 256;
  /// An upload that received nothing for this long is removed with its partial file.
  std::chrono::seconds stale_after = std::chrono::hours(1);
};

struct blob_error {
  errc code = errc::internal;
  std::string message;
};

template <class T>
using blob_result = result<T, blob_error>;

/// Where an upload stands after begin() or a write.
struct blob_progress {
  uint64_t upload = 0;  ///< the session (0 when nothing is to be sent)
  uint64_t offset = 0;  ///< next byte expected (== size when complete)
  bool complete = false;
  std::string sha256;  ///< set when complete
};

class blob_store {
 public:
  /// Opens (creating) `dir`/blobs, removes partial uploads left by an earlier
  /// run and counts the stored bytes. `clk` decides staleness; it must
  /// outlive the store (nullptr: the real monotonic clock).
  static result<std::unique_ptr<blob_store>, std::string> open(const std::string& dir, blob_limits limits,
                                                               const clock* clk = nullptr);
  ~blob_store();
  blob_store(const blob_store&) = delete;
  blob_store& operator=(const blob_store&) = delete;

  // -- writing ---------------------------------------------------------------------------

  /// Starts (or resumes) an upload of `size` bytes with the given SHA-256.
  /// Already stored: complete, nothing to send. An upload of the same bytes in
  /// progress: the same session, from where it stopped.
  blob_result<blob_progress> begin(const std::string& sha256, uint64_t size);
  /// Starts an upload whose hash is known only at its end (artifacts): the
  /// blob is named by what arrives.
  blob_result<blob_progress> begin_unnamed(uint64_t size);
  /// Appends bytes at `offset` (must be where the session stands; at most
  /// blob_chunk_bytes). The write that reaches the size completes it: checked
  /// and renamed into place, or, on a hash mismatch, discarded with an error.
  /// Any error other than a wrong offset or chunk size ends the session and
  /// removes its partial file.
  blob_result<blob_progress> write(uint64_t upload, uint64_t offset, const char* data, std::size_t size);
  /// Ends a session and removes its partial file (no-op if unknown).
  void abort(uint64_t upload);
  /// Removes sessions idle for longer than limits.stale_after; how many.
  std::size_t remove_stale();

  // -- reading ---------------------------------------------------------------------------

  /// Up to `max_bytes` (at most blob_chunk_bytes) from `offset`; empty data past the end.
  blob_result<blob_chunk> read(const std::string& sha256, uint64_t offset,
                               uint32_t max_bytes = blob_chunk_bytes) const;
  bool contains(const std::string& sha256) const;
  /// Deletes a stored blob (retention); false if it was not there.
  bool remove(const std::string& sha256);

  uint64_t stored_bytes() const noexcept { return stored_bytes_; }
  std::size_t sessions() const noexcept { return sessions_.size(); }
  /// True while the session can take more bytes.
  bool active(uint64_t upload) const { return sessions_.count(upload) > 0; }
  /// The final path of a blob (for tests and logs).
  std::string path_of(const std::string& sha256) const;
  std::string partial_dir() const;

 private:
  struct session {
    std::string sha256;  ///< expected; empty for an unnamed upload
    uint64_t size = 0;
    uint64_t written = 0;
    std::string path;  ///< the partial file
    int fd = -1;
    std::unique_ptr<framehive::sha256> hasher;
    uint64_t last_ns = 0;
  };

  blob_store(std::string dir, blob_limits limits, const clock& clk);
  blob_result<blob_progress> start(std::string sha256, uint64_t size);
  blob_result<blob_progress> finish(uint64_t upload, session& s);
  /// Bytes promised to sessions not yet written (they count against the store limit).
  uint64_t reserved_bytes() const;
  void drop(std::map<uint64_t, session>::iterator it);

  std::string dir_;  ///< .../blobs
  blob_limits limits_;
  const clock& clock_;
  uint64_t stored_bytes_ = 0;
  uint64_t next_upload_ = 1;
  std::map<uint64_t, session> sessions_;
};

}  // namespace framehive
