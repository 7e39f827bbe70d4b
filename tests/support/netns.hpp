#pragma once

// Machines that share nothing but a network, made of Linux namespaces on this
// one, for tests (and benchmarks) that must not rely on one host's loopback,
// /tmp or /dev/shm. Needs root and iproute2, nsenter, unshare and setpriv.
//
// A virtual_lan is a bridge in a network namespace of its own (the switch),
// so nothing is attached to the root namespace. Each virtual_host is a
// network namespace with loopback and one veth cable to the switch, its own
// address on the LAN's /24, its own host name (UTS namespace), and a mount
// namespace with private /tmp and /dev/shm (tmpfs), held open by an anchor
// process (`sleep infinity`). Every
// process of a host is started inside both namespaces of its anchor, so the
// root namespace's /tmp (where the test stages its files) is hidden from it
// and packets can only reach the other hosts of the LAN.
//
// Cleanup does not depend on bookkeeping: every process a host ever ran is
// in its network namespace, so `ip netns pids` finds it (workers a node
// forked, a CLI that hung) and teardown kills it before deleting the
// namespaces; the tmpfs mounts vanish with their last process. Processes are
// started with a parent-death signal (SIGKILL), so a test binary that dies
// takes its hosts' processes with it, and the next run's sweep_leftovers()
// deletes namespaces whose owner process is gone.

#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "common/process.hpp"
#include "tests/support/media_tools.hpp"
#include "tests/support/wait.hpp"

namespace framehive::testing {

namespace netns_detail {

inline const char* ip_tool = "/usr/sbin/ip";
inline const char* nsenter_tool = "/usr/bin/nsenter";
inline const char* unshare_tool = "/usr/bin/unshare";
inline const char* setpriv_tool = "/usr/bin/setpriv";
inline const char* netns_dir = "/run/netns";

/// Runs `ip ARGS`; the output (with stderr) names what failed.
inline command_result ip(const std::string& args) {
  return run_command(std::string(ip_tool) + " " + args + " 2>&1");
}

/// Pids of the processes in network namespace `ns` (zombies are not listed).
inline std::vector<pid_t> pids_in(const std::string& ns) {
  std::vector<pid_t> out;
  std::istringstream in(ip("netns pids " + ns).out);
  for (long pid = 0; in >> pid;)
    if (pid > 0)
      out.push_back(static_cast<pid_t>(pid));
  return out;
}

/// SIGKILLs every process in `ns` until none is left (bounded: processes
/// forked while we kill are caught by the next round).
inline bool kill_all_in(const std::string& ns) {
  return wait_until(
      [&] {
        auto pids = pids_in(ns);
        for (pid_t p : pids)
          ::kill(p, SIGKILL);
        return pids.empty();
      },
      std::chrono::seconds(10));
}

inline bool process_alive(pid_t pid) {
  return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

}  // namespace netns_detail

/// One machine of a virtual_lan. Made by virtual_lan::add_host; lives as long as its LAN.
class virtual_host {
 public:
  virtual_host(const virtual_host&) = delete;
  virtual_host& operator=(const virtual_host&) = delete;

  // -- identity ------------------------------------------------------------------------

  const std::string& name() const noexcept { return name_; }
  /// Its address on the LAN (SUBNET.N).
  const std::string& address() const noexcept { return address_; }
  const std::string& netns() const noexcept { return netns_; }
  /// The process that holds the host's mount namespace.
  pid_t anchor() const noexcept { return anchor_.pid(); }

  // -- running processes inside -------------------------------------------------------

  /// `argv` wrapped so that it runs inside this host: its namespaces
  /// entered, working folder /tmp, SIGKILLed if the test process dies.
  std::vector<std::string> command(const std::vector<std::string>& argv) const {
    // setpriv: killed with the test; nsenter: into the anchor's namespaces.
    std::vector<std::string> out{netns_detail::setpriv_tool, "--pdeathsig", "KILL", "--",
                                 netns_detail::nsenter_tool};
    out.insert(out.end(),
               {"--target=" + std::to_string(anchor()), "--mount", "--net", "--uts", "--wd=/tmp", "--"});
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
  }

  /// A shell command line that runs `program_and_args` (quoted by the
  /// caller) inside this host. Redirections appended to it are done by the
  /// calling shell, outside the host.
  std::string shell(const std::string& program_and_args) const {
    std::string line = "exec";  // the caller's shell becomes the wrapper: the test is its parent
    for (const auto& w : command({}))
      line += " " + w;
    return line + " " + program_and_args;
  }

  command_result run(const std::string& program_and_args) const {
    return run_command(shell(program_and_args));
  }

  /// Starts `argv` inside this host; its standard output goes to `log`, a
  /// path inside the host.
  std::optional<child_process> spawn(const std::vector<std::string>& argv, const std::string& log,
                                     std::string* error = nullptr) const {
    return child_process::spawn(command(argv), error, outside(log).string());
  }

  // -- files ---------------------------------------------------------------------------

  /// Where `inside` (an absolute path of this host) is for the test process:
  /// below the anchor's root, which shows the host's own mounts.
  std::filesystem::path outside(const std::string& inside) const {
    return std::filesystem::path("/proc/" + std::to_string(anchor()) + "/root") /
           std::filesystem::path(inside).relative_path();
  }

  /// Copies a file of the test's into this host at `inside`, making its folder.
  bool copy_in(const std::filesystem::path& from, const std::string& inside) const {
    std::error_code ec;
    std::filesystem::create_directories(outside(inside).parent_path(), ec);
    return !ec &&
           std::filesystem::copy_file(from, outside(inside),
                                      std::filesystem::copy_options::overwrite_existing, ec) &&
           !ec;
  }

  /// Whether a process of this host sees `path` (asked from inside, not through /proc).
  bool sees(const std::string& path) const { return run("/usr/bin/test -e '" + path + "'").code == 0; }

  // -- its cable ------------------------------------------------------------------------

  /// Takes the host's end of its cable down: its packets go nowhere and
  /// nothing reaches it. The host's end rather than the switch's, so that
  /// its own connection attempts fail at once ("network unreachable")
  /// instead of hanging in SYN retransmissions (seconds, then minutes),
  /// which could delay its rejoining after the cable is back.
  bool unplug() const { return netns_detail::ip("-n " + netns_ + " link set eth0 down").code == 0; }

  /// Brings its end of the cable up again (its address and route come back).
  bool plug() const { return netns_detail::ip("-n " + netns_ + " link set eth0 up").code == 0; }

 private:
  friend class virtual_lan;
  virtual_host(std::string name, std::string address, std::string netns)
      : name_(std::move(name)), address_(std::move(address)), netns_(std::move(netns)) {}

  std::string name_;
  std::string address_;
  std::string netns_;
  child_process anchor_;
};

/// A switch and the hosts on it. Destroying it kills every process of its
/// hosts and deletes all its namespaces (and so every cable and the bridge).
class virtual_lan {
 public:
  virtual_lan(const virtual_lan&) = delete;
  virtual_lan& operator=(const virtual_lan&) = delete;
  ~virtual_lan() { tear_down(); }

  /// A LAN `subnet`.0/24 (e.g. "10.213.77") whose namespaces are named
  /// PREFIX-OWNERPID-TAG-HOST. Returns nullptr and says why when network
  /// namespaces cannot be made here (not root, tools missing, creation
  /// refused): the only case in which a caller may skip.
  static std::unique_ptr<virtual_lan> create(const std::string& prefix, const std::string& subnet,
                                             std::string* why) {
    if (::geteuid() != 0)
      return refuse(why, "network namespaces need root (euid " + std::to_string(::geteuid()) + ")");
    for (const char* tool : {netns_detail::ip_tool, netns_detail::nsenter_tool, netns_detail::unshare_tool,
                             netns_detail::setpriv_tool})
      if (::access(tool, X_OK) != 0)
        return refuse(why, std::string(tool) + " is missing");
    std::random_device rd;
    char tag[8];
    std::snprintf(tag, sizeof(tag), "%04x", rd() & 0xffffu);
    std::unique_ptr<virtual_lan> lan(
        new virtual_lan(prefix + "-" + std::to_string(::getpid()) + "-" + tag, subnet));
    if (auto r = netns_detail::ip("netns add " + lan->switch_ns()); r.code != 0)
      return refuse(why, "ip netns add " + lan->switch_ns() + " failed: " + r.out);
    lan->made_.push_back(lan->switch_ns());
    return lan;
  }

  /// Makes the bridge. Separate from create() so that its failure is a
  /// test failure, not a reason to skip.
  bool start(std::string* error) {
    return step("-n " + switch_ns() + " link set lo up", error) &&
           step("-n " + switch_ns() + " link add br0 type bridge", error) &&
           step("-n " + switch_ns() + " link set br0 up", error);
  }

  /// Adds host `name` at the next address (.1, .2, ... in the order added),
  /// cabled to the switch, with private /tmp and /dev/shm of `tmpfs_mb`
  /// MiB each and `read_only` folders of the root filesystem made read-only
  /// for it (e.g. the binaries it runs). nullptr and `error` on failure.
  virtual_host* add_host(const std::string& name, const std::vector<std::string>& read_only,
                         std::string* error, int tmpfs_mb = 512) {
    const std::string address = subnet_ + "." + std::to_string(hosts_.size() + 1);
    const std::string ns = tag_ + "-" + name;
    const std::string port = "p" + std::to_string(hosts_.size() + 1);  // the switch's end
    std::unique_ptr<virtual_host> h(new virtual_host(name, address, ns));
    if (!step("netns add " + ns, error))
      return nullptr;
    made_.push_back(ns);
    if (!step("-n " + ns + " link set lo up", error) ||
        !step("-n " + switch_ns() + " link add " + port + " type veth peer name eth0 netns " + ns, error) ||
        !step("-n " + switch_ns() + " link set " + port + " master br0 up", error) ||
        !step("-n " + ns + " addr add " + address + "/24 dev eth0", error) ||
        !step("-n " + ns + " link set eth0 up", error))
      return nullptr;
    if (!start_anchor(*h, read_only, tmpfs_mb, error))
      return nullptr;
    hosts_.push_back(std::move(h));
    return hosts_.back().get();
  }

  /// The unique part of every namespace name of this LAN.
  const std::string& tag() const noexcept { return tag_; }
  std::string switch_ns() const { return tag_ + "-switch"; }

  /// Kills every process in the LAN's namespaces and deletes them. Idempotent.
  void tear_down() {
    for (auto it = made_.rbegin(); it != made_.rend(); ++it)
      netns_detail::kill_all_in(*it);
    for (auto& h : hosts_)
      h->anchor_.wait_for(std::chrono::seconds(5));  // reap it (it is our child)
    for (auto it = made_.rbegin(); it != made_.rend(); ++it)
      netns_detail::ip("netns del " + *it);
    made_.clear();
    hosts_.clear();
  }

  /// Whether `name` (a namespace, or anything named after a LAN's tag) is
  /// PREFIX-PID-... of an owner PID that is gone. A parallel run's are not.
  static bool is_leftover(const std::string& name, const std::string& prefix) {
    if (name.rfind(prefix + "-", 0) != 0)
      return false;
    const std::string rest = name.substr(prefix.size() + 1);
    const auto digits = rest.find_first_not_of("0123456789");
    if (digits == 0 || digits == std::string::npos || rest[digits] != '-')
      return false;  // not one of ours
    return !netns_detail::process_alive(static_cast<pid_t>(std::stol(rest.substr(0, digits))));
  }

  /// Deletes the namespaces of LANs made with `prefix` by a process that is
  /// gone (a test binary that was killed), with every process still in
  /// them. Returns what it removed.
  static std::vector<std::string> sweep_leftovers(const std::string& prefix) {
    std::vector<std::string> removed;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(netns_detail::netns_dir, ec)) {
      const std::string ns = e.path().filename().string();
      if (!is_leftover(ns, prefix))
        continue;
      netns_detail::kill_all_in(ns);
      if (netns_detail::ip("netns del " + ns).code == 0)
        removed.push_back(ns);
    }
    return removed;
  }

 private:
  virtual_lan(std::string tag, std::string subnet) : tag_(std::move(tag)), subnet_(std::move(subnet)) {}

  static std::unique_ptr<virtual_lan> refuse(std::string* why, const std::string& reason) {
    if (why)
      *why = reason;
    return nullptr;
  }

  static bool step(const std::string& ip_args, std::string* error) {
    auto r = netns_detail::ip(ip_args);
    if (r.code != 0 && error)
      *error = "ip " + ip_args + ": " + r.out;
    return r.code == 0;
  }

  /// The anchor: `ip netns exec` enters the network namespace, unshare makes
  /// private mount and UTS namespaces, and sh names the host and mounts its
  /// own /tmp and /dev/shm before it becomes `sleep infinity` (each step execs, so the
  /// anchor keeps the pid we spawned). Ready once it is `sleep`.
  static bool start_anchor(virtual_host& h, const std::vector<std::string>& read_only, int tmpfs_mb,
                           std::string* error) {
    const std::string size = "size=" + std::to_string(tmpfs_mb) + "m,mode=1777";
    std::string script = "set -e; hostname '" + h.name() + "'; mount -t tmpfs -o " + size + " " + h.netns() +
                         "-shm /dev/shm;";
    // The read-only folders may lie below /tmp (a checkout in /tmp, as CI
    // makes): each is held by a bind mount on the new /dev/shm while the
    // host's own /tmp covers the old one, then bound back at its own path.
    for (std::size_t i = 0; i < read_only.size(); ++i)
      script += " mkdir /dev/shm/.ro" + std::to_string(i) + "; mount --bind '" + read_only[i] + "' /dev/shm/.ro" +
                std::to_string(i) + ";";
    script += " mount -t tmpfs -o " + size + " " + h.netns() + "-tmp /tmp;";
    for (std::size_t i = 0; i < read_only.size(); ++i) {
      const std::string held = "/dev/shm/.ro" + std::to_string(i), dir = "'" + read_only[i] + "'";
      script += " mkdir -p " + dir + "; mount --bind " + held + " " + dir + "; mount -o remount,bind,ro " + dir +
                "; umount " + held + "; rmdir " + held + ";";
    }
    script += " exec sleep infinity";
    auto p =
        child_process::spawn({netns_detail::ip_tool, "netns", "exec", h.netns(), netns_detail::setpriv_tool,
                              "--pdeathsig", "KILL", "--", netns_detail::unshare_tool, "--mount", "--uts",
                              "--propagation", "private", "/bin/sh", "-c", script},
                             error);
    if (!p)
      return false;
    h.anchor_ = std::move(*p);
    const std::string comm = "/proc/" + std::to_string(h.anchor()) + "/comm";
    const bool ready = wait_until(
        [&] {
          if (h.anchor_.poll())
            return true;  // it ended: the mounts failed
          const auto lines = read_lines(comm);
          return !lines.empty() && lines.front() == "sleep";
        },
        std::chrono::seconds(10));
    if (ready && h.anchor_.running())
      return true;
    if (error)
      *error = "the anchor of host " + h.name() + " did not come up (mounts failed?)";
    return false;
  }

  std::string tag_;
  std::string subnet_;
  std::vector<std::string> made_;  ///< namespaces created, in order (the switch first)
  std::vector<std::unique_ptr<virtual_host>> hosts_;
};

}  // namespace framehive::testing
