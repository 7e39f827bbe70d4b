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
#include "analysis/catalog.hpp"
#include "cli/render.hpp"
#include "common/text.hpp"

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

/// Bytes as they can be shown on a terminal.
std::string shown(const std::string& bytes) { return printable_utf8(bytes); }

void print_status_table(const std::vector<job_status>& jobs) {
  std::printf("%-6s %-10s %-7s %-10s %-12s %-10s %s\n", "JOB", "STATE", "VIDEO", "VSTATE", "NODE", "PROGRESS",
              "INPUT / ERROR");
  for (const auto& j : jobs) {
    for (const auto& v : j.videos) {
      char progress[48];
      std::snprintf(progress, sizeof(progress), "%lld/%lld", static_cast<long long>(v.position),
                    static_cast<long long>(v.total));
      std::string what = shown(v.input);
      if (!v.error.empty())
        what += "  (" + shown(v.error) + ")";
      std::printf("%-6llu %-10s %-7llu %-10s %-12s %-10s %s\n", static_cast<unsigned long long>(j.job),
                  to_string(j.state).c_str(), static_cast<unsigned long long>(v.video), to_string(v.state).c_str(),
                  shown(v.node).c_str(), progress, what.c_str());
    }
  }
}

void print_results(const job_results& r) {
  std::printf("job %llu: %s\n", static_cast<unsigned long long>(r.job), to_string(r.state).c_str());
  for (const auto& v : r.videos) {
    std::printf("\n  %s  [%s] node %s, %lld frames (%lld decoded once, %lld decode errors)\n", shown(v.input).c_str(),
                to_string(v.state).c_str(), v.node.empty() ? "-" : shown(v.node).c_str(),
                static_cast<long long>(v.frames_total), static_cast<long long>(v.frames_decoded),
                static_cast<long long>(v.decode_errors));
    if (!v.error.empty())
      std::printf("    error: %s\n", shown(v.error).c_str());
    std::printf("    %-11s %10s %9s %9s  %s\n", "ANALYZER", "FRAMES", "MEAN_MS", "P95_MS", "SUMMARY");
    for (const auto& a : v.analyzers) {
      json extra = cli::to_json(a.analyzer, a.summary);
      for (const char* k : {"frames_processed", "mean_ms", "p95_ms", "paths"})
        extra.erase(k);
      std::string s = cli::dump(extra, -1);
      if (s.size() > 100)
        s = s.substr(0, 97) + "...";
      std::printf("    %-11s %10llu %9.2f %9.2f  %s\n", shown(a.analyzer).c_str(),
                  static_cast<unsigned long long>(a.summary.frames_processed), a.summary.mean_ms, a.summary.p95_ms,
                  s.c_str());
    }
  }
}

void print_tree(const cluster_tree& t) {
  std::map<std::string, std::vector<const tree_entry*>> children;
  for (const auto& e : t.entries)
    children[e.parent].push_back(&e);
  std::printf("%-44s %-10s %7s %13s %9s %5s %8s %8s %5s\n", "ACTOR", "STATE", "FPS", "POSITION", "RING", "LAG",
              "PID", "RESTARTS", "REDLV");
  std::function<void(const std::string&, int)> walk = [&](const std::string& parent, int depth) {
    if (depth > 16)
      return;  // rows form a tree; a forged cycle must not recurse forever
    for (const auto* e : children[parent]) {
      std::string label =
          std::string(static_cast<std::size_t>(depth * 2), ' ') + to_string(e->kind) + " " + shown(e->name);
      char pos[48], ring[48];
      std::snprintf(pos, sizeof(pos), "%lld/%lld", static_cast<long long>(e->position),
                    static_cast<long long>(e->total));
      std::snprintf(ring, sizeof(ring), "%llu/%llu", static_cast<unsigned long long>(e->ring_fill),
                    static_cast<unsigned long long>(e->ring_slots));
      std::printf("%-44s %-10s %7.1f %13s %9s %5lld %8u %8u %5llu\n", label.substr(0, 44).c_str(),
                  to_string(e->state).c_str(), e->fps, pos, ring, static_cast<long long>(e->lag), e->pid, e->restarts,
                  static_cast<unsigned long long>(e->redelivered));
      walk(e->id, depth + 1);
    }
  };
  walk("", 0);
}

void print_nodes(const cluster_nodes& n) {
  std::printf("%-16s %-16s %5s %12s %8s %8s\n", "NODE", "HOST", "CORES", "SHM_BUDGET", "RUNNING", "PID");
  for (const auto& x : n.nodes)
    std::printf("%-16s %-16s %5u %10llu M %8llu %8u\n", shown(x.name).c_str(), shown(x.host).c_str(), x.cores,
                static_cast<unsigned long long>(x.shm_budget >> 20), static_cast<unsigned long long>(x.running), x.pid);
}

void print_progress(const job_status& st, int& lines) {
  for (int i = 0; i < lines; ++i)
    std::printf("\033[1A\033[2K");
  lines = 0;
  for (const auto& v : st.videos) {
    const double total = static_cast<double>(v.total);
    const double pos = static_cast<double>(v.position);
    const double frac = v.state == video_state::done ? 1.0 : (total > 0 ? pos / total : 0.0);
    std::printf("%-30s [%s] %5.1f%% %-9s %s\n",
                shown(std::filesystem::path(v.input).filename().string()).substr(0, 30).c_str(), bar(frac, 30).c_str(),
                frac * 100, to_string(v.state).c_str(), shown(v.node).c_str());
    ++lines;
  }
  std::fflush(stdout);
}

bool is_finished(job_state s) { return s == job_state::done || s == job_state::failed || s == job_state::cancelled; }

int wait_for_job(session& s, uint64_t job, bool as_json) {
  const bool tty = isatty(STDOUT_FILENO) && !as_json;
  int lines = 0;
  while (true) {
    auto st = s.ask<job_status>(status_atom::value, job);
    if (tty)
      print_progress(st, lines);
    if (is_finished(st.state)) {
      auto r = s.ask<job_results>(results_atom::value, job, false);
      if (as_json)
        std::cout << cli::dump(cli::to_json(r, false)) << "\n";
      else
        print_results(r);
      return st.state == job_state::done ? ok : job_failed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
}

// -- the commands -----------------------------------------------------------------------

int run_submit(session& s, const std::vector<std::string>& inputs, const std::vector<std::string>& analyzers,
               uint32_t stride, bool wait, bool as_json) {
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

int run_status(session& s, uint64_t job, bool as_json) {
  if (job != 0) {
    auto st = s.ask<job_status>(status_atom::value, job);
    if (as_json)
      std::cout << cli::dump(cli::to_json(st)) << "\n";
    else
      print_status_table({st});
    return ok;
  }
  auto all = s.ask<cluster_status>(status_atom::value);
  if (as_json)
    std::cout << cli::dump(cli::to_json(all)) << "\n";
  else
    print_status_table(all.jobs);
  return ok;
}

int run_results(session& s, uint64_t job, bool frames, bool as_json) {
  auto r = s.ask<job_results>(results_atom::value, job, frames);
  if (as_json)
    std::cout << cli::dump(cli::to_json(r, frames)) << "\n";
  else
    print_results(r);
  return ok;
}

int run_tree(session& s, bool watch, bool as_json) {
  do {
    auto t = s.ask<cluster_tree>(tree_atom::value);
    if (as_json) {
      std::cout << cli::dump(cli::to_json(t)) << "\n";
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

int run_nodes(session& s, bool as_json) {
  auto n = s.ask<cluster_nodes>(nodes_atom::value);
  if (as_json)
    std::cout << cli::dump(cli::to_json(n)) << "\n";
  else
    print_nodes(n);
  return ok;
}

int run_cancel(session& s, uint64_t job, bool as_json) {
  auto c = s.ask<job_status>(cancel_atom::value, job);
  if (as_json)
    std::cout << cli::dump(json{{"job", c.job}, {"state", to_string(c.state)}}, -1) << "\n";
  else
    std::cout << "job " << job << ": " << to_string(c.state) << "\n";
  return ok;
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
  submit->add_option("--analyzers,-a", analyzers, "comma-separated analyzers: " + analysis::analyzer_list() + "; KIND.LABEL runs another instance (touch.2)")
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
  if (submit->parsed())
    return run_submit(s, inputs, analyzers, stride, wait, as_json);
  if (status->parsed())
    return run_status(s, job, as_json);
  if (results->parsed())
    return run_results(s, job, frames, as_json);
  if (tree->parsed())
    return run_tree(s, watch, as_json);
  if (nodes->parsed())
    return run_nodes(s, as_json);
  if (cancel->parsed())
    return run_cancel(s, job, as_json);
  return usage;
}
