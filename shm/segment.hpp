#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/interprocess/mapped_region.hpp>

#include "common/result.hpp"
#include "shm/errors.hpp"

namespace framehive::shm {

/// Where POSIX shared memory lives on Linux.
inline constexpr const char* default_shm_dir = "/dev/shm";

/// A mapped POSIX shared-memory segment. The creating instance owns the name:
/// its destructor unmaps and removes it; instances that opened it only unmap.
class segment {
 public:
  segment() = default;
  segment(segment&&) noexcept;
  segment& operator=(segment&&) noexcept;
  segment(const segment&) = delete;
  segment& operator=(const segment&) = delete;
  ~segment();

  /// Creates `name` (mode 0600) of `bytes` bytes, reserving the memory up front
  /// (no SIGBUS later when tmpfs fills up) and pre-faulting it.
  static result<segment, ring_error> create(const std::string& name, std::size_t bytes,
                                            const std::string& shm_dir = default_shm_dir);

  /// Maps an existing segment read-write.
  static result<segment, ring_error> open(const std::string& name);

  void* data() const noexcept { return region_.get_address(); }
  std::size_t size() const noexcept { return region_.get_size(); }
  const std::string& name() const noexcept { return name_; }
  bool owner() const noexcept { return owner_; }

  /// Gives up ownership: the destructor will no longer remove the name.
  void disown() noexcept { owner_ = false; }

 private:
  boost::interprocess::mapped_region region_;
  std::string name_;
  bool owner_ = false;
};

/// Free bytes for unprivileged use in `dir` (statvfs), or std::nullopt.
std::optional<uint64_t> free_bytes(const std::string& dir);

/// Start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat),
/// or std::nullopt when no such process runs. A zombie counts as not running.
std::optional<uint64_t> process_start_time(pid_t pid);

/// True when `pid` runs and (if `start` is non-zero) is the same process that
/// had start time `start`, not a later one that reused the number.
bool process_alive(pid_t pid, uint64_t start);

/// Removes segments whose names start with `prefix` and whose creator is no
/// longer running (or that are not valid rings and older than a few seconds).
/// Returns the names removed.
std::vector<std::string> remove_stale_segments(const std::string& prefix,
                                               const std::string& shm_dir = default_shm_dir);

/// Human-readable byte count ("1.5 GiB").
std::string format_bytes(uint64_t bytes);

}  // namespace framehive::shm
