#pragma once

// Starts the real binaries (coordinator, nodes with their worker processes) on
// free loopback ports, talks to them with the real CLI, and stops them.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/process.hpp"
#include "tests/support/media_tools.hpp"
#include "tests/support/wait.hpp"

namespace framehive::testing {

inline uint16_t free_port() { return free_loopback_port(); }

/// The sum of the samples of metric `name` on a loopback /metrics endpoint; -1 if it does not answer.
inline double metric_sum(uint16_t port, const std::string& name) {
  const auto r = run_command("curl -s -f --max-time 10 'http://127.0.0.1:" + std::to_string(port) + "/metrics'");
  if (r.code != 0)
    return -1;
  std::istringstream in(r.out);
  double total = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size() ||
        (line[name.size()] != ' ' && line[name.size()] != '{'))
      continue;
    total += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return total;
}

class cluster : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    tag_ = "fhc" + std::to_string(getpid()) + "x" + std::to_string(++counter);
    dir_ = std::filesystem::temp_directory_path() / tag_;
    std::filesystem::create_directories(dir_);
    port_ = free_port();
  }

  void TearDown() override {
    for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it)
      stop(it->second);
    stop(coordinator_);
    // Rings of nodes a test killed and never restarted (a restarted node
    // removes its own stale rings at start).
    for (const auto& r : rings())
      std::filesystem::remove(std::filesystem::path("/dev/shm") / r);
    if (HasFailure())
      for (const auto& f : std::filesystem::directory_iterator(dir_))
        if (f.path().extension() == ".log")
          std::cerr << "---- " << f.path().filename() << "\n" << run_command("tail -n 40 '" + f.path().string() + "'").out;
    std::filesystem::remove_all(dir_);
  }

  static void stop(child_process& p) {
    if (!p.running())
      return;
    p.kill(SIGTERM);
    if (!p.wait_for(std::chrono::seconds(15)))
      ADD_FAILURE() << "pid " << p.pid() << " did not stop within 15 s of SIGTERM";
  }

  std::string bin(const std::string& name) const { return std::string(FRAMEHIVE_BIN_DIR) + "/" + name; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string shm_prefix() const { return tag_; }

  /// Ports a test did not ask for stay closed (`--FLAG=0`): otherwise every
  /// coordinator and node of parallel tests would try the same default ports.
  static void off_unless_given(std::vector<std::string>& args, std::initializer_list<const char*> flags) {
    for (const char* flag : flags) {
      const std::string f = flag;
      const bool given = std::any_of(args.begin(), args.end(), [&](const std::string& a) {
        return a == f || a.rfind(f + "=", 0) == 0;
      });
      if (!given)
        args.push_back(f + "=0");
    }
  }

  void start_coordinator() {
    std::string err;
    std::vector<std::string> args{bin("framehive-coordinator"), "--port=" + std::to_string(port_),
                                  "--data-dir=" + (dir_ / "data").string()};
    if (tls_on())
      for (auto& f : tls_flags("coordinator"))
        args.push_back(f);
    args.insert(args.end(), coordinator_flags_.begin(), coordinator_flags_.end());
    off_unless_given(args, {"--web.port", "--metrics.port"});
    auto p = child_process::spawn(args, &err, (dir_ / "coordinator.log").string());
    ASSERT_TRUE(p) << err;
    coordinator_ = std::move(*p);
  }

  void start_node(const std::string& name, int workers = 2, int shm_budget_mb = 1024,
                  const std::vector<std::string>& extra = {}) {
    std::string err;
    std::vector<std::string> args{bin("framehive-node"), "--coordinator=" + address(), "--name=" + name,
                                  "--workers=" + std::to_string(workers),
                                  "--output-dir=" + (dir_ / ("out-" + name)).string(),
                                  "--shm-prefix=" + shm_prefix(), "--shm-budget-mb=" + std::to_string(shm_budget_mb)};
    if (tls_on()) {
      if (!std::filesystem::exists(pki() / (name + ".crt"))) {
        ASSERT_EQ(issue(name, "node"), 0);
      }
      for (auto& f : tls_flags(name))
        args.push_back(f);
    }
    args.insert(args.end(), extra.begin(), extra.end());
    off_unless_given(args, {"--metrics.port"});
    auto p = child_process::spawn(args, &err, (dir_ / (name + ".log")).string());
    ASSERT_TRUE(p) << err;
    nodes_[name] = std::move(*p);
  }

  /// Coordinator plus nodes (with `extra` node flags), waiting until every node has registered.
  void start_cluster(const std::vector<std::string>& names, const std::vector<std::string>& extra = {}) {
    start_coordinator();
    for (const auto& n : names)
      start_node(n, 2, 1024, extra);
    ASSERT_TRUE(wait_until([&] { return registered_nodes() == names.size(); }, std::chrono::seconds(30)))
        << "nodes did not register";
  }

  /// A coordinator and one node started with extra node flags.
  void start_one_node(const std::vector<std::string>& extra) {
    start_coordinator();
    start_node("n1", 2, 1024, extra);
    ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  }

  std::size_t registered_nodes() {
    auto r = cli("nodes --json");
    if (r.code != 0)
      return 0;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    return j.is_object() ? j["nodes"].size() : 0;
  }

  /// Runs the framehive CLI against this cluster.
  command_result cli(const std::string& args) const {
    std::string tls;
    if (tls_on())
      for (auto& f : tls_flags(cli_identity_))
        tls += " '" + f + "'";
    return run_command(bin("framehive") + " --coordinator " + address() + tls + " " + args + " 2>" +
                       (dir_ / "cli-stderr.txt").string());
  }

  std::string cli_stderr() const { return run_command("cat '" + (dir_ / "cli-stderr.txt").string() + "'").out; }

  nlohmann::json cli_json(const std::string& args) const {
    auto r = cli(args);
    EXPECT_EQ(r.code, 0) << args << ": " << cli_stderr();
    return nlohmann::json::parse(r.out, nullptr, false);
  }

  /// Submits with --node-visible: the node opens the paths itself, as on a
  /// shared mount. These tests are about what the node does with an input
  /// (bad files, policies, names); uploads have their own tests (DataPath.*).
  uint64_t submit(const std::string& args) {
    auto j = cli_json("submit --node-visible " + args + " --json");
    EXPECT_TRUE(j.is_object() && j.contains("job")) << j.dump();
    return j.is_object() ? j.value("job", uint64_t{0}) : 0;
  }

  /// Per-frame stats of a finished job's only video, frame by frame.
  std::vector<std::pair<double, double>> stats_of(uint64_t job) {
    const nlohmann::json r = cli_json("results " + std::to_string(job) + " --json --frames");
    std::vector<std::pair<double, double>> out;
    for (const auto& f : r["videos"][0]["analyzers"]["stats"]["frames"]) {
      EXPECT_EQ(f["frame"].get<std::size_t>(), out.size()) << "frame missing or doubled";
      out.emplace_back(f["brightness"].get<double>(), f["sharpness"].get<double>());
    }
    return out;
  }

  /// Waits for a job to end; returns its final state.
  std::string wait_job(uint64_t job, std::chrono::seconds timeout = std::chrono::seconds(120)) {
    std::string state;
    wait_until(
        [&] {
          auto j = cli_json("status " + std::to_string(job) + " --json");
          state = j.is_object() ? j.value("state", "") : "";
          return state == "done" || state == "failed" || state == "cancelled";
        },
        timeout);
    return state;
  }

  /// A small generated clip (testsrc2, moving content).
  std::string make_clip(const std::string& name, int seconds = 4, int fps = 15, const std::string& size = "320x240") {
    auto path = (dir_ / name).string();
    auto r = run_command("ffmpeg -v error -y -nostdin -f lavfi -i testsrc2=size=" + size + ":rate=" +
                         std::to_string(fps) + " -t " + std::to_string(seconds) +
                         " -c:v libx264 -preset ultrafast -pix_fmt yuv420p '" + path + "' 2>&1");
    EXPECT_EQ(r.code, 0) << r.out;
    return path;
  }

  std::vector<std::string> rings() const {
    std::vector<std::string> out;
    for (const auto& f : std::filesystem::directory_iterator("/dev/shm"))
      if (f.path().filename().string().rfind(shm_prefix(), 0) == 0)
        out.push_back(f.path().filename().string());
    return out;
  }

  /// Node flag that makes decoders publish at most `fps` frames per second, so
  /// a test can act on a video while it runs without racing its end.
  static std::string paced(int fps) { return "--testing.pace-fps=" + std::to_string(fps); }

  /// Node flag: decoders publish no frame from `frame` on until release(), so
  /// a video is held mid-way whatever the machine's speed (a kill, a browser
  /// or a rogue lands while it runs, certainly).
  std::string hold_at(int64_t frame) const {
    return "--testing.hold-at=" + std::to_string(frame) + ":" + (dir_ / "release").string();
  }
  /// Lets every held decoder go on.
  void release() const { std::ofstream(dir_ / "release") << "go\n"; }
  /// Holds again: decoders that reach the frame from now on wait for the next release().
  void hold_again() const { std::filesystem::remove(dir_ / "release"); }

  // -- TLS (optional; off unless a test calls use_tls()) --------------------------------

  /// Makes a cluster PKI in dir_/pki with the real `framehive certs` and turns
  /// on mutual TLS for every process started afterwards: the coordinator
  /// (certificate "coordinator"), each node (a node certificate for its name,
  /// issued when it starts) and cli() (client certificate "client").
  void use_tls() {
    ASSERT_EQ(certs("init '" + pki().string() + "'"), 0);
    ASSERT_EQ(issue("coordinator", "coordinator"), 0);
    ASSERT_EQ(issue(cli_identity_, "client"), 0);
    tls_ = true;
  }

  bool tls_on() const { return tls_; }
  std::filesystem::path pki() const { return dir_ / "pki"; }

  /// Runs `framehive certs ARGS`; returns its exit code.
  int certs(const std::string& args) const {
    return run_command(bin("framehive") + " certs " + args + " >/dev/null 2>&1").code;
  }

  /// Issues pki()/NAME.crt and .key with `role`; returns the CLI's exit code.
  int issue(const std::string& name, const std::string& role) const {
    return certs("issue '" + pki().string() + "' '" + name + "' --role " + role);
  }

  /// --tls.ca/--tls.cert/--tls.key for the certificate `name` of pki().
  std::vector<std::string> tls_flags(const std::string& name) const {
    return {"--tls.ca=" + (pki() / "ca.crt").string(), "--tls.cert=" + (pki() / (name + ".crt")).string(),
            "--tls.key=" + (pki() / (name + ".key")).string()};
  }

  std::string tag_;
  std::filesystem::path dir_;
  bool tls_ = false;
  std::string cli_identity_ = "client";              ///< the certificate cli() presents with TLS
  std::vector<std::string> coordinator_flags_;       ///< extra flags for start_coordinator()
  uint16_t port_ = 0;
  child_process coordinator_;
  std::map<std::string, child_process> nodes_;
};

}  // namespace framehive::testing
