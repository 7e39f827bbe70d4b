#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "actors/messages.hpp"
#include "coordinator/blob_store.hpp"
#include "coordinator/job_store.hpp"

namespace framehive {

struct coordinator_metrics;  // common/metrics.hpp

/// Sizes and counts a peer or a user controls; going over one is an
/// errc::over_limit error to the caller, never a crash or a silent loss.
struct coordinator_limits {
  uint32_t max_inputs_per_job = 10'000;
  uint32_t max_analyzers_per_job = 32;  ///< never more than a ring's consumer entries (shm::max_consumers)
  uint32_t max_input_bytes = 4096;      ///< length of one input (path or URL)
  uint32_t max_frames_per_batch = 1024;
  uint32_t max_batches_per_message = 1024;  ///< batches in one result_batches from a node
  uint64_t max_queued_videos = 1'000'000;
  uint32_t max_node_cores = 1024;          ///< a node claiming more is refused
  uint64_t max_node_shm_bytes = 1ull << 40;  ///< 1 TiB
  uint32_t retention_days = 30;  ///< finished jobs older than this are deleted (0: keep)
  uint32_t max_frame_data_bytes = 1u << 20;  ///< one analyzer's result for one frame (its stored form)
};

struct coordinator_options {
  /// The cluster CA (PEM file). Set when the coordinator runs with TLS: nodes
  /// must then prove their identity (common/identity.hpp) to register.
  std::string tls_ca;
  coordinator_limits limits;
  /// Counted into when set (--metrics.port); shared with the /metrics endpoint.
  std::shared_ptr<coordinator_metrics> metrics;
  /// Group commit: how long an open group of result batches may wait for more
  /// once nothing else is in the mailbox (0: commit at once). Each commit
  /// writes every page it touched to the WAL, and the batches of many nodes
  /// touch many pages, so waiting a little for the next nodes' messages
  /// writes fewer pages per result; an acknowledgement comes that much later.
  std::chrono::microseconds group_commit_linger{0};
};

/// Spawns the coordinator on its own thread (it writes SQLite synchronously).
/// `blobs` holds uploads and artifacts (without one, blob requests are
/// refused); an artifact's blob is removed when the last job naming it is
/// erased, and so is an uploaded video's.
/// Results, reports and status count only from the actor that registered as
/// the node holding the assignment; without `options.tls_ca` any peer may
/// register under a name no live node holds (it logs that once). Finished
/// jobs past `limits.retention_days` are erased at start and then hourly.
/// On start it reloads unfinished videos from the store: queued ones queue
/// again; running ones wait up to `restart_grace` (coordinator/scheduler.hpp)
/// for their node to re-register and claim them, then queue again with a new
/// epoch from their lowest watermark.
coordinator_actor spawn_coordinator(caf::actor_system& sys, std::unique_ptr<job_store> store,
                                    coordinator_options options = {},
                                    std::unique_ptr<blob_store> blobs = nullptr);

}  // namespace framehive
