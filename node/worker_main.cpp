// framehive-worker: a process the node starts to host decoder and consumer
// actors. FFmpeg and OpenCV run only here, so their crashes take down a
// worker (which the node restarts), never the node.
//
//   framehive-worker --node-port=PORT --index=K

#include <unistd.h>

#include <cstdio>

#include <spdlog/spdlog.h>

#include "actors/lifecycle.hpp"
#include "actors/messages.hpp"
#include "actors/worker_actors.hpp"
#include "caf/io/all.hpp"
#include "common/clock.hpp"

namespace {

/// How long the node may take to accept this worker.
constexpr auto hello_timeout = std::chrono::seconds(10);
/// How long the worker's actors get to stop when the node is gone.
constexpr auto shutdown_grace = std::chrono::seconds(2);

struct worker_config : caf::actor_system_config {
  uint16_t node_port = 0;
  uint32_t index = 0;
  worker_config() {
    opt_group{custom_options_, "global"}
        .add(node_port, "node-port", "loopback port of the node that started this worker")
        .add(index, "index", "worker number on its node");
    framehive::configure_network(*this);
  }
};

}  // namespace

int main(int argc, char** argv) {
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
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ worker-" + std::to_string(cfg.index) + "[%P] %v");
  caf::actor_system sys{cfg};
  auto node = sys.middleman().remote_actor<framehive::node_port_actor>("127.0.0.1", cfg.node_port);
  if (!node) {
    spdlog::error("cannot reach the node on 127.0.0.1:{}: {}", cfg.node_port, sys.render(node.error()));
    return 3;
  }
  auto worker = framehive::spawn_worker(sys, *node);
  caf::scoped_actor self{sys};
  bool ok = false;
  self->request(*node, hello_timeout,
                framehive::worker_hello{cfg.index, static_cast<uint32_t>(getpid())}, worker)
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
