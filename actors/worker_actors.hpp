#pragma once

// The actors that live in worker processes: they run FFmpeg and OpenCV, so a
// crash in either takes down a worker, never the node.

#include <string>
#include <vector>

#include "actors/messages.hpp"

namespace framehive {

/// What the node tells a worker process when it starts it (framehive-worker flags).
struct worker_options {
  /// Input policy: the protocols its decoders may open, as the node's
  /// allowed-protocols. The node refuses other inputs before probing; the
  /// decoder refuses them again and hands FFmpeg the matching whitelist.
  std::vector<std::string> allowed_protocols;
};

/// Decoder and consumer actors drive themselves with ticks: each tick does a
/// bounded slice of work (about 50 ms), so stop and exit messages get through.
using decoder_actor = caf::typed_actor<caf::reacts_to<tick_atom>>;
using consumer_actor = caf::typed_actor<caf::reacts_to<tick_atom>, caf::reacts_to<retry_atom, uint64_t>>;

/// Decodes `task.input` into the ring `task.ring`, from the ring's next frame
/// (a restarted decoder continues where the last one stopped) or
/// `task.start_frame`. Reports actor_progress to `node`. With `task.pace_fps`
/// (tests) it publishes at most that many frames per second.
decoder_actor spawn_decoder(caf::actor_system& sys, decoder_task task, node_port_actor node,
                            worker_options options);

/// Reads ring frames as consumer `task.consumer_id`, runs the analyzer, sends
/// result batches to `node` and commits ring frames once they are acknowledged
/// (at most two batches in flight, committed in order).
consumer_actor spawn_consumer(caf::actor_system& sys, consumer_task task, node_port_actor node);

/// The worker process's front actor: probes inputs and starts the above.
worker_actor spawn_worker(caf::actor_system& sys, node_port_actor node, worker_options options);

}  // namespace framehive
