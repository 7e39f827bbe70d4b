// The coordinator's web view (issue 14 items 2 and 3) with real processes: a
// coordinator and a node run a job, held mid-way (--testing.hold-at) while headless Chromium loads the
// page; the DOM it rendered shows the node, the running video with a progress
// between 0 and 100 and the actor tree. The JSON API parses, both /metrics
// endpoints count the job's frames, and an address beyond loopback without
// the cluster's certificates or a port taken costs the view, never the
// coordinator. The HTTPS view beyond loopback: tests/cluster/web_tls_test.cpp.

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "tests/cluster/cluster_fixture.hpp"

namespace framehive::testing {
namespace {

struct http_reply {
  int status = 0;  ///< 0: no answer
  std::string body;
};

/// GET with curl (loopback only), optionally with another Host header.
http_reply http_get(uint16_t port, const std::string& path, const std::string& host = {}) {
  const std::string header = host.empty() ? "" : " -H 'Host: " + host + "'";
  auto r = run_command("curl -s --max-time 10 -w '\\n%{http_code}'" + header + " 'http://127.0.0.1:" +
                       std::to_string(port) + path + "'");
  http_reply out;
  const auto nl = r.out.rfind('\n');
  if (nl == std::string::npos)
    return out;
  out.body = r.out.substr(0, nl);
  out.status = std::atoi(r.out.c_str() + nl + 1);
  return out;
}

nlohmann::json api(uint16_t port, const std::string& path) {
  const auto r = http_get(port, path);
  EXPECT_EQ(r.status, 200) << path << ": " << r.body;
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << path << " is not JSON: " << r.body;
  return j;
}

/// Headless Chromium, run once with --dump-dom. It talks to loopback only: every
/// host name fails to resolve and everything but loopback goes to a proxy
/// that does not exist; its profile, cache and crash reports stay in `dir`.
/// Every process it starts is killed before this returns or unwinds: its
/// process group (setsid) while its leader is not yet reaped, and any process
/// naming `dir` (crash handlers leave the group).
class headless_browser {
 public:
  explicit headless_browser(std::filesystem::path dir) : dir_(std::move(dir)) {}
  ~headless_browser() { stop(); }

  static std::string find() {
    auto r = run_command("command -v chromium 2>/dev/null");
    while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == ' '))
      r.out.pop_back();
    return r.code == 0 ? r.out : std::string{};
  }

  /// The DOM after `budget_ms` of virtual time (the page's timers run, each
  /// fetch is waited for); empty on failure, with the reason in `error`.
  std::string dump_dom(const std::string& chromium, const std::string& url, int budget_ms, std::string& error) {
    std::filesystem::create_directories(dir_ / "home");
    const auto out = dir_ / "dom.html";
    const auto err = dir_ / "chromium-stderr.txt";
    std::filesystem::remove(out);
    std::vector<std::string> argv{"/usr/bin/setsid", "/bin/sh", "-c",
                                  "exec \"$@\" 2>>'" + err.string() + "'", "sh", chromium,
                                  "--headless", "--no-sandbox", "--disable-gpu",
                                  "--user-data-dir=" + (dir_ / "profile").string(),
                                  "--no-first-run", "--no-default-browser-check",
                                  "--disable-background-networking", "--disable-component-update",
                                  "--disable-sync", "--disable-extensions", "--disable-default-apps",
                                  "--disable-domain-reliability", "--no-pings", "--disable-breakpad",
                                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                                  "--proxy-server=127.0.0.1:9",
                                  "--virtual-time-budget=" + std::to_string(budget_ms),
                                  "--dump-dom", url};
    auto p = child_process::spawn(argv, &error, out.string(),
                                  {"HOME=" + (dir_ / "home").string(),
                                   "XDG_CONFIG_HOME=" + (dir_ / "home" / ".config").string(),
                                   "XDG_CACHE_HOME=" + (dir_ / "home" / ".cache").string()});
    if (!p)
      return {};
    process_ = std::move(*p);
    const bool ended = ended_within(std::chrono::seconds(90));
    stop();
    if (!ended) {
      error = "chromium did not finish within 90 s";
      return {};
    }
    std::ifstream in(out);
    std::stringstream s;
    s << in.rdbuf();
    if (s.str().empty())
      error = "chromium printed no DOM; its stderr: " + run_command("tail -n 20 '" + err.string() + "'").out;
    return s.str();
  }

  /// Processes still naming our folder (none once stop() ran, unless one
  /// outlived SIGKILL by 10 s).
  std::vector<pid_t> leftovers() const {
    std::vector<pid_t> out;
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      const std::string name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos)
        continue;
      std::ifstream in(e.path() / "cmdline");
      std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (cmdline.find(dir_.string()) != std::string::npos && std::stoi(name) != getpid())
        out.push_back(std::stoi(name));
    }
    return out;
  }

 private:
  /// Waits for the leader to end without reaping it: its pid, and so its
  /// process group id, stays ours until stop() has signalled the group.
  bool ended_within(std::chrono::seconds timeout) {
    return wait_until(
        [&] {
          siginfo_t info{};
          return waitid(P_PID, static_cast<id_t>(process_.pid()), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                 info.si_pid == process_.pid();
        },
        timeout);
  }

  void stop() {
    if (process_.pid() > 0 && process_.running()) {
      ::kill(-process_.pid(), SIGKILL);  // the group: browser, zygotes, renderers, GPU and network processes
      process_.wait();
    }
    // A killed process keeps its /proc entry, command line included, until
    // the kernel has torn it down, which takes a while on a busy machine: wait
    // for that (bounded) instead of racing it.
    wait_until(
        [&] {
          const auto alive = leftovers();
          for (pid_t pid : alive)
            ::kill(pid, SIGKILL);
          return alive.empty();
        },
        std::chrono::seconds(10));
  }

  std::filesystem::path dir_;
  child_process process_;
};

/// One video row of the rendered page.
struct shown_video {
  uint64_t video = 0;
  std::string state;
  std::string progress;  ///< percent as the page wrote it; empty for a live source
};

std::vector<shown_video> videos_in(const std::string& dom) {
  static const std::regex row(
      R"re(<div class="video" data-video="(\d+)" data-state="(\w+)" data-position="-?\d+" data-total="-?\d+" data-progress="([0-9.]*)">)re");
  std::vector<shown_video> out;
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), row); it != std::sregex_iterator(); ++it)
    out.push_back({std::stoull((*it)[1]), (*it)[2], (*it)[3]});
  return out;
}

std::size_t count_of(const std::string& dom, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = dom.find(needle); at != std::string::npos; at = dom.find(needle, at + 1))
    ++n;
  return n;
}

/// The page's error banner (empty while every refresh succeeds).
std::string error_shown(const std::string& dom) {
  static const std::regex banner(R"re(<div id="error" role="alert"[^>]*>([^<]*)</div>)re");
  std::smatch m;
  return std::regex_search(dom, m, banner) ? m[1].str() : "no banner in the page";
}

class WebView : public cluster {
 protected:
  bool coordinator_logged(const std::string& text) const {
    return file_has_line_containing((dir_ / "coordinator.log").string(), text);
  }

  /// Three different free ports: web view, coordinator metrics, node metrics.
  void pick_ports() {
    web_port_ = free_port();
    do
      coordinator_metrics_ = free_port();
    while (coordinator_metrics_ == web_port_);
    do
      node_metrics_ = free_port();
    while (node_metrics_ == web_port_ || node_metrics_ == coordinator_metrics_);
  }

  uint16_t web_port_ = 0;
  uint16_t coordinator_metrics_ = 0;
  uint16_t node_metrics_ = 0;
};

TEST_F(WebView, ABrowserShowsTheNodesTheRunningVideoItsProgressAndTheTree) {
  const std::string chromium = headless_browser::find();
  if (chromium.empty())
    GTEST_SKIP() << "chromium is not installed (Debian: apt-get install chromium; scripts/setup.sh installs it): "
                    "the web view's browser test needs a real browser";
  pick_ports();
  coordinator_flags_ = {"--web.port=" + std::to_string(web_port_),
                        "--metrics.port=" + std::to_string(coordinator_metrics_)};
  start_coordinator();
  // Held at frame 60 of 120 until the browser and the API were looked at: the
  // page sees the video running, short of its end, however slow the browser.
  start_node("n1", 2, 1024, {hold_at(60), "--metrics.port=" + std::to_string(node_metrics_)});
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)));
  ASSERT_TRUE(wait_until([&] { return http_get(web_port_, "/api/nodes").status == 200; }, std::chrono::seconds(10)))
      << "no web view on port " << web_port_;

  const std::string clip = make_clip("web-view.mp4", 8, 15);  // 120 frames
  const uint64_t job = submit("'" + clip + "' --analyzers stats");
  ASSERT_GT(job, 0u);
  const std::string job_path = "/api/jobs/" + std::to_string(job);

  // Running with frames done: from now on the page can only show > 0.
  nlohmann::json before;
  ASSERT_TRUE(wait_until(
      [&] {
        before = api(web_port_, job_path);
        return before.is_object() && before["videos"].size() == 1 && before["videos"][0]["state"] == "running" &&
               before["videos"][0]["position"].get<int64_t>() > 0 && before["videos"][0]["total"].get<int64_t>() > 0;
      },
      std::chrono::seconds(60)))
      << before.dump();
  const double decoded_before = metric_sum(node_metrics_, "framehive_frames_decoded_total");
  const double stored_before = metric_sum(coordinator_metrics_, "framehive_frames_stored_total");

  headless_browser browser(dir_ / "browser");
  std::string error;
  const std::string dom =
      browser.dump_dom(chromium, "http://127.0.0.1:" + std::to_string(web_port_) + "/", 2500, error);
  EXPECT_TRUE(browser.leftovers().empty()) << "chromium processes outlived the run";
  ASSERT_FALSE(dom.empty()) << error;

  // Still running, short of its end, after the browser is done (held): so
  // the page saw a position below the total (positions only grow).
  const nlohmann::json after = api(web_port_, job_path);
  ASSERT_EQ(after["videos"][0]["state"], "running") << "the job ended while the browser ran: the hold did not hold";
  ASSERT_LT(after["videos"][0]["position"].get<int64_t>(), after["videos"][0]["total"].get<int64_t>());

  // What the browser rendered: the node, the running video with its progress, the tree.
  EXPECT_EQ(error_shown(dom), "") << "the page could not refresh";
  EXPECT_EQ(count_of(dom, "<tr class=\"node\" data-node=\"n1\">"), 1u) << dom;
  const auto videos = videos_in(dom);
  ASSERT_EQ(videos.size(), 1u) << dom;
  EXPECT_EQ(videos[0].video, before["videos"][0]["video"].get<uint64_t>());
  EXPECT_EQ(videos[0].state, "running");
  ASSERT_FALSE(videos[0].progress.empty()) << dom;
  const double progress = std::stod(videos[0].progress);
  EXPECT_GT(progress, 0.0);
  EXPECT_LT(progress, 100.0);
  EXPECT_NE(dom.find(">web-view.mp4<"), std::string::npos) << "the video's name is not shown";
  EXPECT_NE(dom.find("<progress max=\"100\" value=\"" + videos[0].progress + "\">"), std::string::npos) << dom;
  EXPECT_NE(dom.find("data-job=\"" + std::to_string(job) + "\" data-state=\"running\""), std::string::npos);
  for (const char* kind : {"coordinator", "node", "video", "decoder", "consumer"})
    EXPECT_GE(count_of(dom, "<tr class=\"actor\" data-kind=\"" + std::string(kind) + "\""), 1u) << kind << "\n" << dom;
  EXPECT_GE(count_of(dom, "<tr class=\"actor\" data-kind=\"decoder\" data-state=\"running\""), 1u) << dom;

  // The JSON API parses and is what the CLI prints.
  const nlohmann::json status = api(web_port_, "/api/status");
  ASSERT_TRUE(status.contains("jobs"));
  EXPECT_EQ(status["jobs"].size(), 1u);
  EXPECT_EQ(status["jobs"][0]["job"], job);
  const nlohmann::json tree = api(web_port_, "/api/tree");
  ASSERT_TRUE(tree.contains("entries"));
  EXPECT_TRUE(std::any_of(tree["entries"].begin(), tree["entries"].end(),
                          [](const nlohmann::json& e) { return e["kind"] == "decoder"; }));
  const nlohmann::json nodes = api(web_port_, "/api/nodes");
  ASSERT_EQ(nodes["nodes"].size(), 1u);
  EXPECT_EQ(nodes["nodes"][0]["name"], "n1");
  EXPECT_EQ(nodes, cli_json("nodes --json"));
  const auto missing = http_get(web_port_, "/api/jobs/999999");
  EXPECT_EQ(missing.status, 404);
  EXPECT_TRUE(nlohmann::json::parse(missing.body, nullptr, false).contains("error")) << missing.body;
  EXPECT_EQ(http_get(web_port_, "/api/nothing").status, 404);
  EXPECT_EQ(http_get(web_port_, "/api/jobs/1x").status, 404);
  // A page of another site whose name resolves to 127.0.0.1 (DNS rebinding).
  EXPECT_EQ(http_get(web_port_, "/api/status", "attacker.example:" + std::to_string(web_port_)).status, 403);
  EXPECT_EQ(http_get(web_port_, "/api/status", "localhost:" + std::to_string(web_port_)).status, 200);

  // Both /metrics count the job's frames: strictly more than before, once it goes on.
  release();
  EXPECT_GT(decoded_before, 0);
  EXPECT_GE(stored_before, 0);
  double decoded = 0, stored = 0;
  EXPECT_TRUE(wait_until(
      [&] {
        decoded = metric_sum(node_metrics_, "framehive_frames_decoded_total");
        stored = metric_sum(coordinator_metrics_, "framehive_frames_stored_total");
        return decoded > decoded_before && stored > stored_before;
      },
      std::chrono::seconds(30)))
      << "decoded " << decoded_before << " -> " << decoded << ", stored " << stored_before << " -> " << stored;

  // At the end the page shows the video done at 100%.
  ASSERT_EQ(wait_job(job), "done");
  const std::string done_dom =
      browser.dump_dom(chromium, "http://127.0.0.1:" + std::to_string(web_port_) + "/", 1500, error);
  ASSERT_FALSE(done_dom.empty()) << error;
  const auto done = videos_in(done_dom);
  ASSERT_EQ(done.size(), 1u) << done_dom;
  EXPECT_EQ(done[0].state, "done");
  EXPECT_EQ(done[0].progress, "100.0");
  EXPECT_EQ(api(web_port_, job_path)["state"], "done");
  EXPECT_EQ(metric_sum(coordinator_metrics_, "framehive_frames_stored_total"), 120);
  EXPECT_TRUE(browser.leftovers().empty());
}

TEST_F(WebView, AnAddressBeyondLoopbackWithoutCertificatesIsRefusedAndTheCoordinatorRunsOn) {
  // No TLS files: beyond loopback the view would be plain HTTP, so it is refused
  // (nothing is ever sent to 0.0.0.0: the check is that nothing listens on loopback).
  pick_ports();
  coordinator_flags_ = {"--web.port=" + std::to_string(web_port_), "--web.bind=0.0.0.0", "--metrics.port=0"};
  start_coordinator();
  start_node("n1", 1, 256, {"--metrics.port=0"});
  ASSERT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)))
      << "the coordinator did not run on";
  EXPECT_TRUE(coordinator_logged("web view: not starting on 0.0.0.0:" + std::to_string(web_port_)));
  // The refusal says what to pass.
  EXPECT_TRUE(coordinator_logged("must be HTTPS with the cluster's certificates"));
  EXPECT_TRUE(coordinator_logged("--tls.ca=DIR/ca.crt --tls.cert=DIR/NAME.crt --tls.key=DIR/NAME.key"));
  EXPECT_TRUE(coordinator_logged("running without the web view"));
  EXPECT_EQ(cli_json("nodes --json")["nodes"].size(), 1u) << "the coordinator stopped serving the cluster";
  EXPECT_EQ(http_get(web_port_, "/").status, 0) << "something listens on the refused web port";
}

TEST_F(WebView, APortTakenCostsTheWebViewNotTheCoordinator) {
  pick_ports();
  // Another process's listener on the web port (here: this test's).
  const int holder = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(holder, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(web_port_);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(holder, 1), 0);
  coordinator_flags_ = {"--web.port=" + std::to_string(web_port_), "--metrics.port=0"};
  start_coordinator();
  start_node("n1", 1, 256, {"--metrics.port=0"});
  EXPECT_TRUE(wait_until([&] { return registered_nodes() == 1; }, std::chrono::seconds(30)))
      << "the coordinator did not run on";
  EXPECT_TRUE(coordinator_logged("running without the web view"));
  ::close(holder);
}

}  // namespace
}  // namespace framehive::testing
