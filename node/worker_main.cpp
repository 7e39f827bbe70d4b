// framehive-worker: a process the node starts to host decoder and consumer
// actors. FFmpeg and OpenCV run only here, so their crashes take down a
// worker (which the node restarts), never the node.
//
//   framehive-worker --node-port=PORT --index=K [--allowed-protocols=file,http,...]
//                    [--node-name=NAME] [--log-format=text|json]
//
// The node hands each worker its per-start secret in the environment
// (FRAMEHIVE_WORKER_SECRET); the worker proves with it that the node started
// it, and removes it from its own environment at once.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include <spdlog/spdlog.h>

#include "actors/lifecycle.hpp"
#include "actors/messages.hpp"
#include "actors/worker_actors.hpp"
#include "caf/io/all.hpp"
#include "common/clock.hpp"
#include "common/logging.hpp"
#include "node/worker_pool.hpp"

namespace {

/// How long the node may take to accept this worker.
constexpr auto hello_timeout = std::chrono::seconds(10);
/// How long the worker's actors get to stop when the node is gone.
constexpr auto shutdown_grace = std::chrono::seconds(2);

struct worker_config : caf::actor_system_config {
  uint16_t node_port = 0;
  uint32_t index = 0;
  std::string allowed_protocols;
  std::string node_name;
  std::string log_format = framehive::to_string(framehive::log_format::text);
  worker_config() {
    opt_group{custom_options_, "global"}
        .add(node_port, "node-port", "loopback port of the node that started this worker")
        .add(index, "index", "worker number on its node")
        .add(allowed_protocols, "allowed-protocols",
             "comma-separated protocols decoders may open (the node's input policy; empty: any)")
        .add(node_name, "node-name", "name of the node that started this worker (for its log lines)")
        .add(log_format, "log-format", "log lines: text or json, as the node's");
    framehive::configure_network(*this);
  }

  framehive::worker_options options() const {
    framehive::worker_options o;
    std::istringstream in(allowed_protocols);
    for (std::string p; std::getline(in, p, ',');)
      if (!p.empty())
        o.allowed_protocols.push_back(p);
    return o;
  }
};

/// The secret from the environment, which is then wiped: the variable is
/// removed, and its "NAME=VALUE" bytes are overwritten where the kernel put
/// them (/proc/PID/environ shows that block), so neither a later child nor a
/// reader of this process's environment sees it.
std::string take_secret() {
  char* value = std::getenv(framehive::worker_secret_env);
  if (!value)
    return {};
  std::string secret = value;
  const std::size_t name_len = std::strlen(framehive::worker_secret_env) + 1;  // with '='
  char* entry = value - name_len;
  unsetenv(framehive::worker_secret_env);
  std::memset(entry, 0, name_len + secret.size());
  return secret;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string secret = take_secret();
  framehive::keep_freed_memory();
  worker_config cfg;
  framehive::register_protocol(cfg);
  cfg.load<caf::io::middleman>();
  if (auto err = cfg.parse(argc, argv)) {
    std::fprintf(stderr, "framehive-worker: %s\n", cfg.render(err).c_str());
    return 2;
  }
  if (cfg.cli_helptext_printed)
    return 0;
  const auto log_format = framehive::parse_log_format(cfg.log_format);
  if (!log_format) {
    std::fprintf(stderr, "framehive-worker: --log-format must be text or json, not '%s'\n", cfg.log_format.c_str());
    return 2;
  }
  framehive::setup_logging({framehive::log_process::worker, cfg.node_name, cfg.index}, *log_format);
  caf::actor_system sys{cfg};
  auto node = sys.middleman().remote_actor<framehive::node_port_actor>("127.0.0.1", cfg.node_port);
  if (!node) {
    spdlog::error("cannot reach the node on 127.0.0.1:{}: {}", cfg.node_port, sys.render(node.error()));
    return 3;
  }
  auto worker = framehive::spawn_worker(sys, *node, cfg.options());
  caf::scoped_actor self{sys};
  bool ok = false;
  self->request(*node, hello_timeout,
                framehive::worker_hello{cfg.index, static_cast<uint32_t>(getpid()), secret}, worker)
      .receive([&](caf::ok_atom) { ok = true; },
               [&](caf::error& e) { spdlog::error("node refused this worker: {}", sys.render(e)); });
  if (!ok) {
    self->send_exit(worker, caf::exit_reason::user_shutdown);
    return 3;
  }
  spdlog::info("worker {} ready", cfg.index);
  // Runs until the node goes away (the worker actor quits then). Leave without
  // ~actor_system, which can wait forever on the dead node's proxies.
  self->monitor(worker);
  self->receive([](caf::down_msg&) {});
  framehive::stop_and_exit(sys, caf::actor_cast<caf::actor>(worker), 0, shutdown_grace);
}
