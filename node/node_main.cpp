// framehive-node: one per machine. Starts worker processes, registers with the
// coordinator, runs the videos assigned to it.
//
//   framehive-node [--coordinator=HOST:PORT] [--name=NAME] [--workers=N] ...
//   framehive-node [--tls.ca=FILE --tls.cert=FILE --tls.key=FILE]
//                  [--inputs.allowed-protocols=[...]] [--inputs.allowed-roots=[...]]
//                  [--cache.dir=DIR] [--cache.max-mb=N] [--log-format=text|json]
//                  [--metrics.port=9465] [--metrics.bind=127.0.0.1]
//   framehive-node --config-file=configs/node.ini
// Every option is also an INI key (see configs/node.ini); flags win.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "actors/lifecycle.hpp"
#include "actors/messages.hpp"
#include "analysis/catalog.hpp"
#include "caf/io/all.hpp"
#include "common/logging.hpp"
#include "common/metrics.hpp"
#include "common/process.hpp"
#include "node/node_actor.hpp"
#include "shm/segment.hpp"

namespace {

/// From the catalog's table, so the help cannot drift from it (CAF copies the text).
std::string detect_classes_help() {
  std::string defaults;
  for (const auto* c : framehive::analysis::select_detect_classes({}).classes)
    defaults += (defaults.empty() ? "" : ", ") + std::string(c->name);
  return "detect: classes to look for, of " + framehive::analysis::detect_class_list() + " (empty: " + defaults +
         ")";
}

struct node_config : caf::actor_system_config {
  std::string coordinator = std::string(framehive::default_coordinator_host) + ":" +
                            std::to_string(framehive::default_coordinator_port);
  std::string name;
  uint32_t workers = 0;
  std::string output_dir = "framehive-output";
  uint64_t shm_budget_mb = 0;
  uint32_t ring_slots = framehive::default_ring_slots;
  std::string shm_prefix = framehive::default_shm_prefix;
  uint32_t batch_frames = framehive::default_batch_frames;
  std::string log_format = framehive::to_string(framehive::log_format::text);
  uint32_t people_max_width = framehive::analysis::default_people_max_width;
  uint32_t motion_width = framehive::analysis::default_motion_width;
  double thumbnail_every_s = framehive::analysis::default_thumbnail_every_s;
  std::vector<std::string> detect_classes;
  uint32_t detect_max_width = framehive::analysis::default_detect_max_width;
  std::string detect_model_dir = framehive::analysis::default_detect_model_dir;
  double clips_padding_s = framehive::analysis::default_clips_padding_s;
  double clips_merge_gap_s = framehive::analysis::default_clips_merge_gap_s;
  double clips_min_length_s = framehive::analysis::default_clips_min_length_s;
  uint32_t clips_crf = framehive::analysis::default_clips_crf;
  static constexpr uint32_t max_crf = 51;
  std::string faults;
  uint32_t poison_attempts = framehive::default_poison_attempts;
  uint32_t restart_limit = framehive::default_restart_limit;
  uint32_t restart_window_s = static_cast<uint32_t>(framehive::default_restart_window.count());
  uint32_t hang_timeout_s = static_cast<uint32_t>(framehive::default_hang_timeout.count());
  uint32_t pace_fps = 0;
  std::string hold_at;  ///< "FRAME:FILE"
  framehive::tls_files tls;
  std::vector<std::string> allowed_protocols = framehive::node_options{}.allowed_protocols;
  std::vector<std::string> allowed_roots;
  std::string cache_dir;
  uint64_t cache_max_mb = framehive::default_cache_mb;
  framehive::metrics_options metrics{"127.0.0.1", framehive::default_node_metrics_port};
  node_config() {
    opt_group{custom_options_, "global"}
        .add(coordinator, "coordinator", "coordinator address HOST:PORT")
        .add(name, "name", "node name, unique in the cluster (default: host name)")
        .add(workers, "workers", "worker processes (default: number of cores)")
        .add(output_dir, "output-dir", "folder for job outputs such as thumbnails")
        .add(shm_budget_mb, "shm-budget-mb", "MiB of /dev/shm for rings (default: half of what is free)")
        .add(ring_slots, "ring-slots", "frames per ring (capped by the budget)")
        .add(shm_prefix, "shm-prefix", "name prefix of this cluster's shared-memory segments")
        .add(batch_frames, "batch-frames", "frames per result batch")
        .add(log_format, "log-format",
             "log lines of the node and its workers: text (human-readable) or json (one object per line)");
    opt_group{custom_options_, "cache"}
        .add(cache_dir, "dir", "blob cache for uploaded videos (default: OUTPUT-DIR/../framehive-cache-NAME)")
        .add(cache_max_mb, "max-mb", "MiB the blob cache may hold (unused blobs are evicted, oldest first)");
    opt_group{custom_options_, "supervision"}
        .add(poison_attempts, "poison-attempts", "a frame that kills its analyzer this often is quarantined")
        .add(restart_limit, "restart-limit",
             "restarts of one actor within restart-window-s before its video fails here")
        .add(restart_window_s, "restart-window-s", "window of the restart limit, in seconds")
        .add(hang_timeout_s, "hang-timeout-s", "an actor silent this long is hung and its worker is killed")
        .add(faults, "faults",
             "fault injection for tests, e.g. \"stats:crash@120,motion:throw@40\" (off if empty)");
    opt_group{custom_options_, "analyzers"}
        .add(people_max_width, "people-max-width", "people: frames are scaled down to this width first")
        .add(motion_width, "motion-width", "motion: width of the frame the background model sees")
        .add(thumbnail_every_s, "thumbnail-every-s", "thumbnails: one JPEG per this many seconds")
        .add(detect_classes, "detect-classes", detect_classes_help())
        .add(detect_max_width, "detect-max-width", "detect: frames are scaled down to this width first")
        .add(detect_model_dir, "detect-model-dir", "detect: folder with haarcascades/ and lbpcascades/")
        .add(clips_padding_s, "clips-padding-s", "clips: seconds of video kept before and after each segment")
        .add(clips_merge_gap_s, "clips-merge-gap-s", "clips: a pause up to this many seconds joins two segments")
        .add(clips_min_length_s, "clips-min-length-s", "clips: segments shorter than this (seconds) are no clip")
        .add(clips_crf, "clips-crf", "clips: x264 quality, 0-51 (lower: better and bigger; 18: visually lossless)");
    opt_group{custom_options_, "testing"}
        .add(pace_fps, "pace-fps", "TESTS ONLY: decoders publish at most this many frames per second (0: off)")
        .add(hold_at, "hold-at",
             "TESTS ONLY: FRAME:FILE, decoders publish no frame from FRAME on until FILE exists");
    opt_group{custom_options_, "inputs"}
        .add(allowed_protocols, "allowed-protocols",
             "URL schemes a decoder may open (FFmpeg protocol names; a plain path is \"file\")")
        .add(allowed_roots, "allowed-roots", "local inputs must lie below one of these folders (empty: any path)");
    opt_group{custom_options_, "metrics"}
        .add(metrics.port, "port",
             "port of the Prometheus endpoint /metrics (0: none; each node on one machine needs its own)")
        .add(metrics.bind, "bind", "address of the Prometheus endpoint (127.0.0.1: this machine only)");
    framehive::add_tls_options(custom_options_, tls);
    framehive::configure_network(*this);
  }

  /// What every consumer is told about its analyzer, typed end to end.
  framehive::analysis::analyzer_settings analyzers() const {
    framehive::analysis::analyzer_settings a;
    a.people_max_width = people_max_width;
    a.motion_width = motion_width;
    a.thumbnail_every_s = thumbnail_every_s;
    a.detect_classes = detect_classes;
    a.detect_max_width = detect_max_width;
    a.detect_model_dir = detect_model_dir;
    a.clips_padding_s = std::max(0.0, clips_padding_s);
    a.clips_merge_gap_s = std::max(0.0, clips_merge_gap_s);
    a.clips_min_length_s = std::max(0.0, clips_min_length_s);
    a.clips_crf = std::min(clips_crf, max_crf);
    a.faults = faults;
    return a;
  }

  framehive::supervision_options supervision() const {
    framehive::supervision_options s;
    s.poison_attempts = std::max(1u, poison_attempts);
    s.restart_limit = restart_limit;
    s.restart_window = std::chrono::seconds(std::max(1u, restart_window_s));
    s.hang_timeout = std::chrono::seconds(std::max(1u, hang_timeout_s));
    return s;
  }

  /// Absolute, normalised roots (relative ones are taken from the working folder).
  std::vector<std::string> roots() const {
    std::vector<std::string> out;
    for (const auto& r : allowed_roots)
      if (!r.empty())
        out.push_back(std::filesystem::absolute(r).lexically_normal().string());
    return out;
  }
};

/// A node that sends its inputs and results in plaintext to another machine says so.
void log_transport(const node_config& cfg, const framehive::node_options& o) {
  if (o.tls.enabled())
    spdlog::info("TLS to the coordinator with {} (CA {})", o.tls.cert, o.tls.ca);
  else if (o.coordinator_host.rfind("127.", 0) != 0 && o.coordinator_host != "localhost")
    spdlog::warn("no TLS: the connection to {} is plaintext and unauthenticated (see --tls.ca, --tls.cert, "
                 "--tls.key)",
                 cfg.coordinator);
  spdlog::info("inputs: protocols [{}], local roots [{}]", fmt::join(o.allowed_protocols, ","),
               o.allowed_roots.empty() ? std::string{"any"} : fmt::format("{}", fmt::join(o.allowed_roots, ",")));
}

}  // namespace

int main(int argc, char** argv) {
  node_config cfg;
  if (int rc = framehive::prepare_daemon(cfg, argc, argv, "framehive-node", cfg.tls); rc >= 0)
    return rc;

  // A typo in the class list is refused here, not found out by each video.
  if (auto chosen = framehive::analysis::select_detect_classes(cfg.detect_classes); !chosen.error.empty()) {
    std::fprintf(stderr, "framehive-node: [analyzers] detect-classes: %s\n", chosen.error.c_str());
    return 2;
  }

  framehive::node_options o;
  if (!framehive::split_host_port(cfg.coordinator, o.coordinator_host, o.coordinator_port)) {
    std::fprintf(stderr, "framehive-node: --coordinator must be HOST:PORT, got '%s'\n",
                 cfg.coordinator.c_str());
    return 2;
  }
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  o.name = cfg.name.empty() ? std::string(host) : cfg.name;
  const auto log_format = framehive::parse_log_format(cfg.log_format);
  if (!log_format) {
    std::fprintf(stderr, "framehive-node: --log-format must be text or json, not '%s'\n", cfg.log_format.c_str());
    return 2;
  }
  framehive::setup_logging({framehive::log_process::node, o.name, std::nullopt}, *log_format);
  o.logs = *log_format;  // the workers log the same way
  o.workers = cfg.workers ? cfg.workers : std::max(1u, std::thread::hardware_concurrency());
  o.worker_exe =
      (std::filesystem::path(framehive::self_executable()).parent_path() / "framehive-worker").string();
  o.output_dir = std::filesystem::absolute(cfg.output_dir).lexically_normal().string();
  o.ring_slots = std::max(framehive::min_ring_slots, cfg.ring_slots);
  o.shm_prefix = cfg.shm_prefix;
  o.batch_frames = std::max(1u, cfg.batch_frames);
  o.analyzers = cfg.analyzers();
  o.supervision = cfg.supervision();
  o.pace_fps = cfg.pace_fps;
  o.tls = cfg.tls;
  o.allowed_protocols = cfg.allowed_protocols;
  o.allowed_roots = cfg.roots();
  if (!cfg.cache_dir.empty())
    o.cache_dir = std::filesystem::absolute(cfg.cache_dir).lexically_normal().string();
  o.cache_bytes = cfg.cache_max_mb << 20;
  if (!cfg.faults.empty())
    spdlog::warn("fault injection is ON: {}", cfg.faults);
  if (cfg.pace_fps > 0)
    spdlog::warn("test pacing is ON: decoders publish at most {} frames per second", cfg.pace_fps);
  if (!cfg.hold_at.empty()) {
    const auto colon = cfg.hold_at.find(':');
    char* end = nullptr;
    const long long frame = std::strtoll(cfg.hold_at.c_str(), &end, 10);
    const bool well_formed = colon != std::string::npos && colon > 0 && end == cfg.hold_at.c_str() + colon &&
                             frame >= 0 && colon + 1 < cfg.hold_at.size();
    if (!well_formed) {
      spdlog::error("--testing.hold-at={}: not FRAME:FILE", cfg.hold_at);
      return 2;
    }
    o.hold_at = frame;
    o.hold_until = cfg.hold_at.substr(colon + 1);
    spdlog::warn("test hold is ON: decoders stop before frame {} until {} exists", o.hold_at, o.hold_until);
  }
  auto free_shm = framehive::shm::free_bytes(framehive::shm::default_shm_dir).value_or(0);
  o.shm_budget = cfg.shm_budget_mb ? cfg.shm_budget_mb << 20 : free_shm / 2;
  log_transport(cfg, o);

  // Rings of an earlier instance of this node that died without cleaning up.
  for (const auto& n : framehive::shm::remove_stale_segments(framehive::ring_prefix(o)))
    spdlog::info("removed stale ring /dev/shm/{}", n);

  // Before any actor: the metrics live as long as the process. A port taken
  // (another node on this machine) costs the endpoint, not the node.
  std::unique_ptr<framehive::metrics_endpoint> metrics;
  if (cfg.metrics.port != 0) {
    if (auto m = framehive::metrics_endpoint::start(cfg.metrics); !m) {
      spdlog::error(
          "node {}: {}; running without metrics (give each node on a machine its own --metrics.port)", o.name,
          m.error());
    } else {
      metrics = std::move(*m);
      o.metrics = std::make_shared<framehive::node_metrics>(metrics->registry());
      spdlog::info("node {}: metrics on http://{}:{}/metrics", o.name, cfg.metrics.bind, metrics->port());
    }
  }

  framehive::block_shutdown_signals();

  caf::actor_system sys{cfg};
  auto node = framehive::spawn_node(sys, o);
  auto port =
      sys.middleman().publish(caf::actor_cast<framehive::node_port_actor>(node), 0, "127.0.0.1", true);
  if (!port) {
    spdlog::error("cannot open a loopback port for workers: {}", sys.render(port.error()));
    caf::anon_send_exit(node, caf::exit_reason::kill);
    return 1;
  }
  spdlog::info("node {} ({} workers, shm budget {}, coordinator {}), workers connect on 127.0.0.1:{}", o.name,
               o.workers, framehive::shm::format_bytes(o.shm_budget), cfg.coordinator, *port);
  caf::anon_send(node, caf::publish_atom::value, *port);

  const int sig = framehive::wait_for_shutdown_signal();
  spdlog::info("node {}: signal {}, shutting down", o.name, sig);
  sys.middleman().unpublish(caf::actor_cast<caf::actor>(node), *port);
  framehive::stop_and_exit(sys, caf::actor_cast<caf::actor>(node), 0);
}
