#pragma once

// The node's cache of uploaded videos (blobs named by their SHA-256), as a
// plain class: no CAF, no network. The node actor fetches a blob it lacks
// into a temp file that this class hands out, and the cache checks the hash
// before the blob becomes visible. The folder is bounded in bytes: blobs not
// in use by a running video are evicted least recently used first; a blob in
// use never is. A restarted node finds its blobs again (and removes the temp
// files of downloads it did not finish).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace framehive {

/// Downloads in progress end in this, so a rescan can tell them from blobs.
inline constexpr const char* blob_temp_suffix = ".part";

class blob_cache {
 public:
  /// A cache in `dir` holding at most `max_bytes` of blobs (plus downloads in progress).
  blob_cache(std::string dir, uint64_t max_bytes);

  // -- lifecycle --

  /// Creates the folder if needed, removes leftover temp files and finds the
  /// blobs already there (least recently modified is evicted first).
  result<unit, std::string> open();

  // -- use --

  /// A cached blob: its path, and one more use (release() when done). nullopt: a miss.
  std::optional<std::string> acquire(const std::string& sha256);
  /// One use fewer; a blob with no use may be evicted from now on.
  void release(const std::string& sha256);

  // -- downloads --

  /// True while a download of `sha256` is in progress (another video waits for it).
  bool downloading(const std::string& sha256) const;
  /// Makes room for a `size`-byte download (evicting unused blobs) and returns
  /// the temp path to write it to. Errors: "cache too small: NAME needs X,
  /// cache holds Y" (never fits), or "cache full: ..." (blobs in use hold the room).
  result<std::string, std::string> begin_download(const std::string& sha256, uint64_t size,
                                                  const std::string& name);
  /// Checks size and SHA-256 of the temp file and, when they match, makes it
  /// the blob (in use once, as acquire()). A mismatch deletes the temp file and
  /// the error names the blob.
  result<std::string, std::string> finish_download(const std::string& sha256);
  /// As finish_download(sha256), for a downloader that hashed the bytes as it
  /// wrote them: `digest` is their SHA-256, so the file is not read again.
  result<std::string, std::string> finish_download(const std::string& sha256, const std::string& digest);
  /// Deletes the temp file of a download that will not finish.
  void abort_download(const std::string& sha256);

  // -- properties --

  bool contains(const std::string& sha256) const { return blobs_.count(sha256) > 0; }
  uint32_t use_count(const std::string& sha256) const;
  /// Bytes of blobs plus bytes reserved for downloads.
  uint64_t used_bytes() const noexcept;
  uint64_t max_bytes() const noexcept { return max_bytes_; }
  const std::string& dir() const noexcept { return dir_; }
  /// Blobs in eviction order (first goes first).
  std::vector<std::string> eviction_order() const;

 private:
  struct entry {
    uint64_t size = 0;
    uint32_t uses = 0;
    uint64_t last_use = 0;  ///< a tick of this cache; larger is more recent
  };
  struct download {
    uint64_t size = 0;
    std::string name;
  };

  std::string path_of(const std::string& sha256) const;
  std::string temp_of(const std::string& sha256) const;
  /// finish_download's work; `digest` empty: hash the temp file.
  result<std::string, std::string> finish(const std::string& sha256, const std::string& digest);
  /// Evicts unused blobs until `need` more bytes fit; false if they cannot.
  bool make_room(uint64_t need);

  std::string dir_;
  uint64_t max_bytes_;
  uint64_t tick_ = 0;
  std::map<std::string, entry> blobs_;
  std::map<std::string, download> downloads_;
};

/// Splits "blob:SHA256/NAME" into SHA256 and NAME; nullopt for another input.
/// The error (in the result) names the input when the hash is not 64 lowercase hex characters.
std::optional<result<std::pair<std::string, std::string>, std::string>> parse_blob_input(
    const std::string& input);

/// "12.0 MiB"-style sizes for messages.
std::string format_size(uint64_t bytes);

}  // namespace framehive
