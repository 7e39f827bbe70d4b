#pragma once

// Measures a group of processes and all their descendants from outside, the
// same way for every design: CPU seconds (utime + stime), and the peak over
// time of the group's summed RSS (every sample) and PSS (once a second: it
// is expensive to read). RSS counts a shared page once per
// process that maps it (a ring read by 8 consumers counts 9 times); PSS divides
// it among them, so PSS is the memory the group really occupies.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace framehive::bench {

struct group_usage {
  double cpu_s = 0;
  double peak_rss_mb = 0;
  double peak_pss_mb = 0;
};

class proc_meter {
 public:
  /// Samples every `every` from start() until stop().
  explicit proc_meter(std::chrono::milliseconds every = std::chrono::milliseconds(50));
  ~proc_meter();
  proc_meter(const proc_meter&) = delete;
  proc_meter& operator=(const proc_meter&) = delete;

  /// A process whose subtree belongs to the group (may be called while running).
  void add_root(pid_t pid);

  /// Takes the CPU baseline of the processes alive now and starts sampling.
  void start();

  /// One sample now: call it for a child that has exited but is not reaped yet
  /// (waitid with WNOWAIT), so its final CPU time is counted.
  void sample();

  group_usage stop();

 private:
  struct proc_cpu {
    uint64_t base_ticks = 0;
    uint64_t last_ticks = 0;
  };
  void sample_locked();

  std::chrono::milliseconds every_;
  std::mutex mu_;
  std::vector<pid_t> roots_;
  std::map<pid_t, proc_cpu> cpu_;
  bool started_ = false;
  long samples_ = 0;
  long pss_every_ = 1;  ///< PSS on every k-th sample (about once a second)
  double peak_rss_kb_ = 0;
  double peak_pss_kb_ = 0;
  std::atomic<bool> running_{false};
  std::thread thread_;
};

/// Waits until the child `pid` has exited without reaping it (so its /proc
/// entry, with its final CPU time, stays readable). False on timeout.
bool wait_exited_unreaped(pid_t pid, std::chrono::milliseconds timeout);

}  // namespace framehive::bench
