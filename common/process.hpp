#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace framehive {

/// How a child process ended.
struct exit_status {
  bool signaled = false;  ///< true: killed by `signal`; false: exited with `code`
  int code = 0;
  int signal = 0;

  bool success() const noexcept { return !signaled && code == 0; }
  std::string describe() const;
};

/// A child process started with posix_spawn. The owner reaps it: the
/// destructor kills (SIGKILL) and waits for a child that is still running,
/// so no test or node leaves orphans or zombies behind.
class child_process {
 public:
  child_process() = default;
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  child_process(child_process&& other) noexcept;
  child_process& operator=(child_process&& other) noexcept;
  ~child_process();

  /// Starts `argv[0]` (a path) with the given arguments. `stdout_path`, when
  /// not empty, receives the child's standard output (stderr is inherited).
  /// `extra_env` ("NAME=VALUE" entries) is added to the child's environment
  /// only (replacing a variable of the same name), so a secret handed to a
  /// child never appears on its command line or in this process's environment.
  /// Returns std::nullopt and sets `error` when the spawn failed.
  static std::optional<child_process> spawn(const std::vector<std::string>& argv,
                                            std::string* error = nullptr, const std::string& stdout_path = {},
                                            const std::vector<std::string>& extra_env = {});

  pid_t pid() const noexcept { return pid_; }
  bool running() const noexcept { return pid_ > 0 && !status_; }

  /// Sends `sig`; false when the child already ended.
  bool kill(int sig);

  /// Non-blocking check; returns the status once the child has ended.
  std::optional<exit_status> poll();

  /// Waits at most `timeout`; std::nullopt if still running then.
  std::optional<exit_status> wait_for(std::chrono::milliseconds timeout);

  /// Waits without limit.
  exit_status wait();

 private:
  explicit child_process(pid_t pid) : pid_(pid) {}
  void reap_now();

  pid_t pid_ = -1;
  std::optional<exit_status> status_;
};

/// The absolute path of the running executable (/proc/self/exe).
std::string self_executable();

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's choice):
/// for starting a coordinator or a test peer on loopback.
uint16_t free_loopback_port();

}  // namespace framehive
