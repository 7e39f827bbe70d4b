#include "coordinator/coordinator_actor.hpp"

#include <unistd.h>

#include <algorithm>
#include <deque>
#include <map>
#include <set>

#include <spdlog/spdlog.h>

#include "analysis/catalog.hpp"
#include "common/clock.hpp"

namespace framehive {

namespace {

constexpr auto assign_timeout = std::chrono::seconds(10);

struct node_entry {
  node_actor handle;
  node_info info;
  std::set<uint64_t> running;
  node_status status;
  bool full = false;  ///< refused a video for lack of shared memory; cleared when one of its videos ends
};

struct coordinator_state {
  static inline const char* name = "coordinator";
  std::unique_ptr<job_store> store;
  std::map<std::string, node_entry> nodes;
  std::deque<uint64_t> queue;  ///< videos waiting for a node
  std::map<uint64_t, std::set<std::string>> avoid;  ///< nodes a video failed on (restart limit)
  /// After a restart: running videos waiting for their node to re-register and
  /// claim them (video -> deadline); unclaimed ones are queued again.
  std::map<uint64_t, uint64_t> awaiting;
  uint64_t started_ns = monotonic_ns();
};

using coord_ptr = coordinator_actor::stateful_pointer<coordinator_state>;

/// The lowest watermark over a video's analyzers: where a new assignment starts.
int64_t resume_frame(job_store& store, const video_row& v) {
  int64_t lowest = -1;
  bool first = true;
  for (const auto& a : v.analyzers) {
    int64_t wm = store.watermark(v.id, a);
    lowest = first ? wm : std::min(lowest, wm);
    first = false;
  }
  return std::max<int64_t>(0, lowest + 1);
}

void schedule(coord_ptr self);

void finish_bookkeeping(coord_ptr self, uint64_t video) {
  for (auto& [name, n] : self->state.nodes)
    if (n.running.erase(video) > 0)
      n.full = false;
}

void requeue(coord_ptr self, const video_row& v, const std::string& why) {
  auto& st = self->state;
  const int64_t start = resume_frame(*st.store, v);
  st.store->requeue(v.id, start, why);
  finish_bookkeeping(self, v.id);
  st.queue.push_back(v.id);
  spdlog::warn("coordinator: video {} requeued from frame {}: {}", v.id, start, why);
}

/// Least-loaded node with room (running videos against its cores) that the
/// video has not already failed on.
node_entry* pick_node(coord_ptr self, uint64_t video) {
  node_entry* best = nullptr;
  double best_load = 0;
  auto avoid = self->state.avoid.find(video);
  for (auto& [name, n] : self->state.nodes) {
    if (avoid != self->state.avoid.end() && avoid->second.count(name))
      continue;
    const uint32_t cores = std::max<uint32_t>(1, n.info.cores);
    if (n.running.size() >= cores || n.full)
      continue;
    double load = static_cast<double>(n.running.size()) / cores;
    if (!best || load < best_load) {
      best = &n;
      best_load = load;
    }
  }
  return best;
}

void schedule(coord_ptr self) {
  auto& st = self->state;
  // FIFO, except that a video no free node may take does not block the others.
  std::deque<uint64_t> waiting;
  while (!st.queue.empty()) {
    const uint64_t id = st.queue.front();
    node_entry* n = pick_node(self, id);
    if (!n) {
      waiting.push_back(id);
      st.queue.pop_front();
      // No node has room for a video that avoids none: none has room at all.
      // The rest waits as it is (a full fleet must not cost a pass over the
      // queue times the nodes on every report).
      if (st.avoid.find(id) == st.avoid.end()) {
        waiting.insert(waiting.end(), st.queue.begin(), st.queue.end());
        st.queue.clear();
      }
      continue;
    }
    st.queue.pop_front();
    auto v = st.store->video(id);
    if (!v || v->state != "queued")
      continue;
    video_task t;
    t.job = v->job;
    t.video = v->id;
    t.epoch = v->epoch + 1;
    t.input = v->input;
    t.analyzers = v->analyzers;
    t.stride = v->stride;
    t.start_frame = v->start_frame;
    st.store->assign(v->id, n->info.name, t.epoch, t.start_frame);
    st.store->event(v->job, v->id, "assigned", n->info.name + " epoch " + std::to_string(t.epoch));
    n->running.insert(v->id);
    spdlog::info("coordinator: video {} ({}) -> node {} epoch {} from frame {}", v->id, v->input, n->info.name,
                 t.epoch, t.start_frame);
    self->request(n->handle, assign_timeout, t)
        .then([](caf::ok_atom) {},
              [self, id, epoch = t.epoch](caf::error& e) {
                auto v = self->state.store->video(id);
                if (!v || v->epoch != epoch || v->state != "running")
                  return;
                if (e.category() == caf::atom("framehive") && e.code() == static_cast<uint8_t>(errc::no_capacity))
                  requeue(self, *v, describe(e));
                else
                  requeue(self, *v, "assignment not confirmed: " + describe(e));
                schedule(self);
              });
  }
  st.queue = std::move(waiting);
}

void on_node_lost(coord_ptr self, std::string name, const std::string& why) {  // by value: the caller passes a key of the map it erases
  auto& st = self->state;
  auto it = st.nodes.find(name);
  if (it == st.nodes.end())
    return;
  auto running = it->second.running;
  st.nodes.erase(it);
  spdlog::warn("coordinator: node {} lost ({}); {} videos to reassign", name, why, running.size());
  for (uint64_t id : running)
    if (auto v = st.store->video(id); v && v->state == "running" && v->node == name)
      requeue(self, *v, "node " + name + " lost");
  schedule(self);
}

nlohmann::json entry_json(const tree_entry& e) {
  return {{"id", e.id},       {"parent", e.parent},   {"kind", e.kind},         {"name", e.name},
          {"state", e.state}, {"fps", e.fps},         {"position", e.position}, {"total", e.total},
          {"ring_fill", e.ring_fill}, {"ring_slots", e.ring_slots}, {"lag", e.lag}, {"pid", e.pid},
          {"restarts", e.restarts}, {"redelivered", e.redelivered}, {"quarantined", e.quarantined}};
}

std::string status_json(coord_ptr self, uint64_t job) {
  auto& st = self->state;
  nlohmann::json out;
  auto describe_job = [&](uint64_t id) {
    nlohmann::json j;
    j["job"] = id;
    j["state"] = st.store->job_state(id);
    j["videos"] = nlohmann::json::array();
    for (const auto& v : st.store->videos_of(id)) {
      nlohmann::json jv{{"video", v.id}, {"input", v.input}, {"state", v.state},
                        {"node", v.node},  {"error", v.error}, {"frames_total", v.frames_total}};
      // Live progress from the node's last status: the slowest consumer's position.
      int64_t pos = v.state == "done" ? v.frames_total : 0, total = v.frames_total;
      if (v.state == "running")
        if (auto n = st.nodes.find(v.node); n != st.nodes.end()) {
          bool any = false;
          for (const auto& e : n->second.status.entries) {
            if (e.kind == "video" && e.id == "video:" + std::to_string(v.id))
              total = e.total;
            if (e.kind == "consumer" && e.parent == "video:" + std::to_string(v.id)) {
              pos = any ? std::min(pos, e.position) : e.position;
              any = true;
            }
          }
        }
      jv["position"] = pos;
      jv["total"] = total;
      j["videos"].push_back(jv);
    }
    return j;
  };
  if (job != 0) {
    if (st.store->job_state(job).empty())
      return {};
    return describe_job(job).dump();
  }
  out["jobs"] = nlohmann::json::array();
  for (uint64_t id : st.store->job_ids())
    out["jobs"].push_back(describe_job(id));
  return out.dump();
}

}  // namespace

coordinator_actor spawn_coordinator(caf::actor_system& sys, std::unique_ptr<job_store> store) {
  // The store moves into the actor's state through a shared holder (message
  // arguments must be copyable).
  auto holder = std::make_shared<std::unique_ptr<job_store>>(std::move(store));
  return sys.spawn<caf::detached>([holder](coord_ptr self) -> coordinator_actor::behavior_type {
    auto& st = self->state;
    st.store = std::move(*holder);
    // Videos that were running when the coordinator stopped keep their
    // assignment for a grace period: the node that runs them re-registers and
    // claims them, and their work goes on. Unclaimed ones are queued again from
    // their watermark with a new epoch.
    const uint64_t grace = monotonic_ns() + 10'000'000'000ull;
    for (const auto& v : st.store->unfinished_videos()) {
      if (v.state == "running")
        st.awaiting[v.id] = grace;
      else
        st.queue.push_back(v.id);
    }
    self->send(self, tick_atom::value);
    if (!st.queue.empty() || !st.awaiting.empty())
      spdlog::info("coordinator: reloaded {} queued and {} running videos from the job store", st.queue.size(),
                   st.awaiting.size());
    self->set_down_handler([self](caf::down_msg& dm) {
      for (auto& [name, n] : self->state.nodes)
        if (n.handle.address() == dm.source) {
          on_node_lost(self, name, caf::to_string(dm.reason));
          return;
        }
    });
    return {
        [self](job_spec& spec) -> caf::result<uint64_t> {
          auto& st = self->state;
          if (spec.inputs.empty())
            return make_error(errc::invalid_request, "no input videos given");
          if (spec.analyzers.empty())
            return make_error(errc::invalid_request, "no analyzers given");
          for (const auto& a : spec.analyzers)
            if (!analysis::is_analyzer(a)) {
              std::string known;
              for (const auto& n : analysis::analyzer_names())
                known += (known.empty() ? "" : ", ") + n;
              return make_error(errc::invalid_request, "unknown analyzer '" + a + "' (known: " + known + ")");
            }
          std::sort(spec.analyzers.begin(), spec.analyzers.end());
          spec.analyzers.erase(std::unique(spec.analyzers.begin(), spec.analyzers.end()), spec.analyzers.end());
          spec.stride = std::max<uint32_t>(1, spec.stride);
          const uint64_t job = st.store->create_job(spec);
          for (const auto& v : st.store->videos_of(job))
            st.queue.push_back(v.id);
          st.store->event(job, 0, "submitted", std::to_string(spec.inputs.size()) + " videos");
          spdlog::info("coordinator: job {} submitted: {} videos", job, spec.inputs.size());
          schedule(self);
          return job;
        },
        [self](status_atom, uint64_t job) -> caf::result<std::string> {
          auto s = status_json(self, job);
          if (s.empty())
            return make_error(errc::not_found, "no job " + std::to_string(job));
          return s;
        },
        [self](results_atom, uint64_t job, bool frames) -> caf::result<std::string> {
          if (self->state.store->job_state(job).empty())
            return make_error(errc::not_found, "no job " + std::to_string(job));
          return self->state.store->results_json(job, frames).dump();
        },
        [self](tree_atom) -> std::string {
          auto& st = self->state;
          nlohmann::json rows = nlohmann::json::array();
          tree_entry c;
          c.id = "coordinator";
          c.kind = "coordinator";
          c.name = "coordinator";
          c.state = "running";
          c.pid = static_cast<uint32_t>(getpid());
          c.position = static_cast<int64_t>(st.queue.size());
          rows.push_back(entry_json(c));
          for (const auto& [name, n] : st.nodes)
            for (const auto& e : n.status.entries)
              rows.push_back(entry_json(e));
          return nlohmann::json{{"entries", rows}}.dump();
        },
        [self](nodes_atom) -> std::string {
          nlohmann::json arr = nlohmann::json::array();
          for (const auto& [name, n] : self->state.nodes)
            arr.push_back({{"name", name},
                           {"host", n.info.host},
                           {"cores", n.info.cores},
                           {"shm_budget", n.info.shm_budget},
                           {"version", n.info.version},
                           {"pid", n.info.pid},
                           {"running", n.running.size()}});
          return nlohmann::json{{"nodes", arr}}.dump();
        },
        [self](cancel_atom, uint64_t job) -> caf::result<std::string> {
          auto& st = self->state;
          if (st.store->job_state(job).empty())
            return make_error(errc::not_found, "no job " + std::to_string(job));
          for (const auto& v : st.store->videos_of(job))
            if (v.state == "running")
              if (auto n = st.nodes.find(v.node); n != st.nodes.end()) {
                self->send(n->second.handle, cancel_atom::value, v.id);
                n->second.running.erase(v.id);
              }
          st.store->cancel_job(job);
          st.store->event(job, 0, "cancelled", "");
          schedule(self);
          return nlohmann::json{{"job", job}, {"state", st.store->job_state(job)}}.dump();
        },
        [self](node_info& info, node_actor& handle) -> node_welcome {
          auto& st = self->state;
          if (auto old = st.nodes.find(info.name); old != st.nodes.end() && old->second.handle != handle)
            on_node_lost(self, info.name, "re-registered");
          self->monitor(handle);
          auto& n = st.nodes[info.name];
          n.handle = handle;
          n.info = info;
          // A node that still runs videos from before a coordinator restart:
          // their assignments were revoked at restart; tell it to drop them.
          for (uint64_t id : info.running) {
            auto v = st.store->video(id);
            if (v && v->state == "running" && v->node == info.name) {
              n.running.insert(id);
              if (st.awaiting.erase(id))
                spdlog::info("coordinator: node {} still runs video {}; it goes on", info.name, id);
            } else {
              self->send(handle, cancel_atom::value, id);
            }
          }
          // Videos this node ran before but no longer has: no need to wait.
          for (auto it = st.awaiting.begin(); it != st.awaiting.end();) {
            auto v = st.store->video(it->first);
            if (v && v->node == info.name) {
              requeue(self, *v, "node " + info.name + " no longer runs it");
              it = st.awaiting.erase(it);
            } else {
              ++it;
            }
          }
          spdlog::info("coordinator: node {} registered ({} cores, shm budget {} MiB, pid {})", info.name,
                       info.cores, info.shm_budget >> 20, info.pid);
          schedule(self);
          return node_welcome{version};
        },
        [self](result_batch& b) -> caf::result<batch_ack> {
          auto& st = self->state;
          auto v = st.store->video(b.video);
          if (!v || v->state != "running" || v->epoch != b.epoch || v->node != b.node) {
            spdlog::warn("coordinator: rejected results for video {} epoch {} from node {}: not its assignment",
                         b.video, b.epoch, b.node);
            return make_error(errc::stale_epoch, "video " + std::to_string(b.video) + " epoch " +
                                                     std::to_string(b.epoch) + " is not assigned to " + b.node);
          }
          if (std::find(v->analyzers.begin(), v->analyzers.end(), b.analyzer) == v->analyzers.end())
            return make_error(errc::invalid_request, "video " + std::to_string(b.video) + " has no analyzer " +
                                                         b.analyzer);
          for (const auto& f : b.frames)
            if (f.frame < 0) {
              spdlog::warn("coordinator: rejected results for video {} from {}: negative frame {}", b.video, b.node,
                           f.frame);
              return make_error(errc::invalid_request, "negative frame index " + std::to_string(f.frame));
            }
          batch_ack ack;
          ack.video = b.video;
          ack.analyzer = b.analyzer;
          ack.watermark = st.store->upsert(b, v->stride);
          ack.stored = b.frames.size();
          return ack;
        },
        [self](video_report& r) -> caf::result<caf::ok_atom> {
          auto& st = self->state;
          auto v = st.store->video(r.video);
          if (!v)
            return make_error(errc::not_found, "no video " + std::to_string(r.video));
          if (v->state != "running" || v->epoch != r.epoch)
            return caf::ok_atom::value;  // an old assignment: nothing to record
          if (r.escalated) {
            // Failed on that node: another node may try, from the watermark.
            st.avoid[r.video].insert(r.node);
            bool other = false;
            for (const auto& [name, n] : st.nodes)
              other |= !st.avoid[r.video].count(name);
            if (other) {
              requeue(self, *v, r.error);
              schedule(self);
              return caf::ok_atom::value;
            }
          }
          if (r.retry) {
            requeue(self, *v, r.error);
            if (auto n = st.nodes.find(r.node); n != st.nodes.end())
              n->second.full = true;
            schedule(self);
            return caf::ok_atom::value;
          }
          st.store->finish_video(r);
          if (r.ok)
            st.store->summarize_video(r.video);
          st.store->event(v->job, v->id, r.ok ? "done" : "failed", r.ok ? "" : r.error);
          finish_bookkeeping(self, r.video);
          auto job_state = st.store->refresh_job_state(v->job);
          spdlog::info("coordinator: video {} {} on {} ({} frames); job {} {}", r.video, r.ok ? "done" : "failed",
                       r.node, r.frames_total, v->job, job_state);
          schedule(self);
          return caf::ok_atom::value;
        },
        [self](tick_atom) {
          auto& st = self->state;
          const uint64_t now = monotonic_ns();
          bool changed = false;
          for (auto it = st.awaiting.begin(); it != st.awaiting.end();) {
            if (now < it->second) {
              ++it;
              continue;
            }
            if (auto v = st.store->video(it->first); v && v->state == "running")
              requeue(self, *v, "its node did not come back after the coordinator restarted");
            it = st.awaiting.erase(it);
            changed = true;
          }
          if (changed)
            schedule(self);
          if (!st.awaiting.empty())
            self->delayed_send(self, std::chrono::seconds(1), tick_atom::value);
        },
        [self](node_status& s) {
          if (auto n = self->state.nodes.find(s.node); n != self->state.nodes.end())
            n->second.status = std::move(s);
        },
    };
  });
}

}  // namespace framehive
