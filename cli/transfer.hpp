#pragma once

// The CLI's side of the data path (issue 12): uploading a local video into the
// coordinator's content-addressed store, and fetching a job's artifacts from
// it. Both keep a small window of chunk requests in flight (chunk_window:
// transfer_window_chunks of blob_chunk_bytes), so the link stays busy while
// memory stays bounded whatever the file's size, and both check SHA-256: the
// coordinator checks an upload, this side checks every artifact it writes.

#include <cstdint>
#include <string>
#include <vector>

#include "actors/messages.hpp"
#include "common/result.hpp"

namespace framehive::cli {

/// The coordinator requests a transfer needs; the CLI's session implements
/// them (tests fake them). Chunk requests are sent without waiting; their
/// replies are taken in the order the requests were sent (one coordinator
/// actor answers them one by one over one connection).
class blob_peer {
 public:
  virtual ~blob_peer() = default;
  virtual caf::expected<upload_offer> begin(const upload_begin& x) = 0;
  /// Sends a chunk of an upload; its reply comes from next_ack().
  virtual void send_chunk(upload_chunk x) = 0;
  /// The reply to the oldest chunk sent and not yet answered: the next offset
  /// the coordinator expects, or why it refused the chunk.
  virtual caf::expected<uint64_t> next_ack() = 0;
  /// Asks for the chunk of a stored blob at `offset`; it comes from next_chunk().
  virtual void request_chunk(const std::string& sha256, uint64_t offset) = 0;
  /// The reply to the oldest chunk request not yet answered.
  virtual caf::expected<blob_chunk> next_chunk() = 0;
  /// Forgets every request not yet answered (after a failure): their replies,
  /// if they still come, are never taken.
  virtual void abandon() = 0;
};

/// Why a transfer failed: a message naming the file and the cause, and the
/// coordinator's error if it refused (empty when the problem is local).
struct transfer_error {
  std::string message;
  caf::error cause;
};

/// A local video, checked before any of its bytes leave this machine.
struct local_video {
  std::string path;  ///< as the user gave it
  std::string name;  ///< the file name, shown in the job's input
  uint64_t size = 0;
  std::string sha256;
};

/// Checks `path` is a readable, non-empty regular file that FFmpeg opens as a
/// video (probed locally), then hashes it.
result<local_video, transfer_error> prepare_upload(const std::string& path);

/// As prepare_upload for a file that is not a video (a detect model's files):
/// readable, regular, not empty; hashed if `hash`. Uploaded the same way.
result<local_video, transfer_error> prepare_file_upload(const std::string& path, bool hash = true);

/// What an upload did.
struct upload_outcome {
  std::string input;         ///< "blob:SHA256/NAME", the job's input
  bool already_stored = false;  ///< the store had these bytes; nothing was sent
  uint64_t bytes_sent = 0;
};

/// Uploads `v` from the offset the coordinator offers, re-checking the file's
/// size before each chunk is read (a file that shrinks or grows fails the
/// upload, and the coordinator, which checks size and SHA-256, never stores
/// it); a progress bar when `progress` (a terminal).
result<upload_outcome, transfer_error> upload(blob_peer& peer, const local_video& v, bool progress);

/// One artifact written by fetch_artifact.
struct fetched_file {
  std::string path;
  uint64_t size = 0;
};

/// Downloads `row` into DIR/video-V/ANALYZER/NAME through a temporary name,
/// verifying size and SHA-256 before renaming; on a mismatch nothing is left.
/// Names from the coordinator that could leave DIR ("..", "/") are refused.
result<fetched_file, transfer_error> fetch_artifact(blob_peer& peer, const artifact_row& row,
                                                    const std::string& dir, bool progress);

/// Creates `dir` if needed and checks a file can be written into it; the
/// error names the folder and the cause.
result<unit, std::string> prepare_output_dir(const std::string& dir);

}  // namespace framehive::cli
