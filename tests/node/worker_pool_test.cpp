// worker_pool: slots, hello, backoff and pick, with a fake launcher and a
// manual clock (no processes, no sleeps).

#include "node/worker_pool.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>

using namespace framehive;
using namespace std::chrono_literals;

namespace {

/// Hands out pids and lets the test decide when a worker ends.
class fake_launcher final : public worker_launcher {
 public:
  result<uint32_t, std::string> start(uint32_t index) override {
    ++starts[index];
    if (fail_starts)
      return std::string("exec format error");
    running[index] = next_pid;
    return next_pid++;
  }
  std::optional<std::string> poll_exit(uint32_t index) override {
    auto it = exited.find(index);
    if (it == exited.end())
      return std::nullopt;
    auto why = it->second;
    exited.erase(it);
    running.erase(index);
    return why;
  }
  void kill(uint32_t index) override {
    killed.insert(index);
    if (running.count(index))
      exited[index] = "killed by signal 9";
  }

  /// The worker of slot `index` ends on its own.
  void crash(uint32_t index) { exited[index] = "killed by signal 11"; }

  bool fail_starts = false;
  uint32_t next_pid = 100;
  std::map<uint32_t, uint32_t> running;  ///< index -> pid
  std::map<uint32_t, std::string> exited;
  std::map<uint32_t, int> starts;
  std::set<uint32_t> killed;
};

class WorkerPool : public ::testing::Test {
 protected:
  void make(uint32_t size, worker_pool_options o = {}) {
    o.secret = secret;
    auto l = std::make_unique<fake_launcher>();
    launcher = l.get();
    pool = std::make_unique<worker_pool>(size, std::move(l), clock, o);
    pool->on_tick();  // starts every slot
  }

  void hello(uint32_t index) { ASSERT_TRUE(pool->on_hello(index, pool->slots()[index].pid, secret).ok()); }

  const std::string secret = "5e3c7a1f0b9d4e2a";  ///< what the node handed its workers
  manual_clock clock;
  fake_launcher* launcher = nullptr;
  std::unique_ptr<worker_pool> pool;
};

}  // namespace

TEST_F(WorkerPool, TheFirstTickStartsEverySlot) {
  make(3);
  for (const auto& w : pool->slots()) {
    EXPECT_EQ(w.state, actor_state::starting);
    EXPECT_EQ(w.pid, 100 + w.index);
    EXPECT_EQ(launcher->starts[w.index], 1);
  }
  EXPECT_FALSE(pool->pick()) << "no worker said hello yet";
}

TEST_F(WorkerPool, HelloFromTheStartedProcessMakesItReady) {
  make(2);
  auto ok = pool->on_hello(1, 101, secret);
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_EQ(pool->slots()[1].state, actor_state::ready);
  EXPECT_TRUE(pool->is_ready(1));
  EXPECT_EQ(pool->pick(), 1u);
}

TEST_F(WorkerPool, HelloWithAnotherPidOrSlotIsRefused) {
  make(2);
  auto wrong_pid = pool->on_hello(0, 101, secret);  // slot 1's pid
  ASSERT_FALSE(wrong_pid.ok());
  EXPECT_NE(wrong_pid.error().find("was not started here"), std::string::npos) << wrong_pid.error();
  EXPECT_FALSE(pool->on_hello(2, 102, secret).ok()) << "no such slot";
  EXPECT_EQ(pool->slots()[0].state, actor_state::starting);
  EXPECT_FALSE(pool->pick());
}

TEST_F(WorkerPool, HelloWithoutTheNodesSecretIsRefusedAndCountedEvenFromTheRightPid) {
  make(2);
  const uint32_t pid = pool->slots()[0].pid;
  for (const std::string& forged :
       std::vector<std::string>{std::string(), std::string("guess"), secret.substr(0, secret.size() - 1),
                                secret + "0", std::string(secret.size(), '0')}) {
    auto r = pool->on_hello(0, pid, forged);
    ASSERT_FALSE(r.ok()) << "secret '" << forged << "' was accepted";
    EXPECT_NE(r.error().find("worker secret"), std::string::npos) << r.error();
    EXPECT_EQ(r.error().find(secret), std::string::npos) << "the refusal must not tell the secret";
  }
  EXPECT_EQ(pool->refused_hellos(), 5u);
  EXPECT_EQ(pool->slots()[0].state, actor_state::starting);
  EXPECT_FALSE(pool->pick()) << "a refused hello makes no worker ready";
  ASSERT_TRUE(pool->on_hello(0, pid, secret).ok());
  EXPECT_EQ(pool->refused_hellos(), 5u);
  EXPECT_EQ(pool->pick(), 0u);
}

TEST_F(WorkerPool, RestartDelaysGrowAndCap) {
  worker_pool_options o;
  o.restart_backoff = backoff_policy{100ms, 800ms, 2};
  make(1, o);
  for (auto delay : {100ms, 200ms, 400ms, 800ms, 800ms}) {
    launcher->crash(0);
    auto exits = pool->on_tick();
    ASSERT_EQ(exits.size(), 1u);
    EXPECT_EQ(exits[0].why, "killed by signal 11");
    EXPECT_EQ(pool->slots()[0].state, actor_state::restarting);
    const int starts = launcher->starts[0];
    clock.advance(delay - 1ms);
    pool->on_tick();
    EXPECT_EQ(launcher->starts[0], starts) << "restarted before its " << delay.count() << " ms delay";
    clock.advance(1ms);
    pool->on_tick();
    EXPECT_EQ(launcher->starts[0], starts + 1) << "not restarted after its " << delay.count() << " ms delay";
    EXPECT_EQ(pool->slots()[0].state, actor_state::starting);
  }
  EXPECT_EQ(pool->slots()[0].restarts, 5u);
}

TEST_F(WorkerPool, AWorkerThatRanForAWhileRestartsAfterTheFirstDelayAgain) {
  worker_pool_options o;
  o.restart_backoff = backoff_policy{100ms, 10s, 2};
  o.stable_after = 10s;
  make(1, o);
  for (int i = 0; i < 3; ++i) {  // a restart loop: 100, 200, 400 ms
    launcher->crash(0);
    pool->on_tick();
    clock.advance(1s);
    pool->on_tick();
  }
  hello(0);
  clock.advance(10s);
  launcher->crash(0);
  pool->on_tick();
  EXPECT_EQ(pool->slots()[0].restart_at_ns, clock.now_ns() + to_ns(100ms));
}

TEST_F(WorkerPool, AFailedStartIsRetriedAfterTheBackoff) {
  worker_pool_options o;
  o.restart_backoff = backoff_policy{100ms, 800ms, 2};
  auto l = std::make_unique<fake_launcher>();
  launcher = l.get();
  launcher->fail_starts = true;
  pool = std::make_unique<worker_pool>(1, std::move(l), clock, o);
  pool->on_tick();
  EXPECT_EQ(pool->slots()[0].state, actor_state::restarting);
  EXPECT_EQ(pool->slots()[0].pid, 0u);
  launcher->fail_starts = false;
  clock.advance(99ms);
  pool->on_tick();
  EXPECT_EQ(launcher->starts[0], 1);
  clock.advance(1ms);
  pool->on_tick();
  EXPECT_EQ(launcher->starts[0], 2);
  EXPECT_EQ(pool->slots()[0].state, actor_state::starting);
}

TEST_F(WorkerPool, PickIsRoundRobinOverReadyWorkers) {
  make(3);
  hello(0);
  hello(2);
  EXPECT_EQ(pool->pick(), 0u);
  EXPECT_EQ(pool->pick(), 2u);
  EXPECT_EQ(pool->pick(), 0u);
  EXPECT_EQ(pool->pick(), 2u);
  hello(1);
  EXPECT_EQ(pool->pick(), 0u);
  EXPECT_EQ(pool->pick(), 1u);
  EXPECT_EQ(pool->pick(), 2u);
}

TEST_F(WorkerPool, AKilledWorkerIsNotPickedAndItsExitIsReportedOnce) {
  make(2);
  hello(0);
  hello(1);
  pool->kill(1);
  EXPECT_EQ(launcher->killed, std::set<uint32_t>{1});
  EXPECT_EQ(pool->slots()[1].state, actor_state::restarting);
  EXPECT_FALSE(pool->on_hello(1, 101, secret).ok()) << "a dying worker does not become ready again";
  EXPECT_EQ(pool->pick(), 0u);
  EXPECT_EQ(pool->pick(), 0u);
  auto exits = pool->on_tick();
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].index, 1u);
  EXPECT_EQ(exits[0].pid, 101u);
  EXPECT_TRUE(pool->on_tick().empty());
  EXPECT_EQ(pool->slots()[1].restarts, 1u);
}

TEST_F(WorkerPool, ARestartedWorkerAcceptsOnlyItsNewPid) {
  worker_pool_options o;
  o.restart_backoff = backoff_policy{100ms, 800ms, 2};
  make(1, o);
  hello(0);
  launcher->crash(0);
  pool->on_tick();
  clock.advance(100ms);
  pool->on_tick();
  EXPECT_FALSE(pool->on_hello(0, 100, secret).ok()) << "the old process's pid";
  EXPECT_TRUE(pool->on_hello(0, 101, secret).ok());
}
