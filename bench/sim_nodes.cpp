// Simulated nodes for the coordinator-scale benchmark: actors that speak the
// real node protocol (register with node_info, accept video_task, send a
// result batch and a video_report, push node_status twice a second) but decode
// nothing. A video "runs" for WORK_MS after its assignment.
//
//   framehive-bench sim-nodes HOST PORT FIRST COUNT CORES WORK_MS OUT
//
// OUT gets {registered, assigned, done, last_assigned_ns, last_done_ns}
// rewritten every 100 ms (monotonic clock: the driver compares it with its own).

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "actors/messages.hpp"
#include "analysis/result_codec.hpp"
#include "bench/roles.hpp"
#include "caf/io/all.hpp"
#include "common/clock.hpp"

namespace framehive::bench {

namespace {

struct counters {
  std::atomic<int64_t> registered{0};
  std::atomic<int64_t> assigned{0};
  std::atomic<int64_t> done{0};
  std::atomic<uint64_t> last_assigned_ns{0};
  std::atomic<uint64_t> last_done_ns{0};
  std::atomic<int64_t> errors{0};
};

using finish_atom = caf::atom_constant<caf::atom("finish")>;

using sim_node_actor = node_actor::extend<caf::reacts_to<finish_atom, uint64_t>, caf::reacts_to<tick_atom>>;

struct sim_state {
  static inline const char* name = "sim-node";
  std::string node_name;
  std::map<uint64_t, video_task> running;
};

void store_max(std::atomic<uint64_t>& a, uint64_t v) {
  uint64_t cur = a.load();
  while (cur < v && !a.compare_exchange_weak(cur, v)) {
  }
}

sim_node_actor::behavior_type sim_node(sim_node_actor::stateful_pointer<sim_state> self, std::string name,
                                       uint32_t cores, std::chrono::milliseconds work, coordinator_actor coord,
                                       counters* c) {
  self->state.node_name = name;
  node_info info;
  info.name = name;
  info.host = "sim";
  info.cores = cores;
  info.shm_budget = 1ull << 30;
  info.version = version;
  info.pid = static_cast<uint32_t>(getpid());
  self->request(coord, std::chrono::seconds(60), info, caf::actor_cast<node_actor>(self))
      .then([c](node_welcome&) { ++c->registered; },
            [c, name](caf::error& e) {
              ++c->errors;
              std::fprintf(stderr, "%s: registration failed: %s\n", name.c_str(), describe(e).c_str());
            });
  self->delayed_send(self, std::chrono::milliseconds(500), tick_atom::value);
  return {
      [self, work, c](video_task& t) -> caf::ok_atom {
        ++c->assigned;
        store_max(c->last_assigned_ns, monotonic_ns());
        self->state.running[t.video] = t;
        self->delayed_send(self, work, finish_atom::value, t.video);
        return caf::ok_atom::value;
      },
      [self](cancel_atom, uint64_t video) { self->state.running.erase(video); },
      [self, coord, c](finish_atom, uint64_t video) {
        auto it = self->state.running.find(video);
        if (it == self->state.running.end())
          return;
        const video_task t = it->second;
        result_batch b;
        b.video = t.video;
        b.epoch = t.epoch;
        b.analyzer = t.analyzers.empty() ? "touch" : t.analyzers.front();
        b.node = self->state.node_name;
        b.time_base = 1.0 / 25;
        b.frames.push_back(frame_result{0, 0, analysis::encode_result({{"sum", 1}, {"ms", 0.1}})});
        self->request(coord, std::chrono::seconds(60), std::move(b))
            .then(
                [self, coord, c, t](batch_ack&) {
                  video_report r;
                  r.video = t.video;
                  r.epoch = t.epoch;
                  r.node = self->state.node_name;
                  r.outcome = video_outcome::done;
                  r.frames_total = 1;
                  r.frames_decoded = 1;
                  self->request(coord, std::chrono::seconds(60), r)
                      .then(
                          [self, c, video = t.video](caf::ok_atom) {
                            self->state.running.erase(video);
                            ++c->done;
                            store_max(c->last_done_ns, monotonic_ns());
                          },
                          [c](caf::error&) { ++c->errors; });
                },
                [c](caf::error&) { ++c->errors; });
      },
      [self, coord](tick_atom) {
        // The status push a real node sends twice a second.
        node_status s;
        s.node = self->state.node_name;
        tree_entry n;
        n.id = "node:" + s.node;
        n.kind = actor_kind::node;
        n.name = s.node;
        n.state = actor_state::connected;
        s.entries.push_back(n);
        for (const auto& [id, t] : self->state.running) {
          tree_entry v;
          v.id = "video:" + std::to_string(id);
          v.parent = n.id;
          v.kind = actor_kind::video;
          v.name = t.input;
          v.state = actor_state::running;
          s.entries.push_back(v);
        }
        self->send(coord, std::move(s));
        self->delayed_send(self, std::chrono::milliseconds(500), tick_atom::value);
      },
  };
}

}  // namespace

int run_sim_nodes(int argc, char** argv) {
  if (argc < 9) {
    std::fprintf(stderr, "usage: framehive-bench sim-nodes HOST PORT FIRST COUNT CORES WORK_MS OUT\n");
    return 64;
  }
  const std::string host = argv[2];
  const auto port = static_cast<uint16_t>(std::stoi(argv[3]));
  const int first = std::stoi(argv[4]);
  const int count = std::stoi(argv[5]);
  const auto cores = static_cast<uint32_t>(std::stoul(argv[6]));
  const std::chrono::milliseconds work{std::stoi(argv[7])};
  const std::string out = argv[8];

  caf::actor_system_config cfg;
  register_protocol(cfg);
  configure_network(cfg);
  cfg.load<caf::io::middleman>();
  caf::actor_system sys{cfg};
  auto coord = sys.middleman().remote_actor<coordinator_actor>(host, port);
  if (!coord) {
    std::fprintf(stderr, "sim-nodes: cannot reach the coordinator at %s:%u: %s\n", host.c_str(), port,
                 sys.render(coord.error()).c_str());
    std::_Exit(1);
  }
  static counters c;
  for (int i = 0; i < count; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "sim-%05d", first + i);
    sys.spawn(sim_node, std::string(name), cores, work, *coord, &c);
  }
  while (true) {
    write_json(out, {{"registered", c.registered.load()},
                     {"assigned", c.assigned.load()},
                     {"done", c.done.load()},
                     {"errors", c.errors.load()},
                     {"last_assigned_ns", c.last_assigned_ns.load()},
                     {"last_done_ns", c.last_done_ns.load()}});
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace framehive::bench
