// framehive on machines that share nothing but a network (issue 12), with the
// real binaries on "hosts" made of Linux namespaces (tests/support/netns.hpp):
// a coordinator, three nodes and a laptop, each with its own address, /tmp
// and /dev/shm, talking mutual TLS over one bridge. The laptop uploads videos
// that exist only in its /tmp, the nodes fetch them from the coordinator,
// and the laptop gets results and thumbnails back identical to a run on a
// single host. Then one node's cable is pulled mid-video: it is declared
// dead, its video resumes on another node from the watermark, and when the
// cable is back the node rejoins and its stale claim is refused; every
// frame is stored once, with the values of a clean run.
//
// The reference runs are on one more host ("solo": coordinator, node and
// CLI on its own loopback), so no packet of this test leaves its namespaces.

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/digest.hpp"
#include "common/process.hpp"
#include "tests/support/media_tools.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/wait.hpp"

using namespace framehive;
using namespace framehive::testing;
using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* lan_prefix = "fhmh";       ///< namespace names: fhmh-PID-TAG-HOST
constexpr const char* lan_subnet = "10.213.77";  ///< exists only inside the LAN's namespaces
constexpr const char* port = "4242";             ///< every host has its own ports
constexpr const char* node_names[] = {"node-a", "node-b", "node-c"};

/// The partition clip: 600 frames at 30 fps, decoded at partition_fps, so
/// about 10 s on one node whatever the machine's speed: the cable is pulled
/// mid-video, and the resumed video still runs when the node comes back.
constexpr int partition_fps = 60;
constexpr std::size_t partition_frames = 600;

std::string quoted(const std::string& s) {
  return "'" + s + "'";
}

/// The framehive daemons and CLI of one cluster, each on its host.
struct cluster_on_hosts {
  virtual_host* coordinator_host = nullptr;
  virtual_host* client_host = nullptr;
  std::string coordinator_address;  ///< HOST:PORT as the nodes and the CLI dial it
  bool tls = true;
  child_process coordinator;
  std::map<std::string, child_process> nodes;
  std::map<std::string, virtual_host*> node_hosts;
};

class MultiHost : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& ns : virtual_lan::sweep_leftovers(lan_prefix))
      std::cerr << "removed namespace " << ns << " left by a run that died\n";
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/tmp", ec))
      if (virtual_lan::is_leftover(e.path().filename().string(), lan_prefix))
        fs::remove_all(e.path(), ec);
    std::string why;
    lan_ = virtual_lan::create(lan_prefix, lan_subnet, &why);
    if (!lan_)
      GTEST_SKIP() << "cannot create network namespaces here: " << why;
    ASSERT_TRUE(lan_->start(&why)) << why;
    // Staged in the root namespace's /tmp, which every host's own /tmp hides.
    staging_ = fs::path("/tmp") / lan_->tag();
    fs::create_directories(staging_);
    ASSERT_EQ(framehive("certs init " + quoted(pki().string())).code, 0);
  }

  void TearDown() override {
    if (HasFailure())
      for (auto* h : hosts_)
        for (const auto& log : {"coordinator.log", "node.log"})
          if (fs::exists(h->outside(std::string("/tmp/") + log)))
            std::cerr
                << "---- " << h->name() << ": " << log << "\n"
                << run_command("tail -n 40 " + quoted(h->outside(std::string("/tmp/") + log).string())).out;
    for (auto* c : {&multi_, &solo_}) {
      for (auto& [name, n] : c->nodes)
        stop(n);
      stop(c->coordinator);
    }
    lan_.reset();  // kills whatever is left in the hosts, deletes every namespace
    if (!staging_.empty())
      fs::remove_all(staging_);
  }

  static void stop(child_process& p) {
    if (!p.running())
      return;
    p.kill(SIGTERM);
    if (!p.wait_for(15s))
      ADD_FAILURE() << "pid " << p.pid() << " did not stop within 15 s of SIGTERM";
  }

  // -- hosts and files -----------------------------------------------------------------

  static std::string bin(const std::string& name) { return std::string(FRAMEHIVE_BIN_DIR) + "/" + name; }
  fs::path pki() const { return staging_ / "pki"; }

  /// The CLI in the test's own namespaces: only for `certs`, which touches no network.
  command_result framehive(const std::string& args) const {
    return run_command(bin("framehive") + " " + args + " 2>&1");
  }

  virtual_host* add_host(const std::string& name) {
    std::string error;
    virtual_host* h = lan_->add_host(name, {FRAMEHIVE_BIN_DIR}, &error);
    EXPECT_NE(h, nullptr) << error;
    if (h)
      hosts_.push_back(h);
    return h;
  }

  /// Issues NAME's certificate in the staging PKI and copies it, with the CA
  /// certificate (never its key), to the host's /tmp/pki.
  void give_certificate(const virtual_host& h, const std::string& name, const std::string& role) {
    ASSERT_EQ(framehive("certs issue " + quoted(pki().string()) + " " + name + " --role " + role).code, 0);
    for (const auto& f : {std::string("ca.crt"), name + ".crt", name + ".key"})
      ASSERT_TRUE(h.copy_in(pki() / f, "/tmp/pki/" + f)) << h.name() << ": " << f;
  }

  static std::vector<std::string> tls_flags(const std::string& name) {
    return {"--tls.ca=/tmp/pki/ca.crt", "--tls.cert=/tmp/pki/" + name + ".crt",
            "--tls.key=/tmp/pki/" + name + ".key"};
  }

  /// A generated clip in the staging folder.
  fs::path make_clip(const std::string& name, const std::string& source, int seconds, int fps) {
    const fs::path path = staging_ / name;
    auto r =
        run_command("ffmpeg -v error -y -nostdin -f lavfi -i " + source +
                    "=size=320x240:rate=" + std::to_string(fps) + " -t " + std::to_string(seconds) +
                    " -c:v libx264 -preset ultrafast -pix_fmt yuv420p " + quoted(path.string()) + " 2>&1");
    EXPECT_EQ(r.code, 0) << r.out;
    return path;
  }

  // -- clusters ------------------------------------------------------------------------

  /// The cluster of the multi-host runs: coordinator, three nodes and the
  /// laptop, each on its own host, mutual TLS, the coordinator listening on
  /// its LAN address.
  void start_multi(const std::vector<std::string>& node_flags = {}) {
    auto* coord = add_host("coord");
    ASSERT_NE(coord, nullptr);
    std::vector<virtual_host*> node_hosts;
    for (const char* n : node_names) {
      node_hosts.push_back(add_host(n));
      ASSERT_NE(node_hosts.back(), nullptr);
    }
    laptop_ = add_host("laptop");
    ASSERT_NE(laptop_, nullptr);
    give_certificate(*coord, "coord", "coordinator");
    give_certificate(*laptop_, "laptop", "client");
    multi_.coordinator_host = coord;
    multi_.client_host = laptop_;
    multi_.coordinator_address = coord->address() + ":" + port;
    start_coordinator(multi_, coord->address());
    for (auto* h : node_hosts) {
      give_certificate(*h, h->name(), "node");
      start_node(multi_, *h, node_flags);
    }
    expect_registered(multi_, {"node-a", "node-b", "node-c"});
  }

  /// The single-host reference: coordinator, one node and the CLI on one
  /// host's loopback, plaintext (loopback is the coordinator's default).
  void start_solo() {
    auto* solo = add_host("solo");
    ASSERT_NE(solo, nullptr);
    solo_.coordinator_host = solo;
    solo_.client_host = solo;
    solo_.coordinator_address = std::string("127.0.0.1:") + port;
    solo_.tls = false;
    start_coordinator(solo_, "127.0.0.1");
    start_node(solo_, *solo, {});
    expect_registered(solo_, {"solo"});
  }

  void start_coordinator(cluster_on_hosts& c, const std::string& bind) {
    std::vector<std::string> args{bin("framehive-coordinator"), "--bind=" + bind,
                                  std::string("--port=") + port, "--data-dir=/tmp/data"};
    if (c.tls)
      for (auto& f : tls_flags("coord"))
        args.push_back(f);
    std::string err;
    auto p = c.coordinator_host->spawn(args, "/tmp/coordinator.log", &err);
    ASSERT_TRUE(p) << err;
    c.coordinator = std::move(*p);
  }

  void start_node(cluster_on_hosts& c, virtual_host& h, const std::vector<std::string>& extra) {
    std::vector<std::string> args{bin("framehive-node"),   "--coordinator=" + c.coordinator_address,
                                  "--name=" + h.name(),    "--workers=1",
                                  "--output-dir=/tmp/out", "--cache.dir=/tmp/cache",
                                  "--shm-budget-mb=256"};
    if (c.tls)
      for (auto& f : tls_flags(h.name()))
        args.push_back(f);
    args.insert(args.end(), extra.begin(), extra.end());
    std::string err;
    auto p = h.spawn(args, "/tmp/node.log", &err);
    ASSERT_TRUE(p) << err;
    c.nodes[h.name()] = std::move(*p);
    c.node_hosts[h.name()] = &h;
  }

  /// The framehive CLI on the cluster's client host.
  command_result cli(const cluster_on_hosts& c, const std::string& args) const {
    std::string line = bin("framehive") + " --coordinator " + c.coordinator_address;
    if (c.tls)
      for (auto& f : tls_flags("laptop"))
        line += " " + f;
    return run_command(c.client_host->shell(line + " " + args) + " 2>" +
                       quoted(c.client_host->outside("/tmp/cli-stderr.txt").string()));
  }

  std::string cli_stderr(const cluster_on_hosts& c) const {
    const auto lines = read_lines(c.client_host->outside("/tmp/cli-stderr.txt").string());
    std::string out;
    for (const auto& l : lines)
      out += l + "\n";
    return out;
  }

  json cli_json(const cluster_on_hosts& c, const std::string& args) const {
    auto r = cli(c, args);
    EXPECT_EQ(r.code, 0) << args << ": " << cli_stderr(c);
    return json::parse(r.out, nullptr, false);
  }

  std::set<std::string> registered(const cluster_on_hosts& c) const {
    std::set<std::string> out;
    auto r = cli(c, "nodes --json");
    auto j = json::parse(r.out, nullptr, false);
    if (r.code == 0 && j.is_object())
      for (const auto& n : j["nodes"])
        out.insert(n["name"].get<std::string>());
    return out;
  }

  void expect_registered(const cluster_on_hosts& c, const std::set<std::string>& names) {
    ASSERT_TRUE(wait_until([&] { return registered(c) == names; }, 30s))
        << "registered: " << json(registered(c)).dump() << "; " << cli_stderr(c);
  }

  uint64_t submit(const cluster_on_hosts& c, const std::string& args) {
    auto j = cli_json(c, "submit " + args + " --json");
    EXPECT_TRUE(j.is_object() && j.contains("job")) << j.dump() << " " << cli_stderr(c);
    return j.is_object() ? j.value("job", uint64_t{0}) : 0;
  }

  std::string wait_job(const cluster_on_hosts& c, uint64_t job) {
    std::string state;
    wait_until(
        [&] {
          auto j = cli_json(c, "status " + std::to_string(job) + " --json");
          state = j.is_object() ? j.value("state", "") : "";
          return state == "done" || state == "failed" || state == "cancelled";
        },
        90s);
    return state;
  }

  /// Per video (by input, which names the blob and the file): every
  /// analyzer's frames without the timing field `ms`.
  std::map<std::string, json> frames_by_input(const cluster_on_hosts& c, uint64_t job) {
    std::map<std::string, json> out;
    const json r = cli_json(c, "results " + std::to_string(job) + " --json --frames");
    for (const auto& v : r["videos"]) {
      json analyzers = json::object();
      for (const auto& [name, a] : v["analyzers"].items()) {
        json frames = a["frames"];
        for (auto& f : frames)
          f.erase("ms");
        analyzers[name] = frames;
      }
      out[v["input"].get<std::string>()] = analyzers;
    }
    return out;
  }

  /// `framehive fetch` into the client host's /tmp/fetched: per file
  /// (input/analyzer/name) its size and the SHA-256 of the bytes that arrived.
  std::map<std::string, std::pair<uint64_t, std::string>> fetch(const cluster_on_hosts& c, uint64_t job) {
    std::map<uint64_t, std::string> input_of;
    for (const auto& v : cli_json(c, "status " + std::to_string(job) + " --json")["videos"])
      input_of[v["video"].get<uint64_t>()] = v["input"].get<std::string>();
    const json f = cli_json(c, "fetch " + std::to_string(job) + " --out /tmp/fetched --json");
    std::map<std::string, std::pair<uint64_t, std::string>> out;
    for (const auto& file : f["files"]) {
      const auto path = file["path"].get<std::string>();
      EXPECT_EQ(path.rfind("/tmp/fetched/", 0), 0u) << path;
      auto sha = sha256_of_file(c.client_host->outside(path).string());
      EXPECT_TRUE(sha) << path;
      EXPECT_EQ(sha ? *sha : "", file["sha256"].get<std::string>()) << path;
      out[input_of[file["video"].get<uint64_t>()] + "/" + file["analyzer"].get<std::string>() + "/" +
          file["name"].get<std::string>()] = {fs::file_size(c.client_host->outside(path)),
                                              sha ? *sha : std::string{}};
    }
    return out;
  }

  std::string log_of(const virtual_host& h, const std::string& log) const {
    std::string out;
    for (const auto& l : read_lines(h.outside("/tmp/" + log).string()))
      out += l + "\n";
    return out;
  }

  /// The video of a one-video job: node, position, state.
  json video_of(const cluster_on_hosts& c, uint64_t job) {
    const json st = cli_json(c, "status " + std::to_string(job) + " --json");
    return st.is_object() && !st["videos"].empty() ? st["videos"][0] : json::object();
  }

  std::unique_ptr<virtual_lan> lan_;
  fs::path staging_;
  std::vector<virtual_host*> hosts_;
  virtual_host* laptop_ = nullptr;
  cluster_on_hosts multi_;
  cluster_on_hosts solo_;
};

/// The SHA-256 of an input "blob:SHA/NAME".
std::string blob_of(const std::string& input) {
  return input.rfind("blob:", 0) == 0 ? input.substr(5, 64) : std::string{};
}

}  // namespace

TEST_F(MultiHost, ALaptopsUploadsRunOnOtherHostsAndComeBackIdenticalToASingleHostRun) {
  const fs::path a = make_clip("a.mp4", "testsrc2", 12, 15);
  const fs::path b = make_clip("b.mp4", "testsrc", 8, 25);
  const std::string submit_args = "/tmp/videos/a.mp4 /tmp/videos/b.mp4 --analyzers stats,thumbnails";

  start_solo();
  ASSERT_TRUE(solo_.client_host->copy_in(a, "/tmp/videos/a.mp4") &&
              solo_.client_host->copy_in(b, "/tmp/videos/b.mp4"));
  const auto reference_job = submit(solo_, submit_args);
  ASSERT_EQ(wait_job(solo_, reference_job), "done") << cli_stderr(solo_);
  const auto reference_frames = frames_by_input(solo_, reference_job);
  const auto reference_files = fetch(solo_, reference_job);
  ASSERT_EQ(reference_frames.size(), 2u);
  ASSERT_GE(reference_files.size(), 4u) << "expected thumbnails of both clips";

  start_multi();
  ASSERT_TRUE(laptop_->copy_in(a, "/tmp/videos/a.mp4") && laptop_->copy_in(b, "/tmp/videos/b.mp4"));
  // Only the laptop has the videos; no host sees the staging folder, and the
  // binaries, the one path they share, are read-only to them.
  for (auto* h : hosts_) {
    EXPECT_EQ(h->sees("/tmp/videos/a.mp4"), h == laptop_ || h == solo_.client_host) << h->name();
    EXPECT_FALSE(h->sees(staging_.string())) << h->name() << " sees the staging folder";
    EXPECT_NE(h->run("/usr/bin/touch " + bin("written-by-a-host") + " 2>/dev/null").code, 0) << h->name();
  }

  // Each node reports its own machine (its host name is the host's).
  for (const auto& n : cli_json(multi_, "nodes --json")["nodes"])
    EXPECT_EQ(n["host"], n["name"]) << n.dump();

  const auto job = submit(multi_, submit_args);
  ASSERT_NE(job, 0u) << cli_stderr(multi_);
  ASSERT_EQ(wait_job(multi_, job), "done") << cli_stderr(multi_);
  const json status = cli_json(multi_, "status " + std::to_string(job) + " --json");
  for (const auto& v : status["videos"]) {
    const std::string input = v["input"].get<std::string>();
    const std::string node = v["node"].get<std::string>();
    ASSERT_EQ(blob_of(input).size(), 64u) << "not uploaded: " << input;
    ASSERT_TRUE(multi_.node_hosts.count(node)) << node;
    // The node fetched the blob from the coordinator into its own cache,
    // and sent its thumbnails away: none is left in its output folder.
    const virtual_host& h = *multi_.node_hosts[node];
    EXPECT_TRUE(h.sees("/tmp/cache/" + blob_of(input))) << node << " has no cached " << input;
    EXPECT_EQ(h.run("/usr/bin/find /tmp/out -name '*.jpg'").out, "") << node << " kept thumbnails";
  }

  EXPECT_EQ(frames_by_input(multi_, job), reference_frames);
  // Thumbnails are JPEGs encoded by the same OpenCV from the same decoded
  // pixels, so their bytes are equal, not merely their number.
  EXPECT_EQ(fetch(multi_, job), reference_files);
  EXPECT_TRUE(laptop_->sees("/tmp/fetched"));
  for (const char* n : node_names)
    EXPECT_FALSE(multi_.node_hosts[n]->sees("/tmp/fetched")) << n;
}

TEST_F(MultiHost, ANodeCutOffMidVideoIsDeclaredDeadItsVideoResumesElsewhereAndItIsFencedWhenItRejoins) {
  const fs::path clip = make_clip("p.mp4", "testsrc2", static_cast<int>(partition_frames / 30), 30);

  start_solo();
  ASSERT_TRUE(solo_.client_host->copy_in(clip, "/tmp/videos/p.mp4"));
  const auto clean_job = submit(solo_, "/tmp/videos/p.mp4 --analyzers stats");
  ASSERT_EQ(wait_job(solo_, clean_job), "done") << cli_stderr(solo_);
  const auto clean = frames_by_input(solo_, clean_job);
  ASSERT_EQ(clean.size(), 1u);
  ASSERT_EQ(clean.begin()->second["stats"].size(), partition_frames);

  start_multi({"--testing.pace-fps=" + std::to_string(partition_fps)});
  ASSERT_TRUE(laptop_->copy_in(clip, "/tmp/videos/p.mp4"));
  const auto job = submit(multi_, "/tmp/videos/p.mp4 --analyzers stats");
  ASSERT_NE(job, 0u) << cli_stderr(multi_);

  std::string victim;
  ASSERT_TRUE(wait_until(
      [&] {
        const json v = video_of(multi_, job);
        if (v.value("state", "") != "running" || v.value("position", int64_t{0}) <= 90)
          return false;
        victim = v["node"].get<std::string>();
        return true;
      },
      30s))
      << "the video never ran past frame 90";
  ASSERT_TRUE(multi_.node_hosts.count(victim)) << victim;
  virtual_host& cut = *multi_.node_hosts[victim];
  ASSERT_TRUE(cut.unplug());

  // Heartbeats stop: the coordinator declares the node dead (connection
  // timeout, 5 s) and gives the video to another node under a new epoch.
  ASSERT_TRUE(wait_until([&] { return registered(multi_).count(victim) == 0; }, 30s))
      << victim << " is still registered with its cable out";
  std::string successor;
  ASSERT_TRUE(wait_until(
      [&] {
        // Running on another node, or done there already on a slow poll.
        const json v = video_of(multi_, job);
        const std::string state = v.value("state", "");
        if ((state != "running" && state != "done") || v.value("node", victim) == victim)
          return false;
        successor = v["node"].get<std::string>();
        return true;
      },
      30s))
      << "the video did not move: " << video_of(multi_, job).dump();
  EXPECT_FALSE(multi_.nodes[victim].poll()) << "the cut node died";
  // It resumed at the watermark (the frames stored contiguously before the
  // cut), not from the start. The status position is the node's last
  // report, refreshed twice a second, so it bounds nothing exactly.
  const std::string coord_log = log_of(*multi_.coordinator_host, "coordinator.log");
  const std::string requeued = "video 1 requeued from frame ";
  const auto at = coord_log.find(requeued);
  ASSERT_NE(at, std::string::npos) << coord_log;
  const int64_t resumed_from = std::stoll(coord_log.substr(at + requeued.size()));
  EXPECT_NE(coord_log.find(": node " + victim + " lost", at), std::string::npos) << coord_log;
  EXPECT_NE(
      coord_log.find("-> node " + successor + " epoch 2 from frame " + std::to_string(resumed_from), at),
      std::string::npos)
      << coord_log;
  EXPECT_GT(resumed_from, 0) << "the video started over";
  EXPECT_LT(resumed_from, static_cast<int64_t>(partition_frames));

  // The cable back: the node rejoins, and its claim on the video it ran
  // under epoch 1 is refused as stale (it is told to drop the video).
  ASSERT_TRUE(cut.plug());
  ASSERT_TRUE(wait_until([&] { return registered(multi_).count(victim) == 1; }, 30s))
      << victim << " did not rejoin: " << log_of(cut, "node.log");
  uint64_t stale = 0;
  EXPECT_TRUE(wait_until(
      [&] {
        const json n = cli_json(multi_, "nodes --json");
        stale = n.is_object() ? n["refusals"].value("stale_epoch", uint64_t{0}) : 0;
        return stale >= 1;
      },
      20s))
      << "no stale-epoch refusal: " << cli_json(multi_, "nodes --json").dump();
  EXPECT_NE(log_of(*multi_.coordinator_host, "coordinator.log").find("no longer assigned to " + victim),
            std::string::npos);
  EXPECT_TRUE(wait_until(
      [&] {
        const auto log = log_of(cut, "node.log");
        return log.find("video 1 cancelled") != std::string::npos || log.find("revoked") != std::string::npos;
      },
      20s))
      << "the fenced node did not drop the video: " << log_of(cut, "node.log");

  ASSERT_EQ(wait_job(multi_, job), "done") << cli_stderr(multi_);
  const json v = video_of(multi_, job);
  EXPECT_EQ(v["node"], successor);
  const auto frames = frames_by_input(multi_, job);
  ASSERT_EQ(frames.size(), 1u);
  const json& stats = frames.begin()->second["stats"];
  ASSERT_EQ(stats.size(), partition_frames);
  for (std::size_t i = 0; i < stats.size(); ++i)
    ASSERT_EQ(stats[i]["frame"].get<std::size_t>(), i) << "frame missing or doubled";
  EXPECT_EQ(frames, clean);
}
