#include "engine/engine.h"
// The subject header comes first: that proves it is self-contained.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "storage/memory_task_store.h"
#include "storage/rocksdb_task_store.h"
#include "tests/engine/engine_test_util.h"
#include "tests/storage/store_test_util.h"

namespace bmos::engine {
namespace {

using ::testing::HasSubstr;
using namespace test_util;  // NOLINT: test helpers
using namespace std::chrono_literals;

// ----------------------------------------------------------------------------------------------
// Open: option validation.

void ExpectOpenInvalid(EngineOptions options, const std::string& field) {
  Result<std::unique_ptr<Engine>> r = Engine::Open(std::move(options));
  ASSERT_FALSE(r.ok()) << "Open accepted options with a bad " << field;
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr(field));
}

TEST(EngineOpen, DefaultOptionsOpenADurableStoreInTheDataDir) {
  storage::test_util::TempDir dir("engine-defaults");
  EngineOptions o;  // every default but the directory
  EXPECT_EQ(o.durability, Durability::kSync);
  EXPECT_EQ(o.data_dir, "bmos-data");
  o.data_dir = dir.Sub("data");
  TaskId id;
  {
    Result<std::unique_ptr<Engine>> r = Engine::Open(o);
    BMOS_ASSERT_OK(r);
    Engine& engine = **r;
    EngineStats stats = engine.Stats();
    ASSERT_EQ(stats.groups.size(), 1u);
    EXPECT_EQ(stats.groups[0].name, "default");
    EXPECT_EQ(stats.groups[0].workers, 4);
    EXPECT_EQ(stats.groups[0].queues, std::vector<std::string>{"default"});
    EXPECT_EQ(engine.store().durability(), Durability::kSync);
    EXPECT_NE(dynamic_cast<storage::RocksDbTaskStore*>(&engine.store()), nullptr);
    EXPECT_FALSE(engine.clock().IsManual());
    BMOS_ASSERT_OK(engine.RegisterHandler("noop", NoopHandler()));
    id = EnqueueOrFail(engine, Req("noop"));
    EXPECT_EQ(WaitTerminal(engine, id).state, TaskState::kCompleted);
    // A second engine on the same directory is refused while the first holds it.
    Result<std::unique_ptr<Engine>> second = Engine::Open(o);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), Status::Code::kFailedPrecondition)
        << second.status().ToString();
    BMOS_EXPECT_OK(engine.Stop(0ms));
  }
  // The outcome is on disk: a new engine on the directory shows it.
  Result<std::unique_ptr<Engine>> again = Engine::Open(o);
  BMOS_ASSERT_OK(again);
  Result<TaskRecord> r = (*again)->Get(id);
  BMOS_ASSERT_OK(r);
  EXPECT_EQ(r->state, TaskState::kCompleted);
  EXPECT_EQ((*again)->Stats().by_state[static_cast<int>(TaskState::kCompleted)], 1u);
}

TEST(EngineOpen, BatchEnqueueIsOneCommit) {
  storage::test_util::TempDir dir("engine-batch");
  EngineOptions o = MakeOptions(2);
  o.durability = Durability::kSync;
  o.data_dir = dir.Sub("data");
  Result<std::unique_ptr<Engine>> r = Engine::Open(o);
  BMOS_ASSERT_OK(r);
  Engine& engine = **r;
  BMOS_ASSERT_OK(engine.RegisterHandler("noop", NoopHandler()));
  auto* store = dynamic_cast<storage::RocksDbTaskStore*>(&engine.store());
  ASSERT_NE(store, nullptr);
  std::vector<EnqueueRequest> batch;
  for (int i = 0; i < 500; ++i) {
    EnqueueRequest req = Req("noop");
    req.delay = std::chrono::hours(1);  // nothing runs, so nothing else is written meanwhile
    batch.push_back(std::move(req));
  }
  const storage::CommitStats before = store->commit_stats();
  Result<std::vector<EnqueueResult>> results = engine.EnqueueBatch(std::move(batch));
  BMOS_ASSERT_OK(results);
  ASSERT_EQ(results->size(), 500u);
  const storage::CommitStats after = store->commit_stats();
  EXPECT_EQ(after.writes - before.writes, 1u);
  EXPECT_EQ(after.commits - before.commits, 1u);
  EXPECT_EQ(after.records - before.records, 500u);
  // All 500 are on disk: a read-only look at the directory finds them.
  storage::RocksDbStoreOptions ro;
  ro.path = o.data_dir;
  ro.read_only = true;
  auto reader = storage::RocksDbTaskStore::Open(ro);
  BMOS_ASSERT_OK(reader);
  auto counts = (*reader)->Counts();
  BMOS_ASSERT_OK(counts);
  EXPECT_EQ(counts->total(TaskState::kPending), 500u);
}

TEST(EngineOpen, MemoryModeOpensWithoutADirectory) {
  Result<std::unique_ptr<Engine>> r = Engine::Open(MemoryOptions());
  BMOS_ASSERT_OK(r);
  EXPECT_EQ((*r)->store().durability(), Durability::kMemory);
  BMOS_EXPECT_OK((*r)->Stop(0ms));
}

TEST(EngineOpen, RejectsNoGroups) {
  EngineOptions o = MemoryOptions();
  o.groups.clear();
  ExpectOpenInvalid(o, "groups");
}

TEST(EngineOpen, RejectsBadWorkerCounts) {
  EngineOptions o = MakeOptions(0);
  ExpectOpenInvalid(o, "workers");
  o = MakeOptions(257);
  ExpectOpenInvalid(o, "workers");
  o = MakeOptions(-1);
  ExpectOpenInvalid(o, "workers");
}

TEST(EngineOpen, AcceptsBoundaryWorkerCounts) {
  EngineOptions o = MakeOptions(1);
  BMOS_EXPECT_OK(Engine::Open(o));
  // 256 threads start and stop; cheap when they park.
  o = MakeOptions(256);
  BMOS_EXPECT_OK(Engine::Open(o));
}

TEST(EngineOpen, RejectsDuplicateGroupNames) {
  EngineOptions o = MemoryOptions();
  o.groups = {WorkerGroupOptions{.name = "dup", .queues = {"a"}, .workers = 1},
              WorkerGroupOptions{.name = "dup", .queues = {"b"}, .workers = 1}};
  ExpectOpenInvalid(o, "name");
}

TEST(EngineOpen, RejectsQueueInTwoGroups) {
  EngineOptions o = MemoryOptions();
  o.groups = {WorkerGroupOptions{.name = "g1", .queues = {"a", "shared"}, .workers = 1},
              WorkerGroupOptions{.name = "g2", .queues = {"shared"}, .workers = 1}};
  ExpectOpenInvalid(o, "queue");
}

TEST(EngineOpen, RejectsEmptyQueueList) {
  EngineOptions o = MemoryOptions();
  o.groups = {WorkerGroupOptions{.name = "g1", .queues = {}, .workers = 1}};
  ExpectOpenInvalid(o, "queue");
}

TEST(EngineOpen, PersistentDurabilityNeedsADataDirOrAStore) {
  EngineOptions o = MemoryOptions();
  o.data_dir.clear();
  o.durability = Durability::kSync;
  ExpectOpenInvalid(o, "data_dir");
  o.durability = Durability::kAsync;
  ExpectOpenInvalid(o, "data_dir");
}

TEST(EngineOpen, ReportsAStoreThatCannotOpen) {
  storage::test_util::TempDir dir("engine-bad-dir");
  { std::ofstream(dir.Sub("unrelated.txt")) << "someone else's file\n"; }
  EngineOptions o = MemoryOptions();
  o.durability = Durability::kAsync;
  o.data_dir = dir.path();
  Result<std::unique_ptr<Engine>> r = Engine::Open(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kFailedPrecondition) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr(dir.path()));
}

TEST(EngineOpen, RejectsStoreWithOtherDurability) {
  EngineOptions o = MemoryOptions();
  o.durability = Durability::kMemory;
  o.store = std::make_shared<LabelledStore>(Durability::kSync);
  ExpectOpenInvalid(o, "durability");
}

TEST(EngineOpen, UsesTheStoreItIsGiven) {
  auto store = std::make_shared<LabelledStore>(Durability::kSync);
  EngineOptions o = MakeOptions(2);
  o.durability = Durability::kSync;
  o.store = store;
  Result<std::unique_ptr<Engine>> r = Engine::Open(o);
  BMOS_ASSERT_OK(r);
  Engine& engine = **r;
  BMOS_ASSERT_OK(engine.RegisterHandler("noop", NoopHandler()));
  TaskId id = EnqueueOrFail(engine, Req("noop"));
  EXPECT_EQ(WaitTerminal(engine, id).state, TaskState::kCompleted);
  EXPECT_EQ(&engine.store(), store.get());
  Result<TaskRecord> stored = store->Get(id);
  BMOS_ASSERT_OK(stored);
  EXPECT_EQ(stored->state, TaskState::kCompleted);
}

TEST(EngineOpen, RejectsBadRetryOptions) {
  EngineOptions o = MemoryOptions();
  o.retry.jitter = 1.5;
  ExpectOpenInvalid(o, "jitter");
  o = MemoryOptions();
  o.retry.multiplier = 0.5;
  ExpectOpenInvalid(o, "multiplier");
  o = MemoryOptions();
  o.retry.base = 0ms;
  ExpectOpenInvalid(o, "base");
  o = MemoryOptions();
  o.retry.base = 5000ms;
  o.retry.cap = 4000ms;
  ExpectOpenInvalid(o, "cap");
}

TEST(EngineOpen, RejectsBadTaskDefaultsAndBatch) {
  EngineOptions o = MemoryOptions();
  o.default_max_retries = -1;
  ExpectOpenInvalid(o, "default_max_retries");
  o = MemoryOptions();
  o.default_max_retries = 1001;
  ExpectOpenInvalid(o, "default_max_retries");
  o = MemoryOptions();
  o.dequeue_batch = 0;
  ExpectOpenInvalid(o, "dequeue_batch");
  o = MemoryOptions();
  o.dequeue_batch = 257;
  ExpectOpenInvalid(o, "dequeue_batch");
}

// ----------------------------------------------------------------------------------------------
// RegisterHandler.

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(MakeOptions(2, nullptr, {"default", "high"})); }
  void Open(EngineOptions options) {
    engine_.reset();
    Result<std::unique_ptr<Engine>> r = Engine::Open(std::move(options));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    engine_ = std::move(r).value();
  }
  Engine& engine() { return *engine_; }

  // Declared before the engine: handlers borrow them, and the engine goes first.
  Gate gate_;
  Counter started_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineTest, RegisterHandlerValidates) {
  BMOS_ASSERT_OK(engine().RegisterHandler("a", NoopHandler()));
  Status dup = engine().RegisterHandler("a", NoopHandler());
  EXPECT_EQ(dup.code(), Status::Code::kInvalidArgument) << dup.ToString();
  Status empty = engine().RegisterHandler("", NoopHandler());
  EXPECT_EQ(empty.code(), Status::Code::kInvalidArgument) << empty.ToString();
  Status unserved = engine().RegisterHandler("b", NoopHandler(), OnQueue("nowhere"));
  EXPECT_EQ(unserved.code(), Status::Code::kInvalidArgument) << unserved.ToString();
  BMOS_EXPECT_OK(engine().RegisterHandler("c", NoopHandler(), OnQueue("high")));
  EXPECT_EQ(engine().HandlerNames(), (std::vector<std::string>{"a", "c"}));
}

TEST_F(EngineTest, HandlerNamesAreSorted) {
  for (const char* n : {"zeta", "alpha", "mid", "beta"}) {
    BMOS_ASSERT_OK(engine().RegisterHandler(n, NoopHandler()));
  }
  EXPECT_EQ(engine().HandlerNames(), (std::vector<std::string>{"alpha", "beta", "mid", "zeta"}));
}

TEST_F(EngineTest, HandlerCanBeRegisteredAfterTasksRan) {
  BMOS_ASSERT_OK(engine().RegisterHandler("first", NoopHandler()));
  EXPECT_EQ(WaitTerminal(engine(), EnqueueOrFail(engine(), Req("first"))).state,
            TaskState::kCompleted);
  BMOS_ASSERT_OK(engine().RegisterHandler("second", NoopHandler()));
  EXPECT_EQ(WaitTerminal(engine(), EnqueueOrFail(engine(), Req("second"))).state,
            TaskState::kCompleted);
}

// ----------------------------------------------------------------------------------------------
// Enqueue validation.

TEST_F(EngineTest, UnknownNameListsRegisteredNames) {
  BMOS_ASSERT_OK(engine().RegisterHandler("alpha", NoopHandler()));
  BMOS_ASSERT_OK(engine().RegisterHandler("beta", NoopHandler()));
  Result<EnqueueResult> r = engine().Enqueue(Req("gamma"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("alpha"));
  EXPECT_THAT(r.status().message(), HasSubstr("beta"));

  Result<EnqueueResult> empty = engine().Enqueue(Req(""));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), Status::Code::kInvalidArgument);
}

TEST_F(EngineTest, EnqueueValidatesFields) {
  BMOS_ASSERT_OK(engine().RegisterHandler("t", NoopHandler()));
  auto expect_invalid = [&](EnqueueRequest request, const char* what) {
    Result<EnqueueResult> r = engine().Enqueue(std::move(request));
    ASSERT_FALSE(r.ok()) << what << " was accepted";
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument)
        << what << ": " << r.status().ToString();
  };
  EnqueueRequest r = Req("t");
  r.queue = "nowhere";
  expect_invalid(r, "unserved queue");
  r = Req("t");
  r.max_retries = -1;
  expect_invalid(r, "max_retries -1");
  r.max_retries = 1001;
  expect_invalid(r, "max_retries 1001");
  r = Req("t");
  r.timeout = -1ms;
  expect_invalid(r, "negative timeout");
  r = Req("t");
  r.delay = -1ms;
  expect_invalid(r, "negative delay");
  r = Req("t");
  r.delay = 10ms;
  r.eta_ms = engine().clock().NowMillis() + 10;
  expect_invalid(r, "eta and delay");

  // Boundaries are accepted.
  r = Req("t");
  r.max_retries = 0;
  BMOS_EXPECT_OK(engine().Enqueue(r));
  r.max_retries = 1000;
  BMOS_EXPECT_OK(engine().Enqueue(r));
  r = Req("t");
  r.timeout = 0ms;
  r.delay = 0ms;
  BMOS_EXPECT_OK(engine().Enqueue(r));
  r = Req("t");
  r.queue = "high";  // served, although the handler's default queue is "default"
  BMOS_EXPECT_OK(engine().Enqueue(r));
}

TEST_F(EngineTest, EnqueueAfterStopIsUnavailable) {
  BMOS_ASSERT_OK(engine().RegisterHandler("t", NoopHandler()));
  BMOS_ASSERT_OK(engine().Stop(0ms));
  Result<EnqueueResult> r = engine().Enqueue(Req("t"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnavailable) << r.status().ToString();
  Result<std::vector<EnqueueResult>> b = engine().EnqueueBatch({Req("t")});
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Status::Code::kUnavailable) << b.status().ToString();
  // Stop is idempotent.
  BMOS_EXPECT_OK(engine().Stop(0ms));
  BMOS_EXPECT_OK(engine().Stop());
}

// ----------------------------------------------------------------------------------------------
// The task record.

TEST(EngineRecord, GetReturnsSpecStateTimesAndResult) {
  ManualClock clock;
  EngineOptions o = MakeOptions(1, &clock, {"default", "high"});
  Result<std::unique_ptr<Engine>> opened = Engine::Open(o);
  BMOS_ASSERT_OK(opened);
  Engine& engine = **opened;
  BMOS_ASSERT_OK(engine.RegisterHandler("add", [](TaskContext& ctx) -> HandlerResult {
    const auto& d = ctx.data().as_object();
    return boost::json::value(
        boost::json::object{{"sum", d.at("a").as_int64() + d.at("b").as_int64()}});
  }));
  EnqueueRequest request = Req("add", {{"a", 2}, {"b", 3}});
  request.queue = "high";
  request.priority = Priority::kHigh;
  request.max_retries = 5;
  request.timeout = 60'000ms;
  Result<EnqueueResult> e = engine.Enqueue(request);
  BMOS_ASSERT_OK(e);
  EXPECT_TRUE(e->created);
  EXPECT_EQ(e->state, TaskState::kPending);
  EXPECT_FALSE(e->id.is_nil());
  // (The id's time is not compared: ids stay increasing per thread, so a manual clock set in the
  // past yields ids stamped with the latest time this thread has used.)

  TaskRecord r = WaitTerminal(engine, e->id);
  ASSERT_NE(r.spec, nullptr);
  EXPECT_EQ(r.id(), e->id);
  EXPECT_EQ(r.spec->name, "add");
  EXPECT_EQ(r.spec->queue, "high");
  EXPECT_EQ(r.spec->priority, Priority::kHigh);
  EXPECT_EQ(r.spec->max_retries, 5);
  EXPECT_EQ(r.spec->timeout_ms, 60'000);
  EXPECT_EQ(boost::json::parse(r.spec->data_json), boost::json::parse(R"({"a":2,"b":3})"));
  EXPECT_EQ(r.state, TaskState::kCompleted);
  EXPECT_EQ(r.retry_count, 0);
  EXPECT_EQ(r.spec->created_ms, clock.NowMillis());
  EXPECT_GT(r.spec->created_ms, 0);
  EXPECT_EQ(r.started_ms, clock.NowMillis());
  EXPECT_EQ(r.completed_ms, clock.NowMillis());
  ASSERT_FALSE(r.result_json.empty());
  EXPECT_EQ(boost::json::parse(r.result_json), boost::json::parse(R"({"sum":5})"));
  EXPECT_TRUE(r.error.empty()) << r.error;
}

TEST_F(EngineTest, PendingRecordHasNoStartOrCompletion) {
  BMOS_ASSERT_OK(engine().RegisterHandler("t", NoopHandler()));
  EnqueueRequest request = Req("t");
  request.delay = std::chrono::hours(1);
  TaskId id = EnqueueOrFail(engine(), request);
  Result<TaskRecord> r = engine().Get(id);
  BMOS_ASSERT_OK(r);
  EXPECT_EQ(r->state, TaskState::kPending);
  EXPECT_GT(r->spec->created_ms, 0);
  EXPECT_EQ(r->started_ms, 0);
  EXPECT_EQ(r->completed_ms, 0);
  EXPECT_TRUE(r->result_json.empty());
  EXPECT_GE(r->run_at_ms, r->spec->created_ms + 3'599'000);
}

TEST_F(EngineTest, HandlerOptionsAndEngineDefaultsFillTheSpec) {
  Open([] {
    EngineOptions o = MakeOptions(1, nullptr, {"default", "high"});
    o.default_max_retries = 9;
    o.default_timeout = 7000ms;
    return o;
  }());
  BMOS_ASSERT_OK(engine().RegisterHandler(
      "configured", NoopHandler(),
      HandlerOptions{
          .queue = "high", .priority = Priority::kCritical, .max_retries = 7, .timeout = 1234ms}));
  BMOS_ASSERT_OK(engine().RegisterHandler("plain", NoopHandler()));

  Result<TaskRecord> c = engine().Get(EnqueueOrFail(engine(), Req("configured")));
  BMOS_ASSERT_OK(c);
  EXPECT_EQ(c->spec->queue, "high");
  EXPECT_EQ(c->spec->priority, Priority::kCritical);
  EXPECT_EQ(c->spec->max_retries, 7);
  EXPECT_EQ(c->spec->timeout_ms, 1234);

  Result<TaskRecord> p = engine().Get(EnqueueOrFail(engine(), Req("plain")));
  BMOS_ASSERT_OK(p);
  EXPECT_EQ(p->spec->queue, "default");
  EXPECT_EQ(p->spec->priority, Priority::kNormal);
  EXPECT_EQ(p->spec->max_retries, 9);
  EXPECT_EQ(p->spec->timeout_ms, 7000);

  // The request overrides the handler's defaults.
  EnqueueRequest request = Req("configured");
  request.queue = "default";
  request.priority = Priority::kLow;
  request.max_retries = 0;
  request.timeout = 5ms;
  Result<TaskRecord> o = engine().Get(EnqueueOrFail(engine(), request));
  BMOS_ASSERT_OK(o);
  EXPECT_EQ(o->spec->queue, "default");
  EXPECT_EQ(o->spec->priority, Priority::kLow);
  EXPECT_EQ(o->spec->max_retries, 0);
  EXPECT_EQ(o->spec->timeout_ms, 5);
}

TEST_F(EngineTest, PreSerialisedDataIsUsed) {
  std::string seen;
  BMOS_ASSERT_OK(engine().RegisterHandler("t", [&](TaskContext& ctx) -> HandlerResult {
    seen = boost::json::serialize(ctx.data());
    return NoopResult();
  }));
  EnqueueRequest request = Req("t", {{"ignored", true}});
  request.data_json = R"({"x":1,"y":"z"})";
  TaskRecord r = WaitTerminal(engine(), EnqueueOrFail(engine(), request));
  EXPECT_EQ(r.state, TaskState::kCompleted);
  EXPECT_EQ(boost::json::parse(r.spec->data_json), boost::json::parse(R"({"x":1,"y":"z"})"));
  EXPECT_EQ(boost::json::parse(seen), boost::json::parse(R"({"x":1,"y":"z"})"));
}

TEST_F(EngineTest, ResultOfAnyJsonKind) {
  BMOS_ASSERT_OK(engine().RegisterHandler("arr", [](TaskContext&) -> HandlerResult {
    return boost::json::value({1, 2, 3});
  }));
  BMOS_ASSERT_OK(engine().RegisterHandler(
      "str", [](TaskContext&) -> HandlerResult { return boost::json::value("done"); }));
  TaskRecord a = WaitTerminal(engine(), EnqueueOrFail(engine(), Req("arr")));
  EXPECT_EQ(boost::json::parse(a.result_json), boost::json::parse("[1,2,3]"));
  TaskRecord s = WaitTerminal(engine(), EnqueueOrFail(engine(), Req("str")));
  EXPECT_EQ(boost::json::parse(s.result_json), boost::json::parse("\"done\""));
}

TEST_F(EngineTest, GetByStringParsesIds) {
  BMOS_ASSERT_OK(engine().RegisterHandler("t", NoopHandler()));
  TaskId id = EnqueueOrFail(engine(), Req("t"));
  WaitTerminal(engine(), id);
  Result<TaskRecord> by_string = engine().Get(id.ToString());
  BMOS_ASSERT_OK(by_string);
  EXPECT_EQ(by_string->id(), id);
  std::string upper = id.ToString();
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  BMOS_EXPECT_OK(engine().Get(upper));

  for (std::string bad : {"", "garbage", "0190a5b2-7c3e-7d41-8f2a-1b2c3d4e5f6",
                          "0190a5b2-7c3e-7d41-8f2a-1b2c3d4e5f60-"}) {
    Result<TaskRecord> r = engine().Get(std::string_view(bad));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Status::Code::kNotFound) << bad << ": " << r.status().ToString();
  }
  TaskId unknown = storage::NewTaskId(engine().clock().NowMillis());
  Result<TaskRecord> u1 = engine().Get(unknown);
  ASSERT_FALSE(u1.ok());
  EXPECT_EQ(u1.status().code(), Status::Code::kNotFound);
  Result<TaskRecord> u2 = engine().Get(unknown.ToString());
  ASSERT_FALSE(u2.ok());
  EXPECT_EQ(u2.status().code(), Status::Code::kNotFound);
}

// ----------------------------------------------------------------------------------------------
// Wait.

TEST_F(EngineTest, WaitReturnsTheTerminalRecord) {
  BMOS_ASSERT_OK(engine().RegisterHandler("t", [&](TaskContext&) -> HandlerResult {
    started_.Add();
    gate_.Wait();
    return boost::json::value(7);
  }));
  TaskId id = EnqueueOrFail(engine(), Req("t"));
  ASSERT_TRUE(started_.WaitAtLeast(1));
  std::thread opener([&] { gate_.Open(); });
  Result<TaskRecord> r = engine().Wait(id, kWaitTimeout);
  opener.join();
  BMOS_ASSERT_OK(r);
  EXPECT_EQ(r->state, TaskState::kCompleted);
  EXPECT_EQ(r->result_json, "7");
  // Waiting again on a terminal task returns at once.
  Result<TaskRecord> again = engine().Wait(id, 0ms);
  BMOS_ASSERT_OK(again);
  EXPECT_EQ(again->state, TaskState::kCompleted);
}

TEST_F(EngineTest, WaitDeadlineExceededAndNotFound) {
  BMOS_ASSERT_OK(engine().RegisterHandler("t", NoopHandler()));
  EnqueueRequest request = Req("t");
  request.delay = std::chrono::hours(1);
  TaskId id = EnqueueOrFail(engine(), request);
  Result<TaskRecord> r = engine().Wait(id, 50ms);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kDeadlineExceeded) << r.status().ToString();

  Result<TaskRecord> u = engine().Wait(storage::NewTaskId(engine().clock().NowMillis()), 50ms);
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), Status::Code::kNotFound) << u.status().ToString();
}

TEST_F(EngineTest, ManyWaitersOnOneTask) {
  BMOS_ASSERT_OK(engine().RegisterHandler("t", [&](TaskContext&) -> HandlerResult {
    gate_.Wait();
    return NoopResult();
  }));
  TaskId id = EnqueueOrFail(engine(), Req("t"));
  std::atomic<int> completed{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 8; ++i) {
    waiters.emplace_back([&] {
      Result<TaskRecord> r = engine().Wait(id, kWaitTimeout);
      if (r.ok() && r->state == TaskState::kCompleted) completed.fetch_add(1);
    });
  }
  gate_.Open();
  for (auto& t : waiters) t.join();
  EXPECT_EQ(completed.load(), 8);
}

// ----------------------------------------------------------------------------------------------
// Unique key.

TEST_F(EngineTest, UniqueKeyReturnsTheLiveTask) {
  BMOS_ASSERT_OK(engine().RegisterHandler("t", [&](TaskContext&) -> HandlerResult {
    started_.Add();
    gate_.Wait();
    return NoopResult();
  }));
  EnqueueRequest request = Req("t", {{"n", 1}});
  request.unique_key = "report-2026-01";
  Result<EnqueueResult> first = engine().Enqueue(request);
  BMOS_ASSERT_OK(first);
  EXPECT_TRUE(first->created);

  // PENDING or RUNNING: the same task comes back.
  Result<EnqueueResult> second = engine().Enqueue(request);
  BMOS_ASSERT_OK(second);
  EXPECT_FALSE(second->created);
  EXPECT_EQ(second->id, first->id);
  ASSERT_TRUE(started_.WaitAtLeast(1));
  Result<EnqueueResult> third = engine().Enqueue(request);
  BMOS_ASSERT_OK(third);
  EXPECT_FALSE(third->created);
  EXPECT_EQ(third->id, first->id);

  // Another key is another task.
  EnqueueRequest other = request;
  other.unique_key = "report-2026-02";
  Result<EnqueueResult> different = engine().Enqueue(other);
  BMOS_ASSERT_OK(different);
  EXPECT_TRUE(different->created);
  EXPECT_NE(different->id, first->id);

  gate_.Open();
  EXPECT_EQ(WaitTerminal(engine(), first->id).state, TaskState::kCompleted);
  WaitTerminal(engine(), different->id);

  // Terminal: the key is free again.
  Result<EnqueueResult> fourth = engine().Enqueue(request);
  BMOS_ASSERT_OK(fourth);
  EXPECT_TRUE(fourth->created);
  EXPECT_NE(fourth->id, first->id);
  EXPECT_EQ(WaitTerminal(engine(), fourth->id).state, TaskState::kCompleted);
  EXPECT_EQ(started_.Get(), 3);
}

// Once Wait shows a keyed task finished, its key is free at once: the next enqueue creates a
// new task, and the stats already count the finished one (no window where they lag).
TEST_F(EngineTest, UniqueKeyFreeAndCountedAsSoonAsWaitSeesTheEnd) {
  BMOS_ASSERT_OK(engine().RegisterHandler("t", NoopHandler()));
  const int rounds = kTsan ? 200 : 2000;
  for (int i = 0; i < rounds; ++i) {
    EnqueueRequest request = Req("t");
    request.unique_key = "again";
    Result<EnqueueResult> r = engine().Enqueue(std::move(request));
    BMOS_ASSERT_OK(r);
    ASSERT_TRUE(r->created) << "round " << i << ": the key of a finished task was still held";
    WaitTerminal(engine(), r->id);
    EngineStats stats = engine().Stats();
    ASSERT_EQ(stats.completed, static_cast<uint64_t>(i + 1)) << "round " << i;
    ASSERT_EQ(stats.live_tasks, 0u) << "round " << i;
  }
}

TEST_F(EngineTest, UniqueKeyFreedByCancel) {
  BMOS_ASSERT_OK(engine().RegisterHandler("t", NoopHandler()));
  EnqueueRequest request = Req("t");
  request.unique_key = "k";
  request.delay = std::chrono::hours(1);
  Result<EnqueueResult> first = engine().Enqueue(request);
  BMOS_ASSERT_OK(first);
  BMOS_ASSERT_OK(engine().Cancel(first->id));
  Result<EnqueueResult> second = engine().Enqueue(request);
  BMOS_ASSERT_OK(second);
  EXPECT_TRUE(second->created);
  EXPECT_NE(second->id, first->id);
}

TEST_F(EngineTest, ConcurrentEnqueuesOfOneKeyCreateOneTask) {
  BMOS_ASSERT_OK(engine().RegisterHandler("t", NoopHandler()));
  constexpr int kThreads = 8;
  const int keys = kTsan ? 30 : 200;
  std::vector<std::vector<Result<EnqueueResult>>> results(kThreads);
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int k = 0; k < keys; ++k) {
        EnqueueRequest request = Req("t");
        request.unique_key = "key-" + std::to_string(k);
        request.delay = std::chrono::hours(1);  // stays live for the whole test
        results[t].push_back(engine().Enqueue(std::move(request)));
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int k = 0; k < keys; ++k) {
    int created = 0;
    std::set<TaskId> ids;
    for (int t = 0; t < kThreads; ++t) {
      const Result<EnqueueResult>& r = results[t][k];
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      created += r->created ? 1 : 0;
      ids.insert(r->id);
    }
    EXPECT_EQ(created, 1) << "key-" << k;
    EXPECT_EQ(ids.size(), 1u) << "key-" << k;
  }
  Result<ListPage> page = engine().List(Query());
  BMOS_ASSERT_OK(page);
  EXPECT_EQ(page->records.size(), static_cast<size_t>(keys));
}

// ----------------------------------------------------------------------------------------------
// Batch.

TEST_F(EngineTest, BatchEnqueuesAll) {
  std::atomic<int> runs{0};
  BMOS_ASSERT_OK(engine().RegisterHandler("t", [&](TaskContext&) -> HandlerResult {
    runs.fetch_add(1);
    return NoopResult();
  }));
  std::vector<EnqueueRequest> requests;
  for (int i = 0; i < 10; ++i) requests.push_back(Req("t", {{"i", i}}));
  requests[3].queue = "high";
  requests[4].priority = Priority::kCritical;
  Result<std::vector<EnqueueResult>> r = engine().EnqueueBatch(requests);
  BMOS_ASSERT_OK(r);
  ASSERT_EQ(r->size(), 10u);
  std::set<TaskId> ids;
  for (size_t i = 0; i < r->size(); ++i) {
    EXPECT_TRUE((*r)[i].created);
    ids.insert((*r)[i].id);
    TaskRecord rec = WaitTerminal(engine(), (*r)[i].id);
    EXPECT_EQ(rec.state, TaskState::kCompleted);
    // Results are in request order.
    EXPECT_EQ(boost::json::parse(rec.spec->data_json).as_object().at("i").as_int64(),
              static_cast<int64_t>(i));
  }
  EXPECT_EQ(ids.size(), 10u);
  EXPECT_EQ(runs.load(), 10);
  EXPECT_EQ(engine().Get((*r)[3].id)->spec->queue, "high");
  EXPECT_EQ(engine().Get((*r)[4].id)->spec->priority, Priority::kCritical);
}

TEST_F(EngineTest, BatchIsAllOrNothing) {
  BMOS_ASSERT_OK(engine().RegisterHandler("t", NoopHandler()));
  auto expect_rejected = [&](std::vector<EnqueueRequest> requests, const std::string& index) {
    Result<std::vector<EnqueueResult>> r = engine().EnqueueBatch(std::move(requests));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << r.status().ToString();
    EXPECT_THAT(r.status().message(), HasSubstr(index));
  };
  std::vector<EnqueueRequest> requests;
  for (int i = 0; i < 10; ++i) requests.push_back(Req("t"));
  requests[7].name = "no-such-task";
  expect_rejected(requests, "7");

  requests[7].name = "t";
  requests[5].max_retries = -3;
  expect_rejected(requests, "5");

  requests[5].max_retries = 1;
  requests[9].queue = "nowhere";
  expect_rejected(requests, "9");

  Result<ListPage> page = engine().List(Query());
  BMOS_ASSERT_OK(page);
  EXPECT_TRUE(page->records.empty()) << page->records.size() << " tasks leaked from bad batches";
  EXPECT_EQ(engine().Stats().enqueued, 0u);

  requests[9].queue = "default";
  Result<std::vector<EnqueueResult>> ok = engine().EnqueueBatch(requests);
  BMOS_ASSERT_OK(ok);
  EXPECT_EQ(ok->size(), 10u);
}

TEST_F(EngineTest, EmptyBatch) {
  Result<std::vector<EnqueueResult>> r = engine().EnqueueBatch({});
  // Either a no-op success or a clear refusal; never a crash.
  if (r.ok()) {
    EXPECT_TRUE(r->empty());
  } else {
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  }
}

// ----------------------------------------------------------------------------------------------
// List.

TEST(EngineList, FiltersNewestFirstAndPages) {
  EngineOptions o = MemoryOptions();
  o.groups = {WorkerGroupOptions{.name = "main", .queues = {"default", "other"}, .workers = 2}};
  Result<std::unique_ptr<Engine>> opened = Engine::Open(o);
  BMOS_ASSERT_OK(opened);
  Engine& engine = **opened;
  BMOS_ASSERT_OK(engine.RegisterHandler("a", NoopHandler()));
  BMOS_ASSERT_OK(engine.RegisterHandler("b", NoopHandler(), OnQueue("other")));
  BMOS_ASSERT_OK(engine.RegisterHandler(
      "fail", [](TaskContext&) -> HandlerResult { return Status::Internal("nope"); },
      WithRetries(0)));

  std::vector<TaskId> all;  // enqueue order = creation order (one thread)
  std::vector<TaskId> a_ids, b_ids, fail_ids;
  for (int i = 0; i < 13; ++i) {
    const char* name = i % 3 == 0 ? "a" : (i % 3 == 1 ? "b" : "fail");
    TaskId id = EnqueueOrFail(engine, Req(name));
    all.push_back(id);
    (i % 3 == 0 ? a_ids : (i % 3 == 1 ? b_ids : fail_ids)).push_back(id);
  }
  for (const TaskId& id : all) WaitTerminal(engine, id);

  auto list_ids = [&](ListQuery q) {
    std::vector<TaskId> ids;
    Result<ListPage> page = engine.List(q);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (page.ok()) {
      for (const TaskRecord& r : page->records) ids.push_back(r.id());
    }
    return ids;
  };
  auto newest_first = [](std::vector<TaskId> ids) {
    std::reverse(ids.begin(), ids.end());
    return ids;
  };

  EXPECT_EQ(list_ids(ListQuery{}), newest_first(all));
  EXPECT_EQ(list_ids(Query(std::nullopt, "", "a")), newest_first(a_ids));
  EXPECT_EQ(list_ids(Query(std::nullopt, "other")), newest_first(b_ids));
  EXPECT_EQ(list_ids(Query(TaskState::kFailed)), newest_first(fail_ids));
  std::vector<TaskId> completed = a_ids;
  completed.insert(completed.end(), b_ids.begin(), b_ids.end());
  std::sort(completed.begin(), completed.end());
  EXPECT_EQ(list_ids(Query(TaskState::kCompleted)), newest_first(completed));
  EXPECT_TRUE(list_ids(Query(std::nullopt, "other", "a")).empty());
  EXPECT_TRUE(list_ids(Query(TaskState::kPending)).empty());
  EXPECT_EQ(list_ids(Query(TaskState::kCompleted, "default")), newest_first(a_ids));

  // Paging: no duplicates, no gaps, newest first across pages.
  for (size_t limit : {1u, 4u, 5u, 13u}) {
    std::vector<TaskId> paged;
    ListQuery q = Query(std::nullopt, "", "", limit);
    for (int pages = 0; pages < 20; ++pages) {
      Result<ListPage> page = engine.List(q);
      BMOS_ASSERT_OK(page);
      EXPECT_LE(page->records.size(), limit);
      for (const TaskRecord& r : page->records) paged.push_back(r.id());
      if (!page->next_cursor || page->records.empty()) break;
      q.before = page->next_cursor;
    }
    EXPECT_EQ(paged, newest_first(all)) << "limit " << limit;
  }

  // Records in a list are full records.
  Result<ListPage> failed = engine.List(Query(TaskState::kFailed, "", "", 1));
  BMOS_ASSERT_OK(failed);
  ASSERT_EQ(failed->records.size(), 1u);
  EXPECT_EQ(failed->records[0].spec->name, "fail");
  EXPECT_THAT(failed->records[0].error, HasSubstr("nope"));
}

}  // namespace
}  // namespace bmos::engine
