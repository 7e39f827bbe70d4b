// framehive-coordinator: accepts jobs, keeps the node registry, assigns each
// video to one node, stores results.
//
//   framehive-coordinator [--port=4242] [--bind=127.0.0.1] [--data-dir=framehive-data]
//                         [--tls.ca=FILE --tls.cert=FILE --tls.key=FILE] [--insecure]
//                         [--limits.max-inputs-per-job=N ...] [--log-format=text|json]
//                         [--metrics.port=9464] [--metrics.bind=127.0.0.1]
//                         [--web.port=9470] [--web.bind=127.0.0.1]   (beyond loopback: HTTPS, needs --tls.*)
//   framehive-coordinator --config-file=configs/coordinator.ini
//
// Protected mode: without TLS material it listens on 127.0.0.1 only, whatever
// --bind says, unless --insecure is given (then it warns at every start).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "actors/lifecycle.hpp"
#include "actors/messages.hpp"
#include "caf/io/all.hpp"
#include "caf/openssl/all.hpp"
#include "common/logging.hpp"
#include "common/metrics.hpp"
#include "coordinator/blob_store.hpp"
#include "coordinator/coordinator_actor.hpp"
#include "coordinator/job_store.hpp"
#include "coordinator/web_view.hpp"
#include "shm/ring_layout.hpp"

namespace {

struct coordinator_config : caf::actor_system_config {
  uint16_t port = 4242;
  std::string bind = "127.0.0.1";
  std::string data_dir = "framehive-data";
  bool insecure = false;
  std::string log_format = framehive::to_string(framehive::log_format::text);
  framehive::tls_files tls;
  framehive::coordinator_limits limits;
  framehive::blob_limits storage;
  framehive::metrics_options metrics{"127.0.0.1", framehive::default_coordinator_metrics_port};
  framehive::web_options web{"127.0.0.1", framehive::default_web_port};
  uint32_t web_handshake_timeout_ms = static_cast<uint32_t>(web.handshake_timeout.count());
  uint32_t web_idle_timeout_ms = static_cast<uint32_t>(web.idle_timeout.count());
  uint64_t max_node_shm_gb = limits.max_node_shm_bytes >> 30;
  uint32_t group_commit_linger_us = 1000;
  coordinator_config() {
    opt_group{custom_options_, "global"}
        .add(port, "port,p", "TCP port for nodes and the CLI")
        .add(bind, "bind", "address to listen on (127.0.0.1: this machine only; 0.0.0.0: all; needs TLS or --insecure)")
        .add(data_dir, "data-dir", "folder of the job store (SQLite) and the blob store (blobs/)")
        .add(insecure, "insecure", "allow --bind beyond loopback WITHOUT TLS: anyone reaching the port owns the cluster")
        .add(log_format, "log-format", "log lines: text (human-readable) or json (one object per line)");
    framehive::add_tls_options(custom_options_, tls);
    add_limit_options();
    opt_group{custom_options_, "storage"}
        .add(storage.max_blob_bytes, "max-blob-bytes", "one uploaded video or artifact, in bytes")
        .add(storage.max_store_bytes, "max-store-bytes",
             "all stored blobs plus uploads in progress, in bytes (data-dir/blobs)");
    opt_group{custom_options_, "storage"}.add(
        group_commit_linger_us, "group-commit-linger-us",
        "microseconds a group of result batches waits for more before it commits (0: at once); "
        "their acknowledgements wait as long");
    opt_group{custom_options_, "metrics"}
        .add(metrics.port, "port", "port of the Prometheus endpoint /metrics (0: none)")
        .add(metrics.bind, "bind", "address of the Prometheus endpoint (127.0.0.1: this machine only)");
    opt_group{custom_options_, "web"}
        .add(web.port, "port", "port of the web view / and its JSON API /api/ (0: none)")
        .add(web.bind, "bind",
             "address of the web view (127.0.0.1: plain HTTP, this machine only; any other address: HTTPS with "
             "--tls.*, admitting only client certificates of the cluster CA)")
        .add(web_handshake_timeout_ms, "handshake-timeout-ms",
             "HTTPS view: milliseconds from a connection to its finished TLS handshake")
        .add(web_idle_timeout_ms, "idle-timeout-ms",
             "HTTPS view: milliseconds for a request to arrive, and again for its answer to be taken");
    framehive::configure_network(*this);
  }

  void add_limit_options() {
    opt_group{custom_options_, "limits"}
        .add(limits.max_inputs_per_job, "max-inputs-per-job", "videos in one job")
        .add(limits.max_analyzers_per_job, "max-analyzers-per-job",
             "analyzers in one job (at most the ring's consumer entries)")
        .add(limits.max_input_bytes, "max-input-bytes", "length of one input path or URL, in bytes")
        .add(limits.max_frames_per_batch, "max-frames-per-batch", "frames in one result batch from a node")
        .add(limits.max_batches_per_message, "max-batches-per-message",
             "result batches a node forwards in one message")
        .add(limits.max_queued_videos, "max-queued-videos", "videos waiting for a node, over all jobs")
        .add(limits.max_node_cores, "max-node-cores", "a node claiming more cores is refused")
        .add(max_node_shm_gb, "max-node-shm-gb", "a node claiming a larger shm budget (GiB) is refused")
        .add(limits.retention_days, "retention-days", "finished jobs older than this are deleted (0: keep all)");
  }

  framehive::coordinator_options options() const {
    framehive::coordinator_options o;
    o.tls_ca = tls.enabled() ? tls.ca : std::string{};
    o.limits = limits;
    o.limits.max_node_shm_bytes = max_node_shm_gb << 30;
    o.group_commit_linger = std::chrono::microseconds(std::min<uint32_t>(group_commit_linger_us, 1'000'000));
    if (o.limits.max_analyzers_per_job > framehive::shm::max_consumers) {
      spdlog::warn("limits.max-analyzers-per-job={} is more than a ring's {} consumer entries; using {}",
                   o.limits.max_analyzers_per_job, framehive::shm::max_consumers, framehive::shm::max_consumers);
      o.limits.max_analyzers_per_job = framehive::shm::max_consumers;
    }
    return o;
  }
};

bool is_loopback(const std::string& address) {
  return address.rfind("127.", 0) == 0 || address == "localhost" || address == "::1";
}

/// Protected mode (as Redis has): the address actually bound, with the log
/// lines that say why. With TLS every peer must hold a certificate of the
/// cluster CA, so any address is fine.
std::string choose_bind(const coordinator_config& cfg) {
  if (cfg.tls.enabled()) {
    spdlog::info("TLS on: peers need a certificate of the CA {}", cfg.tls.ca);
    return cfg.bind;
  }
  if (is_loopback(cfg.bind)) {
    spdlog::info("no TLS material: protected mode, listening on loopback only. To accept other machines, make "
                 "a PKI (framehive certs init DIR; framehive certs issue DIR NAME --role coordinator|node|client) "
                 "and start with --tls.ca=DIR/ca.crt --tls.cert=DIR/NAME.crt --tls.key=DIR/NAME.key");
    return cfg.bind;
  }
  if (cfg.insecure) {
    spdlog::warn("INSECURE: listening on {} without TLS (--insecure): the connection is plaintext and anyone "
                 "who can reach port {} can register nodes, read inputs and results, and cancel jobs",
                 cfg.bind, cfg.port);
    return cfg.bind;
  }
  spdlog::warn("protected mode: no TLS material, so listening on 127.0.0.1 instead of {}. To accept other "
               "machines, make a PKI (framehive certs init DIR; framehive certs issue DIR NAME --role "
               "coordinator|node|client) and start with --tls.ca, --tls.cert and --tls.key; or, on a trusted "
               "network only, add --insecure",
               cfg.bind);
  return "127.0.0.1";
}

caf::expected<uint16_t> listen(caf::actor_system& sys, const framehive::coordinator_actor& coord,
                               const coordinator_config& cfg, const std::string& address) {
  const char* in = address == "0.0.0.0" || address.empty() ? nullptr : address.c_str();
  if (cfg.tls.enabled())
    return caf::openssl::publish(coord, cfg.port, in, true);
  return sys.middleman().publish(coord, cfg.port, in, true);
}

/// Closes the port (no new peers during shutdown). Asks the manager that
/// opened it: caf/openssl/unpublish.hpp does not compile in CAF 0.17.6.
void stop_listening(caf::actor_system& sys, const framehive::coordinator_actor& coord, uint16_t port) {
  caf::scoped_actor self{sys};
  self->request(framehive::connection_manager(sys), std::chrono::seconds(2), caf::unpublish_atom::value,
                coord.address(), port)
      .receive([] {}, [](const caf::error&) {});
}

}  // namespace

int main(int argc, char** argv) {
  coordinator_config cfg;
  if (int rc = framehive::prepare_daemon(cfg, argc, argv, "framehive-coordinator", cfg.tls); rc >= 0)
    return rc;
  const auto log_format = framehive::parse_log_format(cfg.log_format);
  if (!log_format) {
    std::fprintf(stderr, "framehive-coordinator: --log-format must be text or json, not '%s'\n",
                 cfg.log_format.c_str());
    return 2;
  }
  framehive::setup_logging({framehive::log_process::coordinator, {}, std::nullopt}, *log_format);
  const std::string address = choose_bind(cfg);
  auto store = framehive::job_store::open(cfg.data_dir);
  if (!store) {
    spdlog::error("{}", store.error());
    return 1;
  }

  auto blobs = framehive::blob_store::open(cfg.data_dir, cfg.storage);
  if (!blobs) {
    spdlog::error("{}", blobs.error());
    return 1;
  }

  // Started before any actor: the metrics live as long as the process.
  std::unique_ptr<framehive::metrics_endpoint> metrics;
  auto options = cfg.options();
  if (cfg.metrics.port != 0) {
    // Monitoring is not the service: a port taken (another coordinator on
    // this machine) costs the endpoint, not the coordinator.
    if (auto m = framehive::metrics_endpoint::start(cfg.metrics); !m) {
      spdlog::error("coordinator: {}; running without metrics (set --metrics.port)", m.error());
    } else {
      metrics = std::move(*m);
      options.metrics = std::make_shared<framehive::coordinator_metrics>(metrics->registry());
      spdlog::info("coordinator: metrics on http://{}:{}/metrics", cfg.metrics.bind, metrics->port());
    }
  }

  framehive::block_shutdown_signals();

  caf::actor_system sys{cfg};
  auto coord = framehive::spawn_coordinator(sys, std::move(*store), std::move(options), std::move(*blobs));
  auto port = listen(sys, coord, cfg, address);
  if (!port) {
    spdlog::error("cannot listen on {}:{}: {}", address, cfg.port, sys.render(port.error()));
    caf::anon_send_exit(coord, caf::exit_reason::kill);
    std::fflush(nullptr);
    std::_Exit(1);  // like stop_and_exit: ~actor_system may wait on the detached coordinator
  }
  spdlog::info("coordinator listening on {}:{} ({}), job store {}/framehive.db", address, *port,
               cfg.tls.enabled() ? "mutual TLS" : "plaintext", std::filesystem::absolute(cfg.data_dir).string());

  // Like the metrics: a port taken or an address refused costs the web view,
  // not the coordinator. Its requests give up after 3 s (the page polls every second).
  std::unique_ptr<framehive::web_view> web;
  if (cfg.web.port != 0) {
    auto web_options = cfg.web;
    web_options.certificates = cfg.tls;  // used beyond loopback only
    web_options.handshake_timeout = std::chrono::milliseconds(std::max(1u, cfg.web_handshake_timeout_ms));
    web_options.idle_timeout = std::chrono::milliseconds(std::max(1u, cfg.web_idle_timeout_ms));
    auto w = framehive::web_view::start(
        web_options, framehive::ask_coordinator(sys, coord, std::chrono::seconds(3)));
    if (!w) {
      spdlog::error("coordinator: {}; running without the web view (set --web.port, --web.bind)", w.error());
    } else {
      web = std::move(*w);
      spdlog::info("coordinator: web view on {}://{}:{}/{}", web->scheme(), cfg.web.bind, web->port(),
                   web->tls() ? " (client certificates of the cluster CA only)" : "");
    }
  }
  const int sig = framehive::wait_for_shutdown_signal();
  spdlog::info("coordinator: signal {}, shutting down", sig);
  stop_listening(sys, coord, *port);
  web.reset();  // waits for its requests, each bounded by its deadline
  framehive::stop_and_exit(sys, caf::actor_cast<caf::actor>(coord), 0);
}
