#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "actors/messages.hpp"
#include "common/identity.hpp"
#include "common/logging.hpp"
#include "analysis/types.hpp"
#include "node/video_supervisor.hpp"

namespace framehive {

struct node_metrics;  // common/metrics.hpp

// -- defaults (node.ini [global]) ---------------------------------------------------------

inline constexpr const char* default_coordinator_host = "127.0.0.1";
inline constexpr uint16_t default_coordinator_port = 4242;
inline constexpr const char* default_shm_prefix = "framehive";
inline constexpr uint32_t default_ring_slots = 32;
/// A ring smaller than this cannot keep decoder and consumers busy at once.
inline constexpr uint32_t min_ring_slots = 4;
inline constexpr uint32_t default_batch_frames = 8;
/// Bytes of uploaded videos a node keeps in its blob cache ([cache] max-mb).
inline constexpr uint64_t default_cache_mb = 4096;
/// The cache folder when [cache] dir is empty: beside the output folder, as NAME-NODE.
inline constexpr const char* default_cache_dirname = "framehive-cache";

struct node_options {
  std::string name;  ///< unique per cluster; defaults to the host name
  std::string coordinator_host = default_coordinator_host;
  uint16_t coordinator_port = default_coordinator_port;
  uint32_t workers = 2;                      ///< worker processes to keep running
  std::string worker_exe;                    ///< path of framehive-worker
  std::string output_dir;                    ///< absolute; job outputs (thumbnails) go below it
  uint64_t shm_budget = 0;                   ///< bytes of /dev/shm this node may use for rings
  uint32_t ring_slots = default_ring_slots;  ///< wanted ring capacity in frames
  std::string shm_prefix = default_shm_prefix;
  uint32_t batch_frames = default_batch_frames;  ///< frames per result batch
  analysis::analyzer_settings analyzers;         ///< handed to every consumer as it is
  supervision_options supervision;
  double pace_fps = 0;  ///< test only: decoders publish at most this many frames/s (0: off)
  /// Test only: decoders publish no frame from `hold_at` on until the file
  /// `hold_until` exists (-1: off). A test holds a video mid-way this way
  /// instead of racing a pace.
  int64_t hold_at = -1;
  std::string hold_until;
  /// TLS to the coordinator (all empty: plaintext). With TLS the node answers
  /// the coordinator's challenge with its certificate and a signature.
  tls_files tls;
  /// Input policy: URL schemes a decoder may open (FFmpeg protocol names;
  /// a path without a scheme is "file").
  std::vector<std::string> allowed_protocols{"file", "http", "https", "rtsp"};
  /// Local files must lie below one of these absolute folders; empty: any path.
  std::vector<std::string> allowed_roots;
  /// Blob cache (uploaded videos fetched from the coordinator). Empty dir:
  /// OUTPUT_DIR/../framehive-cache-NODE (one per node: caches are not shared). Blob inputs are not judged by allowed_roots:
  /// the node decodes only its own cached copy.
  std::string cache_dir;
  uint64_t cache_bytes = default_cache_mb << 20;
  /// How the workers write their log lines: the node's own --log-format.
  log_format logs = log_format::text;
  /// Counted into when set (--metrics.port); shared with the /metrics endpoint.
  std::shared_ptr<node_metrics> metrics;
};

/// The cache folder `o` uses (cache_dir, or the default beside output_dir).
std::string cache_dir_of(const node_options& o);

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
