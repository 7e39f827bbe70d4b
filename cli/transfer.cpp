#include "cli/transfer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/chunk_window.hpp"
#include "common/digest.hpp"
#include "common/text.hpp"
#include "media/decoder.hpp"

namespace framehive::cli {

namespace fs = std::filesystem;

namespace {

using clock_type = std::chrono::steady_clock;

/// A one-line progress bar on stderr (bytes, percent, MB/s), redrawn at most
/// ten times a second; silent when not enabled (no terminal, --json).
class progress_meter {
 public:
  progress_meter(std::string label, uint64_t total, bool enabled)
      : label_(printable_utf8(std::move(label))), total_(total), enabled_(enabled) {}

  void update(uint64_t done, bool force = false) {
    if (!enabled_)
      return;
    const auto now = clock_type::now();
    if (!force && now - last_ < std::chrono::milliseconds(100))
      return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double fraction = total_ ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
    const int full = static_cast<int>(fraction * 30 + 0.5);
    std::fprintf(stderr, "\r\033[2K%-24.24s [%s%s] %6.1f/%.1f MB %5.1f%% %7.1f MB/s", label_.c_str(),
                 std::string(static_cast<std::size_t>(full), '#').c_str(),
                 std::string(static_cast<std::size_t>(30 - full), '.').c_str(), done / 1e6, total_ / 1e6,
                 fraction * 100, secs > 0 ? done / 1e6 / secs : 0.0);
    std::fflush(stderr);
  }

  void finish(uint64_t done) {
    if (!enabled_)
      return;
    update(done, true);
    std::fprintf(stderr, "\n");
  }

 private:
  std::string label_;
  uint64_t total_;
  bool enabled_;
  clock_type::time_point start_ = clock_type::now();
  clock_type::time_point last_{};
};

transfer_error local_error(const std::string& path, const std::string& cause) {
  return {printable_utf8(path) + ": " + cause, {}};
}

transfer_error remote_error(const std::string& path, const std::string& what, const caf::error& e) {
  return {printable_utf8(path) + ": " + what + ": " + describe(e), e};
}

/// Closes a file descriptor when it goes out of scope.
struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0)
      ::close(fd);
  }
};

/// Reads exactly `n` bytes at `offset`; fewer only at the end of the file.
ssize_t read_at(int fd, char* out, std::size_t n, uint64_t offset) {
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, out + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -1;
    if (r == 0)
      break;
    got += static_cast<std::size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

/// A name the coordinator sent, usable as one path component inside DIR.
bool safe_component(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos &&
         s.find('\0') == std::string::npos;
}

}  // namespace

result<local_video, transfer_error> prepare_upload(const std::string& path) {
  auto v = prepare_file_upload(path, false);
  if (!v)
    return v;
  media::decoder_options probe;
  probe.allowed_protocols = {"file"};
  if (auto d = media::decoder::open(path, probe); !d)
    return local_error(path, std::string("not a video (") + media::to_string(d.error().code) + ": " +
                                 d.error().detail + ")");
  auto sha = sha256_of_file(path);
  if (!sha)
    return local_error(path, "cannot read: " + sha.error());
  v->sha256 = *sha;
  return v;
}

result<local_video, transfer_error> prepare_file_upload(const std::string& path, bool hash) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (ec || !fs::exists(st))
    return local_error(path, "no such file");
  if (!fs::is_regular_file(st))
    return local_error(path, "not a regular file");
  local_video v{path, fs::path(path).filename().string(), fs::file_size(path, ec), {}};
  if (ec)
    return local_error(path, "cannot read its size: " + ec.message());
  if (v.size == 0)
    return local_error(path, "empty file (0 bytes)");
  if (::access(path.c_str(), R_OK) != 0)
    return local_error(path, std::string("cannot read: ") + std::strerror(errno));
  if (!hash)
    return v;
  auto sha = sha256_of_file(path);
  if (!sha)
    return local_error(path, "cannot read: " + sha.error());
  v.sha256 = *sha;
  return v;
}

namespace {

/// Reads the chunk `c` of the upload of `v`, after checking the file still
/// has the size it was hashed at: the error names the file and the change.
result<std::vector<char>, transfer_error> read_chunk(int fd, const local_video& v, const chunk_span& c) {
  using out = result<std::vector<char>, transfer_error>;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != v.size)
    return out(local_error(v.path, "changed size during the upload (was " + std::to_string(v.size) +
                                       " bytes, now " + std::to_string(st.st_size) +
                                       "); upload abandoned, nothing made visible"));
  // A fresh buffer per chunk: it moves into the message, no copy on the way.
  std::vector<char> data(static_cast<std::size_t>(c.length));
  const ssize_t got = read_at(fd, data.data(), data.size(), c.offset);
  if (got < 0)
    return out(local_error(v.path, std::string("read failed during the upload: ") + std::strerror(errno)));
  if (static_cast<uint64_t>(got) != c.length)
    return out(local_error(v.path, "shrank during the upload (ends at " + std::to_string(c.offset + got) +
                                       " bytes, was " + std::to_string(v.size) +
                                       "); upload abandoned, nothing made visible"));
  return data;
}

}  // namespace

result<upload_outcome, transfer_error> upload(blob_peer& peer, const local_video& v, bool progress) {
  upload_outcome out{"blob:" + v.sha256 + "/" + v.name, false, 0};
  auto offer = peer.begin(upload_begin{v.sha256, v.size, v.name});
  if (!offer)
    return remote_error(v.path, "upload refused", offer.error());
  if (offer->complete) {
    out.already_stored = true;
    return out;
  }
  if (offer->offset > v.size)
    return local_error(v.path, "the coordinator offered to resume at byte " + std::to_string(offer->offset) +
                                   ", past the file's " + std::to_string(v.size) + " bytes");
  fd_guard f{::open(v.path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0)
    return local_error(v.path, std::string("cannot read: ") + std::strerror(errno));
  progress_meter meter(v.name, v.size, progress);
  chunk_window window(offer->offset, v.size, blob_chunk_bytes, transfer_window_chunks);
  auto fail = [&peer](transfer_error e) {
    peer.abandon();
    return e;
  };
  while (!window.done()) {
    while (auto c = window.next()) {
      auto data = read_chunk(f.fd, v, *c);
      if (!data)
        return fail(data.error());
      peer.send_chunk(upload_chunk{offer->upload, c->offset, std::move(*data)});
    }
    const chunk_span oldest = *window.oldest();
    auto next = peer.next_ack();
    if (!next)
      return fail(remote_error(v.path, "upload failed (did the file change while it was read?)", next.error()));
    if (*next != oldest.end() || !window.complete(oldest))
      return fail(local_error(v.path, "the coordinator did not accept the bytes at offset " +
                                          std::to_string(oldest.offset) + " (it expects offset " +
                                          std::to_string(*next) + ")"));
    out.bytes_sent += oldest.length;
    meter.update(window.completed());
  }
  meter.finish(window.completed());
  return out;
}

result<unit, std::string> prepare_output_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return result<unit, std::string>(error_tag, printable_utf8(dir) + ": cannot create the folder: " + ec.message());
  if (!fs::is_directory(dir))
    return result<unit, std::string>(error_tag, printable_utf8(dir) + ": not a folder");
  // access() answers for the real uid; a probe file answers for what will happen.
  const fs::path probe = fs::path(dir) / (".framehive-probe-" + std::to_string(::getpid()));
  fd_guard f{::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
  if (f.fd < 0)
    return result<unit, std::string>(error_tag, printable_utf8(dir) + ": cannot write into the folder: " +
                                                    std::strerror(errno));
  fs::remove(probe, ec);
  return unit{};
}

namespace {

/// Streams a blob into `tmp` with a window of chunk requests in flight,
/// hashing what arrives; the error if a chunk is short, long, or does not
/// line up with the one asked for.
result<std::string, transfer_error> download_to(blob_peer& peer, const artifact_row& row, const fs::path& tmp,
                                                progress_meter& meter) {
  using out_type = result<std::string, transfer_error>;
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out)
    return out_type(local_error(tmp.string(), "cannot create: " + std::string(std::strerror(errno))));
  sha256 hash;
  chunk_window window(0, row.size, blob_chunk_bytes, transfer_window_chunks);
  auto fail = [&peer](transfer_error e) {
    peer.abandon();
    return out_type(std::move(e));
  };
  while (!window.done()) {
    while (auto c = window.next())
      peer.request_chunk(row.sha256, c->offset);
    const chunk_span want = *window.oldest();
    auto c = peer.next_chunk();
    if (!c)
      return fail(remote_error(row.name, "fetch failed", c.error()));
    if (c->offset != want.offset || c->data.size() != want.length || c->size != row.size ||
        !window.complete(want))
      return fail(local_error(row.name, "the coordinator sent a chunk that does not fit the artifact (offset " +
                                            std::to_string(c->offset) + ", " + std::to_string(c->data.size()) +
                                            " bytes, size " + std::to_string(c->size) + "; expected offset " +
                                            std::to_string(want.offset) + ", " + std::to_string(want.length) +
                                            " bytes, size " + std::to_string(row.size) + ")"));
    if (!out.write(c->data.data(), static_cast<std::streamsize>(c->data.size())))
      return fail(local_error(tmp.string(), "write failed (disk full?)"));
    hash.update(c->data.data(), c->data.size());
    meter.update(window.completed());
  }
  out.close();
  if (!out)
    return out_type(local_error(tmp.string(), "write failed (disk full?)"));
  return hash.hex_digest();
}

}  // namespace

result<fetched_file, transfer_error> fetch_artifact(blob_peer& peer, const artifact_row& row,
                                                    const std::string& dir, bool progress) {
  if (!safe_component(row.analyzer) || !safe_component(row.name) || !is_sha256_hex(row.sha256))
    return local_error(row.name, "refused: the coordinator listed an artifact with an unusable name or hash");
  const fs::path folder = fs::path(dir) / ("video-" + std::to_string(row.video)) / row.analyzer;
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec)
    return local_error(folder.string(), "cannot create the folder: " + ec.message());
  const fs::path target = folder / row.name;
  const fs::path tmp = folder / ("." + row.name + ".part-" + std::to_string(::getpid()));
  progress_meter meter(row.name, row.size, progress);
  auto digest = download_to(peer, row, tmp, meter);
  if (!digest || *digest != row.sha256) {
    fs::remove(tmp, ec);
    if (!digest)
      return digest.error();
    return local_error(target.string(), "SHA-256 mismatch: expected " + row.sha256 + ", got " + *digest +
                                            "; the file was deleted");
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return local_error(target.string(), "cannot rename into place: " + ec.message());
  }
  meter.finish(row.size);
  return fetched_file{target.string(), row.size};
}

}  // namespace framehive::cli
