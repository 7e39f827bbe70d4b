#pragma once

// What a node sends back when a video is done: every file its analyzers wrote
// under the video's output folder (VIDEO_DIR/ANALYZER/NAME), one chunk at a
// time, strictly in order. A plain class: the node actor asks it for the next
// chunk, sends it, and tells it the offset the coordinator accepted.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "actors/messages.hpp"
#include "common/result.hpp"

namespace framehive {

class artifact_sender {
 public:
  struct file {
    std::string analyzer;
    std::string name;
    std::string path;
    uint64_t size = 0;
  };

  /// Lists the files below `video_dir` (one folder per analyzer; anything
  /// else is ignored). A missing folder has no artifacts.
  static result<artifact_sender, std::string> scan(const std::string& video_dir, uint64_t video,
                                                   uint64_t epoch, uint32_t chunk_bytes = blob_chunk_bytes);

  /// The chunk to send now (read from the file: at most chunk_bytes in
  /// memory), or nullopt when every file is sent. A file that cannot be read
  /// is an error naming it.
  result<std::optional<artifact_chunk>, std::string> next() const;
  /// The coordinator took the chunk and expects `next_offset`; the file is
  /// complete when that reaches its size.
  void on_accepted(uint64_t next_offset);

  /// The coordinator lost the file in progress (it restarted): send it again from byte 0.
  /// False if it was at byte 0 already (nothing to gain by sending it again).
  bool restart_file() noexcept;

  bool done() const noexcept { return current_ >= files_.size(); }
  const std::vector<file>& files() const noexcept { return files_; }
  /// Removes the listed files, then the folders left empty (up to and including `video_dir`).
  void remove_local() const;

 private:
  std::string video_dir_;
  uint64_t video_ = 0;
  uint64_t epoch_ = 0;
  uint32_t chunk_bytes_ = blob_chunk_bytes;
  std::vector<file> files_;
  std::size_t current_ = 0;
  uint64_t offset_ = 0;
};

}  // namespace framehive
