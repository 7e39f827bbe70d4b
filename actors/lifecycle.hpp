#pragma once

#include <chrono>

#include "caf/all.hpp"

namespace framehive {

/// Registers the protocol, loads the middleman and parses flags and the INI
/// file into `cfg`. Returns -1 to go on, or the exit code (2 after printing
/// the error, 0 after --help).
int prepare_daemon(caf::actor_system_config& cfg, int argc, char** argv, const char* program);

/// Blocks SIGINT and SIGTERM in every thread (call before the actor system
/// starts threads) so that wait_for_shutdown_signal() receives them.
void block_shutdown_signals();

/// Waits for SIGINT or SIGTERM; returns the signal.
int wait_for_shutdown_signal();

/// Stops the daemon's root actor and ends the process once it is down (at most
/// `grace` later). It skips ~actor_system on purpose: in CAF 0.17 the
/// middleman keeps references to actors whose handles went to remote peers,
/// and ~actor_system then waits forever for detached actors' threads (seen
/// with the coordinator). Nothing is lost: the job store commits every
/// transaction, and the node actor's cleanup (workers, rings) runs when it goes down.
[[noreturn]] void stop_and_exit(caf::actor_system& sys, const caf::actor& root, int code,
                                std::chrono::seconds grace = std::chrono::seconds(10));

}  // namespace framehive
