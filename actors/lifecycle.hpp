#pragma once

#include <chrono>

#include "caf/all.hpp"

namespace framehive {

/// Stops the daemon's root actor and ends the process once it is down (at most
/// `grace` later). It skips ~actor_system on purpose: in CAF 0.17 the
/// middleman keeps references to actors whose handles went to remote peers,
/// and ~actor_system then waits forever for detached actors' threads (seen
/// with the coordinator). Nothing is lost: the job store commits every
/// transaction, and the node actor's cleanup (workers, rings) runs when it goes down.
[[noreturn]] void stop_and_exit(caf::actor_system& sys, const caf::actor& root, int code,
                                std::chrono::seconds grace = std::chrono::seconds(10));

}  // namespace framehive
