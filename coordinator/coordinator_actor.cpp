#include "coordinator/coordinator_actor.hpp"

#include <unistd.h>

#include <algorithm>
#include <map>

#include <spdlog/spdlog.h>

#include "actors/guard.hpp"
#include "analysis/catalog.hpp"
#include "common/clock.hpp"
#include "coordinator/scheduler.hpp"

// The coordinator actor is an adapter: each message becomes a call on the job
// store (the durable truth) or an event for the scheduler (the decisions),
// and the scheduler's commands become store writes and messages. Every
// handler runs through guarded(): an exception or a storage error answers
// that one request with an error, and the coordinator goes on serving.

namespace framehive {

namespace {

/// How long a node has to confirm an assignment.
constexpr auto assign_timeout = std::chrono::seconds(10);

/// The scheduler's question to the job store, answered from the job store.
class store_resume_points final : public resume_points {
 public:
  explicit store_resume_points(job_store& store) : store_(store) {}

  int64_t resume_frame(uint64_t video) override {
    auto r = store_.resume_frame(video);
    if (r)
      return *r;
    // From the start: storing frames again is harmless (upserts are
    // idempotent), skipping frames that were never stored is not.
    spdlog::error("coordinator: video {}: {}; it resumes from frame 0", video, r.error());
    return 0;
  }

 private:
  job_store& store_;
};

struct node_link {
  node_actor handle;
  node_info info;
  node_status status;  ///< its last report of its part of the tree
};

struct coordinator_state {
  static inline const char* name = "coordinator";
  std::unique_ptr<job_store> store;
  steady_clock clock;
  std::unique_ptr<store_resume_points> resume;
  std::unique_ptr<scheduler> sched;
  std::map<std::string, node_link> nodes;
};

using coord_ptr = coordinator_actor::stateful_pointer<coordinator_state>;

caf::error storage_error(const std::string& what) {
  spdlog::error("coordinator: {}", what);
  return make_error(errc::internal, what);
}

caf::error no_job(uint64_t job) {
  return make_error(errc::not_found, "no job " + std::to_string(job));
}

/// Events are a record for people; failing to write one must not fail the request.
void record_event(coordinator_state& st, uint64_t job, uint64_t video, const std::string& kind,
                  const std::string& message) {
  if (auto r = st.store->event(job, video, kind, message); !r)
    spdlog::error("coordinator: {}", r.error());
}

// -- carrying out the scheduler's commands ------------------------------------------------

void carry_out(coord_ptr self, sched_commands cmds, const video_report* report = nullptr);

void on_assign_refused(coord_ptr self, uint64_t video, uint64_t epoch, const caf::error& e) {
  const bool no_room =
      e.category() == caf::atom("framehive") && e.code() == static_cast<uint8_t>(errc::no_capacity);
  const std::string why = no_room ? describe(e) : "assignment not confirmed: " + describe(e);
  carry_out(self, self->state.sched->on_assign_failed(video, epoch, why));
}

sched_commands run(coord_ptr self, const sched::assign& a, const video_report*) {
  auto& st = self->state;
  auto failed = [&](const std::string& why) {
    spdlog::error("coordinator: cannot assign video {} to node {}: {}", a.video, a.node, why);
    return st.sched->on_assign_failed(a.video, a.epoch, why, assign_retry_delay);
  };
  auto n = st.nodes.find(a.node);
  if (n == st.nodes.end())
    return failed("the node is not connected");
  auto row = st.store->video(a.video);
  if (!row)
    return failed(row.error());
  if (!*row)
    return failed("no such video in the job store");
  const video_row& v = **row;
  if (auto r = st.store->assign(v.id, a.node, a.epoch, a.start_frame); !r)
    return failed(r.error());
  video_task t;
  t.job = v.job;
  t.video = v.id;
  t.epoch = a.epoch;
  t.input = v.input;
  t.analyzers = v.analyzers;
  t.stride = v.stride;
  t.start_frame = a.start_frame;
  t.decode_from = analysis::decode_start(a.start_frame, v.analyzers);
  record_event(st, v.job, v.id, "assigned", a.node + " epoch " + std::to_string(a.epoch));
  spdlog::info("coordinator: video {} ({}) -> node {} epoch {} from frame {}", v.id, v.input, a.node, a.epoch,
               a.start_frame);
  self->request(n->second.handle, assign_timeout, std::move(t))
      .then([](caf::ok_atom) {},
            [self, video = a.video, epoch = a.epoch](caf::error& e) {
              guarded("coordinator: assignment reply", [&] { on_assign_refused(self, video, epoch, e); });
            });
  return {};
}

sched_commands run(coord_ptr self, const sched::requeue& q, const video_report*) {
  if (auto r = self->state.store->requeue(q.video, q.start_frame, q.reason); !r)
    spdlog::error("coordinator: {}", r.error());
  spdlog::warn("coordinator: video {} requeued from frame {}: {}", q.video, q.start_frame, q.reason);
  return {};
}

sched_commands run(coord_ptr self, const sched::cancel& c, const video_report*) {
  if (auto n = self->state.nodes.find(c.node); n != self->state.nodes.end())
    self->send(n->second.handle, cancel_atom::value, c.video);
  return {};
}

sched_commands run(coord_ptr self, const sched::finish& f, const video_report* report) {
  auto& store = *self->state.store;
  video_end end;
  end.state = f.state;
  end.error = f.reason;
  if (report && report->video == f.video) {
    end.frames_total = report->frames_total;
    end.frames_decoded = report->frames_decoded;
    end.decode_errors = report->decode_errors;
  }
  if (auto r = store.finish_video(f.video, end); !r)
    spdlog::error("coordinator: {}", r.error());
  if (f.state == video_state::done)
    if (auto r = store.summarize_video(f.video); !r)
      spdlog::error("coordinator: {}", r.error());
  auto row = store.video(f.video);
  if (!row || !*row) {
    spdlog::error("coordinator: video {} {}, but its row cannot be read: {}", f.video, to_string(f.state),
                  row ? "no such video" : row.error());
    return {};
  }
  const uint64_t job = (*row)->job;
  record_event(self->state, job, f.video, to_string(f.state), f.reason);
  auto job_now = store.refresh_job_state(job);
  spdlog::info("coordinator: video {} {} ({} frames); job {} {}", f.video, to_string(f.state),
               end.frames_total, job, job_now ? to_string(*job_now) : job_now.error());
  return {};
}

sched_commands run(coord_ptr self, const sched::arm_tick& t, const video_report*) {
  const uint64_t now = self->state.clock.now_ns();
  const auto delay = std::chrono::nanoseconds(t.at_ns > now ? t.at_ns - now : 0);
  self->delayed_send(self, delay, tick_atom::value);
  return {};
}

/// Carries out commands in order, and the commands that carrying them out
/// produces (an assignment that cannot be recorded is requeued).
void carry_out(coord_ptr self, sched_commands cmds, const video_report* report) {
  for (std::size_t i = 0; i < cmds.size(); ++i) {
    const sched_command c = std::move(cmds[i]);
    auto more = std::visit([&](const auto& x) { return run(self, x, report); }, c);
    cmds.insert(cmds.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
}

// -- queries --------------------------------------------------------------------------------

/// Live progress of running videos from their node's last status: the
/// slowest consumer's position, and the video's total as probed.
void add_live_progress(const coordinator_state& st, job_status& js) {
  for (auto& v : js.videos) {
    if (v.state != video_state::running)
      continue;
    auto n = st.nodes.find(v.node);
    if (n == st.nodes.end())
      continue;
    const std::string id = "video:" + std::to_string(v.video);  // the node's id of the video's row
    bool any = false;
    for (const auto& e : n->second.status.entries) {
      if (e.kind == actor_kind::video && e.id == id)
        v.total = e.total;
      if (e.kind == actor_kind::consumer && e.parent == id) {
        v.position = any ? std::min(v.position, e.position) : e.position;
        any = true;
      }
    }
  }
}

caf::result<job_status> job_status_reply(coord_ptr self, uint64_t job) {
  auto s = self->state.store->status_of_job(job);
  if (!s)
    return storage_error(s.error());
  if (!*s)
    return no_job(job);
  add_live_progress(self->state, **s);
  return std::move(**s);
}

caf::result<cluster_status> handle_status_all(coord_ptr self) {
  auto ids = self->state.store->job_ids();
  if (!ids)
    return storage_error(ids.error());
  cluster_status out;
  for (uint64_t id : *ids) {
    auto s = self->state.store->status_of_job(id);
    if (!s)
      return storage_error(s.error());
    if (!*s)
      continue;
    add_live_progress(self->state, **s);
    out.jobs.push_back(std::move(**s));
  }
  return out;
}

caf::result<job_results> handle_results(coord_ptr self, uint64_t job, bool frames) {
  auto r = self->state.store->results_of_job(job, frames);
  if (!r)
    return storage_error(r.error());
  if (!*r)
    return no_job(job);
  return std::move(**r);
}

cluster_tree handle_tree(coord_ptr self) {
  auto& st = self->state;
  cluster_tree t;
  tree_entry c;
  c.id = "coordinator";
  c.kind = actor_kind::coordinator;
  c.name = "coordinator";
  c.state = actor_state::running;
  c.pid = static_cast<uint32_t>(getpid());
  c.position = static_cast<int64_t>(st.sched->queued());
  t.entries.push_back(std::move(c));
  for (const auto& [name, n] : st.nodes)
    t.entries.insert(t.entries.end(), n.status.entries.begin(), n.status.entries.end());
  return t;
}

cluster_nodes handle_nodes(coord_ptr self) {
  cluster_nodes out;
  for (const auto& [name, n] : self->state.nodes) {
    node_row r;
    r.name = name;
    r.host = n.info.host;
    r.cores = n.info.cores;
    r.shm_budget = n.info.shm_budget;
    r.version = n.info.version;
    r.pid = n.info.pid;
    r.running = self->state.sched->running_on(name);
    out.nodes.push_back(std::move(r));
  }
  return out;
}

// -- jobs -------------------------------------------------------------------------------------

caf::error check_spec(const job_spec& spec) {
  if (spec.inputs.empty())
    return make_error(errc::invalid_request, "no input videos given");
  if (spec.analyzers.empty())
    return make_error(errc::invalid_request, "no analyzers given");
  for (const auto& a : spec.analyzers)
    if (!analysis::is_analyzer(a))
      return make_error(errc::invalid_request,
                        "unknown analyzer '" + a + "' (known: " + analysis::analyzer_list() + ")");
  return {};
}

caf::result<uint64_t> handle_submit(coord_ptr self, job_spec& spec) {
  auto& st = self->state;
  if (auto e = check_spec(spec))
    return e;
  std::sort(spec.analyzers.begin(), spec.analyzers.end());
  spec.analyzers.erase(std::unique(spec.analyzers.begin(), spec.analyzers.end()), spec.analyzers.end());
  spec.stride = std::max<uint32_t>(1, spec.stride);
  auto created = st.store->create_job(spec);
  if (!created)
    return storage_error(created.error());
  record_event(st, created->job, 0, "submitted", std::to_string(spec.inputs.size()) + " videos");
  spdlog::info("coordinator: job {} submitted: {} videos", created->job, spec.inputs.size());
  carry_out(self, st.sched->on_submit(created->videos));
  return created->job;
}

caf::result<job_status> handle_cancel(coord_ptr self, uint64_t job) {
  auto& st = self->state;
  auto state = st.store->state_of_job(job);
  if (!state)
    return storage_error(state.error());
  if (!*state)
    return no_job(job);
  auto videos = st.store->videos_of(job);
  if (!videos)
    return storage_error(videos.error());
  if (auto r = st.store->cancel_job(job); !r)
    return storage_error(r.error());
  record_event(st, job, 0, "cancelled", "");
  std::vector<uint64_t> ids;
  for (const auto& v : *videos)
    ids.push_back(v.id);
  carry_out(self, st.sched->on_cancel(ids));
  spdlog::info("coordinator: job {} cancelled", job);
  return job_status_reply(self, job);
}

// -- nodes ------------------------------------------------------------------------------------

// `name` by value: callers pass the key of the entry this erases.
void node_lost(coord_ptr self, std::string name, const std::string& why) {
  auto& st = self->state;
  if (st.nodes.erase(name) == 0)
    return;
  spdlog::warn("coordinator: node {} lost ({}); {} videos to reassign", name, why,
               st.sched->running_on(name));
  carry_out(self, st.sched->on_node_lost(name));
}

node_welcome handle_register(coord_ptr self, node_info& info, node_actor& handle) {
  auto& st = self->state;
  if (auto old = st.nodes.find(info.name); old != st.nodes.end() && old->second.handle != handle)
    node_lost(self, info.name, "re-registered");
  self->monitor(handle);
  auto& n = st.nodes[info.name];
  n.handle = handle;
  n.info = info;
  spdlog::info("coordinator: node {} registered ({} cores, shm budget {} MiB, pid {}, {} videos running)",
               info.name, info.cores, info.shm_budget >> 20, info.pid, info.running.size());
  carry_out(self, st.sched->on_node_registered(info.name, info.cores, info.running));
  return node_welcome{version};
}

void handle_down(coord_ptr self, const caf::down_msg& dm) {
  for (const auto& [name, n] : self->state.nodes)
    if (n.handle.address() == dm.source) {
      node_lost(self, name, caf::to_string(dm.reason));
      return;
    }
}

void handle_node_status(coord_ptr self, node_status& s) {
  if (auto n = self->state.nodes.find(s.node); n != self->state.nodes.end())
    n->second.status = std::move(s);
}

// -- results and reports ----------------------------------------------------------------------

caf::result<batch_ack> handle_batch(coord_ptr self, const result_batch& b) {
  auto& st = self->state;
  if (!st.sched->accepts(b.video, b.epoch, b.node)) {
    spdlog::warn("coordinator: rejected results for video {} epoch {} from node {}: not its assignment",
                 b.video, b.epoch, b.node);
    return make_error(errc::stale_epoch, "video " + std::to_string(b.video) + " epoch " +
                                             std::to_string(b.epoch) + " is not assigned to " + b.node);
  }
  auto row = st.store->video(b.video);
  if (!row)
    return storage_error(row.error());
  if (!*row)
    return make_error(errc::not_found, "no video " + std::to_string(b.video));
  const video_row& v = **row;
  if (std::find(v.analyzers.begin(), v.analyzers.end(), b.analyzer) == v.analyzers.end())
    return make_error(errc::invalid_request,
                      "video " + std::to_string(b.video) + " has no analyzer " + b.analyzer);
  for (const auto& f : b.frames)
    if (f.frame < 0) {
      spdlog::warn("coordinator: rejected results for video {} from {}: negative frame {}", b.video, b.node,
                   f.frame);
      return make_error(errc::invalid_request, "negative frame index " + std::to_string(f.frame));
    }
  auto mark = st.store->upsert(b, v.stride);
  if (!mark)
    return storage_error(mark.error());
  batch_ack ack;
  ack.video = b.video;
  ack.analyzer = b.analyzer;
  ack.watermark = *mark;
  ack.stored = b.frames.size();
  return ack;
}

caf::result<caf::ok_atom> handle_report(coord_ptr self, const video_report& r) {
  auto& st = self->state;
  if (st.sched->accepts(r.video, r.epoch, r.node)) {
    spdlog::info("coordinator: node {} reports video {}: {}{}{}", r.node, r.video, to_string(r.outcome),
                 r.error.empty() ? "" : ": ", r.error);
    carry_out(self, st.sched->on_report(r.video, r.epoch, r.node, r.outcome, r.error), &r);
    return caf::ok_atom::value;
  }
  auto row = st.store->video(r.video);
  if (!row)
    return storage_error(row.error());
  if (!*row)
    return make_error(errc::not_found, "no video " + std::to_string(r.video));
  spdlog::info("coordinator: ignored report on video {} epoch {} from node {}: not its current assignment",
               r.video, r.epoch, r.node);
  return caf::ok_atom::value;  // an older assignment: nothing to record
}

// -- start ------------------------------------------------------------------------------------

/// Videos unfinished at the last stop: queued ones queue again, running ones
/// wait (restart grace) for their node to re-register and claim them.
void restore(coord_ptr self) {
  auto& st = self->state;
  auto rows = st.store->unfinished_videos();
  if (!rows) {
    spdlog::error("coordinator: cannot reload unfinished videos: {}", rows.error());
    return;
  }
  std::vector<restored_video> videos;
  std::size_t running = 0;
  for (const auto& v : *rows) {
    videos.push_back(restored_video{v.id, v.state, v.node, v.epoch, v.start_frame});
    running += v.state == video_state::running ? 1 : 0;
  }
  if (!videos.empty())
    spdlog::info("coordinator: reloaded {} queued and {} running videos from the job store",
                 videos.size() - running, running);
  carry_out(self, st.sched->restore(videos));
}

coordinator_actor::behavior_type coordinator(coord_ptr self,
                                             const std::shared_ptr<std::unique_ptr<job_store>>& holder) {
  auto& st = self->state;
  st.store = std::move(*holder);
  st.resume = std::make_unique<store_resume_points>(*st.store);
  st.sched = std::make_unique<scheduler>(st.clock, *st.resume);
  guarded("coordinator: restore", [&] { restore(self); });
  self->set_down_handler(
      [self](caf::down_msg& dm) { guarded("coordinator: down", [&] { handle_down(self, dm); }); });
  return {
      [self](job_spec& s) { return guarded("coordinator: submit", [&] { return handle_submit(self, s); }); },
      [self](status_atom) { return guarded("coordinator: status", [&] { return handle_status_all(self); }); },
      [self](status_atom, uint64_t job) {
        return guarded("coordinator: status", [&] { return job_status_reply(self, job); });
      },
      [self](results_atom, uint64_t job, bool frames) {
        return guarded("coordinator: results", [&] { return handle_results(self, job, frames); });
      },
      [self](tree_atom) {
        return guarded("coordinator: tree", [&]() -> caf::result<cluster_tree> { return handle_tree(self); });
      },
      [self](nodes_atom) {
        return guarded("coordinator: nodes",
                       [&]() -> caf::result<cluster_nodes> { return handle_nodes(self); });
      },
      [self](cancel_atom, uint64_t job) {
        return guarded("coordinator: cancel", [&] { return handle_cancel(self, job); });
      },
      [self](node_info& info, node_actor& handle) {
        return guarded("coordinator: register",
                       [&]() -> caf::result<node_welcome> { return handle_register(self, info, handle); });
      },
      [self](result_batch& b) {
        return guarded("coordinator: results batch", [&] { return handle_batch(self, b); });
      },
      [self](video_report& r) {
        return guarded("coordinator: report", [&] { return handle_report(self, r); });
      },
      [self](node_status& s) { guarded("coordinator: node status", [&] { handle_node_status(self, s); }); },
      [self](tick_atom) {
        guarded("coordinator: tick", [&] { carry_out(self, self->state.sched->on_tick()); });
      },
  };
}

}  // namespace

coordinator_actor spawn_coordinator(caf::actor_system& sys, std::unique_ptr<job_store> store) {
  // The store moves into the actor's state through a shared holder (spawn
  // arguments must be copyable).
  auto holder = std::make_shared<std::unique_ptr<job_store>>(std::move(store));
  return sys.spawn<caf::detached>(coordinator, std::move(holder));
}

}  // namespace framehive
