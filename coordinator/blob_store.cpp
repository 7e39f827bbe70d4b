#include "coordinator/blob_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace framehive {

namespace fs = std::filesystem;

namespace {

blob_error fail(errc code, std::string message) {
  return blob_error{code, std::move(message)};
}

std::string sys_error(const std::string& what, const std::string& path, int err) {
  return what + " " + path + ": " + std::strerror(err) +
         (err == ENOSPC || err == EDQUOT ? " (the disk under the blob store is full)" : "");
}

const clock& real_clock() {
  static const steady_clock c;
  return c;
}

}  // namespace

blob_store::blob_store(std::string dir, blob_limits limits, const clock& clk)
    : dir_(std::move(dir)), limits_(limits), clock_(clk) {}

blob_store::~blob_store() {
  while (!sessions_.empty())
    drop(sessions_.begin());
}

result<std::unique_ptr<blob_store>, std::string> blob_store::open(const std::string& dir, blob_limits limits,
                                                                  const clock* clk) {
  const fs::path blobs = fs::path(dir) / "blobs";
  std::error_code ec;
  fs::create_directories(blobs / "partial", ec);
  if (ec)
    return result<std::unique_ptr<blob_store>, std::string>(
        error_tag, "blob store: cannot create " + (blobs / "partial").string() + ": " + ec.message());
  std::unique_ptr<blob_store> s(new blob_store(blobs.string(), limits, clk ? *clk : real_clock()));
  // Partial uploads of an earlier run: their sessions (and hashers) are gone,
  // so nobody can finish them.
  for (const auto& e : fs::directory_iterator(blobs / "partial", ec))
    fs::remove(e.path(), ec);
  for (const auto& e : fs::directory_iterator(blobs, ec))
    if (e.is_regular_file(ec) && is_sha256_hex(e.path().filename().string()))
      s->stored_bytes_ += e.file_size(ec);
  return s;
}

std::string blob_store::path_of(const std::string& sha256) const {
  return dir_ + "/" + sha256;
}

std::string blob_store::partial_dir() const {
  return dir_ + "/partial";
}

bool blob_store::contains(const std::string& sha256) const {
  std::error_code ec;
  return is_sha256_hex(sha256) && fs::is_regular_file(path_of(sha256), ec);
}

uint64_t blob_store::reserved_bytes() const {
  uint64_t n = 0;
  for (const auto& [id, s] : sessions_)
    n += s.size - s.written;
  return n;
}

// -- writing ---------------------------------------------------------------------------

blob_result<blob_progress> blob_store::begin(const std::string& sha256, uint64_t size) {
  if (!is_sha256_hex(sha256))
    return fail(errc::invalid_request,
                "'" + sha256.substr(0, 80) + "' is not a SHA-256 (64 lowercase hex digits)");
  remove_stale();
  if (contains(sha256)) {
    blob_progress p;
    p.offset = size;
    p.complete = true;
    p.sha256 = sha256;
    return p;
  }
  for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
    if (it->second.sha256 != sha256)
      continue;
    if (it->second.size != size) {  // the same hash with another size: one of them lies; start over
      drop(it);
      break;
    }
    it->second.last_ns = clock_.now_ns();
    return blob_progress{it->first, it->second.written, false, {}};
  }
  return start(sha256, size);
}

blob_result<blob_progress> blob_store::begin_unnamed(uint64_t size) {
  remove_stale();
  return start({}, size);
}

blob_result<blob_progress> blob_store::start(std::string sha256, uint64_t size) {
  if (size > limits_.max_blob_bytes)
    return fail(errc::over_limit, std::to_string(size) +
                                      " bytes is over the blob size limit ([storage] "
                                      "max-blob-bytes = " +
                                      std::to_string(limits_.max_blob_bytes) + ")");
  const uint64_t taken = stored_bytes_ + reserved_bytes();
  if (taken + size > limits_.max_store_bytes || taken + size < taken)
    return fail(errc::over_limit, "storing " + std::to_string(size) +
                                      " more bytes would exceed the store "
                                      "size limit ([storage] max-store-bytes = " +
                                      std::to_string(limits_.max_store_bytes) + ", " + std::to_string(taken) +
                                      " in use)");
  if (sessions_.size() >= limits_.max_sessions)
    return fail(errc::over_limit, "already " + std::to_string(sessions_.size()) +
                                      " uploads in progress (the store's limit); try again later");
  const uint64_t id = next_upload_++;
  session s;
  s.path = partial_dir() + "/" + (sha256.empty() ? "upload-" + std::to_string(id) : sha256);
  s.sha256 = std::move(sha256);
  s.size = size;
  s.fd = ::open(s.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (s.fd < 0)
    return fail(errc::internal, "blob store: " + sys_error("cannot create", s.path, errno));
  s.hasher = std::make_unique<framehive::sha256>();
  s.last_ns = clock_.now_ns();
  sessions_.emplace(id, std::move(s));
  return blob_progress{id, 0, false, {}};
}

blob_result<blob_progress> blob_store::write(uint64_t upload, uint64_t offset, const char* data,
                                             std::size_t size) {
  auto it = sessions_.find(upload);
  if (it == sessions_.end())
    return fail(errc::not_found, "no upload session " + std::to_string(upload) +
                                     " (finished, failed or idle too long; begin again)");
  session& s = it->second;
  if (size > blob_chunk_bytes)
    return fail(errc::invalid_request,
                "a chunk of " + std::to_string(size) + " bytes is over " + std::to_string(blob_chunk_bytes));
  if (offset != s.written)
    return fail(errc::invalid_request, "upload " + std::to_string(upload) + ": chunk at offset " +
                                           std::to_string(offset) + ", expected " +
                                           std::to_string(s.written));
  if (size > s.size - s.written) {
    const uint64_t announced = s.size;  // `s` goes with its session
    drop(it);
    return fail(errc::invalid_request, "upload " + std::to_string(upload) + ": more bytes than the " +
                                           std::to_string(announced) + " announced; discarded");
  }
  // The chunk is the buffer (at most blob_chunk_bytes): it goes straight to
  // the file, and memory stays bounded whatever the blob's size.
  for (std::size_t done = 0; done < size;) {
    const ssize_t n = ::write(s.fd, data + done, size - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      const std::string why = sys_error("cannot write", s.path, errno);
      drop(it);
      return fail(errc::internal, "blob store: " + why + "; upload discarded");
    }
    done += static_cast<std::size_t>(n);
  }
  s.hasher->update(data, size);
  s.written += size;
  s.last_ns = clock_.now_ns();
  if (s.written < s.size)
    return blob_progress{upload, s.written, false, {}};
  return finish(upload, s);
}

blob_result<blob_progress> blob_store::finish(uint64_t upload, session& s) {
  auto it = sessions_.find(upload);
  const uint64_t size = s.size;
  const std::string got = s.hasher->hex_digest();
  if (!s.sha256.empty() && got != s.sha256) {
    const std::string expected = s.sha256;  // `s` goes with its session
    drop(it);
    return fail(errc::invalid_request, "upload " + std::to_string(upload) + ": the bytes' SHA-256 is " + got +
                                           ", not " + expected + " as announced; discarded");
  }
  // Durable before it is visible: a crash after the rename must not leave a short blob.
  int err = ::fsync(s.fd) == 0 ? 0 : errno;
  if (::close(s.fd) != 0 && err == 0)
    err = errno;
  s.fd = -1;
  if (err != 0) {
    const std::string why = sys_error("cannot write", s.path, err);
    drop(it);
    return fail(errc::internal, "blob store: " + why + "; upload discarded");
  }
  const std::string final_path = path_of(got);
  if (contains(got)) {  // the same bytes arrived another way meanwhile: keep one copy
    drop(it);
  } else {
    if (::rename(s.path.c_str(), final_path.c_str()) != 0) {
      const std::string why = sys_error("cannot rename into place", s.path, errno);
      drop(it);
      return fail(errc::internal, "blob store: " + why);
    }
    stored_bytes_ += size;
    sessions_.erase(it);
  }
  blob_progress p;  // `s` is gone with its session
  p.upload = upload;
  p.offset = size;
  p.complete = true;
  p.sha256 = got;
  return p;
}

void blob_store::drop(std::map<uint64_t, session>::iterator it) {
  if (it->second.fd >= 0)
    ::close(it->second.fd);
  ::unlink(it->second.path.c_str());
  sessions_.erase(it);
}

void blob_store::abort(uint64_t upload) {
  if (auto it = sessions_.find(upload); it != sessions_.end())
    drop(it);
}

std::size_t blob_store::remove_stale() {
  const uint64_t now = clock_.now_ns();
  const uint64_t limit = to_ns(limits_.stale_after);
  std::size_t n = 0;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    auto next = std::next(it);
    if (now - it->second.last_ns > limit) {
      drop(it);
      ++n;
    }
    it = next;
  }
  return n;
}

// -- reading ---------------------------------------------------------------------------

blob_result<blob_chunk> blob_store::read(const std::string& sha256, uint64_t offset,
                                         uint32_t max_bytes) const {
  if (!is_sha256_hex(sha256))
    return fail(errc::invalid_request,
                "'" + sha256.substr(0, 80) + "' is not a SHA-256 (64 lowercase hex digits)");
  const std::string path = path_of(sha256);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    return fail(errc::not_found, "no blob " + sha256 + " in the store");
  if (fd < 0)
    return fail(errc::internal, "blob store: " + sys_error("cannot open", path, errno));
  blob_chunk c;
  c.offset = offset;
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return fail(errc::internal, "blob store: " + sys_error("cannot stat", path, err));
  }
  c.size = static_cast<uint64_t>(st.st_size);
  if (offset < c.size) {
    const uint64_t want = std::min<uint64_t>({c.size - offset, max_bytes, blob_chunk_bytes});
    c.data.resize(want);
    std::size_t got = 0;
    while (got < want) {
      const ssize_t n = ::pread(fd, c.data.data() + got, want - got, static_cast<off_t>(offset + got));
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0) {
        const int err = errno;
        ::close(fd);
        return fail(errc::internal, "blob store: " + sys_error("cannot read", path, err));
      }
      if (n == 0)
        break;
      got += static_cast<std::size_t>(n);
    }
    c.data.resize(got);
  }
  ::close(fd);
  return c;
}

bool blob_store::remove(const std::string& sha256) {
  if (!is_sha256_hex(sha256))
    return false;
  std::error_code ec;
  const auto size = fs::file_size(path_of(sha256), ec);
  if (ec || !fs::remove(path_of(sha256), ec))
    return false;
  stored_bytes_ -= std::min<uint64_t>(stored_bytes_, size);
  return true;
}

}  // namespace framehive
