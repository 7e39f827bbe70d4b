// Simulated nodes for the ingest benchmark: actors that register as nodes
// (node_info, the real protocol), accept their video_task and then push the
// per-frame results a node forwards for its consumers (result_batch of
// `batch` consecutive frames per analyzer, at most two unacknowledged batches
// per (video, analyzer), as a consumer keeps them, in result_batches messages
// of up to 64 with one in flight per node, as a node forwards them) as fast
// as the coordinator acknowledges them; a video is reported done once every
// analyzer's last batch is acknowledged. A batch counts only when
// acknowledged: the coordinator acknowledges after its transaction committed.
//
//   framehive-bench ingest-nodes HOST PORT FIRST COUNT CORES FRAMES BATCH OUT
//
// The results have the shape and the value ranges the real analyzers and
// the consumer write, in the stored form a consumer sends (analysis/result_codec):
//   stats  {"brightness":..,"ms":..,"sharpness":..}
//   motion {"fg":..,"ms":..}
//   people {"boxes":[[x,y,w,h],..],"count":n,"ms":..}
// with pts of an MP4 at 25 fps (512 per frame), precomputed per frame index (FRAMES <= pool size), so the simulator spends
// its CPU on the protocol, not on formatting. OUT gets the counters as JSON
// every 100 ms.

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "actors/messages.hpp"
#include "analysis/result_codec.hpp"
#include "bench/roles.hpp"
#include "caf/io/all.hpp"
#include "common/clock.hpp"

namespace framehive::bench {

namespace {

/// One video's worth of result texts per analyzer kind; frame f gets pool[f].
constexpr int64_t pool_frames = 4096;
constexpr double sim_fps = 25.0;
/// pts per frame as an MP4 muxer writes them (time base 1/12800 at 25 fps): a real pts's bytes.
constexpr int64_t pts_per_frame = 512;
constexpr std::size_t batches_in_flight = 2;  ///< as a consumer (actors/worker_actors.cpp)

struct ingest_counters {
  std::atomic<int64_t> registered{0};
  std::atomic<int64_t> assigned{0};
  std::atomic<int64_t> results{0};  ///< acknowledged
  std::atomic<int64_t> batches{0};  ///< acknowledged
  std::atomic<int64_t> done{0};
  std::atomic<int64_t> errors{0};
  std::atomic<uint64_t> first_send_ns{0};
  std::atomic<uint64_t> last_ack_ns{0};
};

std::vector<std::string> make_pool(const std::string& kind) {
  std::mt19937_64 rng(std::hash<std::string>{}(kind));
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<std::string> pool;
  pool.reserve(pool_frames);
  for (int64_t f = 0; f < pool_frames; ++f) {
    nlohmann::json r;
    if (kind == "motion") {
      r = {{"fg", u(rng) * 0.2}, {"ms", 1.5 + u(rng)}};
    } else if (kind == "people") {
      const int n = static_cast<int>(u(rng) * 4);
      nlohmann::json boxes = nlohmann::json::array();
      for (int i = 0; i < n; ++i)
        boxes.push_back({static_cast<int>(u(rng) * 700), static_cast<int>(u(rng) * 400),
                         64 + static_cast<int>(u(rng) * 60), 128 + static_cast<int>(u(rng) * 120)});
      r = {{"boxes", boxes}, {"count", n}, {"ms", 60 + u(rng) * 30}};
    } else {  // stats, and anything else
      r = {{"brightness", 90 + u(rng) * 60}, {"sharpness", 200 + u(rng) * 3000}, {"ms", 8 + u(rng) * 4}};
    }
    pool.push_back(analysis::encode_result(r));  // as a consumer sends it (its time is pts x time base)
  }
  return pool;
}

const std::vector<std::string>& pool_of(const std::string& analyzer) {
  static std::map<std::string, std::vector<std::string>> pools;  // filled before any actor runs
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  const std::string kind = analyzer.substr(0, analyzer.find_first_of("./@"));
  auto it = pools.find(kind);
  if (it == pools.end())
    it = pools.emplace(kind, make_pool(kind)).first;
  return it->second;
}

void store_max(std::atomic<uint64_t>& a, uint64_t v) {
  uint64_t cur = a.load();
  while (cur < v && !a.compare_exchange_weak(cur, v)) {
  }
}

using ingest_node_actor = node_actor::extend<caf::reacts_to<tick_atom>>;

/// One (video, analyzer) stream of batches.
struct stream {
  const std::vector<std::string>* pool = nullptr;
  int64_t next = 0;  ///< first frame of the next batch
  std::size_t in_flight = 0;
  int64_t acked = 0;  ///< frames acknowledged
};

struct running_video {
  video_task task;
  std::map<std::string, stream> streams;
};

/// Batches at most in one message, as a node sends them (node/node_actor.cpp).
constexpr std::size_t max_batches_per_message = 64;

struct ingest_state {
  static inline const char* name = "ingest-node";
  std::string node_name;
  std::map<uint64_t, running_video> running;
  /// As a node forwards its consumers' batches: one message in flight, what
  /// the consumers send meanwhile leaves together in the next one.
  std::vector<result_batch> outbox;
  bool in_flight = false;
};

using ingest_ptr = ingest_node_actor::stateful_pointer<ingest_state>;

struct ingest_params {
  coordinator_actor coord;
  int64_t frames = 0;
  int64_t batch = 8;
  ingest_counters* c = nullptr;
};

void pump(ingest_ptr self, const ingest_params& p, uint64_t video, const std::string& analyzer);

void report_done(ingest_ptr self, const ingest_params& p, const video_task& t) {
  video_report r;
  r.video = t.video;
  r.epoch = t.epoch;
  r.node = self->state.node_name;
  r.outcome = video_outcome::done;
  r.frames_total = p.frames;
  r.frames_decoded = p.frames;
  self->request(p.coord, std::chrono::seconds(120), r)
      .then([c = p.c](caf::ok_atom) { ++c->done; },
            [c = p.c](caf::error& e) {
              ++c->errors;
              std::fprintf(stderr, "report refused: %s\n", describe(e).c_str());
            });
}

void flush(ingest_ptr self, const ingest_params& p);

/// One batch's acknowledgement: the stream moves on; the video ends once every stream is acknowledged.
void on_ack(ingest_ptr self, const ingest_params& p, uint64_t video, const std::string& analyzer, int64_t n) {
  p.c->results += n;
  ++p.c->batches;
  store_max(p.c->last_ack_ns, monotonic_ns());
  auto v = self->state.running.find(video);
  if (v == self->state.running.end())
    return;
  stream& s = v->second.streams[analyzer];
  --s.in_flight;
  s.acked += n;
  bool all = true;
  for (const auto& [name, x] : v->second.streams)
    all = all && x.acked >= p.frames;
  if (all) {
    const video_task t = v->second.task;
    self->state.running.erase(v);
    report_done(self, p, t);
    return;
  }
  pump(self, p, video, analyzer);
}

void on_refused(ingest_ptr self, const ingest_params& p, uint64_t video, const std::string& analyzer,
                const caf::error& e) {
  ++p.c->errors;
  std::fprintf(stderr, "batch refused: %s\n", describe(e).c_str());
  auto v = self->state.running.find(video);
  if (v != self->state.running.end())
    --v->second.streams[analyzer].in_flight;
}

/// Sends the outbox as one message unless one is in flight.
void flush(ingest_ptr self, const ingest_params& p) {
  auto& st = self->state;
  if (st.in_flight || st.outbox.empty())
    return;
  result_batches msg;
  const std::size_t n = std::min(st.outbox.size(), max_batches_per_message);
  msg.batches.assign(std::make_move_iterator(st.outbox.begin()), std::make_move_iterator(st.outbox.begin() + n));
  st.outbox.erase(st.outbox.begin(), st.outbox.begin() + n);
  std::vector<std::tuple<uint64_t, std::string, int64_t>> sent;  // video, analyzer, frames
  for (const auto& b : msg.batches)
    sent.emplace_back(b.video, b.analyzer, static_cast<int64_t>(b.frames.size()));
  st.in_flight = true;
  uint64_t zero = 0;
  p.c->first_send_ns.compare_exchange_strong(zero, monotonic_ns());
  self->request(p.coord, std::chrono::seconds(120), std::move(msg))
      .then(
          [self, p, sent](batch_outcomes& r) {
            for (std::size_t i = 0; i < sent.size(); ++i) {
              const auto& [video, analyzer, n] = sent[i];
              if (i < r.outcomes.size() && !r.outcomes[i].error)
                on_ack(self, p, video, analyzer, n);
              else
                on_refused(self, p, video, analyzer,
                           i < r.outcomes.size() ? r.outcomes[i].error : make_error(errc::internal, "no outcome"));
            }
            self->state.in_flight = false;
            flush(self, p);
          },
          [self, p, sent](caf::error& e) {
            for (const auto& [video, analyzer, n] : sent)
              on_refused(self, p, video, analyzer, e);
            self->state.in_flight = false;
            flush(self, p);
          });
}

/// Queues batches of the stream until two are unacknowledged or its frames are all sent.
void pump(ingest_ptr self, const ingest_params& p, uint64_t video, const std::string& analyzer) {
  auto v = self->state.running.find(video);
  if (v == self->state.running.end())
    return;
  stream& s = v->second.streams[analyzer];
  while (s.in_flight < batches_in_flight && s.next < p.frames) {
    result_batch b;
    b.video = video;
    b.epoch = v->second.task.epoch;
    b.analyzer = analyzer;
    b.node = self->state.node_name;
    b.time_base = 1.0 / (sim_fps * pts_per_frame);
    b.covered_from = s.next;
    const int64_t end = std::min(p.frames, s.next + p.batch);
    b.covered_through = end - 1;
    b.frames.reserve(static_cast<std::size_t>(end - s.next));
    for (int64_t f = s.next; f < end; ++f)
      b.frames.push_back(frame_result{f, f * pts_per_frame, (*s.pool)[static_cast<std::size_t>(f % pool_frames)]});
    s.next = end;
    ++s.in_flight;
    self->state.outbox.push_back(std::move(b));
  }
  flush(self, p);
}

ingest_node_actor::behavior_type ingest_node(ingest_ptr self, std::string name, uint32_t cores,
                                             ingest_params p) {
  self->state.node_name = name;
  node_info info;
  info.name = name;
  info.host = "sim";
  info.cores = cores;
  info.shm_budget = 1ull << 30;
  info.version = version;
  info.pid = static_cast<uint32_t>(getpid());
  self->request(p.coord, std::chrono::seconds(60), info, caf::actor_cast<node_actor>(self))
      .then([c = p.c](node_welcome&) { ++c->registered; },
            [c = p.c, name](caf::error& e) {
              ++c->errors;
              std::fprintf(stderr, "%s: registration failed: %s\n", name.c_str(), describe(e).c_str());
            });
  self->delayed_send(self, std::chrono::milliseconds(500), tick_atom::value);
  return {
      [self, p](video_task& t) -> caf::ok_atom {
        ++p.c->assigned;
        auto& v = self->state.running[t.video];
        v.task = t;
        for (const auto& a : t.analyzers)
          v.streams[a].pool = &pool_of(a);
        // The coordinator recorded the assignment before it sent it: batches count at once.
        for (const auto& a : t.analyzers)
          pump(self, p, t.video, a);
        return caf::ok_atom::value;
      },
      [self](cancel_atom, uint64_t video) { self->state.running.erase(video); },
      [self, p](tick_atom) {
        // The status push a real node sends twice a second, with each video's probed total.
        node_status s;
        s.node = self->state.node_name;
        tree_entry n;
        n.id = "node:" + s.node;
        n.kind = actor_kind::node;
        n.name = s.node;
        n.state = actor_state::connected;
        s.entries.push_back(n);
        for (const auto& [id, v] : self->state.running) {
          tree_entry e;
          e.id = "video:" + std::to_string(id);
          e.parent = n.id;
          e.kind = actor_kind::video;
          e.name = v.task.input;
          e.state = actor_state::running;
          e.total = p.frames;
          s.entries.push_back(e);
        }
        self->send(p.coord, std::move(s));
        self->delayed_send(self, std::chrono::milliseconds(500), tick_atom::value);
      },
  };
}

}  // namespace

int run_ingest_nodes(int argc, char** argv) {
  if (argc < 10) {
    std::fprintf(stderr,
                 "usage: framehive-bench ingest-nodes HOST PORT FIRST COUNT CORES FRAMES BATCH OUT\n");
    return 64;
  }
  const std::string host = argv[2];
  const auto port = static_cast<uint16_t>(std::stoi(argv[3]));
  const int first = std::stoi(argv[4]);
  const int count = std::stoi(argv[5]);
  const auto cores = static_cast<uint32_t>(std::stoul(argv[6]));
  const int64_t frames = std::min<int64_t>(pool_frames, std::stoll(argv[7]));
  const int64_t batch = std::max<int64_t>(1, std::stoll(argv[8]));
  const std::string out = argv[9];
  for (const char* kind : {"stats", "motion", "people"})
    pool_of(kind);

  caf::actor_system_config cfg;
  register_protocol(cfg);
  configure_network(cfg);
  cfg.load<caf::io::middleman>();
  caf::actor_system sys{cfg};
  auto coord = sys.middleman().remote_actor<coordinator_actor>(host, port);
  if (!coord) {
    std::fprintf(stderr, "ingest-nodes: cannot reach the coordinator at %s:%u: %s\n", host.c_str(), port,
                 sys.render(coord.error()).c_str());
    std::_Exit(1);
  }
  static ingest_counters c;
  for (int i = 0; i < count; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "ingest-%03d", first + i);
    sys.spawn(ingest_node, std::string(name), cores, ingest_params{*coord, frames, batch, &c});
  }
  while (true) {
    write_json(out, {{"registered", c.registered.load()},
                     {"assigned", c.assigned.load()},
                     {"results", c.results.load()},
                     {"batches", c.batches.load()},
                     {"done", c.done.load()},
                     {"errors", c.errors.load()},
                     {"first_send_ns", c.first_send_ns.load()},
                     {"last_ack_ns", c.last_ack_ns.load()}});
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace framehive::bench
