#include "common/backoff.hpp"

#include <chrono>
#include <vector>

#include <gtest/gtest.h>

namespace framehive {
namespace {

using std::chrono::milliseconds;

std::vector<int64_t> take(backoff& b, int n) {
  std::vector<int64_t> out;
  for (int i = 0; i < n; ++i)
    out.push_back(b.next().count());
  return out;
}

TEST(Backoff, DoublesFromTheFirstDelayUpToTheCap) {
  backoff b;  // defaults: 100 ms, doubling, at most 5 s
  EXPECT_EQ(take(b, 9), (std::vector<int64_t>{100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000}));
  EXPECT_EQ(b.attempts(), 9u);
}

TEST(Backoff, ResetStartsAgainAtTheFirstDelay) {
  backoff b;
  take(b, 4);
  b.reset();
  EXPECT_EQ(b.attempts(), 0u);
  EXPECT_EQ(take(b, 3), (std::vector<int64_t>{100, 200, 400}));
}

TEST(Backoff, PeekShowsTheNextDelayWithoutCountingIt) {
  backoff b;
  take(b, 2);
  EXPECT_EQ(b.peek(), milliseconds(400));
  EXPECT_EQ(b.peek(), milliseconds(400));
  EXPECT_EQ(b.attempts(), 2u);
  EXPECT_EQ(b.next(), milliseconds(400));
  EXPECT_EQ(b.attempts(), 3u);
}

TEST(Backoff, OwnConstantsAreHonoured) {
  backoff b{backoff_policy{milliseconds(200), milliseconds(1000), 3}};
  EXPECT_EQ(take(b, 4), (std::vector<int64_t>{200, 600, 1000, 1000}));
}

TEST(Backoff, FactorOneKeepsTheDelayConstantAndZeroDoesNotShrinkIt) {
  backoff_policy constant{milliseconds(250), milliseconds(5000), 1};
  backoff_policy zero{milliseconds(250), milliseconds(5000), 0};
  for (uint32_t attempt : {0u, 1u, 7u}) {
    EXPECT_EQ(constant.delay(attempt), milliseconds(250));
    EXPECT_EQ(zero.delay(attempt), milliseconds(250));
  }
}

TEST(Backoff, HugeAttemptCountsStayAtTheCapWithoutOverflow) {
  backoff_policy p;
  EXPECT_EQ(p.delay(63), p.max);
  EXPECT_EQ(p.delay(1000), p.max);
  EXPECT_EQ(p.delay(UINT32_MAX), p.max);
}

TEST(Backoff, AFirstDelayAboveTheCapIsCapped) {
  backoff_policy p{milliseconds(9000), milliseconds(5000), 2};
  EXPECT_EQ(p.delay(0), milliseconds(5000));
}

}  // namespace
}  // namespace framehive
