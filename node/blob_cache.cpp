#include "node/blob_cache.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "common/digest.hpp"

namespace fs = std::filesystem;

namespace framehive {

namespace {

constexpr const char* blob_prefix = "blob:";

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

std::string format_size(uint64_t bytes) {
  char buf[64];
  if (bytes < (1u << 10))
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(bytes));
  else if (bytes < (1u << 20))
    std::snprintf(buf, sizeof(buf), "%.1f KiB", static_cast<double>(bytes) / (1u << 10));
  else if (bytes < (1ull << 30))
    std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1u << 20));
  else
    std::snprintf(buf, sizeof(buf), "%.1f GiB", static_cast<double>(bytes) / (1ull << 30));
  return buf;
}

std::optional<result<std::pair<std::string, std::string>, std::string>> parse_blob_input(
    const std::string& input) {
  using out = result<std::pair<std::string, std::string>, std::string>;
  if (input.rfind(blob_prefix, 0) != 0)
    return std::nullopt;
  const std::string rest = input.substr(std::char_traits<char>::length(blob_prefix));
  const auto slash = rest.find('/');
  std::string sha = rest.substr(0, slash);
  std::string name = slash == std::string::npos ? sha : rest.substr(slash + 1);
  if (!is_sha256_hex(sha))
    return out{"input '" + input + "': '" + sha + "' is not a SHA-256 (64 lowercase hex characters)"};
  return out{std::make_pair(std::move(sha), std::move(name))};
}

blob_cache::blob_cache(std::string dir, uint64_t max_bytes) : dir_(std::move(dir)), max_bytes_(max_bytes) {}

std::string blob_cache::path_of(const std::string& sha256) const {
  return (fs::path(dir_) / sha256).string();
}

std::string blob_cache::temp_of(const std::string& sha256) const {
  return path_of(sha256) + blob_temp_suffix;
}

result<unit, std::string> blob_cache::open() {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec)
    return "cannot create the blob cache " + dir_ + ": " + ec.message();
  struct found {
    std::string sha;
    uint64_t size;
    fs::file_time_type mtime;
  };
  std::vector<found> seen;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (ends_with(name, blob_temp_suffix)) {
      fs::remove(e.path(), ec);  // a download an earlier run did not finish
      continue;
    }
    if (!e.is_regular_file(ec) || !is_sha256_hex(name))
      continue;  // not ours: left alone, not counted
    seen.push_back({name, static_cast<uint64_t>(e.file_size(ec)), e.last_write_time(ec)});
  }
  if (ec)
    return "cannot read the blob cache " + dir_ + ": " + ec.message();
  std::sort(seen.begin(), seen.end(), [](const found& a, const found& b) { return a.mtime < b.mtime; });
  blobs_.clear();
  for (const auto& f : seen)
    blobs_[f.sha] = entry{f.size, 0, ++tick_};
  make_room(0);  // a smaller limit than the last run's
  return unit{};
}

std::optional<std::string> blob_cache::acquire(const std::string& sha256) {
  auto it = blobs_.find(sha256);
  if (it == blobs_.end())
    return std::nullopt;
  std::error_code ec;
  if (!fs::is_regular_file(path_of(sha256), ec)) {  // removed behind our back
    if (it->second.uses == 0)
      blobs_.erase(it);
    return std::nullopt;
  }
  ++it->second.uses;
  it->second.last_use = ++tick_;
  return path_of(sha256);
}

void blob_cache::release(const std::string& sha256) {
  if (auto it = blobs_.find(sha256); it != blobs_.end() && it->second.uses > 0) {
    --it->second.uses;
    it->second.last_use = ++tick_;
  }
}

bool blob_cache::downloading(const std::string& sha256) const {
  return downloads_.count(sha256) > 0;
}

uint32_t blob_cache::use_count(const std::string& sha256) const {
  auto it = blobs_.find(sha256);
  return it == blobs_.end() ? 0 : it->second.uses;
}

uint64_t blob_cache::used_bytes() const noexcept {
  uint64_t n = 0;
  for (const auto& [sha, e] : blobs_)
    n += e.size;
  for (const auto& [sha, d] : downloads_)
    n += d.size;
  return n;
}

std::vector<std::string> blob_cache::eviction_order() const {
  std::vector<std::pair<uint64_t, std::string>> order;
  for (const auto& [sha, e] : blobs_)
    order.emplace_back(e.last_use, sha);
  std::sort(order.begin(), order.end());
  std::vector<std::string> out;
  for (auto& [t, sha] : order)
    out.push_back(std::move(sha));
  return out;
}

bool blob_cache::make_room(uint64_t need) {
  for (const auto& sha : eviction_order()) {
    if (used_bytes() + need <= max_bytes_)
      return true;
    if (blobs_.at(sha).uses > 0)
      continue;  // a running video reads it
    std::error_code ec;
    fs::remove(path_of(sha), ec);
    blobs_.erase(sha);
  }
  return used_bytes() + need <= max_bytes_;
}

result<std::string, std::string> blob_cache::begin_download(const std::string& sha256, uint64_t size,
                                                            const std::string& name) {
  if (size > max_bytes_)
    return {error_tag, "cache too small: " + name + " needs " + format_size(size) + ", cache holds " +
                           format_size(max_bytes_)};
  if (downloading(sha256))
    return {error_tag, "blob " + sha256 + " (" + name + ") is already being fetched"};
  if (!make_room(size))
    return {error_tag, "cache full: " + name + " needs " + format_size(size) + ", but blobs in use hold " +
                           format_size(used_bytes()) + " of the " + format_size(max_bytes_) + " cache"};
  std::error_code ec;
  fs::remove(temp_of(sha256), ec);
  downloads_[sha256] = download{size, name};
  return temp_of(sha256);
}

result<std::string, std::string> blob_cache::finish_download(const std::string& sha256) {
  return finish(sha256, {});
}

result<std::string, std::string> blob_cache::finish_download(const std::string& sha256,
                                                             const std::string& digest) {
  if (!is_sha256_hex(digest))  // never trust an empty or malformed one: hash the file instead
    return finish(sha256, {});
  return finish(sha256, digest);
}

result<std::string, std::string> blob_cache::finish(const std::string& sha256, const std::string& known_digest) {
  auto it = downloads_.find(sha256);
  if (it == downloads_.end())
    return {error_tag, "blob " + sha256 + " is not being fetched"};
  const download d = it->second;
  downloads_.erase(it);
  const std::string temp = temp_of(sha256);
  std::error_code ec;
  const uint64_t size = fs::file_size(temp, ec);
  auto fail = [&](const std::string& why) -> result<std::string, std::string> {
    fs::remove(temp, ec);
    return {error_tag, "blob " + sha256 + " (" + d.name + "): " + why};
  };
  if (ec)
    return fail("cannot read the fetched file: " + ec.message());
  if (size != d.size)
    return fail("fetched " + std::to_string(size) + " bytes, expected " + std::to_string(d.size));
  auto digest = known_digest.empty() ? sha256_of_file(temp) : result<std::string, std::string>(known_digest);
  if (!digest)
    return fail(digest.error());
  if (*digest != sha256)
    return fail("SHA-256 mismatch on arrival (got " + *digest + "); discarded");
  fs::rename(temp, path_of(sha256), ec);
  if (ec)
    return fail("cannot move it into the cache: " + ec.message());
  auto& e = blobs_[sha256];  // (replaces an equal copy, whose users keep their use)
  e.size = size;
  ++e.uses;
  e.last_use = ++tick_;
  return path_of(sha256);
}

void blob_cache::abort_download(const std::string& sha256) {
  if (downloads_.erase(sha256) == 0)
    return;
  std::error_code ec;
  fs::remove(temp_of(sha256), ec);
}

}  // namespace framehive
