// framehive-bench: framehive against the designs it replaces, in one run.
//
//   framehive-bench [--quick] [--out DIR] [--media DIR] [--only SECTION,...]
//
// 1. Fan-out: one 1080p30 H.264 clip, N = 1, 2, 4, 8 analyses (touch: one byte
//    per row; then stats), in four designs: framehive end to end; naive (N
//    processes each decoding the file); frames as CAF messages from one decoder
//    to N consumer processes; the bare decode.
// 2. Latency: decoder publish to consumer start, real decode into a ring.
// 3. Memory: node and workers on a 1-minute and a 10-minute clip.
// 4. Coordinator scale: 1000 simulated nodes, 10,000 queued videos.
// 5. A sports-style pipeline: 720p50 with motion and thumbnails.
// 6. Result ingest: simulated nodes push per-frame result batches (stats,
//    motion, people) into a coordinator as fast as it commits them.
// `--only fanout,latency,scale,ingest` runs some sections and prints their
// keys, without writing the report (fanout: only touch at N = 8 against the
// bare decode, the key comparison).
// Writes DIR/RESULTS.md, DIR/fanout.png, DIR/results.json and prints key=value
// lines last. Roles the driver starts of itself: see roles.hpp.

#include <signal.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include <nlohmann/json.hpp>
#include <opencv2/core/version.hpp>
#include <sqlite3.h>

#include "actors/messages.hpp"
#include "bench/bench_support.hpp"
#include "bench/plot.hpp"
#include "bench/proc_meter.hpp"
#include "bench/roles.hpp"
#include "caf/io/all.hpp"
#include "common/clock.hpp"
#include "common/process.hpp"
#include "ingest/ring_pump.hpp"
#include "media/decoder.hpp"
#include "shm/frame_ring.hpp"

using namespace framehive;
using namespace framehive::bench;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct options {
  bool quick = false;
  fs::path out;    ///< RESULTS.md, plot, results.json
  fs::path media;  ///< generated clips (kept between runs)
  fs::path work;   ///< scratch: logs, job stores, figures of child processes
  fs::path bin;    ///< framehive executables
  std::set<std::string> only;  ///< --only: the sections to run (empty: all, and the report is written)
  bool runs(const std::string& section) const { return only.empty() || only.count(section) > 0; }
};

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "framehive-bench: %s\n", why.c_str());
  shm::remove_stale_segments("fhbench-");
  std::exit(1);
}

void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void say(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stdout, fmt, ap);
  va_end(ap);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

json read_json(const fs::path& p) {
  std::ifstream in(p);
  auto j = json::parse(in, nullptr, false);
  return j.is_discarded() ? json::object() : j;
}

std::string run_text(const std::string& cmd) {
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[512];
    while (fgets(buf, sizeof buf, p))
      out += buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
    out.pop_back();
  return out;
}

child_process spawn_or_die(const std::vector<std::string>& args, const fs::path& log) {
  std::string err;
  auto p = child_process::spawn(args, &err, log.string());
  if (!p)
    die("cannot start " + args[0] + ": " + err);
  return std::move(*p);
}

/// Waits for each child, sampling the meter while its /proc entry still holds
/// its final CPU time; returns false if one failed.
bool finish(std::vector<child_process>& kids, proc_meter& meter, std::chrono::minutes limit) {
  bool ok = true;
  for (auto& k : kids) {
    if (!wait_exited_unreaped(k.pid(), limit)) {
      k.kill(SIGKILL);
      ok = false;
    }
    meter.sample();
    auto st = k.wait();
    if (!st.success()) {
      std::fprintf(stderr, "  (process %d %s)\n", k.pid(), st.describe().c_str());
      ok = false;
    }
  }
  return ok;
}

double seconds_since(uint64_t t0) { return static_cast<double>(monotonic_ns() - t0) / 1e9; }

// -- clips ---------------------------------------------------------------------------

struct clip {
  fs::path path;
  int width = 0, height = 0, fps = 0, seconds = 0;
  int64_t frames() const { return static_cast<int64_t>(fps) * seconds; }
};

clip testsrc_clip(const options& o, int w, int h, int fps, int seconds) {
  clip c{o.media / ("testsrc2_" + std::to_string(h) + "p" + std::to_string(fps) + "_" + std::to_string(seconds) +
                    "s.mp4"),
         w, h, fps, seconds};
  say("  clip %s", c.path.c_str());
  if (!ensure_clip(c.path, w, h, fps, seconds))
    die("cannot generate " + c.path.string() + " (is the ffmpeg CLI installed?)");
  return c;
}

/// A pitch with field lines seen by a panning camera, players and a ball
/// moving on it, and sensor grain: every frame differs, as in sports footage.
clip sports_clip(const options& o, int seconds) {
  clip c{o.media / ("sports_720p50_" + std::to_string(seconds) + "s.mp4"), 1280, 720, 50, seconds};
  say("  clip %s", c.path.c_str());
  if (fs::exists(c.path))
    return c;
  fs::create_directories(o.media);
  const std::string d = std::to_string(seconds);
  std::string lines;  // field lines: drawbox only touches its own area (drawgrid repaints the frame)
  for (int x = 0; x < 2560; x += 640)
    lines += ",drawbox=x=" + std::to_string(x) + ":y=0:w=6:h=720:c=white:t=fill";
  lines += ",drawbox=x=0:y=40:w=2560:h=6:c=white:t=fill,drawbox=x=0:y=674:w=2560:h=6:c=white:t=fill";
  std::string graph =
      "color=c=0x2f7d32:s=2560x720:r=50:d=" + d + lines + "[field];"
      "color=c=red:s=30x70:r=50:d=" + d + "[p1];color=c=blue:s=30x70:r=50:d=" + d + "[p2];"
      "color=c=yellow:s=30x70:r=50:d=" + d + "[p3];color=c=white:s=16x16:r=50:d=" + d + "[ball];"
      "[field][p1]overlay=x='1280+900*sin(t*0.7)':y='330+250*sin(t*1.3)'[a];"
      "[a][p2]overlay=x='1280+800*cos(t*0.9)':y='330+200*cos(t*1.1)'[b];"
      "[b][p3]overlay=x='1280+1000*sin(t*0.5+1)':y='330+280*sin(t*0.8+2)'[c];"
      "[c][ball]overlay=x='1280+1100*sin(t*1.7)':y='350+300*sin(t*2.3)'[e];"
      "[e]crop=1280:720:x='640+600*sin(t*0.35)':y=0,noise=alls=4:allf=t[out]";
  const fs::path tmp = o.media / ("tmp-" + c.path.filename().string());
  const std::string cmd = "ffmpeg -v error -y -nostdin -filter_complex \"" + graph +
                          "\" -map '[out]' -c:v libx264 -preset veryfast -g 100 -pix_fmt yuv420p '" + tmp.string() +
                          "'";
  if (std::system(cmd.c_str()) != 0)
    die("cannot generate " + c.path.string());
  fs::rename(tmp, c.path);
  return c;
}

// -- a local cluster -------------------------------------------------------------------

caf::actor_system& client_system() {
  static caf::actor_system_config cfg;
  static caf::actor_system* sys = [] {
    register_protocol(cfg);
    cfg.add_message_types<caf::id_block::framehive_bench>();
    configure_network(cfg);
    cfg.load<caf::io::middleman>();
    return new caf::actor_system(cfg);  // never destroyed: see actors/lifecycle.hpp
  }();
  return *sys;
}

struct job_outcome {
  bool ok = false;
  job_state state = job_state::queued;
  double wall_s = 0;
  int64_t frames_total = 0;
  job_results results;
};

class local_cluster {
 public:
  /// A coordinator and (with_node) one node with its workers, as a user starts them.
  local_cluster(const options& o, const std::string& tag, bool with_node = true) : o_(o) {
    dir_ = o.work / tag;
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    port_ = free_loopback_port();
    coordinator_ = spawn_or_die({(o.bin / "framehive-coordinator").string(), "--port=" + std::to_string(port_),
                                 "--bind=127.0.0.1", "--data-dir=" + (dir_ / "data").string()},
                                dir_ / "coordinator.log");
    auto& sys = client_system();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (true) {
      auto c = sys.middleman().remote_actor<coordinator_actor>("127.0.0.1", port_);
      if (c) {
        coord_ = *c;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline)
        die("the coordinator did not come up; see " + (dir_ / "coordinator.log").string());
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!with_node)
      return;
    node_ = spawn_or_die({(o.bin / "framehive-node").string(), "--coordinator=127.0.0.1:" + std::to_string(port_),
                          "--name=bench", "--output-dir=" + (dir_ / "out").string(),
                          "--shm-prefix=fhbench-" + std::to_string(getpid()) + "-"},
                         dir_ / "node.log");
    while (count_nodes() < 1) {
      if (std::chrono::steady_clock::now() > deadline)
        die("the node did not register; see " + (dir_ / "node.log").string());
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  ~local_cluster() {
    for (auto* p : {&node_, &coordinator_})
      if (*p && (*p)->running()) {
        (*p)->kill(SIGTERM);
        if (!(*p)->wait_for(std::chrono::seconds(15)))
          (*p)->kill(SIGKILL);
      }
  }

  pid_t coordinator_pid() const { return coordinator_->pid(); }
  pid_t node_pid() const { return node_ ? node_->pid() : 0; }
  const coordinator_actor& coordinator() const { return coord_; }
  uint16_t port() const { return port_; }

  /// Submits a job and polls its state every 20 ms until it ends.
  job_outcome run(const std::vector<std::string>& inputs, const std::vector<std::string>& analyzers) {
    job_outcome out;
    job_spec spec;
    spec.inputs = inputs;
    spec.analyzers = analyzers;
    caf::scoped_actor self{client_system()};
    const uint64_t t0 = monotonic_ns();
    uint64_t job = 0;
    self->request(coord_, std::chrono::seconds(120), spec)
        .receive([&](uint64_t id) { job = id; }, [&](caf::error& e) { die("submit failed: " + describe(e)); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(30);
    bool ended = false;
    while (!ended && std::chrono::steady_clock::now() < deadline) {
      self->request(coord_, std::chrono::seconds(30), status_atom::value, job)
          .receive(
              [&](job_status& st) {
                out.state = st.state;
                ended = st.state == job_state::done || st.state == job_state::failed ||
                        st.state == job_state::cancelled;
              },
              [&](caf::error&) {});
      if (!ended)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    out.wall_s = seconds_since(t0);
    self->request(coord_, std::chrono::seconds(60), results_atom::value, job, false)
        .receive([&](job_results& r) { out.results = std::move(r); }, [&](caf::error&) {});
    out.ok = out.state == job_state::done;
    if (out.ok)
      for (const auto& v : out.results.videos) {
        out.frames_total += v.frames_total;
        for (const auto& a : v.analyzers)
          out.ok = out.ok && static_cast<int64_t>(a.summary.frames_processed) == v.frames_total;
      }
    return out;
  }

 private:
  int count_nodes() {
    caf::scoped_actor self{client_system()};
    int n = 0;
    self->request(coord_, std::chrono::seconds(10), nodes_atom::value)
        .receive([&](cluster_nodes& c) { n = static_cast<int>(c.nodes.size()); }, [&](caf::error&) {});
    return n;
  }

  const options& o_;
  fs::path dir_;
  uint16_t port_ = 0;
  std::optional<child_process> coordinator_;
  std::optional<child_process> node_;
  coordinator_actor coord_;
};

// -- 1. fan-out ------------------------------------------------------------------------

struct run_figures {
  std::string design, work;
  int n = 0;
  int64_t frames = 0;  ///< frames every consumer handled (the smallest count)
  double wall_s = 0, fps_per_consumer = 0, cpu_s = 0, peak_rss_mb = 0, peak_pss_mb = 0;
  bool complete = false;
  json extra = json::object();
};

json to_json(const run_figures& r) {
  return {{"design", r.design}, {"work", r.work},         {"n", r.n},
          {"frames", r.frames}, {"wall_s", r.wall_s},     {"fps_per_consumer", r.fps_per_consumer},
          {"cpu_s", r.cpu_s},   {"peak_rss_mb", r.peak_rss_mb}, {"peak_pss_mb", r.peak_pss_mb},
          {"complete", r.complete}, {"extra", r.extra}};
}

void finish_figures(run_figures& r, const group_usage& u, int64_t expected) {
  r.cpu_s = u.cpu_s;
  r.peak_rss_mb = u.peak_rss_mb;
  r.peak_pss_mb = u.peak_pss_mb;
  r.fps_per_consumer = r.wall_s > 0 ? static_cast<double>(r.frames) / r.wall_s : 0;
  r.complete = r.complete && r.frames == expected;
  say("    %-10s %-5s N=%d  %7.2f s  %7.1f frames/s per consumer  CPU %6.1f s  peak RSS %6.0f MB  PSS %6.0f MB%s",
      r.design.c_str(), r.work.c_str(), r.n, r.wall_s, r.fps_per_consumer, r.cpu_s, r.peak_rss_mb, r.peak_pss_mb,
      r.complete ? "" : "  (INCOMPLETE)");
}

/// (iv) our decoder alone, and (ii) N of them at once each with its own analysis.
run_figures run_decoders(const options& o, const clip& c, int n, const std::string& work, const std::string& design) {
  run_figures r;
  r.design = design;
  r.work = work;
  r.n = n;
  const fs::path dir = o.work / (design + "-" + work + "-" + std::to_string(n));
  fs::create_directories(dir);
  proc_meter meter;
  meter.start();
  const uint64_t t0 = monotonic_ns();
  std::vector<child_process> kids;
  for (int i = 0; i < n; ++i) {
    kids.push_back(spawn_or_die({self_executable(), "decode", c.path.string(), work,
                                 (dir / ("out-" + std::to_string(i) + ".json")).string()},
                                dir / ("log-" + std::to_string(i) + ".txt")));
    meter.add_root(kids.back().pid());
  }
  r.complete = finish(kids, meter, std::chrono::minutes(30));
  r.wall_s = seconds_since(t0);
  r.frames = -1;
  for (int i = 0; i < n; ++i) {
    auto j = read_json(dir / ("out-" + std::to_string(i) + ".json"));
    const int64_t f = j.value("frames", int64_t{0});
    r.frames = r.frames < 0 ? f : std::min(r.frames, f);
  }
  finish_figures(r, meter.stop(), c.frames());
  return r;
}

/// (iii) one decoder sends each BGR frame as a CAF message to N consumer processes.
run_figures run_messages(const options& o, const clip& c, int n, const std::string& work) {
  run_figures r;
  r.design = "messages";
  r.work = work;
  r.n = n;
  const fs::path dir = o.work / ("messages-" + work + "-" + std::to_string(n));
  fs::remove_all(dir);
  fs::create_directories(dir);
  proc_meter meter;
  std::vector<child_process> kids;
  for (int i = 0; i < n; ++i) {
    kids.push_back(spawn_or_die({self_executable(), "msg-consumer", work,
                                 (dir / ("consumer-" + std::to_string(i) + ".json")).string()},
                                dir / ("consumer-" + std::to_string(i) + ".log")));
    meter.add_root(kids.back().pid());
  }
  std::vector<std::string> args{self_executable(), "msg-producer", c.path.string(), "8",
                                (dir / "producer.json").string()};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (int i = 0; i < n; ++i) {
    const fs::path port_file = dir / ("consumer-" + std::to_string(i) + ".json.port");
    while (!fs::exists(port_file)) {
      if (std::chrono::steady_clock::now() > deadline)
        die("message consumer " + std::to_string(i) + " did not publish its port");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    args.push_back(std::to_string(read_json(port_file).value("port", 0)));
  }
  meter.start();
  const uint64_t t0 = monotonic_ns();
  kids.push_back(spawn_or_die(args, dir / "producer.log"));
  meter.add_root(kids.back().pid());
  r.complete = finish(kids, meter, std::chrono::minutes(30));
  r.wall_s = seconds_since(t0);
  r.frames = -1;
  double p99 = 0;
  for (int i = 0; i < n; ++i) {
    auto j = read_json(dir / ("consumer-" + std::to_string(i) + ".json"));
    const int64_t f = j.value("frames", int64_t{0});
    r.frames = r.frames < 0 ? f : std::min(r.frames, f);
    p99 = std::max(p99, j.value("latency_p99_us", 0.0));
  }
  r.extra["latency_p99_us"] = p99;
  finish_figures(r, meter.stop(), c.frames());
  return r;
}

/// (i) framehive end to end: submit a job with N analyzer instances, until done.
run_figures run_framehive(local_cluster& cl, const clip& c, int n, const std::string& work) {
  run_figures r;
  r.design = "framehive";
  r.work = work;
  r.n = n;
  std::vector<std::string> analyzers;
  for (int i = 1; i <= n; ++i)
    analyzers.push_back(work + "." + std::to_string(i));
  proc_meter meter;
  meter.add_root(cl.coordinator_pid());
  meter.add_root(cl.node_pid());
  meter.start();
  auto out = cl.run({c.path.string()}, analyzers);
  r.wall_s = out.wall_s;
  r.complete = out.ok;
  r.frames = out.ok ? out.frames_total : 0;
  finish_figures(r, meter.stop(), c.frames());
  return r;
}

// -- 2. latency -------------------------------------------------------------------------

struct latency_figures {
  int n = 0;
  bool paced = false;
  double p50 = 0, p99 = 0, p999 = 0, max = 0;  ///< the worst consumer's
  double best_p50 = 0, best_p99 = 0;           ///< the best consumer's
  int64_t frames = 0;
};

latency_figures run_latency(const options& o, const clip& c, int n, bool paced) {
  latency_figures lf;
  lf.n = n;
  lf.paced = paced;
  auto dec = media::decoder::open(c.path.string());
  if (!dec)
    die(dec.error().message());
  auto& d = **dec;
  const std::string name = "fhbench-" + std::to_string(getpid()) + "-latency";
  shm::ring_options ro;
  ro.name = name;
  ro.width = static_cast<uint32_t>(d.output_width());
  ro.height = static_cast<uint32_t>(d.output_height());
  ro.slot_count = 32;
  auto ring = shm::frame_ring::create(ro);
  if (!ring)
    die(ring.error().message);
  for (int i = 1; i <= n; ++i)
    ring->reserve_consumer(static_cast<uint32_t>(i), 0);
  const fs::path dir = o.work / ("latency-" + std::to_string(n) + (paced ? "-paced" : ""));
  fs::create_directories(dir);
  std::vector<child_process> kids;
  for (int i = 1; i <= n; ++i)
    kids.push_back(spawn_or_die({self_executable(), "ring-consumer", name, std::to_string(i), "touch",
                                 (dir / ("c" + std::to_string(i) + ".json")).string()},
                                dir / ("c" + std::to_string(i) + ".log")));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (true) {
    int attached = 0;
    for (const auto& s : ring->status().consumers)
      attached += s.state == shm::entry_state::attached;
    if (attached == n)
      break;
    if (std::chrono::steady_clock::now() > deadline)
      die("latency consumers did not attach");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  auto producer = shm::ring_producer::open(name);
  if (!producer)
    die(producer.error().message);
  if (!paced) {
    if (!ingest::pump_into_ring(d, *producer))
      die("decode failed during the latency run");
  } else {
    // Frames are published at the video's own rate, as a live source delivers them.
    pacer pace(c.fps);
    media::decoded_frame f;
    while (true) {
      auto s = d.next(f);
      if (!s || *s == media::decoder::step::end)
        break;
      pace.wait();
      shm::ring_producer::slot slot;
      if (producer->acquire(slot, std::chrono::seconds(30)) != shm::ring_producer::acquire_status::ready)
        die("no free slot in 30 s during the latency run");
      d.convert_bgr(slot.pixels, static_cast<int>(slot.stride));
      shm::frame_info info;
      info.frame_index = f.index;
      info.pts = f.pts;
      info.time_base_num = f.time_base.num;
      info.time_base_den = f.time_base.den;
      producer->publish(info);
    }
    producer->finish();
  }
  for (auto& k : kids)
    k.wait();
  lf.frames = -1;
  for (int i = 1; i <= n; ++i) {
    auto j = read_json(dir / ("c" + std::to_string(i) + ".json"));
    lf.frames = lf.frames < 0 ? j.value("frames", int64_t{0}) : std::min(lf.frames, j.value("frames", int64_t{0}));
    lf.p50 = std::max(lf.p50, j.value("latency_p50_us", 0.0));
    lf.p99 = std::max(lf.p99, j.value("latency_p99_us", 0.0));
    lf.p999 = std::max(lf.p999, j.value("latency_p999_us", 0.0));
    lf.max = std::max(lf.max, j.value("latency_max_us", 0.0));
    const double p50 = j.value("latency_p50_us", 0.0), p99 = j.value("latency_p99_us", 0.0);
    lf.best_p50 = i == 1 ? p50 : std::min(lf.best_p50, p50);
    lf.best_p99 = i == 1 ? p99 : std::min(lf.best_p99, p99);
  }
  say("    N=%d %-8s p50 %7.1f us  p99 %7.1f us  p99.9 %8.1f us  max %8.1f us  (best consumer: p50 %.1f, p99 %.1f; "
      "%lld frames)",
      n, paced ? "paced" : "unpaced", lf.p50, lf.p99, lf.p999, lf.max, lf.best_p50, lf.best_p99,
      static_cast<long long>(lf.frames));
  return lf;
}

/// The latency keys, from the runs of section 2 (paced and unpaced, N = 1 and 8).
/// Paced figures are the headline (a live source); unpaced N = 8 is kept for contrast.
template <class Key>
void latency_keys(const std::vector<latency_figures>& lat, Key&& key) {
  auto find = [&](int n, bool paced) -> const latency_figures* {
    for (const auto& l : lat)
      if (l.n == n && l.paced == paced)
        return &l;
    return nullptr;
  };
  for (int n : {1, 8}) {
    const auto* l = find(n, true);
    if (!l)
      continue;
    const std::string suffix = "_us_N" + std::to_string(n);
    key("latency_p50" + suffix, l->p50, "", true);
    if (n == 8)
      key("latency_p99" + suffix, l->p99, "<= 200", l->p99 <= 200);
    else
      key("latency_p99" + suffix, l->p99, "", true);
    key("latency_p999" + suffix, l->p999, "", true);
  }
  if (const auto* l = find(8, false))
    key("latency_p99_us_N8_unpaced", l->p99, "", true);
}

json to_json(const latency_figures& l) {
  return {{"n", l.n},       {"paced", l.paced}, {"p50_us", l.p50},           {"p99_us", l.p99},
          {"p999_us", l.p999}, {"max_us", l.max}, {"best_p50_us", l.best_p50}, {"best_p99_us", l.best_p99},
          {"frames", l.frames}};
}

// -- 3. memory --------------------------------------------------------------------------

struct memory_figures {
  int minutes = 0;
  int64_t frames = 0;
  double wall_s = 0, node_peak_rss_mb = 0, node_peak_pss_mb = 0, coordinator_peak_rss_mb = 0;
  bool complete = false;
};

memory_figures run_memory(const options& o, const clip& c, int minutes) {
  memory_figures m;
  m.minutes = minutes;
  local_cluster cl(o, "memory-" + std::to_string(minutes) + "min");
  proc_meter node_meter, coord_meter;
  node_meter.add_root(cl.node_pid());
  coord_meter.add_root(cl.coordinator_pid());
  node_meter.start();
  coord_meter.start();
  auto out = cl.run({c.path.string()}, {"stats", "touch"});
  auto nu = node_meter.stop();
  auto cu = coord_meter.stop();
  m.frames = out.frames_total;
  m.wall_s = out.wall_s;
  m.complete = out.ok && out.frames_total == c.frames();
  m.node_peak_rss_mb = nu.peak_rss_mb;
  m.node_peak_pss_mb = nu.peak_pss_mb;
  m.coordinator_peak_rss_mb = cu.peak_rss_mb;
  say("    %2d min (%lld frames, %.1f s): node+workers peak RSS %.0f MB, PSS %.0f MB; coordinator peak RSS %.0f MB%s",
      minutes, static_cast<long long>(m.frames), m.wall_s, m.node_peak_rss_mb, m.node_peak_pss_mb,
      m.coordinator_peak_rss_mb, m.complete ? "" : "  (INCOMPLETE)");
  return m;
}

// -- 4. coordinator scale ------------------------------------------------------------------

struct scale_figures {
  int nodes = 0, videos = 0;
  double register_s = 0, submit_reply_s = 0, schedule_s = 0, all_done_s = 0;
  double cpu_s = 0, peak_rss_mb = 0;
  int64_t assigned = 0, done = 0, errors = 0;
};

scale_figures run_scale(const options& o, int nodes, int videos, int processes) {
  scale_figures s;
  s.nodes = nodes;
  s.videos = videos;
  local_cluster cl(o, "scale", false);
  const fs::path dir = o.work / "scale";
  proc_meter meter;
  meter.add_root(cl.coordinator_pid());
  meter.start();
  std::vector<child_process> sims;
  const uint64_t t0 = monotonic_ns();
  const int per = (nodes + processes - 1) / processes;
  for (int p = 0; p < processes; ++p) {
    const int first = p * per, count = std::min(per, nodes - first);
    sims.push_back(spawn_or_die({self_executable(), "sim-nodes", "127.0.0.1", std::to_string(cl.port()),
                                 std::to_string(first), std::to_string(count), "16", "1000",
                                 (dir / ("sim-" + std::to_string(p) + ".json")).string()},
                                dir / ("sim-" + std::to_string(p) + ".log")));
  }
  auto totals = [&] {
    json sum{{"registered", 0}, {"assigned", 0}, {"done", 0}, {"errors", 0}, {"last_assigned_ns", 0},
             {"last_done_ns", 0}};
    for (int p = 0; p < processes; ++p) {
      auto j = read_json(dir / ("sim-" + std::to_string(p) + ".json"));
      for (const char* k : {"registered", "assigned", "done", "errors"})
        sum[k] = sum[k].get<int64_t>() + j.value(k, int64_t{0});
      for (const char* k : {"last_assigned_ns", "last_done_ns"})
        sum[k] = std::max(sum[k].get<uint64_t>(), j.value(k, uint64_t{0}));
    }
    return sum;
  };
  auto wait_for = [&](const char* key, int64_t target, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (totals()[key].get<int64_t>() < target) {
      if (std::chrono::steady_clock::now() > deadline)
        return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  };
  if (!wait_for("registered", nodes, std::chrono::seconds(120)))
    die("simulated nodes did not all register: " + totals().dump());
  s.register_s = seconds_since(t0);
  std::this_thread::sleep_for(std::chrono::seconds(1));  // one round of status pushes
  job_spec spec;
  spec.analyzers = {"touch"};
  for (int i = 0; i < videos; ++i)
    spec.inputs.push_back("/bench/sim/video-" + std::to_string(i) + ".mp4");
  caf::scoped_actor self{client_system()};
  const uint64_t submitted = monotonic_ns();
  self->request(cl.coordinator(), std::chrono::seconds(600), spec)
      .receive([](uint64_t) {}, [](caf::error& e) { die("submit failed: " + describe(e)); });
  s.submit_reply_s = seconds_since(submitted);
  const bool assigned = wait_for("assigned", videos, std::chrono::seconds(600));
  auto t = totals();
  s.assigned = t["assigned"];
  if (assigned)
    s.schedule_s = static_cast<double>(t["last_assigned_ns"].get<uint64_t>() - submitted) / 1e9;
  const bool done = wait_for("done", videos, std::chrono::seconds(o.quick ? 120 : 600));
  t = totals();
  s.done = t["done"];
  s.errors = t["errors"];
  if (done)
    s.all_done_s = static_cast<double>(t["last_done_ns"].get<uint64_t>() - submitted) / 1e9;
  auto u = meter.stop();
  s.cpu_s = u.cpu_s;
  s.peak_rss_mb = u.peak_rss_mb;
  for (auto& p : sims)
    p.kill(SIGKILL);
  say("    %d nodes registered in %.1f s; %d videos: submit answered in %.2f s, all assigned after %.2f s, all done "
      "after %.2f s; coordinator CPU %.1f s, peak RSS %.0f MB; %lld errors",
      nodes, s.register_s, videos, s.submit_reply_s, s.schedule_s, s.all_done_s, s.cpu_s, s.peak_rss_mb,
      static_cast<long long>(s.errors));
  return s;
}

// -- 6. result ingest -----------------------------------------------------------------------

struct ingest_figures {
  std::string analyzer;
  int nodes = 0, videos = 0;
  int64_t frames = 0, results = 0, batches = 0, errors = 0;
  double wall_s = 0, results_per_s = 0, cpu_s = 0, results_per_cpu_s = 0, peak_rss_mb = 0;
  double table_bytes_per_result = 0;    ///< dbstat: pages of the results table / rows
  double payload_bytes_per_result = 0;  ///< dbstat: cell payload of the results table / rows
  double file_bytes_per_result =
      0;  ///< database file after a checkpoint, less its size before the job, / rows
  bool complete = false;
};

/// The results table of the coordinator's file: (rows, bytes of its pages,
/// bytes of its cells' payload), by SQLite's dbstat, after a checkpoint (a
/// second connection; the coordinator keeps the file open).
std::tuple<int64_t, int64_t, int64_t> results_table_bytes(const fs::path& db) {
  sqlite3* h = nullptr;
  std::tuple<int64_t, int64_t, int64_t> out{0, 0, 0};
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    sqlite3_close(h);
    return out;
  }
  sqlite3_busy_timeout(h, 5000);
  sqlite3_exec(h, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  auto one = [&](const char* sql, int col) {
    sqlite3_stmt* st = nullptr;
    int64_t v = 0;
    if (sqlite3_prepare_v2(h, sql, -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      v = sqlite3_column_int64(st, col);
    sqlite3_finalize(st);
    return v;
  };
  std::get<0>(out) = one("SELECT COUNT(*) FROM frame_results", 0);
  std::get<1>(out) = one("SELECT SUM(pgsize), SUM(payload) FROM dbstat WHERE name = 'frame_results'", 0);
  std::get<2>(out) = one("SELECT SUM(pgsize), SUM(payload) FROM dbstat WHERE name = 'frame_results'", 1);
  sqlite3_close(h);
  return out;
}

/// Simulated nodes (`processes` processes, `nodes` nodes in all, `cores` videos
/// each at a time) push the results of one job of `videos` videos x `frames`
/// frames with `analyzer` into a fresh coordinator, in batches of 8 frames
/// (a node's default batch), at most two unacknowledged per (video, analyzer).
ingest_figures run_ingest(const options& o, const std::string& analyzer, int nodes, int processes, int cores,
                          int videos, int64_t frames) {
  ingest_figures s;
  s.analyzer = analyzer;
  s.nodes = nodes;
  s.videos = videos;
  s.frames = frames;
  const std::string tag = "ingest-" + analyzer;
  local_cluster cl(o, tag, false);
  const fs::path dir = o.work / tag;
  const fs::path db = dir / "data" / "framehive.db";
  std::vector<child_process> sims;
  const int per = (nodes + processes - 1) / processes;
  for (int p = 0; p < processes; ++p) {
    const int first = p * per, count = std::min(per, nodes - first);
    sims.push_back(
        spawn_or_die({self_executable(), "ingest-nodes", "127.0.0.1", std::to_string(cl.port()),
                      std::to_string(first), std::to_string(count), std::to_string(cores),
                      std::to_string(frames), "8", (dir / ("sim-" + std::to_string(p) + ".json")).string()},
                     dir / ("sim-" + std::to_string(p) + ".log")));
  }
  auto totals = [&] {
    json sum{{"registered", 0}, {"assigned", 0}, {"results", 0},       {"batches", 0},
             {"done", 0},       {"errors", 0},   {"first_send_ns", 0}, {"last_ack_ns", 0}};
    for (int p = 0; p < processes; ++p) {
      auto j = read_json(dir / ("sim-" + std::to_string(p) + ".json"));
      for (const char* k : {"registered", "assigned", "results", "batches", "done", "errors"})
        sum[k] = sum[k].get<int64_t>() + j.value(k, int64_t{0});
      const uint64_t first = j.value("first_send_ns", uint64_t{0});
      if (first != 0 &&
          (sum["first_send_ns"].get<uint64_t>() == 0 || first < sum["first_send_ns"].get<uint64_t>()))
        sum["first_send_ns"] = first;
      sum["last_ack_ns"] = std::max(sum["last_ack_ns"].get<uint64_t>(), j.value("last_ack_ns", uint64_t{0}));
    }
    return sum;
  };
  auto wait_for = [&](const char* key, int64_t target, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (totals()[key].get<int64_t>() < target) {
      if (std::chrono::steady_clock::now() > deadline)
        return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  };
  if (!wait_for("registered", nodes, std::chrono::seconds(60)))
    die("ingest: simulated nodes did not all register: " + totals().dump());
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // one round of status pushes
  std::error_code ec;
  const auto file_size = [&] {
    return static_cast<int64_t>(fs::file_size(db, ec)) +
           static_cast<int64_t>(fs::file_size(db.string() + "-wal", ec));
  };
  const int64_t size_before = file_size();
  job_spec spec;
  spec.analyzers = {analyzer};
  for (int i = 0; i < videos; ++i)
    spec.inputs.push_back("/bench/ingest/video-" + std::to_string(i) + ".mp4");
  proc_meter meter;
  meter.add_root(cl.coordinator_pid());
  meter.start();
  caf::scoped_actor self{client_system()};
  self->request(cl.coordinator(), std::chrono::seconds(120), spec)
      .receive([](uint64_t) {}, [](caf::error& e) { die("ingest: submit failed: " + describe(e)); });
  const int64_t expected = static_cast<int64_t>(videos) * frames;
  const bool done = wait_for("done", videos, std::chrono::seconds(o.quick ? 120 : 600));
  auto u = meter.stop();
  auto t = totals();
  for (auto& p : sims)
    p.kill(SIGKILL);
  s.results = t["results"];
  s.batches = t["batches"];
  s.errors = t["errors"];
  s.wall_s = static_cast<double>(t["last_ack_ns"].get<uint64_t>() - t["first_send_ns"].get<uint64_t>()) / 1e9;
  s.results_per_s = s.wall_s > 0 ? static_cast<double>(s.results) / s.wall_s : 0;
  s.cpu_s = u.cpu_s;
  s.peak_rss_mb = u.peak_rss_mb;
  s.results_per_cpu_s = s.cpu_s > 0 ? static_cast<double>(s.results) / s.cpu_s : 0;
  const auto [rows, pages, payload] = results_table_bytes(db);
  const int64_t size_after = file_size();
  if (rows > 0) {
    s.table_bytes_per_result = static_cast<double>(pages) / static_cast<double>(rows);
    s.payload_bytes_per_result = static_cast<double>(payload) / static_cast<double>(rows);
    s.file_bytes_per_result = static_cast<double>(size_after - size_before) / static_cast<double>(rows);
  }
  s.complete = done && s.results == expected && rows == expected && s.errors == 0;
  say("    %-6s %d videos x %lld frames from %d nodes: %lld results in %.2f s = %.0f results/s; coordinator "
      "CPU %.2f s "
      "= %.0f results per CPU-s; stored %.1f B/result (table pages; payload %.1f, file %.1f)%s",
      analyzer.c_str(), videos, static_cast<long long>(frames), nodes, static_cast<long long>(s.results),
      s.wall_s, s.results_per_s, s.cpu_s, s.results_per_cpu_s, s.table_bytes_per_result,
      s.payload_bytes_per_result, s.file_bytes_per_result, s.complete ? "" : "  (INCOMPLETE)");
  return s;
}

/// Section 6: one fresh coordinator per analyzer, so each file holds one kind's rows.
std::vector<ingest_figures> run_ingest_section(const options& o) {
  std::vector<ingest_figures> out;
  for (const std::string a : {"stats", "motion", "people"})
    out.push_back(run_ingest(o, a, 8, 4, 4, o.quick ? 32 : 64, o.quick ? 2000 : 4000));
  return out;
}

/// The section's key figures: rates over all three runs, bytes per kind.
void ingest_keys(const std::vector<ingest_figures>& runs,
                 const std::function<void(const std::string&, double, const std::string&, bool)>& key) {
  double results = 0, wall = 0, cpu = 0;
  for (const auto& r : runs) {
    results += static_cast<double>(r.results);
    wall += r.wall_s;
    cpu += r.cpu_s;
  }
  const double per_cpu = cpu > 0 ? results / cpu : 0;
  key("ingest_results_per_s", wall > 0 ? results / wall : 0, "", true);
  key("ingest_results_per_cpu_s", per_cpu, ">= 250000", per_cpu >= 250000);
  for (const auto& r : runs)
    key("stored_bytes_per_result_" + r.analyzer, r.table_bytes_per_result,
        r.analyzer == "stats" ? "<= 40" : "", r.analyzer != "stats" || r.table_bytes_per_result <= 40);
}

// -- 5. sports pipeline ---------------------------------------------------------------------

struct sports_figures {
  double duration_s = 0, wall_s = 0, decode_fps = 0, pipeline_fps = 0, realtime_factor = 0, cpu_s = 0;
  bool complete = false;
};

sports_figures run_sports(const options& o, const clip& c) {
  sports_figures s;
  s.duration_s = c.seconds;
  auto bare = run_decoders(o, c, 1, "none", "decode");
  s.decode_fps = bare.fps_per_consumer;
  local_cluster cl(o, "sports");
  proc_meter meter;
  meter.add_root(cl.node_pid());
  meter.add_root(cl.coordinator_pid());
  meter.start();
  auto out = cl.run({c.path.string()}, {"motion", "thumbnails"});
  s.cpu_s = meter.stop().cpu_s;
  s.wall_s = out.wall_s;
  s.complete = out.ok && out.frames_total == c.frames();
  s.pipeline_fps = static_cast<double>(out.frames_total) / out.wall_s;
  s.realtime_factor = s.duration_s / s.wall_s;
  say("    %d s of 720p50: motion+thumbnails in %.1f s (%.0f frames/s, %.2fx real time); bare decode %.0f frames/s%s",
      c.seconds, s.wall_s, s.pipeline_fps, s.realtime_factor, s.decode_fps, s.complete ? "" : "  (INCOMPLETE)");
  return s;
}

// -- the report ------------------------------------------------------------------------------

std::string machine_description() {
  std::string cpu = run_text("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'");
  utsname u{};
  uname(&u);
  std::ostringstream s;
  s << cpu << ", " << std::thread::hardware_concurrency() << " vCPUs, "
    << run_text("awk '/MemTotal/ {printf \"%.0f GiB\", $2/1048576}' /proc/meminfo") << " RAM; Debian "
    << run_text("cat /etc/debian_version") << ", Linux " << u.release << "; "
    << run_text("ffmpeg -version 2>/dev/null | head -n1 | cut -d' ' -f1-3") << ", CAF " << CAF_VERSION / 10000 << "."
    << (CAF_VERSION / 100) % 100 << "." << CAF_VERSION % 100 << ", OpenCV " << CV_VERSION;
  return s.str();
}

std::string fixed(double v, int digits = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

struct key_figure {
  std::string key;
  double value = 0;
  std::string target;  ///< "" if none
  bool met = true;
};

}  // namespace

int main(int argc, char** argv) {
  if (int rc = run_role(argc, argv); rc >= 0)
    return rc;
  options o;
  const fs::path exe_dir = fs::path(self_executable()).parent_path();
  o.bin = exe_dir;
  o.media = exe_dir.parent_path() / "bench-media";
  o.out = fs::current_path() / "bench-results";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick")
      o.quick = true;
    else if (a == "--out" && i + 1 < argc)
      o.out = argv[++i];
    else if (a == "--media" && i + 1 < argc)
      o.media = argv[++i];
    else if (a == "--only" && i + 1 < argc) {
      std::stringstream list(argv[++i]);
      for (std::string x; std::getline(list, x, ',');)
        o.only.insert(x);
    } else {
      std::fprintf(stderr, "usage: framehive-bench [--quick] [--out DIR] [--media DIR] [--only SECTION,...]\n");
      return 64;
    }
  }
  o.work = fs::temp_directory_path() / ("framehive-bench-" + std::to_string(getpid()));
  fs::create_directories(o.work);
  if (o.only.empty())  // --only writes no report
    fs::create_directories(o.out);
  shm::remove_stale_segments("fhbench-");
  keep_freed_memory();
  const uint64_t started = monotonic_ns();
  const std::string machine = machine_description();
  say("framehive-bench (%s) on %s", o.quick ? "quick" : "full", machine.c_str());

  if (!o.only.empty()) {
    // Some sections, keys only (the report needs every section). Sections
    // that need clips run only in the whole benchmark.
    std::vector<key_figure> keys;
    auto key = [&](const std::string& k, double v, const std::string& target, bool met) {
      keys.push_back({k, v, target, met});
    };
    bool ok = true;
    if (o.runs("scale")) {
      say("4. coordinator scale");
      auto sc = run_scale(o, 1000, 10000, 4);
      key("submit_reply_10k_s", sc.submit_reply_s, "<= 0.1", sc.submit_reply_s <= 0.1);
      key("schedule_10k_s", sc.schedule_s > 0 ? sc.schedule_s : -1, "<= 10",
          sc.schedule_s > 0 && sc.schedule_s <= 10);
      ok = ok && sc.done == sc.videos;
    }
    if (o.runs("fanout")) {
      // The key comparison of section 1 alone: touch at N = 8 against the bare
      // decode, ordered decode, framehive, framehive, decode (linear drift cancels).
      const clip fan = testsrc_clip(o, 1920, 1080, 30, o.quick ? 12 : 60);
      say("1. fan-out (touch, N=8) on %s", fan.path.filename().c_str());
      local_cluster cl(o, "fanout");
      run_framehive(cl, testsrc_clip(o, 640, 360, 30, 2), 1, "touch");  // warms the node
      const auto d1 = run_decoders(o, fan, 1, "none", "decode");
      const auto f1 = run_framehive(cl, fan, 8, "touch");
      const auto f2 = run_framehive(cl, fan, 8, "touch");
      const auto d2 = run_decoders(o, fan, 1, "none", "decode");
      const double dec = (d1.fps_per_consumer + d2.fps_per_consumer) / 2;
      const double fh = (f1.fps_per_consumer + f2.fps_per_consumer) / 2;
      key("ratio_vs_decode_N8", fh / std::max(1e-9, dec), ">= 0.9", fh / std::max(1e-9, dec) >= 0.9);
      key("fps_framehive_touch_N8", fh, "", true);
      key("fps_decode", dec, "", true);
      key("cpu_s_framehive_touch_N8", (f1.cpu_s + f2.cpu_s) / 2, "", true);
      ok = ok && f1.complete && f2.complete && d1.complete && d2.complete;
    }
    if (o.runs("latency")) {
      const clip fan = testsrc_clip(o, 1920, 1080, 30, o.quick ? 12 : 60);
      say("2. latency, decoder publish to consumer start (touch), real decode of %s", fan.path.filename().c_str());
      std::vector<latency_figures> lat;
      for (bool paced : {true, false})
        for (int n : {1, 8})
          lat.push_back(run_latency(o, fan, n, paced));
      latency_keys(lat, key);
      for (const auto& l : lat)
        ok = ok && l.frames == fan.frames();
    }
    if (o.runs("ingest")) {
      say("6. result ingest");
      auto in = run_ingest_section(o);
      ingest_keys(in, key);
      for (const auto& r : in)
        ok = ok && r.complete;
    }
    fs::remove_all(o.work);
    for (const auto& k : keys)
      std::printf("%s=%s\n", k.key.c_str(), fixed(k.value, 3).c_str());
    std::printf("all_complete=%d\n", ok ? 1 : 0);
    std::fflush(stdout);
    std::_Exit(ok ? 0 : 1);
  }

  say("clips");
  const clip fan = testsrc_clip(o, 1920, 1080, 30, o.quick ? 12 : 60);
  const clip mem1 = testsrc_clip(o, 640, 360, 30, 60);
  const clip mem10 = testsrc_clip(o, 640, 360, 30, 600);
  const clip sports = sports_clip(o, o.quick ? 60 : 600);

  // 1. fan-out
  say("1. fan-out on %s (%lld frames)", fan.path.filename().c_str(), static_cast<long long>(fan.frames()));
  const std::vector<int> ns{1, 2, 4, 8};
  std::vector<run_figures> runs;
  std::map<int, double> decode_fps;  // the bare decode next to framehive's run at N
  {
    local_cluster cl(o, "fanout");
    // A first job warms the node (worker processes, libraries, page cache).
    run_framehive(cl, testsrc_clip(o, 640, 360, 30, 2), 1, "touch");
    for (const std::string work : {"touch", "stats"}) {
      for (int n : ns) {
        double before = 0;
        if (work == "touch") {
          auto d = run_decoders(o, fan, 1, "none", "decode");
          before = d.fps_per_consumer;
          runs.push_back(d);
        }
        runs.push_back(run_framehive(cl, fan, n, work));
        // This VM's speed drifts by up to 20% within a minute: the full run
        // orders the key comparison decode, framehive, framehive, decode, so
        // that a linear drift cancels in the averages.
        if (work == "touch" && !o.quick)
          runs.push_back(run_framehive(cl, fan, n, work));
        if (work == "touch") {
          auto d = run_decoders(o, fan, 1, "none", "decode");
          decode_fps[n] = (before + d.fps_per_consumer) / 2;
          runs.push_back(d);
        }
        runs.push_back(run_decoders(o, fan, n, work, "naive"));
        runs.push_back(run_messages(o, fan, n, work));
      }
    }
  }
  auto fps_of = [&](const std::string& design, const std::string& work, int n) {
    double sum = 0;
    int k = 0;
    for (const auto& r : runs)
      if (r.design == design && r.work == work && r.n == n) {
        sum += r.fps_per_consumer;
        ++k;
      }
    return k ? sum / k : 0.0;
  };

  // 2. latency
  say("2. latency, decoder publish to consumer start (touch), real decode of %s", fan.path.filename().c_str());
  std::vector<latency_figures> lat;
  for (bool paced : {true, false})
    for (int n : {1, 8})
      lat.push_back(run_latency(o, fan, n, paced));

  // 3. memory
  say("3. memory of node and workers, stats + touch on 360p30");
  auto m1 = run_memory(o, mem1, 1);
  auto m10 = run_memory(o, mem10, 10);

  // 4. coordinator scale
  say("4. coordinator scale");
  auto sc = run_scale(o, 1000, 10000, 4);

  // 5. sports
  say("5. sports-style pipeline");
  auto sp = run_sports(o, sports);

  // 6. ingest
  say("6. result ingest");
  auto ingest = run_ingest_section(o);

  // -- key figures ---------------------------------------------------------------------
  const double fh4 = fps_of("framehive", "touch", 4), fh8 = fps_of("framehive", "touch", 8);
  std::vector<key_figure> keys;
  auto key = [&](const std::string& k, double v, const std::string& target, bool met) {
    keys.push_back({k, v, target, met});
  };
  const double r_naive = fh4 / std::max(1e-9, fps_of("naive", "touch", 4));
  const double r_msg = fh4 / std::max(1e-9, fps_of("messages", "touch", 4));
  const double r_dec = fh8 / std::max(1e-9, decode_fps[8]);
  const double r_dec1 = fps_of("framehive", "touch", 1) / std::max(1e-9, decode_fps[1]);
  const double growth = m10.node_peak_rss_mb / std::max(1e-9, m1.node_peak_rss_mb);
  key("ratio_vs_naive_N4", r_naive, ">= 3", r_naive >= 3);
  key("ratio_vs_messages_N4", r_msg, ">= 3", r_msg >= 3);
  key("ratio_vs_decode_N8", r_dec, ">= 0.9", r_dec >= 0.9);
  key("ratio_vs_decode_N1", r_dec1, ">= 0.95", r_dec1 >= 0.95);
  latency_keys(lat, key);
  key("rss_growth_10min_vs_1min", growth, "<= 1.1", growth <= 1.1);
  key("schedule_10k_s", sc.schedule_s > 0 ? sc.schedule_s : -1, "<= 10", sc.schedule_s > 0 && sc.schedule_s <= 10);
  key("submit_reply_10k_s", sc.submit_reply_s, "<= 0.1", sc.submit_reply_s <= 0.1);
  key("sports_realtime_factor", sp.realtime_factor, "", true);
  ingest_keys(ingest, key);
  key("ratio_vs_naive_N4_stats", fps_of("framehive", "stats", 4) / std::max(1e-9, fps_of("naive", "stats", 4)), "",
      true);
  key("ratio_vs_messages_N4_stats",
      fps_of("framehive", "stats", 4) / std::max(1e-9, fps_of("messages", "stats", 4)), "", true);
  bool all_complete = sc.done == sc.videos && m1.complete && m10.complete && sp.complete;
  for (const auto& r : ingest)
    all_complete = all_complete && r.complete;
  for (const auto& r : runs)
    all_complete = all_complete && r.complete;

  // -- plot --------------------------------------------------------------------------------
  std::vector<panel> panels;
  for (const std::string work : {"touch", "stats"}) {
    panel p;
    p.title = work == "touch" ? "light analysis (one byte per row)" : "stats (grey mean + Laplacian)";
    p.y_label = "frames/s per consumer";
    for (const auto& [design, label] : std::vector<std::pair<std::string, std::string>>{
             {"framehive", "framehive (decode once, shared-memory ring)"},
             {"naive", "naive: each analysis decodes the file"},
             {"messages", "frames as CAF messages to N processes"},
             {"decode", "bare decode (our decoder alone)"}}) {
      series s;
      s.label = label;
      for (int n : ns)
        s.points.push_back({n, design == "decode" ? (decode_fps[n] > 0 ? decode_fps[n] : fps_of("decode", "none", 1))
                                                  : fps_of(design, work, n)});
      p.lines.push_back(s);
    }
    panels.push_back(p);
  }
  const fs::path png = o.out / "fanout.png";
  if (!write_line_chart(png.string(), panels))
    std::fprintf(stderr, "cannot write %s\n", png.c_str());

  // -- RESULTS.md and results.json ---------------------------------------------------------------
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  std::ostringstream md;
  md << "# framehive benchmarks\n\n"
     << "Written by `scripts/bench.sh" << (o.quick ? " --quick" : "") << "` on " << date << " in "
     << fixed(seconds_since(started) / 60, 1) << " minutes.\n\n"
     << "**Machine:** " << machine << ".\n\n"
     << "Every figure below comes from this one run; ratios compare designs measured in it. "
     << "CPU is user+system seconds of every process of the design (children included). Peak RSS is the "
     << "highest sum over the design's processes, sampled every 50 ms (PSS once a second: reading it walks the "
     << "page tables, and more often the meter would take CPU from what it measures); RSS counts a shared page once per process "
     << "that maps it, so for framehive the ring counts once per consumer. Peak PSS shares such pages out and is "
     << "the memory the design really occupies.\n\n";
  md << "## Key figures\n\n| key | value | target | |\n|---|---:|---|---|\n";
  for (const auto& k : keys)
    md << "| `" << k.key << "` | " << fixed(k.value, 3) << " | " << k.target << " | "
       << (k.target.empty() ? "" : (k.met ? "met" : "**missed**")) << " |\n";
  md << "\n## 1. Fan-out: N analyses of one video\n\n"
     << "`" << fan.path.filename().string() << "`: " << fan.seconds << " s of 1920x1080 at 30 frames/s, H.264 "
     << "(testsrc2, x264 veryfast), " << fan.frames() << " frames. Each design decodes to BGR24 with our "
     << "FFmpeg decoder and runs the same analysis code (`touch`: one byte from every row; `stats`: grey mean and "
     << "variance of the Laplacian).\n\n"
     << "* **framehive**: coordinator, one node with its worker processes (as `framehive-node` starts them), "
     << "a job with N analyzer instances (`touch.1` ... `touch.N`) submitted over CAF; wall time from submit to "
     << "the job's state `done` (polled every 20 ms), every result stored in the job store. CPU and memory: "
     << "coordinator, node and workers.\n"
     << "* **naive**: N processes, each decoding the file and analysing every frame.\n"
     << "* **messages**: one process decodes once and sends every BGR frame as a CAF message (one message shared "
     << "by all receivers) to N consumer actors in N other processes over the middleman (TCP on loopback); at "
     << "most 8 unacknowledged frames per consumer, like a broker's prefetch.\n"
     << "* **decode**: our decoder alone, no analysis: the limit. Measured before and after framehive's runs "
     << "(the full run orders them decode, framehive, framehive, decode: this VM drifts by up to 20% within a "
     << "minute, and the averages cancel a linear drift).\n\n"
     << "![frames/s per consumer against N](fanout.png)\n\n"
     << "| design | analysis | N | wall s | frames/s per consumer | CPU s | peak RSS MB | peak PSS MB | complete |\n"
     << "|---|---|---:|---:|---:|---:|---:|---:|---|\n";
  for (const auto& r : runs)
    md << "| " << r.design << " | " << r.work << " | " << r.n << " | " << fixed(r.wall_s, 2) << " | "
       << fixed(r.fps_per_consumer) << " | " << fixed(r.cpu_s) << " | " << fixed(r.peak_rss_mb, 0) << " | "
       << fixed(r.peak_pss_mb, 0) << " | " << (r.complete ? "yes" : "**no**") << " |\n";
  md << "\nframehive per-consumer frames/s divided by each other design's (same analysis, same N):\n\n"
     << "| analysis | N | vs naive | vs messages | vs bare decode |\n|---|---:|---:|---:|---:|\n";
  for (const std::string work : {"touch", "stats"})
    for (int n : ns) {
      const double f = fps_of("framehive", work, n);
      md << "| " << work << " | " << n << " | " << fixed(f / std::max(1e-9, fps_of("naive", work, n)), 2) << " | "
         << fixed(f / std::max(1e-9, fps_of("messages", work, n)), 2) << " | "
         << fixed(f / std::max(1e-9, decode_fps[n]), 2) << " |\n";
    }
  md << "\n## 2. Latency: decoder publish to consumer start of processing\n\n"
     << "Our decoder decodes `" << fan.path.filename().string() << "` into a 32-slot ring read by N consumer "
     << "processes (touch); each consumer records, for every frame, the time from the producer's publish to the "
     << "moment it holds the frame. *Paced*: frames are published at the video's rate (30 frames/s), as a live "
     << "source delivers them. *Unpaced*: the decoder runs flat out on the 2 vCPUs the consumers share. "
     << "Figures are the worst consumer's.\n\n"
     << "| N | publishing | p50 us | p99 us | p99.9 us | max us | best consumer p50 / p99 us | frames |\n"
     << "|---:|---|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& l : lat)
    md << "| " << l.n << " | " << (l.paced ? "paced" : "unpaced") << " | " << fixed(l.p50) << " | " << fixed(l.p99)
       << " | " << fixed(l.p999) << " | " << fixed(l.max) << " | " << fixed(l.best_p50) << " / " << fixed(l.best_p99)
       << " | " << l.frames << " |\n";
  md << "\n## 3. Memory against video length\n\n"
     << "A fresh coordinator and node per clip; `stats` and `touch` on generated 640x360 30 frames/s clips. "
     << "Node plus workers, sampled every 50 ms.\n\n"
     << "| clip | frames | wall s | node+workers peak RSS MB | peak PSS MB | coordinator peak RSS MB |\n"
     << "|---|---:|---:|---:|---:|---:|\n";
  for (const auto* m : {&m1, &m10})
    md << "| " << m->minutes << " min | " << m->frames << " | " << fixed(m->wall_s) << " | "
       << fixed(m->node_peak_rss_mb, 0) << " | " << fixed(m->node_peak_pss_mb, 0) << " | "
       << fixed(m->coordinator_peak_rss_mb, 0) << " |\n";
  md << "\n## 4. Coordinator scale\n\n"
     << sc.nodes << " simulated nodes (actors in 4 processes speaking the node protocol: registration, "
     << "assignment, a result batch and a video report per video, a status push every 0.5 s), each offering 16 "
     << "slots; one job of " << sc.videos << " videos. A video \"runs\" for 1 s on its node.\n\n"
     << "| figure | value |\n|---|---:|\n"
     << "| nodes registered after | " << fixed(sc.register_s, 2) << " s |\n"
     << "| submit answered after | " << fixed(sc.submit_reply_s, 2) << " s |\n"
     << "| all " << sc.videos << " videos assigned after (`schedule_10k_s`) | " << fixed(sc.schedule_s, 2)
     << " s |\n"
     << "| all videos done after | " << fixed(sc.all_done_s, 2) << " s |\n"
     << "| coordinator CPU | " << fixed(sc.cpu_s) << " s |\n"
     << "| coordinator peak RSS | " << fixed(sc.peak_rss_mb, 0) << " MB |\n"
     << "| assigned / done / errors | " << sc.assigned << " / " << sc.done << " / " << sc.errors << " |\n";
  md << "\n## 5. Sports-style pipeline\n\n"
     << "`" << sports.path.filename().string() << "`: " << sports.seconds
     << " s of 1280x720 at 50 frames/s: a pitch seen by a panning camera, players and a ball moving, sensor "
     << "grain. framehive runs `motion` and `thumbnails` on it (one decode, two consumers).\n\n"
     << "| figure | value |\n|---|---:|\n"
     << "| video duration | " << fixed(sp.duration_s) << " s |\n"
     << "| framehive wall time, submit to done | " << fixed(sp.wall_s) << " s |\n"
     << "| realtime factor (duration / wall) | " << fixed(sp.realtime_factor, 2) << " |\n"
     << "| pipeline frames/s | " << fixed(sp.pipeline_fps) << " |\n"
     << "| bare decode frames/s | " << fixed(sp.decode_fps) << " |\n"
     << "| pipeline / bare decode | " << fixed(sp.pipeline_fps / std::max(1e-9, sp.decode_fps), 2) << " |\n"
     << "| CPU (coordinator, node, workers) | " << fixed(sp.cpu_s) << " s |\n";
  md << "\n## 6. Result ingest\n\n"
     << "Simulated nodes (8, in 4 processes; `framehive-bench ingest-nodes`) register with a fresh coordinator "
     << "per analyzer and, for one job of " << (ingest.empty() ? 0 : ingest[0].videos) << " videos x "
     << (ingest.empty() ? 0 : ingest[0].frames) << " frames (4 videos at a time per node), send the result "
     << "batches a node forwards for its consumers: 8 frames per batch (a node's default), at most two "
     << "unacknowledged per (video, analyzer), the next as soon as one is acknowledged, in messages of up to 64 "
     << "batches with one in flight per node (as a node forwards them); the coordinator acknowledges a batch "
     << "after the transaction holding it committed. The results have the shapes and value ranges the real "
     << "analyzers write, in the stored form a consumer sends, with an MP4's pts. Results/s: results "
     << "acknowledged / (last acknowledgement - first send); "
     << "per CPU-second: results / coordinator CPU (utime+stime from /proc, submit to the last report, the "
     << "video ends and their summaries included). Bytes per result: SQLite's `dbstat` over the `frame_results` table "
     << "(its pages, and its cells' payload) / rows, after a checkpoint; file: growth of the database file and "
     << "its WAL / rows (after a `wal_checkpoint(TRUNCATE)`). The simulators share the 2 vCPUs with the "
     << "coordinator, so results/s is bounded by both; per CPU-second is the coordinator's own cost.\n\n"
     << "| analyzer | results | batches | wall s | results/s | coordinator CPU s | results per CPU-s | B/result "
        "(table pages) | B/result (payload) | B/result (file) | complete |\n"
     << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
  for (const auto& r : ingest)
    md << "| " << r.analyzer << " | " << r.results << " | " << r.batches << " | " << fixed(r.wall_s, 2) << " | "
       << fixed(r.results_per_s, 0) << " | " << fixed(r.cpu_s, 2) << " | " << fixed(r.results_per_cpu_s, 0) << " | "
       << fixed(r.table_bytes_per_result) << " | " << fixed(r.payload_bytes_per_result) << " | "
       << fixed(r.file_bytes_per_result) << " | " << (r.complete ? "yes" : "**no**") << " |\n";
  md << "\n## key=value\n\n```\n";
  std::ostringstream kv;
  for (const auto& k : keys)
    kv << k.key << "=" << fixed(k.value, 3) << "\n";
  kv << "all_complete=" << (all_complete ? 1 : 0) << "\n";
  md << kv.str() << "```\n";
  {
    std::ofstream f(o.out / "RESULTS.md");
    f << md.str();
  }
  json raw{{"machine", machine}, {"quick", o.quick}, {"date", date}};
  raw["fanout"] = json::array();
  for (const auto& r : runs)
    raw["fanout"].push_back(to_json(r));
  raw["latency"] = json::array();
  for (const auto& l : lat)
    raw["latency"].push_back(to_json(l));
  raw["keys"] = json::object();
  for (const auto& k : keys)
    raw["keys"][k.key] = k.value;
  {
    std::ofstream f(o.out / "results.json");
    f << raw.dump(1) << '\n';
  }
  fs::remove_all(o.work);
  say("wrote %s and %s", (o.out / "RESULTS.md").c_str(), png.c_str());
  std::fputs(kv.str().c_str(), stdout);
  std::fflush(stdout);
  std::_Exit(all_complete ? 0 : 1);  // the client actor system is never torn down (see actors/lifecycle.hpp)
}
