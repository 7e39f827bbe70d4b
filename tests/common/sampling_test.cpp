// The frame-selection rule of sampling per analysis (common/sampling.hpp):
// every K-th frame by index, or N per second of video time by timestamp,
// decided from the frame and its predecessor alone.

#include "common/sampling.hpp"

#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

namespace framehive {
namespace {

/// A video's frames as the decoder stamps them: pts in a time base.
struct clip {
  std::vector<int64_t> pts;
  int32_t tb_num = 1;
  int32_t tb_den = 1;
};

/// A constant-rate clip as an MP4 muxer writes it (time base 1/12800).
clip constant(int fps, int frames) {
  clip c;
  c.tb_den = 12800;
  for (int f = 0; f < frames; ++f)
    c.pts.push_back(static_cast<int64_t>(f) * 12800 / fps);
  return c;
}

/// The frames `s` takes, looking at frames [from, end) only, each with its
/// predecessor's timestamp as the ring slot carries it.
std::vector<int64_t> taken(const sampling& s, const clip& c, std::size_t from = 0) {
  std::vector<int64_t> out;
  for (std::size_t f = from; f < c.pts.size(); ++f) {
    const int64_t prev = f == 0 ? no_pts : c.pts[f - 1];
    if (takes(s, static_cast<int64_t>(f), c.pts[f], prev, c.tb_num, c.tb_den))
      out.push_back(static_cast<int64_t>(f));
  }
  return out;
}

std::vector<int64_t> multiples(int64_t k, int64_t below, int64_t from = 0) {
  std::vector<int64_t> out;
  for (int64_t f = 0; f < below; f += k)
    if (f >= from)
      out.push_back(f);
  return out;
}

sampling per_second(uint32_t num, uint32_t den = 1) {
  sampling s;
  s.rate_num = num;
  s.rate_den = den;
  return s;
}

TEST(Sampling, TheDefaultTakesEveryFrame) {
  const auto c = constant(25, 50);
  EXPECT_EQ(taken(sampling{}, c), multiples(1, 50));
  EXPECT_TRUE(sampling{}.takes_all());
  EXPECT_EQ(taken(sampling{0}, c), multiples(1, 50)) << "0 counts as 1";
}

TEST(Sampling, EveryKTakesTheMultiplesOfKByIndex) {
  const auto c = constant(25, 100);
  EXPECT_EQ(taken(sampling{5}, c), multiples(5, 100));
  EXPECT_EQ(taken(sampling{7}, c), multiples(7, 100));
  EXPECT_EQ(taken(sampling{1000}, c), std::vector<int64_t>{0});
}

TEST(Sampling, NPerSecondAtAConstant25FpsTakesEveryFifthFrameForFive) {
  const auto c = constant(25, 250);
  EXPECT_EQ(taken(per_second(5), c), multiples(5, 250));
  EXPECT_EQ(taken(per_second(25), c), multiples(1, 250)) << "as fast as the video: every frame";
  EXPECT_EQ(taken(per_second(100), c), multiples(1, 250)) << "faster than the video: every frame, once";
  EXPECT_EQ(taken(per_second(1), c), multiples(25, 250));
  // 2 per second: the first frame at or after 0, 0.5, 1.0, ... s.
  EXPECT_EQ(taken(per_second(2), constant(25, 60)), (std::vector<int64_t>{0, 13, 25, 38, 50}));
  // A fraction: one frame every 4 s.
  EXPECT_EQ(taken(per_second(1, 4), c), (std::vector<int64_t>{0, 100, 200}));
}

TEST(Sampling, NPerSecondOnVariableTimestampsTakesTheFirstFrameOfEachBucket) {
  // Milliseconds; gaps and bursts, as a variable-rate phone video has them.
  clip c;
  c.tb_den = 1000;
  c.pts = {0, 90, 180, 210, 240, 505, 520, 990, 1000, 1001, 1600, 1601, 2450, 2460};
  // 2 per second: buckets of 500 ms. 505 starts [500, 1000); 1000 starts
  // [1000, 1500); 1600 starts [1500, 2000); 2450 starts [2000, 2500).
  EXPECT_EQ(taken(per_second(2), c), (std::vector<int64_t>{0, 5, 8, 10, 12}));
  // A bucket no frame falls in is skipped, not made up: 1 per second.
  EXPECT_EQ(taken(per_second(1), c), (std::vector<int64_t>{0, 8, 12}));
}

TEST(Sampling, TheFirstFrameIsTakenWhateverItsTimestamp) {
  clip c;
  c.tb_den = 1000;
  c.pts = {1400, 1450, 1500, 1999, 2000};  // a stream that starts at 1.4 s
  EXPECT_EQ(taken(per_second(1), c), (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(taken(per_second(2), c), (std::vector<int64_t>{0, 2, 4}));
}

TEST(Sampling, TimestampsBeforeZeroFallInTheirOwnBuckets) {
  clip c;
  c.tb_den = 1000;
  c.pts = {-1000, -600, -400, -1, 0, 300};  // B-frame delays: the first frames before 0
  // Buckets of 500 ms: [-1000, -500), [-500, 0), [0, 500).
  EXPECT_EQ(taken(per_second(2), c), (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(rate_bucket(per_second(2), -1, 1, 1000), -1) << "floor, not truncation";
}

TEST(Sampling, ResumingInTheMiddleMakesTheSameChoiceAsAFullRun) {
  const auto steady = constant(25, 300);
  clip variable;
  variable.tb_den = 1000;
  for (int f = 0; f < 300; ++f)
    variable.pts.push_back(f * 37 + (f % 7) * 5);  // about 27 fps, jittered
  for (const auto& c : {steady, variable}) {
    for (const auto& s : {sampling{4}, per_second(5), per_second(2), per_second(3, 2)}) {
      const auto full = taken(s, c);
      for (std::size_t from : {1u, 13u, 50u, 137u, 299u}) {
        std::vector<int64_t> expected;
        for (int64_t f : full)
          if (f >= static_cast<int64_t>(from))
            expected.push_back(f);
        EXPECT_EQ(taken(s, c, from), expected) << "resumed at " << from;
      }
    }
  }
}

TEST(Sampling, AFrameWithoutAUsableTimeBaseIsTaken) {
  EXPECT_TRUE(takes(per_second(1), 7, 100, 99, 0, 1));
  EXPECT_TRUE(takes(per_second(1), 7, 100, 99, 1, 0));
  EXPECT_FALSE(takes(per_second(1), 7, 100, 99, 1, 1000));
}

TEST(Sampling, BucketsAreExactForHugeTimestampsAndFineTimeBases) {
  // 90 kHz pts after 30 days of a live stream, and a nanosecond time base.
  const int64_t pts = int64_t{90000} * 3600 * 24 * 30;
  EXPECT_EQ(rate_bucket(per_second(1000), pts, 1, 90000), int64_t{1000} * 3600 * 24 * 30);
  EXPECT_EQ(rate_bucket(per_second(2997, 100), int64_t{1} << 62, 1, 1'000'000'000),
            static_cast<int64_t>((static_cast<__int128>(int64_t{1} << 62) * 2997) / (int64_t{100} * 1'000'000'000)));
}

}  // namespace
}  // namespace framehive
