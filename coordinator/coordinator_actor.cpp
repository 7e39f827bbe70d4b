#include "coordinator/coordinator_actor.hpp"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_map>
#include <utility>

#include <spdlog/spdlog.h>

#include "actors/guard.hpp"
#include "analysis/catalog.hpp"
#include "common/clock.hpp"
#include "common/identity.hpp"
#include "common/logging.hpp"
#include "common/metrics.hpp"
#include "coordinator/admission.hpp"
#include "coordinator/scheduler.hpp"

// The coordinator actor is an adapter: each message becomes a call on the job
// store (the durable truth) or an event for the scheduler (the decisions),
// and the scheduler's commands become store writes and messages. Every
// handler runs through guarded(): an exception or a storage error answers
// that one request with an error, and the coordinator goes on serving.
//
// Identity is the connection: results, reports and status count only from
// the actor that registered under a node's name (current_sender()), never
// from the name a message carries. What a request may contain (limits,
// challenges) is decided by `admission`; every refusal is logged with the
// peer and counted by its reason (`framehive nodes`).

namespace framehive {

namespace {

/// How long a node has to confirm an assignment.
constexpr auto assign_timeout = std::chrono::seconds(10);

/// How often finished jobs past their retention are looked for, and how many
/// one pass erases (the rest follow a second later: a pass must not hold up
/// the nodes' results for long).
constexpr auto sweep_interval = std::chrono::hours(1);
constexpr auto sweep_again = std::chrono::seconds(1);
constexpr std::size_t max_erased_per_sweep = 100;

/// Refusals of one reason are logged one by one up to this many, then every
/// 1000th: a peer that floods the coordinator must not flood its log.
constexpr uint64_t refusals_logged_in_full = 20;

/// Assignments per placement slice: a job of 10,000 videos is placed in
/// slices with the other messages (results, status) served in between.
constexpr std::size_t placement_slice = 100;

/// Result batches committed in one transaction at most: the group is
/// committed when no further message waits, or when it is this large.
constexpr std::size_t max_group_batches = 128;

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

/// An artifact in transit: (video, epoch, analyzer, name).
using artifact_key = std::tuple<uint64_t, uint64_t, std::string, std::string>;

struct artifact_upload {
  uint64_t session = 0;  ///< in the blob store
  uint64_t total = 0;
};

/// A request with result batches written in the open group transaction,
/// answered once it commits: one result_batch (`one`), or a node's
/// result_batches (`many`, with an outcome per batch; those refused already
/// carry their error).
struct grouped_batch {
  caf::typed_response_promise<batch_ack> one;
  caf::typed_response_promise<batch_outcomes> many;
  bool is_many = false;
  batch_outcomes outcomes;
  std::vector<uint64_t> upsert_ns;  ///< per outcome: when its upsert began (the commit time's metric)
};

struct coordinator_state {
  static inline const char* name = "coordinator";
  std::unique_ptr<job_store> store;
  coordinator_options options;
  steady_clock clock;
  std::unique_ptr<store_resume_points> resume;
  std::unique_ptr<scheduler> sched;
  std::unique_ptr<admission> gate;
  std::map<std::string, node_link> nodes;
  std::map<caf::actor_addr, std::string> names;  ///< each registered node actor's name
  uint64_t next_sweep_ns = 0;                    ///< retention: when to look again
  std::unique_ptr<blob_store> blobs;             ///< uploads and artifacts; may be null
  std::set<uint64_t> client_uploads;             ///< blob sessions opened by upload_begin
  std::map<artifact_key, artifact_upload> artifact_uploads;
  uint64_t next_state_metrics_ns = 0;  ///< when the jobs/videos-by-state gauges are read again
  // -- group commit of result batches: see handle_batch ---------------------------------
  std::optional<transaction> group;    ///< open while batches wait for their commit
  std::vector<grouped_batch> grouped;  ///< their answers, in arrival order
  uint32_t flush_ticks = 0;            ///< ticks sent only to commit the group at the latest, not yet handled
  uint64_t group_opened_ns = 0;        ///< when the open group began (group_commit_linger counts from it)
  bool linger_tick_pending = false;    ///< a delayed flush tick is on its way
};

using coord_ptr = coordinator_actor::stateful_pointer<coordinator_state>;

caf::error storage_error(const std::string& what) {
  spdlog::error("coordinator: {}", what);
  return make_error(errc::internal, what);
}

caf::error no_job(uint64_t job) {
  return make_error(errc::not_found, "no job " + std::to_string(job));
}

// -- group commit -------------------------------------------------------------------------
//
// Result batches from every node are written into one open transaction and
// answered only after it commits ("acknowledged" means "committed"). The
// group is committed when no further message waits in the mailbox, when it
// holds max_group_batches, and before any other message is handled: every
// other write (assignments, reports, submits) then runs outside it and
// commits on its own, as before, and nothing read by another handler is
// uncommitted.

/// Answers a grouped request with its outcomes: all of them for a message of
/// batches, the one ack or error for a single batch.
void answer(grouped_batch& g) {
  auto& outs = g.outcomes.outcomes;
  if (g.is_many)
    g.many.deliver(std::move(g.outcomes));
  else if (outs.size() == 1 && outs[0].error)
    g.one.deliver(std::move(outs[0].error));
  else if (outs.size() == 1)
    g.one.deliver(std::move(outs[0].ack));
}

/// Commits the open group and answers its batches (all with an error if the commit failed).
void commit_group(coord_ptr self) {
  auto& st = self->state;
  if (!st.group)
    return;
  auto committed = st.group->commit();
  st.group.reset();  // rolls back if the commit failed
  auto requests = std::move(st.grouped);
  st.grouped.clear();
  if (!committed)
    spdlog::error("coordinator: {} requests with result batches not stored: {}", requests.size(),
                  committed.error());
  const uint64_t now = st.clock.now_ns();
  for (auto& g : requests) {
    auto& outs = g.outcomes.outcomes;
    for (std::size_t i = 0; i < outs.size(); ++i) {
      if (outs[i].error)
        continue;
      if (!committed)
        outs[i].error = make_error(errc::internal, committed.error());
      else if (st.options.metrics)
        st.options.metrics->batch_stored(outs[i].ack.analyzer, outs[i].ack.stored,
                                         static_cast<double>(now - g.upsert_ns[i]) / 1e9);
    }
    answer(g);
  }
}

/// Fails every request waiting in the group: SQLite rolled it back whole.
void fail_group(coordinator_state& st, const std::string& why) {
  st.group.reset();
  for (auto& g : std::exchange(st.grouped, {})) {
    for (auto& o : g.outcomes.outcomes)
      if (!o.error)
        o.error = make_error(errc::internal, why);
    answer(g);
  }
}

/// After a request's batches joined the group: commits it now if nothing
/// else waits (or it is full) and it is older than the linger, else makes
/// sure something commits it soon.
void group_or_commit(coord_ptr self) {
  auto& st = self->state;
  if (st.grouped.size() >= max_group_batches)
    return commit_group(self);
  if (!self->mailbox().empty()) {
    // Whatever waits now settles the group before it is handled; the tick
    // makes sure something does.
    if (st.flush_ticks == 0) {
      ++st.flush_ticks;
      self->send(self, tick_atom::value);
    }
    return;
  }
  const uint64_t linger_ns = static_cast<uint64_t>(st.options.group_commit_linger.count()) * 1000;
  const uint64_t age = st.clock.now_ns() - st.group_opened_ns;
  if (age >= linger_ns)
    return commit_group(self);
  if (!st.linger_tick_pending) {
    st.linger_tick_pending = true;
    ++st.flush_ticks;
    self->delayed_send(self, std::chrono::nanoseconds(linger_ns - age), tick_atom::value);
  }
}

/// Before a message other than a result batch: the group commits first.
void settle(coord_ptr self) {
  guarded("coordinator: group commit", [&] { commit_group(self); });
}

// -- who is asking ---------------------------------------------------------------------------

caf::actor_addr sender_of(coord_ptr self) {
  return caf::actor_cast<caf::actor_addr>(self->current_sender());
}

/// The name the sender registered under, or nullptr: the only name its results count for.
const std::string* sender_node(coord_ptr self) {
  auto it = self->state.names.find(sender_of(self));
  return it == self->state.names.end() ? nullptr : &it->second;
}

/// The sender for log lines: its node name if it registered, and its actor address.
std::string peer_of(coord_ptr self) {
  const auto addr = sender_of(self);
  if (!addr)
    return "an anonymous sender";
  const std::string* name = sender_node(self);
  return (name ? "node " + *name + " " : std::string("peer ")) + "(actor " + caf::to_string(addr) + ")";
}

/// Counts and logs a refusal of `what` from the sender; the error for its reply.
caf::error refuse(coord_ptr self, const refusal& r, const std::string& what) {
  const uint64_t n = self->state.gate->count(r.key);
  if (auto* m = self->state.options.metrics.get())
    m->refusals[r.key].Increment();
  if (n <= refusals_logged_in_full || n % 1000 == 0)
    spdlog::warn("coordinator: refused {} from {}: {}: {} ({} refusals of this kind so far)", what,
                 peer_of(self), r.key, r.message, n);
  return make_error(r.code, r.message);
}

/// The jobs and videos by state, read from the job store at most once a
/// second (`force`: now), on events that already come often.
void refresh_state_metrics(coordinator_state& st, bool force = false) {
  const uint64_t now = st.clock.now_ns();
  if (!st.options.metrics || (!force && now < st.next_state_metrics_ns))
    return;
  st.next_state_metrics_ns = now + 1'000'000'000;
  if (auto counts = st.store->count_by_state())
    st.options.metrics->set_states(counts->first, counts->second);
  else
    spdlog::error("coordinator: metrics: {}", counts.error());
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
  for (const auto& a : v.specs)
    t.samplings.push_back(a.take);
  t.start_frame = a.start_frame;
  t.decode_from = analysis::decode_start(a.start_frame, v.analyzers);
  t.detect = v.detect;  // the node fetches its model files before the consumers start
  record_event(st, v.job, v.id, "assigned", a.node + " epoch " + std::to_string(a.epoch));
  log_about(spdlog::level::info, about_video(v.job, v.id),
            "coordinator: video {} ({}) -> node {} epoch {} from frame {}", v.id, v.input, a.node, a.epoch,
            a.start_frame);
  self->request(n->second.handle, assign_timeout, std::move(t))
      .then([self](caf::ok_atom) { settle(self); },
            [self, video = a.video, epoch = a.epoch](caf::error& e) {
              settle(self);
              guarded("coordinator: assignment reply", [&] { on_assign_refused(self, video, epoch, e); });
            });
  return {};
}

sched_commands run(coord_ptr self, const sched::requeue& q, const video_report*) {
  if (auto r = self->state.store->requeue(q.video, q.start_frame, q.reason); !r)
    spdlog::error("coordinator: {}", r.error());
  log_about(spdlog::level::warn, about_video(q.video), "coordinator: video {} requeued from frame {}: {}", q.video,
            q.start_frame, q.reason);
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
  // The video's end, its summary and its job's state commit together: a
  // coordinator killed in between would leave a job running with no video
  // left to run (the chaos test found it).
  auto tx = store.begin();
  if (!tx)
    spdlog::error("coordinator: video {}: {}", f.video, tx.error());
  if (auto r = store.finish_video(f.video, end); !r)
    spdlog::error("coordinator: {}", r.error());
  if (f.state == video_state::done)
    if (auto r = store.summarize_video(f.video); !r)
      spdlog::error("coordinator: {}", r.error());
  auto row = store.video(f.video);
  if (!row || !*row) {
    spdlog::error("coordinator: video {} {}, but its row cannot be read: {}", f.video, to_string(f.state),
                  row ? "no such video" : row.error());
    if (tx)
      (void)tx->commit();  // what was written stays
    return {};
  }
  const uint64_t job = (*row)->job;
  record_event(self->state, job, f.video, to_string(f.state), f.reason);
  auto job_now = store.refresh_job_state(job);
  if (tx)
    if (auto r = tx->commit(); !r)
      spdlog::error("coordinator: video {}: {}", f.video, r.error());
  log_about(spdlog::level::info, about_video(job, f.video), "coordinator: video {} {} ({} frames); job {} {}",
            f.video, to_string(f.state), end.frames_total, job, job_now ? to_string(*job_now) : job_now.error());
  return {};
}

sched_commands run(coord_ptr self, const sched::place_more&, const video_report*) {
  self->send(self, tick_atom::value);  // behind the messages already waiting
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
  out.refusals = self->state.gate->counts();
  return out;
}

// -- jobs -------------------------------------------------------------------------------------

caf::result<uint64_t> handle_submit(coord_ptr self, job_spec& spec) {
  auto& st = self->state;
  if (auto v = st.gate->check_job(spec, st.sched->queued()))
    return refuse(self, *v, "a job");
  // Stored as canonical texts with the job's --stride folded in (stats ->
  // stats/K), so every later reader gets each analyzer's sampling from its text.
  auto parsed = analysis::parse_analyzers(spec.analyzers, std::max<uint32_t>(1, spec.stride));
  if (!parsed)
    return refuse(self, refusal{errc::invalid_request, refusal_key::invalid_job, parsed.error()}, "a job");
  if (auto bad = analysis::check_detect_options(spec.detect, spec.analyzers); !bad.empty())
    return refuse(self, refusal{errc::invalid_request, refusal_key::invalid_job, bad}, "a job");
  spec.analyzers.clear();
  for (const auto& a : *parsed)
    spec.analyzers.push_back(analysis::to_text(a));
  std::sort(spec.analyzers.begin(), spec.analyzers.end());
  spec.stride = 1;
  auto created = st.store->create_job(spec);
  if (!created)
    return storage_error(created.error());
  record_event(st, created->job, 0, "submitted", std::to_string(spec.inputs.size()) + " videos");
  log_about(spdlog::level::info, about_job(created->job), "coordinator: job {} submitted: {} videos",
            created->job, spec.inputs.size());
  carry_out(self, st.sched->on_submit(created->videos));
  refresh_state_metrics(st, true);
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
  refresh_state_metrics(st, true);
  log_about(spdlog::level::info, about_job(job), "coordinator: job {} cancelled", job);
  return job_status_reply(self, job);
}

/// Erases a finished job, then the blobs (its artifacts, its uploaded
/// inputs) that no other job names. false if there is no such job.
store_result<bool> erase_job_and_blobs(coordinator_state& st, uint64_t job) {
  std::vector<std::string> shas;
  if (st.blobs) {
    auto artifacts = st.store->artifacts_of(job);
    if (!artifacts)
      return artifacts.error();
    for (const auto& a : *artifacts)
      shas.push_back(a.sha256);
    auto videos = st.store->videos_of(job);
    if (!videos)
      return videos.error();
    constexpr std::string_view prefix = "blob:";
    for (const auto& v : *videos)
      for (const std::string* in : {&v.input, &v.detect.model.network, &v.detect.model.weights,
                                    &v.detect.model.names})  // a model's files are uploads too
        if (in->compare(0, prefix.size(), prefix) == 0)
          shas.push_back(in->substr(prefix.size(), 64));
  }
  auto erased = st.store->erase_job(job);
  if (!erased || !*erased)
    return erased;
  std::sort(shas.begin(), shas.end());
  shas.erase(std::unique(shas.begin(), shas.end()), shas.end());
  for (const auto& sha : shas) {
    auto used = st.store->blob_referenced(sha);
    if (!used)
      spdlog::error("coordinator: blob {} of erased job {} kept: {}", sha, job, used.error());
    else if (!*used)
      st.blobs->remove(sha);
  }
  return true;
}

constexpr bool is_final(job_state s) noexcept {
  return s == job_state::done || s == job_state::failed || s == job_state::cancelled;
}

/// Deletes a finished job and everything recorded about it.
caf::result<caf::ok_atom> handle_erase(coord_ptr self, uint64_t job) {
  auto& store = *self->state.store;
  auto state = store.state_of_job(job);
  if (!state)
    return storage_error(state.error());
  if (!*state)
    return no_job(job);
  if (!is_final(**state))
    return make_error(errc::invalid_request, "job " + std::to_string(job) + " is " + to_string(**state) +
                                                 "; cancel it before erasing it");
  auto erased = erase_job_and_blobs(self->state, job);
  if (!erased)
    return storage_error(erased.error());
  if (!*erased)
    return no_job(job);
  spdlog::info("coordinator: job {} ({}) erased with its videos, results and events", job,
               to_string(**state));
  return caf::ok_atom::value;
}

// -- retention --------------------------------------------------------------------------------

/// Seconds since the Unix epoch: the job store records when jobs finished in wall time.
double wall_now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// Erases finished jobs older than the retention (a bounded number per pass);
/// true if more are due.
bool sweep(coord_ptr self) {
  auto& st = self->state;
  const uint32_t days = st.options.limits.retention_days;
  if (days == 0)
    return false;
  auto ids = st.store->jobs_finished_before(wall_now_s() - days * 86400.0);
  if (!ids) {
    spdlog::error("coordinator: retention: {}", ids.error());
    return false;
  }
  std::size_t erased = 0;
  for (std::size_t i = 0; i < ids->size() && i < max_erased_per_sweep; ++i) {
    auto r = erase_job_and_blobs(st, (*ids)[i]);
    if (!r)
      spdlog::error("coordinator: retention: job {}: {}", (*ids)[i], r.error());
    else
      erased += *r ? 1 : 0;
  }
  if (erased > 0)
    spdlog::info("coordinator: retention: erased {} jobs that finished more than {} days ago", erased, days);
  return ids->size() > max_erased_per_sweep;
}

/// Sweeps if it is time, and arms the timer for the next sweep. Ticks also
/// come for the scheduler (and from anyone: the interface is public), so the
/// sweep runs on time, not on every tick.
void sweep_if_due(coord_ptr self) {
  auto& st = self->state;
  const uint64_t now = st.clock.now_ns();
  if (now < st.next_sweep_ns)
    return;
  if (st.blobs)
    if (const std::size_t n = st.blobs->remove_stale(); n > 0)
      spdlog::info("coordinator: removed {} uploads idle for too long", n);
  const auto next =
      sweep(self) ? std::chrono::nanoseconds(sweep_again) : std::chrono::nanoseconds(sweep_interval);
  st.next_sweep_ns = now + static_cast<uint64_t>(next.count());
  self->delayed_send(self, next, tick_atom::value);
}

/// The timer: the scheduler's deadlines, and the retention sweep when it is due.
void handle_tick(coord_ptr self) {
  // Ticks are alike: the first ones handled stand for the group's (settle()
  // committed it), and the timer's or place_more's tick is handled in place
  // of the group's when that comes: each tick is handled once, never twice.
  self->state.linger_tick_pending = false;  // whichever tick this is, the group was committed
  if (self->state.flush_ticks > 0) {
    --self->state.flush_ticks;
    return;
  }
  sweep_if_due(self);
  carry_out(self, self->state.sched->on_tick());
  refresh_state_metrics(self->state);
}

// -- nodes ------------------------------------------------------------------------------------

// `name` by value: callers pass the key of the entry this erases.
void node_lost(coord_ptr self, std::string name, const std::string& why) {
  auto& st = self->state;
  auto n = st.nodes.find(name);
  if (n == st.nodes.end())
    return;
  st.names.erase(n->second.handle.address());
  st.nodes.erase(n);
  if (st.options.metrics)
    st.options.metrics->nodes.Set(static_cast<double>(st.nodes.size()));
  spdlog::warn("coordinator: node {} lost ({}); {} videos to reassign", name, why,
               st.sched->running_on(name));
  carry_out(self, st.sched->on_node_lost(name));
}

caf::result<std::string> handle_challenge(coord_ptr self) {
  const auto sender = sender_of(self);
  if (!sender)
    return refuse(self, refusal{errc::refused, refusal_key::anonymous, "a challenge is issued to a sender"},
                  "a challenge request");
  return self->state.gate->issue_challenge(caf::to_string(sender), random_token());
}

/// With a cluster CA: the node signed the challenge issued to this sender
/// with the key of a node certificate for its name.
verdict check_proof(coord_ptr self, const node_info& info) {
  auto& st = self->state;
  auto challenge = st.gate->take_challenge(caf::to_string(sender_of(self)));
  if (!challenge)
    return refusal{errc::refused, refusal_key::no_challenge,
                   "node " + info.name +
                       ": no challenge to answer (ask for one first; each is good for one "
                       "registration within " +
                       std::to_string(challenge_ttl.count()) + " s)"};
  auto ok =
      verify_proof(st.options.tls_ca, info.certificate, cert_role::node, info.name, *challenge, info.proof);
  if (!ok)
    return refusal{errc::refused, refusal_key::bad_proof, "node " + info.name + ": " + ok.error()};
  return std::nullopt;
}

/// Who may register under `info.name`: the node actor itself (the handle it
/// registers is the sender), with a proof when the cluster has a CA, under a
/// name that no live node holds, with sane figures.
verdict check_registration(coord_ptr self, const node_info& info, const node_actor& handle) {
  auto& st = self->state;
  const auto sender = sender_of(self);
  if (!sender)
    return refusal{errc::refused, refusal_key::anonymous, "a registration without a sender"};
  if (handle.address() != sender)
    return refusal{errc::refused, refusal_key::handle_mismatch,
                   "node " + info.name + ": the handle it registers is not the sender's"};
  if (auto v = st.gate->check_node(info))
    return v;
  if (auto own = st.names.find(sender); own != st.names.end() && own->second != info.name)
    return refusal{errc::refused, refusal_key::already_registered,
                   "this actor is registered as node " + own->second + "; it cannot also be " + info.name};
  if (!st.options.tls_ca.empty())
    if (auto v = check_proof(self, info))
      return v;
  // A node whose process died may come back once its old handle is down (the
  // down message removes it); until then the name is taken.
  if (auto n = st.nodes.find(info.name); n != st.nodes.end() && n->second.handle != handle)
    return refusal{errc::refused, refusal_key::name_taken,
                   "node name " + info.name + " is held by a live node (actor " +
                       caf::to_string(n->second.handle.address()) + ")"};
  return std::nullopt;
}

caf::result<node_welcome> handle_register(coord_ptr self, node_info& info, node_actor& handle) {
  auto& st = self->state;
  if (auto v = check_registration(self, info, handle))
    return refuse(self, *v, "a registration as node " + info.name);
  info.certificate.clear();  // checked; not needed again
  info.proof.clear();
  auto [n, fresh] = st.nodes.try_emplace(info.name);
  if (fresh) {
    self->monitor(handle);
    st.names[handle.address()] = info.name;
  }
  n->second.handle = handle;
  n->second.info = info;
  if (st.options.metrics)
    st.options.metrics->nodes.Set(static_cast<double>(st.nodes.size()));
  spdlog::info("coordinator: node {} registered ({} cores, shm budget {} MiB, pid {}, {} videos running{})",
               info.name, info.cores, info.shm_budget >> 20, info.pid, info.running.size(),
               st.options.tls_ca.empty() ? "" : ", certificate verified");
  auto cmds = st.sched->on_node_registered(info.name, info.cores, info.running);
  // A node back from a partition (or a restart of ours) may still run a video
  // that was given to another node, or ended, while it was away: its claim is
  // stale and it is told to drop the video. Logged and counted like a stale
  // batch, so the fencing shows in the log and in `framehive nodes`.
  for (const auto& c : cmds)
    if (const auto* drop = std::get_if<sched::cancel>(&c))
      refuse(self,
             refusal{errc::stale_epoch, refusal_key::stale_epoch,
                     "video " + std::to_string(drop->video) + " is no longer assigned to " + info.name +
                         "; it is told to drop it"},
             "a claim at registration as node " + info.name);
  carry_out(self, std::move(cmds));
  return node_welcome{version};
}

void handle_down(coord_ptr self, const caf::down_msg& dm) {
  if (auto it = self->state.names.find(dm.source); it != self->state.names.end())
    node_lost(self, it->second, caf::to_string(dm.reason));
}

void handle_node_status(coord_ptr self, node_status& s) {
  auto& st = self->state;
  const std::string* name = sender_node(self);
  const std::string what = "a status of node " + s.node;
  if (!name) {
    refuse(self,
           refusal{errc::refused, refusal_key::not_registered, "only a registered node sends its status"},
           what);
    return;
  }
  if (s.node != *name) {
    refuse(self, refusal{errc::refused, refusal_key::name_mismatch, "it is registered as node " + *name},
           what);
    return;
  }
  if (auto v = st.gate->check_status(s)) {
    refuse(self, *v, what);
    return;
  }
  st.nodes[*name].status = std::move(s);
  refresh_state_metrics(st);
}

// -- results and reports ----------------------------------------------------------------------

enum class holding : uint8_t {
  current,  ///< the node holds this assignment: its results and report count
  former,   ///< it held it once (revoked since): stale, it should stop
  never,    ///< it never held it: a forgery or a confusion
};

store_result<holding> holding_of(coordinator_state& st, const std::string& node, uint64_t video,
                                 uint64_t epoch) {
  if (st.sched->accepts(video, epoch, node))
    return holding::current;
  auto owner = st.store->assignment_node(video, epoch);
  if (!owner)
    return owner.error();
  return *owner && **owner == node ? holding::former : holding::never;
}

/// The frame count the node probed for `video` (from its last status), or -1.
int64_t probed_frames(const coordinator_state& st, const std::string& node, uint64_t video) {
  auto n = st.nodes.find(node);
  if (n == st.nodes.end())
    return -1;
  const std::string id = "video:" + std::to_string(video);  // the node's id of the video's row
  for (const auto& e : n->second.status.entries)
    if (e.kind == actor_kind::video && e.id == id)
      return e.total;
  return -1;
}

/// Refuses results or a report on (video, epoch) unless the sender holds that
/// assignment; the sender's node name otherwise. `stale_ok`: a former holder
/// is answered with `nullptr` and no error (a report it sends again).
caf::expected<const std::string*> check_holder(coord_ptr self, uint64_t video, uint64_t epoch,
                                               const std::string& what, bool stale_ok) {
  const std::string* name = sender_node(self);
  const std::string assignment = "video " + std::to_string(video) + " epoch " + std::to_string(epoch);
  if (!name)
    return refuse(self,
                  refusal{errc::refused, refusal_key::not_registered,
                          "only the registered node that holds " + assignment + " may send this"},
                  what);
  auto held = holding_of(self->state, *name, video, epoch);
  if (!held)
    return storage_error(held.error());
  if (*held == holding::current)
    return name;
  if (*held == holding::former && stale_ok)
    return static_cast<const std::string*>(nullptr);
  if (*held == holding::former)
    return refuse(self,
                  refusal{errc::stale_epoch, refusal_key::stale_epoch,
                          assignment + " is no longer assigned to " + *name},
                  what);
  return refuse(
      self, refusal{errc::refused, refusal_key::not_assigned, assignment + " is not assigned to " + *name},
      what);
}

/// Checks one batch and writes it into the group transaction (opened if
/// none is): its ack, answered once the group commits, or why it is refused.
caf::expected<batch_ack> store_batch(coord_ptr self, result_batch& b) {
  auto& st = self->state;
  const std::string what =
      b.analyzer + " results for video " + std::to_string(b.video) + " (claiming node " + b.node + ")";
  auto holder = check_holder(self, b.video, b.epoch, what, false);
  if (!holder)
    return holder.error();
  const std::string& name = **holder;  // never the batch's own `node` field
  auto listed = st.store->analyzers_of(b.video);
  if (!listed)
    return storage_error(listed.error());
  if (!*listed)
    return refuse(self,
                  refusal{errc::not_found, refusal_key::bad_batch, "no video " + std::to_string(b.video)}, what);
  const auto& analyzers = **listed;
  if (std::find(analyzers.begin(), analyzers.end(), b.analyzer) == analyzers.end())
    return refuse(self,
                  refusal{errc::invalid_request, refusal_key::bad_batch,
                          "video " + std::to_string(b.video) + " has no analyzer " + b.analyzer},
                  what);
  if (auto verdict = st.gate->check_batch(b, probed_frames(st, name, b.video)))
    return refuse(self, *verdict, what);
  b.node = name;
  if (!st.group) {
    auto tx = st.store->begin();
    if (!tx)
      return storage_error(tx.error());
    st.group.emplace(std::move(*tx));
    st.group_opened_ns = st.clock.now_ns();
  }
  auto mark = st.store->upsert(b);  // a savepoint of its own: a failed batch rolls back alone
  if (!mark) {
    if (!st.store->in_transaction())
      fail_group(st, mark.error());  // SQLite rolled the whole group back (an I/O error)
    return storage_error(mark.error());
  }
  batch_ack ack;
  ack.video = b.video;
  ack.analyzer = b.analyzer;
  ack.watermark = *mark;
  ack.stored = b.frames.size();
  return ack;
}

caf::result<batch_ack> handle_batch(coord_ptr self, result_batch& b) {
  auto& st = self->state;
  if (st.options.metrics)
    st.options.metrics->result_messages.Increment();
  const uint64_t upsert_ns = st.clock.now_ns();
  auto ack = store_batch(self, b);
  if (!ack) {
    if (st.group && st.grouped.empty())
      st.group.reset();  // nothing in it: no transaction left open
    return std::move(ack.error());
  }
  grouped_batch g;
  g.one = self->make_response_promise<batch_ack>();
  g.outcomes.outcomes.push_back({std::move(*ack), caf::error{}});
  g.upsert_ns.push_back(upsert_ns);
  auto promise = g.one;
  st.grouped.push_back(std::move(g));
  group_or_commit(self);
  return promise;
}

caf::result<batch_outcomes> handle_batches(coord_ptr self, result_batches& m) {
  auto& st = self->state;
  if (st.options.metrics)
    st.options.metrics->result_messages.Increment();
  if (const auto limit = st.gate->limits().max_batches_per_message; m.batches.size() > limit)
    return refuse(self,
                  refusal{errc::over_limit, "max_batches_per_message",
                          std::to_string(m.batches.size()) + " result batches in one message is over the limit " +
                              "max_batches_per_message = " + std::to_string(limit)},
                  "a message of result batches");
  grouped_batch g;
  g.is_many = true;
  auto& outs = g.outcomes.outcomes;
  outs.reserve(m.batches.size());
  for (auto& b : m.batches) {
    g.upsert_ns.push_back(st.clock.now_ns());
    auto ack = store_batch(self, b);
    if (ack) {
      outs.push_back({std::move(*ack), caf::error{}});
      continue;
    }
    if (!st.store->in_transaction())  // the group was rolled back: this message's batches before too
      for (auto& o : outs)
        if (!o.error)
          o.error = ack.error();
    outs.push_back({batch_ack{b.video, b.analyzer, -1, 0}, std::move(ack.error())});
  }
  // After the batches: making the promise takes the request's sender, which they are checked against.
  g.many = self->make_response_promise<batch_outcomes>();
  auto promise = g.many;
  const bool any_stored = std::any_of(g.outcomes.outcomes.begin(), g.outcomes.outcomes.end(),
                                      [](const batch_outcome& o) { return !o.error; });
  if (!any_stored) {
    if (st.group && st.grouped.empty())
      st.group.reset();
    promise.deliver(std::move(g.outcomes));
    return promise;
  }
  st.grouped.push_back(std::move(g));
  group_or_commit(self);
  return promise;
}

caf::result<caf::ok_atom> handle_report(coord_ptr self, const video_report& r) {
  auto& st = self->state;
  const std::string what = "a report on video " + std::to_string(r.video) + " (claiming node " + r.node + ")";
  if (const std::string* name = sender_node(self)) {
    // A registered node sends its unsent reports again until they are taken:
    // about a video that is gone (its job erased) there is nothing to record.
    auto row = st.store->video(r.video);
    if (!row)
      return storage_error(row.error());
    if (!*row) {
      spdlog::info("coordinator: node {} reports on video {}, which no longer exists; nothing to record",
                   *name, r.video);
      return caf::ok_atom::value;
    }
  }
  auto holder = check_holder(self, r.video, r.epoch, what, true);
  if (!holder)
    return holder.error();
  if (!*holder) {
    spdlog::info("coordinator: ignored report on video {} epoch {} from {}: not its current assignment",
                 r.video, r.epoch, peer_of(self));
    return caf::ok_atom::value;  // an older assignment: nothing to record
  }
  const std::string& name = **holder;
  if (auto v = st.gate->check_report(r))
    return refuse(self, *v, what);
  log_about(spdlog::level::info, about_video(r.video), "coordinator: node {} reports video {}: {}{}{}", name,
            r.video, to_string(r.outcome), r.error.empty() ? "" : ": ", r.error);
  carry_out(self, st.sched->on_report(r.video, r.epoch, name, r.outcome, r.error), &r);
  return caf::ok_atom::value;
}

// -- blobs: uploads, fetches, artifacts ----------------------------------------------------

caf::error blob_refused(coord_ptr self, const blob_error& e, const std::string& what) {
  if (e.code == errc::internal)
    spdlog::error("coordinator: {} from {}: {}", what, peer_of(self), e.message);
  else
    spdlog::warn("coordinator: refused {} from {}: {}", what, peer_of(self), e.message);
  return make_error(e.code, e.message);
}

caf::error no_blob_store() {
  return make_error(errc::invalid_request, "this coordinator has no blob store");
}

caf::result<upload_offer> handle_upload_begin(coord_ptr self, const upload_begin& b) {
  auto& st = self->state;
  if (!st.blobs)
    return no_blob_store();
  const std::string what =
      "an upload of " + std::to_string(b.size) + " bytes (" + b.sha256.substr(0, 80) + ")";
  auto r = st.blobs->begin(b.sha256, b.size);
  if (!r)
    return blob_refused(self, r.error(), what);
  upload_offer offer{r->upload, r->offset, r->complete};
  if (r->complete) {
    spdlog::info("coordinator: upload of {} ({}): already stored", b.sha256, b.name.substr(0, 255));
    return offer;
  }
  st.client_uploads.insert(r->upload);
  spdlog::info("coordinator: upload {} of {} ({}, {} bytes) from {} starts at byte {}", r->upload, b.sha256,
               b.name.substr(0, 255), b.size, peer_of(self), r->offset);
  return offer;
}

caf::result<uint64_t> handle_upload_chunk(coord_ptr self, const upload_chunk& c) {
  auto& st = self->state;
  if (!st.blobs)
    return no_blob_store();
  const std::string what = "a chunk of upload " + std::to_string(c.upload);
  // Only sessions that upload_begin opened: artifact sessions live in the
  // same store, and a client must not write into one.
  if (st.client_uploads.count(c.upload) == 0)
    return blob_refused(
        self, blob_error{errc::not_found, "no upload session " + std::to_string(c.upload) + "; begin again"},
        what);
  auto r = st.blobs->write(c.upload, c.offset, c.data.data(), c.data.size());
  if (!st.blobs->active(c.upload))
    st.client_uploads.erase(c.upload);
  if (!r)
    return blob_refused(self, r.error(), what);
  if (st.options.metrics)
    st.options.metrics->upload_bytes.Increment(static_cast<double>(c.data.size()));
  if (r->complete)
    spdlog::info("coordinator: upload {} complete: blob {} ({} bytes)", c.upload, r->sha256, r->offset);
  return r->offset;
}

caf::result<blob_chunk> handle_fetch(coord_ptr self, const std::string& sha256, uint64_t offset) {
  if (!self->state.blobs)
    return no_blob_store();
  auto r = self->state.blobs->read(sha256, offset);
  if (!r)
    return make_error(r.error().code, r.error().message);
  if (self->state.options.metrics)
    self->state.options.metrics->fetch_bytes.Increment(static_cast<double>(r->data.size()));
  return std::move(*r);
}

/// An artifact's name becomes a file name on the user's machine: one plain name, no path.
bool is_plain_name(const std::string& name) {
  return !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
         name.find_first_of(std::string("/\\\0", 3)) == std::string::npos;
}

caf::result<uint64_t> handle_artifact_chunk(coord_ptr self, const artifact_chunk& c) {
  auto& st = self->state;
  if (!st.blobs)
    return no_blob_store();
  const std::string what = "artifact " + c.analyzer + "/" + c.name.substr(0, 255) + " of video " +
                           std::to_string(c.video) + " epoch " + std::to_string(c.epoch);
  auto holder = check_holder(self, c.video, c.epoch, what, false);
  if (!holder)
    return holder.error();
  auto row = st.store->video(c.video);
  if (!row)
    return storage_error(row.error());
  if (!*row)
    return blob_refused(self, blob_error{errc::not_found, "no such video"}, what);
  const auto& analyzers = (*row)->analyzers;
  if (std::find(analyzers.begin(), analyzers.end(), c.analyzer) == analyzers.end())
    return blob_refused(self, blob_error{errc::invalid_request, "the video has no analyzer " + c.analyzer},
                        what);
  if (!is_plain_name(c.name))
    return blob_refused(
        self, blob_error{errc::invalid_request, "not a plain file name (1-255 bytes, no / or NUL)"}, what);
  const artifact_key key{c.video, c.epoch, c.analyzer, c.name};
  auto it = st.artifact_uploads.find(key);
  if (c.offset == 0) {  // a first chunk (again, if the node started over)
    if (it != st.artifact_uploads.end())
      st.blobs->abort(it->second.session);
    auto b = st.blobs->begin_unnamed(c.total);
    if (!b)
      return blob_refused(self, b.error(), what);
    it = st.artifact_uploads.insert_or_assign(key, artifact_upload{b->upload, c.total}).first;
  } else if (it == st.artifact_uploads.end() || it->second.total != c.total) {
    return blob_refused(self, blob_error{errc::not_found, "no upload of it in progress; send it from byte 0"},
                        what);
  }
  const uint64_t session = it->second.session;
  auto w = st.blobs->write(session, c.offset, c.data.data(), c.data.size());
  if (!st.blobs->active(session))
    st.artifact_uploads.erase(it);
  if (!w)
    return blob_refused(self, w.error(), what);
  if (!w->complete)
    return w->offset;
  if (auto r =
          st.store->put_artifact((*row)->job, artifact_row{c.video, c.analyzer, c.name, c.total, w->sha256});
      !r)
    return storage_error(r.error());
  spdlog::info("coordinator: stored {} ({} bytes, blob {}) from node {}", what, c.total, w->sha256, **holder);
  return w->offset;
}

caf::result<job_artifacts> handle_artifacts(coord_ptr self, uint64_t job) {
  auto& store = *self->state.store;
  auto state = store.state_of_job(job);
  if (!state)
    return storage_error(state.error());
  if (!*state)
    return no_job(job);
  auto rows = store.artifacts_of(job);
  if (!rows)
    return storage_error(rows.error());
  return job_artifacts{job, std::move(*rows)};
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
  if (auto ended = st.store->refresh_open_jobs(); !ended)
    spdlog::error("coordinator: cannot re-derive the jobs' states: {}", ended.error());
  else if (*ended > 0)
    spdlog::warn("coordinator: {} jobs whose videos had all ended were still marked open; now ended", *ended);
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

/// What the coordinator owns, moved into its state (spawn arguments must be copyable).
struct coordinator_parts {
  std::unique_ptr<job_store> store;
  std::unique_ptr<blob_store> blobs;
};

coordinator_actor::behavior_type coordinator(coord_ptr self, const std::shared_ptr<coordinator_parts>& parts,
                                             const coordinator_options& options) {
  auto& st = self->state;
  st.store = std::move(parts->store);
  st.blobs = std::move(parts->blobs);
  st.options = options;
  st.resume = std::make_unique<store_resume_points>(*st.store);
  st.sched = std::make_unique<scheduler>(st.clock, *st.resume);
  st.sched->set_pass_limit(placement_slice);
  st.gate = std::make_unique<admission>(st.clock, options.limits);
  if (options.tls_ca.empty())
    spdlog::warn(
        "coordinator: no cluster CA: node identities are not verified (any peer that reaches the port "
        "may register as a node under a name no live node holds)");
  guarded("coordinator: restore", [&] { restore(self); });
  guarded("coordinator: retention", [&] { sweep_if_due(self); });  // now, then every hour
  guarded("coordinator: metrics", [&] { refresh_state_metrics(st, true); });
  self->set_down_handler([self](caf::down_msg& dm) {
    settle(self);
    guarded("coordinator: down", [&] { handle_down(self, dm); });
  });
  return {
      [self](job_spec& s) {
        settle(self);
        return guarded("coordinator: submit", [&] { return handle_submit(self, s); });
      },
      [self](challenge_atom) {
        settle(self);
        return guarded("coordinator: challenge", [&] { return handle_challenge(self); });
      },
      [self](erase_atom, uint64_t job) {
        settle(self);
        return guarded("coordinator: erase", [&] { return handle_erase(self, job); });
      },
      [self](status_atom) {
        settle(self);
        return guarded("coordinator: status", [&] { return handle_status_all(self); });
      },
      [self](status_atom, uint64_t job) {
        settle(self);
        return guarded("coordinator: status", [&] { return job_status_reply(self, job); });
      },
      [self](results_atom, uint64_t job, bool frames) {
        settle(self);
        return guarded("coordinator: results", [&] { return handle_results(self, job, frames); });
      },
      [self](tree_atom) {
        settle(self);
        return guarded("coordinator: tree", [&]() -> caf::result<cluster_tree> { return handle_tree(self); });
      },
      [self](nodes_atom) {
        settle(self);
        return guarded("coordinator: nodes",
                       [&]() -> caf::result<cluster_nodes> { return handle_nodes(self); });
      },
      [self](cancel_atom, uint64_t job) {
        settle(self);
        return guarded("coordinator: cancel", [&] { return handle_cancel(self, job); });
      },
      [self](node_info& info, node_actor& handle) {
        settle(self);
        return guarded("coordinator: register", [&] { return handle_register(self, info, handle); });
      },
      [self](result_batch& b) {
        return guarded("coordinator: results batch", [&] { return handle_batch(self, b); });
      },
      [self](result_batches& m) {
        return guarded("coordinator: results batches", [&] { return handle_batches(self, m); });
      },
      [self](video_report& r) {
        settle(self);
        return guarded("coordinator: report", [&] { return handle_report(self, r); });
      },
      [self](upload_begin& b) {
        settle(self);
        return guarded("coordinator: upload begin", [&] { return handle_upload_begin(self, b); });
      },
      [self](upload_chunk& c) {
        settle(self);
        return guarded("coordinator: upload chunk", [&] { return handle_upload_chunk(self, c); });
      },
      [self](fetch_atom, std::string& sha256, uint64_t offset) {
        settle(self);
        return guarded("coordinator: fetch", [&] { return handle_fetch(self, sha256, offset); });
      },
      [self](artifact_chunk& c) {
        settle(self);
        return guarded("coordinator: artifact chunk", [&] { return handle_artifact_chunk(self, c); });
      },
      [self](artifacts_atom, uint64_t job) {
        settle(self);
        return guarded("coordinator: artifacts", [&] { return handle_artifacts(self, job); });
      },
      [self](node_status& s) {
        settle(self);
        guarded("coordinator: node status", [&] { handle_node_status(self, s); });
      },
      [self](tick_atom) {
        settle(self);
        guarded("coordinator: tick", [&] { handle_tick(self); });
      },
  };
}

}  // namespace

coordinator_actor spawn_coordinator(caf::actor_system& sys, std::unique_ptr<job_store> store,
                                    coordinator_options options, std::unique_ptr<blob_store> blobs) {
  // The stores move into the actor's state through a shared holder (spawn
  // arguments must be copyable).
  auto parts = std::make_shared<coordinator_parts>(coordinator_parts{std::move(store), std::move(blobs)});
  return sys.spawn<caf::detached>(coordinator, std::move(parts), std::move(options));
}

}  // namespace framehive
