#include "coordinator/job_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <type_traits>

#include "analysis/result_codec.hpp"
#include "analysis/result_keys.hpp"

namespace framehive {

namespace {

// -- schema and statements ------------------------------------------------------------

// Per-frame results (frame_results) are one row per (video, analyzer, frame):
// the analyzer is its place in the job's list (0, 1, ...), the data the
// compact form of analysis/result_codec.hpp, the nodes that produced them a
// row per batch's node in result_nodes, and a frame's time pts x its video's
// time base (time_bases), so a `stats` row is about 35 bytes. Databases made
// before that have a `results` table with JSON text; open() converts it.
//
// Inputs are BLOBs: bytes, stored and returned exactly. Databases created
// before that have `input TEXT`; SQLite stores what it is given in either
// column, and rows are read as bytes, so both kinds of databases work.
constexpr const char* schema = R"sql(
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
CREATE TABLE IF NOT EXISTS jobs(
  id INTEGER PRIMARY KEY, created REAL, state TEXT NOT NULL, analyzers TEXT NOT NULL,
  stride INTEGER NOT NULL, finished REAL);
CREATE TABLE IF NOT EXISTS videos(
  id INTEGER PRIMARY KEY, job INTEGER NOT NULL REFERENCES jobs(id), input BLOB NOT NULL,
  state TEXT NOT NULL, node TEXT, epoch INTEGER NOT NULL DEFAULT 0, start_frame INTEGER NOT NULL DEFAULT 0,
  frames_total INTEGER NOT NULL DEFAULT 0, frames_decoded INTEGER NOT NULL DEFAULT 0,
  decode_errors INTEGER NOT NULL DEFAULT 0, error TEXT);
CREATE INDEX IF NOT EXISTS videos_by_job_state ON videos(job, state);
CREATE TABLE IF NOT EXISTS assignments(
  video INTEGER NOT NULL, epoch INTEGER NOT NULL, node TEXT NOT NULL, start_frame INTEGER NOT NULL,
  created REAL, PRIMARY KEY(video, epoch));
CREATE TABLE IF NOT EXISTS watermarks(
  video INTEGER NOT NULL, analyzer TEXT NOT NULL, watermark INTEGER NOT NULL,
  PRIMARY KEY(video, analyzer));
CREATE TABLE IF NOT EXISTS coverage(
  video INTEGER NOT NULL, analyzer TEXT NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL,
  PRIMARY KEY(video, analyzer, first));
CREATE TABLE IF NOT EXISTS frame_results(
  video INTEGER NOT NULL, analyzer INTEGER NOT NULL, frame INTEGER NOT NULL, pts INTEGER NOT NULL,
  data BLOB NOT NULL, PRIMARY KEY(video, analyzer, frame)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS result_nodes(
  video INTEGER NOT NULL, analyzer INTEGER NOT NULL, node TEXT NOT NULL,
  PRIMARY KEY(video, analyzer, node)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS time_bases(video INTEGER PRIMARY KEY, time_base REAL NOT NULL);
CREATE TABLE IF NOT EXISTS summaries(
  video INTEGER NOT NULL, analyzer TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY(video, analyzer));
CREATE TABLE IF NOT EXISTS events(
  id INTEGER PRIMARY KEY, ts REAL, job INTEGER, video INTEGER, kind TEXT, message TEXT);
CREATE INDEX IF NOT EXISTS events_by_job ON events(job);
CREATE INDEX IF NOT EXISTS jobs_by_state_finished ON jobs(state, finished);
CREATE TABLE IF NOT EXISTS artifacts(
  job INTEGER NOT NULL, video INTEGER NOT NULL, analyzer TEXT NOT NULL, name BLOB NOT NULL,
  size INTEGER NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY(video, analyzer, name));
CREATE INDEX IF NOT EXISTS artifacts_by_job ON artifacts(job);
CREATE INDEX IF NOT EXISTS artifacts_by_sha ON artifacts(sha256);
CREATE TABLE IF NOT EXISTS job_detect(
  job INTEGER PRIMARY KEY, classes BLOB NOT NULL, network BLOB NOT NULL, weights BLOB NOT NULL,
  names BLOB NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, scale REAL NOT NULL, mean TEXT NOT NULL,
  swap_rb INTEGER NOT NULL, threshold REAL NOT NULL, nms REAL NOT NULL);
)sql";

constexpr const char* sql_insert_job =
    "INSERT INTO jobs(created, state, analyzers, stride) VALUES(?, ?, ?, ?)";
constexpr const char* sql_insert_video = "INSERT INTO videos(job, input, state) VALUES(?, ?, ?)";
// A job's detect options (job_spec::detect), when it has any: its model's
// files are inputs too ("blob:SHA256/NAME"), so they count as references.
constexpr const char* sql_insert_detect =
    "INSERT INTO job_detect(job, classes, network, weights, names, width, height, scale, mean, swap_rb, threshold, "
    "nms) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr const char* sql_detect_of_job =
    "SELECT classes, network, weights, names, width, height, scale, mean, swap_rb, threshold, nms "
    "FROM job_detect WHERE job = ?";
constexpr const char* sql_videos_of_job =
    "SELECT v.id, v.job, v.input, v.state, COALESCE(v.node,''), v.epoch, v.start_frame, v.frames_total, "
    "v.frames_decoded, v.decode_errors, COALESCE(v.error,''), j.analyzers, j.stride "
    "FROM videos v JOIN jobs j ON j.id = v.job WHERE v.job = ? ORDER BY v.id";
constexpr const char* sql_video_by_id =
    "SELECT v.id, v.job, v.input, v.state, COALESCE(v.node,''), v.epoch, v.start_frame, v.frames_total, "
    "v.frames_decoded, v.decode_errors, COALESCE(v.error,''), j.analyzers, j.stride "
    "FROM videos v JOIN jobs j ON j.id = v.job WHERE v.id = ?";
constexpr const char* sql_unfinished_videos =
    "SELECT v.id, v.job, v.input, v.state, COALESCE(v.node,''), v.epoch, v.start_frame, v.frames_total, "
    "v.frames_decoded, v.decode_errors, COALESCE(v.error,''), j.analyzers, j.stride "
    "FROM videos v JOIN jobs j ON j.id = v.job "
    "WHERE v.state IN ('queued', 'running') ORDER BY v.id";
constexpr const char* sql_job_ids = "SELECT id FROM jobs ORDER BY id";
constexpr const char* sql_job_state = "SELECT state FROM jobs WHERE id = ?";
constexpr const char* sql_assign_video =
    "UPDATE videos SET state = 'running', node = ?, epoch = ?, start_frame = ? WHERE id = ?";
constexpr const char* sql_insert_assignment =
    "INSERT OR REPLACE INTO assignments(video, epoch, node, start_frame, created) VALUES(?, ?, ?, ?, ?)";
constexpr const char* sql_job_running =
    "UPDATE jobs SET state = 'running' WHERE id = (SELECT job FROM videos WHERE id = ?) AND state = 'queued'";
constexpr const char* sql_requeue_video =
    "UPDATE videos SET state = 'queued', node = NULL, start_frame = ? WHERE id = ? AND state = 'running'";
constexpr const char* sql_requeue_event =
    "INSERT INTO events(ts, job, video, kind, message) "
    "SELECT ?, job, id, 'requeued', ? FROM videos WHERE id = ?";
constexpr const char* sql_finish_video =
    "UPDATE videos SET state = ?, frames_total = ?, frames_decoded = ?, decode_errors = ?, error = ? "
    "WHERE id = ? AND state = 'running'";
constexpr const char* sql_cancel_videos =
    "UPDATE videos SET state = 'cancelled' WHERE job = ? AND state IN ('queued', 'running')";
constexpr const char* sql_cancel_job =
    "UPDATE jobs SET state = 'cancelled', finished = ? WHERE id = ? AND state IN ('queued', 'running')";
constexpr const char* sql_any_unfinished =
    "SELECT 1 FROM videos WHERE job = ? AND state IN ('queued', 'running') LIMIT 1";
constexpr const char* sql_any_failed = "SELECT 1 FROM videos WHERE job = ? AND state = 'failed' LIMIT 1";
constexpr const char* sql_any_running = "SELECT 1 FROM videos WHERE job = ? AND state = 'running' LIMIT 1";
constexpr const char* sql_set_job_state = "UPDATE jobs SET state = ?, finished = ? WHERE id = ?";
constexpr const char* sql_upsert_result =
    "INSERT INTO frame_results(video, analyzer, frame, pts, data) VALUES(?, ?, ?, ?, ?) "
    "ON CONFLICT(video, analyzer, frame) DO UPDATE SET pts = excluded.pts, data = excluded.data";
constexpr const char* sql_add_result_node =
    "INSERT OR IGNORE INTO result_nodes(video, analyzer, node) VALUES(?, ?, ?)";
constexpr const char* sql_add_time_base = "INSERT OR IGNORE INTO time_bases(video, time_base) VALUES(?, ?)";
constexpr const char* sql_time_base = "SELECT time_base FROM time_bases WHERE video = ?";
constexpr const char* sql_add_coverage =
    "INSERT INTO coverage(video, analyzer, first, last) VALUES(?, ?, ?, ?) "
    "ON CONFLICT(video, analyzer, first) DO UPDATE SET last = MAX(last, excluded.last)";
constexpr const char* sql_coverage =
    "SELECT first, last FROM coverage WHERE video = ? AND analyzer = ? ORDER BY first";
constexpr const char* sql_drop_coverage =
    "DELETE FROM coverage WHERE video = ? AND analyzer = ? AND first <= ?";
constexpr const char* sql_set_watermark =
    "INSERT INTO watermarks(video, analyzer, watermark) VALUES(?, ?, ?) "
    "ON CONFLICT(video, analyzer) DO UPDATE SET watermark = MAX(watermark, excluded.watermark)";
constexpr const char* sql_watermark = "SELECT watermark FROM watermarks WHERE video = ? AND analyzer = ?";
constexpr const char* sql_frame_rows =
    "SELECT frame, pts, data FROM frame_results WHERE video = ? AND analyzer = ? ORDER BY frame";
constexpr const char* sql_result_nodes =
    "SELECT node FROM result_nodes WHERE video = ? AND analyzer = ? ORDER BY node";
// Converting a database made before frame_results (see the schema).
constexpr const char* sql_has_old_results =
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'results'";
constexpr const char* sql_old_results =
    "SELECT video, analyzer, frame, pts, COALESCE(node, ''), data FROM results ORDER BY video, analyzer, frame";
constexpr const char* sql_insert_converted =
    "INSERT OR IGNORE INTO frame_results(video, analyzer, frame, pts, data) VALUES(?, ?, ?, ?, ?)";
constexpr const char* sql_put_summary =
    "INSERT OR REPLACE INTO summaries(video, analyzer, data) VALUES(?, ?, ?)";
constexpr const char* sql_summary = "SELECT data FROM summaries WHERE video = ? AND analyzer = ?";
constexpr const char* sql_insert_event =
    "INSERT INTO events(ts, job, video, kind, message) VALUES(?, ?, ?, ?, ?)";
constexpr const char* sql_assignment_node = "SELECT node FROM assignments WHERE video = ? AND epoch = ?";
constexpr const char* sql_open_jobs = "SELECT id FROM jobs WHERE state IN ('queued', 'running') ORDER BY id";
constexpr const char* sql_jobs_finished_before =
    "SELECT id FROM jobs WHERE state IN ('done', 'failed', 'cancelled') AND finished IS NOT NULL "
    "AND finished < ? ORDER BY finished, id";
// Erasing a job: what hangs off its videos first, then the videos, its events, the job.
constexpr const char* sql_jobs_by_state = "SELECT state, COUNT(*) FROM jobs GROUP BY state";
constexpr const char* sql_videos_by_state = "SELECT state, COUNT(*) FROM videos GROUP BY state";
constexpr const char* sql_put_artifact =
    "INSERT OR REPLACE INTO artifacts(job, video, analyzer, name, size, sha256) VALUES(?, ?, ?, ?, ?, ?)";
constexpr const char* sql_artifacts_of_job =
    "SELECT video, analyzer, name, size, sha256 FROM artifacts WHERE job = ? ORDER BY video, analyzer, name";
constexpr const char* sql_artifacts_of_video =
    "SELECT video, analyzer, name, size, sha256 FROM artifacts WHERE video = ? ORDER BY analyzer, name";
constexpr const char* sql_blob_referenced =
    "SELECT 1 WHERE EXISTS(SELECT 1 FROM artifacts WHERE sha256 = ?1) "
    "OR EXISTS(SELECT 1 FROM videos WHERE substr(input, 1, 70) = CAST(?2 AS BLOB)) "
    "OR EXISTS(SELECT 1 FROM job_detect WHERE substr(network, 1, 70) = CAST(?2 AS BLOB) "
    "OR substr(weights, 1, 70) = CAST(?2 AS BLOB) OR substr(names, 1, 70) = CAST(?2 AS BLOB))";
constexpr const char* sql_erase_job_rows[] = {
    "DELETE FROM artifacts WHERE job = ?",
    "DELETE FROM frame_results WHERE video IN (SELECT id FROM videos WHERE job = ?)",
    "DELETE FROM result_nodes WHERE video IN (SELECT id FROM videos WHERE job = ?)",
    "DELETE FROM time_bases WHERE video IN (SELECT id FROM videos WHERE job = ?)",
    "DELETE FROM watermarks WHERE video IN (SELECT id FROM videos WHERE job = ?)",
    "DELETE FROM coverage WHERE video IN (SELECT id FROM videos WHERE job = ?)",
    "DELETE FROM summaries WHERE video IN (SELECT id FROM videos WHERE job = ?)",
    "DELETE FROM assignments WHERE video IN (SELECT id FROM videos WHERE job = ?)",
    "DELETE FROM events WHERE job = ?",
    "DELETE FROM job_detect WHERE job = ?",
    "DELETE FROM videos WHERE job = ?",
    "DELETE FROM jobs WHERE id = ?",
};

// -- helpers ----------------------------------------------------------------------------

/// Wall time for the records' timestamps (never for decisions).
double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v)
    s += (s.empty() ? "" : ",") + x;
  return s;
}

/// A job's analyzers as stored: texts checked at submission, and the job's
/// stride (already folded into the texts of jobs submitted since sampling per
/// analyzer; older rows have plain names and their stride here). A text this
/// build cannot read keeps its name and takes every frame.
std::vector<analysis::analyzer_spec> read_specs(const std::vector<std::string>& texts, uint32_t stride) {
  std::vector<analysis::analyzer_spec> out;
  for (const auto& t : texts) {
    if (auto spec = analysis::parse_analyzer(t, stride))
      out.push_back(std::move(*spec));
    else
      out.push_back({t.substr(0, t.find_first_of("/@")), {}});
  }
  return out;
}

/// detect's classes and mean as text: class names are lines of a names file
/// (never a newline), means are numbers written back exactly (%.17g).
std::string join_lines(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v)
    s += (s.empty() ? "" : "\n") + x;
  return s;
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> v;
  std::size_t from = 0;
  while (from < s.size()) {
    const std::size_t end = std::min(s.find('\n', from), s.size());
    v.push_back(s.substr(from, end - from));
    from = end + 1;
  }
  return v;
}

std::string numbers_text(const std::vector<double>& v) {
  std::string s;
  char buf[32];
  for (double x : v) {
    std::snprintf(buf, sizeof(buf), "%.17g", x);
    s += (s.empty() ? "" : ",") + std::string(buf);
  }
  return s;
}

std::vector<double> numbers_of(const std::string& s) {
  std::vector<double> v;
  std::size_t from = 0;
  while (from < s.size()) {
    const std::size_t end = std::min(s.find(',', from), s.size());
    v.push_back(std::strtod(s.substr(from, end - from).c_str(), nullptr));
    from = end + 1;
  }
  return v;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> v;
  std::size_t from = 0;
  while (from <= s.size()) {
    const std::size_t comma = std::min(s.find(',', from), s.size());
    if (comma > from)
      v.push_back(s.substr(from, comma - from));
    from = comma + 1;
  }
  return v;
}

/// A string bound as a BLOB: bytes that are not text (inputs, messages that quote them).
struct blob {
  const std::string& bytes;
};

std::string sqlite_error(sqlite3* db, std::string_view what) {
  return "job store: " + std::string(what) + ": " + sqlite3_errmsg(db);
}

}  // namespace

// -- query: one use of a prepared statement --------------------------------------------

/// Binds on the way in, steps, reads columns; resets the statement when
/// destroyed (so a cached statement never holds a read transaction open).
class job_store::query {
 public:
  query(sqlite3* db, sqlite3_stmt* s, bool* busy) noexcept : db_(db), s_(s), busy_(busy) {}
  query(query&& o) noexcept : db_(o.db_), s_(o.s_), busy_(o.busy_), bind_rc_(o.bind_rc_) { o.s_ = nullptr; }
  query& operator=(query&&) = delete;
  ~query() {
    if (!s_)
      return;
    if (busy_) {  // cached: keep it for the next use
      sqlite3_reset(s_);
      sqlite3_clear_bindings(s_);
      *busy_ = false;
    } else {
      sqlite3_finalize(s_);
    }
  }

  void bind(int i, int64_t v) { check(sqlite3_bind_int64(s_, i, v)); }
  void bind(int i, uint64_t v) { bind(i, static_cast<int64_t>(v)); }
  void bind(int i, uint32_t v) { bind(i, static_cast<int64_t>(v)); }
  void bind(int i, int v) { bind(i, static_cast<int64_t>(v)); }
  void bind(int i, double v) { check(sqlite3_bind_double(s_, i, v)); }
  void bind(int i, const std::string& v) {
    check(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  void bind(int i, const char* v) { check(sqlite3_bind_text(s_, i, v, -1, SQLITE_TRANSIENT)); }
  /// Bytes that outlive the step: bound as a BLOB without a copy.
  void bind_static(int i, blob v) {
    check(sqlite3_bind_blob(s_, i, v.bytes.empty() ? "" : v.bytes.data(), static_cast<int>(v.bytes.size()),
                            SQLITE_STATIC));
  }

  /// Ready to step again with the bindings kept (rebind what changes).
  void rewind() { sqlite3_reset(s_); }
  void bind(int i, blob v) {
    // A zero-length blob with a null pointer would bind NULL; the columns are NOT NULL.
    check(sqlite3_bind_blob(s_, i, v.bytes.empty() ? "" : v.bytes.data(), static_cast<int>(v.bytes.size()),
                            SQLITE_TRANSIENT));
  }

  template <class... Args>
  void bind_all(const Args&... args) {
    int i = 0;
    (bind(++i, args), ...);
  }

  /// True for a row, false at the end.
  store_result<bool> step() {
    if (bind_rc_ != SQLITE_OK)
      return std::string("job store: bind: ") + sqlite3_errstr(bind_rc_) + " in: " + sqlite3_sql(s_);
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW)
      return true;
    if (rc == SQLITE_DONE)
      return false;
    return sqlite_error(db_, std::string("step: ") + sqlite3_sql(s_));
  }

  /// Steps through every row, calling `on_row()` for each; it may return
  /// false to stop early. The one loop over sqlite3_step in the store.
  template <class F>
  store_status each_row(F&& on_row) {
    for (;;) {
      auto r = step();
      if (!r)
        return r.error();
      if (!*r)
        return unit{};
      if constexpr (std::is_same_v<decltype(on_row()), bool>) {
        if (!on_row())
          return unit{};
      } else {
        on_row();
      }
    }
  }

  /// Steps to the end (for statements that return no rows).
  store_status finish() {
    return each_row([] {});
  }

  int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  double f64(int c) const { return sqlite3_column_double(s_, c); }
  /// The column's bytes exactly (TEXT or BLOB, embedded NULs included).
  std::string bytes(int c) const { return std::string(view(c)); }
  /// The same without a copy, valid until the next step.
  std::string_view view(int c) const {
    const void* p = sqlite3_column_blob(s_, c);
    const int n = sqlite3_column_bytes(s_, c);
    return p ? std::string_view(static_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string_view();
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK)
      bind_rc_ = rc;
  }

  sqlite3* db_;
  sqlite3_stmt* s_;
  bool* busy_;  ///< the cache's flag, or nullptr for a statement of its own
  int bind_rc_ = SQLITE_OK;
};

namespace {

/// A video row from the columns of sql_video_*; an unknown state is an error for this row.
store_result<video_row> read_video(const std::string& state_text, video_row r) {
  if (!from_string(state_text, r.state))
    return "job store: video " + std::to_string(r.id) + " has an unknown state '" + state_text + "'";
  return r;
}

}  // namespace

// -- transaction -----------------------------------------------------------------------

namespace {

/// Steps a prepared statement that returns no rows, once; SQLITE_DONE is success.
int step_once(sqlite3_stmt* s) {
  const int rc = sqlite3_step(s);
  sqlite3_reset(s);
  return rc;
}

}  // namespace

transaction::~transaction() {
  if (!db_)
    return;
  // If SQLite already rolled the whole transaction back (some errors do), the
  // savepoint is gone and these fail harmlessly.
  step_once(sp_->rollback);
  step_once(sp_->release);
  ++*sp_->rollbacks;
}

store_status transaction::commit() {
  if (!db_)
    return std::string("job store: commit of a finished transaction");
  if (step_once(sp_->release) != SQLITE_DONE)
    return sqlite_error(db_, "commit");  // still open: the destructor rolls back
  db_ = nullptr;
  return unit{};
}

// -- opening ---------------------------------------------------------------------------

store_result<std::unique_ptr<job_store>> job_store::open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return "cannot create data directory " + dir + ": " + ec.message();
  const std::string path = dir + "/framehive.db";
  sqlite3* db = nullptr;
  // SQLite counts its allocations under a global mutex unless told not to;
  // nothing here reads those counts. Before the first connection is opened.
  static const bool memstatus_off = [] { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK; }();
  (void)memstatus_off;
  // No mutex: one thread at a time uses a store (the coordinator actor's;
  // CAF runs an actor on one thread at a time), so SQLite's serialized mode
  // would only add a lock and an unlock to every call.
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = "cannot open " + path + ": " + (db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return msg;
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<job_store> s(new job_store(db));
  if (auto r = s->exec(schema); !r)
    return "cannot initialise " + path + ": " + r.error();
  for (auto [sql, stmt] : {std::pair{"SAVEPOINT framehive_tx", &s->savepoint_},
                           std::pair{"RELEASE framehive_tx", &s->savepoint_end_.release},
                           std::pair{"ROLLBACK TO framehive_tx", &s->savepoint_end_.rollback}})
    if (sqlite3_prepare_v2(db, sql, -1, stmt, nullptr) != SQLITE_OK)
      return "cannot initialise " + path + ": " + sqlite_error(db, sql);
  s->savepoint_end_.rollbacks = &s->rollbacks_;
  if (auto r = s->convert_old_results(); !r)
    return "cannot convert the results of " + path + ": " + r.error();
  return s;
}

store_status job_store::convert_old_results() {
  {
    auto has = prepare(sql_has_old_results);
    if (!has)
      return has.error();
    auto found = has->step();
    if (!found)
      return found.error();
    if (!*found)
      return unit{};
  }
  auto tx = begin();
  if (!tx)
    return tx.error();
  {
    auto rows = prepare(sql_old_results);
    if (!rows)
      return rows.error();
    store_status failed = unit{};
    auto walked = rows->each_row([&] {
      const auto video = static_cast<uint64_t>(rows->i64(0));
      const std::string analyzer = rows->bytes(1);
      const int64_t frame = rows->i64(2), pts = rows->i64(3);
      auto number = analyzer_number(video, analyzer);
      if (!number)
        return true;  // a row of a video or analyzer that is gone: nothing reads it
      auto data = nlohmann::json::parse(rows->view(5), nullptr, false);
      if (!data.is_object())
        data = nlohmann::json::object();
      // The frame's time becomes the video's time base (t / pts of a frame past 0).
      if (auto t = data.find(analysis::keys::t); t != data.end()) {
        if (t->is_number() && pts > 0 && t->get<double>() > 0)
          if (auto r = run(sql_add_time_base, video, t->get<double>() / static_cast<double>(pts)); !r)
            failed = r;
        data.erase(t);
      }
      const std::string bytes = analysis::encode_result(data);
      if (auto r = run(sql_insert_converted, video, *number, frame, pts, blob{bytes}); !r)
        failed = r;
      if (auto r = run(sql_add_result_node, video, *number, rows->bytes(4)); !r)
        failed = r;
      return static_cast<bool>(failed);
    });
    if (!walked)
      return walked.error();
    if (!failed)
      return failed;
  }
  if (auto r = exec("DROP TABLE results"); !r)
    return r;
  return tx->commit();
}

job_store::~job_store() {
  for (auto& [sql, c] : cache_)
    sqlite3_finalize(c.stmt);
  for (sqlite3_stmt* st : {savepoint_, savepoint_end_.release, savepoint_end_.rollback})
    sqlite3_finalize(st);
  sqlite3_close(db_);
}

store_status job_store::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = "job store: " + std::string(err ? err : sqlite3_errmsg(db_));
    sqlite3_free(err);
    return msg;
  }
  return unit{};
}

bool job_store::in_transaction() const noexcept {
  return sqlite3_get_autocommit(db_) == 0;
}

store_result<transaction> job_store::begin() {
  if (step_once(savepoint_) != SQLITE_DONE)
    return sqlite_error(db_, "begin");
  return transaction{db_, &savepoint_end_};
}

store_result<job_store::query> job_store::prepare(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &s, nullptr) != SQLITE_OK)
      return sqlite_error(db_, "prepare: " + std::string(sql));
    it = cache_.emplace(sql, cached_statement{s, false}).first;
  }
  // A statement is cached once; a second use while the first is still
  // stepping (a query inside a loop over the same query) gets its own.
  cached_statement& c = it->second;
  if (!c.busy) {
    c.busy = true;
    return query{db_, c.stmt, &c.busy};
  }
  sqlite3_stmt* own = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &own, nullptr) != SQLITE_OK)
    return sqlite_error(db_, "prepare: " + std::string(sql));
  return query{db_, own, nullptr};
}

template <class... Args>
store_status job_store::run(std::string_view sql, const Args&... args) {
  auto q = prepare(sql);
  if (!q)
    return q.error();
  q->bind_all(args...);
  return q->finish();
}

// -- jobs and videos -------------------------------------------------------------------

store_result<created_job> job_store::create_job(const job_spec& spec) {
  auto tx = begin();
  if (!tx)
    return tx.error();
  if (auto r = run(sql_insert_job, now_s(), to_string(job_state::queued), join(spec.analyzers), spec.stride);
      !r)
    return r.error();
  created_job c;
  c.job = static_cast<uint64_t>(sqlite3_last_insert_rowid(db_));
  if (const auto& d = spec.detect; !d.empty()) {
    const auto& m = d.model;
    if (auto r = run(sql_insert_detect, c.job, blob{join_lines(d.classes)}, blob{m.network}, blob{m.weights},
                     blob{m.names}, m.width, m.height, m.scale, numbers_text(m.mean), static_cast<int>(m.swap_rb),
                     m.threshold, m.nms);
        !r)
      return r.error();
  }
  const std::string queued = to_string(video_state::queued);
  {
    // One statement for every input (a job may have 10,000): job and state bound once.
    auto q = prepare(sql_insert_video);
    if (!q)
      return q.error();
    q->bind_all(c.job, blob{std::string()}, queued);
    c.videos.reserve(spec.inputs.size());
    for (const auto& in : spec.inputs) {
      q->bind(2, blob{in});
      if (auto r = q->finish(); !r)
        return r.error();
      q->rewind();
      c.videos.push_back(static_cast<uint64_t>(sqlite3_last_insert_rowid(db_)));
    }
  }
  if (auto r = tx->commit(); !r)
    return r.error();
  return c;
}

store_result<std::vector<video_row>> job_store::query_videos(std::string_view sql,
                                                             std::optional<int64_t> arg) {
  auto q = prepare(sql);
  if (!q)
    return q.error();
  if (arg)
    q->bind_all(*arg);
  std::vector<video_row> out;
  std::string unreadable;  // a row this build cannot read (unknown state text)
  auto walked = q->each_row([&] {
    video_row r;
    r.id = static_cast<uint64_t>(q->i64(0));
    r.job = static_cast<uint64_t>(q->i64(1));
    r.input = q->bytes(2);
    r.node = q->bytes(4);
    r.epoch = static_cast<uint64_t>(q->i64(5));
    r.start_frame = q->i64(6);
    r.frames_total = q->i64(7);
    r.frames_decoded = q->i64(8);
    r.decode_errors = q->i64(9);
    r.error = q->bytes(10);
    r.specs = read_specs(split(q->bytes(11)), static_cast<uint32_t>(std::max<int64_t>(1, q->i64(12))));
    for (const auto& a : r.specs)
      r.analyzers.push_back(a.name);
    auto row = read_video(q->bytes(3), std::move(r));
    if (!row) {
      unreadable = row.error();
      return false;
    }
    out.push_back(std::move(*row));
    return true;
  });
  if (!walked)
    return walked.error();
  if (!unreadable.empty())
    return unreadable;
  std::map<uint64_t, analysis::detect_options> by_job;
  for (auto& r : out) {
    auto it = by_job.find(r.job);
    if (it == by_job.end()) {
      auto d = detect_of(r.job);
      if (!d)
        return d.error();
      it = by_job.emplace(r.job, std::move(*d)).first;
    }
    r.detect = it->second;
  }
  return out;
}

store_result<analysis::detect_options> job_store::detect_of(uint64_t job) {
  auto q = prepare(sql_detect_of_job);
  if (!q)
    return q.error();
  q->bind_all(job);
  analysis::detect_options d;
  auto walked = q->each_row([&] {
    auto& m = d.model;
    d.classes = split_lines(q->bytes(0));
    m.network = q->bytes(1);
    m.weights = q->bytes(2);
    m.names = q->bytes(3);
    m.width = static_cast<uint32_t>(q->i64(4));
    m.height = static_cast<uint32_t>(q->i64(5));
    m.scale = q->f64(6);
    m.mean = numbers_of(q->bytes(7));
    m.swap_rb = q->i64(8) != 0;
    m.threshold = q->f64(9);
    m.nms = q->f64(10);
    return false;
  });
  if (!walked)
    return walked.error();
  return d;
}

store_result<std::vector<video_row>> job_store::videos_of(uint64_t job) {
  return query_videos(sql_videos_of_job, static_cast<int64_t>(job));
}

store_result<std::optional<video_row>> job_store::video(uint64_t id) {
  auto v = query_videos(sql_video_by_id, static_cast<int64_t>(id));
  if (!v)
    return v.error();
  if (v->empty())
    return std::optional<video_row>{};
  return std::optional<video_row>{std::move(v->front())};
}

store_result<std::vector<video_row>> job_store::unfinished_videos() {
  return query_videos(sql_unfinished_videos, std::nullopt);
}

namespace {

/// The first column of every row of `q`, as ids.
template <class Query>
store_result<std::vector<uint64_t>> ids_of(Query& q) {
  std::vector<uint64_t> ids;
  if (auto r = q.each_row([&] { ids.push_back(static_cast<uint64_t>(q.i64(0))); }); !r)
    return r.error();
  return ids;
}

}  // namespace

store_result<std::vector<uint64_t>> job_store::job_ids() {
  auto q = prepare(sql_job_ids);
  if (!q)
    return q.error();
  return ids_of(*q);
}

store_result<std::optional<job_state>> job_store::state_of_job(uint64_t job) {
  auto q = prepare(sql_job_state);
  if (!q)
    return q.error();
  q->bind_all(job);
  auto row = q->step();
  if (!row)
    return row.error();
  if (!*row)
    return std::optional<job_state>{};
  const std::string text = q->bytes(0);
  job_state s = job_state::queued;
  if (!from_string(text, s))
    return "job store: job " + std::to_string(job) + " has an unknown state '" + text + "'";
  return std::optional<job_state>{s};
}

store_status job_store::assign(uint64_t video, const std::string& node, uint64_t epoch, int64_t start_frame) {
  auto tx = begin();
  if (!tx)
    return tx.error();
  if (auto r = run(sql_assign_video, node, epoch, start_frame, video); !r)
    return r;
  if (auto r = run(sql_insert_assignment, video, epoch, node, start_frame, now_s()); !r)
    return r;
  if (auto r = run(sql_job_running, video); !r)
    return r;
  return tx->commit();
}

store_status job_store::requeue(uint64_t video, int64_t start_frame, const std::string& why) {
  auto tx = begin();
  if (!tx)
    return tx.error();
  if (auto r = run(sql_requeue_video, start_frame, video); !r)
    return r;
  if (auto r = run(sql_requeue_event, now_s(), blob{why}, video); !r)
    return r;
  return tx->commit();
}

store_status job_store::finish_video(uint64_t video, const video_end& e) {
  return run(sql_finish_video, to_string(e.state), e.frames_total, e.frames_decoded, e.decode_errors,
             blob{e.error}, video);
}

store_status job_store::cancel_job(uint64_t job) {
  auto tx = begin();
  if (!tx)
    return tx.error();
  if (auto r = run(sql_cancel_videos, job); !r)
    return r;
  if (auto r = run(sql_cancel_job, now_s(), job); !r)
    return r;
  return tx->commit();
}

store_result<job_state> job_store::refresh_job_state(uint64_t job) {
  auto current = state_of_job(job);
  if (!current)
    return current.error();
  if (!*current)
    return "job store: no job " + std::to_string(job);
  if (**current == job_state::cancelled)
    return job_state::cancelled;
  // Called on every video report: three index lookups, not a pass over the
  // job's videos (a job of 10,000 videos would make that quadratic).
  auto any = [this, job](const char* sql) -> store_result<bool> {
    auto q = prepare(sql);
    if (!q)
      return q.error();
    q->bind_all(job);
    return q->step();
  };
  auto unfinished = any(sql_any_unfinished);
  if (!unfinished)
    return unfinished.error();
  auto probe = any(*unfinished ? sql_any_running : sql_any_failed);
  if (!probe)
    return probe.error();
  job_state next = **current;
  if (!*unfinished)
    next = *probe ? job_state::failed : job_state::done;
  else if (*probe)
    next = job_state::running;
  if (next != **current)
    if (auto r = run(sql_set_job_state, to_string(next), *unfinished ? 0.0 : now_s(), job); !r)
      return r.error();
  return next;
}

store_result<bool> job_store::erase_job(uint64_t job) {
  auto state = state_of_job(job);
  if (!state)
    return state.error();
  if (!*state)
    return false;
  auto tx = begin();
  if (!tx)
    return tx.error();
  {
    auto q = prepare(sql_any_unfinished);
    if (!q)
      return q.error();
    q->bind_all(job);
    auto unfinished = q->step();
    if (!unfinished)
      return unfinished.error();
    if (*unfinished)
      return "job store: job " + std::to_string(job) + " still has queued or running videos";
  }
  for (const char* sql : sql_erase_job_rows)
    if (auto r = run(sql, job); !r)
      return r.error();
  if (auto r = tx->commit(); !r)
    return r.error();
  forget_memos();  // its videos' ids may be given again
  analyzer_lists_.clear();
  return true;
}

store_result<std::size_t> job_store::refresh_open_jobs() {
  auto q = prepare(sql_open_jobs);
  if (!q)
    return q.error();
  auto ids = ids_of(*q);
  if (!ids)
    return ids.error();
  std::size_t ended = 0;
  for (uint64_t id : *ids) {
    auto now = refresh_job_state(id);
    if (!now)
      return now.error();
    ended += *now != job_state::queued && *now != job_state::running;
  }
  return ended;
}

store_result<std::vector<uint64_t>> job_store::jobs_finished_before(double wall_s) {
  auto q = prepare(sql_jobs_finished_before);
  if (!q)
    return q.error();
  q->bind_all(wall_s);
  return ids_of(*q);
}

store_result<std::pair<std::map<std::string, uint64_t>, std::map<std::string, uint64_t>>>
job_store::count_by_state() {
  std::pair<std::map<std::string, uint64_t>, std::map<std::string, uint64_t>> out;
  for (auto [sql, counts] :
       {std::pair{sql_jobs_by_state, &out.first}, std::pair{sql_videos_by_state, &out.second}}) {
    auto q = prepare(sql);
    if (!q)
      return q.error();
    if (auto r =
            q->each_row([&, counts = counts] { (*counts)[q->bytes(0)] = static_cast<uint64_t>(q->i64(1)); });
        !r)
      return r.error();
  }
  return out;
}

store_result<std::optional<std::string>> job_store::assignment_node(uint64_t video, uint64_t epoch) {
  auto q = prepare(sql_assignment_node);
  if (!q)
    return q.error();
  q->bind_all(video, epoch);
  auto row = q->step();
  if (!row)
    return row.error();
  if (!*row)
    return std::optional<std::string>{};
  return std::optional<std::string>{q->bytes(0)};
}

// -- results ---------------------------------------------------------------------------

namespace {

/// The frames a batch accounts for (see result_batch); nullopt if none.
std::optional<std::pair<int64_t, int64_t>> coverage_of(const result_batch& b) {
  if (b.covered_through >= 0)
    return std::make_pair(std::max<int64_t>(0, b.covered_from), b.covered_through);
  if (b.frames.empty())
    return std::nullopt;
  return std::make_pair(b.frames.front().frame, b.frames.back().frame);
}

/// The sampling of `analyzer` in `v` (every frame if it is not one of v's).
sampling take_of(const video_row& v, const std::string& analyzer) {
  for (const auto& a : v.specs)
    if (a.name == analyzer)
      return a.take;
  return {};
}

}  // namespace

void job_store::forget_memos() {
  memos_.clear();
  time_base_known_.clear();
  memo_rollbacks_ = rollbacks_;
}

store_result<job_store::stream_memo*> job_store::memo(uint64_t video, const std::string& analyzer) {
  if (memo_rollbacks_ != rollbacks_ || memos_.size() >= max_memos)
    forget_memos();
  auto key = std::make_pair(video, analyzer);
  auto it = memos_.find(key);
  if (it == memos_.end()) {
    auto wm = watermark(video, analyzer);
    if (!wm)
      return wm.error();
    it = memos_.emplace(std::move(key), stream_memo{*wm, false, {}}).first;
  }
  return &it->second;
}

store_result<int64_t> job_store::upsert(const result_batch& b) {
  auto number = analyzer_number(b.video, b.analyzer);
  if (!number)
    return number.error();
  auto known = memo(b.video, b.analyzer);
  if (!known)
    return known.error();
  stream_memo& m = **known;
  auto tx = begin();
  if (!tx)
    return tx.error();
  {
    // One statement for the batch: the key's video and analyzer bound once,
    // each frame's bytes bound without a copy.
    auto q = prepare(sql_upsert_result);
    if (!q)
      return q.error();
    q->bind_all(b.video, *number, int64_t{0}, int64_t{0});
    for (const auto& f : b.frames) {
      q->bind(3, f.frame);
      q->bind(4, f.pts);
      q->bind_static(5, blob{f.data});
      if (auto r = q->finish(); !r)
        return r.error();
      q->rewind();
    }
  }
  // A memo changed here is void if this transaction rolls back (see memo()).
  if (!b.frames.empty()) {
    if (std::find(m.nodes.begin(), m.nodes.end(), b.node) == m.nodes.end()) {
      if (auto r = run(sql_add_result_node, b.video, *number, b.node); !r)
        return r.error();
      m.nodes.push_back(b.node);
    }
    if (b.time_base > 0 && !time_base_known_[b.video]) {
      if (auto r = run(sql_add_time_base, b.video, b.time_base); !r)
        return r.error();
      time_base_known_[b.video] = true;
    }
  }
  int64_t mark = m.watermark;
  // The watermark runs to the end of the run of coverages that starts at
  // frame 0. A batch after a gap (its predecessor is not stored yet) waits in
  // `coverage` until the one that fills the gap carries the mark over it.
  if (const auto covered = coverage_of(b); covered && covered->first > mark + 1) {
    if (auto r = run(sql_add_coverage, b.video, b.analyzer, covered->first, covered->second); !r)
      return r.error();
    m.no_coverage = false;
  } else if (covered) {
    mark = std::max(mark, covered->second);
    if (!m.no_coverage) {
      auto q = prepare(sql_coverage);
      if (!q)
        return q.error();
      q->bind_all(b.video, b.analyzer);
      bool absorbed = false, beyond = false;
      auto walked = q->each_row([&] {
        if (q->i64(0) > mark + 1) {
          beyond = true;  // after another gap: it stays
          return false;
        }
        mark = std::max(mark, q->i64(1));
        absorbed = true;
        return true;
      });
      if (!walked)
        return walked.error();
      if (absorbed)
        if (auto r = run(sql_drop_coverage, b.video, b.analyzer, mark + 1); !r)
          return r.error();
      m.no_coverage = !beyond;
    }
  }
  if (mark != m.watermark) {
    if (auto r = run(sql_set_watermark, b.video, b.analyzer, mark); !r)
      return r.error();
    m.watermark = mark;
  }
  if (auto r = tx->commit(); !r)
    return r.error();
  return mark;
}

store_result<int64_t> job_store::watermark(uint64_t video, const std::string& analyzer) {
  auto q = prepare(sql_watermark);
  if (!q)
    return q.error();
  q->bind_all(video, analyzer);
  auto row = q->step();
  if (!row)
    return row.error();
  return *row ? q->i64(0) : int64_t{-1};
}

store_result<int64_t> job_store::resume_frame(uint64_t video) {
  auto v = this->video(video);
  if (!v)
    return v.error();
  if (!*v)
    return "job store: no video " + std::to_string(video);
  int64_t lowest = -1;
  bool first = true;
  for (const auto& a : (*v)->analyzers) {
    auto wm = watermark(video, a);
    if (!wm)
      return wm;
    lowest = first ? *wm : std::min(lowest, *wm);
    first = false;
  }
  return std::max<int64_t>(0, lowest + 1);
}

store_result<const std::vector<std::string>*> job_store::analyzers_of(uint64_t video) {
  auto it = analyzer_lists_.find(video);
  if (it == analyzer_lists_.end()) {
    auto v = this->video(video);
    if (!v)
      return v.error();
    if (!*v)
      return static_cast<const std::vector<std::string>*>(nullptr);
    if (analyzer_lists_.size() >= max_cached_analyzer_lists)
      analyzer_lists_.clear();
    it = analyzer_lists_.emplace(video, std::move((*v)->analyzers)).first;
  }
  return &it->second;
}

store_result<int> job_store::analyzer_number(uint64_t video, const std::string& analyzer) {
  auto lists = analyzers_of(video);
  if (!lists)
    return lists.error();
  if (!*lists)
    return "job store: no video " + std::to_string(video);
  const auto& list = **lists;
  const auto at = std::find(list.begin(), list.end(), analyzer);
  if (at == list.end())
    return "job store: video " + std::to_string(video) + " has no analyzer " + analyzer;
  return static_cast<int>(at - list.begin());
}

store_result<double> job_store::time_base(uint64_t video) {
  auto q = prepare(sql_time_base);
  if (!q)
    return q.error();
  q->bind_all(video);
  auto row = q->step();
  if (!row)
    return row.error();
  return *row ? q->f64(0) : 0.0;
}

store_status job_store::each_frame(uint64_t video, const std::string& analyzer, analysis::decode_scope scope,
                                   const std::function<void(int64_t, int64_t, double, nlohmann::json)>& on_frame) {
  auto number = analyzer_number(video, analyzer);
  if (!number)
    return number.error();
  auto tb = time_base(video);
  if (!tb)
    return tb.error();
  auto q = prepare(sql_frame_rows);
  if (!q)
    return q.error();
  q->bind_all(video, *number);
  return q->each_row([&] {
    const int64_t pts = q->i64(1);
    // Bytes that are not a stored result (never written by a consumer: the
    // coordinator checks each batch) read as an empty object.
    auto data = analysis::decode_result(q->view(2), scope);
    on_frame(q->i64(0), pts, static_cast<double>(pts) * *tb,
             data ? std::move(*data) : nlohmann::json::object());
  });
}

store_result<std::vector<analysis::stored_frame>> job_store::frames(uint64_t video,
                                                                    const std::string& analyzer) {
  std::vector<analysis::stored_frame> out;
  // For summaries, which never read boxes.
  auto r = each_frame(video, analyzer, analysis::decode_scope::summary,
                      [&](int64_t frame, int64_t, double t, nlohmann::json data) {
                        out.push_back({frame, std::move(data), t});
                      });
  if (!r)
    return r.error();
  return out;
}

store_status job_store::summarize_video(uint64_t video) {
  auto v = this->video(video);
  if (!v)
    return v.error();
  if (!*v)
    return "job store: no video " + std::to_string(video);
  auto tx = begin();
  if (!tx)
    return tx.error();
  for (const auto& a : (*v)->specs) {
    auto f = frames(video, a.name);
    if (!f)
      return f.error();
    const std::string text = analysis::summary_to_text(analysis::summarize(a.name, *f, a.take));
    if (auto r = run(sql_put_summary, video, a.name, text); !r)
      return r;
  }
  return tx->commit();
}

// -- replies ---------------------------------------------------------------------------

store_result<std::optional<job_status>> job_store::status_of_job(uint64_t job) {
  auto state = state_of_job(job);
  if (!state)
    return state.error();
  if (!*state)
    return std::optional<job_status>{};
  auto videos = videos_of(job);
  if (!videos)
    return videos.error();
  job_status s;
  s.job = job;
  s.state = **state;
  for (auto& v : *videos) {
    video_status vs;
    vs.video = v.id;
    vs.input = std::move(v.input);
    vs.state = v.state;
    vs.node = std::move(v.node);
    vs.error = std::move(v.error);
    vs.frames_total = v.frames_total;
    vs.position = v.state == video_state::done ? v.frames_total : 0;
    vs.total = v.frames_total;
    s.videos.push_back(std::move(vs));
  }
  return std::optional<job_status>{std::move(s)};
}

store_result<analyzer_results> job_store::analyzer_results_of(const video_row& v, const std::string& analyzer,
                                                              bool with_frames) {
  analyzer_results out;
  out.analyzer = analyzer;
  auto q = prepare(sql_summary);
  if (!q)
    return q.error();
  q->bind_all(v.id, analyzer);
  auto stored = q->step();
  if (!stored)
    return stored.error();
  // Stored when the video finished; computed from the frames while it runs
  // (or if the stored text is not one this build reads).
  if (!*stored || !analysis::summary_from_text(q->bytes(0), out.summary)) {
    auto f = frames(v.id, analyzer);
    if (!f)
      return f.error();
    out.summary = analysis::summarize(analyzer, *f, take_of(v, analyzer));
  }
  // Which nodes produced these results: affinity means exactly one per assignment.
  auto number = analyzer_number(v.id, analyzer);
  if (!number)
    return number.error();
  auto nodes = prepare(sql_result_nodes);
  if (!nodes)
    return nodes.error();
  nodes->bind_all(v.id, *number);
  if (auto r = nodes->each_row([&] { out.result_nodes.push_back(nodes->bytes(0)); }); !r)
    return r.error();
  if (!with_frames)
    return out;
  auto r = each_frame(v.id, analyzer, analysis::decode_scope::all,
                      [&](int64_t frame, int64_t pts, double t, nlohmann::json data) {
                        out.frames.push_back(analysis::to_record(frame, pts, t, data));
                      });
  if (!r)
    return r.error();
  return out;
}

store_result<std::optional<job_results>> job_store::results_of_job(uint64_t job, bool with_frames) {
  auto state = state_of_job(job);
  if (!state)
    return state.error();
  if (!*state)
    return std::optional<job_results>{};
  auto videos = videos_of(job);
  if (!videos)
    return videos.error();
  job_results out;
  out.job = job;
  out.state = **state;
  for (auto& v : *videos) {
    video_results vr;
    vr.video = v.id;
    vr.state = v.state;
    vr.frames_total = v.frames_total;
    vr.frames_decoded = v.frames_decoded;
    vr.decode_errors = v.decode_errors;
    for (const auto& a : v.analyzers) {
      auto ar = analyzer_results_of(v, a, with_frames);
      if (!ar)
        return ar.error();
      vr.analyzers.push_back(std::move(*ar));
    }
    auto artifacts = artifacts_where(sql_artifacts_of_video, v.id);
    if (!artifacts)
      return artifacts.error();
    vr.artifacts = std::move(*artifacts);
    vr.input = std::move(v.input);
    vr.node = std::move(v.node);
    vr.error = std::move(v.error);
    out.videos.push_back(std::move(vr));
  }
  return std::optional<job_results>{std::move(out)};
}

// -- artifacts -------------------------------------------------------------------------

store_status job_store::put_artifact(uint64_t job, const artifact_row& a) {
  return run(sql_put_artifact, job, a.video, a.analyzer, blob{a.name}, a.size, a.sha256);
}

store_result<std::vector<artifact_row>> job_store::artifacts_where(std::string_view sql, uint64_t id) {
  auto q = prepare(sql);
  if (!q)
    return q.error();
  q->bind_all(id);
  std::vector<artifact_row> out;
  if (auto r = q->each_row([&] {
        artifact_row a;
        a.video = static_cast<uint64_t>(q->i64(0));
        a.analyzer = q->bytes(1);
        a.name = q->bytes(2);
        a.size = static_cast<uint64_t>(q->i64(3));
        a.sha256 = q->bytes(4);
        out.push_back(std::move(a));
      });
      !r)
    return r.error();
  return out;
}

store_result<std::vector<artifact_row>> job_store::artifacts_of(uint64_t job) {
  return artifacts_where(sql_artifacts_of_job, job);
}

store_result<bool> job_store::blob_referenced(const std::string& sha256) {
  auto q = prepare(sql_blob_referenced);
  if (!q)
    return q.error();
  const std::string input_prefix = "blob:" + sha256 + "/";
  q->bind_all(sha256, blob{input_prefix});
  return q->step();
}

store_status job_store::event(uint64_t job, uint64_t video, const std::string& kind,
                              const std::string& message) {
  return run(sql_insert_event, now_s(), job, video, kind, blob{message});
}

}  // namespace framehive
