// framehive-coordinator: accepts jobs, keeps the node registry, assigns each
// video to one node, stores results.
//
//   framehive-coordinator [--port=4242] [--bind=127.0.0.1] [--data-dir=framehive-data]
//   framehive-coordinator --config-file=configs/coordinator.ini


#include <cstdio>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "actors/lifecycle.hpp"
#include "actors/messages.hpp"
#include "caf/io/all.hpp"
#include "coordinator/coordinator_actor.hpp"
#include "coordinator/job_store.hpp"

namespace {

struct coordinator_config : caf::actor_system_config {
  uint16_t port = 4242;
  std::string bind = "127.0.0.1";
  std::string data_dir = "framehive-data";
  coordinator_config() {
    opt_group{custom_options_, "global"}
        .add(port, "port,p", "TCP port for nodes and the CLI")
        .add(bind, "bind", "address to listen on (127.0.0.1: this machine only; 0.0.0.0: all)")
        .add(data_dir, "data-dir", "folder of the job store (SQLite)");
    framehive::configure_network(*this);
  }
};

}  // namespace

int main(int argc, char** argv) {
  coordinator_config cfg;
  if (int rc = framehive::prepare_daemon(cfg, argc, argv, "framehive-coordinator"); rc >= 0)
    return rc;
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ coordinator[%P] %v");
  auto store = framehive::job_store::open(cfg.data_dir);
  if (!store) {
    spdlog::error("{}", store.error());
    return 1;
  }

  framehive::block_shutdown_signals();

  caf::actor_system sys{cfg};
  auto coord = framehive::spawn_coordinator(sys, std::move(*store));
  const char* bind = cfg.bind == "0.0.0.0" ? nullptr : cfg.bind.c_str();
  auto port = sys.middleman().publish(coord, cfg.port, bind, true);
  if (!port) {
    spdlog::error("cannot listen on {}:{}: {}", cfg.bind, cfg.port, sys.render(port.error()));
    caf::anon_send_exit(coord, caf::exit_reason::kill);
    return 1;
  }
  spdlog::info("coordinator listening on {}:{}, job store {}/framehive.db", cfg.bind, *port,
               std::filesystem::absolute(cfg.data_dir).string());
  const int sig = framehive::wait_for_shutdown_signal();
  spdlog::info("coordinator: signal {}, shutting down", sig);
  sys.middleman().unpublish(caf::actor_cast<caf::actor>(coord), *port);
  framehive::stop_and_exit(sys, caf::actor_cast<caf::actor>(coord), 0);
}
