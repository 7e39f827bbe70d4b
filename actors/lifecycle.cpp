#include "actors/lifecycle.hpp"

#include <signal.h>

#include <cstdio>
#include <cstdlib>

#include "actors/messages.hpp"
#include "caf/io/middleman.hpp"

namespace framehive {

int prepare_daemon(caf::actor_system_config& cfg, int argc, char** argv, const char* program) {
  register_protocol(cfg);
  cfg.load<caf::io::middleman>();
  if (auto err = cfg.parse(argc, argv)) {
    std::fprintf(stderr, "%s: %s\n", program, cfg.render(err).c_str());
    return 2;
  }
  return cfg.cli_helptext_printed ? 0 : -1;
}

namespace {

sigset_t shutdown_signals() {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  return sigs;
}

}  // namespace

void block_shutdown_signals() {
  sigset_t sigs = shutdown_signals();
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
}

int wait_for_shutdown_signal() {
  sigset_t sigs = shutdown_signals();
  int sig = 0;
  sigwait(&sigs, &sig);
  return sig;
}

void stop_and_exit(caf::actor_system& sys, const caf::actor& root, int code, std::chrono::seconds grace) {
  {
    caf::scoped_actor self{sys};
    self->monitor(root);
    self->send_exit(root, caf::exit_reason::user_shutdown);
    self->receive([](caf::down_msg&) {}, caf::after(grace) >> [] {});
  }
  std::fflush(nullptr);
  std::_Exit(code);
}

}  // namespace framehive
