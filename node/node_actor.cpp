#include "node/node_actor.hpp"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <deque>
#include <map>
#include <optional>

#include <spdlog/spdlog.h>

#include "caf/io/middleman.hpp"
#include "common/clock.hpp"
#include "common/process.hpp"
#include "analysis/catalog.hpp"
#include "shm/frame_ring.hpp"

namespace framehive {

namespace {

constexpr auto tick_interval = std::chrono::milliseconds(200);
constexpr uint64_t status_every_ns = 500'000'000;
constexpr auto request_timeout = std::chrono::seconds(10);

struct worker_slot {
  uint32_t index = 0;
  std::optional<child_process> proc;
  worker_actor handle;
  bool ready = false;
  uint32_t restarts = 0;
  uint64_t restart_at_ns = 0;  ///< when a dead worker may start again (backoff)
};

/// Where a decoder or consumer runs and how it is doing.
struct role_slot {
  std::string role;  ///< "decoder" or the analyzer name
  uint32_t consumer_id = 0;
  int worker = -1;
  std::string state = "pending";  ///< pending | starting | running | lost | done | failed
  actor_progress last;
  uint32_t restarts = 0;
  std::deque<uint64_t> restart_times;  ///< for the restart-intensity limit
  uint64_t last_seen_ns = 0;           ///< last message from the actor (hang detection)
  bool hung = false;                   ///< its worker was killed because it fell silent
};

/// The video supervisor: one per assigned video. It is a state machine inside
/// the node actor rather than an actor of its own, so that assignments, worker
/// deaths and progress for one video are handled in one mailbox, in order.
struct video_sup {
  video_task task;
  video_meta meta;
  std::string phase = "probing";  ///< probing | running
  std::optional<shm::frame_ring> ring;
  uint64_t ring_bytes = 0;
  role_slot decoder;
  std::vector<role_slot> consumers;
  std::string output_dir;
  /// analyzer -> frame -> times that frame took its consumer's worker down
  std::map<std::string, std::map<int64_t, uint32_t>> crashes;
  /// analyzer -> frame -> reason: poison frames, skipped from now on
  std::map<std::string, std::map<int64_t, std::string>> quarantine;
};

struct node_state {
  static inline const char* name = "node";
  node_options opt;
  uint16_t worker_port = 0;
  coordinator_actor coord;
  bool registered = false;
  bool connecting = false;
  uint32_t backoff_ms = 250;
  std::vector<worker_slot> workers;
  std::map<uint64_t, video_sup> videos;
  std::vector<video_report> unsent_reports;
  uint64_t last_status_ns = 0;
  uint32_t next_worker = 0;
};

using node_ptr = node_full_actor::stateful_pointer<node_state>;

std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s)
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') ? c : '_';
  return out;
}

// -- workers ------------------------------------------------------------------------

void start_worker(node_ptr self, worker_slot& w) {
  auto& st = self->state;
  std::string err;
  auto p = child_process::spawn({st.opt.worker_exe, "--node-port=" + std::to_string(st.worker_port),
                                 "--index=" + std::to_string(w.index)},
                                &err);
  if (!p) {
    spdlog::error("node {}: cannot start worker {}: {}", st.opt.name, w.index, err);
    w.restart_at_ns = monotonic_ns() + 2'000'000'000ull;
    return;
  }
  spdlog::info("node {}: worker {} started (pid {})", st.opt.name, w.index, p->pid());
  w.proc = std::move(*p);
  w.ready = false;
  w.handle = nullptr;
}

int pick_worker(node_ptr self) {
  auto& ws = self->state.workers;
  for (std::size_t i = 0; i < ws.size(); ++i) {
    auto k = (self->state.next_worker + i) % ws.size();
    if (ws[k].ready) {
      self->state.next_worker = static_cast<uint32_t>(k + 1);
      return static_cast<int>(k);
    }
  }
  return -1;
}

// -- reports to the coordinator ---------------------------------------------------------

void send_reports(node_ptr self) {
  auto& st = self->state;
  if (!st.registered)
    return;
  for (const auto& r : st.unsent_reports) {
    self->request(st.coord, request_timeout, r)
        .then(
            [self, video = r.video, epoch = r.epoch](caf::ok_atom) {
              auto& u = self->state.unsent_reports;
              u.erase(std::remove_if(u.begin(), u.end(),
                                     [&](const video_report& x) { return x.video == video && x.epoch == epoch; }),
                      u.end());
            },
            [](caf::error&) {});  // kept; sent again on the next tick
  }
}

void stop_video(node_ptr self, uint64_t id) {
  auto& st = self->state;
  auto it = st.videos.find(id);
  if (it == st.videos.end())
    return;
  std::vector<int> hosts{it->second.decoder.worker};
  for (const auto& c : it->second.consumers)
    hosts.push_back(c.worker);
  std::sort(hosts.begin(), hosts.end());
  hosts.erase(std::unique(hosts.begin(), hosts.end()), hosts.end());
  for (int h : hosts)
    if (h >= 0 && st.workers[static_cast<std::size_t>(h)].ready)
      self->send(st.workers[static_cast<std::size_t>(h)].handle, stop_atom::value, id);
  st.videos.erase(it);  // destroys the ring: the segment is removed
}

void report_video(node_ptr self, video_sup& v, bool ok, const std::string& error, bool retry = false,
                  bool escalated = false) {
  auto& st = self->state;
  video_report r;
  r.video = v.task.video;
  r.epoch = v.task.epoch;
  r.node = st.opt.name;
  r.ok = ok;
  r.error = error;
  r.frames_total = v.decoder.last.position;
  r.frames_decoded = v.decoder.last.frames;
  r.decode_errors = v.decoder.last.decode_errors;
  r.retry = retry;
  r.escalated = escalated;
  if (ok)
    spdlog::info("node {}: video {} done: {} frames, decoded once ({} decode errors)", st.opt.name, r.video,
                 r.frames_total, r.decode_errors);
  else
    spdlog::warn("node {}: video {} failed: {}", st.opt.name, r.video, error);
  st.unsent_reports.push_back(r);
  stop_video(self, r.video);
  send_reports(self);
}

// -- placing decoders and consumers ------------------------------------------------------

void place(node_ptr self, uint64_t id, role_slot& role) {
  auto& st = self->state;
  auto& v = st.videos.at(id);
  int w = pick_worker(self);
  if (w < 0)
    return;  // placed on the next tick, when a worker is ready
  role.worker = w;
  role.state = "starting";
  role.last_seen_ns = monotonic_ns();
  auto& handle = st.workers[static_cast<std::size_t>(w)].handle;
  auto on_error = [self, id, role_name = role.role](caf::error& e) {
    auto it = self->state.videos.find(id);
    if (it == self->state.videos.end())
      return;
    spdlog::warn("node {}: starting {} of video {} failed: {}", self->state.opt.name, role_name, id, describe(e));
    auto& vv = it->second;
    auto& r = role_name == "decoder" ? vv.decoder
                                     : *std::find_if(vv.consumers.begin(), vv.consumers.end(),
                                                     [&](const role_slot& c) { return c.role == role_name; });
    r.state = "lost";
  };
  if (role.role == "decoder") {
    decoder_task t;
    t.video = id;
    t.epoch = v.task.epoch;
    t.input = v.task.input;
    t.ring = v.ring->name();
    // A resumed video starts early enough for every analyzer's pre-roll.
    int preroll = 0;
    for (const auto& a : v.task.analyzers)
      preroll = std::max(preroll, analysis::preroll_frames(a));
    t.start_frame = std::max<int64_t>(0, v.task.start_frame - preroll);
    self->request(handle, request_timeout, t).then([](caf::ok_atom) {}, on_error);
  } else {
    consumer_task t;
    t.video = id;
    t.epoch = v.task.epoch;
    t.ring = v.ring->name();
    t.consumer_id = role.consumer_id;
    t.analyzer = role.role;
    t.stride = v.task.stride;
    t.output_dir = v.output_dir + "/" + role.role;
    t.fps = v.meta.fps;
    t.batch_frames = std::max<uint32_t>(1, std::min(st.opt.batch_frames, v.ring->slot_count() / 4));
    t.params = st.opt.analyzer_params;
    t.emit_from = v.task.start_frame;
    for (const auto& [frame, why] : v.quarantine[role.role]) {
      t.quarantine.push_back(frame);
      t.quarantine_reasons.push_back(why);
    }
    self->request(handle, request_timeout, t).then([](caf::ok_atom) {}, on_error);
  }
}

void place_pending(node_ptr self) {
  for (auto& [id, v] : self->state.videos) {
    if (v.phase != "running")
      continue;
    // Consumers first: the decoder must never run ahead of its readers' registration.
    for (auto& c : v.consumers)
      if (c.state == "pending" || c.state == "lost")
        place(self, id, c);
    if (v.decoder.state == "pending" || v.decoder.state == "lost")
      place(self, id, v.decoder);
  }
}

void start_video(node_ptr self, uint64_t id, const video_meta& meta) {
  auto& st = self->state;
  auto it = st.videos.find(id);
  if (it == st.videos.end())
    return;
  auto& v = it->second;
  v.meta = meta;
  // Capacity against the node's shared-memory budget.
  uint64_t used = 0;
  for (const auto& [other_id, o] : st.videos)
    used += o.ring_bytes;
  const uint64_t per_slot = shm::slot_bytes_for(meta.width, meta.height);
  const uint64_t left = st.opt.shm_budget > used ? st.opt.shm_budget - used : 0;
  uint32_t slots = st.opt.ring_slots;
  const uint64_t fit = left / std::max<uint64_t>(1, per_slot);
  if (fit < 4) {
    // Too big for the whole budget: the video can never run here. Too big for
    // what is free now: it waits in the coordinator's queue.
    const bool never = st.opt.shm_budget / std::max<uint64_t>(1, per_slot) < 4;
    report_video(self, v, false,
                 v.task.input + ": frames of " + std::to_string(meta.width) + "x" + std::to_string(meta.height) +
                     " need " + shm::format_bytes(per_slot) + " each; node '" + st.opt.name + "' has " +
                     shm::format_bytes(left) + " of its " + shm::format_bytes(st.opt.shm_budget) +
                     " shared-memory budget free (a ring needs at least 4 frames)",
                 !never);
    return;
  }
  slots = static_cast<uint32_t>(std::min<uint64_t>(slots, fit));
  shm::ring_options ro;
  ro.name = ring_prefix(st.opt) + "v" + std::to_string(id) + "-e" + std::to_string(v.task.epoch);
  ro.width = meta.width;
  ro.height = meta.height;
  ro.slot_count = slots;
  auto ring = shm::frame_ring::create(ro);
  if (!ring) {
    report_video(self, v, false, v.task.input + ": " + ring.error().message);
    return;
  }
  v.ring.emplace(std::move(*ring));
  v.ring_bytes = v.ring->status().segment_bytes;
  v.output_dir = st.opt.output_dir + "/job-" + std::to_string(v.task.job) + "/video-" + std::to_string(id);
  uint32_t cid = 1;
  for (const auto& a : v.task.analyzers) {
    role_slot c;
    c.role = a;
    c.consumer_id = cid++;
    v.ring->reserve_consumer(c.consumer_id, 0, std::max<uint32_t>(1, v.task.stride));
    v.consumers.push_back(c);
  }
  v.decoder.role = "decoder";
  v.phase = "running";
  spdlog::info("node {}: video {} ({}x{}, {} frames) on ring {} ({} slots), analyzers: {}", st.opt.name, id,
               meta.width, meta.height, meta.frames, v.ring->name(), v.ring->slot_count(), v.task.analyzers.size());
  place_pending(self);
}

void on_worker_death(node_ptr self, worker_slot& w, const std::string& why) {
  auto& st = self->state;
  spdlog::warn("node {}: worker {} died ({}); restarting it and re-placing its actors", st.opt.name, w.index, why);
  w.ready = false;
  w.handle = nullptr;
  w.proc.reset();
  ++w.restarts;
  const uint64_t backoff_ms = std::min<uint64_t>(10'000, 100ull << std::min<uint32_t>(w.restarts, 7));
  w.restart_at_ns = monotonic_ns() + backoff_ms * 1'000'000ull;
  const int idx = static_cast<int>(w.index);
  const uint64_t now = monotonic_ns();
  const uint64_t window = uint64_t{st.opt.restart_window_s} * 1'000'000'000ull;
  // Restart-intensity limit: true when `r` restarted too often, recently.
  auto too_often = [&](role_slot& r) {
    r.restart_times.push_back(now);
    while (!r.restart_times.empty() && now - r.restart_times.front() > window)
      r.restart_times.pop_front();
    return r.restart_times.size() > st.opt.restart_limit;
  };
  std::vector<std::pair<uint64_t, std::string>> escalate;
  for (auto& [id, v] : st.videos) {
    if (v.phase != "running")
      continue;
    if (v.decoder.worker == idx && v.decoder.state != "done") {
      v.decoder.state = "lost";
      ++v.decoder.restarts;
      if (too_often(v.decoder))
        escalate.emplace_back(id, "decoder");
    }
    auto rs = v.ring->status();
    for (auto& c : v.consumers) {
      if (c.worker != idx || c.state == "done")
        continue;
      // The frame it was analysing when the worker died: the last one handed out.
      for (const auto& e : rs.consumers)
        if (e.id == c.consumer_id && e.read_high > e.committed)
          if (auto frame = v.ring->frame_index_at(e.read_high - 1)) {
            auto n = ++v.crashes[c.role][*frame];
            if (n >= st.opt.poison_attempts && !v.quarantine[c.role].count(*frame)) {
              std::string reason = std::string(c.hung ? "analyzer hung" : "analyzer crashed") + " on this frame " +
                                   std::to_string(n) + " times (last: worker " + why + ")";
              v.quarantine[c.role][*frame] = reason;
              spdlog::warn("node {}: video {} frame {} quarantined for {}: {}", st.opt.name, id, *frame, c.role,
                           reason);
            }
          }
      c.hung = false;
      // Its unacknowledged frames stay in the ring for the restarted consumer.
      v.ring->mark_consumer_dead(c.consumer_id);
      c.state = "lost";
      ++c.restarts;
      if (too_often(c))
        escalate.emplace_back(id, c.role);
    }
  }
  for (const auto& [id, role] : escalate)
    if (auto it = st.videos.find(id); it != st.videos.end())
      report_video(self, it->second, false,
                   it->second.task.input + ": " + role + " restarted more than " +
                       std::to_string(st.opt.restart_limit) + " times in " + std::to_string(st.opt.restart_window_s) +
                       " s on node " + st.opt.name + " (last: worker " + why + ")",
                   false, true);
}

/// An actor that has sent nothing for hang_timeout is stuck (in FFmpeg or an
/// analyzer); the only way to stop it is to end its worker.
void detect_hangs(node_ptr self) {
  auto& st = self->state;
  const uint64_t now = monotonic_ns();
  const uint64_t limit = uint64_t{st.opt.hang_timeout_s} * 1'000'000'000ull;
  for (auto& [id, v] : st.videos) {
    if (v.phase != "running")
      continue;
    auto check = [&](role_slot& r) {
      if (r.worker < 0 || r.state == "done" || r.state == "lost" || r.state == "pending" || now - r.last_seen_ns < limit)
        return;
      auto& w = st.workers[static_cast<std::size_t>(r.worker)];
      if (!w.proc)
        return;
      spdlog::warn("node {}: {} of video {} silent for {} s; killing worker {} (pid {})", st.opt.name, r.role, id,
                   (now - r.last_seen_ns) / 1'000'000'000ull, w.index, w.proc->pid());
      r.hung = true;
      r.last_seen_ns = now;
      w.proc->kill(SIGKILL);
    };
    check(v.decoder);
    for (auto& c : v.consumers)
      check(c);
  }
}

// -- the live tree ------------------------------------------------------------------------

node_status build_status(node_ptr self) {
  auto& st = self->state;
  node_status s;
  s.node = st.opt.name;
  const std::string node_id = "node:" + st.opt.name;
  tree_entry n;
  n.id = node_id;
  n.parent = "coordinator";
  n.kind = "node";
  n.name = st.opt.name;
  n.state = st.registered ? "connected" : "connecting";
  n.pid = static_cast<uint32_t>(getpid());
  n.position = static_cast<int64_t>(st.videos.size());
  s.entries.push_back(n);
  for (const auto& w : st.workers) {
    tree_entry e;
    e.id = node_id + "/worker-" + std::to_string(w.index);
    e.parent = node_id;
    e.kind = "worker";
    e.name = "worker-" + std::to_string(w.index);
    e.state = w.ready ? "ready" : (w.proc ? "starting" : "restarting");
    e.pid = w.proc ? static_cast<uint32_t>(w.proc->pid()) : 0;
    e.restarts = w.restarts;
    s.entries.push_back(e);
  }
  for (const auto& [id, v] : st.videos) {
    tree_entry e;
    e.id = "video:" + std::to_string(id);
    e.parent = node_id;
    e.kind = "video";
    e.name = std::filesystem::path(v.task.input).filename().string();
    e.state = v.phase;
    e.total = v.meta.frames;
    e.position = v.decoder.last.position;
    std::optional<shm::ring_status> rs;
    if (v.ring) {
      rs = v.ring->status();
      e.ring_fill = rs->fill();
      e.ring_slots = rs->slot_count;
    }
    s.entries.push_back(e);
    auto role_entry = [&](const role_slot& r, const std::string& kind) {
      tree_entry x;
      x.id = kind + ":" + std::to_string(id) + (kind == "consumer" ? "/" + r.role : "");
      x.parent = e.id;
      x.kind = kind;
      x.name = r.role;
      x.state = r.state;
      x.fps = r.last.fps;
      x.position = r.last.position;
      x.total = v.meta.frames;
      x.pid = r.last.pid;
      x.restarts = r.restarts;
      x.ring_slots = e.ring_slots;
      if (auto q = v.quarantine.find(r.role); q != v.quarantine.end())
        x.quarantined = q->second.size();
      if (kind == "consumer") {
        x.lag = std::max<int64_t>(0, v.decoder.last.position - r.last.position);
        if (rs)
          for (const auto& c : rs->consumers)
            if (c.id == r.consumer_id) {
              x.redelivered = c.redelivered;
              x.ring_fill = rs->produced - std::min(rs->produced, c.committed);
            }
      } else {
        x.ring_fill = e.ring_fill;
      }
      s.entries.push_back(x);
    };
    if (v.phase == "running") {
      role_entry(v.decoder, "decoder");
      for (const auto& c : v.consumers)
        role_entry(c, "consumer");
    }
  }
  return s;
}

// -- coordinator link ----------------------------------------------------------------------

void connect(node_ptr self) {
  auto& st = self->state;
  if (st.registered || st.connecting)
    return;
  st.connecting = true;
  auto mm = self->system().middleman().actor_handle();
  self->request(mm, std::chrono::seconds(5), caf::connect_atom::value, st.opt.coordinator_host,
                st.opt.coordinator_port)
      .then(
          [self](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
            auto& st = self->state;
            if (!ptr) {
              st.connecting = false;
              self->delayed_send(self, std::chrono::milliseconds(st.backoff_ms), connect_to_atom::value);
              return;
            }
            auto coord = caf::actor_cast<coordinator_actor>(ptr);
            node_info info;
            info.name = st.opt.name;
            char host[256] = {0};
            gethostname(host, sizeof(host) - 1);
            info.host = host;
            info.cores = static_cast<uint32_t>(st.workers.size());
            info.shm_budget = st.opt.shm_budget;
            info.version = version;
            info.pid = static_cast<uint32_t>(getpid());
            for (const auto& [id, v] : st.videos)
              info.running.push_back(id);
            // Finished here but not yet reported: still ours until the report lands.
            for (const auto& r : st.unsent_reports)
              info.running.push_back(r.video);
            self->request(coord, std::chrono::seconds(5), info, caf::actor_cast<node_actor>(self))
                .then(
                    [self, coord](node_welcome&) {
                      auto& st = self->state;
                      st.coord = coord;
                      st.registered = true;
                      st.connecting = false;
                      st.backoff_ms = 250;
                      self->monitor(coord);
                      spdlog::info("node {}: registered with coordinator {}:{}", st.opt.name,
                                   st.opt.coordinator_host, st.opt.coordinator_port);
                      send_reports(self);
                    },
                    [self](caf::error& e) {
                      auto& st = self->state;
                      spdlog::warn("node {}: registration refused: {}", st.opt.name, describe(e));
                      st.connecting = false;
                      st.backoff_ms = std::min<uint32_t>(st.backoff_ms * 2, 5000);
                      self->delayed_send(self, std::chrono::milliseconds(st.backoff_ms), connect_to_atom::value);
                    });
          },
          [self](caf::error&) {
            auto& st = self->state;
            st.connecting = false;
            st.backoff_ms = std::min<uint32_t>(st.backoff_ms * 2, 5000);
            self->delayed_send(self, std::chrono::milliseconds(st.backoff_ms), connect_to_atom::value);
          });
}

node_full_actor::behavior_type node_behavior(node_ptr self, node_options opt) {
  self->state.opt = std::move(opt);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    if (st.coord && dm.source == st.coord.address()) {
      spdlog::warn("node {}: lost the coordinator ({}); reconnecting", st.opt.name, caf::to_string(dm.reason));
      st.registered = false;
      st.coord = nullptr;
      self->delayed_send(self, std::chrono::milliseconds(st.backoff_ms), connect_to_atom::value);
      return;
    }
    for (auto& w : st.workers)
      if (w.handle && dm.source == w.handle.address() && w.proc) {
        // The actor is gone but the process may linger: end it; the tick restarts it.
        w.proc->kill(SIGKILL);
        w.ready = false;
      }
  });
  self->attach_functor([self] {
    // Workers die with the node (child_process kills and reaps them); rings are
    // removed by their owners' destructors.
    self->state.videos.clear();
    self->state.workers.clear();
  });
  return {
      // -- from main --
      [self](caf::publish_atom, uint16_t port) {
        auto& st = self->state;
        st.worker_port = port;
        for (uint32_t i = 0; i < st.opt.workers; ++i) {
          worker_slot w;
          w.index = i;
          st.workers.push_back(std::move(w));
        }
        for (auto& w : st.workers)
          start_worker(self, w);
        self->send(self, tick_atom::value);
      },
      [self](connect_to_atom) { connect(self); },
      [self](tick_atom) {
        auto& st = self->state;
        const uint64_t now = monotonic_ns();
        for (auto& w : st.workers) {
          if (w.proc) {
            if (auto ex = w.proc->poll())
              on_worker_death(self, w, ex->describe());
          } else if (now >= w.restart_at_ns) {
            start_worker(self, w);
          }
        }
        for (auto& [id, v] : st.videos)
          if (v.ring)
            v.ring->reclaim_dead_consumers();
        detect_hangs(self);
        place_pending(self);
        if (st.registered && now - st.last_status_ns >= status_every_ns) {
          st.last_status_ns = now;
          self->send(st.coord, build_status(self));
          send_reports(self);
        }
        self->delayed_send(self, tick_interval, tick_atom::value);
      },
      // -- from workers --
      [self](worker_hello& h, worker_actor& w) -> caf::result<caf::ok_atom> {
        auto& st = self->state;
        if (h.index >= st.workers.size())
          return make_error(errc::invalid_request, "no worker slot " + std::to_string(h.index));
        auto& slot = st.workers[h.index];
        if (!slot.proc || static_cast<uint32_t>(slot.proc->pid()) != h.pid)
          return make_error(errc::invalid_request, "worker pid " + std::to_string(h.pid) + " was not started here");
        slot.handle = w;
        slot.ready = true;
        self->monitor(w);
        spdlog::info("node {}: worker {} ready (pid {})", st.opt.name, h.index, h.pid);
        connect(self);
        place_pending(self);
        return caf::ok_atom::value;
      },
      [self](result_batch& b) -> caf::result<batch_ack> {
        auto& st = self->state;
        auto it = st.videos.find(b.video);
        if (it == st.videos.end() || it->second.task.epoch != b.epoch)
          return make_error(errc::stale_epoch, "video " + std::to_string(b.video) + " epoch " +
                                                   std::to_string(b.epoch) + " is not assigned to this node");
        // No result can exist for a frame the decoder has not produced yet.
        const int64_t produced = it->second.ring ? it->second.ring->next_frame_index() : 0;
        for (const auto& f : b.frames)
          if (f.frame < 0 || f.frame >= produced) {
            spdlog::warn("node {}: rejected {} result for frame {} of video {}: outside the decoded frames [0, {})",
                         st.opt.name, b.analyzer, f.frame, b.video, produced);
            return make_error(errc::invalid_request, "frame " + std::to_string(f.frame) + " is outside video " +
                                                         std::to_string(b.video) + " (decoded so far: " +
                                                         std::to_string(produced) + ")");
          }
        if (!st.registered)
          return make_error(errc::unavailable, "coordinator not connected");
        b.node = st.opt.name;
        auto rp = self->make_response_promise<batch_ack>();
        self->request(st.coord, request_timeout, std::move(b))
            .then([rp](batch_ack& a) mutable { rp.deliver(a); },
                  [self, rp, video = b.video, epoch = b.epoch](caf::error& e) mutable {
                    // Fenced: the coordinator gave this video to someone else
                    // (we were presumed dead). Stop working on it here.
                    if (e.category() == caf::atom("framehive") && e.code() == static_cast<uint8_t>(errc::stale_epoch)) {
                      auto it = self->state.videos.find(video);
                      if (it != self->state.videos.end() && it->second.task.epoch == epoch) {
                        spdlog::warn("node {}: video {} epoch {} was revoked by the coordinator; dropping it",
                                     self->state.opt.name, video, epoch);
                        stop_video(self, video);
                      }
                    }
                    rp.deliver(e);
                  });
        return rp;
      },
      [self](actor_progress& p) {
        auto& st = self->state;
        auto it = st.videos.find(p.video);
        if (it == st.videos.end() || it->second.task.epoch != p.epoch)
          return;
        auto& v = it->second;
        role_slot* r = nullptr;
        if (p.role == "decoder")
          r = &v.decoder;
        else
          for (auto& c : v.consumers)
            if (c.role == p.role)
              r = &c;
        if (!r || r->state == "done")
          return;
        r->last = p;
        r->last_seen_ns = monotonic_ns();
        if (p.state == "failed") {
          report_video(self, v, false, p.error);
          return;
        }
        r->state = p.state;
        bool all = v.decoder.state == "done";
        for (const auto& c : v.consumers)
          all = all && c.state == "done";
        if (all)
          report_video(self, v, true, {});
      },
      // -- from the coordinator --
      [self](video_task& t) -> caf::result<caf::ok_atom> {
        auto& st = self->state;
        auto it = st.videos.find(t.video);
        if (it != st.videos.end()) {
          if (it->second.task.epoch >= t.epoch)
            return caf::ok_atom::value;  // already running this assignment
          stop_video(self, t.video);     // an older assignment: replace it
        }
        int w = pick_worker(self);
        if (w < 0)
          return make_error(errc::no_capacity, "node " + st.opt.name + " has no ready worker");
        video_sup v;
        v.task = t;
        st.videos.emplace(t.video, std::move(v));
        spdlog::info("node {}: assigned video {} epoch {} ({}), from frame {}", st.opt.name, t.video, t.epoch,
                     t.input, t.start_frame);
        self->request(st.workers[static_cast<std::size_t>(w)].handle, std::chrono::seconds(60), probe_atom::value,
                      t.input)
            .then(
                [self, id = t.video, epoch = t.epoch](video_meta& m) {
                  auto it = self->state.videos.find(id);
                  if (it != self->state.videos.end() && it->second.task.epoch == epoch)
                    start_video(self, id, m);
                },
                [self, id = t.video, epoch = t.epoch](caf::error& e) {
                  auto it = self->state.videos.find(id);
                  if (it != self->state.videos.end() && it->second.task.epoch == epoch)
                    report_video(self, it->second, false, describe(e));
                });
        return caf::ok_atom::value;
      },
      [self](cancel_atom, uint64_t video) {
        spdlog::info("node {}: video {} cancelled", self->state.opt.name, video);
        stop_video(self, video);
      },
  };
}

}  // namespace

std::string ring_prefix(const node_options& o) { return o.shm_prefix + "-" + sanitize(o.name) + "-"; }

node_full_actor spawn_node(caf::actor_system& sys, node_options options) {
  return sys.spawn(node_behavior, std::move(options));
}

}  // namespace framehive
