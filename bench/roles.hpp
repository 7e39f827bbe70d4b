#pragma once

// The processes framehive-bench starts of itself, one role each:
//
//   decode CLIP WORK OUT               our decoder to BGR, then WORK on each frame
//                                      (none | touch | stats); the bare decode
//                                      and the naive design's processes
//   msg-consumer WORK OUT              an actor published on a loopback port
//                                      (written to OUT.port) that receives BGR
//                                      frames as CAF messages
//   msg-producer CLIP WINDOW OUT PORT...  decodes once and sends every frame as a
//                                      CAF message to each consumer, at most
//                                      WINDOW unacknowledged frames per consumer
//   ring-consumer RING ID WORK OUT     reads a frame ring, records publish-to-start
//                                      latency
//   sim-nodes HOST PORT FIRST COUNT CORES WORK_MS OUT
//                                      COUNT simulated nodes speaking the node
//                                      protocol to a coordinator
//   ingest-nodes HOST PORT FIRST COUNT CORES FRAMES BATCH OUT
//                                      COUNT simulated nodes pushing per-frame
//                                      result batches as fast as they are acknowledged
//
// Every role writes its figures to OUT as one JSON object.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/messages.hpp"
#include "caf/all.hpp"

namespace framehive::bench {

/// A decoded BGR frame as a message: the "frames as messages" design.
struct bgr_frame {
  uint64_t seq = 0;
  uint64_t publish_ns = 0;
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t stride = 0;
  std::vector<uint8_t> pixels;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bgr_frame& x) {
  return f(caf::meta::type_name("bgr_frame"), x.seq, x.publish_ns, x.width, x.height, x.stride, x.pixels);
}

using eos_atom = caf::atom_constant<caf::atom("eos")>;
using frame_ack_atom = caf::atom_constant<caf::atom("frameack")>;

/// Replaces `path` with `j` atomically (write, then rename): the driver polls
/// these files while the roles rewrite them.
void write_json(const std::string& path, const nlohmann::json& j);

/// Runs the role named by argv[1]; returns -1 if argv[1] names no role.
int run_role(int argc, char** argv);

}  // namespace framehive::bench

CAF_BEGIN_TYPE_ID_BLOCK(framehive_bench, caf::id_block::framehive::end)
  CAF_ADD_TYPE_ID(framehive_bench, (framehive::bench::bgr_frame))
CAF_END_TYPE_ID_BLOCK(framehive_bench)
