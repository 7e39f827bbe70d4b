#include "bench/proc_meter.hpp"

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace framehive::bench {

namespace {

struct proc_stat {
  pid_t pid = 0;
  pid_t ppid = 0;
  uint64_t ticks = 0;
  uint64_t rss_pages = 0;
};

bool read_stat(pid_t pid, proc_stat& out) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line))
    return false;
  // The command name may contain spaces and parentheses: fields start after the last ')'.
  auto close = line.rfind(')');
  if (close == std::string::npos)
    return false;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  std::vector<std::string> f;
  while (rest >> field)
    f.push_back(field);
  // f[0] is field 3 (state): field k is f[k - 3].
  if (f.size() < 22)
    return false;
  out.pid = pid;
  out.ppid = static_cast<pid_t>(std::stol(f[1]));
  out.ticks = std::stoull(f[11]) + std::stoull(f[12]);
  out.rss_pages = std::stoull(f[21]);
  return true;
}

uint64_t read_pss_kb(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
  std::ifstream in(path);
  std::string key;
  uint64_t kb = 0;
  while (in >> key) {
    if (key == "Pss:") {
      in >> kb;
      return kb;
    }
    in.ignore(1 << 12, '\n');
  }
  return 0;
}

std::vector<proc_stat> all_processes() {
  std::vector<proc_stat> out;
  DIR* d = opendir("/proc");
  if (!d)
    return out;
  while (auto* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0)
      continue;
    proc_stat s;
    if (read_stat(static_cast<pid_t>(pid), s))
      out.push_back(s);
  }
  closedir(d);
  return out;
}

}  // namespace

proc_meter::proc_meter(std::chrono::milliseconds every)
    : every_(every), pss_every_(std::max<long>(1, 1000 / std::max<long>(1, every.count()))) {}

proc_meter::~proc_meter() {
  if (running_)
    stop();
}

void proc_meter::add_root(pid_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  roots_.push_back(pid);
}

void proc_meter::start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    sample_locked();  // the baseline: CPU spent before now is not counted
    for (auto& [pid, c] : cpu_)
      c.base_ticks = c.last_ticks;
    peak_rss_kb_ = peak_pss_kb_ = 0;
    started_ = true;
  }
  running_ = true;
  thread_ = std::thread([this] {
    while (running_) {
      std::this_thread::sleep_for(every_);
      sample();
    }
  });
}

void proc_meter::sample() {
  std::lock_guard<std::mutex> lock(mu_);
  sample_locked();
}

void proc_meter::sample_locked() {
  auto procs = all_processes();
  std::multimap<pid_t, const proc_stat*> children;
  std::map<pid_t, const proc_stat*> by_pid;
  for (const auto& p : procs) {
    children.emplace(p.ppid, &p);
    by_pid[p.pid] = &p;
  }
  std::set<pid_t> group;
  std::vector<pid_t> todo(roots_.begin(), roots_.end());
  while (!todo.empty()) {
    pid_t p = todo.back();
    todo.pop_back();
    if (!by_pid.count(p) || !group.insert(p).second)
      continue;
    auto range = children.equal_range(p);
    for (auto it = range.first; it != range.second; ++it)
      todo.push_back(it->second->pid);
  }
  const double page_kb = static_cast<double>(sysconf(_SC_PAGESIZE)) / 1024.0;
  // PSS walks the page tables (about 15 ms for a worker mapping a 1080p ring):
  // read it once a second, not on every sample, or the meter itself takes a
  // good part of a core from the processes it measures.
  const bool with_pss = ++samples_ % pss_every_ == 1 || pss_every_ == 1;
  double rss_kb = 0, pss_kb = 0;
  for (pid_t p : group) {
    const auto* s = by_pid[p];
    auto& c = cpu_[p];
    c.last_ticks = std::max(c.last_ticks, s->ticks);
    rss_kb += static_cast<double>(s->rss_pages) * page_kb;
    if (with_pss)
      pss_kb += static_cast<double>(read_pss_kb(p));
  }
  if (started_) {
    peak_rss_kb_ = std::max(peak_rss_kb_, rss_kb);
    if (with_pss)
      peak_pss_kb_ = std::max(peak_pss_kb_, pss_kb);
  }
}

group_usage proc_meter::stop() {
  running_ = false;
  if (thread_.joinable())
    thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  sample_locked();
  group_usage u;
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  for (const auto& [pid, c] : cpu_)
    u.cpu_s += static_cast<double>(c.last_ticks - std::min(c.base_ticks, c.last_ticks)) / hz;
  u.peak_rss_mb = peak_rss_kb_ / 1024.0;
  u.peak_pss_mb = peak_pss_kb_ / 1024.0;
  return u;
}

bool wait_exited_unreaped(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    siginfo_t info{};
    if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT | WNOHANG) == 0 && info.si_pid == pid)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

}  // namespace framehive::bench
