#include "node/input_policy.hpp"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "media/input_url.hpp"

namespace fs = std::filesystem;

namespace framehive {

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& x : items)
    out += (out.empty() ? "" : ", ") + x;
  return out;
}

std::string refused(const std::string& input, const std::string& why) {
  return "input '" + input + "' refused by the node's input policy: " + why;
}

/// Symlinks a path may pass through before it is refused (as the kernel's ELOOP).
constexpr int max_symlink_hops = 40;

/// `p` with every symlink on the way followed, "." and ".." applied to the
/// real folders, as far as the path exists. A missing tail is kept as written,
/// and a dangling symlink is followed to where its target would be: a missing
/// file is judged by where it would be read, so a refusal tells nothing about
/// what exists outside, and a file created there later cannot slip through.
result<fs::path, std::string> resolve_links(fs::path p) {
  for (int hops = 0; hops <= max_symlink_hops;) {
    fs::path done = p.root_path();
    const fs::path rel = p.relative_path();
    bool followed = false;
    for (auto it = rel.begin(); it != rel.end() && !followed; ++it) {
      if (it->empty() || *it == ".")
        continue;
      if (*it == "..") {
        done = done.parent_path();
        continue;
      }
      const fs::path next = done / *it;
      std::error_code ec;
      const auto st = fs::symlink_status(next, ec);
      if (ec && st.type() != fs::file_type::not_found && ec != std::errc::not_a_directory)
        return "cannot resolve '" + next.string() + "': " + ec.message();
      if (fs::is_symlink(st)) {
        const fs::path target = fs::read_symlink(next, ec);
        if (ec)
          return "cannot read the symlink '" + next.string() + "': " + ec.message();
        fs::path rest;
        for (auto j = std::next(it); j != rel.end(); ++j)
          rest /= *j;
        p = (target.is_absolute() ? target : done / target) / rest;
        ++hops;
        followed = true;
        continue;
      }
      done = next;
    }
    if (!followed)
      return done.lexically_normal();
  }
  return "cannot resolve '" + p.string() + "': too many levels of symbolic links";
}

result<fs::path, std::string> resolve(const std::string& path) {
  std::error_code ec;
  fs::path abs = fs::absolute(fs::path(path), ec);
  if (ec)
    return "cannot resolve '" + path + "': " + ec.message();
  return resolve_links(abs);
}

}  // namespace

bool is_below(const std::string& path, const std::string& root) {
  const fs::path p = fs::path(path).lexically_normal();
  fs::path r = fs::path(root).lexically_normal();
  if (!r.has_filename() && r != r.root_path())
    r = r.parent_path();  // "/data/in/" -> "/data/in"
  auto pi = p.begin();
  for (auto ri = r.begin(); ri != r.end(); ++ri, ++pi)
    if (pi == p.end() || *pi != *ri)
      return false;
  return true;
}

result<unit, std::string> check_input(const std::string& input, const std::vector<std::string>& protocols,
                                      const std::vector<std::string>& roots) {
  const auto where = media::locate_input(input);
  if (std::find(protocols.begin(), protocols.end(), where.scheme) == protocols.end())
    return refused(input,
                   "protocol '" + where.scheme + "' is not in allowed-protocols (" + join(protocols) + ")");
  if (!where.local() || roots.empty())
    return unit{};
  auto real = resolve(where.path);
  if (!real)
    return refused(input, real.error());
  for (const auto& root : roots) {
    auto r = resolve(root);
    if (r && is_below(real->string(), r->string()))
      return unit{};
  }
  std::error_code ec;
  const fs::path given = fs::absolute(fs::path(where.path), ec).lexically_normal();
  const std::string what = given == *real
                               ? "'" + real->string() + "' is"
                               : "'" + where.path + "' resolves to '" + real->string() + "', which is";
  return refused(input, what + " not below allowed-roots (" + join(roots) + ")");
}

std::string video_output_dir(const std::string& output_dir, uint64_t job, uint64_t video) {
  return output_dir + "/job-" + std::to_string(job) + "/video-" + std::to_string(video);
}

result<std::string, std::string> analyzer_output_dir(const std::string& video_dir,
                                                     const std::string& analyzer) {
  const bool plain = !analyzer.empty() && analyzer != "." && analyzer != ".." &&
                     analyzer.find('/') == std::string::npos && analyzer.find('\0') == std::string::npos;
  const std::string folder = (fs::path(video_dir) / analyzer).lexically_normal().string();
  if (!plain || !is_below(folder, video_dir))
    return {error_tag,
            "analyzer name '" + analyzer + "' would write outside the video's output folder " + video_dir};
  return folder;
}

bool valid_protocol_name(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
  });
}

}  // namespace framehive
