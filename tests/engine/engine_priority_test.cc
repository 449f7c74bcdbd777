#include "engine/engine.h"
// The subject header comes first: that proves it is self-contained.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/engine/engine_test_util.h"

namespace bmos::engine {
namespace {

using namespace test_util;  // NOLINT: test helpers
using namespace std::chrono_literals;

// One worker, held by a gate task while the test fills the queues; then records the order in
// which tasks start.
class PriorityTest : public ::testing::Test {
 protected:
  void RunMixedRounds(int anti_starvation_interval, int rounds);
  void RunCriticalBacklogWithFiveLow(int anti_starvation_interval, std::vector<Priority>* order);
  void Open(int anti_starvation_interval) {
    EngineOptions o = MakeOptions(1);
    o.anti_starvation_interval = anti_starvation_interval;
    Result<std::unique_ptr<Engine>> r = Engine::Open(std::move(o));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    engine_ = std::move(r).value();
    ASSERT_TRUE(engine_
                    ->RegisterHandler("gate",
                                      [this](TaskContext& ctx) -> HandlerResult {
                                        gate_started_.Add();
                                        gate_.Wait(&ctx);
                                        return NoopResult();
                                      })
                    .ok());
    ASSERT_TRUE(engine_
                    ->RegisterHandler("rec",
                                      [this](TaskContext& ctx) -> HandlerResult {
                                        std::lock_guard<std::mutex> lock(mu_);
                                        order_.push_back(ctx.priority());
                                        return NoopResult();
                                      })
                    .ok());
  }
  Engine& engine() { return *engine_; }

  // Starts the gate task and waits until it holds the only worker.
  TaskId HoldWorker() {
    TaskId id = EnqueueOrFail(engine(), Req("gate"));
    EXPECT_TRUE(gate_started_.WaitAtLeast(1));
    return id;
  }

  EnqueueRequest Rec(Priority p) {
    EnqueueRequest r = Req("rec");
    r.priority = p;
    return r;
  }

  std::vector<Priority> Order() {
    std::lock_guard<std::mutex> lock(mu_);
    return order_;
  }

  // Positions of `p` in the start order.
  static std::vector<size_t> Positions(const std::vector<Priority>& order, Priority p) {
    std::vector<size_t> out;
    for (size_t i = 0; i < order.size(); ++i) {
      if (order[i] == p) out.push_back(i);
    }
    return out;
  }

  Gate gate_;
  Counter gate_started_;
  std::mutex mu_;
  std::vector<Priority> order_;
  std::unique_ptr<Engine> engine_;
};

void ExpectPriorityOrder(const std::vector<Priority>& order, size_t expected_size) {
  ASSERT_EQ(order.size(), expected_size);
  for (size_t i = 1; i < order.size(); ++i) {
    EXPECT_GE(static_cast<int>(order[i - 1]), static_cast<int>(order[i]))
        << "a " << storage::ToString(order[i]) << " task started after a "
        << storage::ToString(order[i - 1]) << " one at position " << i;
  }
}

// Holds the only worker, enqueues `rounds` x (LOW, NORMAL, HIGH, CRITICAL), releases it and
// checks that they started in priority order.
void PriorityTest::RunMixedRounds(int anti_starvation_interval, int rounds) {
  Open(anti_starvation_interval);
  TaskId gate = HoldWorker();
  std::vector<TaskId> ids;
  for (int i = 0; i < rounds; ++i) {
    for (Priority p : {Priority::kLow, Priority::kNormal, Priority::kHigh, Priority::kCritical}) {
      ids.push_back(EnqueueOrFail(engine(), Rec(p)));
    }
  }
  gate_.Open();
  WaitTerminal(engine(), gate);
  for (const TaskId& id : ids) WaitTerminal(engine(), id);
  ExpectPriorityOrder(Order(), ids.size());
}

TEST_F(PriorityTest, StrictOrderCriticalHighNormalLow) { RunMixedRounds(/*interval=*/0, 5); }

TEST_F(PriorityTest, DefaultGuardKeepsOrderForAFewTasks) {
  // 12 tasks after the gate: fewer picks than the default interval (32), so the guard does not
  // reorder them.
  RunMixedRounds(/*interval=*/32, 3);
}

TEST_F(PriorityTest, BatchRespectsPriority) {
  Open(/*anti_starvation_interval=*/0);
  TaskId gate = HoldWorker();
  std::vector<EnqueueRequest> batch;
  for (int i = 0; i < 4; ++i) {
    for (Priority p : {Priority::kNormal, Priority::kLow, Priority::kCritical, Priority::kHigh}) {
      batch.push_back(Rec(p));
    }
  }
  Result<std::vector<EnqueueResult>> r = engine().EnqueueBatch(batch);
  BMOS_ASSERT_OK(r);
  gate_.Open();
  WaitTerminal(engine(), gate);
  for (const EnqueueResult& e : *r) WaitTerminal(engine(), e.id);
  ExpectPriorityOrder(Order(), batch.size());
}

// Holds the only worker, enqueues 2000 CRITICAL then 5 LOW tasks, releases it and returns the
// priorities in the order the tasks started.
void PriorityTest::RunCriticalBacklogWithFiveLow(int anti_starvation_interval,
                                                 std::vector<Priority>* order) {
  Open(anti_starvation_interval);
  TaskId gate = HoldWorker();
  std::vector<EnqueueRequest> criticals(2000, Rec(Priority::kCritical));
  Result<std::vector<EnqueueResult>> crit = engine().EnqueueBatch(criticals);
  BMOS_ASSERT_OK(crit);
  std::vector<TaskId> lows;
  for (int i = 0; i < 5; ++i) lows.push_back(EnqueueOrFail(engine(), Rec(Priority::kLow)));
  gate_.Open();
  WaitTerminal(engine(), gate);
  for (const EnqueueResult& e : *crit) WaitTerminal(engine(), e.id);
  for (const TaskId& id : lows) WaitTerminal(engine(), id);

  *order = Order();
  ASSERT_EQ(order->size(), 2005u);
}

TEST_F(PriorityTest, AntiStarvationLetsLowRunUnderACriticalBacklog) {
  std::vector<Priority> order;
  ASSERT_NO_FATAL_FAILURE(RunCriticalBacklogWithFiveLow(/*interval=*/32, &order));
  std::vector<size_t> low = Positions(order, Priority::kLow);
  std::vector<size_t> critical = Positions(order, Priority::kCritical);
  ASSERT_EQ(low.size(), 5u);
  ASSERT_EQ(critical.size(), 2000u);
  EXPECT_LT(low.back(), critical.back())
      << "the last LOW task started at " << low.back() << ", after every CRITICAL one";
  // With the guard every level gets at least 1/(3*interval) of the picks: all five LOW tasks
  // start within the first 5 * 3 * 32 = 480 picks; twice that leaves slack for dequeue batches.
  EXPECT_LT(low.back(), 2u * 5 * 3 * 32);
}

TEST_F(PriorityTest, StrictPriorityStarvesLowUntilCriticalDrains) {
  std::vector<Priority> order;
  ASSERT_NO_FATAL_FAILURE(RunCriticalBacklogWithFiveLow(/*interval=*/0, &order));
  std::vector<size_t> low = Positions(order, Priority::kLow);
  ASSERT_EQ(low.size(), 5u);
  EXPECT_EQ(low.front(), 2000u) << "a LOW task overtook CRITICAL ones with the guard off";
}

TEST_F(PriorityTest, LowCompletesWhileCriticalKeepsArriving) {
  // A producer keeps at least `kBacklog` CRITICAL tasks waiting (bounded in count and time) while
  // LOW tasks wait. With the guard, the LOW tasks complete while the flood is still going.
  Open(/*anti_starvation_interval=*/32);
  constexpr int kBacklog = 256;
  const int max_criticals = kTsan ? 50'000 : 500'000;
  std::atomic<int> critical_started{0};
  BMOS_ASSERT_OK(engine().RegisterHandler("crit", [&](TaskContext&) -> HandlerResult {
    critical_started.fetch_add(1, std::memory_order_relaxed);
    return NoopResult();
  }));
  BMOS_ASSERT_OK(engine().RegisterHandler(
      "low", [](TaskContext&) -> HandlerResult { return NoopResult(); },
      WithPriority(Priority::kLow)));
  EnqueueRequest crit_request = Req("crit");
  crit_request.priority = Priority::kCritical;

  TaskId gate = HoldWorker();
  BMOS_ASSERT_OK(engine().EnqueueBatch(std::vector<EnqueueRequest>(1000, crit_request)));
  int critical_enqueued = 1000;
  std::vector<TaskId> lows;
  for (int i = 0; i < 5; ++i) lows.push_back(EnqueueOrFail(engine(), Req("low")));

  std::atomic<bool> lows_done{false};
  std::atomic<bool> stopped_by_lows{false};
  std::thread producer([&] {
    const auto deadline = SteadyClock::now() + 20s;
    while (critical_enqueued < max_criticals && SteadyClock::now() < deadline) {
      if (lows_done.load(std::memory_order_acquire)) {
        stopped_by_lows.store(true, std::memory_order_relaxed);
        return;
      }
      if (critical_enqueued - critical_started.load(std::memory_order_relaxed) < kBacklog) {
        Result<std::vector<EnqueueResult>> r =
            engine().EnqueueBatch(std::vector<EnqueueRequest>(64, crit_request));
        if (!r.ok()) return;
        critical_enqueued += 64;
      } else {
        std::this_thread::yield();
      }
    }
  });
  gate_.Open();
  bool all_low = true;
  for (const TaskId& id : lows) {
    Result<TaskRecord> r = engine().Wait(id, 30s);
    all_low = all_low && r.ok() && r->state == TaskState::kCompleted;
  }
  lows_done.store(true, std::memory_order_release);
  producer.join();
  EXPECT_TRUE(all_low);
  EXPECT_TRUE(stopped_by_lows.load())
      << "the LOW tasks completed only after the CRITICAL flood stopped (" << critical_enqueued
      << " CRITICAL enqueued)";
  WaitTerminal(engine(), gate);
  // The "crit" handler uses this frame's counter: stop before it goes out of scope.
  BMOS_EXPECT_OK(engine().Stop(0ms));
}

}  // namespace
}  // namespace bmos::engine
