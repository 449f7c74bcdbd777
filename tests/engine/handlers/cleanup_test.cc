// system_cleanup against a real engine on a RocksDB store (engine/handlers/operations.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/engine.h"
#include "engine/handlers/handlers.h"
#include "engine/handlers/operations.h"
#include "storage/memory_task_store.h"
#include "storage/rocksdb_task_store.h"
#include "tests/engine/engine_test_util.h"
#include "tests/engine/handlers/handlers_test_util.h"

namespace bmos::engine::handlers {
namespace {

using ::testing::HasSubstr;
using namespace test_util;                  // NOLINT: test helpers
using namespace ::bmos::engine::test_util;  // NOLINT: engine test helpers

constexpr int64_t kDayMs = 86'400'000;

class CleanupTest : public HandlerTest {
 protected:
  void SetUp() override {
    storage::RocksDbStoreOptions so;
    so.path = (base() / "store").string();
    so.durability = Durability::kSync;
    auto store = storage::RocksDbTaskStore::Open(so);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = *store;
    EngineOptions o = MakeOptions(2, &clock_, {"default", "ml"});
    o.durability = Durability::kSync;
    o.store = store_;
    o.retention.max_age = std::chrono::milliseconds(0);  // only the cleanup purges
    o.default_max_retries = 3;                           // bad input must still fail at once
    Result<std::unique_ptr<Engine>> e = Engine::Open(std::move(o));
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
    BMOS_ASSERT_OK(engine_->RegisterHandler("noop", NoopHandler()));
    BMOS_ASSERT_OK(engine_->RegisterHandler(
        "fail", [](TaskContext&) -> HandlerResult { return Status::Internal("planned failure"); }));
    BmosHandlerOptions h;
    h.data_root = root();
    BMOS_ASSERT_OK(RegisterBmosHandlers(*engine_, h));
  }
  void TearDown() override {
    if (engine_) BMOS_EXPECT_OK(engine_->Stop(std::chrono::seconds(10)));
    engine_.reset();
  }

  // Runs a task to its end and returns its record.
  TaskRecord RunTask(std::string name, boost::json::object data = {}) {
    return WaitTerminal(*engine_, EnqueueOrFail(*engine_, Req(std::move(name), std::move(data))));
  }
  // system_cleanup through the engine; its result.
  json::value Cleanup(boost::json::object data) {
    const TaskRecord r = RunTask("system_cleanup", std::move(data));
    EXPECT_EQ(r.state, TaskState::kCompleted) << Describe(r);
    return r.result_json.empty() ? json::value() : json::parse(r.result_json);
  }
  bool Stored(const TaskId& id) const { return engine_->Get(id).ok(); }

  // A handlers' temporary file `age` old.
  void TempFile(const std::string& relative, std::chrono::seconds age) {
    Write(relative, std::string(1000, 'x'));
    fs::last_write_time(root() / relative, fs::file_time_type::clock::now() - age);
  }

  std::shared_ptr<storage::RocksDbTaskStore> store_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(CleanupTest, DryRunCountsAndARealRunPurgesOldTasksAndTempFiles) {
  std::vector<TaskId> old_ids;
  for (int i = 0; i < 5; ++i) old_ids.push_back(RunTask("noop").id());
  EnqueueRequest fail = Req("fail");
  fail.max_retries = 0;  // the manual clock would hold a retry's backoff forever
  const TaskRecord failed = WaitTerminal(*engine_, EnqueueOrFail(*engine_, fail));
  EXPECT_EQ(failed.state, TaskState::kFailed);
  old_ids.push_back(failed.id());
  EnqueueRequest later = Req("noop");
  later.delay = std::chrono::hours(1);
  const TaskId cancelled = EnqueueOrFail(*engine_, later);
  BMOS_ASSERT_OK(engine_->Cancel(cancelled));
  old_ids.push_back(cancelled);

  clock_.AdvanceMillis(10 * kDayMs);
  std::vector<TaskId> recent_ids;
  for (int i = 0; i < 3; ++i) recent_ids.push_back(RunTask("noop").id());

  TempFile("data/.sales.csv.bmos-tmp-0123456789abcdef", std::chrono::hours(2));
  TempFile("models/m/.v1.json.bmos-tmp-00000000000000ff", std::chrono::hours(3));
  TempFile("data/.fresh.csv.bmos-tmp-fedcba9876543210", std::chrono::seconds(0));  // in use
  TempFile("data/old-but-not-ours.csv", std::chrono::hours(48));

  const json::value dry = Cleanup({{"older_than_days", 7}, {"dry_run", true}});
  EXPECT_EQ(dry.at("dry_run"), true);
  EXPECT_EQ(dry.at("tasks_matching"), 7);
  EXPECT_EQ(dry.at("tasks_purged"), 0);
  EXPECT_EQ(dry.at("temp_files_matching"), 2);
  EXPECT_EQ(dry.at("temp_files_removed"), 0);
  EXPECT_EQ(dry.at("store").at("kind").as_string(), "rocksdb");
  EXPECT_EQ(dry.at("store").at("compacted"), false);
  EXPECT_EQ(dry.at("cutoff").as_string(), "2026-01-04T00:00:00.000Z");
  for (const TaskId& id : old_ids) EXPECT_TRUE(Stored(id));
  EXPECT_TRUE(Exists("data/.sales.csv.bmos-tmp-0123456789abcdef"));

  const json::value real = Cleanup({{"older_than_days", 7}});
  EXPECT_EQ(real.at("dry_run"), false);
  EXPECT_EQ(real.at("tasks_matching"), 7);
  EXPECT_EQ(real.at("tasks_purged"), 7);
  EXPECT_EQ(real.at("temp_files_removed"), 2);
  EXPECT_EQ(real.at("temp_bytes_freed"), 2000);
  EXPECT_EQ(real.at("store").at("compacted"), true);
  EXPECT_TRUE(real.at("store").at("bytes_before").is_number());
  EXPECT_GE(Num(real.at("bytes_freed")), 2000);
  for (const TaskId& id : old_ids) EXPECT_FALSE(Stored(id));
  for (const TaskId& id : recent_ids) EXPECT_TRUE(Stored(id));
  EXPECT_FALSE(Exists("data/.sales.csv.bmos-tmp-0123456789abcdef"));
  EXPECT_FALSE(Exists("models/m/.v1.json.bmos-tmp-00000000000000ff"));
  EXPECT_TRUE(Exists("data/.fresh.csv.bmos-tmp-fedcba9876543210"));
  EXPECT_TRUE(Exists("data/old-but-not-ours.csv"));

  // Nothing is left to purge: a second run finds none.
  const json::value again = Cleanup({{"older_than_days", 7}});
  EXPECT_EQ(again.at("tasks_purged"), 0);

  // Zero days purges everything finished before now (the earlier cleanups, the recent tasks).
  clock_.AdvanceMillis(1);
  const json::value all = Cleanup({{"older_than_days", 0}});
  EXPECT_EQ(Num(all.at("tasks_purged")), 3 + 3);
  for (const TaskId& id : recent_ids) EXPECT_FALSE(Stored(id));
}

TEST_F(CleanupTest, BadTaskDataFailsAtOnce) {
  for (const boost::json::object& data :
       {boost::json::object{}, boost::json::object{{"older_than_days", -1}},
        boost::json::object{{"older_than_days", "7"}},
        boost::json::object{{"older_than_days", 7}, {"dry_run", "yes"}}}) {
    const TaskRecord r = RunTask("system_cleanup", data);
    EXPECT_EQ(r.state, TaskState::kFailed) << boost::json::serialize(data);
    EXPECT_EQ(r.retry_count, 0);
    EXPECT_THAT(r.error, HasSubstr("system_cleanup: field"));
  }
}

TEST(CleanupMemoryStore, CountsAndPurgesWithoutCompaction) {
  // Directly, on the in-memory store: nothing to compact.
  std::unique_ptr<storage::TaskStore> store = storage::NewMemoryTaskStore();
  auto spec = std::make_shared<storage::TaskSpec>();
  spec->id = storage::NewTaskId(1000);
  spec->name = "noop";
  spec->queue = "default";
  spec->data_json = "{}";
  spec->created_ms = 1000;
  TaskRecord record;
  record.spec = spec;
  record.state = TaskState::kCompleted;
  record.completed_ms = 2000;
  BMOS_ASSERT_OK(store->Write(std::span<const TaskRecord>(&record, 1)));
  fs::path dir = fs::temp_directory_path() / ("bmos-cleanup-" + spec->id.ToString());
  Result<DataRoot> root = DataRoot::Open(dir);
  ASSERT_TRUE(root.ok());
  ManualClock clock(10 * kDayMs * 1000);
  Workspace ws{*root, &clock};
  TestJob job;
  Result<json::value> r = SystemCleanup(ws, *store, Obj(R"({"older_than_days": 1})"), job);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->at("tasks_purged"), 1);
  EXPECT_EQ(r->at("store").at("kind").as_string(), "memory");
  EXPECT_EQ(r->at("store").at("compacted"), false);
  EXPECT_EQ(store->Get(spec->id).status().code(), Status::Code::kNotFound);
  TestJob cancelled(0);
  EXPECT_EQ(SystemCleanup(ws, *store, Obj(R"({"older_than_days": 1})"), cancelled).status().code(),
            Status::Code::kCancelled);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace bmos::engine::handlers
