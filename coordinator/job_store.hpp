#pragma once

// The durable truth of the cluster: jobs, videos, assignments, per-frame
// results (upserted by key, so a redelivered frame is stored once), watermarks,
// summaries and events, in one SQLite database in WAL mode. Only the
// coordinator actor writes it.
//
// Nothing here throws: every fallible method returns a store_result whose
// error names what failed and SQLite's reason, and the caller decides. Inputs
// are bytes (a Linux path need not be UTF-8) and are stored as BLOBs exactly
// as given. States are stored as their to_string() text; a text this build
// does not know is an error for that row, never a crash.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "actors/messages.hpp"
#include "analysis/catalog.hpp"
#include "analysis/result_codec.hpp"
#include "common/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace framehive {

template <class T>
using store_result = result<T, std::string>;
using store_status = result<unit, std::string>;

struct video_row {
  uint64_t id = 0;
  uint64_t job = 0;
  std::string input;  ///< bytes, as submitted
  video_state state = video_state::queued;
  std::string node;
  uint64_t epoch = 0;
  int64_t start_frame = 0;
  int64_t frames_total = 0;
  int64_t frames_decoded = 0;
  int64_t decode_errors = 0;
  std::string error;
  std::vector<std::string> analyzers;            ///< names (KIND[.LABEL]): the keys of their results
  std::vector<analysis::analyzer_spec> specs;  ///< the same analyzers with the frames each takes
  analysis::detect_options detect{};           ///< the job's detect classes and model (job_spec::detect)
};

/// A new job and its videos, in input order.
struct created_job {
  uint64_t job = 0;
  std::vector<uint64_t> videos;
};

/// How a video ended, as recorded.
struct video_end {
  video_state state = video_state::done;  ///< done or failed
  std::string error;
  int64_t frames_total = 0;
  int64_t frames_decoded = 0;
  int64_t decode_errors = 0;
};

class job_store;

/// The writes between job_store::begin() and commit() land together or not at
/// all: a transaction destroyed without commit() rolls back. Transactions nest
/// (each is a savepoint), so a store method that uses one internally can run
/// inside a caller's.
class transaction {
 public:
  transaction(transaction&& other) noexcept : db_(other.db_), sp_(other.sp_) { other.db_ = nullptr; }
  transaction& operator=(transaction&&) = delete;
  transaction(const transaction&) = delete;
  transaction& operator=(const transaction&) = delete;
  ~transaction();

  /// Makes the writes permanent (or part of the enclosing transaction).
  store_status commit();

  /// The store's prepared RELEASE and ROLLBACK TO of its savepoint: a
  /// transaction per result batch should not parse SQL.
  struct statements {
    sqlite3_stmt* release = nullptr;
    sqlite3_stmt* rollback = nullptr;
    uint64_t* rollbacks = nullptr;  ///< counted up by each rollback (the store's memos are then void)
  };

 private:
  friend class job_store;
  transaction(sqlite3* db, const statements* sp) noexcept : db_(db), sp_(sp) {}
  sqlite3* db_;  ///< nullptr once committed or moved from
  const statements* sp_;
};

class job_store {
 public:
  /// Opens (creating if needed) `dir`/framehive.db.
  static store_result<std::unique_ptr<job_store>> open(const std::string& dir);
  ~job_store();
  job_store(const job_store&) = delete;
  job_store& operator=(const job_store&) = delete;

  store_result<transaction> begin();
  /// True while a transaction is open. An I/O error can make SQLite roll a
  /// whole transaction back: the writer of a group learns it here.
  bool in_transaction() const noexcept;

  // -- jobs and videos -------------------------------------------------------------------

  /// Inserts a job and one queued video per input.
  store_result<created_job> create_job(const job_spec& spec);

  store_result<std::vector<video_row>> videos_of(uint64_t job);
  /// nullopt if there is no such video.
  store_result<std::optional<video_row>> video(uint64_t id);
  /// Videos not finished yet (queued or running), oldest first.
  store_result<std::vector<video_row>> unfinished_videos();
  store_result<std::vector<uint64_t>> job_ids();
  /// nullopt if there is no such job.
  store_result<std::optional<job_state>> state_of_job(uint64_t job);

  store_status assign(uint64_t video, const std::string& node, uint64_t epoch, int64_t start_frame);
  /// Back to queued (if it was running), to resume from `start_frame`; logs an event.
  store_status requeue(uint64_t video, int64_t start_frame, const std::string& why);
  /// Records the end of a running video (nothing if it is not running).
  store_status finish_video(uint64_t video, const video_end& end);
  store_status cancel_job(uint64_t job);
  /// Recomputes a job's state from its videos and returns it.
  store_result<job_state> refresh_job_state(uint64_t job);
  /// Deletes a finished job with its videos, assignments, results,
  /// watermarks, summaries and events, in one transaction. false if there is
  /// no such job; an error (and nothing deleted) if a video of it is still
  /// queued or running.
  store_result<bool> erase_job(uint64_t job);
  /// Jobs that ended (done, failed, cancelled) before `wall_s` (seconds since
  /// the Unix epoch, as the rows record it), oldest first.
  store_result<std::vector<uint64_t>> jobs_finished_before(double wall_s);
  /// Re-derives the state of every queued or running job from its videos;
  /// returns how many turned out to be over. A repair at start: a job whose
  /// last video ended under a store older than one-transaction video ends.
  store_result<std::size_t> refresh_open_jobs();
  /// How many jobs and videos are in each state (state text -> count; states
  /// with none are absent), for the metrics.
  store_result<std::pair<std::map<std::string, uint64_t>, std::map<std::string, uint64_t>>> count_by_state();
  /// The node that held `video` under `epoch`; nullopt if it never had that assignment.
  store_result<std::optional<std::string>> assignment_node(uint64_t video, uint64_t epoch);

  // -- results ---------------------------------------------------------------------------
  /// The analyzers of `video`'s job, from a memo (they never change); nullptr
  /// if there is no such video. Valid until the next call into the store.
  store_result<const std::vector<std::string>*> analyzers_of(uint64_t video);

  /// Stores a batch in one transaction (idempotently: a frame stored twice is
  /// stored once); returns the new watermark: the end of the run of batch
  /// coverages (result_batch::covered_from..covered_through) from frame 0, so
  /// every frame up to it that the analyzer's sampling takes is stored.
  store_result<int64_t> upsert(const result_batch& batch);
  /// -1 if nothing is stored.
  store_result<int64_t> watermark(uint64_t video, const std::string& analyzer);
  /// Where a new assignment of `video` starts: one past the lowest watermark of its analyzers.
  store_result<int64_t> resume_frame(uint64_t video);

  /// Stores the summary of every analyzer of a video, from its stored frames.
  store_status summarize_video(uint64_t video);

  // -- replies ---------------------------------------------------------------------------

  /// A job and its videos as recorded (position: frames_total when done, else 0;
  /// the coordinator adds live progress). nullopt if there is no such job.
  store_result<std::optional<job_status>> status_of_job(uint64_t job);
  /// `framehive results` (per-frame records if `frames`). nullopt if there is no such job.
  store_result<std::optional<job_results>> results_of_job(uint64_t job, bool frames);

  store_status event(uint64_t job, uint64_t video, const std::string& kind, const std::string& message);

  // -- artifacts -------------------------------------------------------------------------

  /// Records a file an analyzer produced (its bytes are in the blob store);
  /// replaces the row of the same (video, analyzer, name). Erased with its job.
  store_status put_artifact(uint64_t job, const artifact_row& artifact);
  /// A job's artifacts, by video, analyzer and name (empty for an unknown job).
  store_result<std::vector<artifact_row>> artifacts_of(uint64_t job);
  /// True while an artifact row or a video input ("blob:SHA256/NAME") names the blob.
  store_result<bool> blob_referenced(const std::string& sha256);

 private:
  class query;

  explicit job_store(sqlite3* db) noexcept : db_(db) {}
  store_status exec(const char* sql);
  /// The cached statement for `sql` (a string literal: the cache keeps the view).
  store_result<query> prepare(std::string_view sql);
  template <class... Args>
  store_status run(std::string_view sql, const Args&... args);
  store_result<std::vector<video_row>> query_videos(std::string_view sql, std::optional<int64_t> arg);
  /// A job's detect options (empty if it gave none).
  store_result<analysis::detect_options> detect_of(uint64_t job);
  store_result<std::vector<analysis::stored_frame>> frames(uint64_t video, const std::string& analyzer);
  /// Calls `on_frame(frame, pts, t, data)` for each stored result of (video, analyzer), in frame order.
  store_status each_frame(uint64_t video, const std::string& analyzer, analysis::decode_scope scope,
                          const std::function<void(int64_t, int64_t, double, nlohmann::json)>& on_frame);
  /// `analyzer`'s place in the analyzers of `video`'s job: its results' key in frame_results.
  store_result<int> analyzer_number(uint64_t video, const std::string& analyzer);
  /// Seconds per pts unit of `video` (0 until a batch said).
  store_result<double> time_base(uint64_t video);
  /// Converts the `results` table of a database made before frame_results.
  store_status convert_old_results();
  store_result<std::vector<artifact_row>> artifacts_where(std::string_view sql, uint64_t id);
  store_result<analyzer_results> analyzer_results_of(const video_row& v, const std::string& analyzer,
                                                     bool frames);

  struct cached_statement {
    sqlite3_stmt* stmt = nullptr;
    bool busy = false;  ///< a query is using it
  };

  sqlite3* db_ = nullptr;
  sqlite3_stmt* savepoint_ = nullptr;
  transaction::statements savepoint_end_;
  std::unordered_map<std::string_view, cached_statement> cache_;  ///< keyed by the SQL literal
  /// Each video's analyzer names (its job's, which never change), for analyzer_number.
  std::unordered_map<uint64_t, std::vector<std::string>> analyzer_lists_;
  static constexpr std::size_t max_cached_analyzer_lists = 100'000;

  // -- what upsert knows of the stored state, so that a batch costs its rows,
  // one watermark write and its savepoint, not a read of what the batch
  // before it wrote. Void after any rollback (the store cannot tell whose),
  // and after a job is erased (its ids may come back).
  struct stream_memo {
    int64_t watermark = -1;
    bool no_coverage = false;        ///< known: no batch after a gap waits in `coverage`
    std::vector<std::string> nodes;  ///< in result_nodes already
  };
  store_result<stream_memo*> memo(uint64_t video, const std::string& analyzer);
  void forget_memos();
  std::map<std::pair<uint64_t, std::string>, stream_memo> memos_;
  std::unordered_map<uint64_t, bool> time_base_known_;
  uint64_t rollbacks_ = 0;       ///< counted by transactions that rolled back
  uint64_t memo_rollbacks_ = 0;  ///< rollbacks_ when the memos were last known good
  static constexpr std::size_t max_memos = 100'000;
};

}  // namespace framehive
