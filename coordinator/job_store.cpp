#include "coordinator/job_store.hpp"

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>

namespace framehive {

namespace {

/// One prepared statement; finalized by its destructor.
class stmt {
 public:
  stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK)
      throw std::runtime_error(std::string("sqlite prepare: ") + sqlite3_errmsg(db) + " in: " + sql);
  }
  ~stmt() { sqlite3_finalize(s_); }
  stmt(const stmt&) = delete;
  stmt& operator=(const stmt&) = delete;

  stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  stmt& bind(int i, uint64_t v) { return bind(i, static_cast<int64_t>(v)); }
  stmt& bind(int i, uint32_t v) { return bind(i, static_cast<int64_t>(v)); }
  stmt& bind(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
  }
  stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  bool step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW)
      return true;
    if (rc != SQLITE_DONE)
      throw std::runtime_error(std::string("sqlite step: ") + sqlite3_errmsg(db_));
    return false;
  }
  void run() {
    step();
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  double dbl(int c) const { return sqlite3_column_double(s_, c); }
  std::string text(int c) const {
    auto* p = sqlite3_column_text(s_, c);
    return p ? reinterpret_cast<const char*>(p) : "";
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v)
    s += (s.empty() ? "" : ",") + x;
  return s;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> v;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      if (!cur.empty())
        v.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty())
    v.push_back(cur);
  return v;
}

const char* schema = R"sql(
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
CREATE TABLE IF NOT EXISTS jobs(
  id INTEGER PRIMARY KEY, created REAL, state TEXT NOT NULL, analyzers TEXT NOT NULL,
  stride INTEGER NOT NULL, finished REAL);
CREATE TABLE IF NOT EXISTS videos(
  id INTEGER PRIMARY KEY, job INTEGER NOT NULL REFERENCES jobs(id), input TEXT NOT NULL,
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
CREATE TABLE IF NOT EXISTS results(
  video INTEGER NOT NULL, analyzer TEXT NOT NULL, frame INTEGER NOT NULL, pts INTEGER NOT NULL,
  node TEXT, data TEXT NOT NULL, PRIMARY KEY(video, analyzer, frame)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS summaries(
  video INTEGER NOT NULL, analyzer TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY(video, analyzer));
CREATE TABLE IF NOT EXISTS events(
  id INTEGER PRIMARY KEY, ts REAL, job INTEGER, video INTEGER, kind TEXT, message TEXT);
)sql";

}  // namespace

result<std::unique_ptr<job_store>, std::string> job_store::open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return "cannot create data directory " + dir + ": " + ec.message();
  const std::string path = dir + "/framehive.db";
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    std::string msg = "cannot open " + path + ": " + (db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return msg;
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<job_store> s(new job_store(db));
  try {
    s->exec(schema);
  } catch (const std::exception& e) {
    return std::string("cannot initialise ") + path + ": " + e.what();
  }
  return s;
}

job_store::~job_store() { sqlite3_close(db_); }

void job_store::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw std::runtime_error("sqlite: " + msg);
  }
}

uint64_t job_store::create_job(const job_spec& spec) {
  exec("BEGIN");
  stmt j(db_, "INSERT INTO jobs(created, state, analyzers, stride) VALUES(?, 'queued', ?, ?)");
  j.bind(1, now_s()).bind(2, join(spec.analyzers)).bind(3, spec.stride).run();
  const auto job = static_cast<uint64_t>(sqlite3_last_insert_rowid(db_));
  stmt v(db_, "INSERT INTO videos(job, input, state) VALUES(?, ?, 'queued')");
  for (const auto& in : spec.inputs)
    v.bind(1, job).bind(2, in).run();
  exec("COMMIT");
  return job;
}

std::vector<video_row> job_store::query_videos(const std::string& where, int64_t arg) {
  std::string sql =
      "SELECT v.id, v.job, v.input, v.state, COALESCE(v.node,''), v.epoch, v.start_frame, v.frames_total, "
      "v.frames_decoded, v.decode_errors, COALESCE(v.error,''), j.analyzers, j.stride "
      "FROM videos v JOIN jobs j ON j.id = v.job WHERE " + where + " ORDER BY v.id";
  stmt q(db_, sql.c_str());
  if (where.find('?') != std::string::npos)
    q.bind(1, arg);
  std::vector<video_row> out;
  while (q.step()) {
    video_row r;
    r.id = static_cast<uint64_t>(q.i64(0));
    r.job = static_cast<uint64_t>(q.i64(1));
    r.input = q.text(2);
    r.state = q.text(3);
    r.node = q.text(4);
    r.epoch = static_cast<uint64_t>(q.i64(5));
    r.start_frame = q.i64(6);
    r.frames_total = q.i64(7);
    r.frames_decoded = q.i64(8);
    r.decode_errors = q.i64(9);
    r.error = q.text(10);
    r.analyzers = split(q.text(11));
    r.stride = static_cast<uint32_t>(q.i64(12));
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<video_row> job_store::videos_of(uint64_t job) {
  return query_videos("v.job = ?", static_cast<int64_t>(job));
}

std::optional<video_row> job_store::video(uint64_t id) {
  auto v = query_videos("v.id = ?", static_cast<int64_t>(id));
  if (v.empty())
    return std::nullopt;
  return v.front();
}

std::vector<video_row> job_store::unfinished_videos() {
  return query_videos("v.state IN ('queued', 'running')", 0);
}

std::vector<uint64_t> job_store::job_ids() {
  stmt q(db_, "SELECT id FROM jobs ORDER BY id");
  std::vector<uint64_t> ids;
  while (q.step())
    ids.push_back(static_cast<uint64_t>(q.i64(0)));
  return ids;
}

void job_store::assign(uint64_t video, const std::string& node, uint64_t epoch, int64_t start_frame) {
  exec("BEGIN");
  stmt u(db_, "UPDATE videos SET state='running', node=?, epoch=?, start_frame=? WHERE id=?");
  u.bind(1, node).bind(2, epoch).bind(3, start_frame).bind(4, video).run();
  stmt a(db_, "INSERT OR REPLACE INTO assignments(video, epoch, node, start_frame, created) VALUES(?,?,?,?,?)");
  a.bind(1, video).bind(2, epoch).bind(3, node).bind(4, start_frame).bind(5, now_s()).run();
  stmt j(db_, "UPDATE jobs SET state='running' WHERE id=(SELECT job FROM videos WHERE id=?) AND state='queued'");
  j.bind(1, video).run();
  exec("COMMIT");
}

void job_store::requeue(uint64_t video, int64_t start_frame, const std::string& why) {
  stmt u(db_, "UPDATE videos SET state='queued', node=NULL, start_frame=? WHERE id=? AND state='running'");
  u.bind(1, start_frame).bind(2, video).run();
  auto v = this->video(video);
  event(v ? v->job : 0, video, "requeued", why);
}

void job_store::finish_video(const video_report& r) {
  stmt u(db_,
         "UPDATE videos SET state=?, frames_total=?, frames_decoded=?, decode_errors=?, error=? "
         "WHERE id=? AND state='running'");
  u.bind(1, std::string(r.ok ? "done" : "failed"))
      .bind(2, r.frames_total)
      .bind(3, r.frames_decoded)
      .bind(4, r.decode_errors)
      .bind(5, r.error)
      .bind(6, r.video)
      .run();
}

void job_store::cancel_job(uint64_t job) {
  stmt u(db_, "UPDATE videos SET state='cancelled' WHERE job=? AND state IN ('queued','running')");
  u.bind(1, job).run();
  stmt j(db_, "UPDATE jobs SET state='cancelled', finished=? WHERE id=? AND state IN ('queued','running')");
  j.bind(1, now_s()).bind(2, job).run();
}

std::string job_store::job_state(uint64_t job) {
  stmt q(db_, "SELECT state FROM jobs WHERE id=?");
  q.bind(1, job);
  return q.step() ? q.text(0) : "";
}

std::string job_store::refresh_job_state(uint64_t job) {
  std::string current = job_state(job);
  if (current == "cancelled" || current.empty())
    return current;
  // Called on every video report: three index lookups, not a pass over the
  // job's videos (a job of 10,000 videos would make that quadratic).
  auto any = [this, job](const char* states) {
    const std::string sql = std::string("SELECT 1 FROM videos WHERE job=? AND state IN (") + states + ") LIMIT 1";
    stmt q(db_, sql.c_str());
    q.bind(1, job);
    return q.step();
  };
  const bool all_finished = !any("'queued', 'running'");
  std::string state = all_finished ? (any("'failed'") ? "failed" : "done") : (any("'running'") ? "running" : current);
  if (state != current) {
    stmt u(db_, "UPDATE jobs SET state=?, finished=? WHERE id=?");
    u.bind(1, state).bind(2, all_finished ? now_s() : 0.0).bind(3, job).run();
  }
  return state;
}

int64_t job_store::upsert(const result_batch& b, uint32_t stride) {
  exec("BEGIN");
  try {
    stmt ins(db_,
             "INSERT INTO results(video, analyzer, frame, pts, node, data) VALUES(?,?,?,?,?,?) "
             "ON CONFLICT(video, analyzer, frame) DO UPDATE SET pts=excluded.pts, node=excluded.node, "
             "data=excluded.data");
    for (const auto& f : b.frames)
      ins.bind(1, b.video).bind(2, b.analyzer).bind(3, f.frame).bind(4, f.pts).bind(5, b.node).bind(6, f.data).run();
    int64_t wm = watermark(b.video, b.analyzer);
    // Frames of one consumer arrive in order; the watermark advances while
    // the batch continues where the stored frames end.
    if (!b.frames.empty() && b.frames.front().frame <= wm + static_cast<int64_t>(std::max<uint32_t>(1, stride)))
      wm = std::max(wm, b.frames.back().frame);
    stmt w(db_,
           "INSERT INTO watermarks(video, analyzer, watermark) VALUES(?,?,?) "
           "ON CONFLICT(video, analyzer) DO UPDATE SET watermark=MAX(watermark, excluded.watermark)");
    w.bind(1, b.video).bind(2, b.analyzer).bind(3, wm).run();
    exec("COMMIT");
    return wm;
  } catch (...) {
    exec("ROLLBACK");
    throw;
  }
}

int64_t job_store::watermark(uint64_t video, const std::string& analyzer) {
  stmt q(db_, "SELECT watermark FROM watermarks WHERE video=? AND analyzer=?");
  q.bind(1, video).bind(2, analyzer);
  return q.step() ? q.i64(0) : -1;
}

std::vector<analysis::stored_frame> job_store::frames(uint64_t video, const std::string& analyzer) {
  stmt q(db_, "SELECT frame, data FROM results WHERE video=? AND analyzer=? ORDER BY frame");
  q.bind(1, video).bind(2, analyzer);
  std::vector<analysis::stored_frame> out;
  while (q.step())
    out.push_back({q.i64(0), nlohmann::json::parse(q.text(1), nullptr, false)});
  return out;
}

void job_store::summarize_video(uint64_t video) {
  auto v = this->video(video);
  if (!v)
    return;
  for (const auto& a : v->analyzers) {
    auto s = analysis::summarize(a, frames(video, a));
    stmt u(db_, "INSERT OR REPLACE INTO summaries(video, analyzer, data) VALUES(?,?,?)");
    u.bind(1, video).bind(2, a).bind(3, s.dump()).run();
  }
}

nlohmann::json job_store::results_json(uint64_t job, bool with_frames) {
  nlohmann::json out;
  out["job"] = job;
  out["state"] = job_state(job);
  out["videos"] = nlohmann::json::array();
  for (const auto& v : videos_of(job)) {
    nlohmann::json jv;
    jv["video"] = v.id;
    jv["input"] = v.input;
    jv["state"] = v.state;
    jv["node"] = v.node.empty() ? nlohmann::json(nullptr) : nlohmann::json(v.node);
    jv["frames_total"] = v.frames_total;
    jv["frames_decoded"] = v.frames_decoded;
    jv["decode_errors"] = v.decode_errors;
    jv["error"] = v.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(v.error);
    jv["analyzers"] = nlohmann::json::object();
    for (const auto& a : v.analyzers) {
      nlohmann::json ja;
      stmt s(db_, "SELECT data FROM summaries WHERE video=? AND analyzer=?");
      s.bind(1, v.id).bind(2, a);
      nlohmann::json summary = s.step() ? nlohmann::json::parse(s.text(0), nullptr, false)
                                        : analysis::summarize(a, frames(v.id, a));
      ja["frames_processed"] = summary.value("frames_processed", 0);
      ja["mean_ms"] = summary.value("mean_ms", 0.0);
      ja["p95_ms"] = summary.value("p95_ms", 0.0);
      ja["summary"] = summary;
      // Which nodes produced these results: affinity means exactly one per assignment.
      stmt n(db_, "SELECT DISTINCT node FROM results WHERE video=? AND analyzer=? ORDER BY node");
      n.bind(1, v.id).bind(2, a);
      ja["result_nodes"] = nlohmann::json::array();
      while (n.step())
        ja["result_nodes"].push_back(n.text(0));
      if (with_frames) {
        nlohmann::json frames = nlohmann::json::array();
        stmt q(db_, "SELECT frame, pts, data FROM results WHERE video=? AND analyzer=? ORDER BY frame");
        q.bind(1, v.id).bind(2, a);
        while (q.step()) {
          auto f = nlohmann::json::parse(q.text(2), nullptr, false);
          if (!f.is_object())
            f = nlohmann::json::object();
          f["frame"] = q.i64(0);
          f["pts"] = q.i64(1);
          frames.push_back(std::move(f));
        }
        ja["frames"] = std::move(frames);
      }
      jv["analyzers"][a] = std::move(ja);
    }
    out["videos"].push_back(std::move(jv));
  }
  return out;
}

void job_store::event(uint64_t job, uint64_t video, const std::string& kind, const std::string& message) {
  stmt e(db_, "INSERT INTO events(ts, job, video, kind, message) VALUES(?,?,?,?,?)");
  e.bind(1, now_s()).bind(2, job).bind(3, video).bind(4, kind).bind(5, message).run();
}

}  // namespace framehive
