#include "node/artifact_sender.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <system_error>

namespace fs = std::filesystem;

namespace framehive {

result<artifact_sender, std::string> artifact_sender::scan(const std::string& video_dir, uint64_t video,
                                                           uint64_t epoch, uint32_t chunk_bytes) {
  artifact_sender s;
  s.video_dir_ = video_dir;
  s.video_ = video;
  s.epoch_ = epoch;
  s.chunk_bytes_ = std::max<uint32_t>(1, chunk_bytes);
  std::error_code ec;
  if (!fs::is_directory(video_dir, ec))
    return s;
  for (const auto& a : fs::directory_iterator(video_dir, ec)) {
    if (!a.is_directory(ec))
      continue;
    for (const auto& f : fs::directory_iterator(a.path(), ec))
      if (f.is_regular_file(ec))
        s.files_.push_back({a.path().filename().string(), f.path().filename().string(), f.path().string(),
                            static_cast<uint64_t>(f.file_size(ec))});
    if (ec)
      return "cannot list artifacts in " + a.path().string() + ": " + ec.message();
  }
  if (ec)
    return "cannot list artifacts in " + video_dir + ": " + ec.message();
  std::sort(s.files_.begin(), s.files_.end(),
            [](const file& x, const file& y) { return x.path < y.path; });
  return s;
}

result<std::optional<artifact_chunk>, std::string> artifact_sender::next() const {
  if (done())
    return std::optional<artifact_chunk>{};
  const auto& f = files_[current_];
  artifact_chunk c;
  c.video = video_;
  c.epoch = epoch_;
  c.analyzer = f.analyzer;
  c.name = f.name;
  c.total = f.size;
  c.offset = offset_;
  const uint64_t n = std::min<uint64_t>(chunk_bytes_, f.size - std::min(f.size, offset_));
  c.data.resize(n);
  std::ifstream in(f.path, std::ios::binary);
  if (!in || !in.seekg(static_cast<std::streamoff>(offset_)) ||
      !in.read(c.data.data(), static_cast<std::streamsize>(n)))
    return "cannot read artifact " + f.path + " at offset " + std::to_string(offset_);
  return std::optional<artifact_chunk>{std::move(c)};
}

void artifact_sender::on_accepted(uint64_t next_offset) {
  if (done())
    return;
  offset_ = next_offset;
  if (offset_ >= files_[current_].size) {
    ++current_;
    offset_ = 0;
  }
}

bool artifact_sender::restart_file() noexcept {
  if (done() || offset_ == 0)
    return false;
  offset_ = 0;
  return true;
}

void artifact_sender::remove_local() const {
  std::error_code ec;
  for (const auto& f : files_)
    fs::remove(f.path, ec);
  if (!fs::is_directory(video_dir_, ec))
    return;
  // What is left is the analyzers' own working state (clips' .work: pieces
  // and checkpoints), which no one needs once the video is done.
  for (const auto& a : fs::directory_iterator(video_dir_, ec)) {
    if (!a.is_directory(ec))
      continue;
    for (const auto& w : fs::directory_iterator(a.path(), ec))
      if (w.is_directory(ec) && w.path().filename().string().rfind('.', 0) == 0)
        fs::remove_all(w.path(), ec);
    if (fs::is_empty(a.path(), ec))
      fs::remove(a.path(), ec);
  }
  if (fs::is_empty(video_dir_, ec))
    fs::remove(video_dir_, ec);
  // The job folder too, once its last video is gone.
  const auto job_dir = fs::path(video_dir_).parent_path();
  if (fs::is_empty(job_dir, ec))
    fs::remove(job_dir, ec);
}

}  // namespace framehive
