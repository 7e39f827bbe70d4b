// framehive: the command line of the cluster.
//
//   framehive [--coordinator HOST:PORT] COMMAND ...
//     submit VIDEO... --analyzers a,b [--stride K] [--wait] [--json]
//     status [JOB] [--json]       nodes [--json]       cancel JOB [--json]
//     results JOB [--json] [--frames]
//     tree [--json] [--watch]
//
// Exit codes: 0 ok; 1 the job failed or was cancelled (submit --wait);
// 2 usage error or request refused; 3 coordinator unreachable; 4 no such job;
// 5 the coordinator did not answer in time.

#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <functional>
#include <map>
#include <optional>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "actors/messages.hpp"
#include "caf/io/all.hpp"

using namespace framehive;
using json = nlohmann::json;

namespace {

enum exit_code { ok = 0, job_failed = 1, usage = 2, unreachable = 3, not_found = 4, timed_out = 5 };

struct cli_config : caf::actor_system_config {
  cli_config() {
    configure_network(*this);
    set("logger.file-verbosity", caf::atom("quiet"));
  }
};

/// A connection to the coordinator with finite timeouts on every request.
class session {
 public:
  explicit session(const std::string& address) {
    register_protocol(cfg_);
    cfg_.load<caf::io::middleman>();
    sys_.emplace(cfg_);
    std::string host;
    uint16_t port = 0;
    if (!split_host_port(address, host, port)) {
      std::cerr << "framehive: coordinator address must be HOST:PORT, got '" << address << "'\n";
      std::exit(usage);
    }
    auto c = sys_->middleman().remote_actor<coordinator_actor>(host, port);
    if (!c) {
      std::cerr << "framehive: cannot reach the coordinator at " << address << ": " << sys_->render(c.error())
                << "\n";
      std::exit(unreachable);
    }
    coord_ = *c;
  }

  /// Sends a request and returns the reply; on error prints it and exits.
  template <class T, class... Ts>
  T ask(Ts&&... xs) {
    caf::scoped_actor self{*sys_};
    T out{};
    int code = -1;
    self->request(coord_, std::chrono::seconds(30), std::forward<Ts>(xs)...)
        .receive([&](T& x) { out = std::move(x); code = ok; },
                 [&](caf::error& e) {
                   std::cerr << "framehive: " << describe(e) << "\n";
                   if (e.category() == caf::atom("framehive") && e.code() == static_cast<uint8_t>(errc::not_found))
                     code = not_found;
                   else if (e == caf::sec::request_timeout)
                     code = timed_out;
                   else if (e.category() == caf::atom("framehive"))
                     code = usage;
                   else
                     code = unreachable;
                 });
    if (code != ok)
      std::exit(code);
    return out;
  }

 private:
  cli_config cfg_;
  std::optional<caf::actor_system> sys_;
  coordinator_actor coord_;
};

bool is_url(const std::string& s) { return s.find("://") != std::string::npos; }

std::string bar(double fraction, int width) {
  fraction = std::max(0.0, std::min(1.0, fraction));
  int full = static_cast<int>(fraction * width + 0.5);
  return std::string(static_cast<std::size_t>(full), '#') + std::string(static_cast<std::size_t>(width - full), '.');
}

void print_status_table(const json& jobs) {
  std::printf("%-6s %-10s %-7s %-10s %-12s %-10s %s\n", "JOB", "STATE", "VIDEO", "VSTATE", "NODE", "PROGRESS",
              "INPUT / ERROR");
  for (const auto& j : jobs) {
    for (const auto& v : j["videos"]) {
      char progress[32];
      std::snprintf(progress, sizeof(progress), "%lld/%lld", v.value("position", 0LL), v.value("total", 0LL));
      std::string what = v.value("input", "");
      if (!v.value("error", "").empty())
        what += "  (" + v.value("error", "") + ")";
      std::printf("%-6llu %-10s %-7llu %-10s %-12s %-10s %s\n", j.value("job", 0ULL),
                  j.value("state", "").c_str(), v.value("video", 0ULL), v.value("state", "").c_str(),
                  v.value("node", "").c_str(), progress, what.c_str());
    }
  }
}

void print_results(const json& r) {
  std::printf("job %llu: %s\n", r.value("job", 0ULL), r.value("state", "").c_str());
  for (const auto& v : r["videos"]) {
    std::printf("\n  %s  [%s] node %s, %lld frames (%lld decoded once, %lld decode errors)\n",
                v.value("input", "").c_str(), v.value("state", "").c_str(),
                v["node"].is_string() ? v["node"].get<std::string>().c_str() : "-", v.value("frames_total", 0LL),
                v.value("frames_decoded", 0LL), v.value("decode_errors", 0LL));
    if (v["error"].is_string())
      std::printf("    error: %s\n", v["error"].get<std::string>().c_str());
    std::printf("    %-11s %10s %9s %9s  %s\n", "ANALYZER", "FRAMES", "MEAN_MS", "P95_MS", "SUMMARY");
    for (const auto& [name, a] : v["analyzers"].items()) {
      json extra = a["summary"];
      for (const char* k : {"frames_processed", "mean_ms", "p95_ms", "paths"})
        extra.erase(k);
      std::string s = extra.dump();
      if (s.size() > 100)
        s = s.substr(0, 97) + "...";
      std::printf("    %-11s %10lld %9.2f %9.2f  %s\n", name.c_str(), a.value("frames_processed", 0LL),
                  a.value("mean_ms", 0.0), a.value("p95_ms", 0.0), s.c_str());
    }
  }
}

void print_tree(const json& t) {
  std::map<std::string, std::vector<json>> children;
  for (const auto& e : t["entries"])
    children[e.value("parent", "")].push_back(e);
  std::printf("%-44s %-9s %7s %13s %9s %5s %8s %8s %5s\n", "ACTOR", "STATE", "FPS", "POSITION", "RING", "LAG",
              "PID", "RESTARTS", "REDLV");
  std::function<void(const std::string&, int)> walk = [&](const std::string& parent, int depth) {
    for (const auto& e : children[parent]) {
      std::string label = std::string(static_cast<std::size_t>(depth * 2), ' ') + e.value("kind", "") + " " +
                          e.value("name", "");
      char pos[32], ring[32];
      std::snprintf(pos, sizeof(pos), "%lld/%lld", e.value("position", 0LL), e.value("total", 0LL));
      std::snprintf(ring, sizeof(ring), "%llu/%llu", e.value("ring_fill", 0ULL), e.value("ring_slots", 0ULL));
      std::printf("%-44s %-9s %7.1f %13s %9s %5lld %8u %8u %5llu\n", label.substr(0, 44).c_str(),
                  e.value("state", "").c_str(), e.value("fps", 0.0), pos, ring, e.value("lag", 0LL),
                  e.value("pid", 0u), e.value("restarts", 0u), e.value("redelivered", 0ULL));
      walk(e.value("id", ""), depth + 1);
    }
  };
  walk("", 0);
}

int wait_for_job(session& s, uint64_t job, bool as_json) {
  const bool tty = isatty(STDOUT_FILENO) && !as_json;
  int lines = 0;
  while (true) {
    json st = json::parse(s.ask<std::string>(status_atom::value, job));
    const std::string state = st.value("state", "");
    if (tty) {
      for (int i = 0; i < lines; ++i)
        std::printf("\033[1A\033[2K");
      lines = 0;
      for (const auto& v : st["videos"]) {
        const double total = static_cast<double>(v.value("total", 0LL));
        const double pos = static_cast<double>(v.value("position", 0LL));
        const double frac = v.value("state", "") == "done" ? 1.0 : (total > 0 ? pos / total : 0.0);
        std::printf("%-30s [%s] %5.1f%% %-9s %s\n",
                    std::filesystem::path(v.value("input", "")).filename().string().substr(0, 30).c_str(),
                    bar(frac, 30).c_str(), frac * 100, v.value("state", "").c_str(), v.value("node", "").c_str());
        ++lines;
      }
      std::fflush(stdout);
    }
    if (state == "done" || state == "failed" || state == "cancelled") {
      json r = json::parse(s.ask<std::string>(results_atom::value, job, false));
      if (as_json)
        std::cout << r.dump(2) << "\n";
      else
        print_results(r);
      return state == "done" ? ok : job_failed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"framehive: submit videos to the cluster and watch them being analysed"};
  app.require_subcommand(1);
  std::string coordinator = std::getenv("FRAMEHIVE_COORDINATOR") ? std::getenv("FRAMEHIVE_COORDINATOR")
                                                                  : "127.0.0.1:4242";
  app.add_option("--coordinator", coordinator, "coordinator HOST:PORT (or FRAMEHIVE_COORDINATOR)");
  bool as_json = false;

  auto* submit = app.add_subcommand("submit", "submit videos for analysis");
  std::vector<std::string> inputs;
  std::vector<std::string> analyzers;
  uint32_t stride = 1;
  bool wait = false;
  submit->add_option("videos", inputs, "video files or URLs")->required();
  submit->add_option("--analyzers,-a", analyzers, "comma-separated analyzers: stats, people, motion, thumbnails, touch; KIND.LABEL runs another instance (touch.2)")
      ->required()
      ->delimiter(',');
  submit->add_option("--stride", stride, "analyse every k-th frame")->check(CLI::PositiveNumber);
  submit->add_flag("--wait", wait, "wait for the job, showing progress; exit 1 if it failed");
  submit->add_flag("--json", as_json, "machine-readable output");

  auto* status = app.add_subcommand("status", "jobs and their videos");
  uint64_t job = 0;
  status->add_option("job", job, "job id (default: all jobs)");
  status->add_flag("--json", as_json, "machine-readable output");

  auto* results = app.add_subcommand("results", "results of a job");
  bool frames = false;
  results->add_option("job", job, "job id")->required();
  results->add_flag("--json", as_json, "machine-readable output");
  results->add_flag("--frames", frames, "include every frame's result (with --json)");

  auto* tree = app.add_subcommand("tree", "the live actor tree");
  bool watch = false;
  tree->add_flag("--json", as_json, "machine-readable output");
  tree->add_flag("--watch", watch, "refresh every second, like top");

  auto* nodes = app.add_subcommand("nodes", "registered nodes");
  nodes->add_flag("--json", as_json, "machine-readable output");

  auto* cancel = app.add_subcommand("cancel", "cancel a job");
  cancel->add_option("job", job, "job id")->required();
  cancel->add_flag("--json", as_json, "machine-readable output");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? ok : usage;
  }

  session s(coordinator);
  if (submit->parsed()) {
    job_spec spec;
    for (const auto& in : inputs)
      spec.inputs.push_back(is_url(in) ? in : std::filesystem::absolute(in).lexically_normal().string());
    spec.analyzers = analyzers;
    spec.stride = stride;
    const uint64_t id = s.ask<uint64_t>(spec);
    if (!wait) {
      if (as_json)
        std::cout << json{{"job", id}}.dump() << "\n";
      else
        std::cout << id << "\n";
      return ok;
    }
    if (!as_json)
      std::cout << "job " << id << "\n";
    return wait_for_job(s, id, as_json);
  }
  if (status->parsed()) {
    json st = json::parse(s.ask<std::string>(status_atom::value, job));
    if (as_json)
      std::cout << st.dump(2) << "\n";
    else
      print_status_table(job ? json::array({st}) : st["jobs"]);
    return ok;
  }
  if (results->parsed()) {
    json r = json::parse(s.ask<std::string>(results_atom::value, job, frames));
    if (as_json)
      std::cout << r.dump(2) << "\n";
    else
      print_results(r);
    return ok;
  }
  if (tree->parsed()) {
    do {
      json t = json::parse(s.ask<std::string>(tree_atom::value));
      if (as_json) {
        std::cout << t.dump(2) << "\n";
      } else {
        if (watch)
          std::printf("\033[H\033[2J");
        print_tree(t);
      }
      std::fflush(stdout);
      if (watch)
        std::this_thread::sleep_for(std::chrono::seconds(1));
    } while (watch);
    return ok;
  }
  if (nodes->parsed()) {
    json n = json::parse(s.ask<std::string>(nodes_atom::value));
    if (as_json) {
      std::cout << n.dump(2) << "\n";
    } else {
      std::printf("%-16s %-16s %5s %12s %8s %8s\n", "NODE", "HOST", "CORES", "SHM_BUDGET", "RUNNING", "PID");
      for (const auto& x : n["nodes"])
        std::printf("%-16s %-16s %5u %10llu M %8llu %8u\n", x.value("name", "").c_str(), x.value("host", "").c_str(),
                    x.value("cores", 0u), x.value("shm_budget", 0ULL) >> 20, x.value("running", 0ULL),
                    x.value("pid", 0u));
    }
    return ok;
  }
  if (cancel->parsed()) {
    json c = json::parse(s.ask<std::string>(cancel_atom::value, job));
    if (as_json)
      std::cout << c.dump() << "\n";
    else
      std::cout << "job " << job << ": " << c.value("state", "") << "\n";
    return ok;
  }
  return usage;
}
