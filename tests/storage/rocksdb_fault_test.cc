// The RocksDB store under injected file-system faults (write errors, failed fsyncs, a full disk):
// a failing write reaches its caller as an error that says what happened, reads keep answering,
// nothing acknowledged is lost, and writing works again in the same process once the fault
// clears, without the user reopening the store. Each test writes a few acknowledged records
// first and keeps the state each one was last acknowledged in.
//
// How the store handles a failed write, as these tests pin it down:
//   The store declines RocksDB's own recovery from background errors. After any failed write
//   (a WAL append or fsync error, a full disk) the commit thread fails further writes fast, with
//   the same error and without touching a file, for kReopenInterval (1 s). The next write after
//   that closes and reopens the database; if the read-write open fails (the fault is still on),
//   a read-only instance serves reads, and the store tries again 1 s later. Reads answer all
//   along. After a reopen the store reloads its persisted counts.
//   write error, disk full  nothing of a failed commit reaches the WAL: the reopened database
//       does not have it.
//   sync error  a failed commit's bytes reached the WAL before its fsync failed, so the reopened
//       database *has* it, although its writers were told it failed (the store allows this: a
//       write that reported an error may be there). A client writes it again; the store does
//       not count a terminal record twice.
//   disk full on a WAL that never took a write  (a store just reopened, and each reopen of the
//       store's own). RocksDB 7.8's own recovery used to resume on that WAL, whose writer keeps
//       its error, and the next write aborted the process on an assertion inside RocksDB
//       ("sync_without_flush_called_"). The store's reopen replaces that: see
//       RocksDbFaultFreshWalTest.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <utility>
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
using test_util::kAllStates;
using test_util::MakeRecord;
using test_util::RecordingCallback;
using test_util::TempDir;
using test_util::With;
using test_util::WriteOne;
using ::testing::HasSubstr;
using Scope = FaultInjectionFs::Scope;

// How long a test waits for the store to take writes again once a fault has cleared. The store
// reopens its database kReopenInterval (1 s) after a failed write; the rest is room for loaded
// CI machines.
constexpr std::chrono::seconds kRecoveryDeadline{30};
// The store's fail-fast window after a failed write (kReopenInterval in rocksdb_task_store.cc):
// within it a write fails with the remembered error and touches no file.
constexpr std::chrono::milliseconds kFailFastWindow{1000};

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

// Whether `s` is the error a write gets while `fault` is on (or was, within the fail-fast
// window), from the failed write itself or from the store's failed reopen: IOError for write and
// sync errors, Unavailable starting "disk full" (the store's words) for a full disk; either way
// naming the injected fault.
::testing::AssertionResult IsFaultError(const Status& s, Fault fault) {
  const bool disk_full = fault == Fault::kDiskFull;
  if (s.code() == (disk_full ? Status::Code::kUnavailable : Status::Code::kIOError) &&
      (!disk_full || s.message().starts_with("disk full")) &&
      s.message().find(InjectedText(fault)) != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "not the error of '" << InjectedText(fault) << "': " << s.ToString();
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

// Writes `r` asynchronously, flushes, and returns the one status its callback was told.
Status WriteOneAsync(TaskStore& store, const TaskRecord& r) {
  RecordingCallback callback;
  store.WriteAsync({&r, 1}, &callback);
  if (Status s = store.Flush(); !s.ok()) return s;
  std::vector<Status> told = callback.statuses();
  if (told.size() != 1) {
    return Status::Internal("the callback was told " + std::to_string(told.size()) + " times");
  }
  return told[0];
}

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

// How strictly ExpectServes checks the counts.
enum class CountsCheck {
  kExact,     // Counts counts exactly the records found, per state
  kAnswered,  // Counts answers (while a failed write may show in the read-only instance the
              // store reads from during a fault, before the reopen that reloads the counts)
};

// Get, List, Counts and ForEachLive all answer. Each acknowledged record is there in its last
// acknowledged state or, when `maybe` holds it, in that state instead; each `absent` record is
// missing or, when `maybe` holds it, there in that state. (`maybe`: the state of a write that
// reported an error but whose bytes may have reached the WAL: a failed fsync.) List shows
// exactly the records found; ForEachLive visits exactly the live ones.
void ExpectServes(const TaskStore& store, const Acked& acked, const std::vector<uint64_t>& absent,
                  const Acked& maybe = {}, CountsCheck counts_check = CountsCheck::kExact) {
  std::map<uint64_t, S> found;  // index -> the state the store shows
  auto may_be = [&](uint64_t i, S state) {
    auto m = maybe.find(i);
    return m != maybe.end() && m->second == state;
  };
  for (const auto& [i, state] : acked) {
    Result<TaskRecord> r = store.Get(IdFor(i));
    ASSERT_TRUE(r.ok()) << "record " << i << ": " << r.status().ToString();
    EXPECT_TRUE(r->state == state || may_be(i, r->state))
        << "record " << i << ": " << ToString(r->state) << ", acknowledged " << ToString(state);
    found[i] = r->state;
  }
  for (uint64_t i : absent) {
    Result<TaskRecord> r = store.Get(IdFor(i));
    if (r.ok()) {
      EXPECT_TRUE(may_be(i, r->state)) << "record " << i << " is there: " << ToString(r->state);
      found[i] = r->state;
    } else {
      EXPECT_EQ(r.status().code(), Status::Code::kNotFound)
          << "record " << i << ": " << r.status().ToString();
    }
  }

  ListQuery all;
  all.limit = 1000;
  Result<ListPage> page = store.List(all);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  std::set<TaskId> listed, want;
  for (const TaskRecord& r : page->records) listed.insert(r.id());
  for (const auto& [i, state] : found) want.insert(IdFor(i));
  EXPECT_EQ(listed, want);

  std::map<S, uint64_t> by_state;
  for (const auto& [i, state] : found) by_state[state] += 1;
  Result<StoreCounts> counts = store.Counts();
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  if (counts_check == CountsCheck::kExact) {
    for (S state : kAllStates) EXPECT_EQ(counts->total(state), by_state[state]) << ToString(state);
  }

  size_t live = 0;
  ASSERT_TRUE(store.ForEachLive([&](const TaskRecord&) { ++live; }).ok());
  EXPECT_EQ(live, by_state[S::kPending] + by_state[S::kRunning] + by_state[S::kRetrying]);
}

// TerminalCounts counts each terminal record once: per state, what it says equals the number of
// records List shows in that state (a record counted twice, by a failed commit that came back
// from the WAL and the client's write of it again, would show here).
void ExpectTerminalCountsMatchListing(const TaskStore& store) {
  Result<StoreCounts> counts = store.TerminalCounts();
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  for (S state : kAllStates) {
    if (!IsTerminal(state)) continue;
    ListQuery q;
    q.state = state;
    q.limit = 1000;
    Result<ListPage> page = store.List(q);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    EXPECT_EQ(counts->total(state), page->records.size()) << ToString(state);
  }
}

// Reads the store from a thread of its own until Stop: every round, Get of each `stable` record
// (acknowledged before the fault and never written again) must answer with its acknowledged
// state, and List, Counts and ForEachLive must answer. So reads answer throughout: during the
// fail-fast window, the store's reopen attempts and its read-only fallback.
class BackgroundReader {
 public:
  BackgroundReader(const TaskStore& store, Acked stable)
      : store_(store), stable_(std::move(stable)), thread_([this] { Run(); }) {}
  ~BackgroundReader() { (void)Stop(); }

  // Stops the thread; returns the failures it saw (empty: every read answered).
  std::vector<std::string> Stop() {
    stop_.store(true, std::memory_order_relaxed);  // a plain flag: the join publishes the rest
    if (thread_.joinable()) thread_.join();
    return failures_;
  }
  // Rounds finished so far. Relaxed: a progress count, no data hangs on it.
  uint64_t rounds() const { return rounds_.load(std::memory_order_relaxed); }

 private:
  void Run() {
    ListQuery all;
    all.limit = 1000;
    while (!stop_.load(std::memory_order_relaxed) && failures_.size() < 20) {
      for (const auto& [i, state] : stable_) {
        Result<TaskRecord> r = store_.Get(IdFor(i));
        if (!r.ok()) {
          failures_.push_back("Get " + std::to_string(i) + ": " + r.status().ToString());
        } else if (r->state != state) {
          failures_.push_back("Get " + std::to_string(i) + ": " + std::string(ToString(r->state)));
        }
      }
      if (Result<ListPage> p = store_.List(all); !p.ok()) {
        failures_.push_back("List: " + p.status().ToString());
      }
      if (Result<StoreCounts> c = store_.Counts(); !c.ok()) {
        failures_.push_back("Counts: " + c.status().ToString());
      }
      if (Status s = store_.ForEachLive([](const TaskRecord&) {}); !s.ok()) {
        failures_.push_back("ForEachLive: " + s.ToString());
      }
      rounds_.fetch_add(1, std::memory_order_relaxed);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  const TaskStore& store_;
  const Acked stable_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> rounds_{0};
  std::vector<std::string> failures_;  // the reader thread's until Stop joins it
  std::thread thread_;                 // last: starts once the rest is built
};

// Writes `r` until the store takes it or kRecoveryDeadline passes. Every refusal on the way must
// still be the error of `fault` (the store fails writes fast after a failed one, then reopens).
// Polls: the test cannot see when the store reopens.
::testing::AssertionResult WriteOnceRecovered(TaskStore& store, const TaskRecord& r, Fault fault) {
  const auto deadline = std::chrono::steady_clock::now() + kRecoveryDeadline;
  int refused = 0;
  for (;;) {
    Status s = WriteOne(store, r);
    if (s.ok()) return ::testing::AssertionSuccess();
    if (!IsFaultError(s, fault)) {
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

// With the fault still on: writes `r` until the store has touched a file again (a reopen attempt
// or a write after one: injected_total() passes `injected_before`), or kRecoveryDeadline passes.
// Every write must fail with the fault's error. So the fault outlasts the fail-fast window.
::testing::AssertionResult WritesFailPastTheWindow(TaskStore& store, const FaultInjectionFs& fs,
                                                   const TaskRecord& r, Fault fault,
                                                   uint64_t injected_before) {
  const auto deadline = std::chrono::steady_clock::now() + kRecoveryDeadline;
  int refused = 0;
  while (fs.injected_total() <= injected_before) {
    Status s = WriteOne(store, r);
    if (s.ok()) return ::testing::AssertionFailure() << "a write succeeded while the fault is on";
    if (::testing::AssertionResult e = IsFaultError(s, fault); !e) return e;
    if (std::chrono::steady_clock::now() >= deadline) {
      return ::testing::AssertionFailure()
             << "the store touched no file in " << refused << " writes over "
             << kRecoveryDeadline.count() << " s: it never tried to reopen";
    }
    ++refused;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // One more after the reopen attempt, to be sure the store still refuses.
  Status s = WriteOne(store, r);
  if (s.ok()) return ::testing::AssertionFailure() << "a write succeeded while the fault is on";
  return IsFaultError(s, fault);
}

// -- Write errors and failed fsyncs: the store reopens the database in process. -----------------

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

TEST_P(FatalFaultTest, WritesFailWhileTheFaultLastsReadsAnswerAndWritingResumesInProcess) {
  const Fault fault = GetParam().fault;
  const bool sync_error = fault == Fault::kSyncError;
  TempDir dir("fault");
  FaultInjectionEnv env;
  env.fs().set_scope(GetParam().scope);
  Acked acked;
  {
    std::shared_ptr<RocksDbTaskStore> store = Open(dir.path(), env.env());
    ASSERT_NE(store, nullptr);
    ASSERT_NO_FATAL_FAILURE(WriteAcknowledged(*store, &acked));
    ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {}));
    // Records 2..5 are never written again: their reads must answer all along.
    BackgroundReader reader(
        *store, {{2, S::kCompleted}, {3, S::kFailed}, {4, S::kRetrying}, {5, S::kPending}});
    Inject(env.fs(), fault);

    // The first write under the fault, of record 1's outcome (RUNNING -> COMPLETED), fails with
    // an error that says what happened and where.
    const auto window_start = std::chrono::steady_clock::now();  // no later than the failure
    const TaskRecord completed1 = With(MakeRecord(1), S::kCompleted);
    Status s = WriteOne(*store, completed1);
    EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
    EXPECT_THAT(s.message(), HasSubstr(InjectedText(fault)));
    EXPECT_THAT(s.message(), HasSubstr(dir.path()));
    const uint64_t injected_first = env.fs().injected_total();
    EXPECT_GE(injected_first, 1u);

    // So do a new record, an update of an acknowledged one and an asynchronous write: within the
    // fail-fast window, with the same error.
    EXPECT_TRUE(IsFaultError(WriteOne(*store, MakeRecord(10)), fault));
    EXPECT_TRUE(IsFaultError(WriteOne(*store, With(MakeRecord(0), S::kRunning)), fault));
    EXPECT_TRUE(IsFaultError(WriteOneAsync(*store, MakeRecord(11)), fault));
    // Only a write can start a reopen, so if these three came within the window, none reached
    // RocksDB. (A machine too slow for that only makes the checks below less exact.)
    const bool stayed_in_window = std::chrono::steady_clock::now() < window_start + kFailFastWindow;
    if (stayed_in_window) {
      EXPECT_EQ(env.fs().injected_total(), injected_first)
          << "a write within the fail-fast window reached a file";
    }

    // Reads keep answering. Failed writes that may show: with a failed fsync, the first failed
    // commit (not yet: the database that holds it in its WAL is still open), and any that came
    // after the window.
    Acked maybe;
    if (sync_error && !stayed_in_window) {
      maybe = {{1, S::kCompleted}, {0, S::kRunning}, {10, S::kPending}, {11, S::kPending}};
    }
    ASSERT_NO_FATAL_FAILURE(
        ExpectServes(*store, acked, {10, 11}, maybe,
                     maybe.empty() ? CountsCheck::kExact : CountsCheck::kAnswered));

    // The fault outlasts the window: the store's reopen attempts fail (or the write after one
    // does), and every write keeps failing with the fault's error. Reads answer (the reader).
    ASSERT_TRUE(WritesFailPastTheWindow(*store, env.fs(), MakeRecord(20), fault, injected_first));
    if (sync_error) {
      // The reopen attempt may have replayed the first failed commit into the instance that
      // serves reads, and later ones may have reached the WAL too. The counts are reloaded only
      // by a reopen that can write again, so they are not checked here.
      maybe = {{1, S::kCompleted},
               {0, S::kRunning},
               {10, S::kPending},
               {11, S::kPending},
               {20, S::kPending}};
    }
    ASSERT_NO_FATAL_FAILURE(
        ExpectServes(*store, acked, {10, 11, 20}, maybe,
                     sync_error ? CountsCheck::kAnswered : CountsCheck::kExact));

    // The fault clears: the store reopens the database itself, and writes succeed again in the
    // same process, without the user reopening it.
    env.fs().ClearFaults();
    ASSERT_TRUE(WriteOnceRecovered(*store, MakeRecord(12), fault));
    acked[12] = S::kPending;

    // What the reopened database holds of the failed writes. A write error kept all of them out.
    // A failed fsync did not: the first failed commit (record 1's outcome) is there, and so may
    // be those that came after the window; 0, 10 and 11 are not, when they came within it.
    Acked expected = acked;
    maybe.clear();
    if (sync_error) {
      expected[1] = S::kCompleted;
      maybe[20] = S::kPending;
      if (!stayed_in_window) maybe.insert({{0, S::kRunning}, {10, S::kPending}, {11, S::kPending}});
    }
    Result<TaskRecord> r1 = store->Get(IdFor(1));
    ASSERT_TRUE(r1.ok()) << r1.status().ToString();
    EXPECT_EQ(r1->state, sync_error ? S::kCompleted : S::kRunning) << ToString(r1->state);
    ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, expected, {10, 11, 20}, maybe));
    ASSERT_NO_FATAL_FAILURE(ExpectTerminalCountsMatchListing(*store));

    // The client writes again what was refused, as after any error; all of it is acknowledged
    // now. Record 1's outcome may be there already (failed fsync): it is counted once.
    ASSERT_TRUE(Ack(*store, completed1, 1, &acked));
    ASSERT_TRUE(Ack(*store, With(MakeRecord(0), S::kRunning), 0, &acked));
    ASSERT_TRUE(Ack(*store, MakeRecord(10), 10, &acked));
    Status async = WriteOneAsync(*store, MakeRecord(11));
    EXPECT_TRUE(async.ok()) << async.ToString();
    if (async.ok()) acked[11] = S::kPending;
    ASSERT_TRUE(Ack(*store, MakeRecord(20), 20, &acked));
    ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {}));
    ASSERT_NO_FATAL_FAILURE(ExpectTerminalCountsMatchListing(*store));
    Result<StoreCounts> terminal = store->TerminalCounts();
    ASSERT_TRUE(terminal.ok()) << terminal.status().ToString();
    EXPECT_EQ(terminal->total(S::kCompleted), 2u);  // records 1 and 2
    EXPECT_EQ(terminal->total(S::kFailed), 1u);     // record 3

    std::vector<std::string> failures = reader.Stop();
    EXPECT_THAT(failures, ::testing::IsEmpty());
    EXPECT_GT(reader.rounds(), 0u);
  }

  // Reopened on a healthy file system: everything acknowledged, as last acknowledged, counted
  // once.
  std::shared_ptr<RocksDbTaskStore> store = Open(dir.path(), nullptr);
  ASSERT_NE(store, nullptr);
  ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {}));
  ASSERT_NO_FATAL_FAILURE(ExpectTerminalCountsMatchListing(*store));

  // And it writes again.
  ASSERT_TRUE(Ack(*store, MakeRecord(13), 13, &acked));
  ASSERT_TRUE(Ack(*store, With(MakeRecord(5), S::kRunning), 5, &acked));
  ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {}));
}

INSTANTIATE_TEST_SUITE_P(Faults, FatalFaultTest,
                         ::testing::Values(FatalCase{Fault::kWriteError, Scope::kWalOnly},
                                           FatalCase{Fault::kWriteError, Scope::kAllFiles},
                                           FatalCase{Fault::kSyncError, Scope::kWalOnly},
                                           FatalCase{Fault::kSyncError, Scope::kAllFiles}),
                         [](const ::testing::TestParamInfo<FatalCase>& info) {
                           return Name(info.param);
                         });

// -- A full disk: the store reopens the database in process once there is space. -----------------

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
    EXPECT_TRUE(store->Health().ok()) << store->Health().ToString();
    Inject(env.fs(), Fault::kDiskFull);

    ExpectDiskFull(WriteOne(*store, MakeRecord(10)));
    // Health reports the stop (the HTTP /health endpoint shows it) until the store recovers.
    const Status health = store->Health();
    EXPECT_EQ(health.code(), Status::Code::kUnavailable) << health.ToString();
    EXPECT_THAT(health.message(), ::testing::HasSubstr("writes resume"));
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

    // Space returns: the store's reopen (1 s after the failed write) lets writes through again.
    env.fs().ClearFaults();
    ASSERT_TRUE(WriteOnceRecovered(*store, MakeRecord(12), Fault::kDiskFull));
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
    EXPECT_TRUE(store->Health().ok()) << store->Health().ToString();
  }
  std::shared_ptr<RocksDbTaskStore> store = Open(dir.path(), nullptr);
  ASSERT_NE(store, nullptr);
  ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {10, 11}));
}

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
    ASSERT_TRUE(WriteOnceRecovered(*store, MakeRecord(12), Fault::kDiskFull));
    acked[12] = S::kPending;
    ASSERT_TRUE(Ack(*store, With(MakeRecord(0), S::kRunning), 0, &acked));
    ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {}));
  }
  std::shared_ptr<RocksDbTaskStore> store = Open(dir.path(), nullptr);
  ASSERT_NE(store, nullptr);
  ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {}));
}

// A sync write under a full WAL.
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
    ASSERT_TRUE(WriteOnceRecovered(*store, MakeRecord(12), Fault::kDiskFull));
    acked[12] = S::kPending;
  }
  std::shared_ptr<RocksDbTaskStore> store = Open(dir.path(), nullptr);
  ASSERT_NE(store, nullptr);
  ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {10}));
}

// -- A full disk on a WAL that never took a write: no abort. ------------------------------------

// A store is reopened (RocksDB flushes the replayed WAL at open, so the new WAL is empty) and its
// first write meets a full disk. RocksDB 7.8's own recovery used to "succeed" at once here and
// keep the empty WAL, whose writer remembers the failed append, and the next write aborted the
// process inside RocksDB ("Assertion `sync_without_flush_called_' failed" in WritableFileWriter).
// The store now declines that recovery and reopens the database itself, on a fresh WAL again
// each time: the next writes fail with the disk-full error while the disk is full, also past
// the store's reopen attempts, and succeed once it has space, in the same process. The cases:
// the disk full on the WAL only and space back before the next write (the first defect case);
// the disk full on the WAL only, or on every file, and still full for the next writes.
struct FreshWalCase {
  Scope scope;
  bool space_back_at_once;  // space returns right after the first failed write
};

std::string Name(const FreshWalCase& c) {
  return std::string(c.scope == Scope::kWalOnly ? "WalOnly" : "AllFiles") +
         (c.space_back_at_once ? "SpaceBackAtOnce" : "StillFull");
}

void PrintTo(const FreshWalCase& c, std::ostream* os) { *os << Name(c); }

class RocksDbFaultFreshWalTest : public ::testing::TestWithParam<FreshWalCase> {};

TEST_P(RocksDbFaultFreshWalTest, WritesFailWhileTheDiskIsFullAndResumeInProcessWithoutAborting) {
  TempDir dir("fault");
  Acked acked;
  {
    std::shared_ptr<RocksDbTaskStore> store = Open(dir.path(), nullptr);
    ASSERT_NE(store, nullptr);
    ASSERT_NO_FATAL_FAILURE(WriteAcknowledged(*store, &acked));
  }
  FaultInjectionEnv env;
  env.fs().set_scope(GetParam().scope);
  {
    std::shared_ptr<RocksDbTaskStore> store = Open(dir.path(), env.env());
    ASSERT_NE(store, nullptr);
    ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {}));
    BackgroundReader reader(*store, acked);  // nothing acknowledged is written again before Stop
    env.fs().set_disk_full(true);

    // The first write on the fresh WAL meets the full disk.
    Status s = WriteOne(*store, MakeRecord(10));
    ExpectDiskFull(s);
    EXPECT_THAT(s.message(), HasSubstr(dir.path()));
    const uint64_t injected_first = env.fs().injected_total();
    EXPECT_GE(injected_first, 1u);

    if (GetParam().space_back_at_once) {
      // The next write comes after the disk has space (it is the first try of
      // WriteOnceRecovered below): refused with the disk-full error or taken, never an abort.
      env.fs().ClearFaults();
    } else {
      // The next writes are where RocksDB aborted: now they fail with the disk-full error,
      // synchronous and asynchronous alike.
      EXPECT_TRUE(
          IsFaultError(WriteOne(*store, With(MakeRecord(0), S::kRunning)), Fault::kDiskFull));
      EXPECT_TRUE(IsFaultError(WriteOneAsync(*store, MakeRecord(11)), Fault::kDiskFull));
      // Still full past the fail-fast window: each reopen attempt of the store (on a fresh WAL
      // again) fails, or the write after it does; writes keep failing with the disk-full error.
      ASSERT_TRUE(WritesFailPastTheWindow(*store, env.fs(), MakeRecord(20), Fault::kDiskFull,
                                          injected_first));
    }
    // Nothing of a failed write is there (a failed append leaves nothing in the file).
    ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {10, 11, 20}));

    // Space returns: writes succeed again in the same process, and keep succeeding.
    env.fs().ClearFaults();
    ASSERT_TRUE(WriteOnceRecovered(*store, MakeRecord(12), Fault::kDiskFull));
    acked[12] = S::kPending;
    std::vector<std::string> failures = reader.Stop();
    EXPECT_THAT(failures, ::testing::IsEmpty());
    EXPECT_GT(reader.rounds(), 0u);
    ASSERT_TRUE(Ack(*store, With(MakeRecord(0), S::kRunning), 0, &acked));
    Status async = WriteOneAsync(*store, MakeRecord(13));
    EXPECT_TRUE(async.ok()) << async.ToString();
    if (async.ok()) acked[13] = S::kPending;
    ASSERT_TRUE(Ack(*store, With(MakeRecord(5), S::kCancelled), 5, &acked));
    ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {10, 11, 20}));
    ASSERT_NO_FATAL_FAILURE(ExpectTerminalCountsMatchListing(*store));
  }

  // Reopened on a healthy file system: everything acknowledged, as last acknowledged.
  std::shared_ptr<RocksDbTaskStore> store = Open(dir.path(), nullptr);
  ASSERT_NE(store, nullptr);
  ASSERT_NO_FATAL_FAILURE(ExpectServes(*store, acked, {10, 11, 20}));
  ASSERT_NO_FATAL_FAILURE(ExpectTerminalCountsMatchListing(*store));
}

INSTANTIATE_TEST_SUITE_P(DiskFull, RocksDbFaultFreshWalTest,
                         ::testing::Values(FreshWalCase{Scope::kWalOnly, true},
                                           FreshWalCase{Scope::kWalOnly, false},
                                           FreshWalCase{Scope::kAllFiles, false}),
                         [](const ::testing::TestParamInfo<FreshWalCase>& info) {
                           return Name(info.param);
                         });

// Start records are left out of a commit that also holds the task's outcome (the commit thread
// drops them: one key fewer per short task), and only then. The fault file system holds the
// commit thread in the fsync of an unrelated write so that the writes below reach it together.
TEST(RocksDbCommit, AStartRecordIsLeftOutOnlyWhenTheTasksOutcomeSharesItsCommit) {
  TempDir dir("coalesce");
  FaultInjectionEnv env;
  std::shared_ptr<RocksDbTaskStore> store = Open(dir.path(), env.env());
  ASSERT_NE(store, nullptr);
  for (uint64_t i = 1; i <= 4; ++i) ASSERT_TRUE(WriteOne(*store, MakeRecord(i)).ok());

  env.fs().set_hold_syncs(true);
  std::thread blocker([&] { EXPECT_TRUE(WriteOne(*store, MakeRecord(9)).ok()); });
  const bool held = env.fs().WaitForHeldSync(std::chrono::seconds(10));
  if (!held) env.fs().set_hold_syncs(false);
  ASSERT_TRUE(held) << "the commit thread never reached an fsync";
  // Task 1: start, then outcome (dropped start). Task 2: start alone (kept). Task 3: start and a
  // RETRYING outcome, which keeps the task live (kept). Task 4 is not written again.
  const TaskRecord run1 = With(MakeRecord(1), S::kRunning);
  const TaskRecord done1 = With(MakeRecord(1), S::kCompleted);
  const TaskRecord run2 = With(MakeRecord(2), S::kRunning);
  const TaskRecord run3 = With(MakeRecord(3), S::kRunning);
  TaskRecord retry3 = With(MakeRecord(3), S::kRetrying);
  retry3.retry_count = 1;
  RecordingCallback told1, told3;
  store->WriteAsync({&run1, 1}, nullptr);
  store->WriteAsync({&done1, 1}, &told1);
  store->WriteAsync({&run2, 1}, nullptr);
  store->WriteAsync({&run3, 1}, nullptr);
  store->WriteAsync({&retry3, 1}, &told3);
  env.fs().set_hold_syncs(false);
  blocker.join();
  ASSERT_TRUE(store->Flush().ok());

  EXPECT_EQ(store->commit_stats().dropped_starts, 1u);
  ASSERT_EQ(told1.statuses().size(), 1u);
  EXPECT_TRUE(told1.statuses()[0].ok());
  ASSERT_EQ(told3.statuses().size(), 1u);
  EXPECT_TRUE(told3.statuses()[0].ok());
  const std::map<uint64_t, S> want = {
      {1, S::kCompleted}, {2, S::kRunning}, {3, S::kRetrying}, {4, S::kPending}, {9, S::kPending}};
  for (const auto& [i, state] : want) {
    Result<TaskRecord> r = store->Get(IdFor(i));
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
    EXPECT_EQ(r->state, state) << "task " << i;
  }
  std::set<TaskId> live;
  ASSERT_TRUE(store->ForEachLive([&](const TaskRecord& r) { live.insert(r.id()); }).ok());
  EXPECT_EQ(live, (std::set<TaskId>{IdFor(2), IdFor(3), IdFor(4), IdFor(9)}));
}

}  // namespace
}  // namespace bmos::storage
