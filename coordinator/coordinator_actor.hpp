#pragma once

#include <memory>
#include <string>

#include "actors/messages.hpp"
#include "coordinator/job_store.hpp"

namespace framehive {

/// Spawns the coordinator on its own thread (it writes SQLite synchronously).
/// On start it reloads unfinished videos from the store: queued ones queue
/// again; running ones wait up to `restart_grace` (coordinator/scheduler.hpp)
/// for their node to re-register and claim them, then queue again with a new
/// epoch from their lowest watermark.
coordinator_actor spawn_coordinator(caf::actor_system& sys, std::unique_ptr<job_store> store);

}  // namespace framehive
