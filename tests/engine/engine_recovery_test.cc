#include "engine/engine.h"
// The subject header comes first: that proves it is self-contained.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <vector>

#include "storage/rocksdb_task_store.h"
#include "tests/engine/engine_test_util.h"
#include "tests/storage/store_test_util.h"

namespace bmos::engine {
namespace {

using ::testing::HasSubstr;
using namespace test_util;  // NOLINT: test helpers
using namespace std::chrono_literals;

// Open replays the store: PENDING and RETRYING tasks return to their queues or the timer, and an
// attempt that was RUNNING when the process stopped runs again, counted as an attempt. Run on the
// RocksDB store (reopened between engines, as after a restart) and on a memory store reporting
// kSync (the engine writes live records to it).
class RecoveryTest : public ::testing::TestWithParam<bool> {
 protected:
  RecoveryTest() { ReopenStore(); }

  bool rocks() const { return GetParam(); }

  // As a restart does: closes the store and opens it again (the RocksDB variant).
  void ReopenStore() {
    if (!rocks()) {
      if (store_ == nullptr) store_ = std::make_shared<LabelledStore>(Durability::kSync);
      return;
    }
    store_.reset();
    storage::RocksDbStoreOptions o;
    o.path = dir_.path();
    o.durability = Durability::kSync;
    auto opened = storage::RocksDbTaskStore::Open(o);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    if (opened.ok()) store_ = std::move(opened).value();
  }

  EngineOptions Options(int workers) {
    EngineOptions o = MakeOptions(workers);
    o.durability = Durability::kSync;
    o.store = store_;
    o.retry.base = std::chrono::hours(1);  // a retrying task stays RETRYING for the test
    o.retry.cap = std::chrono::hours(1);
    o.retry.jitter = 0;
    return o;
  }
  std::unique_ptr<Engine> Open(int workers) {
    Result<std::unique_ptr<Engine>> r = Engine::Open(Options(workers));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  Handler Counting() {
    return [this](TaskContext& ctx) -> HandlerResult {
      runs_.fetch_add(1);
      return boost::json::value(ctx.attempt());
    };
  }

  // A stored record, as a crashed process would have left it.
  TaskRecord Stored(std::string name, TaskState state, int32_t retry_count, int32_t max_retries) {
    auto spec = std::make_shared<storage::TaskSpec>();
    const int64_t now_ms = SystemClock()->NowMillis();
    spec->id = storage::NewTaskId(now_ms);
    spec->name = std::move(name);
    spec->queue = "default";
    spec->data_json = "{}";
    spec->max_retries = max_retries;
    spec->created_ms = now_ms;
    TaskRecord r;
    r.spec = std::move(spec);
    r.state = state;
    r.retry_count = retry_count;
    r.started_ms = state == TaskState::kRunning ? now_ms : 0;
    return r;
  }

  storage::test_util::TempDir dir_{"recovery"};
  std::shared_ptr<storage::TaskStore> store_;
  Gate gate_;
  Counter started_;
  std::atomic<int> runs_{0};
};

TEST_P(RecoveryTest, LiveTasksSurviveAStopAndRunAfterReopen) {
  TaskId gate, a, b, later, retrying;
  {
    std::unique_ptr<Engine> first = Open(1);
    ASSERT_NE(first, nullptr);
    BMOS_ASSERT_OK(first->RegisterHandler("gate", [this](TaskContext& ctx) -> HandlerResult {
      started_.Add();
      gate_.Wait(&ctx);
      return Status::Cancelled("stopped");
    }));
    BMOS_ASSERT_OK(first->RegisterHandler("work", Counting()));
    BMOS_ASSERT_OK(first->RegisterHandler(
        "bad", [](TaskContext&) -> HandlerResult { return Status::Internal("transient"); }));
    retrying = EnqueueOrFail(*first, Req("bad"));
    BMOS_ASSERT_OK(WaitForState(*first, retrying, TaskState::kRetrying));
    gate = EnqueueOrFail(*first, Req("gate"));
    ASSERT_TRUE(started_.WaitAtLeast(1));
    a = EnqueueOrFail(*first, Req("work", {{"n", 1}}));
    b = EnqueueOrFail(*first, Req("work", {{"n", 2}}));
    EnqueueRequest delayed = Req("work");
    delayed.delay = std::chrono::hours(2);
    delayed.unique_key = "nightly";
    later = EnqueueOrFail(*first, delayed);
    BMOS_ASSERT_OK(first->Stop(0ms));
    EXPECT_EQ(runs_.load(), 0);
  }
  ReopenStore();
  for (const TaskId& id : {a, b, later}) {
    Result<TaskRecord> r = store_->Get(id);
    BMOS_ASSERT_OK(r);
    EXPECT_EQ(r->state, TaskState::kPending) << Describe(*r);
  }

  std::unique_ptr<Engine> second = Open(2);
  ASSERT_NE(second, nullptr);
  // Counters start right: a, b and later PENDING, retrying RETRYING (nothing ran yet: no
  // handler is registered).
  EngineStats before = second->Stats();
  EXPECT_EQ(before.by_queue["default"][static_cast<int>(TaskState::kPending)], 3u);
  EXPECT_EQ(before.by_queue["default"][static_cast<int>(TaskState::kRetrying)], 1u);
  EXPECT_EQ(before.live_tasks, 4u);
  BMOS_ASSERT_OK(second->RegisterHandler("work", Counting()));
  BMOS_ASSERT_OK(second->RegisterHandler(
      "bad", [](TaskContext&) -> HandlerResult { return Status::Internal("transient"); }));
  BMOS_ASSERT_OK(second->RegisterHandler("gate", NoopHandler()));
  for (const TaskId& id : {a, b}) {
    TaskRecord r = WaitTerminal(*second, id);
    EXPECT_EQ(r.state, TaskState::kCompleted) << Describe(r);
    EXPECT_EQ(r.result_json, "1");  // their first attempt
  }
  EXPECT_EQ(runs_.load(), 2);

  // Still waiting: the ETA and the backoff were kept.
  Result<TaskRecord> l = second->Get(later);
  BMOS_ASSERT_OK(l);
  EXPECT_EQ(l->state, TaskState::kPending);
  EXPECT_GT(l->run_at_ms, SystemClock()->NowMillis() + 3'600'000);
  Result<TaskRecord> rt = second->Get(retrying);
  BMOS_ASSERT_OK(rt);
  EXPECT_EQ(rt->state, TaskState::kRetrying) << Describe(*rt);
  EXPECT_EQ(rt->retry_count, 1);

  // The recovered task still holds its unique key.
  EnqueueRequest again = Req("work");
  again.unique_key = "nightly";
  Result<EnqueueResult> dup = second->Enqueue(again);
  BMOS_ASSERT_OK(dup);
  EXPECT_FALSE(dup->created);
  EXPECT_EQ(dup->id, later);

  // And all of them can still be cancelled.
  BMOS_EXPECT_OK(second->Cancel(later));
  BMOS_EXPECT_OK(second->Cancel(retrying));
}

TEST_P(RecoveryTest, InterruptedAttemptRunsAgainAsAnAttempt) {
  TaskRecord interrupted = Stored("work", TaskState::kRunning, 0, 2);
  TaskRecord exhausted = Stored("work", TaskState::kRunning, 2, 2);
  TaskRecord pending = Stored("work", TaskState::kPending, 0, 2);
  BMOS_ASSERT_OK(store_->Write(std::vector<TaskRecord>{interrupted, exhausted, pending}));

  std::unique_ptr<Engine> engine = Open(2);
  ASSERT_NE(engine, nullptr);
  BMOS_ASSERT_OK(engine->RegisterHandler("work", Counting()));

  TaskRecord r = WaitTerminal(*engine, interrupted.id());
  EXPECT_EQ(r.state, TaskState::kCompleted) << Describe(r);
  EXPECT_EQ(r.retry_count, 1);
  EXPECT_EQ(r.result_json, "2");  // the interrupted attempt counted: this is attempt 2

  // No attempts left: the interrupted attempt was the last one.
  TaskRecord x = WaitTerminal(*engine, exhausted.id());
  EXPECT_EQ(x.state, TaskState::kFailed) << Describe(x);
  EXPECT_FALSE(x.error.empty());

  TaskRecord p = WaitTerminal(*engine, pending.id());
  EXPECT_EQ(p.state, TaskState::kCompleted) << Describe(p);
  EXPECT_EQ(p.result_json, "1");
  EXPECT_EQ(runs_.load(), 2);
}

TEST_P(RecoveryTest, RecoveredTasksRunAsSoonAsTheirHandlerIsRegistered) {
  // The handler is registered only after Open (as a server does); the recovered task must not
  // wait for a timer. The clock never moves, so only a direct dispatch can run it.
  TaskRecord pending = Stored("late", TaskState::kPending, 0, 2);
  BMOS_ASSERT_OK(store_->Write(std::vector<TaskRecord>{pending}));
  ManualClock clock(SystemClock()->NowMicros());
  EngineOptions o = Options(2);
  o.clock = &clock;
  Result<std::unique_ptr<Engine>> opened = Engine::Open(o);
  BMOS_ASSERT_OK(opened);
  std::unique_ptr<Engine> engine = std::move(opened).value();
  Result<TaskRecord> before = engine->Get(pending.id());
  BMOS_ASSERT_OK(before);
  EXPECT_EQ(before->state, TaskState::kPending);
  BMOS_ASSERT_OK(engine->RegisterHandler("late", Counting()));
  TaskRecord r = WaitTerminal(*engine, pending.id());
  EXPECT_EQ(r.state, TaskState::kCompleted) << Describe(r);
  EXPECT_EQ(runs_.load(), 1);
  BMOS_EXPECT_OK(engine->Stop(0ms));
}

TEST_P(RecoveryTest, TerminalRecordsAreNotRerun) {
  TaskRecord done = Stored("work", TaskState::kCompleted, 0, 2);
  done.completed_ms = SystemClock()->NowMillis();
  done.result_json = "\"old\"";
  BMOS_ASSERT_OK(store_->Write(std::vector<TaskRecord>{done}));
  std::unique_ptr<Engine> engine = Open(2);
  ASSERT_NE(engine, nullptr);
  BMOS_ASSERT_OK(engine->RegisterHandler("work", Counting()));
  EXPECT_EQ(WaitTerminal(*engine, EnqueueOrFail(*engine, Req("work"))).state,
            TaskState::kCompleted);
  Result<TaskRecord> r = engine->Get(done.id());
  BMOS_ASSERT_OK(r);
  EXPECT_EQ(r->state, TaskState::kCompleted);
  EXPECT_EQ(r->result_json, "\"old\"");
  EXPECT_EQ(runs_.load(), 1);
  Status s = engine->Cancel(done.id());
  EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition) << s.ToString();
}

INSTANTIATE_TEST_SUITE_P(Stores, RecoveryTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("RocksDb") : std::string("Labelled");
                         });

}  // namespace
}  // namespace bmos::engine
