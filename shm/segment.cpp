#include "shm/segment.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include <boost/interprocess/shared_memory_object.hpp>

#include "shm/ring_layout.hpp"

namespace bip = boost::interprocess;

namespace framehive::shm {

const char* to_string(ring_errc code) noexcept {
  switch (code) {
    case ring_errc::invalid_argument: return "invalid_argument";
    case ring_errc::no_space: return "no_space";
    case ring_errc::too_large: return "too_large";
    case ring_errc::already_exists: return "already_exists";
    case ring_errc::not_found: return "not_found";
    case ring_errc::bad_layout: return "bad_layout";
    case ring_errc::consumer_busy: return "consumer_busy";
    case ring_errc::table_full: return "table_full";
    case ring_errc::producer_busy: return "producer_busy";
    case ring_errc::system_error: return "system_error";
  }
  return "unknown";
}

namespace {

ring_error sys_error(const std::string& what, int err) {
  return {ring_errc::system_error, what + ": " + std::strerror(err)};
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

}  // namespace

segment::segment(segment&& other) noexcept
    : region_(std::move(other.region_)), name_(std::move(other.name_)), owner_(other.owner_) {
  other.owner_ = false;
}

segment& segment::operator=(segment&& other) noexcept {
  if (this != &other) {
    if (owner_)
      bip::shared_memory_object::remove(name_.c_str());
    region_ = std::move(other.region_);
    name_ = std::move(other.name_);
    owner_ = other.owner_;
    other.owner_ = false;
  }
  return *this;
}

segment::~segment() {
  // Unmap first (region_'s destructor runs after this body), then unlink: the
  // name goes away at once, the memory when the last mapping closes.
  if (owner_)
    bip::shared_memory_object::remove(name_.c_str());
}

result<segment, ring_error> segment::create(const std::string& name, std::size_t bytes,
                                            const std::string& shm_dir) {
  if (auto avail = free_bytes(shm_dir); avail && *avail < bytes) {
    return ring_error{ring_errc::no_space,
                      "ring '" + name + "' needs " + format_bytes(bytes) + " but " + shm_dir +
                          " has only " + format_bytes(*avail) + " free"};
  }
  try {
    bip::permissions perm;
    perm.set_permissions(0600);
    bip::shared_memory_object shm(bip::create_only, name.c_str(), bip::read_write, perm);
    segment seg;
    seg.name_ = name;
    seg.owner_ = true;  // from here on, failures remove the name again
    int fd = shm.get_mapping_handle().handle;
    ::fchmod(fd, 0600);  // independent of the umask
    // posix_fallocate reserves the tmpfs pages now: running out of /dev/shm is
    // an error here instead of a SIGBUS in whichever process touches the page.
    if (int rc = posix_fallocate(fd, 0, static_cast<off_t>(bytes)); rc != 0) {
      if (rc == ENOSPC)
        return ring_error{ring_errc::no_space, "ring '" + name + "' needs " + format_bytes(bytes) +
                                                   " but " + shm_dir + " ran out of space"};
      return sys_error("cannot reserve ring '" + name + "'", rc);
    }
    seg.region_ = bip::mapped_region(shm, bip::read_write);
    // Pre-fault the page tables so the first frames do not pay for it.
    if (::madvise(seg.region_.get_address(), seg.region_.get_size(), MADV_POPULATE_WRITE) != 0)
      std::memset(seg.region_.get_address(), 0, seg.region_.get_size());
    return seg;
  } catch (const bip::interprocess_exception& e) {
    if (e.get_error_code() == bip::already_exists_error)
      return ring_error{ring_errc::already_exists, "ring '" + name + "' already exists"};
    return ring_error{ring_errc::system_error,
                      "cannot create ring '" + name + "': " + std::string(e.what())};
  }
}

result<segment, ring_error> segment::open(const std::string& name) {
  try {
    bip::shared_memory_object shm(bip::open_only, name.c_str(), bip::read_write);
    segment seg;
    seg.name_ = name;
    seg.region_ = bip::mapped_region(shm, bip::read_write);
    ::madvise(seg.region_.get_address(), seg.region_.get_size(), MADV_POPULATE_WRITE);
    return seg;
  } catch (const bip::interprocess_exception& e) {
    if (e.get_error_code() == bip::not_found_error)
      return ring_error{ring_errc::not_found, "ring '" + name + "' does not exist"};
    return ring_error{ring_errc::system_error,
                      "cannot open ring '" + name + "': " + std::string(e.what())};
  }
}

std::optional<uint64_t> free_bytes(const std::string& dir) {
  struct statvfs st{};
  if (statvfs(dir.c_str(), &st) != 0)
    return std::nullopt;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

std::optional<uint64_t> process_start_time(pid_t pid) {
  if (pid <= 0)
    return std::nullopt;
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", static_cast<int>(pid));
  std::ifstream in(path);
  if (!in)
    return std::nullopt;
  std::string line;
  std::getline(in, line);
  // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
  auto close = line.rfind(')');
  if (close == std::string::npos)
    return std::nullopt;
  std::istringstream rest(line.substr(close + 2));
  std::string state;
  rest >> state;  // field 3
  if (state == "Z" || state == "X")
    return std::nullopt;
  std::string field;
  for (int i = 4; i < 22; ++i)
    rest >> field;
  uint64_t start = 0;
  rest >> start;  // field 22
  return start;
}

bool process_alive(pid_t pid, uint64_t start) {
  auto actual = process_start_time(pid);
  if (!actual)
    return false;
  return start == 0 || *actual == start;
}

std::vector<std::string> remove_stale_segments(const std::string& prefix, const std::string& shm_dir) {
  std::vector<std::string> removed;
  DIR* dir = opendir(shm_dir.c_str());
  if (!dir)
    return removed;
  std::vector<std::string> candidates;
  while (dirent* e = readdir(dir)) {
    std::string n = e->d_name;
    if (n.compare(0, prefix.size(), prefix) == 0)
      candidates.push_back(n);
  }
  closedir(dir);
  for (const auto& n : candidates) {
    std::string path = shm_dir + "/" + n;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      continue;
    struct stat st{};
    bool stale = false;
    if (fstat(fd, &st) == 0) {
      bool valid = false;
      if (static_cast<std::size_t>(st.st_size) >= sizeof(ring_header)) {
        void* p = mmap(nullptr, sizeof(ring_header), PROT_READ, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
          auto* hdr = static_cast<const ring_header*>(p);
          valid = hdr->magic.load(std::memory_order_acquire) == ring_magic;
          if (valid)
            stale = !process_alive(static_cast<pid_t>(hdr->owner_pid), hdr->owner_start);
          munmap(p, sizeof(ring_header));
        }
      }
      if (!valid) {
        // Half-created by a process that died before finishing, or not ours:
        // only remove it once it is clearly not being set up right now.
        stale = (std::time(nullptr) - st.st_mtime) > 10;
      }
    }
    ::close(fd);
    if (stale && bip::shared_memory_object::remove(n.c_str()))
      removed.push_back(n);
  }
  return removed;
}

std::string format_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace framehive::shm
