#include "engine/engine.h"
// The subject header comes first: that proves it is self-contained.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "tests/engine/engine_test_util.h"

namespace bmos::engine {
namespace {

using ::testing::HasSubstr;
using namespace test_util;  // NOLINT: test helpers
using namespace std::chrono_literals;

class CancelTest : public ::testing::Test {
 protected:
  void Open(int workers, Clock* clock = nullptr) {
    EngineOptions o = MakeOptions(workers, clock);
    o.retry.base = 1000ms;
    o.retry.jitter = 0;
    Result<std::unique_ptr<Engine>> r = Engine::Open(std::move(o));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    engine_ = std::move(r).value();
    ASSERT_TRUE(engine_->RegisterHandler("noop", NoopHandler()).ok());
    // Counts runs; must never run for a task cancelled before it started.
    ASSERT_TRUE(engine_
                    ->RegisterHandler("counted",
                                      [this](TaskContext&) -> HandlerResult {
                                        counted_runs_.fetch_add(1);
                                        return NoopResult();
                                      })
                    .ok());
    // Holds a worker until gate_ opens.
    ASSERT_TRUE(engine_
                    ->RegisterHandler("gate",
                                      [this](TaskContext& ctx) -> HandlerResult {
                                        started_.Add();
                                        gate_.Wait(&ctx);
                                        return NoopResult();
                                      })
                    .ok());
  }
  Engine& engine() { return *engine_; }

  void ExpectCancelled(const TaskId& id) {
    Result<TaskRecord> r = engine().Get(id);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->state, TaskState::kCancelled) << Describe(*r);
    EXPECT_GT(r->completed_ms, 0);
  }

  ManualClock clock_;
  Gate gate_;
  Counter started_;
  Counter saw_token_;
  std::atomic<int> counted_runs_{0};
  std::unique_ptr<Engine> engine_;
};

TEST_F(CancelTest, PendingWithEtaIsCancelledAtOnceAndNeverRuns) {
  Open(2, &clock_);
  EnqueueRequest request = Req("counted");
  request.delay = 5000ms;
  TaskId id = EnqueueOrFail(engine(), request);
  BMOS_ASSERT_OK(engine().Cancel(id));
  ExpectCancelled(id);  // at once: no waiting

  clock_.AdvanceMillis(10'000);
  EXPECT_EQ(WaitTerminal(engine(), EnqueueOrFail(engine(), Req("noop"))).state,
            TaskState::kCompleted);
  ExpectCancelled(id);
  EXPECT_EQ(counted_runs_.load(), 0);
  ASSERT_TRUE(Eventually([&] { return engine().Stats().cancelled == 1; }));
}

TEST_F(CancelTest, PendingBehindABusyWorkerNeverRuns) {
  Open(1);
  TaskId gate = EnqueueOrFail(engine(), Req("gate"));
  ASSERT_TRUE(started_.WaitAtLeast(1));
  std::vector<TaskId> queued;
  for (int i = 0; i < 5; ++i) queued.push_back(EnqueueOrFail(engine(), Req("counted")));
  for (const TaskId& id : queued) {
    BMOS_ASSERT_OK(engine().Cancel(id));
    ExpectCancelled(id);
  }
  TaskId after = EnqueueOrFail(engine(), Req("noop"));
  gate_.Open();
  EXPECT_EQ(WaitTerminal(engine(), gate).state, TaskState::kCompleted);
  EXPECT_EQ(WaitTerminal(engine(), after).state, TaskState::kCompleted);
  for (const TaskId& id : queued) ExpectCancelled(id);
  EXPECT_EQ(counted_runs_.load(), 0);
}

TEST_F(CancelTest, RetryingIsCancelledAtOnceAndNeverRunsAgain) {
  Open(2, &clock_);
  std::atomic<int> runs{0};
  BMOS_ASSERT_OK(engine().RegisterHandler("bad", [&runs](TaskContext&) -> HandlerResult {
    runs.fetch_add(1);
    return Status::Internal("transient");
  }));
  EnqueueRequest request = Req("bad");
  request.max_retries = 3;
  TaskId id = EnqueueOrFail(engine(), request);
  BMOS_ASSERT_OK(WaitForState(engine(), id, TaskState::kRetrying));
  BMOS_ASSERT_OK(engine().Cancel(id));
  ExpectCancelled(id);

  clock_.AdvanceMillis(60'000);
  EXPECT_EQ(WaitTerminal(engine(), EnqueueOrFail(engine(), Req("noop"))).state,
            TaskState::kCompleted);
  ExpectCancelled(id);
  EXPECT_EQ(runs.load(), 1);
}

TEST_F(CancelTest, RunningTaskObservingTokenEndsCancelled) {
  Open(2);
  BMOS_ASSERT_OK(engine().RegisterHandler("long", [this](TaskContext& ctx) -> HandlerResult {
    started_.Add();
    if (!WaitForToken(ctx)) return boost::json::value("token never set");
    saw_token_.Add();
    return Status::Cancelled("stopped early");
  }));
  TaskId id = EnqueueOrFail(engine(), Req("long"));
  ASSERT_TRUE(started_.WaitAtLeast(1));
  BMOS_ASSERT_OK(engine().Cancel(id));
  TaskRecord done = WaitTerminal(engine(), id);
  EXPECT_EQ(done.state, TaskState::kCancelled) << Describe(done);
  EXPECT_EQ(saw_token_.Get(), 1);
  EXPECT_GT(done.started_ms, 0);
  EXPECT_GT(done.completed_ms, 0);
  ASSERT_TRUE(Eventually([&] { return engine().Stats().cancelled == 1; }));
  EXPECT_EQ(engine().Stats().failed, 0u);
}

TEST_F(CancelTest, CancelledRunningTaskIsNotRetried) {
  // Attempts remain, but a task cancelled while running ends CANCELLED; it is not retried.
  Open(2);
  std::atomic<int> runs{0};
  BMOS_ASSERT_OK(engine().RegisterHandler("long", [&](TaskContext& ctx) -> HandlerResult {
    runs.fetch_add(1);
    started_.Add();
    WaitForToken(ctx);
    return Status::Cancelled("cancelled by user");
  }));
  EnqueueRequest request = Req("long");
  request.max_retries = 3;
  TaskId id = EnqueueOrFail(engine(), request);
  ASSERT_TRUE(started_.WaitAtLeast(1));
  BMOS_ASSERT_OK(engine().Cancel(id));
  TaskRecord done = WaitTerminal(engine(), id);
  EXPECT_EQ(done.state, TaskState::kCancelled) << Describe(done);
  EXPECT_EQ(done.retry_count, 0);
  EXPECT_EQ(runs.load(), 1);
}

TEST_F(CancelTest, RunningTaskIgnoringTokenCompletes) {
  Open(2);
  BMOS_ASSERT_OK(engine().RegisterHandler("stubborn", [this](TaskContext& ctx) -> HandlerResult {
    started_.Add();
    if (WaitForToken(ctx)) saw_token_.Add();
    return boost::json::value("finished anyway");
  }));
  TaskId id = EnqueueOrFail(engine(), Req("stubborn"));
  ASSERT_TRUE(started_.WaitAtLeast(1));
  BMOS_ASSERT_OK(engine().Cancel(id));
  TaskRecord done = WaitTerminal(engine(), id);
  EXPECT_EQ(done.state, TaskState::kCompleted) << Describe(done);
  EXPECT_EQ(done.result_json, "\"finished anyway\"");
  EXPECT_EQ(saw_token_.Get(), 1);
}

TEST_F(CancelTest, TokenIsVisibleToThreadsTheHandlerStarts) {
  Open(2);
  BMOS_ASSERT_OK(engine().RegisterHandler("fanout", [this](TaskContext& ctx) -> HandlerResult {
    const CancelToken& token = ctx.cancel_token();
    std::atomic<int> saw{0};
    std::vector<std::thread> helpers;
    for (int i = 0; i < 3; ++i) {
      helpers.emplace_back([&] {
        if (Eventually([&] { return token.cancelled(); }, kSafetyTimeout)) saw.fetch_add(1);
      });
    }
    started_.Add();
    for (auto& t : helpers) t.join();
    if (saw.load() != 3) return boost::json::value("helpers missed the token");
    return Status::Cancelled("helpers saw the token");
  }));
  TaskId id = EnqueueOrFail(engine(), Req("fanout"));
  ASSERT_TRUE(started_.WaitAtLeast(1));
  BMOS_ASSERT_OK(engine().Cancel(id));
  TaskRecord done = WaitTerminal(engine(), id);
  EXPECT_EQ(done.state, TaskState::kCancelled) << Describe(done);
}

TEST_F(CancelTest, TerminalTasksCannotBeCancelled) {
  Open(2);
  BMOS_ASSERT_OK(engine().RegisterHandler(
      "bad", [](TaskContext&) -> HandlerResult { return Status::Internal("no"); }, WithRetries(0)));
  TaskId completed = EnqueueOrFail(engine(), Req("noop"));
  TaskId failed = EnqueueOrFail(engine(), Req("bad"));
  EnqueueRequest later = Req("noop");
  later.delay = std::chrono::hours(1);
  TaskId cancelled = EnqueueOrFail(engine(), later);
  BMOS_ASSERT_OK(engine().Cancel(cancelled));
  EXPECT_EQ(WaitTerminal(engine(), completed).state, TaskState::kCompleted);
  EXPECT_EQ(WaitTerminal(engine(), failed).state, TaskState::kFailed);

  for (const TaskId& id : {completed, failed, cancelled}) {
    const TaskState before = engine().Get(id)->state;
    Status s = engine().Cancel(id);
    EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition) << s.ToString();
    EXPECT_FALSE(s.message().empty());
    EXPECT_EQ(engine().Get(id)->state, before);  // unchanged
  }
  Status unknown = engine().Cancel(storage::NewTaskId(engine().clock().NowMillis()));
  EXPECT_EQ(unknown.code(), Status::Code::kNotFound) << unknown.ToString();
}

class CancelRaceTest : public CancelTest, public ::testing::WithParamInterface<int> {};

TEST_P(CancelRaceTest, CancelRacesWithWorkers) {
  // Cancel every task while the workers pick them up: each ends CANCELLED without having run, or
  // ran exactly once and COMPLETED (the handler ignores the token). Never both, never twice.
  Open(GetParam());
  const int n = kTsan ? 1000 : 5000;
  std::vector<std::atomic<int>> runs(n);
  BMOS_ASSERT_OK(engine().RegisterHandler("t", [&runs](TaskContext& ctx) -> HandlerResult {
    runs[static_cast<size_t>(ctx.data().as_object().at("i").as_int64())].fetch_add(1);
    return NoopResult();
  }));
  std::vector<TaskId> ids(n);
  std::atomic<int> enqueued{0};
  std::thread producer([&] {
    for (int i = 0; i < n; ++i) {
      ids[i] = EnqueueOrFail(engine(), Req("t", {{"i", i}}));
      enqueued.store(i + 1, std::memory_order_release);
    }
  });
  int cancel_ok = 0, cancel_late = 0;
  // Tasks that Get showed CANCELLED right after Cancel returned: cancelled "at once", so they must
  // end CANCELLED and never run.
  std::vector<bool> cancelled_at_once(n, false);
  for (int i = 0; i < n; ++i) {
    while (enqueued.load(std::memory_order_acquire) <= i) std::this_thread::yield();
    Status s = engine().Cancel(ids[i]);
    if (s.ok()) {
      ++cancel_ok;
      Result<TaskRecord> now = engine().Get(ids[i]);
      cancelled_at_once[i] = now.ok() && now->state == TaskState::kCancelled;
    } else {
      EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition) << s.ToString();
      ++cancel_late;
    }
  }
  producer.join();
  int cancelled = 0, completed = 0;
  for (int i = 0; i < n; ++i) {
    TaskRecord r = WaitTerminal(engine(), ids[i]);
    const int ran = runs[i].load();
    if (cancelled_at_once[i]) {
      EXPECT_EQ(r.state, TaskState::kCancelled)
          << "task " << i << " was CANCELLED at once, then ended " << Describe(r);
      EXPECT_EQ(ran, 0) << "task " << i << " was CANCELLED at once, then ran";
    }
    if (r.state == TaskState::kCancelled) {
      ++cancelled;
      EXPECT_EQ(ran, 0) << "task " << i << " was cancelled after it ran";
    } else {
      EXPECT_EQ(r.state, TaskState::kCompleted) << "task " << i << ": " << Describe(r);
      ++completed;
      EXPECT_EQ(ran, 1) << "task " << i;
    }
  }
  EXPECT_EQ(cancelled + completed, n);
  EXPECT_EQ(cancel_ok + cancel_late, n);
  EXPECT_LE(cancelled, cancel_ok);
  ASSERT_TRUE(Eventually([&] {
    EngineStats s = engine().Stats();
    return s.cancelled == static_cast<uint64_t>(cancelled) &&
           s.completed == static_cast<uint64_t>(completed);
  })) << "stats: cancelled="
      << engine().Stats().cancelled << " completed=" << engine().Stats().completed << " expected "
      << cancelled << "/" << completed;
}

INSTANTIATE_TEST_SUITE_P(Workers, CancelRaceTest, ::testing::Values(1, 2, 4, 8));

TEST_F(CancelTest, ConcurrentCancelsOfOneTask) {
  // Many threads cancel the same PENDING task: one succeeds, and the others find a terminal task
  // (FailedPrecondition). The counter counts it once.
  Open(2);
  EnqueueRequest request = Req("counted");
  request.delay = std::chrono::hours(1);
  TaskId id = EnqueueOrFail(engine(), request);
  std::atomic<int> ok{0}, precondition{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      Status s = engine().Cancel(id);
      if (s.ok()) {
        ok.fetch_add(1);
      } else if (s.code() == Status::Code::kFailedPrecondition) {
        precondition.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(precondition.load(), 7);
  ExpectCancelled(id);
  ASSERT_TRUE(Eventually([&] { return engine().Stats().cancelled == 1; }));
  EXPECT_EQ(engine().Stats().cancelled, 1u);
}

}  // namespace
}  // namespace bmos::engine
