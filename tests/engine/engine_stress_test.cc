#include "engine/engine.h"
// The subject header comes first: that proves it is self-contained.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <thread>
#include <vector>

#include "tests/engine/engine_test_util.h"

namespace bmos::engine {
namespace {

using namespace test_util;  // NOLINT: test helpers
using namespace std::chrono_literals;

constexpr int kTotal = kTsan ? 2'000 : 20'000;

class EngineStress : public ::testing::TestWithParam<int> {};

TEST_P(EngineStress, ProducersEnqueueAndEveryTaskRunsOnce) {
  const int producers = GetParam();
  std::vector<std::atomic<int>> runs(kTotal);
  Counter done;
  EngineOptions o = MakeOptions(4);
  Result<std::unique_ptr<Engine>> opened = Engine::Open(o);
  BMOS_ASSERT_OK(opened);
  Engine& engine = **opened;
  BMOS_ASSERT_OK(engine.RegisterHandler("noop", [&](TaskContext& ctx) -> HandlerResult {
    runs[static_cast<size_t>(ctx.data().as_object().at("i").as_int64())].fetch_add(
        1, std::memory_order_relaxed);
    done.Add();
    return NoopResult();
  }));
  std::barrier start(producers);
  std::atomic<int> enqueue_errors{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      start.arrive_and_wait();
      for (int i = p; i < kTotal; i += producers) {
        if (!engine.Enqueue(Req("noop", {{"i", i}})).ok()) enqueue_errors.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(enqueue_errors.load(), 0);
  ASSERT_TRUE(done.WaitAtLeast(kTotal, 60s)) << done.Get() << " of " << kTotal << " ran";
  for (int i = 0; i < kTotal; ++i) ASSERT_EQ(runs[i].load(), 1) << "task " << i;
  ASSERT_TRUE(Eventually([&] {
    EngineStats s = engine.Stats();
    return s.completed == static_cast<uint64_t>(kTotal) && s.live_tasks == 0;
  })) << "completed="
      << engine.Stats().completed << " live=" << engine.Stats().live_tasks;
  EngineStats s = engine.Stats();
  EXPECT_EQ(s.enqueued, static_cast<uint64_t>(kTotal));
  EXPECT_EQ(s.failed, 0u);
  EXPECT_EQ(s.retried, 0u);
  EXPECT_EQ(s.cancelled, 0u);
  EXPECT_EQ(s.by_state[static_cast<size_t>(TaskState::kCompleted)], static_cast<uint64_t>(kTotal));
  EXPECT_EQ(s.run_time.count, static_cast<uint64_t>(kTotal));
  EXPECT_EQ(s.success_rate, 1.0);
}

TEST_P(EngineStress, BatchesFromManyProducersWithPriorities) {
  const int producers = GetParam();
  std::atomic<int> ran{0};
  Result<std::unique_ptr<Engine>> opened = Engine::Open(MakeOptions(3));
  BMOS_ASSERT_OK(opened);
  Engine& engine = **opened;
  BMOS_ASSERT_OK(engine.RegisterHandler("noop", [&](TaskContext&) -> HandlerResult {
    ran.fetch_add(1, std::memory_order_relaxed);
    return NoopResult();
  }));
  const int per_producer = kTotal / producers / 32 * 32;
  std::vector<std::vector<TaskId>> ids(producers);
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      for (int b = 0; b < per_producer / 32; ++b) {
        std::vector<EnqueueRequest> batch;
        for (int i = 0; i < 32; ++i) {
          EnqueueRequest r = Req("noop");
          r.priority = static_cast<Priority>((b + i) % storage::kPriorityCount);
          batch.push_back(std::move(r));
        }
        Result<std::vector<EnqueueResult>> res = engine.EnqueueBatch(std::move(batch));
        if (!res.ok()) {
          ADD_FAILURE() << res.status().ToString();
          return;
        }
        for (const EnqueueResult& e : *res) ids[p].push_back(e.id);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& list : ids) {
    for (const TaskId& id : list) {
      ASSERT_EQ(WaitTerminal(engine, id, 60s).state, TaskState::kCompleted);
    }
  }
  EXPECT_EQ(ran.load(), per_producer * producers);
}

INSTANTIATE_TEST_SUITE_P(Threads, EngineStress, ::testing::Values(1, 2, 4, 8, 16),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::to_string(info.param) + "_producers";
                         });

}  // namespace
}  // namespace bmos::engine
