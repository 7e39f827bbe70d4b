#include "common/metrics.hpp"

#include <algorithm>
#include <exception>

#include <prometheus/exposer.h>

namespace framehive {

namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

prometheus::Counter& counter(prometheus::Registry& r, const char* name, const char* help) {
  return BuildCounter().Name(name).Help(help).Register(r).Add({});
}

prometheus::Gauge& gauge(prometheus::Registry& r, const char* name, const char* help) {
  return BuildGauge().Name(name).Help(help).Register(r).Add({});
}

/// 1 ms to 10 s: a batch commit or round trip well under a millisecond is
/// in the first bucket, a stalled coordinator in the last ones.
prometheus::Histogram::BucketBoundaries latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

constexpr const char* job_states[] = {"queued", "running", "done", "failed", "cancelled"};

void set_all(labelled<prometheus::Gauge>& g, const std::map<std::string, uint64_t>& counts) {
  for (const char* s : job_states) {
    auto it = counts.find(s);
    g[s].Set(it == counts.end() ? 0.0 : static_cast<double>(it->second));
  }
}

}  // namespace

std::string analyzer_kind_of(const std::string& analyzer) {
  return analyzer.substr(0, analyzer.find_first_of("./@"));
}

// -- coordinator ------------------------------------------------------------------------------

coordinator_metrics::coordinator_metrics(prometheus::Registry& r)
    : jobs(BuildGauge().Name("framehive_jobs").Help("Jobs in the job store, by state").Register(r), "state"),
      videos(BuildGauge().Name("framehive_videos").Help("Videos in the job store, by state").Register(r),
             "state"),
      frames_stored(BuildCounter()
                        .Name("framehive_frames_stored_total")
                        .Help("Per-frame results stored (a redelivered frame again), by analyzer kind")
                        .Register(r),
                    "analyzer"),
      result_batches(counter(r, "framehive_result_batches_total", "Result batches stored")),
      result_messages(counter(r, "framehive_result_messages_total",
                              "Messages of result batches received from nodes (batches that queue on a node "
                              "leave in one message)")),
      batch_commit_seconds(BuildHistogram()
                               .Name("framehive_result_batch_commit_seconds")
                               .Help("Time to upsert one result batch into the job store")
                               .Register(r)
                               .Add({}, latency_buckets())),
      refusals(BuildCounter()
                   .Name("framehive_refusals_total")
                   .Help("Requests refused by the coordinator, by reason (as in framehive nodes)")
                   .Register(r),
               "reason"),
      upload_bytes(
          counter(r, "framehive_upload_bytes_total", "Bytes of uploaded videos received from clients")),
      fetch_bytes(counter(r, "framehive_fetch_bytes_total", "Bytes of blobs served to nodes and clients")),
      nodes(gauge(r, "framehive_nodes", "Nodes registered")) {
  set_all(jobs, {});
  set_all(videos, {});
}

void coordinator_metrics::batch_stored(const std::string& analyzer, std::size_t frames,
                                       double commit_seconds) {
  frames_stored[analyzer_kind_of(analyzer)].Increment(static_cast<double>(frames));
  result_batches.Increment();
  batch_commit_seconds.Observe(commit_seconds);
}

void coordinator_metrics::set_states(const std::map<std::string, uint64_t>& jobs_by_state,
                                     const std::map<std::string, uint64_t>& videos_by_state) {
  set_all(jobs, jobs_by_state);
  set_all(videos, videos_by_state);
}

// -- node ---------------------------------------------------------------------------------------

node_metrics::node_metrics(prometheus::Registry& r)
    : frames_decoded(counter(r, "framehive_frames_decoded_total", "Frames decoders published into rings")),
      frames_analysed(BuildCounter()
                          .Name("framehive_frames_analysed_total")
                          .Help("Per-frame results the coordinator acknowledged, by analyzer kind")
                          .Register(r),
                      "analyzer"),
      worker_restarts(
          counter(r, "framehive_worker_restarts_total", "Worker processes that died and were restarted")),
      redelivered(counter(r, "framehive_redelivered_frames_total",
                          "Frames a restarted consumer received again from its ring")),
      quarantined(counter(r, "framehive_quarantined_frames_total",
                          "Frames quarantined by supervision (they crashed or hung their analyzer)")),
      batch_round_trip_seconds(
          BuildHistogram()
              .Name("framehive_result_batch_round_trip_seconds")
              .Help("From forwarding a result batch to the coordinator to its acknowledgement")
              .Register(r)
              .Add({}, latency_buckets())),
      fetch_bytes(counter(r, "framehive_blob_fetch_bytes_total",
                          "Bytes of uploaded videos fetched from the coordinator")),
      videos(gauge(r, "framehive_node_videos", "Videos assigned to this node (probing or running)")),
      decode_fps(gauge(r, "framehive_decode_frames_per_second",
                       "Decode rate summed over this node's running videos")),
      ring_fill_max(gauge(r, "framehive_ring_fill_ratio_max",
                          "Fullest ring of this node: used slots / slots (0 to 1)")),
      consumer_lag_max(gauge(r, "framehive_consumer_lag_frames_max",
                             "Largest lag of a consumer behind its decoder on this node, in frames")),
      batches_unanswered(gauge(r, "framehive_result_batches_unanswered",
                               "Result batches sent to the coordinator in the message in flight, not yet answered")),
      batches_waiting(gauge(r, "framehive_result_batches_waiting",
                            "Result batches waiting on this node for the message in flight to be answered")) {}

void node_metrics::progress(const actor_progress& before, const actor_progress& after) {
  const bool same_instance =
      after.pid == before.pid && after.frames >= before.frames && after.redelivered >= before.redelivered;
  const int64_t frames = same_instance ? after.frames - before.frames : after.frames;
  const uint64_t again = same_instance ? after.redelivered - before.redelivered : after.redelivered;
  if (after.kind == actor_kind::decoder && frames > 0)
    frames_decoded.Increment(static_cast<double>(frames));
  if (after.kind == actor_kind::consumer && again > 0)
    redelivered.Increment(static_cast<double>(again));
}

void node_metrics::batch_acked(const std::string& analyzer, std::size_t frames, double seconds) {
  frames_analysed[analyzer_kind_of(analyzer)].Increment(static_cast<double>(frames));
  batch_round_trip_seconds.Observe(seconds);
}

void node_metrics::observe(const node_status& s) {
  double video_count = 0, fps = 0, fill = 0;
  int64_t lag = 0;
  for (const auto& e : s.entries) {
    if (e.kind == actor_kind::video) {
      ++video_count;
      if (e.ring_slots > 0)
        fill = std::max(fill, static_cast<double>(e.ring_fill) / static_cast<double>(e.ring_slots));
    } else if (e.kind == actor_kind::decoder && e.state == actor_state::running) {
      fps += e.fps;
    } else if (e.kind == actor_kind::consumer) {
      lag = std::max(lag, e.lag);
    }
  }
  videos.Set(video_count);
  decode_fps.Set(fps);
  ring_fill_max.Set(fill);
  consumer_lag_max.Set(static_cast<double>(lag));
}

// -- endpoint -----------------------------------------------------------------------------------

result<std::unique_ptr<metrics_endpoint>, std::string> metrics_endpoint::start(const metrics_options& o) {
  const std::string address =
      (o.bind.find(':') != std::string::npos ? "[" + o.bind + "]" : o.bind) + ":" + std::to_string(o.port);
  if (o.port == 0)
    return std::string("metrics endpoint " + address + ": port 0 means no endpoint");
  std::unique_ptr<metrics_endpoint> e(new metrics_endpoint);
  e->registry_ = std::make_shared<prometheus::Registry>();
  try {
    // civetweb's thread count: scrapes are rare and short.
    e->exposer_ = std::make_unique<prometheus::Exposer>(address, 2);
  } catch (const std::exception& ex) {
    return std::string("cannot serve metrics on " + address + ": " + ex.what());
  }
  e->exposer_->RegisterCollectable(e->registry_);
  return e;
}

metrics_endpoint::~metrics_endpoint() = default;

uint16_t metrics_endpoint::port() const {
  const auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : static_cast<uint16_t>(ports.front());
}

}  // namespace framehive
