// What the coordinator lets in, on its own: limits on jobs, registrations and
// batches, challenges that are single-use and expire, refusal counts. Time
// from a manual clock; no actors, no processes, no sleeps.

#include "coordinator/admission.hpp"
#include "analysis/result_codec.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace framehive {
namespace {

using namespace std::chrono_literals;

class Admission : public ::testing::Test {
 protected:
  static coordinator_limits small_limits() {
    coordinator_limits l;
    l.max_inputs_per_job = 3;
    l.max_analyzers_per_job = 2;
    l.max_input_bytes = 16;
    l.max_frames_per_batch = 4;
    l.max_queued_videos = 5;
    l.max_node_cores = 64;
    l.max_node_shm_bytes = 1ull << 30;
    l.max_frame_data_bytes = 100;
    return l;
  }

  static job_spec job(std::size_t inputs, std::size_t analyzers = 1) {
    job_spec s;
    for (std::size_t i = 0; i < inputs; ++i)
      s.inputs.push_back("/v/" + std::to_string(i) + ".mp4");
    for (std::size_t i = 0; i < analyzers; ++i)
      s.analyzers.push_back("stats");
    return s;
  }

  static node_info node(uint32_t cores, uint64_t shm = 1ull << 20) {
    node_info n;
    n.name = "n1";
    n.cores = cores;
    n.shm_budget = shm;
    return n;
  }

  static result_batch batch(std::vector<int64_t> frames) {
    result_batch b;
    b.video = 7;
    b.epoch = 1;
    b.analyzer = "stats";
    for (int64_t f : frames)
      b.frames.push_back({f, f, analysis::encode_result({{"ms", 1.0}})});
    return b;
  }

  /// The key a verdict is counted under ("" if the request is let in).
  static std::string key(const verdict& v) { return v ? v->key : ""; }

  manual_clock clock;
  admission gate{clock, small_limits()};
};

TEST_F(Admission, ResultsThatDoNotDecodeAndForgedTimeBasesAreRefusedNamingTheFrame) {
  EXPECT_EQ(key(gate.check_batch(batch({0, 1, 2}), 0)), "");
  auto forged = batch({0, 1, 2});
  forged.frames[1].data = R"({"ms":1.0})";  // JSON text is not the stored form
  const auto v = gate.check_batch(forged, 0);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->key, refusal_key::bad_batch);
  EXPECT_EQ(v->code, errc::invalid_request);
  EXPECT_NE(v->message.find("the result of frame 1 of video 7 is not a stored result: unknown type 11 at byte 1"),
            std::string::npos)
      << v->message;
  auto nan_base = batch({0});
  nan_base.time_base = std::nan("");
  EXPECT_EQ(key(gate.check_batch(nan_base, 0)), refusal_key::bad_batch);
  nan_base.time_base = -1;
  EXPECT_EQ(key(gate.check_batch(nan_base, 0)), refusal_key::bad_batch);
}

TEST_F(Admission, JobsOverALimitAreRefusedNamingTheLimitAndTheValue) {
  EXPECT_EQ(key(gate.check_job(job(3, 2), 0)), "");
  const auto inputs = gate.check_job(job(4), 0);
  ASSERT_TRUE(inputs);
  EXPECT_EQ(inputs->code, errc::over_limit);
  EXPECT_EQ(inputs->key, "max_inputs_per_job");
  EXPECT_NE(inputs->message.find("4 is over the limit max_inputs_per_job = 3"), std::string::npos)
      << inputs->message;
  EXPECT_EQ(key(gate.check_job(job(1, 3), 0)), "max_analyzers_per_job");
  auto long_input = job(1);
  long_input.inputs[0] = std::string(17, 'x');
  EXPECT_EQ(key(gate.check_job(long_input, 0)), "max_input_bytes");
  EXPECT_EQ(key(gate.check_job(job(3), 2)), "");  // 2 queued + 3 = the limit
  EXPECT_EQ(key(gate.check_job(job(3), 3)), "max_queued_videos");
  EXPECT_EQ(key(gate.check_job(job(0), 0)), refusal_key::invalid_job);
  EXPECT_EQ(gate.check_job(job(0), 0)->code, errc::invalid_request);
}

TEST_F(Admission, AnalyzersPerJobNeverExceedTheRingsConsumerEntries) {
  coordinator_limits generous;
  generous.max_analyzers_per_job = 1000;
  admission wide{clock, generous};
  EXPECT_EQ(wide.limits().max_analyzers_per_job, 32u);
  EXPECT_EQ(key(wide.check_job(job(1, 32), 0)), "");
  EXPECT_EQ(key(wide.check_job(job(1, 33), 0)), "max_analyzers_per_job");
}

TEST_F(Admission, NodeFiguresAreBounded) {
  EXPECT_EQ(key(gate.check_node(node(8))), "");
  EXPECT_EQ(key(gate.check_node(node(0))), refusal_key::bad_node_info);
  EXPECT_EQ(key(gate.check_node(node(65))), "max_node_cores");
  EXPECT_EQ(key(gate.check_node(node(4'000'000'000u))), "max_node_cores");
  EXPECT_EQ(key(gate.check_node(node(8, (1ull << 30) + 1))), "max_node_shm_bytes");
  auto unnamed = node(8);
  unnamed.name.clear();
  EXPECT_EQ(key(gate.check_node(unnamed)), refusal_key::bad_node_info);
  auto claims = node(8);
  claims.running.assign(6, 1);
  EXPECT_EQ(key(gate.check_node(claims)), "max_queued_videos");
}

TEST_F(Admission, ABatchsCoverageIsARangeInTheVideoThatHoldsItsFrames) {
  auto covering = [](std::vector<int64_t> frames, int64_t from, int64_t through) {
    auto b = batch(std::move(frames));
    b.covered_from = from;
    b.covered_through = through;
    return b;
  };
  EXPECT_EQ(key(gate.check_batch(covering({5, 10}, 0, 10), 100)), "");
  EXPECT_EQ(key(gate.check_batch(covering({}, 3, 9), 100)), "") << "frames the sampling skips";
  EXPECT_EQ(key(gate.check_batch(covering({5, 10}, 6, 10), 100)), refusal_key::frame_range);
  EXPECT_EQ(key(gate.check_batch(covering({5, 10}, 0, 9), 100)), refusal_key::frame_range);
  EXPECT_EQ(key(gate.check_batch(covering({}, -1, 9), 100)), refusal_key::frame_range);
  EXPECT_EQ(key(gate.check_batch(covering({}, 9, 3), 100)), refusal_key::frame_range);
  const auto past = gate.check_batch(covering({5}, 0, 1'000'000), 100);
  ASSERT_TRUE(past);
  EXPECT_EQ(past->key, refusal_key::frame_range);
  EXPECT_NE(past->message.find("covering frames 0 to 1000000"), std::string::npos) << past->message;
}

TEST_F(Admission, BatchesAreBoundedInSizeAndFrameRange) {
  EXPECT_EQ(key(gate.check_batch(batch({0, 1, 2, 3}), -1)), "");
  EXPECT_EQ(key(gate.check_batch(batch({0, 1, 2, 3, 4}), -1)), "max_frames_per_batch");
  const auto negative = gate.check_batch(batch({-1}), -1);
  ASSERT_TRUE(negative);
  EXPECT_EQ(negative->key, refusal_key::frame_range);
  EXPECT_EQ(negative->code, errc::invalid_request);
  // Unknown frame count: only the absolute bound.
  EXPECT_EQ(key(gate.check_batch(batch({max_frame_index - 1}), -1)), "");
  const auto huge = gate.check_batch(batch({1'000'000'000'000'000}), -1);
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->key, refusal_key::frame_range);
  EXPECT_EQ(huge->code, errc::over_limit);
  EXPECT_NE(huge->message.find("frame 1000000000000000 is outside video 7"), std::string::npos)
      << huge->message;
  // Known frame count (the node's probe, an estimate): a little past it is fine, far past it is not.
  EXPECT_EQ(key(gate.check_batch(batch({99, 100, 120}), 100)), "");
  const int64_t end = 100 + frame_count_slack(100);
  EXPECT_EQ(key(gate.check_batch(batch({end - 1}), 100)), "");
  EXPECT_EQ(key(gate.check_batch(batch({end}), 100)), refusal_key::frame_range);
  EXPECT_EQ(key(gate.check_batch(batch({1'000'000}), 100)), refusal_key::frame_range);
  auto fat = batch({0});
  fat.frames[0].data = std::string(101, 'x');
  EXPECT_EQ(key(gate.check_batch(fat, -1)), "max_frame_data_bytes");
}

TEST_F(Admission, ReportFiguresAreBounded) {
  video_report r;
  r.frames_total = 100;
  EXPECT_EQ(key(gate.check_report(r)), "");
  r.frames_total = -1;
  EXPECT_EQ(key(gate.check_report(r)), refusal_key::frame_range);
  r.frames_total = max_frame_index + 1;
  EXPECT_EQ(key(gate.check_report(r)), refusal_key::frame_range);
}

TEST_F(Admission, AChallengeIsGoodForOneRegistrationOfItsPeer) {
  EXPECT_EQ(gate.issue_challenge("peer-a", "token-a"), "token-a");
  EXPECT_FALSE(gate.take_challenge("peer-b"));  // not issued to b
  EXPECT_EQ(gate.take_challenge("peer-a"), "token-a");
  EXPECT_FALSE(gate.take_challenge("peer-a"));  // used
  // Asking again replaces the peer's earlier challenge.
  gate.issue_challenge("peer-a", "first");
  gate.issue_challenge("peer-a", "second");
  EXPECT_EQ(gate.challenges(), 1u);
  EXPECT_EQ(gate.take_challenge("peer-a"), "second");
}

TEST_F(Admission, AChallengeExpiresAfterItsTtl) {
  gate.issue_challenge("peer-a", "token-a");
  gate.issue_challenge("peer-b", "token-b");
  clock.advance(challenge_ttl - 1ms);
  EXPECT_EQ(gate.take_challenge("peer-a"), "token-a");
  clock.advance(1ms);
  EXPECT_FALSE(gate.take_challenge("peer-b"));
  EXPECT_EQ(gate.challenges(), 0u);  // an expired one is forgotten too
}

TEST_F(Admission, OutstandingChallengesAreBounded) {
  for (std::size_t i = 0; i < max_challenges + 10; ++i)
    gate.issue_challenge("peer-" + std::to_string(i), "t" + std::to_string(i));
  EXPECT_EQ(gate.challenges(), max_challenges);
  EXPECT_FALSE(gate.take_challenge("peer-0"));  // the oldest went
  EXPECT_EQ(gate.take_challenge("peer-" + std::to_string(max_challenges + 9)),
            "t" + std::to_string(max_challenges + 9));
}

TEST_F(Admission, RefusalsAreCountedByReason) {
  EXPECT_EQ(gate.count(refusal_key::name_taken), 1u);
  EXPECT_EQ(gate.count(refusal_key::not_registered), 1u);
  EXPECT_EQ(gate.count(refusal_key::name_taken), 2u);
  const auto counts = gate.counts();
  ASSERT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts[0].reason, "name_taken");
  EXPECT_EQ(counts[0].count, 2u);
  EXPECT_EQ(counts[1].reason, "not_registered");
  EXPECT_EQ(counts[1].count, 1u);
}

}  // namespace
}  // namespace framehive
