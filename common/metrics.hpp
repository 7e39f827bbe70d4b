#pragma once

// Prometheus metrics of the coordinator and of a node: one typed struct per
// process with the families it exposes, and the HTTP endpoint that serves
// them (prometheus-cpp's Exposer, civetweb underneath, on its own threads).
// Actors hold a pointer to their struct and count at the events they already
// handle; prometheus-cpp's metrics are atomic, so the endpoint's threads read
// them while the actors write. Names follow Prometheus' conventions: the
// framehive_ prefix, _total on counters, base units; every label set is
// bounded (states, reasons, analyzer kinds), never a path, frame or id.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "actors/messages.hpp"
#include "common/result.hpp"

namespace prometheus {
class Exposer;
}

namespace framehive {

/// Where a daemon serves /metrics ([metrics] in its INI file).
struct metrics_options {
  std::string bind = "127.0.0.1";
  uint16_t port = 0;  ///< 0: no endpoint
};

inline constexpr uint16_t default_coordinator_metrics_port = 9464;
inline constexpr uint16_t default_node_metrics_port = 9465;

/// A family with one label whose values are few and known only at run time
/// (analyzer kinds, refusal reasons): the child per value, made on first use.
/// Only the owning actor calls it.
template <class T>
class labelled {
 public:
  labelled(prometheus::Family<T>& family, std::string label) : family_(&family), label_(std::move(label)) {}
  T& operator[](const std::string& value) {
    auto it = children_.find(value);
    if (it == children_.end())
      it = children_.emplace(value, &family_->Add({{label_, value}})).first;
    return *it->second;
  }

 private:
  prometheus::Family<T>* family_;
  std::string label_;
  std::map<std::string, T*> children_;
};

/// The coordinator's metrics.
struct coordinator_metrics {
  explicit coordinator_metrics(prometheus::Registry& r);

  labelled<prometheus::Gauge> jobs;             ///< framehive_jobs{state}
  labelled<prometheus::Gauge> videos;           ///< framehive_videos{state}
  labelled<prometheus::Counter> frames_stored;  ///< framehive_frames_stored_total{analyzer=kind}
  prometheus::Counter& result_batches;
  prometheus::Counter& result_messages;
  prometheus::Histogram& batch_commit_seconds;
  labelled<prometheus::Counter> refusals;  ///< framehive_refusals_total{reason}
  prometheus::Counter& upload_bytes;
  prometheus::Counter& fetch_bytes;
  prometheus::Gauge& nodes;

  /// A stored result batch of `frames` frames from `analyzer` (KIND[.LABEL]:
  /// counted under its kind, the label is the user's and unbounded).
  void batch_stored(const std::string& analyzer, std::size_t frames, double commit_seconds);
  /// The job store's counts by state; states not in the map read 0.
  void set_states(const std::map<std::string, uint64_t>& jobs_by_state,
                  const std::map<std::string, uint64_t>& videos_by_state);
};

/// A node's metrics.
struct node_metrics {
  explicit node_metrics(prometheus::Registry& r);

  prometheus::Counter& frames_decoded;
  labelled<prometheus::Counter> frames_analysed;  ///< framehive_frames_analysed_total{analyzer=kind}
  prometheus::Counter& worker_restarts;
  prometheus::Counter& redelivered;
  prometheus::Counter& quarantined;
  prometheus::Histogram& batch_round_trip_seconds;
  prometheus::Counter& fetch_bytes;
  prometheus::Gauge& videos;
  prometheus::Gauge& decode_fps;
  prometheus::Gauge& ring_fill_max;
  prometheus::Gauge& consumer_lag_max;
  prometheus::Gauge& batches_unanswered;
  prometheus::Gauge& batches_waiting;

  /// A decoder's or consumer's progress as the supervisor kept it before and
  /// after a report: the frames decoded and redelivered since. Counts in a
  /// report are per actor instance, so a new instance (another pid, or fewer
  /// than before) counts from 0. Equal progress (a stale report) adds nothing.
  void progress(const actor_progress& before, const actor_progress& after);
  /// A result batch the coordinator acknowledged, `seconds` after it was sent.
  void batch_acked(const std::string& analyzer, std::size_t frames, double seconds);
  /// The gauges, from the node's part of the actor tree (what `framehive tree`
  /// shows): videos, summed decode fps, fullest ring, largest consumer lag.
  void observe(const node_status& s);
};

/// The /metrics endpoint and the registry behind it.
class metrics_endpoint {
 public:
  /// Listens on `bind`:`port` (port 0 is refused here: callers skip the
  /// endpoint). The error names the address and the cause.
  static result<std::unique_ptr<metrics_endpoint>, std::string> start(const metrics_options& o);
  ~metrics_endpoint();

  prometheus::Registry& registry() { return *registry_; }
  /// The port it listens on.
  uint16_t port() const;

 private:
  metrics_endpoint() = default;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

/// The kind of an analyzer name (KIND[.LABEL][/K|@Nfps] -> KIND).
std::string analyzer_kind_of(const std::string& analyzer);

}  // namespace framehive
