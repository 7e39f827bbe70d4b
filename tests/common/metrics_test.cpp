// The metrics module's own logic: progress reports (cumulative per actor
// instance) become monotonic counters; the tree becomes bounded gauges.

#include "common/metrics.hpp"

#include <gtest/gtest.h>

#include "common/process.hpp"

namespace framehive {
namespace {

actor_progress decoder(uint32_t pid, int64_t frames) {
  actor_progress p;
  p.kind = actor_kind::decoder;
  p.pid = pid;
  p.frames = frames;
  return p;
}

actor_progress consumer(uint32_t pid, int64_t frames, uint64_t redelivered) {
  actor_progress p = decoder(pid, frames);
  p.kind = actor_kind::consumer;
  p.analyzer = "stats";
  p.redelivered = redelivered;
  return p;
}

TEST(Metrics, DecoderProgressCountsEachFrameOnceAcrossARestart) {
  prometheus::Registry r;
  node_metrics m(r);
  m.progress({}, decoder(10, 5));
  m.progress(decoder(10, 5), decoder(10, 12));
  m.progress(decoder(10, 12), decoder(10, 12));  // a report the supervisor did not take
  EXPECT_EQ(m.frames_decoded.Value(), 12);
  m.progress(decoder(10, 12), decoder(11, 3));  // a restarted decoder counts from 0
  EXPECT_EQ(m.frames_decoded.Value(), 15);
  m.progress(decoder(11, 3), decoder(11, 1));  // fewer: another instance on the same pid
  EXPECT_EQ(m.frames_decoded.Value(), 16);
  EXPECT_EQ(m.redelivered.Value(), 0);
}

TEST(Metrics, ConsumerProgressCountsRedeliveriesNotDecodes) {
  prometheus::Registry r;
  node_metrics m(r);
  m.progress({}, consumer(20, 4, 0));
  m.progress(consumer(20, 4, 0), consumer(21, 2, 3));
  m.progress(consumer(21, 2, 3), consumer(21, 9, 3));
  EXPECT_EQ(m.redelivered.Value(), 3);
  EXPECT_EQ(m.frames_decoded.Value(), 0);
}

TEST(Metrics, AnalysedFramesAreCountedByKindNeverByLabel) {
  prometheus::Registry r;
  node_metrics m(r);
  m.batch_acked("stats", 8, 0.002);
  m.batch_acked("stats.sparse", 2, 0.004);
  m.batch_acked("people@5fps", 1, 0.5);
  EXPECT_EQ(m.frames_analysed["stats"].Value(), 10);
  EXPECT_EQ(m.frames_analysed["people"].Value(), 1);
  EXPECT_EQ(m.batch_round_trip_seconds.Collect().histogram.sample_count, 3u);
  EXPECT_EQ(analyzer_kind_of("touch.3/10"), "touch");
}

TEST(Metrics, TreeGaugesAreAggregatesOverRunningVideos) {
  prometheus::Registry r;
  node_metrics m(r);
  node_status s;
  auto row = [&](actor_kind kind, actor_state state, double fps, uint64_t fill, uint64_t slots, int64_t lag) {
    tree_entry e;
    e.kind = kind;
    e.state = state;
    e.fps = fps;
    e.ring_fill = fill;
    e.ring_slots = slots;
    e.lag = lag;
    s.entries.push_back(e);
  };
  row(actor_kind::node, actor_state::connected, 0, 0, 0, 0);
  row(actor_kind::video, actor_state::running, 0, 8, 32, 0);
  row(actor_kind::decoder, actor_state::running, 40, 8, 32, 0);
  row(actor_kind::consumer, actor_state::running, 39, 8, 32, 5);
  row(actor_kind::video, actor_state::running, 0, 24, 32, 0);
  row(actor_kind::decoder, actor_state::running, 20, 24, 32, 0);
  row(actor_kind::decoder, actor_state::done, 99, 0, 32, 0);  // ended: no longer decoding
  row(actor_kind::consumer, actor_state::running, 10, 24, 32, 17);
  m.observe(s);
  EXPECT_EQ(m.videos.Value(), 2);
  EXPECT_EQ(m.decode_fps.Value(), 60);
  EXPECT_DOUBLE_EQ(m.ring_fill_max.Value(), 0.75);
  EXPECT_EQ(m.consumer_lag_max.Value(), 17);
  m.observe(node_status{});
  EXPECT_EQ(m.videos.Value(), 0);
  EXPECT_EQ(m.consumer_lag_max.Value(), 0);
}

TEST(Metrics, StateGaugesShowEveryStateWithZeroForNone) {
  prometheus::Registry r;
  coordinator_metrics m(r);
  m.set_states({{"done", 2}}, {{"done", 5}, {"running", 1}});
  EXPECT_EQ(m.jobs["done"].Value(), 2);
  EXPECT_EQ(m.jobs["queued"].Value(), 0);
  EXPECT_EQ(m.videos["running"].Value(), 1);
  m.set_states({}, {});
  EXPECT_EQ(m.videos["done"].Value(), 0);
  m.batch_stored("motion.left", 8, 0.001);
  EXPECT_EQ(m.frames_stored["motion"].Value(), 8);
  EXPECT_EQ(m.result_batches.Value(), 1);
}

TEST(Metrics, EndpointRefusesATakenPort) {
  auto first = metrics_endpoint::start({"127.0.0.1", 0});
  EXPECT_FALSE(first);  // port 0 is "no endpoint", never a random port
  const uint16_t port = free_loopback_port();
  auto a = metrics_endpoint::start({"127.0.0.1", port});
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ((*a)->port(), port);
  auto b = metrics_endpoint::start({"127.0.0.1", port});
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().find("127.0.0.1:" + std::to_string(port)), std::string::npos) << b.error();
}

}  // namespace
}  // namespace framehive
