// The engine in `sync` mode on the RocksDB store, with file-system faults injected under the
// store (tests/storage/fault_injection_env.h): an enqueue that cannot be logged is refused with
// the store's error (no crash, no hang), Get, List and Stats keep answering, and no acknowledged
// task is lost: once the fault clears, the store reopens its database by itself (see
// tests/storage/rocksdb_fault_test.cc), enqueues are taken again in the same engine, every
// acknowledged task completes there, and all of them are there after a reopen.
//
// A task is running when the fault strikes, and its handler returns during it, so the write of
// its outcome most likely meets the fault (the test cannot see the exact moment the engine submits
// that write; the checks hold either way). The engine must keep that outcome and write it later.
#include "engine/engine.h"
// The subject header comes first: that proves it is self-contained.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "storage/rocksdb_task_store.h"
#include "tests/engine/engine_test_util.h"
#include "tests/storage/fault_injection_env.h"
#include "tests/storage/store_test_util.h"

namespace bmos::engine {
namespace {

using namespace test_util;  // NOLINT: test helpers
using storage::test_util::FaultInjectionEnv;
using storage::test_util::FaultInjectionFs;
using storage::test_util::TempDir;
using ::testing::HasSubstr;

// How long a test waits for the store to take writes again once the fault has cleared (the store
// reopens its database 1 s after a failed write) and for tasks to finish after that.
constexpr std::chrono::milliseconds kRecoveryDeadline{30'000};

class EngineFaultTest : public ::testing::Test {
 protected:
  void RunFaultScenario(const std::function<void()>& inject, Status::Code code,
                        const std::string& message, std::map<TaskId, int>* acked, TaskId* gated);

  ~EngineFaultTest() override {
    if (engine_ != nullptr) (void)StopEngine();
  }

  // Opens the RocksDB store in dir_ on `env` (null: RocksDB's healthy default) and an engine in
  // `sync` mode over it, with the handlers "work" (returns its data's "n") and "gated" (waits for
  // gate_). The engine owns the store: StopEngine closes both.
  void OpenEngine(rocksdb::Env* env) {
    storage::RocksDbStoreOptions store_options;
    store_options.path = dir_.path();
    store_options.durability = Durability::kSync;
    store_options.env = env;
    Result<std::shared_ptr<storage::RocksDbTaskStore>> store =
        storage::RocksDbTaskStore::Open(store_options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EngineOptions options = MakeOptions(2);
    options.durability = Durability::kSync;
    options.store = std::move(store).value();
    Result<std::unique_ptr<Engine>> engine = Engine::Open(std::move(options));
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(engine).value();
    BMOS_ASSERT_OK(engine_->RegisterHandler("work", [](TaskContext& ctx) -> HandlerResult {
      return boost::json::value(ctx.data().at("n"));
    }));
    BMOS_ASSERT_OK(engine_->RegisterHandler("gated", [this](TaskContext& ctx) -> HandlerResult {
      started_.Add();
      const bool opened = gate_.Wait(&ctx);
      returned_.Add();
      if (!opened) return Status::Cancelled("the gate was not opened");
      return boost::json::value("through the gate");
    }));
  }

  // Stops the engine (which must not hang, whatever its store does) and closes it and its store.
  Status StopEngine() {
    std::future<Status> stopped =
        std::async(std::launch::async, [this] { return engine_->Stop(std::chrono::seconds(2)); });
    if (stopped.wait_for(kRecoveryDeadline) != std::future_status::ready) {
      // Nothing to recover to: the engine and its store are stuck. Fail loudly, not by a timeout.
      std::fprintf(stderr, "Engine::Stop did not return within %lld ms\n",
                   static_cast<long long>(kRecoveryDeadline.count()));
      std::abort();
    }
    Status s = stopped.get();
    engine_.reset();
    return s;
  }

  TaskId EnqueueWork(int n) { return EnqueueOrFail(*engine_, Req("work", {{"n", n}})); }

  // Enqueues "work" n until the engine takes it or kRecoveryDeadline passes; every refusal on the
  // way must be `code`. Polls: when the store lets writes through again is its business.
  Result<TaskId> EnqueueOnceRecovered(int n, Status::Code code) {
    const auto deadline = SteadyClock::now() + kRecoveryDeadline;
    for (;;) {
      Result<EnqueueResult> r = engine_->Enqueue(Req("work", {{"n", n}}));
      if (r.ok()) return r->id;
      if (r.status().code() != code || SteadyClock::now() >= deadline) return r.status();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // Get, List and Stats answer while the store refuses writes: every finished task is COMPLETED
  // with its result, and the gated one is still RUNNING.
  void ExpectReadsServe(const std::map<TaskId, int>& finished, const TaskId& gated) {
    for (const auto& [id, n] : finished) {
      Result<TaskRecord> r = engine_->Get(id);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(r->state, TaskState::kCompleted) << Describe(*r);
      EXPECT_EQ(r->result_json, std::to_string(n));
    }
    Result<TaskRecord> g = engine_->Get(gated);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_EQ(g->state, TaskState::kRunning) << Describe(*g);

    Result<ListPage> page = engine_->List(Query());
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    std::set<TaskId> listed;
    for (const TaskRecord& r : page->records) listed.insert(r.id());
    for (const auto& [id, n] : finished) EXPECT_EQ(listed.count(id), 1u) << id.ToString();
    EXPECT_EQ(listed.count(gated), 1u);

    EngineStats stats = engine_->Stats();
    EXPECT_GE(stats.by_state[static_cast<size_t>(TaskState::kCompleted)], finished.size());
    EXPECT_GE(stats.completed, finished.size());
  }

  // Lets the gated handler return while the fault is on, and waits until its worker is done with
  // it and the store has answered what the engine submitted by then (the outcome, most likely).
  void ReturnGatedDuringTheFault() {
    gate_.Open();
    ASSERT_TRUE(returned_.WaitAtLeast(1));
    ASSERT_TRUE(Eventually([&] {
      EngineStats stats = engine_->Stats();
      for (const EngineStats::Group& g : stats.groups) {
        if (g.busy != 0) return false;
      }
      return true;
    }));
    (void)engine_->store().Flush();
  }

  // After a reopen: every task in `completed` is there, COMPLETED, with its result.
  void ExpectCompleted(const std::map<TaskId, int>& completed, const TaskId& gated) {
    for (const auto& [id, n] : completed) {
      Result<TaskRecord> r = engine_->Get(id);
      ASSERT_TRUE(r.ok()) << id.ToString() << ": " << r.status().ToString();
      EXPECT_EQ(r->state, TaskState::kCompleted) << Describe(*r);
      EXPECT_EQ(r->result_json, std::to_string(n));
    }
    Result<TaskRecord> g = engine_->Get(gated);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_EQ(g->state, TaskState::kCompleted) << Describe(*g);
    EXPECT_EQ(g->result_json, "\"through the gate\"");
  }

  TempDir dir_{"engine-fault"};
  FaultInjectionEnv env_;  // outlives every store opened on it (declared before engine_)
  Gate gate_;
  Counter started_, returned_;
  std::unique_ptr<Engine> engine_;
};

// The scenario both tests share. Completed work and a running (gated) task exist; `inject` starts
// the fault: an enqueue is refused with `code` and `message`, reads go on, and the gated handler
// returns during the fault (its outcome write fails). The fault clears: enqueues are taken again
// in the same engine, and every acknowledged task completes, the gated one from the outcome it
// kept (its handler does not run again). Returns the acknowledged tasks (id -> n) in `acked`.
void EngineFaultTest::RunFaultScenario(const std::function<void()>& inject, Status::Code code,
                                       const std::string& message, std::map<TaskId, int>* acked,
                                       TaskId* gated) {
  for (int n = 0; n < 5; ++n) (*acked)[EnqueueWork(n)] = n;
  for (const auto& [id, n] : *acked) {
    TaskRecord r = WaitTerminal(*engine_, id);
    ASSERT_EQ(r.state, TaskState::kCompleted) << Describe(r);
  }
  *gated = EnqueueOrFail(*engine_, Req("gated"));
  ASSERT_TRUE(started_.WaitAtLeast(1));

  inject();
  Result<EnqueueResult> refused = engine_->Enqueue(Req("work", {{"n", 100}}));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), code) << refused.status().ToString();
  EXPECT_THAT(refused.status().message(), HasSubstr(message));
  ASSERT_NO_FATAL_FAILURE(ExpectReadsServe(*acked, *gated));
  ASSERT_NO_FATAL_FAILURE(ReturnGatedDuringTheFault());
  ASSERT_NO_FATAL_FAILURE(ExpectReadsServe(*acked, *gated));

  env_.fs().ClearFaults();
  Result<TaskId> first = EnqueueOnceRecovered(5, code);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  (*acked)[*first] = 5;
  for (int n = 6; n < 9; ++n) (*acked)[EnqueueWork(n)] = n;
  for (const auto& [id, n] : *acked) {
    Result<TaskRecord> r = engine_->Wait(id, kRecoveryDeadline);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->state, TaskState::kCompleted) << Describe(*r);
    EXPECT_EQ(r->result_json, std::to_string(n));
  }
  Result<TaskRecord> g = engine_->Wait(*gated, kRecoveryDeadline);
  ASSERT_TRUE(g.ok()) << "the outcome written during the fault never landed: "
                      << g.status().ToString();
  EXPECT_EQ(g->state, TaskState::kCompleted) << Describe(*g);
  EXPECT_EQ(returned_.Get(), 1) << "the gated task ran again in the same process";
  ASSERT_NO_FATAL_FAILURE(ExpectCompleted(*acked, *gated));
}

TEST_F(EngineFaultTest, DiskFullRefusesEnqueuesUntilSpaceReturnsAndLosesNothing) {
  env_.fs().set_scope(FaultInjectionFs::Scope::kAllFiles);
  ASSERT_NO_FATAL_FAILURE(OpenEngine(env_.env()));
  std::map<TaskId, int> acked;
  TaskId gated;
  ASSERT_NO_FATAL_FAILURE(RunFaultScenario([&] { env_.fs().set_disk_full(true); },
                                           Status::Code::kUnavailable, "disk full", &acked,
                                           &gated));
  EXPECT_GE(env_.fs().injected_disk_full(), 1u);
}

TEST_F(EngineFaultTest, WriteErrorRefusesEnqueuesUntilTheFaultClearsThenResumesInProcess) {
  ASSERT_NO_FATAL_FAILURE(OpenEngine(env_.env()));  // faults on the WAL only
  std::map<TaskId, int> acked;
  TaskId gated;
  ASSERT_NO_FATAL_FAILURE(RunFaultScenario([&] { env_.fs().set_write_errors(true); },
                                           Status::Code::kIOError, "injected write error", &acked,
                                           &gated));
  EXPECT_GE(env_.fs().injected_write_errors(), 1u);

  // A restart on a healthy file system finds every acknowledged task COMPLETED, and nothing runs
  // again.
  BMOS_ASSERT_OK(StopEngine());
  ASSERT_NO_FATAL_FAILURE(OpenEngine(nullptr));
  ASSERT_NO_FATAL_FAILURE(ExpectCompleted(acked, gated));
  EXPECT_EQ(returned_.Get(), 1);
  const TaskId later = EnqueueWork(9);
  Result<TaskRecord> done = engine_->Wait(later, kRecoveryDeadline);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->state, TaskState::kCompleted) << Describe(*done);
  EXPECT_EQ(done->result_json, "9");
  BMOS_ASSERT_OK(StopEngine());
}

}  // namespace
}  // namespace bmos::engine
