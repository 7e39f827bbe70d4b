// The job store against a real SQLite file in a temporary folder: what it
// keeps, what it refuses, and that a broken row or a failed write is an error
// value, never an exception or a half-written batch.

#include "coordinator/job_store.hpp"

#include "analysis/result_codec.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>

namespace framehive {
namespace {

class JobStore : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "framehive-store-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir = pattern;
    reopen();
  }

  void TearDown() override {
    store.reset();
    std::filesystem::remove_all(dir);
  }

  void reopen() {
    store.reset();
    auto s = job_store::open(dir);
    ASSERT_TRUE(s.ok()) << s.error();
    store = std::move(*s);
  }

  /// Runs SQL on the database file behind the store's back (another connection).
  void raw(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir + "/framehive.db").c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    const std::string msg = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << msg;
  }

  int64_t raw_count(const std::string& sql) {
    sqlite3* db = nullptr;
    sqlite3_open((dir + "/framehive.db").c_str(), &db);
    sqlite3_stmt* s = nullptr;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
      n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
  }

  created_job submit(std::vector<std::string> inputs, std::vector<std::string> analyzers = {"stats"},
                     uint32_t stride = 1) {
    job_spec spec;
    spec.inputs = std::move(inputs);
    spec.analyzers = std::move(analyzers);
    spec.stride = stride;
    auto c = store->create_job(spec);
    EXPECT_TRUE(c.ok()) << c.error();
    return c ? *c : created_job{};
  }

  static result_batch batch(uint64_t video, const std::string& analyzer, std::vector<int64_t> frames,
                            const std::string& node = "n1", double brightness = 10) {
    result_batch b;
    b.video = video;
    b.epoch = 1;
    b.analyzer = analyzer;
    b.node = node;
    b.time_base = 1.0 / 25;
    for (int64_t f : frames)
      b.frames.push_back({f, f * 40, analysis::encode_result({{"ms", 1.5}, {"brightness", brightness}})});
    return b;
  }

  /// A batch that accounts for frames [from, through] (sparse: the sampling skipped the others).
  static result_batch covering(result_batch b, int64_t from, int64_t through) {
    b.covered_from = from;
    b.covered_through = through;
    return b;
  }

  int64_t upsert(const result_batch& b) {
    auto wm = store->upsert(b);
    EXPECT_TRUE(wm.ok()) << wm.error();
    return wm ? *wm : -2;
  }

  static std::vector<int64_t> range(int64_t from, int64_t to, int64_t step = 1) {
    std::vector<int64_t> v;
    for (int64_t f = from; f <= to; f += step)
      v.push_back(f);
    return v;
  }

  std::string dir;
  std::unique_ptr<job_store> store;
};

// -- results ---------------------------------------------------------------------------

TEST_F(JobStore, UpsertingTheSameFramesTwiceStoresThemOnce) {
  const auto job = submit({"/v/a.mp4"});
  const uint64_t v = job.videos.at(0);
  EXPECT_EQ(upsert(batch(v, "stats", range(0, 7), "n1", 10)), 7);
  EXPECT_EQ(upsert(batch(v, "stats", range(0, 7), "n2", 20)), 7);  // redelivered after a restart
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM frame_results"), 8);
  // The later copy wins, whole; both nodes sent results.
  const auto stored = (*store->results_of_job(job.job, true))->videos.at(0).analyzers.at(0);
  ASSERT_EQ(stored.frames.size(), 8u);
  for (const auto& f : stored.frames) {
    ASSERT_EQ(f.numbers.size(), 1u);
    EXPECT_EQ(f.numbers[0].value, 20);
    EXPECT_DOUBLE_EQ(f.t, static_cast<double>(f.pts) / 25);
  }
  EXPECT_EQ(stored.result_nodes, (std::vector<std::string>{"n1", "n2"}));
  EXPECT_EQ(*store->watermark(v, "stats"), 7);
}

TEST_F(JobStore, ADatabaseWithJsonTextResultsIsConvertedWhenOpened) {
  // A file from before the compact form: a `results` table of JSON text, the
  // analyzer and node by name, `t` in every row.
  const auto job = submit({"/v/a.mp4"}, {"stats", "motion"});
  const uint64_t v = job.videos.at(0);
  raw("CREATE TABLE results(video INTEGER NOT NULL, analyzer TEXT NOT NULL, frame INTEGER NOT NULL, "
      "pts INTEGER NOT NULL, node TEXT, data TEXT NOT NULL, PRIMARY KEY(video, analyzer, frame)) WITHOUT ROWID");
  const std::string vid = std::to_string(v);
  raw("INSERT INTO results VALUES(" + vid + ", 'motion', 0, 0, 'n1', '{\"fg\":0.5,\"ms\":2.0,\"t\":0.0}'), (" +
      vid + ", 'motion', 1, 512, 'n1', '{\"fg\":0.25,\"ms\":2.0,\"t\":0.04}'), (" + vid +
      ", 'motion', 2, 1024, 'n2', 'not json'), (" + vid + ", 'gone', 0, 0, 'n1', '{}'), (99, 'stats', 0, 0, 'n1', '{}')");
  reopen();
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM sqlite_master WHERE name = 'results'"), 0);
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM frame_results"), 3);  // rows of no video or analyzer are dropped
  const auto r = (*store->results_of_job(job.job, true))->videos.at(0).analyzers.at(1);
  ASSERT_EQ(r.analyzer, "motion");
  ASSERT_EQ(r.frames.size(), 3u);
  ASSERT_EQ(r.frames[1].numbers.size(), 1u);
  EXPECT_EQ(r.frames[1].numbers[0].value, 0.25);
  EXPECT_DOUBLE_EQ(r.frames[1].ms, 2.0);
  EXPECT_DOUBLE_EQ(r.frames[1].t, 0.04);  // the time base came from t / pts
  EXPECT_DOUBLE_EQ(r.frames[2].t, 0.08);
  EXPECT_TRUE(r.frames[2].numbers.empty());  // text that was not JSON: an empty result, as it read before
  EXPECT_EQ(r.result_nodes, (std::vector<std::string>{"n1", "n2"}));
  reopen();  // converted once
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM frame_results"), 3);
}

TEST_F(JobStore, WatermarkStopsAtAGapAndMovesPastItOnceTheGapIsFilled) {
  const uint64_t v = submit({"/v/a.mp4"}).videos.at(0);
  EXPECT_EQ(upsert(batch(v, "stats", range(0, 7))), 7);
  EXPECT_EQ(upsert(batch(v, "stats", range(16, 23))), 7);  // does not continue the stored frames
  EXPECT_EQ(upsert(batch(v, "stats", range(24, 31))), 7);  // nor does this
  EXPECT_EQ(upsert(batch(v, "stats", range(8, 15))), 31);  // fills the gap: every frame to 31 is stored
  EXPECT_EQ(*store->watermark(v, "stats"), 31);
}

TEST_F(JobStore, SparseBatchesAdvanceTheWatermarkOverTheFramesTheirSamplingSkips) {
  const uint64_t v = submit({"/v/a.mp4"}, {"stats/5"}).videos.at(0);
  EXPECT_EQ(upsert(covering(batch(v, "stats", {0, 5, 10}), 0, 10)), 10);
  // The consumer saw frame 15 next: 11..14 were not taken, 15 is in this batch.
  EXPECT_EQ(upsert(covering(batch(v, "stats", {15, 20}), 11, 20)), 20);
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM frame_results"), 5);
}

TEST_F(JobStore, SparseBatchAfterAGapWaitsForTheBatchBeforeIt) {
  const uint64_t v = submit({"/v/a.mp4"}, {"touch@5fps"}).videos.at(0);
  EXPECT_EQ(upsert(covering(batch(v, "touch", {0, 5}), 0, 5)), 5);
  // The batch after next arrives first (the one before it is still in flight).
  EXPECT_EQ(upsert(covering(batch(v, "touch", {15, 20}), 11, 20)), 5) << "6..10 are not accounted for yet";
  EXPECT_EQ(upsert(covering(batch(v, "touch", {25}), 21, 25)), 5);
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM coverage"), 2);
  EXPECT_EQ(upsert(covering(batch(v, "touch", {10}), 6, 10)), 25) << "fills the gap and carries the mark";
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM coverage"), 0) << "absorbed coverages are dropped";
  EXPECT_EQ(*store->watermark(v, "touch"), 25);
}

TEST_F(JobStore, EmptyOrFrameOnlyBatchesCoverWhatTheySay) {
  const uint64_t v = submit({"/v/a.mp4"}).videos.at(0);
  // Without a stated coverage a batch covers its first to its last frame.
  EXPECT_EQ(upsert(batch(v, "stats", {0, 1, 2})), 2);
  EXPECT_EQ(upsert(batch(v, "stats", {})), 2) << "nothing to account for";
  EXPECT_EQ(upsert(covering(batch(v, "stats", {}), 3, 9)), 9) << "frames 3..9 are not taken by the sampling";
  // A stated coverage below the mark never lowers it.
  EXPECT_EQ(upsert(covering(batch(v, "stats", {1}), 0, 1)), 9);
}

TEST_F(JobStore, ARestartedConsumersFirstBatchCoversFromFrameZero) {
  const uint64_t v = submit({"/v/a.mp4"}, {"stats/4"}).videos.at(0);
  EXPECT_EQ(upsert(covering(batch(v, "stats", {0, 4}), 0, 4)), 4);
  // Its second batch went out, the first after it was lost with the worker.
  EXPECT_EQ(upsert(covering(batch(v, "stats", {12}), 9, 12)), 4);
  // The restarted consumer resumes at its committed ring position (frame 5)
  // and states what it knows: every frame it takes up to 12 is stored now.
  EXPECT_EQ(upsert(covering(batch(v, "stats", {8, 12}), 0, 12)), 12);
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM frame_results"), 4);
}

TEST_F(JobStore, AnalyzersKeepTheirSamplingAndOlderJobsTheirStride) {
  const uint64_t v = submit({"/v/a.mp4"}, {"people@2.5fps", "stats.sparse/10", "motion"}).videos.at(0);
  auto row = store->video(v);
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((*row)->analyzers, (std::vector<std::string>{"people", "stats.sparse", "motion"}));
  ASSERT_EQ((*row)->specs.size(), 3u);
  EXPECT_EQ((*row)->specs[0].take.rate_num, 5u);
  EXPECT_EQ((*row)->specs[0].take.rate_den, 2u);
  EXPECT_EQ((*row)->specs[1].take.every, 10u);
  EXPECT_TRUE((*row)->specs[2].take.takes_all());
  // A job stored before sampling per analyzer: plain names and a stride.
  const uint64_t old = submit({"/v/b.mp4"}, {"stats"}, 3).videos.at(0);
  EXPECT_EQ((*store->video(old))->specs.at(0).take.every, 3u);
}

TEST_F(JobStore, SummaryCountsTheFramesTheSamplingGaveTheAnalyzer) {
  const auto job = submit({"/v/a.mp4"}, {"stats/5"});
  const uint64_t v = job.videos.at(0);
  upsert(covering(batch(v, "stats", {0, 5, 10}), 0, 10));
  ASSERT_TRUE(store->summarize_video(v).ok());
  const auto s = (*store->results_of_job(job.job, false))->videos.at(0).analyzers.at(0).summary;
  EXPECT_EQ(s.frames_seen, 3u);
  EXPECT_EQ(s.frames_processed, 3u);
  EXPECT_EQ(s.sampling, "every 5th frame");
}

TEST_F(JobStore, ResumeFrameIsOnePastTheLowestWatermarkOfTheVideosAnalyzers) {
  const uint64_t v = submit({"/v/a.mp4"}, {"motion", "stats"}).videos.at(0);
  EXPECT_EQ(*store->resume_frame(v), 0);
  upsert(batch(v, "stats", range(0, 99)));
  EXPECT_EQ(*store->resume_frame(v), 0);  // motion has stored nothing
  upsert(batch(v, "motion", range(0, 41)));
  EXPECT_EQ(*store->resume_frame(v), 42);
  EXPECT_FALSE(store->resume_frame(v + 100).ok());
}

TEST_F(JobStore, FailedUpsertLeavesNoFrameBehind) {
  const uint64_t v = submit({"/v/a.mp4"}).videos.at(0);
  upsert(batch(v, "stats", range(0, 3)));
  // Break the second half of the upsert (the watermark) under the store's feet.
  raw("ALTER TABLE watermarks RENAME TO watermarks_gone");
  auto wm = store->upsert(batch(v, "stats", range(4, 7)));
  ASSERT_FALSE(wm.ok());
  EXPECT_NE(wm.error().find("watermarks"), std::string::npos) << wm.error();
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM frame_results"), 4);  // frames 4..7 rolled back with it
  // The store goes on working.
  auto row = store->video(v);
  ASSERT_TRUE(row.ok()) << row.error();
  EXPECT_TRUE(row->has_value());
}

TEST_F(JobStore, TransactionRollsBackUnlessCommitted) {
  {
    auto tx = store->begin();
    ASSERT_TRUE(tx.ok()) << tx.error();
    submit({"/v/a.mp4"});  // the store's own transaction nests inside
    EXPECT_EQ(store->job_ids()->size(), 1u);
  }  // no commit
  EXPECT_TRUE(store->job_ids()->empty());
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM videos"), 0);
  {
    auto tx = store->begin();
    ASSERT_TRUE(tx.ok());
    submit({"/v/b.mp4"});
    ASSERT_TRUE(tx->commit().ok());
  }
  EXPECT_EQ(store->job_ids()->size(), 1u);
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM videos"), 1);
}

// -- inputs are bytes ------------------------------------------------------------------

TEST_F(JobStore, AnyByteStringIsAnInputAndRoundTripsExactly) {
  std::string odd = "/tmp/x\xff";
  for (int c = 1; c < 256; ++c)
    odd += static_cast<char>(c);
  odd += ".mp4";
  const auto job = submit({odd, "/tmp/plain.mp4"});
  const uint64_t v = job.videos.at(0);
  EXPECT_EQ((*store->video(v))->input, odd);
  EXPECT_EQ(store->videos_of(job.job)->at(0).input, odd);
  EXPECT_EQ((*store->status_of_job(job.job))->videos.at(0).input, odd);
  EXPECT_EQ((*store->results_of_job(job.job, true))->videos.at(0).input, odd);
  ASSERT_TRUE(store->requeue(v, 0, "cannot open " + odd).ok());
  reopen();
  EXPECT_EQ(store->unfinished_videos()->at(0).input, odd);
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM videos WHERE typeof(input) = 'blob'"), 2);
}

TEST_F(JobStore, DatabaseWithTextInputsFromBeforeStillReads) {
  // The schema as it was before inputs became BLOBs.
  raw("DROP TABLE videos; CREATE TABLE videos(id INTEGER PRIMARY KEY, job INTEGER NOT NULL REFERENCES "
      "jobs(id), "
      "input TEXT NOT NULL, state TEXT NOT NULL, node TEXT, epoch INTEGER NOT NULL DEFAULT 0, "
      "start_frame INTEGER NOT NULL DEFAULT 0, frames_total INTEGER NOT NULL DEFAULT 0, "
      "frames_decoded INTEGER NOT NULL DEFAULT 0, decode_errors INTEGER NOT NULL DEFAULT 0, error TEXT);"
      "INSERT INTO jobs(id, created, state, analyzers, stride) VALUES(1, 0, 'running', 'stats', 1);"
      "INSERT INTO videos(job, input, state, node, epoch) VALUES(1, '/old/clip.mp4', 'running', 'n1', 2);");
  reopen();
  auto rows = store->unfinished_videos();
  ASSERT_TRUE(rows.ok()) << rows.error();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->at(0).input, "/old/clip.mp4");
  EXPECT_EQ(rows->at(0).state, video_state::running);
  // New rows in the old table keep their bytes too.
  const auto job = submit({"/new/\xff.mp4"});
  EXPECT_EQ((*store->video(job.videos.at(0)))->input, "/new/\xff.mp4");
}

// -- restart and corrupt rows ------------------------------------------------------------

TEST_F(JobStore, ReopenedStoreStillHasRunningVideosWithTheirAssignment) {
  const auto job = submit({"/v/a.mp4", "/v/b.mp4", "/v/c.mp4"});
  ASSERT_TRUE(store->assign(job.videos[0], "n1", 3, 10).ok());
  ASSERT_TRUE(store->assign(job.videos[2], "n2", 1, 0).ok());
  ASSERT_TRUE(store->finish_video(job.videos[2], video_end{video_state::done, "", 100, 100, 0}).ok());
  reopen();
  auto rows = store->unfinished_videos();
  ASSERT_TRUE(rows.ok()) << rows.error();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ(rows->at(0).id, job.videos[0]);
  EXPECT_EQ(rows->at(0).state, video_state::running);
  EXPECT_EQ(rows->at(0).node, "n1");
  EXPECT_EQ(rows->at(0).epoch, 3u);
  EXPECT_EQ(rows->at(0).start_frame, 10);
  EXPECT_EQ(rows->at(1).id, job.videos[1]);
  EXPECT_EQ(rows->at(1).state, video_state::queued);
  EXPECT_EQ(**store->state_of_job(job.job), job_state::running);
}

TEST_F(JobStore, UnknownStateTextIsReportedAsAnError) {
  const auto broken = submit({"/v/a.mp4"});
  const auto fine = submit({"/v/b.mp4"});
  raw("UPDATE videos SET state = 'waiting' WHERE id = " + std::to_string(broken.videos[0]));
  auto row = store->video(broken.videos[0]);
  ASSERT_FALSE(row.ok());
  EXPECT_NE(row.error().find("'waiting'"), std::string::npos) << row.error();
  EXPECT_FALSE(store->status_of_job(broken.job).ok());
  EXPECT_FALSE(store->results_of_job(broken.job, false).ok());
  // The rest of the store is unaffected.
  EXPECT_TRUE(store->status_of_job(fine.job).ok());
  EXPECT_TRUE(store->unfinished_videos().ok());

  raw("UPDATE jobs SET state = 'paused' WHERE id = " + std::to_string(fine.job));
  auto state = store->state_of_job(fine.job);
  ASSERT_FALSE(state.ok());
  EXPECT_NE(state.error().find("'paused'"), std::string::npos) << state.error();
}

// -- job lifecycle and replies ------------------------------------------------------------

TEST_F(JobStore, JobStateFollowsItsVideos) {
  const auto job = submit({"/v/a.mp4", "/v/b.mp4"});
  EXPECT_EQ(**store->state_of_job(job.job), job_state::queued);
  ASSERT_TRUE(store->assign(job.videos[0], "n1", 1, 0).ok());
  EXPECT_EQ(**store->state_of_job(job.job), job_state::running);
  ASSERT_TRUE(store->finish_video(job.videos[0], video_end{video_state::done, "", 10, 10, 0}).ok());
  EXPECT_EQ(*store->refresh_job_state(job.job), job_state::running);  // b still queued
  ASSERT_TRUE(store->assign(job.videos[1], "n1", 1, 0).ok());
  ASSERT_TRUE(
      store->finish_video(job.videos[1], video_end{video_state::failed, "cannot open", 0, 0, 0}).ok());
  EXPECT_EQ(*store->refresh_job_state(job.job), job_state::failed);
  EXPECT_EQ((*store->video(job.videos[1]))->error, "cannot open");
  EXPECT_FALSE(store->state_of_job(job.job + 100)->has_value());
}

TEST_F(JobStore, AJobLeftOpenAfterItsLastVideoEndedIsEndedByTheRepairAtStart) {
  // What a coordinator killed between a video's end and its job's update left
  // behind, before the two were one transaction.
  const auto open_job = submit({"/v/a.mp4"});
  const auto still_running = submit({"/v/b.mp4", "/v/c.mp4"});
  ASSERT_TRUE(store->assign(open_job.videos[0], "n1", 1, 0).ok());
  ASSERT_TRUE(store->assign(still_running.videos[0], "n1", 1, 0).ok());
  ASSERT_TRUE(store->finish_video(open_job.videos[0], video_end{video_state::done, "", 10, 10, 0}).ok());
  ASSERT_EQ(**store->state_of_job(open_job.job), job_state::running);
  auto ended = store->refresh_open_jobs();
  ASSERT_TRUE(ended) << ended.error();
  EXPECT_EQ(*ended, 1u);
  EXPECT_EQ(**store->state_of_job(open_job.job), job_state::done);
  EXPECT_EQ(**store->state_of_job(still_running.job), job_state::running);
  EXPECT_EQ(*store->refresh_open_jobs(), 0u);
}

TEST_F(JobStore, RequeueOnlyMovesARunningVideo) {
  const auto job = submit({"/v/a.mp4"});
  const uint64_t v = job.videos[0];
  ASSERT_TRUE(store->assign(v, "n1", 1, 0).ok());
  ASSERT_TRUE(store->requeue(v, 42, "node n1 lost").ok());
  auto row = **store->video(v);
  EXPECT_EQ(row.state, video_state::queued);
  EXPECT_EQ(row.start_frame, 42);
  EXPECT_EQ(row.node, "");
  EXPECT_EQ(row.epoch, 1u);  // the next assignment goes past it
  ASSERT_TRUE(store->cancel_job(job.job).ok());
  ASSERT_TRUE(store->requeue(v, 0, "late").ok());
  EXPECT_EQ((*store->video(v))->state, video_state::cancelled);
}

TEST_F(JobStore, ResultsReplyIsTypedWithFramesOnlyWhenAsked) {
  const auto job = submit({"/v/a.mp4"});
  const uint64_t v = job.videos[0];
  upsert(batch(v, "stats", range(0, 4), "n1"));
  upsert(batch(v, "stats", range(5, 9), "n2"));
  auto without = store->results_of_job(job.job, false);
  ASSERT_TRUE(without.ok()) << without.error();
  const auto& a = (*without)->videos.at(0).analyzers.at(0);
  EXPECT_EQ(a.analyzer, "stats");
  EXPECT_EQ(a.result_nodes, (std::vector<std::string>{"n1", "n2"}));
  EXPECT_TRUE(a.frames.empty());
  auto with = store->results_of_job(job.job, true);
  ASSERT_TRUE(with.ok()) << with.error();
  const auto& frames = (*with)->videos.at(0).analyzers.at(0).frames;
  ASSERT_EQ(frames.size(), 10u);
  EXPECT_EQ(frames[7].frame, 7);
  EXPECT_EQ(frames[7].pts, 280);
  // A finished video's summary is stored and read back as it was computed.
  const auto live = a.summary;
  ASSERT_TRUE(store->summarize_video(v).ok());
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM summaries"), 1);
  const auto stored = (*store->results_of_job(job.job, false))->videos.at(0).analyzers.at(0).summary;
  EXPECT_EQ(stored.frames_processed, live.frames_processed);
  EXPECT_DOUBLE_EQ(stored.mean_ms, live.mean_ms);
  EXPECT_FALSE(store->results_of_job(job.job + 100, false)->has_value());
}

// -- retention -------------------------------------------------------------------------

TEST_F(JobStore, ErasingAFinishedJobDeletesEverythingRecordedAboutItAndNothingElse) {
  const auto gone = submit({"/v/a.mp4", "/v/b.mp4"});
  const auto kept = submit({"/v/c.mp4"});
  for (const auto& job : {gone, kept})
    for (uint64_t v : job.videos) {
      ASSERT_TRUE(store->assign(v, "n1", 1, 0).ok());
      upsert(batch(v, "stats", range(0, 4)));
      ASSERT_TRUE(store->finish_video(v, video_end{video_state::done, "", 5, 5, 0}).ok());
      ASSERT_TRUE(store->summarize_video(v).ok());
      ASSERT_TRUE(store->event(job.job, v, "done", "").ok());
    }
  ASSERT_TRUE(store->refresh_job_state(gone.job).ok());
  auto erased = store->erase_job(gone.job);
  ASSERT_TRUE(erased.ok()) << erased.error();
  EXPECT_TRUE(*erased);
  EXPECT_FALSE(store->state_of_job(gone.job)->has_value());
  EXPECT_FALSE(store->video(gone.videos[0])->has_value());
  const std::string of_gone =
      " IN (" + std::to_string(gone.videos[0]) + "," + std::to_string(gone.videos[1]) + ")";
  for (const char* table :
       {"frame_results", "result_nodes", "time_bases", "watermarks", "coverage", "summaries", "assignments"})
    EXPECT_EQ(raw_count(std::string("SELECT COUNT(*) FROM ") + table + " WHERE video" + of_gone), 0) << table;
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM events WHERE job = " + std::to_string(gone.job)), 0);
  // The other job is whole.
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM frame_results WHERE video = " + std::to_string(kept.videos[0])), 5);
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM events WHERE job = " + std::to_string(kept.job)), 1);
  EXPECT_EQ((*store->results_of_job(kept.job, true))->videos.at(0).analyzers.at(0).frames.size(), 5u);
  // Erasing it again: no such job.
  EXPECT_FALSE(*store->erase_job(gone.job));
}

TEST_F(JobStore, ArtifactRowsAreOnePerNameListedInResultsAndErasedWithTheirJob) {
  const std::string sha_a(64, 'a'), sha_b(64, 'b');
  const auto job = submit({"blob:" + sha_b + "/clip.mp4"});
  const auto other = submit({"/v/x.mp4"});
  const uint64_t v = job.videos[0];
  ASSERT_TRUE(store->put_artifact(job.job, artifact_row{v, "stats", "t.jpg", 3, sha_b}).ok());
  // The same name again replaces the row (a node that sent it twice).
  ASSERT_TRUE(store->put_artifact(job.job, artifact_row{v, "stats", "t.jpg", 5, sha_a}).ok());
  ASSERT_TRUE(store->put_artifact(other.job, artifact_row{other.videos[0], "stats", "u.jpg", 5, sha_a}).ok());
  const auto rows = *store->artifacts_of(job.job);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].size, 5u);
  EXPECT_EQ(rows[0].sha256, sha_a);
  EXPECT_EQ((*store->results_of_job(job.job, false))->videos.at(0).artifacts.at(0).name, "t.jpg");
  // The uploaded input names its blob too.
  EXPECT_TRUE(*store->blob_referenced(sha_b));
  EXPECT_FALSE(*store->blob_referenced(std::string(64, 'c')));

  ASSERT_TRUE(store->assign(v, "n1", 1, 0).ok());
  ASSERT_TRUE(store->finish_video(v, video_end{video_state::done, "", 1, 1, 0}).ok());
  ASSERT_TRUE(store->refresh_job_state(job.job).ok());
  ASSERT_TRUE(*store->erase_job(job.job));
  EXPECT_TRUE(store->artifacts_of(job.job)->empty());
  EXPECT_FALSE(*store->blob_referenced(sha_b));
  EXPECT_TRUE(*store->blob_referenced(sha_a));  // still listed by the other job
}

TEST_F(JobStore, AJobWithAVideoStillQueuedOrRunningIsNotErased) {
  const auto job = submit({"/v/a.mp4", "/v/b.mp4"});
  ASSERT_TRUE(store->assign(job.videos[0], "n1", 1, 0).ok());
  upsert(batch(job.videos[0], "stats", range(0, 2)));
  auto erased = store->erase_job(job.job);
  ASSERT_FALSE(erased.ok());
  EXPECT_NE(erased.error().find("queued or running"), std::string::npos) << erased.error();
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM frame_results"), 3);  // rolled back: nothing deleted
  EXPECT_TRUE(store->state_of_job(job.job)->has_value());
}

TEST_F(JobStore, OnlyJobsThatEndedBeforeTheCutoffAreDueForRetention) {
  const auto old_done = submit({"/v/a.mp4"});
  const auto old_cancelled = submit({"/v/b.mp4"});
  const auto recent = submit({"/v/c.mp4"});
  const auto running = submit({"/v/d.mp4"});
  for (const auto& j : {old_done, recent}) {
    ASSERT_TRUE(store->assign(j.videos[0], "n1", 1, 0).ok());
    ASSERT_TRUE(store->finish_video(j.videos[0], video_end{video_state::done, "", 1, 1, 0}).ok());
    ASSERT_TRUE(store->refresh_job_state(j.job).ok());
  }
  ASSERT_TRUE(store->cancel_job(old_cancelled.job).ok());
  ASSERT_TRUE(store->assign(running.videos[0], "n1", 1, 0).ok());
  // Times as the rows record them (seconds since 1970): "old" ended at 1000.
  raw("UPDATE jobs SET finished = 1000 WHERE id IN (" + std::to_string(old_done.job) + "," +
      std::to_string(old_cancelled.job) + ")");
  raw("UPDATE jobs SET finished = 5000 WHERE id = " + std::to_string(recent.job));
  raw("UPDATE jobs SET finished = 10 WHERE id = " + std::to_string(running.job));  // not final: never due
  auto due = store->jobs_finished_before(2000);
  ASSERT_TRUE(due.ok()) << due.error();
  EXPECT_EQ(*due, (std::vector<uint64_t>{old_done.job, old_cancelled.job}));
  EXPECT_EQ(store->jobs_finished_before(6000)->size(), 3u);
  EXPECT_TRUE(store->jobs_finished_before(500)->empty());
}

TEST_F(JobStore, AssignmentNodeNamesWhoHeldEachEpoch) {
  const auto job = submit({"/v/a.mp4"});
  const uint64_t v = job.videos[0];
  ASSERT_TRUE(store->assign(v, "n1", 1, 0).ok());
  ASSERT_TRUE(store->requeue(v, 0, "node n1 lost").ok());
  ASSERT_TRUE(store->assign(v, "n2", 2, 0).ok());
  EXPECT_EQ(**store->assignment_node(v, 1), "n1");
  EXPECT_EQ(**store->assignment_node(v, 2), "n2");
  EXPECT_FALSE(store->assignment_node(v, 3)->has_value());
  EXPECT_FALSE(store->assignment_node(v + 1, 1)->has_value());
}

}  // namespace
}  // namespace framehive
