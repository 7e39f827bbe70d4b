#pragma once

// The node's worker processes as plain bookkeeping, with no CAF inside: N
// slots, each started through a launcher, ready once its process says hello,
// restarted after a backoff when it dies, and handed out round robin. The
// launcher is an interface so that tests need no processes.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/messages.hpp"
#include "common/backoff.hpp"
#include "common/clock.hpp"
#include "common/process.hpp"
#include "common/result.hpp"

namespace framehive {

// -- launchers ---------------------------------------------------------------------

/// Starts and ends worker processes, one per slot index.
class worker_launcher {
 public:
  virtual ~worker_launcher() = default;
  /// Starts the worker of slot `index`: its pid, or why it could not start.
  virtual result<uint32_t, std::string> start(uint32_t index) = 0;
  /// Non-blocking: how the worker of slot `index` ended, once it has (and is reaped).
  virtual std::optional<std::string> poll_exit(uint32_t index) = 0;
  /// Ends the worker of slot `index` (SIGKILL); poll_exit() reports it later.
  virtual void kill(uint32_t index) = 0;
};

/// Carries the node's per-start secret to its workers: set in each child's
/// environment only, never on a command line; the worker sends it back in its
/// hello and removes it from its own environment.
inline constexpr const char* worker_secret_env = "FRAMEHIVE_WORKER_SECRET";

/// The real launcher: `framehive-worker --node-port=PORT --index=K ARGS...`
/// with `secret` in worker_secret_env. It owns the child processes, so they
/// die with it (and are reaped).
class process_launcher final : public worker_launcher {
 public:
  process_launcher(std::string worker_exe, uint16_t node_port, std::string secret,
                   std::vector<std::string> extra_args = {});
  result<uint32_t, std::string> start(uint32_t index) override;
  std::optional<std::string> poll_exit(uint32_t index) override;
  void kill(uint32_t index) override;

 private:
  std::string exe_;
  uint16_t node_port_;
  std::string secret_;
  std::vector<std::string> extra_args_;
  std::map<uint32_t, child_process> children_;
};

// -- the pool ------------------------------------------------------------------------

/// Worker restarts: 200 ms, 400 ms, ... up to 10 s.
inline constexpr backoff_policy default_worker_restart_backoff{std::chrono::milliseconds(200),
                                                               std::chrono::seconds(10), 2};
/// A worker that was ready this long before it died restarts after the first delay again.
inline constexpr std::chrono::seconds default_worker_stable_after{10};

struct worker_pool_options {
  backoff_policy restart_backoff = default_worker_restart_backoff;
  std::chrono::milliseconds stable_after = default_worker_stable_after;
  /// A hello must carry this: the per-start secret the launcher handed to the
  /// workers. The node always sets one (random_token()).
  std::string secret;
};

struct worker_slot {
  uint32_t index = 0;
  actor_state state = actor_state::restarting;  ///< starting | ready | restarting
  uint32_t pid = 0;                             ///< the process started for this slot; 0 = none
  uint32_t restarts = 0;                        ///< deaths so far
  uint64_t restart_at_ns = 0;                   ///< restarting: not started again before this
  uint64_t ready_since_ns = 0;
  backoff restart_backoff;
};

/// A worker that ended: every actor it hosted is lost.
struct worker_exit {
  uint32_t index = 0;
  uint32_t pid = 0;
  std::string why;
};

class worker_pool {
 public:
  /// `size` slots, none started yet: the first on_tick() starts them all.
  worker_pool(uint32_t size, std::unique_ptr<worker_launcher> launcher, const clock& clk,
              worker_pool_options options = {});

  // -- events --

  /// Reaps workers that ended (returned: their actors are lost) and starts
  /// those whose restart delay has passed.
  std::vector<worker_exit> on_tick();

  /// A worker says hello: accepted only with the pool's secret and from the
  /// process started for that slot. Every refusal is counted.
  result<unit, std::string> on_hello(uint32_t index, uint32_t pid, const std::string& secret);

  /// Ends worker `index` (hung, or its actor is gone): it is not handed out
  /// any more, and on_tick() reports its exit.
  void kill(uint32_t index);

  // -- queries --

  /// A ready worker, round robin; none if no worker is ready.
  std::optional<uint32_t> pick();

  bool is_ready(uint32_t index) const noexcept;
  const std::vector<worker_slot>& slots() const noexcept { return slots_; }
  uint32_t size() const noexcept { return static_cast<uint32_t>(slots_.size()); }
  /// Hellos refused so far (wrong secret, unknown slot or pid, a slot being ended).
  uint64_t refused_hellos() const noexcept { return refused_hellos_; }

 private:
  void start(worker_slot& w, uint64_t now);
  void schedule_restart(worker_slot& w, uint64_t now);

  std::unique_ptr<worker_launcher> launcher_;
  const clock* clock_;
  worker_pool_options options_;
  result<unit, std::string> check_hello(uint32_t index, uint32_t pid, const std::string& secret) const;

  std::vector<worker_slot> slots_;
  uint32_t next_ = 0;  ///< where pick() looks first
  uint64_t refused_hellos_ = 0;
};

}  // namespace framehive
