// framehive: the command line of the cluster.
//
//   framehive [--coordinator HOST:PORT] [--tls.ca FILE --tls.cert FILE --tls.key FILE] COMMAND ...
//     submit VIDEO... --analyzers KIND[.LABEL][/K|@Nfps],... [--stride K] [--wait] [--json] [--node-visible]
//            [--detect-classes C,...] [--detect-model FILE [--detect-weights FILE] --detect-names FILE
//             [--detect-size WxH] [--detect-scale X] [--detect-mean A,B,C] [--detect-channels rgb|bgr]
//             [--detect-threshold X] [--detect-nms X]]
//     fetch JOB [--out DIR] [--json]   (the job's artifacts, into DIR/video-V/ANALYZER/NAME)
//     status [JOB] [--json]       nodes [--json]       cancel JOB [--json]
//     results JOB [--json] [--frames]
//     tree [--json] [--watch]
//     delete JOB [--json]         (a finished job and its results)
//     certs init DIR              (a cluster CA: DIR/ca.crt, DIR/ca.key)
//     certs issue DIR NAME --role coordinator|node|client   (DIR/NAME.crt, DIR/NAME.key)
//
// The coordinator address may also come from FRAMEHIVE_COORDINATOR, the TLS
// files from FRAMEHIVE_TLS_CA, FRAMEHIVE_TLS_CERT, FRAMEHIVE_TLS_KEY (flags win).
//
// Exit codes: 0 ok; 1 the job failed or was cancelled (submit --wait);
// 2 usage error or request refused (also: delete of a job that still runs,
// certs errors); 3 coordinator unreachable; 4 no such job; 5 the coordinator
// did not answer in time; 6 refused by the coordinator's TLS or
// authentication (no certificate, one of another CA, plaintext against TLS or
// TLS against plaintext); 7 the job has no artifacts to fetch; 8 a local
// file could not be uploaded or an artifact not written (the message names
// the file and the cause).

#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <sstream>
#include <filesystem>
#include <iostream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "actors/lifecycle.hpp"
#include "actors/messages.hpp"
#include "caf/io/all.hpp"
#include "caf/openssl/all.hpp"
#include "analysis/catalog.hpp"
#include "cli/render.hpp"
#include "cli/transfer.hpp"
#include "common/identity.hpp"
#include "common/text.hpp"
#include "media/input_url.hpp"

using namespace framehive;
using json = nlohmann::json;

namespace {

enum exit_code {
  ok = 0,
  job_failed = 1,
  usage = 2,
  unreachable = 3,
  not_found = 4,
  timed_out = 5,
  refused = 6,
  no_artifacts = 7,
  transfer_failed = 8,
};

/// CAF's blocking remote_actor has no deadline of its own; this bounds it.
constexpr auto connect_deadline = std::chrono::seconds(15);

struct cli_config : caf::actor_system_config {
  cli_config() {
    configure_network(*this);
    set("logger.file-verbosity", caf::atom("quiet"));
  }
};

/// Ends the process with `timed_out` unless destroyed within `limit`: a peer
/// that accepts TCP but never completes a handshake must not hang the CLI.
class watchdog {
 public:
  watchdog(std::chrono::seconds limit, std::string what)
      : thread_([this, limit, what = std::move(what)] {
          std::unique_lock<std::mutex> lock(mutex_);
          if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
            std::cerr << "framehive: " << what << ": no answer within " << limit.count() << " s\n";
            std::_Exit(timed_out);
          }
        }) {}
  ~watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

/// True if TCP connected but the TLS or CAF handshake failed: the peer closed
/// it (a TLS coordinator refusing a plaintext client or a certificate), or,
/// with TLS, the session could not be set up (a plaintext coordinator answers
/// the TLS hello with garbage; CAF then reports cannot_connect_to_node without
/// the "ip_connect failed" of a closed port).
bool refused_in_handshake(const caf::error& e, bool tls) {
  if (e == caf::sec::disconnect_during_handshake)
    return true;
  return tls && e == caf::sec::cannot_connect_to_node &&
         caf::to_string(e.context()).find("ip_connect") == std::string::npos;
}

/// Why a connection failed, for a user: TLS refusals get their own exit code.
int explain_connect_error(const caf::error& e, const std::string& address, bool tls, caf::actor_system& sys) {
  if (!refused_in_handshake(e, tls)) {
    std::cerr << "framehive: cannot reach the coordinator at " << address << ": " << sys.render(e) << "\n";
    return unreachable;
  }
  std::cerr << "framehive: the coordinator at " << address << " refused the connection during the handshake ("
            << sys.render(e) << "): ";
  if (tls)
    std::cerr << "no TLS session: the coordinator did not accept this certificate (it must be issued by the "
                 "CA in the coordinator's --tls.ca), or this --tls.ca did not accept the coordinator's, or the "
                 "coordinator runs without TLS\n";
  else
    std::cerr << "it requires TLS. Give --tls.ca, --tls.cert and --tls.key (or FRAMEHIVE_TLS_CA, "
                 "FRAMEHIVE_TLS_CERT, FRAMEHIVE_TLS_KEY) with a client certificate of the cluster "
                 "(framehive certs issue DIR NAME --role client)\n";
  return refused;
}

/// A connection to the coordinator with finite timeouts on every request.
class session : public cli::blob_peer {
 public:
  session(const std::string& address, const tls_files& tls) {
    register_protocol(cfg_);
    cfg_.load<caf::io::middleman>();
    if (auto ok = use_tls(cfg_, tls); !ok) {
      std::cerr << "framehive: " << ok.error() << "\n";
      std::exit(usage);
    }
    sys_.emplace(cfg_);
    std::string host;
    uint16_t port = 0;
    if (!split_host_port(address, host, port)) {
      std::cerr << "framehive: coordinator address must be HOST:PORT, got '" << address << "'\n";
      std::_Exit(usage);
    }
    auto c = connect(host, port, tls.enabled());
    if (!c)
      std::_Exit(explain_connect_error(c.error(), address, tls.enabled(), *sys_));
    coord_ = *c;
    self_.emplace(*sys_);
  }

  /// Sends a request and returns the reply or the error.
  template <class T, class... Ts>
  caf::expected<T> request(Ts&&... xs) {
    return await<T>((*self_)->request(coord_, request_timeout, std::forward<Ts>(xs)...));
  }

  /// Sends a request and returns the reply; on error prints it and exits.
  template <class T, class... Ts>
  T ask(Ts&&... xs) {
    auto out = request<T>(std::forward<Ts>(xs)...);
    if (!out) {
      std::cerr << "framehive: " << describe(out.error()) << "\n";
      std::exit(exit_code_of(out.error()));
    }
    return std::move(*out);
  }

  // -- blob_peer: the data path's requests --

  caf::expected<upload_offer> begin(const upload_begin& x) override { return request<upload_offer>(x); }
  void send_chunk(upload_chunk x) override {
    acks_.push_back((*self_)->request(coord_, request_timeout, std::move(x)));
  }
  caf::expected<uint64_t> next_ack() override { return await<uint64_t>(take_oldest(acks_)); }
  void request_chunk(const std::string& sha256, uint64_t offset) override {
    chunks_.push_back((*self_)->request(coord_, request_timeout, fetch_atom::value, sha256, offset));
  }
  caf::expected<blob_chunk> next_chunk() override { return await<blob_chunk>(take_oldest(chunks_)); }
  void abandon() override {
    // Their replies stay in the mailbox, skipped by every later receive (each
    // waits for its own request's id).
    acks_.clear();
    chunks_.clear();
  }

 private:
  /// Every request, the chunks in flight included, gives up after this.
  static constexpr auto request_timeout = std::chrono::seconds(30);

  using ack_handle =
      decltype(std::declval<caf::scoped_actor&>()->request(std::declval<coordinator_actor&>(), request_timeout,
                                                           std::declval<upload_chunk>()));
  using chunk_handle = decltype(std::declval<caf::scoped_actor&>()->request(
      std::declval<coordinator_actor&>(), request_timeout, fetch_atom::value, std::string{}, uint64_t{}));

  template <class Handle>
  static Handle take_oldest(std::deque<Handle>& q) {
    Handle h = std::move(q.front());
    q.pop_front();
    return h;
  }

  /// Waits for the reply to one request (others stay queued for their turn).
  template <class T, class Handle>
  static caf::expected<T> await(Handle&& h) {
    caf::expected<T> out{caf::error{}};
    h.receive([&](T& x) { out = std::move(x); }, [&](caf::error& e) { out = std::move(e); });
    return out;
  }

  caf::expected<coordinator_actor> connect(const std::string& host, uint16_t port, bool tls) {
    watchdog guard(connect_deadline, "connecting to " + host + ":" + std::to_string(port));
    if (tls)
      return caf::openssl::remote_actor<coordinator_actor>(*sys_, host, port);
    return sys_->middleman().remote_actor<coordinator_actor>(host, port);
  }

 public:
  /// The exit code for an error the coordinator answered.
  static int exit_code_of(const caf::error& e) {
    if (!e)
      return unreachable;
    if (e == caf::sec::request_timeout)
      return timed_out;
    if (e.category() != caf::atom("framehive"))
      return unreachable;
    switch (static_cast<errc>(e.code())) {
      case errc::not_found:
        return not_found;
      case errc::refused:
        return refused;
      default:
        return usage;
    }
  }

 private:
  cli_config cfg_;
  std::optional<caf::actor_system> sys_;
  coordinator_actor coord_;
  /// One actor for every request of this session (made once: the chunks in
  /// flight are its requests). Destroyed before the actor system.
  std::optional<caf::scoped_actor> self_;
  std::deque<ack_handle> acks_;      ///< upload chunks sent, oldest first
  std::deque<chunk_handle> chunks_;  ///< fetch requests sent, oldest first
};

/// The node's own reading of an input (media/input_url.hpp): "file://PATH",
/// "file:PATH" and bare paths are local files; other schemes are URLs.
bool is_url(const std::string& s) { return !media::locate_input(s).local(); }

/// The local file an input names (its path without a "file:" prefix).
std::string local_path(const std::string& s) { return media::locate_input(s).path; }

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
      if (v.total < 0)  // a live source: its length is unknown until it ends
        std::snprintf(progress, sizeof(progress), "%lld/?", static_cast<long long>(v.position));
      else
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

void print_artifacts(const std::vector<artifact_row>& rows) {
  if (rows.empty())
    return;
  std::printf("    %-11s %10s  %-64s  %s\n", "ARTIFACTS", "BYTES", "SHA256", "NAME");
  for (const auto& a : rows)
    std::printf("    %-11s %10llu  %-64s  %s\n", shown(a.analyzer).c_str(), static_cast<unsigned long long>(a.size),
                shown(a.sha256).c_str(), shown(a.name).c_str());
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
    print_artifacts(v.artifacts);
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
  if (n.refusals.empty())
    return;
  std::printf("\n%-24s %10s\n", "REFUSED (since start)", "COUNT");
  for (const auto& r : n.refusals)
    std::printf("%-24s %10llu\n", shown(r.reason).c_str(), static_cast<unsigned long long>(r.count));
}

void print_progress(const job_status& st, int& lines) {
  for (int i = 0; i < lines; ++i)
    std::printf("\033[1A\033[2K");
  lines = 0;
  for (const auto& v : st.videos) {
    const double total = static_cast<double>(v.total);
    const double pos = static_cast<double>(v.position);
    const double frac = v.state == video_state::done ? 1.0 : (total > 0 ? pos / total : 0.0);
    if (v.total < 0 && v.state != video_state::done) {  // live source: frames so far, no percentage
      std::printf("%-30s [%s] %lld frames %-9s %s\n",
                  shown(std::filesystem::path(v.input).filename().string()).substr(0, 30).c_str(),
                  std::string(30, '~').c_str(), static_cast<long long>(v.position), to_string(v.state).c_str(),
                  shown(v.node).c_str());
      ++lines;
      continue;
    }
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

/// Exits with the error of a transfer: the coordinator's code if it refused,
/// transfer_failed if the problem is on this machine.
[[noreturn]] void fail_transfer(const cli::transfer_error& e) {
  std::cerr << "framehive: " << e.message << "\n";
  std::exit(e.cause ? session::exit_code_of(e.cause) : transfer_failed);
}

/// Every local file is checked and hashed before the first byte is uploaded,
/// so a bad file among several fails the submit before anything is sent.
std::vector<cli::local_video> prepare_uploads(const std::vector<std::string>& inputs) {
  std::vector<cli::local_video> out;
  for (const auto& in : inputs) {
    if (is_url(in))
      continue;
    auto v = cli::prepare_upload(local_path(in));
    if (!v)
      fail_transfer(v.error());
    out.push_back(std::move(*v));
  }
  return out;
}

/// The job's inputs: URLs as given; local files uploaded ("blob:SHA/NAME"), or
/// with `node_visible` as absolute paths the node opens itself (a shared mount).
std::vector<std::string> resolve_inputs(session& s, const std::vector<std::string>& inputs, bool node_visible,
                                        bool as_json) {
  std::vector<std::string> out;
  if (node_visible) {
    for (const auto& in : inputs)
      // URLs and "file:" forms pass as written; a bare path becomes absolute.
      out.push_back(is_url(in) || local_path(in) != in ? in
                                                      : std::filesystem::absolute(in).lexically_normal().string());
    return out;
  }
  const auto uploads = prepare_uploads(inputs);
  const bool tty = isatty(STDERR_FILENO) && !as_json;
  std::size_t next = 0;
  for (const auto& in : inputs) {
    if (is_url(in)) {
      out.push_back(in);
      continue;
    }
    const auto& v = uploads[next++];
    auto up = cli::upload(s, v, tty);
    if (!up)
      fail_transfer(up.error());
    if (up->already_stored)
      std::cerr << "framehive: " << shown(v.path) << ": already stored (sha256 " << v.sha256
                << "), nothing uploaded\n";
    else if (!as_json)
      std::cerr << "framehive: " << shown(v.path) << ": uploaded " << up->bytes_sent << " bytes (sha256 "
                << v.sha256 << ")\n";
    out.push_back(up->input);
  }
  return out;
}

// -- detect's classes and model ---------------------------------------------------------

/// submit's detect options as typed (files are this machine's paths until resolved).
struct detect_arguments {
  std::vector<std::string> classes;
  std::string model;
  std::string weights;
  std::string names;
  std::string size;      ///< "WxH"
  std::string mean;      ///< "A" or "A,B,C"
  std::string channels;  ///< "rgb" or "bgr"
  double scale = analysis::default_dnn_scale;
  double threshold = analysis::default_dnn_threshold;
  double nms = analysis::default_dnn_nms;
  bool tuned = false;  ///< an input or output option was given (they need --detect-model)
};

/// The typed options, or a usage error naming the option.
result<analysis::detect_options, std::string> detect_options_of(const detect_arguments& a) {
  analysis::detect_options d;
  d.classes = a.classes;
  auto& m = d.model;
  m.network = a.model;
  m.weights = a.weights;
  m.names = a.names;
  if (a.tuned && a.model.empty())
    return std::string("--detect-size, --detect-scale, --detect-mean, --detect-channels, --detect-threshold and "
                       "--detect-nms describe a model: give it with --detect-model");
  if (!a.size.empty()) {
    unsigned w = 0, h = 0;
    char x = 0, extra = 0;
    if (std::sscanf(a.size.c_str(), "%u%c%u%c", &w, &x, &h, &extra) != 3 || (x != 'x' && x != 'X'))
      return "--detect-size is WIDTHxHEIGHT (416x416), not '" + a.size + "'";
    m.width = w;
    m.height = h;
  }
  if (!a.mean.empty()) {
    std::stringstream in(a.mean);
    for (std::string part; std::getline(in, part, ',');) {
      char* end = nullptr;
      const double v = std::strtod(part.c_str(), &end);
      if (part.empty() || *end != '\0')
        return "--detect-mean is one number or three, comma-separated (104,117,123), not '" + a.mean + "'";
      m.mean.push_back(v);
    }
  }
  if (!a.channels.empty() && a.channels != "rgb" && a.channels != "bgr")
    return "--detect-channels is rgb or bgr, not '" + a.channels + "'";
  m.swap_rb = a.channels != "bgr";
  m.scale = a.scale;
  m.threshold = a.threshold;
  m.nms = a.nms;
  return d;
}

/// The model's files on this machine: each must be a readable, non-empty
/// file before anything is uploaded (exit 8 naming it), and classes the job
/// chooses must be in its names file (exit 2 naming it).
void check_model_files(const analysis::detect_options& d) {
  const auto& m = d.model;
  for (const std::string* file : {&m.network, &m.weights, &m.names})
    if (!file->empty())
      if (auto v = cli::prepare_file_upload(*file, false); !v)
        fail_transfer({"detect model: " + v.error().message, {}});
  if (m.names.empty() || d.classes.empty())
    return;
  std::ifstream in(m.names);
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first != std::string::npos)
      names.push_back(line.substr(first, line.find_last_not_of(" \t\r") - first + 1));
  }
  for (const auto& c : d.classes)
    if (std::find(names.begin(), names.end(), c) == names.end()) {
      std::cerr << "framehive: detect: class '" << c << "' is not in the class names file " << shown(m.names)
                << "\n";
      std::exit(usage);
    }
}

/// The model's files as the job names them: uploaded like videos
/// ("blob:SHA256/NAME", so the node fetches them into its cache), or with
/// `node_visible` absolute paths the node opens itself.
void resolve_model(session& s, analysis::dnn_model& m, bool node_visible, bool as_json) {
  const bool tty = isatty(STDERR_FILENO) && !as_json;
  for (std::string* file : {&m.network, &m.weights, &m.names}) {
    if (file->empty())
      continue;
    if (node_visible) {
      *file = std::filesystem::absolute(*file).lexically_normal().string();
      continue;
    }
    auto v = cli::prepare_file_upload(*file);
    if (!v)
      fail_transfer({"detect model: " + v.error().message, {}});
    auto up = cli::upload(s, *v, tty);
    if (!up)
      fail_transfer(up.error());
    if (!as_json)
      std::cerr << "framehive: " << shown(v->path) << ": "
                << (up->already_stored ? "already stored" : "uploaded " + std::to_string(up->bytes_sent) + " bytes")
                << " (sha256 " << v->sha256 << ")\n";
    *file = up->input;
  }
}

int run_submit(session& s, const std::vector<std::string>& inputs, const std::vector<std::string>& analyzers,
               uint32_t stride, bool wait, bool as_json, bool node_visible, const detect_arguments& detect_args) {
  job_spec spec;
  auto detect = detect_options_of(detect_args);
  if (!detect) {
    std::cerr << "framehive: " << detect.error() << "\n";
    return usage;
  }
  if (auto err = analysis::check_detect_options(*detect, analyzers); !err.empty()) {
    std::cerr << "framehive: " << err << "\n";
    return usage;
  }
  if (!node_visible)
    check_model_files(*detect);  // before any upload, as for the videos
  spec.inputs = resolve_inputs(s, inputs, node_visible, as_json);
  resolve_model(s, detect->model, node_visible, as_json);
  spec.detect = std::move(*detect);
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

std::string default_fetch_dir(uint64_t job) { return "framehive-" + std::to_string(job); }

int run_fetch(session& s, uint64_t job, std::string dir, bool as_json) {
  auto list = s.ask<job_artifacts>(artifacts_atom::value, job);
  if (list.artifacts.empty()) {
    std::cerr << "framehive: job " << job << " has no artifacts to fetch\n";
    return no_artifacts;
  }
  if (dir.empty())
    dir = default_fetch_dir(job);
  if (auto ready = cli::prepare_output_dir(dir); !ready) {
    std::cerr << "framehive: " << ready.error() << "\n";
    return transfer_failed;
  }
  const bool tty = isatty(STDERR_FILENO) && !as_json;
  json files = json::array();
  for (const auto& row : list.artifacts) {
    auto f = cli::fetch_artifact(s, row, dir, tty);
    if (!f)
      fail_transfer(f.error());
    files.push_back({{"path", shown(f->path)}, {"size", f->size}, {"sha256", row.sha256}, {"video", row.video},
                     {"analyzer", shown(row.analyzer)}, {"name", shown(row.name)}});
    if (!as_json)
      std::cout << shown(f->path) << "  " << f->size << " bytes\n";
  }
  if (as_json)
    std::cout << cli::dump(json{{"job", job}, {"dir", shown(dir)}, {"files", std::move(files)}}) << "\n";
  else
    std::cout << list.artifacts.size() << " artifacts of job " << job << " in " << shown(dir) << "\n";
  return ok;
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

int run_delete(session& s, uint64_t job, bool as_json) {
  s.ask<caf::ok_atom>(erase_atom::value, job);
  if (as_json)
    std::cout << cli::dump(json{{"job", job}, {"deleted", true}}, -1) << "\n";
  else
    std::cout << "job " << job << ": deleted\n";
  return ok;
}

// -- certs: the cluster's PKI, no coordinator involved -------------------------------------

int run_certs_init(const std::string& dir) {
  if (auto r = create_ca(dir); !r) {
    std::cerr << "framehive certs init: " << r.error() << "\n";
    return usage;
  }
  std::cout << "cluster CA created: " << dir << "/ca.crt (give it to every process as --tls.ca) and " << dir
            << "/ca.key (secret: it can issue certificates; keep it off the cluster machines)\n";
  return ok;
}

int run_certs_issue(const std::string& dir, const std::string& name, const std::string& role_name) {
  cert_role role = cert_role::client;
  if (!from_string(role_name, role)) {
    std::cerr << "framehive certs issue: --role must be coordinator, node or client, got '" << role_name << "'\n";
    return usage;
  }
  if (auto r = issue_certificate(dir, name, role); !r) {
    std::cerr << "framehive certs issue: " << r.error() << "\n";
    return usage;
  }
  std::cout << "issued " << dir << "/" << name << ".crt and " << dir << "/" << name << ".key (role " << role_name
            << "): --tls.ca=" << dir << "/ca.crt --tls.cert=" << dir << "/" << name << ".crt --tls.key=" << dir
            << "/" << name << ".key\n";
  return ok;
}

// -- the command line ----------------------------------------------------------------------

/// Everything the command line can set; each subcommand reads its part.
struct arguments {
  std::string coordinator = std::getenv("FRAMEHIVE_COORDINATOR") ? std::getenv("FRAMEHIVE_COORDINATOR")
                                                                  : "127.0.0.1:4242";
  tls_files tls;
  bool as_json = false;
  uint64_t job = 0;
  std::vector<std::string> inputs;
  std::vector<std::string> analyzers;
  uint32_t stride = 1;
  bool wait = false;
  bool frames = false;
  bool watch = false;
  bool node_visible = false;
  detect_arguments detect;
  std::string out_dir;
  std::string dir;
  std::string name;
  std::string role;
};

/// A subcommand and what it runs once connected.
using command = std::pair<CLI::App*, std::function<int(session&)>>;

std::string env_or_empty(const char* name) { return std::getenv(name) ? std::getenv(name) : std::string{}; }

void add_global_options(CLI::App& app, arguments& a) {
  a.tls = {env_or_empty("FRAMEHIVE_TLS_CA"), env_or_empty("FRAMEHIVE_TLS_CERT"), env_or_empty("FRAMEHIVE_TLS_KEY")};
  app.add_option("--coordinator", a.coordinator, "coordinator HOST:PORT (or FRAMEHIVE_COORDINATOR)");
  app.add_option("--tls.ca", a.tls.ca, "cluster CA certificate (or FRAMEHIVE_TLS_CA)");
  app.add_option("--tls.cert", a.tls.cert, "client certificate (or FRAMEHIVE_TLS_CERT)");
  app.add_option("--tls.key", a.tls.key, "client private key (or FRAMEHIVE_TLS_KEY)");
}

std::vector<command> add_query_commands(CLI::App& app, arguments& a) {
  std::vector<command> out;
  auto* status = app.add_subcommand("status", "jobs and their videos");
  status->add_option("job", a.job, "job id (default: all jobs)");
  out.emplace_back(status, [&a](session& s) { return run_status(s, a.job, a.as_json); });
  auto* results = app.add_subcommand("results", "results of a job");
  results->add_option("job", a.job, "job id")->required();
  results->add_flag("--frames", a.frames, "include every frame's result (with --json)");
  out.emplace_back(results, [&a](session& s) { return run_results(s, a.job, a.frames, a.as_json); });
  auto* tree = app.add_subcommand("tree", "the live actor tree");
  tree->add_flag("--watch", a.watch, "refresh every second, like top");
  out.emplace_back(tree, [&a](session& s) { return run_tree(s, a.watch, a.as_json); });
  auto* nodes = app.add_subcommand("nodes", "registered nodes and refused requests");
  out.emplace_back(nodes, [&a](session& s) { return run_nodes(s, a.as_json); });
  for (auto& [sub, run] : out)
    sub->add_flag("--json", a.as_json, "machine-readable output");
  return out;
}

/// submit's options for the detect analyzer: its built-in classes, or a DNN
/// model whose files travel with the job.
void add_detect_options(CLI::App& submit, detect_arguments& d) {
  const std::string group = "detect";
  submit
      .add_option("--detect-classes", d.classes,
                  "detect's classes for this job, comma-separated (overrides the node's detect-classes): built-in " +
                      analysis::detect_class_list() + "; with --detect-model, names of its names file (default: all)")
      ->delimiter(',')
      ->group(group);
  submit.add_option("--detect-model", d.model,
                    "a DNN model for detect, read by OpenCV's dnn module: Darknet .cfg (with --detect-weights), "
                    ".onnx, Caffe .prototxt, TensorFlow .pb; uploaded with the job unless --node-visible")
      ->group(group);
  submit.add_option("--detect-weights", d.weights, "the model's weights (Darknet .weights, .caffemodel, ...)")
      ->group(group);
  submit.add_option("--detect-names", d.names, "the model's class names, one per line, in its class order")
      ->group(group);
  auto tuned = [&d](const std::string&) { d.tuned = true; };
  submit.add_option("--detect-size", d.size, "the network's input, WIDTHxHEIGHT (default 416x416)")
      ->each(tuned)
      ->group(group);
  submit
      .add_option("--detect-scale", d.scale,
                  "input = (pixel - mean) x scale (default 1/255 = 0.00392157)")
      ->each(tuned)
      ->group(group);
  submit.add_option("--detect-mean", d.mean, "subtracted per input channel, 'A' or 'A,B,C' (default 0)")
      ->each(tuned)
      ->group(group);
  submit.add_option("--detect-channels", d.channels, "channel order the network takes: rgb (default) or bgr")
      ->each(tuned)
      ->group(group);
  submit.add_option("--detect-threshold", d.threshold, "lowest confidence kept (default 0.5)")
      ->each(tuned)
      ->group(group);
  submit.add_option("--detect-nms", d.nms, "overlap (IoU) above which the weaker box of a class goes (default 0.45)")
      ->each(tuned)
      ->group(group);
}

std::vector<command> add_job_commands(CLI::App& app, arguments& a) {
  std::vector<command> out;
  auto* submit = app.add_subcommand("submit", "submit videos for analysis");
  submit->add_option("videos", a.inputs, "video files or URLs")->required();
  // Checked here too, so a mistyped analyzer fails before a video is uploaded.
  const CLI::Validator analyzer_check(
      [](std::string& text) {
        auto spec = analysis::parse_analyzer(text);
        return spec ? std::string() : spec.error();
      },
      "ANALYZER");
  submit->add_option("--analyzers,-a", a.analyzers, "comma-separated analyzers, each " + analysis::analyzer_syntax())
      ->required()
      ->delimiter(',')
      ->check(analyzer_check);
  submit->add_option("--stride", a.stride, "analyse every k-th frame: /K for each analyzer that names no sampling")
      ->check(CLI::PositiveNumber);
  submit->add_flag("--wait", a.wait, "wait for the job, showing progress; exit 1 if it failed");
  submit->add_flag("--node-visible,--shared", a.node_visible,
                   "do not upload: send local paths as absolute paths the node opens itself (a shared mount)");
  add_detect_options(*submit, a.detect);
  out.emplace_back(submit, [&a](session& s) {
    return run_submit(s, a.inputs, a.analyzers, a.stride, a.wait, a.as_json, a.node_visible, a.detect);
  });
  auto* fetch = app.add_subcommand("fetch", "download a job's artifacts (exit 7 if it has none)");
  fetch->add_option("job", a.job, "job id")->required();
  fetch->add_option("--out,-o", a.out_dir, "folder (default ./framehive-JOB); files go to video-V/ANALYZER/NAME");
  out.emplace_back(fetch, [&a](session& s) { return run_fetch(s, a.job, a.out_dir, a.as_json); });
  auto* cancel = app.add_subcommand("cancel", "cancel a job");
  cancel->add_option("job", a.job, "job id")->required();
  out.emplace_back(cancel, [&a](session& s) { return run_cancel(s, a.job, a.as_json); });
  auto* del = app.add_subcommand("delete", "delete a finished job and its results (exit 2 if it still runs)");
  del->add_option("job", a.job, "job id")->required();
  out.emplace_back(del, [&a](session& s) { return run_delete(s, a.job, a.as_json); });
  for (auto& [sub, run] : out)
    sub->add_flag("--json", a.as_json, "machine-readable output");
  return out;
}

/// `certs init` and `certs issue`: they work on files only.
std::function<int()> add_certs_command(CLI::App& app, arguments& a) {
  auto* certs = app.add_subcommand("certs", "make the cluster's PKI (no coordinator needed)");
  certs->require_subcommand(1);
  auto* init = certs->add_subcommand("init", "create a cluster CA in DIR (ca.crt, ca.key); never overwrites");
  init->add_option("dir", a.dir, "folder for the CA")->required();
  auto* issue = certs->add_subcommand("issue", "issue DIR/NAME.crt and DIR/NAME.key, signed by DIR's CA");
  issue->add_option("dir", a.dir, "folder of the CA")->required();
  issue->add_option("name", a.name, "the peer's name (a node's --name; letters, digits, . - _)")->required();
  issue->add_option("--role", a.role, "coordinator, node or client")->required();
  return [&a, init, issue]() -> int {
    if (init->parsed())
      return run_certs_init(a.dir);
    if (issue->parsed())
      return run_certs_issue(a.dir, a.name, a.role);
    return -1;
  };
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"framehive: submit videos to the cluster and watch them being analysed"};
  app.require_subcommand(1);
  arguments a;
  add_global_options(app, a);
  auto commands = add_job_commands(app, a);
  for (auto& c : add_query_commands(app, a))
    commands.push_back(std::move(c));
  auto run_certs = add_certs_command(app, a);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? ok : usage;
  }
  if (int rc = run_certs(); rc >= 0)
    return rc;
  session s(a.coordinator, a.tls);
  for (auto& [sub, run] : commands)
    if (sub->parsed())
      return run(s);
  return usage;
}
