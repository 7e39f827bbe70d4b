#pragma once

// The coordinator's decisions, as a plain class: which video runs where and
// under which epoch. Events go in (a job was submitted, a node registered or
// was lost, a node reported on a video, a timer fired); the commands that
// follow come out, and the coordinator actor carries them out in order
// (writes the job store, sends messages, arms timers). No CAF actors, no
// SQLite, no wall time: time comes from the injected clock, and the one
// fact the scheduler reads from the job store (where a video resumes) comes
// through `resume_points`. So every rule below is unit-tested with a
// manual_clock in microseconds.
//
// Rules:
// - Queue: FIFO, but a video that no node may take (every node with room is
//   on its avoid-list) does not block the videos behind it. When no node has
//   room at all, the pass stops.
// - Placement: the node with the lowest running/cores that has room
//   (running < cores) and is not `full`. A node is full after it answered
//   retry_later (no shared memory for one more ring) until one of its videos
//   ends.
// - Avoid-lists: a video that escalated on a node (restart limit) is not
//   placed there again; when every registered node is on its list, it fails.
// - Epochs: every assignment has the video's epoch + 1; reports and result
//   batches count only for the current (video, epoch, node).
// - Restart grace: videos that were running when the coordinator stopped
//   wait up to `grace` for their node to re-register and claim them; then
//   (or as soon as their node registers without them) they are queued again.
// - Requeue: from resume_points::resume_frame (one past the lowest watermark
//   of the video's analyzers), with a new epoch when placed again.
// - Slices (set_pass_limit): a pass places at most that many videos; the rest
//   wait for the next pass, which a place_more command asks for. A submitted
//   job is not placed inline at all (on_submit only queues it), so the
//   submitter's answer does not wait for 10,000 assignments.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "actors/messages.hpp"
#include "common/clock.hpp"

namespace framehive {

/// How long videos that were running when the coordinator stopped wait for
/// their node to re-register and claim them.
inline constexpr std::chrono::seconds restart_grace{10};

/// How long a video waits before it is placed again after the coordinator
/// could not record its assignment (a storage error): retrying at once would
/// spin on a broken disk.
inline constexpr std::chrono::seconds assign_retry_delay{1};

/// The scheduler's one question to the job store.
class resume_points {
 public:
  virtual ~resume_points() = default;
  /// The first frame a new assignment of `video` has to store: one past the
  /// lowest watermark among its analyzers (0 when nothing is stored).
  virtual int64_t resume_frame(uint64_t video) = 0;
};

/// The commands the scheduler hands to the coordinator actor.
namespace sched {

/// Record the assignment (state running, epoch, start) and send it to the node.
struct assign {
  uint64_t video = 0;
  std::string node;
  uint64_t epoch = 0;
  int64_t start_frame = 0;
};

/// Record that the video waits for a node again, from `start_frame`.
struct requeue {
  uint64_t video = 0;
  int64_t start_frame = 0;
  std::string reason;
};

/// Tell `node` to stop the video (it was cancelled, or is no longer its).
struct cancel {
  std::string node;
  uint64_t video = 0;
};

/// Record the video's final state (done or failed).
struct finish {
  uint64_t video = 0;
  video_state state = video_state::done;
  std::string reason;  ///< empty unless failed
};

/// Call on_tick() at `at_ns` (on the scheduler's clock).
struct arm_tick {
  uint64_t at_ns = 0;
};

/// Call on_tick() again soon, after the events already waiting: queued videos
/// that the pass limit left for the next slice.
struct place_more {};

}  // namespace sched

using sched_command = std::variant<sched::assign, sched::requeue, sched::cancel, sched::finish,
                                   sched::arm_tick, sched::place_more>;
using sched_commands = std::vector<sched_command>;

/// A video as the job store has it at start: queued ones go to the queue,
/// running ones wait (grace) for their node.
struct restored_video {
  uint64_t video = 0;
  video_state state = video_state::queued;  ///< queued or running; others are ignored
  std::string node;
  uint64_t epoch = 0;
  int64_t start_frame = 0;
};

class scheduler {
 public:
  scheduler(const clock& clk, resume_points& resume, std::chrono::nanoseconds grace = restart_grace);

  /// At most `n` assignments per placement pass (0, the default: no limit).
  /// With a limit, a pass that stops at it ends with one place_more (none
  /// while one is outstanding), and on_submit places nothing itself: it
  /// queues the videos and asks for place_more.
  void set_pass_limit(std::size_t n) noexcept { pass_limit_ = n; }

  // -- events ------------------------------------------------------------------------

  /// After a (re)start: the store's unfinished videos, oldest first.
  sched_commands restore(const std::vector<restored_video>& videos);

  /// New videos (epoch 0, from frame 0), in submission order.
  sched_commands on_submit(const std::vector<uint64_t>& videos);

  /// A node registered (or registered again); `claimed` are the videos it
  /// still runs. Claims of videos that are not its current assignment are
  /// answered with a cancel.
  sched_commands on_node_registered(const std::string& node, uint32_t cores,
                                    const std::vector<uint64_t>& claimed);

  /// A node is gone: its videos are queued again.
  sched_commands on_node_lost(const std::string& node);

  /// A node's final word on a video; ignored (no commands) unless it is about
  /// the current assignment (see accepts()).
  sched_commands on_report(uint64_t video, uint64_t epoch, const std::string& node, video_outcome outcome,
                           const std::string& reason);

  /// An assignment was not confirmed (the node refused or did not answer, or
  /// the coordinator could not record it): queue the video again, placed no
  /// earlier than `retry_after` from now.
  sched_commands on_assign_failed(uint64_t video, uint64_t epoch, const std::string& reason,
                                  std::chrono::nanoseconds retry_after = std::chrono::nanoseconds{0});

  /// The videos of a cancelled job: forgotten; the nodes running them are told.
  sched_commands on_cancel(const std::vector<uint64_t>& videos);

  /// A timer armed by arm_tick fired, or a place_more is due: ends expired
  /// grace periods, places queued videos (the next slice).
  sched_commands on_tick();

  // -- queries -----------------------------------------------------------------------

  /// True if `video` is currently assigned to `node` under `epoch` (also while
  /// it waits for that node after a restart): its reports and results count.
  bool accepts(uint64_t video, uint64_t epoch, const std::string& node) const;

  /// Videos waiting for a node.
  std::size_t queued() const noexcept { return queue_.size(); }

  /// Videos assigned to `node` (0 if it is not registered).
  std::size_t running_on(const std::string& node) const;

  /// True if `node` refused a video for lack of shared memory and none of its videos ended since.
  bool is_full(const std::string& node) const;

 private:
  enum class phase : uint8_t {
    queued,    ///< in queue_
    assigned,  ///< running on `node`
    awaiting,  ///< was running on `node` before a coordinator restart; waits for it until `deadline_ns`
  };

  struct video_entry {
    phase ph = phase::queued;
    uint64_t epoch = 0;
    std::string node;
    int64_t start_frame = 0;
    uint64_t deadline_ns = 0;    ///< awaiting: when the grace ends
    uint64_t not_before_ns = 0;  ///< queued: not placed before this time
    std::set<std::string> avoid;
  };

  struct node_entry {
    uint32_t cores = 1;
    std::set<uint64_t> running;
    bool full = false;
  };

  /// One placement pass over the queue.
  void place(sched_commands& out);
  /// The least-loaded node with room that `v` does not avoid, or nullptr.
  const std::string* pick(const video_entry& v) const;
  void start(uint64_t id, video_entry& v, const std::string& node, sched_commands& out);
  /// Takes the video off its node (which is then no longer full).
  void release(uint64_t id, video_entry& v);
  void requeue(uint64_t id, video_entry& v, std::string reason, sched_commands& out);
  void finish(uint64_t id, video_state state, std::string reason, sched_commands& out);
  void arm(uint64_t at_ns, sched_commands& out);
  video_entry* current(uint64_t video, uint64_t epoch, const std::string& node);

  const clock& clock_;
  resume_points& resume_;
  std::chrono::nanoseconds grace_;
  std::map<uint64_t, video_entry> videos_;  ///< every video not finished
  std::deque<uint64_t> queue_;              ///< videos in phase queued, in order
  std::map<std::string, node_entry> nodes_;
  uint64_t tick_at_ = 0;  ///< the earliest armed tick not yet handled (0: none)
  std::size_t pass_limit_ = 0;  ///< assignments per pass (0: no limit)
  bool more_asked_ = false;     ///< a place_more is outstanding
};

}  // namespace framehive
