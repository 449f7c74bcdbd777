// The RocksDB store under injected file-system faults (write errors, failed fsyncs, a full disk):
// a failing write reaches its caller as an error that says what happened, reads keep answering,
// nothing acknowledged is lost, and writing works again once the fault clears, either in
// process or, where RocksDB cannot resume, after a reopen. Each test writes a few acknowledged
// records first and keeps the state each one was last acknowledged in.
//
// What RocksDB 7.8.3 (Debian's) does, as these tests pin it down:
//   write error, sync error  RocksDB records a *fatal* background error on the first failed WAL
//       append or fsync. Every later write fails with that same error, also after the fault has
//       cleared: DB::Resume refuses fatal errors, so the store stays read-only until it is
//       closed and reopened. The reopened store has every acknowledged record. A commit whose
//       append failed is not there; a commit whose fsync failed *is* (its bytes reached the
//       file before the fsync failed), although its writers were told it failed.
//   disk full  a *hard* error that RocksDB's SstFileManager recovers from by itself: at once
//       when only the WAL failed (the recovery flushes the memtables to new SST files and
//       switches to a new WAL), and within its 5 s retry interval after the disk has space again
//       when every file failed; until then writes fail with the disk-full error. Then writes
//       work again, in process. (RocksDB recovers on its own here: the store's DB::Resume call
//       after a failed commit is not what brings it back.)
//   disk full on a WAL that never took a write  if the WAL that RocksDB resumes on has never
//       had a successful write (a store just reopened; or a second disk-full error right after a
//       recovery onto a new WAL), the recovery keeps that WAL, whose writer keeps its error, and
//       the next write aborts the process on an assertion inside RocksDB (Debian builds RocksDB
//       with assertions on), whether or not the disk has space again. See
//       RocksDbFaultDeathTest below. The other tests keep clear of it: their first failed
//       append comes after acknowledged writes to the same WAL, and a full WAL meets one write.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "storage/rocksdb_task_store.h"
#include "tests/storage/fault_injection_env.h"
#include "tests/storage/store_test_util.h"

namespace bmos::storage {
namespace {

using S = TaskState;
using test_util::FaultInjectionEnv;
using test_util::FaultInjectionFs;
using test_util::IdFor;
using test_util::MakeRecord;
using test_util::TempDir;
using test_util::With;
using ::testing::HasSubstr;
using Scope = FaultInjectionFs::Scope;

// How long a test waits for the store to take writes again once a fault has cleared. RocksDB
// retries its recovery from a full disk every 5 s; the rest is room for loaded CI machines.
constexpr std::chrono::seconds kRecoveryDeadline{30};

enum class Fault { kWriteError, kSyncError, kDiskFull };

const char* InjectedText(Fault fault) {
  switch (fault) {
    case Fault::kWriteError:
      return "injected write error";
    case Fault::kSyncError:
      return "injected sync error";
    case Fault::kDiskFull:
      return "injected disk full";
  }
  return "";
}

void Inject(FaultInjectionFs& fs, Fault fault) {
  switch (fault) {
    case Fault::kWriteError:
      fs.set_write_errors(true);
      break;
    case Fault::kSyncError:
      fs.set_sync_errors(true);
      break;
    case Fault::kDiskFull:
      fs.set_disk_full(true);
      break;
  }
}

// `env` null: RocksDB's default environment (no faults).
std::shared_ptr<RocksDbTaskStore> Open(const std::string& path, rocksdb::Env* env) {
  RocksDbStoreOptions o;
  o.path = path;
  o.durability = Durability::kSync;  // every write fsyncs its WAL, so sync faults bite
  o.env = env;
  Result<std::shared_ptr<RocksDbTaskStore>> store = RocksDbTaskStore::Open(o);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? *store : nullptr;
}

Status WriteOne(TaskStore& store, const TaskRecord& r) { return store.Write({&r, 1}); }

class RecordingCallback final : public WriteCallback {
 public:
  void OnWritten(const Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    statuses_.push_back(status);
  }
  std::vector<Status> statuses() const {
    std::lock_guard<std::mutex> lock(mu_);
    return statuses_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Status> statuses_;
};

// The records a test has had acknowledged: index (IdFor) -> the state last acknowledged.
using Acked = std::map<uint64_t, S>;

// Writes one record, and on success notes it as acknowledged.
::testing::AssertionResult Ack(TaskStore& store, const TaskRecord& r, uint64_t index,
                               Acked* acked) {
  Status s = WriteOne(store, r);
  if (!s.ok()) return ::testing::AssertionFailure() << "write failed: " << s.ToString();
  (*acked)[index] = r.state;
  return ::testing::AssertionSuccess();
}

// Records 0..5, acknowledged in every state: 0 and 5 PENDING, 1 RUNNING, 2 COMPLETED, 3 FAILED,
// 4 RETRYING.
void WriteAcknowledged(TaskStore& store, Acked* acked) {
  std::vector<TaskRecord> batch;
  for (uint64_t i = 0; i < 6; ++i) batch.push_back(MakeRecord(i));
  ASSERT_TRUE(store.Write(batch).ok());
  for (uint64_t i = 0; i < 6; ++i) (*acked)[i] = S::kPending;
  for (uint64_t i : {1, 2, 3, 4})
    ASSERT_TRUE(Ack(store, With(MakeRecord(i), S::kRunning), i, acked));
  ASSERT_TRUE(Ack(store, With(MakeRecord(2), S::kCompleted), 2, acked));
  ASSERT_TRUE(Ack(store, With(MakeRecord(3), S::kFailed), 3, acked));
  ASSERT_TRUE(Ack(store, With(MakeRecord(4), S::kRetrying), 4, acked));
}

// Get, List, Counts and ForEachLive all answer, and show exactly the acknowledged records, each
// in its last acknowledged state; the `absent` ones are not there.
void ExpectServes(const TaskStore& store, const Acked& acked, const std::vector<uint64_t>& absent) {
  for (const auto& [i, state] : acked) {
    Result<TaskRecord> r = store.Get(IdFor(i));
    ASSERT_TRUE(r.ok()) << "record " << i << ": " << r.status().ToString();
    EXPECT_EQ(r->state, state) << "record " << i;
  }
  for (uint64_t i : absent) {
    EXPECT_EQ(store.Get(IdFor(i)).status().code(), Status::Code::kNotFound) << "record " << i;
  }

  ListQuery all;
  all.limit = 1000;
  Result<ListPage> page = store.List(all);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  std::set<TaskId> listed, want;
  for (const TaskRecord& r : page->records) listed.insert(r.id());
  for (const auto& [i, state] : acked) want.insert(IdFor(i));
  EXPECT_EQ(listed, want);

  Result<StoreCounts> counts = store.Counts();
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  std::map<S, uint64_t> by_state;
  for (const auto& [i, state] : acked) by_state[state] += 1;
  for (S state :
       {S::kPending, S::kRunning, S::kRetrying, S::kCompleted, S::kFailed, S::kCancelled}) {
    EXPECT_EQ(counts->total(state), by_state[state]) << ToString(state);
  }

  size_t live = 0;
  ASSERT_TRUE(store.ForEachLive([&](const TaskRecord&) { ++live; }).ok());
  EXPECT_EQ(live, by_state[S::kPending] + by_state[S::kRunning] + by_state[S::kRetrying]);
}

// -- Write errors and failed fsyncs: fatal for RocksDB; a reopen recovers. ------------------------

struct FatalCase {
  Fault fault;
  Scope scope;
};

std::string Name(const FatalCase& c) {
  return std::string(c.fault == Fault::kWriteError ? "WriteError" : "SyncError") +
         (c.scope == Scope::kWalOnly ? "OnWal" : "OnAllFiles");
}

// GoogleTest (and CTest's test names) print the case by name, not as raw bytes.
void PrintTo(const FatalCase& c, std::ostream* os) { *os << Name(c); }

class FatalFaultTest : public ::testing::TestWithParam<FatalCase> {};

TEST_P(FatalFaultTest, WritesFailReadsAnswerAndAReopenRecoversEverythingAcknowledged) {
  const Fault fault = GetParam().fault;
  TempDir dir("fault");
  FaultInjectionEnv env;
  env.fs().set_scope(GetParam().scope);
  Acked acked;
  {
    std::shared_ptr<RocksDbTaskStore> store = Open(dir.path(), env.env());
    ASSERT_NE(store, nullptr);
    ASSERT_NO_FATAL_FAILURE(WriteAcknowledged(*store, &acked));
    ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {}));
    Inject(env.fs(), fault);

    // A write fails, with an error that says what happened and where.
    Status s = WriteOne(*store, MakeRecord(10));
    EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
    EXPECT_THAT(s.message(), HasSubstr(InjectedText(fault)));
    EXPECT_THAT(s.message(), HasSubstr(dir.path()));
    EXPECT_GE(env.fs().injected_total(), 1u);

    // So does an update of an acknowledged record, and an asynchronous write.
    s = WriteOne(*store, With(MakeRecord(0), S::kRunning));
    EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
    RecordingCallback callback;
    TaskRecord r11 = MakeRecord(11);
    store->WriteAsync({&r11, 1}, &callback);
    ASSERT_TRUE(store->Flush().ok());
    std::vector<Status> told = callback.statuses();
    ASSERT_EQ(told.size(), 1u);
    EXPECT_EQ(told[0].code(), Status::Code::kIOError) << told[0].ToString();
    EXPECT_THAT(told[0].message(), HasSubstr(InjectedText(fault)));

    // Reads keep answering, with the acknowledged records only.
    ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {10, 11}));

    // The fault clears, but RocksDB keeps its fatal background error: Resume refuses it and
    // every write fails with the first error, without touching a file again.
    env.fs().ClearFaults();
    const uint64_t injected = env.fs().injected_total();
    for (int attempt = 0; attempt < 3; ++attempt) {
      s = WriteOne(*store, MakeRecord(12));
      EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
      EXPECT_THAT(s.message(), HasSubstr(InjectedText(fault)));
    }
    EXPECT_EQ(env.fs().injected_total(), injected);
    ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {10, 11, 12}));
  }

  // Reopened on a healthy file system: everything acknowledged, as acknowledged.
  std::shared_ptr<RocksDbTaskStore> store = Open(dir.path(), nullptr);
  ASSERT_NE(store, nullptr);
  if (fault == Fault::kSyncError) {
    // The first failed commit's bytes reached the WAL before its fsync failed: RocksDB replays
    // it. (The store allows this: a write that reported an error may be there after a restart.)
    Result<TaskRecord> resurrected = store->Get(IdFor(10));
    ASSERT_TRUE(resurrected.ok()) << resurrected.status().ToString();
    acked[10] = S::kPending;
  }
  ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked,
                                       fault == Fault::kSyncError
                                           ? std::vector<uint64_t>{11, 12}
                                           : std::vector<uint64_t>{10, 11, 12}));

  // And it writes again.
  ASSERT_TRUE(Ack(*store, MakeRecord(13), 13, &acked));
  ASSERT_TRUE(Ack(*store, With(MakeRecord(0), S::kRunning), 0, &acked));
  ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {11, 12}));
}

INSTANTIATE_TEST_SUITE_P(Faults, FatalFaultTest,
                         ::testing::Values(FatalCase{Fault::kWriteError, Scope::kWalOnly},
                                           FatalCase{Fault::kWriteError, Scope::kAllFiles},
                                           FatalCase{Fault::kSyncError, Scope::kWalOnly},
                                           FatalCase{Fault::kSyncError, Scope::kAllFiles}),
                         [](const ::testing::TestParamInfo<FatalCase>& info) {
                           return Name(info.param);
                         });

// -- A full disk: RocksDB recovers in process. ----------------------------------------------------

// Writes `r` until the store takes it or kRecoveryDeadline passes. Every refusal on the way must
// still be the disk-full error. Polls: how long recovery takes is RocksDB's business.
::testing::AssertionResult WriteOnceRecovered(TaskStore& store, const TaskRecord& r) {
  const auto deadline = std::chrono::steady_clock::now() + kRecoveryDeadline;
  int refused = 0;
  for (;;) {
    Status s = WriteOne(store, r);
    if (s.ok()) return ::testing::AssertionSuccess();
    if (s.code() != Status::Code::kUnavailable ||
        s.message().find("disk full") == std::string::npos) {
      return ::testing::AssertionFailure() << "unexpected error while recovering: " << s.ToString();
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return ::testing::AssertionFailure()
             << "still refused after " << refused << " tries: " << s.ToString();
    }
    ++refused;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void ExpectDiskFull(const Status& s) {
  EXPECT_EQ(s.code(), Status::Code::kUnavailable) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("disk full"));
  EXPECT_THAT(s.message(), HasSubstr(InjectedText(Fault::kDiskFull)));
}

TEST(RocksDbFault, DiskFullOnEveryFileFailsWritesUntilSpaceReturnsThenRecoversInProcess) {
  TempDir dir("fault");
  FaultInjectionEnv env;
  env.fs().set_scope(Scope::kAllFiles);
  Acked acked;
  {
    std::shared_ptr<RocksDbTaskStore> store = Open(dir.path(), env.env());
    ASSERT_NE(store, nullptr);
    ASSERT_NO_FATAL_FAILURE(WriteAcknowledged(*store, &acked));
    Inject(env.fs(), Fault::kDiskFull);

    ExpectDiskFull(WriteOne(*store, MakeRecord(10)));
    ExpectDiskFull(WriteOne(*store, With(MakeRecord(0), S::kRunning)));
    RecordingCallback callback;
    TaskRecord r11 = MakeRecord(11);
    store->WriteAsync({&r11, 1}, &callback);
    ASSERT_TRUE(store->Flush().ok());
    std::vector<Status> told = callback.statuses();
    ASSERT_EQ(told.size(), 1u);
    ExpectDiskFull(told[0]);
    EXPECT_GE(env.fs().injected_disk_full(), 1u);
    ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {10, 11}));

    // Space returns: RocksDB's recovery (retried every 5 s) lets writes through again.
    env.fs().ClearFaults();
    ASSERT_TRUE(WriteOnceRecovered(*store, MakeRecord(12)));
    acked[12] = S::kPending;
    ASSERT_TRUE(Ack(*store, With(MakeRecord(0), S::kRunning), 0, &acked));
    RecordingCallback after;
    TaskRecord r13 = MakeRecord(13);
    store->WriteAsync({&r13, 1}, &after);
    ASSERT_TRUE(store->Flush().ok());
    ASSERT_EQ(after.statuses().size(), 1u);
    EXPECT_TRUE(after.statuses()[0].ok()) << after.statuses()[0].ToString();
    acked[13] = S::kPending;
    ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {10, 11}));
  }
  std::shared_ptr<RocksDbTaskStore> store = Open(dir.path(), nullptr);
  ASSERT_NE(store, nullptr);
  ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {10, 11}));
}

// Only one write meets the full WAL: a second failed append before a successful one would hit
// the RocksDB abort that RocksDbFaultDeathTest shows.
TEST(RocksDbFault, DiskFullOnTheWalFailsTheWriteThenRecoversInProcess) {
  TempDir dir("fault");
  FaultInjectionEnv env;
  env.fs().set_scope(Scope::kWalOnly);
  Acked acked;
  {
    std::shared_ptr<RocksDbTaskStore> store = Open(dir.path(), env.env());
    ASSERT_NE(store, nullptr);
    ASSERT_NO_FATAL_FAILURE(WriteAcknowledged(*store, &acked));
    Inject(env.fs(), Fault::kDiskFull);

    RecordingCallback callback;
    TaskRecord update = With(MakeRecord(0), S::kRunning);  // of acknowledged record 0
    store->WriteAsync({&update, 1}, &callback);
    ASSERT_TRUE(store->Flush().ok());
    std::vector<Status> told = callback.statuses();
    ASSERT_EQ(told.size(), 1u);
    ExpectDiskFull(told[0]);
    EXPECT_EQ(env.fs().injected_disk_full(), 1u);
    ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {}));

    env.fs().ClearFaults();
    ASSERT_TRUE(WriteOnceRecovered(*store, MakeRecord(12)));
    acked[12] = S::kPending;
    ASSERT_TRUE(Ack(*store, With(MakeRecord(0), S::kRunning), 0, &acked));
    ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {}));
  }
  std::shared_ptr<RocksDbTaskStore> store = Open(dir.path(), nullptr);
  ASSERT_NE(store, nullptr);
  ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {}));
}

// A sync write under a full WAL (a separate store, so the one failed append rule above holds).
TEST(RocksDbFault, DiskFullOnTheWalIsUnavailableWithDiskFullInTheMessage) {
  TempDir dir("fault");
  FaultInjectionEnv env;
  Acked acked;
  {
    std::shared_ptr<RocksDbTaskStore> store = Open(dir.path(), env.env());
    ASSERT_NE(store, nullptr);
    ASSERT_NO_FATAL_FAILURE(WriteAcknowledged(*store, &acked));
    Inject(env.fs(), Fault::kDiskFull);
    Status s = WriteOne(*store, MakeRecord(10));
    ExpectDiskFull(s);
    EXPECT_THAT(s.message(), HasSubstr(dir.path()));
    ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {10}));
    env.fs().ClearFaults();
    ASSERT_TRUE(WriteOnceRecovered(*store, MakeRecord(12)));
    acked[12] = S::kPending;
  }
  std::shared_ptr<RocksDbTaskStore> store = Open(dir.path(), nullptr);
  ASSERT_NE(store, nullptr);
  ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {10}));
}

// -- A known defect, pinned: a full disk on a WAL that never took a write kills the process. ----

// A store is reopened (RocksDB flushes the replayed WAL at open, so the new WAL is empty) and its
// first write meets a full disk. RocksDB's recovery then has nothing to flush, "succeeds" at once
// (even while every file still fails) and keeps the empty WAL, whose writer remembers the failed
// append; the next write aborts the process inside RocksDB: "Assertion
// `sync_without_flush_called_' failed" in WritableFileWriter. (Without assertions RocksDB would
// fail that write with "Writer has previous error", a fatal error.) Two cases: the disk full on
// the WAL only and space back before the next write; the disk full on every file and still full.
// When the store handles this (by reopening the DB after a failed WAL write instead of letting
// RocksDB resume in place, say), this test fails: turn it into one that expects the writes to
// fail while the disk is full and to succeed once it has space.
void WriteAfterDiskFullOnAFreshWal(const std::string& path, Scope scope) {
  {
    std::shared_ptr<RocksDbTaskStore> store = Open(path, nullptr);
    if (store == nullptr || !WriteOne(*store, MakeRecord(1)).ok()) std::exit(2);
  }
  FaultInjectionEnv env;
  env.fs().set_scope(scope);
  std::shared_ptr<RocksDbTaskStore> store = Open(path, env.env());
  if (store == nullptr) std::exit(2);
  env.fs().set_disk_full(true);
  if (WriteOne(*store, MakeRecord(2)).ok()) std::exit(3);
  if (scope == Scope::kWalOnly) env.fs().ClearFaults();
  const auto deadline = std::chrono::steady_clock::now() + kRecoveryDeadline;
  while (std::chrono::steady_clock::now() < deadline) {
    if (WriteOne(*store, MakeRecord(3)).ok()) break;  // RocksDB recovered: no abort
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::exit(0);
}

TEST(RocksDbFaultDeathTest, DiskFullOnAFreshWalAbortsTheNextWriteInsideRocksDb) {
  // "threadsafe": the child starts afresh (RocksDB's thread pools do not survive a fork). It
  // reruns this body, so it takes the parent's directory from the environment, and the parent
  // removes it.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  constexpr const char* kDirVariable = "BMOS_FAULT_DEATH_TEST_DIR";
  std::unique_ptr<TempDir> own;
  std::string path;
  if (const char* inherited = std::getenv(kDirVariable); inherited != nullptr) {
    path = inherited;  // the child
  } else {
    own = std::make_unique<TempDir>("fault-death");
    path = own->path();
    ASSERT_EQ(setenv(kDirVariable, path.c_str(), 1), 0);
  }
  EXPECT_DEATH(WriteAfterDiskFullOnAFreshWal(path + "/wal", Scope::kWalOnly),
               "sync_without_flush_called_");
  EXPECT_DEATH(WriteAfterDiskFullOnAFreshWal(path + "/all", Scope::kAllFiles),
               "sync_without_flush_called_");
  unsetenv(kDirVariable);
}

}  // namespace
}  // namespace bmos::storage
