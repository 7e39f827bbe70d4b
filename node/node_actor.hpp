#pragma once

#include <cstdint>
#include <string>

#include "actors/messages.hpp"

namespace framehive {

struct node_options {
  std::string name;                ///< unique per cluster; defaults to the host name
  std::string coordinator_host = "127.0.0.1";
  uint16_t coordinator_port = 4242;
  uint32_t workers = 2;            ///< worker processes to keep running
  std::string worker_exe;          ///< path of framehive-worker
  std::string output_dir;          ///< absolute; job outputs (thumbnails) go below it
  uint64_t shm_budget = 0;         ///< bytes of /dev/shm this node may use for rings
  uint32_t ring_slots = 32;        ///< wanted ring capacity in frames
  std::string shm_prefix = "framehive";
  uint32_t batch_frames = 8;       ///< frames per result batch
  std::string analyzer_params = "{}";  ///< JSON object handed to every analyzer
  uint32_t poison_attempts = 3;     ///< a frame that kills its analyzer this often is quarantined
  uint32_t restart_limit = 5;       ///< restarts of one actor within restart_window ...
  uint32_t restart_window_s = 30;   ///< ... before the video fails on this node
  uint32_t hang_timeout_s = 60;     ///< an actor silent this long is hung: its worker is killed
};

/// The node as seen by the coordinator, by its workers, and by its own timers.
using node_full_actor = node_actor::extend_with<node_port_actor>::extend<
    caf::reacts_to<tick_atom>, caf::reacts_to<connect_to_atom>, caf::reacts_to<caf::publish_atom, uint16_t>>;

/// Spawns the node actor: the root supervisor of this machine's workers,
/// videos and rings. Send it (publish_atom, port) once it is published for
/// workers on loopback; it then starts the workers and registers with the
/// coordinator, reconnecting with backoff whenever the link drops.
node_full_actor spawn_node(caf::actor_system& sys, node_options options);

/// Ring names start with this, so a restarted node can remove its stale rings.
std::string ring_prefix(const node_options& o);

}  // namespace framehive
