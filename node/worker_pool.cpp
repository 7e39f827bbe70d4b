#include "node/worker_pool.hpp"

#include <algorithm>
#include <csignal>

#include <spdlog/spdlog.h>

namespace framehive {

namespace {

/// Compares in time independent of where the strings differ, so a local
/// process cannot find the secret byte by byte from the node's answer times.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i)
    diff |= static_cast<unsigned char>((i < a.size() ? a[i] : 0) ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

}  // namespace

// -- process_launcher ------------------------------------------------------------------

process_launcher::process_launcher(std::string worker_exe, uint16_t node_port, std::string secret,
                                   std::vector<std::string> extra_args)
    : exe_(std::move(worker_exe)),
      node_port_(node_port),
      secret_(std::move(secret)),
      extra_args_(std::move(extra_args)) {}

result<uint32_t, std::string> process_launcher::start(uint32_t index) {
  std::string err;
  std::vector<std::string> argv{exe_, "--node-port=" + std::to_string(node_port_),
                                "--index=" + std::to_string(index)};
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  auto p = child_process::spawn(argv, &err, {}, {std::string(worker_secret_env) + "=" + secret_});
  if (!p)
    return err.empty() ? std::string("cannot start ") + exe_ : err;
  const auto pid = static_cast<uint32_t>(p->pid());
  children_[index] = std::move(*p);  // an earlier child here was reaped already (poll_exit)
  return pid;
}

std::optional<std::string> process_launcher::poll_exit(uint32_t index) {
  auto it = children_.find(index);
  if (it == children_.end())
    return std::nullopt;
  auto status = it->second.poll();
  if (!status)
    return std::nullopt;
  children_.erase(it);
  return status->describe();
}

void process_launcher::kill(uint32_t index) {
  if (auto it = children_.find(index); it != children_.end())
    it->second.kill(SIGKILL);
}

// -- worker_pool ---------------------------------------------------------------------------

worker_pool::worker_pool(uint32_t size, std::unique_ptr<worker_launcher> launcher, const clock& clk,
                         worker_pool_options options)
    : launcher_(std::move(launcher)), clock_(&clk), options_(options) {
  for (uint32_t i = 0; i < size; ++i) {
    worker_slot w;
    w.index = i;
    w.restart_backoff = backoff(options_.restart_backoff);
    slots_.push_back(w);
  }
}

std::vector<worker_exit> worker_pool::on_tick() {
  const uint64_t now = clock_->now_ns();
  std::vector<worker_exit> out;
  for (auto& w : slots_) {
    if (w.pid == 0) {
      if (now >= w.restart_at_ns)
        start(w, now);
      continue;
    }
    auto why = launcher_->poll_exit(w.index);
    if (!why)
      continue;
    out.push_back(worker_exit{w.index, w.pid, *why});
    // A worker that had been working for a while did not die of a restart loop.
    if (w.ready_since_ns != 0 && now - w.ready_since_ns >= to_ns(options_.stable_after))
      w.restart_backoff.reset();
    ++w.restarts;
    w.pid = 0;
    w.ready_since_ns = 0;
    schedule_restart(w, now);
  }
  return out;
}

result<unit, std::string> worker_pool::check_hello(uint32_t index, uint32_t pid,
                                                   const std::string& secret) const {
  if (!same_secret(secret, options_.secret))
    return "a hello claiming slot " + std::to_string(index) + " (pid " + std::to_string(pid) +
           ") does not carry this node's worker secret: not a worker this node started";
  if (index >= slots_.size())
    return "no worker slot " + std::to_string(index);
  const auto& w = slots_[index];
  if (w.pid == 0 || w.pid != pid)
    return "worker pid " + std::to_string(pid) + " was not started here for slot " + std::to_string(index);
  if (w.state == actor_state::restarting)
    return "worker " + std::to_string(index) + " (pid " + std::to_string(pid) + ") is being ended";
  return unit{};
}

result<unit, std::string> worker_pool::on_hello(uint32_t index, uint32_t pid, const std::string& secret) {
  if (auto ok = check_hello(index, pid, secret); !ok) {
    ++refused_hellos_;
    return ok.error();
  }
  auto& w = slots_[index];
  if (w.state != actor_state::ready)
    w.ready_since_ns = clock_->now_ns();
  w.state = actor_state::ready;
  return unit{};
}

void worker_pool::kill(uint32_t index) {
  if (index >= slots_.size() || slots_[index].pid == 0)
    return;
  launcher_->kill(index);
  // Not handed out any more; on_tick() reaps it and schedules the restart.
  slots_[index].state = actor_state::restarting;
}

std::optional<uint32_t> worker_pool::pick() {
  const auto n = size();
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t k = (next_ + i) % n;
    if (slots_[k].state == actor_state::ready) {
      next_ = (k + 1) % n;
      return k;
    }
  }
  return std::nullopt;
}

bool worker_pool::is_ready(uint32_t index) const noexcept {
  return index < slots_.size() && slots_[index].state == actor_state::ready;
}

// -- helpers --------------------------------------------------------------------------------

void worker_pool::start(worker_slot& w, uint64_t now) {
  auto pid = launcher_->start(w.index);
  if (!pid) {
    spdlog::error("cannot start worker {}: {}", w.index, pid.error());
    schedule_restart(w, now);
    return;
  }
  spdlog::info("worker {} started (pid {})", w.index, *pid);
  w.pid = *pid;
  w.state = actor_state::starting;
  w.ready_since_ns = 0;
}

void worker_pool::schedule_restart(worker_slot& w, uint64_t now) {
  w.state = actor_state::restarting;
  w.restart_at_ns = now + to_ns(w.restart_backoff.next());
}

}  // namespace framehive
