#pragma once

// The durable truth of the cluster: jobs, videos, assignments, per-frame
// results (upserted by key, so a redelivered frame is stored once), watermarks,
// summaries and events, in one SQLite database in WAL mode. Only the
// coordinator actor writes it.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/messages.hpp"
#include "analysis/catalog.hpp"
#include "common/result.hpp"

struct sqlite3;

namespace framehive {

struct video_row {
  uint64_t id = 0;
  uint64_t job = 0;
  std::string input;
  std::string state;  ///< queued | running | done | failed | cancelled
  std::string node;
  uint64_t epoch = 0;
  int64_t start_frame = 0;
  int64_t frames_total = 0;
  int64_t frames_decoded = 0;
  int64_t decode_errors = 0;
  std::string error;
  std::vector<std::string> analyzers;
  uint32_t stride = 1;
};

class job_store {
 public:
  /// Opens (creating if needed) `dir`/framehive.db.
  static result<std::unique_ptr<job_store>, std::string> open(const std::string& dir);
  ~job_store();
  job_store(const job_store&) = delete;
  job_store& operator=(const job_store&) = delete;

  /// Inserts a job and one queued video per input; returns the job id.
  uint64_t create_job(const job_spec& spec);

  std::vector<video_row> videos_of(uint64_t job);
  std::optional<video_row> video(uint64_t id);
  /// Videos not finished yet (queued or running), oldest first.
  std::vector<video_row> unfinished_videos();
  std::vector<uint64_t> job_ids();

  void assign(uint64_t video, const std::string& node, uint64_t epoch, int64_t start_frame);
  void requeue(uint64_t video, int64_t start_frame, const std::string& why);
  void finish_video(const video_report& r);
  void cancel_job(uint64_t job);
  /// Recomputes a job's state from its videos.
  std::string refresh_job_state(uint64_t job);
  std::string job_state(uint64_t job);

  /// Stores a batch in one transaction; returns the new watermark.
  int64_t upsert(const result_batch& batch, uint32_t stride);
  int64_t watermark(uint64_t video, const std::string& analyzer);

  /// Summaries of every analyzer of a finished video, from the stored frames.
  void summarize_video(uint64_t video);

  /// The `framehive results` object (with per-frame results if `frames`).
  nlohmann::json results_json(uint64_t job, bool frames);

  void event(uint64_t job, uint64_t video, const std::string& kind, const std::string& message);

 private:
  explicit job_store(sqlite3* db) : db_(db) {}
  void exec(const char* sql);
  std::vector<video_row> query_videos(const std::string& where, int64_t arg);
  std::vector<analysis::stored_frame> frames(uint64_t video, const std::string& analyzer);

  sqlite3* db_ = nullptr;
};

}  // namespace framehive
