#include "storage/rocksdb_task_store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>
#include <rocksdb/write_batch.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "storage/callback_batch.h"
#include "storage/memory_task_store.h"
#include "storage/record_codec.h"
#include "tests/storage/store_test_util.h"

namespace bmos::storage {
namespace {

using S = TaskState;
using test_util::IdFor;
using test_util::MakeRecord;
using test_util::RecordingCallback;
using test_util::TempDir;
using test_util::With;
using test_util::WriteOne;

std::shared_ptr<RocksDbTaskStore> OpenOrDie(const std::string& path,
                                            Durability durability = Durability::kSync) {
  RocksDbStoreOptions o;
  o.path = path;
  o.durability = durability;
  auto store = RocksDbTaskStore::Open(o);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? *store : nullptr;
}

uint64_t Count(const StoreCounts& counts, const std::string& queue, S state) {
  auto it = counts.by_queue.find(queue);
  return it == counts.by_queue.end() ? 0 : it->second[static_cast<size_t>(state)];
}

std::vector<uint64_t> Indexes(const ListPage& page) {
  std::vector<uint64_t> out;
  for (const TaskRecord& r : page.records) {
    for (uint64_t i = 0; i < 10'000; ++i) {
      if (IdFor(i) == r.id()) {
        out.push_back(i);
        break;
      }
    }
  }
  return out;
}

TEST(RecordCodec, RoundTripsEveryField) {
  TaskRecord r = MakeRecord(7, "ml", "train_model", S::kRetrying);
  auto spec = std::make_shared<TaskSpec>(*r.spec);
  spec->priority = Priority::kCritical;
  spec->data_json = R"({"model":"销售预测","rows":[1,2,3]})";
  spec->max_retries = 5;
  spec->timeout_ms = 30'000;
  spec->eta_ms = test_util::kBaseMs + 60'000;
  spec->unique_key = "daily-retrain";
  r.spec = spec;
  r.retry_count = 2;
  r.run_at_ms = test_util::kBaseMs + 5'000;
  r.started_ms = test_util::kBaseMs + 1'000;
  r.progress = 0.375;
  r.progress_message = "epoch 3/8";
  r.result_json = R"({"r2":0.91})";
  r.error = "disk busy";
  std::string value;
  codec::EncodeRecord(r, &value);
  EXPECT_EQ(static_cast<uint8_t>(value[0]), codec::kRecordFormat);
  Result<TaskRecord> back = codec::DecodeRecord(r.id(), value);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(ToJson(*back), ToJson(r));
  EXPECT_EQ(back->spec->unique_key, "daily-retrain");
  EXPECT_EQ(back->spec->priority, Priority::kCritical);

  S state;
  std::string queue;
  ASSERT_TRUE(codec::PeekStateAndQueue(value, &state, &queue).ok());
  EXPECT_EQ(state, S::kRetrying);
  EXPECT_EQ(queue, "ml");
}

TEST(RecordCodec, RefusesDamagedAndUnknownValues) {
  TaskRecord r = MakeRecord(1);
  std::string value;
  codec::EncodeRecord(r, &value);
  for (size_t cut = 0; cut < value.size(); ++cut) {
    EXPECT_EQ(codec::DecodeRecord(r.id(), value.substr(0, cut)).status().code(),
              Status::Code::kCorruption)
        << "cut at " << cut;
  }
  EXPECT_EQ(codec::DecodeRecord(r.id(), value + "x").status().code(), Status::Code::kCorruption);
  std::string newer = value;
  newer[0] = static_cast<char>(codec::kRecordFormat + 1);
  Result<TaskRecord> bad = codec::DecodeRecord(r.id(), newer);
  EXPECT_EQ(bad.status().code(), Status::Code::kCorruption);
  EXPECT_NE(bad.status().message().find("format version"), std::string::npos);
  std::string bad_state = value;
  bad_state[1] = 9;
  EXPECT_EQ(codec::DecodeRecord(r.id(), bad_state).status().code(), Status::Code::kCorruption);
}

TEST(RecordCodec, IdKeysSortAsIds) {
  for (uint64_t i = 0; i < 100; ++i) {
    EXPECT_LT(codec::IdKey(IdFor(i)), codec::IdKey(IdFor(i + 1)));
    EXPECT_EQ(codec::IdFromKey(codec::IdKey(IdFor(i))), IdFor(i));
  }
  EXPECT_FALSE(codec::IdFromKey("short").has_value());
}

TEST(RecordCodec, IndexPrefixesParseBackAndKeepTheirIdsTogether) {
  struct Combo {
    S state;
    std::string queue, name;
  };
  const std::vector<Combo> combos = {
      {S::kCompleted, "a", "bc"}, {S::kCompleted, "ab", "c"},
      {S::kCompleted, "", "abc"}, {S::kCompleted, "abc", ""},
      {S::kFailed, "a", "bc"},    {S::kCancelled, std::string(200, 'q'), "n"}};
  for (const Combo& c : combos) {
    const std::string prefix = codec::IndexPrefix(c.state, c.queue, c.name);
    std::string appended = "x";  // AppendIndexPrefix appends to what is there
    codec::AppendIndexPrefix(c.state, c.queue, c.name, &appended);
    EXPECT_EQ(appended, "x" + prefix);
    S state;
    std::string queue, name;
    ASSERT_TRUE(codec::ParseIndexPrefix(prefix, &state, &queue, &name));
    EXPECT_EQ(state, c.state);
    EXPECT_EQ(queue, c.queue);
    EXPECT_EQ(name, c.name);
    for (size_t cut = 0; cut < prefix.size(); ++cut) {
      EXPECT_FALSE(codec::ParseIndexPrefix(prefix.substr(0, cut), &state, &queue, &name));
    }
    EXPECT_FALSE(codec::ParseIndexPrefix(prefix + "x", &state, &queue, &name));
    std::string bad_state = prefix;
    bad_state[1] = 9;
    EXPECT_FALSE(codec::ParseIndexPrefix(bad_state, &state, &queue, &name));
  }
  // All keys of one prefix sort before all keys of another, or all after: a prefix's ids are
  // one contiguous run (what ListByIndex and its skipping from prefix to prefix rely on).
  const std::string lowest(codec::kIdKeySize, '\0'), highest(codec::kIdKeySize, '\xff');
  for (const Combo& a : combos) {
    for (const Combo& b : combos) {
      const std::string pa = codec::IndexPrefix(a.state, a.queue, a.name);
      const std::string pb = codec::IndexPrefix(b.state, b.queue, b.name);
      if (pa == pb) continue;
      EXPECT_NE(pa + highest < pb + lowest, pb + highest < pa + lowest) << pa << " / " << pb;
    }
  }
}

TEST(RocksDbTaskStore, KeepsRecordsAcrossReopen) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path());
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->durability(), Durability::kSync);
    ASSERT_TRUE(WriteOne(*store, MakeRecord(1)).ok());
    ASSERT_TRUE(WriteOne(*store, With(MakeRecord(2), S::kCompleted)).ok());
  }
  auto store = OpenOrDie(dir.path());
  ASSERT_NE(store, nullptr);
  Result<TaskRecord> live = store->Get(IdFor(1));
  ASSERT_TRUE(live.ok()) << live.status().ToString();
  EXPECT_EQ(live->state, S::kPending);
  Result<TaskRecord> done = store->Get(IdFor(2));
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state, S::kCompleted);
  EXPECT_EQ(store->Get(IdFor(3)).status().code(), Status::Code::kNotFound);
}

// `sync` writes its log over zeros written ahead (unless told not to); `async` never syncs and
// writes it plainly. A copy taken while the store is open (what a kill leaves: the zeros behind
// the last commit) opens with every acknowledged record.
TEST(RocksDbTaskStore, SyncWritesItsLogOverZerosAndRecoversFromAKillImage) {
  struct Case {
    Durability durability;
    bool zero_ahead;
    std::pair<int, int> logs;  // zero-tailed, plain
  };
  for (const Case& c :
       {Case{Durability::kSync, true, {1, 0}}, Case{Durability::kSync, false, {0, 1}},
        Case{Durability::kAsync, true, {0, 1}}}) {
    SCOPED_TRACE(std::string(ToString(c.durability)) + (c.zero_ahead ? " zero-ahead" : ""));
    TempDir dir;
    const std::string image = dir.Sub("image");
    {
      RocksDbStoreOptions o;
      o.path = dir.Sub("store");
      o.durability = c.durability;
      o.zero_ahead_wal = c.zero_ahead;
      auto store = RocksDbTaskStore::Open(o);
      ASSERT_TRUE(store.ok()) << store.status().ToString();
      for (uint64_t i = 1; i <= 100; ++i) {
        ASSERT_TRUE(
            WriteOne(**store, i % 4 == 0 ? With(MakeRecord(i), S::kCompleted) : MakeRecord(i))
                .ok());
      }
      EXPECT_EQ(test_util::ZeroTailedAndPlainLogs(o.path), c.logs);
      std::filesystem::copy(o.path, image, std::filesystem::copy_options::recursive);
    }
    auto reopened = OpenOrDie(image, c.durability);
    ASSERT_NE(reopened, nullptr);
    for (uint64_t i = 1; i <= 100; ++i) {
      Result<TaskRecord> r = reopened->Get(IdFor(i));
      ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
      EXPECT_EQ(r->state, i % 4 == 0 ? S::kCompleted : S::kPending) << i;
    }
  }
}

std::vector<std::pair<std::string, std::string>> Jobs(const TaskStore& store) {
  std::vector<std::pair<std::string, std::string>> jobs;
  Status s = store.ForEachJob([&](std::string_view id, std::string_view value) {
    jobs.emplace_back(std::string(id), std::string(value));
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return jobs;
}

using JobList = std::vector<std::pair<std::string, std::string>>;

// Scheduled jobs: opaque values by id, replaced and erased in order, kept across a reopen, and
// seen by a read-only reader; a job write submitted after a task write is applied after it.
TEST(RocksDbTaskStore, KeepsScheduledJobsAcrossReopen) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path());
    ASSERT_NE(store, nullptr);
    const JobWrite first[] = {{"b", "1"}, {"a", "2"}, {"c", "3"}};
    ASSERT_TRUE(store->WriteJobs(first).ok());
    const JobWrite second[] = {{"a", "4"}, {"c", "", true}};
    ASSERT_TRUE(store->WriteJobs(second).ok());
    ASSERT_TRUE(WriteOne(*store, MakeRecord(1)).ok());
    const JobWrite third[] = {{"d", "5"}};
    store->WriteJobsAsync(third, nullptr);  // detached: applied in order, no fsync of its own
    ASSERT_TRUE(store->Flush().ok());
    EXPECT_EQ(Jobs(*store), (JobList{{"a", "4"}, {"b", "1"}, {"d", "5"}}));
  }
  auto store = OpenOrDie(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Jobs(*store), (JobList{{"a", "4"}, {"b", "1"}, {"d", "5"}}));
  EXPECT_TRUE(store->Get(IdFor(1)).ok());

  RocksDbStoreOptions o;
  o.path = dir.path();
  o.read_only = true;
  auto reader = RocksDbTaskStore::Open(o);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ(Jobs(**reader), (JobList{{"a", "4"}, {"b", "1"}, {"d", "5"}}));
  const JobWrite refused[] = {{"e", "6"}};
  EXPECT_EQ((*reader)->WriteJobs(refused).code(), Status::Code::kFailedPrecondition);
}

TEST(MemoryTaskStoreJobs, KeepsScheduledJobsInIdOrder) {
  auto store = NewMemoryTaskStore();
  const JobWrite writes[] = {{"z", "1"}, {"m", "2"}, {"z", "3"}, {"m", "", true}, {"k", "4"}};
  ASSERT_TRUE(store->WriteJobs(writes).ok());
  EXPECT_EQ(Jobs(*store), (JobList{{"k", "4"}, {"z", "3"}}));
}

TEST(RocksDbTaskStore, TerminalWriteMovesTheRecordOutOfLive) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), Durability::kAsync);
  ASSERT_TRUE(WriteOne(*store, MakeRecord(1)).ok());
  ASSERT_TRUE(WriteOne(*store, With(MakeRecord(1), S::kRunning)).ok());
  std::vector<TaskRecord> live;
  ASSERT_TRUE(store->ForEachLive([&](const TaskRecord& r) { live.push_back(r); }).ok());
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].state, S::kRunning);

  ASSERT_TRUE(WriteOne(*store, With(MakeRecord(1), S::kFailed)).ok());
  live.clear();
  ASSERT_TRUE(store->ForEachLive([&](const TaskRecord& r) { live.push_back(r); }).ok());
  EXPECT_TRUE(live.empty());
  EXPECT_EQ(store->Get(IdFor(1))->state, S::kFailed);
  auto counts = store->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(Count(*counts, "default", S::kFailed), 1u);
  EXPECT_EQ(Count(*counts, "default", S::kRunning), 0u);
}

// Live records are kept in a vector memtable (appended, sorted when read or flushed): records
// rewritten and retired several times within one memtable read back as their last write, by
// Get, ForEachLive (in id order) and Counts, while they are in the memtable, after a reopen
// (replayed from the WAL) and after a flush and compaction to table files.
TEST(RocksDbTaskStore, RewrittenAndRetiredLiveRecordsReadBackAsTheirLastWrite) {
  constexpr uint64_t kTasks = 600;
  // Every task is enqueued; odd ones start; multiples of 5 go to RETRYING; multiples of 3 end.
  auto expected = [](uint64_t i) {
    if (i % 3 == 0) return S::kCompleted;
    if (i % 5 == 0) return S::kRetrying;
    return i % 2 == 1 ? S::kRunning : S::kPending;
  };
  auto write_all = [](TaskStore& store, auto step) {
    std::vector<TaskRecord> batch;
    for (uint64_t i = 1; i <= kTasks; ++i) {
      if (std::optional<TaskRecord> r = step(i)) batch.push_back(std::move(*r));
    }
    ASSERT_TRUE(store.Write(batch).ok());
  };
  auto check = [&](const RocksDbTaskStore& store, const std::string& when) {
    SCOPED_TRACE(when);
    std::vector<uint64_t> live_ids;
    uint64_t live_by_state[kTaskStateCount] = {};
    ASSERT_TRUE(store
                    .ForEachLive([&](const TaskRecord& r) {
                      for (uint64_t i = 1; i <= kTasks; ++i) {
                        if (IdFor(i) != r.id()) continue;
                        live_ids.push_back(i);
                        EXPECT_EQ(r.state, expected(i)) << "task " << i;
                      }
                      live_by_state[static_cast<int>(r.state)] += 1;
                    })
                    .ok());
    std::vector<uint64_t> want_ids;
    for (uint64_t i = 1; i <= kTasks; ++i) {
      if (i % 3 != 0) want_ids.push_back(i);
    }
    EXPECT_EQ(live_ids, want_ids);
    for (uint64_t i = 1; i <= kTasks; ++i) {
      Result<TaskRecord> r = store.Get(IdFor(i));
      ASSERT_TRUE(r.ok()) << "task " << i << ": " << r.status().ToString();
      EXPECT_EQ(r->state, expected(i)) << "task " << i;
    }
    EXPECT_EQ(store.Get(IdFor(kTasks + 1)).status().code(), Status::Code::kNotFound);
    Result<StoreCounts> counts = store.Counts();
    ASSERT_TRUE(counts.ok());
    for (S state : {S::kPending, S::kRunning, S::kRetrying, S::kCompleted}) {
      uint64_t want = 0;
      for (uint64_t i = 1; i <= kTasks; ++i) want += expected(i) == state ? 1 : 0;
      EXPECT_EQ(Count(*counts, "default", state), want) << ToString(state);
      if (!IsTerminal(state)) {
        EXPECT_EQ(live_by_state[static_cast<int>(state)], want) << ToString(state);
      }
    }
  };
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path(), Durability::kAsync);
    ASSERT_NE(store, nullptr);
    write_all(*store, [](uint64_t i) { return std::optional<TaskRecord>(MakeRecord(i)); });
    write_all(*store, [](uint64_t i) {
      return i % 2 == 1 ? std::optional<TaskRecord>(With(MakeRecord(i), S::kRunning))
                        : std::nullopt;
    });
    write_all(*store, [](uint64_t i) {
      return i % 5 == 0 && i % 3 != 0 ? std::optional<TaskRecord>(With(MakeRecord(i), S::kRetrying))
                                      : std::nullopt;
    });
    write_all(*store, [](uint64_t i) {
      return i % 3 == 0 ? std::optional<TaskRecord>(With(MakeRecord(i), S::kCompleted))
                        : std::nullopt;
    });
    check(*store, "in the memtable");
  }
  auto store = OpenOrDie(dir.path(), Durability::kAsync);
  ASSERT_NE(store, nullptr);
  check(*store, "after a reopen");
  ASSERT_TRUE(store->CompactAll().ok());
  check(*store, "after a compaction");
}

// A read of the live memtable copies and sorts it (a vector memtable), so Get avoids it: a
// finished task is found in `done` without touching `live`, and for an id that is nowhere the
// live memtable's bloom filter answers (RocksDB's perf context counts both).
TEST(RocksDbTaskStore, GetReadsTheLiveMemtableOnlyWhenItMayHoldTheId) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), Durability::kAsync);
  ASSERT_NE(store, nullptr);
  std::vector<TaskRecord> live;
  for (uint64_t i = 1; i <= 100; ++i) live.push_back(MakeRecord(i));
  ASSERT_TRUE(store->Write(live).ok());
  ASSERT_TRUE(WriteOne(*store, With(MakeRecord(1), S::kCompleted)).ok());

  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
  rocksdb::PerfContext& perf = *rocksdb::get_perf_context();
  perf.Reset();
  EXPECT_EQ(store->Get(IdFor(1))->state, S::kCompleted);
  EXPECT_EQ(perf.bloom_memtable_hit_count + perf.bloom_memtable_miss_count, 0u)
      << "the live memtable was read for a finished task";
  perf.Reset();
  EXPECT_EQ(store->Get(IdFor(1000)).status().code(), Status::Code::kNotFound);
  EXPECT_GE(perf.bloom_memtable_miss_count, 1u) << "no bloom filter answered for `live`";
  perf.Reset();
  EXPECT_EQ(store->Get(IdFor(2))->state, S::kPending);
  EXPECT_GE(perf.bloom_memtable_hit_count, 1u);
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
}

TEST(RocksDbTaskStore, CountsTerminalPersistedAndLiveScanned) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path());
    std::vector<TaskRecord> batch;
    for (uint64_t i = 0; i < 10; ++i) batch.push_back(MakeRecord(i, i % 2 ? "ml" : "default"));
    ASSERT_TRUE(store->Write(batch).ok());
    for (uint64_t i = 0; i < 6; ++i) {
      ASSERT_TRUE(WriteOne(*store, With(MakeRecord(i, i % 2 ? "ml" : "default"),
                                        i < 4 ? S::kCompleted : S::kCancelled))
                      .ok());
    }
  }
  auto store = OpenOrDie(dir.path());
  auto counts = store->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(Count(*counts, "default", S::kCompleted), 2u);  // 0, 2
  EXPECT_EQ(Count(*counts, "ml", S::kCompleted), 2u);       // 1, 3
  EXPECT_EQ(Count(*counts, "default", S::kCancelled), 1u);  // 4
  EXPECT_EQ(Count(*counts, "ml", S::kCancelled), 1u);       // 5
  EXPECT_EQ(Count(*counts, "default", S::kPending), 2u);    // 6, 8
  EXPECT_EQ(Count(*counts, "ml", S::kPending), 2u);         // 7, 9
  auto terminal = store->TerminalCounts();
  ASSERT_TRUE(terminal.ok());
  EXPECT_EQ(Count(*terminal, "default", S::kPending), 0u);
  EXPECT_EQ(terminal->total(S::kCompleted), 4u);
}

TEST(RocksDbTaskStore, ListsNewestFirstWithFiltersAndCursor) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), Durability::kAsync);
  // 0..29: every third FAILED, others COMPLETED; queues alternate; names cycle over three.
  // 30..34: live.
  const char* names[] = {"a", "b", "c"};
  for (uint64_t i = 0; i < 35; ++i) {
    TaskRecord r = MakeRecord(i, i % 2 ? "ml" : "default", names[i % 3]);
    ASSERT_TRUE(WriteOne(*store, r).ok());
    if (i < 30) {
      ASSERT_TRUE(WriteOne(*store, With(r, i % 3 == 0 ? S::kFailed : S::kCompleted)).ok());
    }
  }
  ListQuery all;
  all.limit = 1000;
  auto page = store->List(all);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->records.size(), 35u);
  EXPECT_EQ(Indexes(*page).front(), 34u);
  EXPECT_EQ(Indexes(*page).back(), 0u);
  EXPECT_FALSE(page->next_cursor.has_value());

  ListQuery failed_ml;
  failed_ml.state = S::kFailed;
  failed_ml.queue = "ml";
  page = store->List(failed_ml);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Indexes(*page), (std::vector<uint64_t>{27, 21, 15, 9, 3}));

  ListQuery by_name;
  by_name.name = "b";
  by_name.queue = "default";
  page = store->List(by_name);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Indexes(*page), (std::vector<uint64_t>{34, 28, 22, 16, 10, 4}));

  ListQuery terminal_only;
  terminal_only.terminal_only = true;
  terminal_only.queue = "default";
  terminal_only.limit = 4;
  page = store->List(terminal_only);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Indexes(*page), (std::vector<uint64_t>{28, 26, 24, 22}));
  ASSERT_TRUE(page->next_cursor.has_value());
  terminal_only.before = page->next_cursor;
  page = store->List(terminal_only);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Indexes(*page), (std::vector<uint64_t>{20, 18, 16, 14}));

  ListQuery pending;
  pending.state = S::kPending;
  pending.limit = 2;
  page = store->List(pending);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Indexes(*page), (std::vector<uint64_t>{34, 33}));
  EXPECT_TRUE(page->next_cursor.has_value());

  // Paging through everything with a small page visits each record once, newest first.
  ListQuery paged;
  paged.limit = 7;
  std::vector<uint64_t> seen;
  for (int pages = 0; pages < 20; ++pages) {
    auto p = store->List(paged);
    ASSERT_TRUE(p.ok());
    for (uint64_t i : Indexes(*p)) seen.push_back(i);
    if (!p->next_cursor) break;
    paged.before = p->next_cursor;
  }
  ASSERT_EQ(seen.size(), 35u);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 34 - i);

  ListQuery bad;
  bad.limit = 0;
  EXPECT_EQ(store->List(bad).status().code(), Status::Code::kInvalidArgument);
}

// Every combination of the three filters, paged with a small limit, against the answer worked
// out from the records: the index's prefixes are merged newest first, the cursor respected.
TEST(RocksDbTaskStore, ListsEveryFilterCombinationThroughTheIndex) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), Durability::kAsync);
  const S states[] = {S::kCompleted, S::kFailed, S::kCancelled};
  const char* queues[] = {"default", "ml"};
  const char* names[] = {"a", "b", "c", "dd"};
  struct Meta {
    S state;
    std::string queue, name;
  };
  std::vector<Meta> meta;
  for (uint64_t i = 0; i < 90; ++i) {
    // Terminal in an order unlike their ids, so no prefix holds a run of consecutive ids.
    const S state = states[(i * 7) % 3];
    TaskRecord r = MakeRecord(i, queues[(i / 3) % 2], names[(i * 5) % 4]);
    ASSERT_TRUE(WriteOne(*store, r).ok());
    meta.push_back({state, r.spec->queue, r.spec->name});
  }
  for (uint64_t k = 0; k < 90; ++k) {
    const uint64_t i = (k * 37) % 90;
    TaskRecord r = MakeRecord(i, meta[i].queue, meta[i].name);
    ASSERT_TRUE(WriteOne(*store, With(r, meta[i].state)).ok());
  }
  for (uint64_t i = 90; i < 95; ++i) ASSERT_TRUE(WriteOne(*store, MakeRecord(i)).ok());  // live

  std::vector<std::optional<S>> state_filters = {std::nullopt, S::kCompleted, S::kFailed,
                                                 S::kCancelled};
  std::vector<std::string> queue_filters = {"", "default", "ml", "nope"};
  std::vector<std::string> name_filters = {"", "a", "b", "c", "dd", "d"};
  int queries = 0;
  for (const auto& state : state_filters) {
    for (const std::string& queue : queue_filters) {
      for (const std::string& name : name_filters) {
        std::vector<uint64_t> expected;
        for (uint64_t i = 90; i-- > 0;) {
          if ((!state || meta[i].state == *state) && (queue.empty() || meta[i].queue == queue) &&
              (name.empty() || meta[i].name == name)) {
            expected.push_back(i);
          }
        }
        ListQuery q;
        q.terminal_only = true;
        q.state = state;
        q.queue = queue;
        q.name = name;
        q.limit = 4;
        std::vector<uint64_t> seen;
        for (int pages = 0; pages < 40; ++pages) {
          auto page = store->List(q);
          ASSERT_TRUE(page.ok()) << page.status().ToString();
          ASSERT_LE(page->records.size(), 4u);
          for (uint64_t i : Indexes(*page)) seen.push_back(i);
          if (!page->next_cursor) break;
          q.before = page->next_cursor;
        }
        EXPECT_EQ(seen, expected) << "state " << (state ? static_cast<int>(*state) : -1)
                                  << " queue '" << queue << "' name '" << name << "'";
        ++queries;
      }
    }
  }
  EXPECT_EQ(queries, 96);
}

// The store's column families, opened with plain RocksDB (the store at `path` closed).
struct RawStore {
  explicit RawStore(const std::string& path) {
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const char* name : {"default", "live", "done", "index", "jobs"}) {
      cfs.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    rocksdb::DB* raw = nullptr;
    status = rocksdb::DB::Open(rocksdb::DBOptions(), path, cfs, &cf, &raw);
    db.reset(raw);
  }
  ~RawStore() {
    for (rocksdb::ColumnFamilyHandle* h : cf) (void)db->DestroyColumnFamilyHandle(h);
    if (db) (void)db->Close();
  }
  // Index keys by their first byte (their kind).
  std::map<char, size_t> IndexKinds() {
    std::map<char, size_t> out;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf[3]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++out[it->key()[0]];
    return out;
  }
  std::string Format() {
    std::string v;
    (void)db->Get(rocksdb::ReadOptions(), cf[0], "format", &v);
    return v;
  }
  rocksdb::Status status;
  std::vector<rocksdb::ColumnFamilyHandle*> cf;
  std::unique_ptr<rocksdb::DB> db;
};

// Rewrites a closed store as format 1 kept it: three index keys per terminal record ('s' state,
// 'q' queue and 'n' name; strings as a one-byte length, enough for these tests).
void DowngradeToFormat1(const std::string& path) {
  RawStore raw(path);
  ASSERT_TRUE(raw.status.ok()) << raw.status.ToString();
  rocksdb::WriteBatch wb;
  std::unique_ptr<rocksdb::Iterator> it(raw.db->NewIterator(rocksdb::ReadOptions(), raw.cf[3]));
  for (it->SeekToFirst(); it->Valid(); it->Next())
    ASSERT_TRUE(wb.Delete(raw.cf[3], it->key()).ok());
  it.reset(raw.db->NewIterator(rocksdb::ReadOptions(), raw.cf[2]));
  auto keyed = [](char kind, const std::string& value) {
    return std::string(1, kind) + static_cast<char>(value.size()) + value;
  };
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string id_key = it->key().ToString();
    auto r = codec::DecodeRecord(*codec::IdFromKey(id_key), it->value().ToString());
    ASSERT_TRUE(r.ok());
    const std::string state(1, static_cast<char>(r->state));
    ASSERT_TRUE(wb.Put(raw.cf[3], "s" + state + id_key, "").ok());
    ASSERT_TRUE(wb.Put(raw.cf[3], keyed('q', r->spec->queue) + id_key, state).ok());
    ASSERT_TRUE(wb.Put(raw.cf[3], keyed('n', r->spec->name) + id_key, state).ok());
  }
  ASSERT_TRUE(wb.Put(raw.cf[0], "format", "bmos-task-store 1").ok());
  it.reset();
  ASSERT_TRUE(raw.db->Write(rocksdb::WriteOptions(), &wb).ok());
}

// A store written by format 1 (three index keys per terminal record) is read as it is by a
// read-only open and rewritten to one key per record by the first read-write open; listing
// answers the same throughout.
TEST(RocksDbTaskStore, RewritesTheIndexOfAFormat1Store) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path(), Durability::kAsync);
    for (uint64_t i = 0; i < 30; ++i) {
      TaskRecord r = MakeRecord(i, i % 2 ? "ml" : "default", i % 3 ? "a" : "b");
      ASSERT_TRUE(WriteOne(*store, r).ok());
      if (i < 24) {
        ASSERT_TRUE(WriteOne(*store, With(r, i % 3 == 1 ? S::kFailed : S::kCompleted)).ok());
      }
    }
  }
  ASSERT_NO_FATAL_FAILURE(DowngradeToFormat1(dir.path()));
  {
    RawStore raw(dir.path());
    ASSERT_TRUE(raw.status.ok());
    EXPECT_EQ(raw.IndexKinds(), (std::map<char, size_t>{{'n', 24}, {'q', 24}, {'s', 24}}));
  }
  auto failed_ml = [&](TaskStore& store) {
    ListQuery q;
    q.state = S::kFailed;
    q.queue = "ml";
    auto page = store.List(q);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    return page.ok() ? Indexes(*page) : std::vector<uint64_t>{};
  };
  auto by_name = [&](TaskStore& store) {
    ListQuery q;
    q.name = "b";
    q.terminal_only = true;
    auto page = store.List(q);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    return page.ok() ? Indexes(*page) : std::vector<uint64_t>{};
  };
  const std::vector<uint64_t> want_failed_ml = {19, 13, 7, 1};
  const std::vector<uint64_t> want_b = {21, 18, 15, 12, 9, 6, 3, 0};
  {
    RocksDbStoreOptions o;
    o.path = dir.path();
    o.read_only = true;
    auto reader = RocksDbTaskStore::Open(o);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    EXPECT_EQ(failed_ml(**reader), want_failed_ml);
    EXPECT_EQ(by_name(**reader), want_b);
  }
  {
    RawStore raw(dir.path());
    ASSERT_TRUE(raw.status.ok());
    EXPECT_EQ(raw.Format(), "bmos-task-store 1") << "a read-only open changes nothing";
  }
  {
    auto store = OpenOrDie(dir.path(), Durability::kAsync);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(failed_ml(*store), want_failed_ml);
    EXPECT_EQ(by_name(*store), want_b);
    ListQuery failed;
    failed.state = S::kFailed;
    auto page = store->List(failed);
    ASSERT_TRUE(page.ok());
    EXPECT_EQ(Indexes(*page), (std::vector<uint64_t>{22, 19, 16, 13, 10, 7, 4, 1}));
    // New terminal records join the rewritten index.
    ASSERT_TRUE(WriteOne(*store, With(MakeRecord(25, "ml", "a"), S::kFailed)).ok());
    EXPECT_EQ(failed_ml(*store), (std::vector<uint64_t>{25, 19, 13, 7, 1}));
  }
  RawStore raw(dir.path());
  ASSERT_TRUE(raw.status.ok());
  EXPECT_EQ(raw.Format(), "bmos-task-store 2");
  EXPECT_EQ(raw.IndexKinds(), (std::map<char, size_t>{{'t', 25}}));
}

TEST(RocksDbTaskStore, PurgesByAgeAndByCountInBatches) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), Durability::kAsync);
  // 0..19 completed at kBaseMs + i; 20 is live.
  for (uint64_t i = 0; i < 21; ++i) {
    TaskRecord r = MakeRecord(i);
    ASSERT_TRUE(WriteOne(*store, r).ok());
    if (i < 20) {
      ASSERT_TRUE(WriteOne(*store, With(r, S::kCompleted, test_util::kBaseMs + i)).ok());
    }
  }
  PurgeOptions by_age;
  by_age.completed_before_ms = test_util::kBaseMs + 5;  // 0..4
  by_age.max_batch = 3;
  auto n = store->PurgeTerminal(by_age);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 3u);
  n = store->PurgeTerminal(by_age);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);
  n = store->PurgeTerminal(by_age);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(store->Get(IdFor(4)).status().code(), Status::Code::kNotFound);
  EXPECT_TRUE(store->Get(IdFor(5)).ok());

  PurgeOptions by_count;
  by_count.keep_at_most = 10;  // 15 left: drop the 5 oldest (5..9)
  n = store->PurgeTerminal(by_count);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 5u);
  auto counts = store->TerminalCounts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->total(S::kCompleted), 10u);
  EXPECT_EQ(store->Get(IdFor(9)).status().code(), Status::Code::kNotFound);
  EXPECT_TRUE(store->Get(IdFor(10)).ok());
  EXPECT_TRUE(store->Get(IdFor(20)).ok()) << "live records are never purged";

  // The indexes lose the purged records too.
  ListQuery completed;
  completed.state = S::kCompleted;
  completed.limit = 1000;
  auto page = store->List(completed);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->records.size(), 10u);
  ListQuery by_queue;
  by_queue.queue = "default";
  by_queue.limit = 1000;
  page = store->List(by_queue);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->records.size(), 11u);

  // The counts on disk lost them too (a commit writes the counts that changed in it).
  ASSERT_TRUE(WriteOne(*store, With(MakeRecord(20), S::kFailed)).ok());
  store.reset();
  store = OpenOrDie(dir.path(), Durability::kAsync);
  ASSERT_NE(store, nullptr);
  counts = store->TerminalCounts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->total(S::kCompleted), 10u);
  EXPECT_EQ(counts->total(S::kFailed), 1u);
}

TEST(RocksDbTaskStore, ConcurrentWritersShareCommits) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), Durability::kSync);
  constexpr int kThreads = 16, kPerThread = 100;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!WriteOne(*store, MakeRecord(static_cast<uint64_t>(t * kPerThread + i))).ok()) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  CommitStats stats = store->commit_stats();
  EXPECT_EQ(stats.writes, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(stats.records, static_cast<uint64_t>(kThreads * kPerThread));
  // Group commit: many writers shared each WAL write and fsync.
  EXPECT_LT(stats.commits, stats.writes);
  auto counts = store->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(Count(*counts, "default", S::kPending), static_cast<uint64_t>(kThreads * kPerThread));
}

TEST(RocksDbTaskStore, AsyncWritesApplyInOrderAndFlushWaitsForThem) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), Durability::kSync);
  RecordingCallback cb;
  TaskRecord r = MakeRecord(1);
  for (S s : {S::kPending, S::kRunning, S::kRetrying, S::kPending, S::kRunning, S::kCompleted}) {
    TaskRecord next = With(r, s);
    store->WriteAsync({&next, 1}, &cb);
  }
  ASSERT_TRUE(store->Flush().ok());
  {
    const std::vector<Status> told = cb.statuses();
    ASSERT_EQ(told.size(), 6u);
    for (const Status& s : told) EXPECT_TRUE(s.ok()) << s.ToString();
  }
  EXPECT_EQ(store->Get(IdFor(1))->state, S::kCompleted);
  std::vector<TaskRecord> live;
  ASSERT_TRUE(store->ForEachLive([&](const TaskRecord& x) { live.push_back(x); }).ok());
  EXPECT_TRUE(live.empty());
}

// A store answers the writes of a commit inside one CallbackBatch, and answers a writer that
// waits (Flush, WriteAndThen) only after the batch's deferred actions ran: once Flush returns, so
// has everything the callbacks started (the engine relies on it when it stops).
TEST(RocksDbTaskStore, CallbacksRunInABatchWhoseActionsEndBeforeWaitingWritersGoOn) {
  class Deferring final : public WriteCallback {
   public:
    void OnWritten(const Status&) override {
      in_batch.store(CallbackBatch::Active());
      CallbackBatch::Defer(&Deferring::Slow, this);
    }
    static void Slow(void* self, int) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      static_cast<Deferring*>(self)->finished.store(true);
    }
    std::atomic<bool> in_batch{false}, finished{false};
  };
  for (Durability d : {Durability::kSync, Durability::kAsync}) {
    SCOPED_TRACE(d == Durability::kSync ? "sync" : "async");
    TempDir dir;
    auto store = OpenOrDie(dir.path(), d);
    Deferring by_flush, by_write;
    const TaskRecord one = MakeRecord(1), two = MakeRecord(2);
    store->WriteAsync({&one, 1}, &by_flush);
    ASSERT_TRUE(store->Flush().ok());
    EXPECT_TRUE(by_flush.in_batch.load());
    EXPECT_TRUE(by_flush.finished.load()) << "Flush returned before a callback's deferred action";
    ASSERT_TRUE(store->WriteAndThen({&two, 1}, &by_write).ok());
    EXPECT_TRUE(by_write.in_batch.load());
    EXPECT_TRUE(by_write.finished.load()) << "a write returned before its deferred action";
  }
}

// `async`: a write that finds the store idle is committed on the writer's thread; writes that
// come meanwhile queue for the commit thread. Per-writer order and every record must survive the
// mix, and a lone sequential writer commits inline every time.
TEST(RocksDbTaskStore, AsyncIdleWritesCommitInlineAndConcurrentOnesKeepTheirOrder) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), Durability::kAsync);
  for (uint64_t i = 0; i < 50; ++i) ASSERT_TRUE(WriteOne(*store, MakeRecord(i)).ok());
  EXPECT_EQ(store->commit_stats().inline_commits, 50u);

  constexpr int kThreads = 8, kPerThread = 60;
  std::vector<std::thread> threads;
  RecordingCallback cb;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread walks its own tasks through a state sequence, alternating waited and
      // callback writes; the last write of each task must win.
      for (int i = 0; i < kPerThread; ++i) {
        const TaskRecord r = MakeRecord(1000 + static_cast<uint64_t>(t * kPerThread + i));
        for (S state : {S::kPending, S::kRunning, S::kRetrying, S::kPending, S::kRunning}) {
          TaskRecord next = With(r, state);
          if (i % 2 == 0) {
            store->WriteAsync({&next, 1}, &cb);
          } else {
            EXPECT_TRUE(WriteOne(*store, next).ok());
          }
        }
        TaskRecord done = With(r, i % 3 == 0 ? S::kFailed : S::kCompleted);
        store->WriteAsync({&done, 1}, &cb);
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(store->Flush().ok());
  {
    const std::vector<Status> told = cb.statuses();
    // Even tasks: 5 callback writes and the final one; odd tasks: the final one.
    EXPECT_EQ(told.size(), static_cast<size_t>(kThreads * (kPerThread / 2 * 6 + kPerThread / 2)));
    for (const Status& s : told) EXPECT_TRUE(s.ok()) << s.ToString();
  }
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      auto r = store->Get(IdFor(1000 + static_cast<uint64_t>(t * kPerThread + i)));
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->state, i % 3 == 0 ? S::kFailed : S::kCompleted);
    }
  }
  auto counts = store->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(Count(*counts, "default", S::kPending), 50u);
  EXPECT_EQ(Count(*counts, "default", S::kFailed) + Count(*counts, "default", S::kCompleted),
            static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(Count(*counts, "default", S::kRunning), 0u);
}

// Answers come in the order of the writes, whichever thread gives them: the answer thread for
// large commits of the commit thread, the commit thread itself for small ones, the writer for a
// write it committed inline (`async`, idle store). One writer sends bursts of writes that never
// go inline and whose callbacks are slow (so that the answers of a burst are still being given
// for a while), then one that may go inline and that it waits for (as an enqueue does).
TEST(RocksDbTaskStore, WritesAreAnsweredInTheirOrder) {
  class Numbered final : public WriteCallback {
   public:
    Numbered(std::vector<int>* order, std::mutex* mu, int n, bool waits)
        : order_(order), mu_(mu), n_(n), waits_(waits) {}
    void OnWritten(const Status& status) override {
      EXPECT_TRUE(status.ok()) << status.ToString();
      if (!waits_) std::this_thread::sleep_for(std::chrono::microseconds(100));
      {
        std::lock_guard<std::mutex> lock(*mu_);
        order_->push_back(n_);
      }
      answered.store(true, std::memory_order_release);
    }
    bool caller_waits() const override { return waits_; }
    std::atomic<bool> answered{false};

   private:
    std::vector<int>* order_;
    std::mutex* mu_;
    int n_;
    bool waits_;
  };
  for (Durability mode : {Durability::kAsync, Durability::kSync}) {
    TempDir dir;
    auto store = OpenOrDie(dir.path(), mode);
    constexpr int kBurst = 20, kRounds = 30, kWrites = kRounds * (kBurst + 1);
    std::vector<int> order;
    std::mutex mu;
    std::vector<std::unique_ptr<Numbered>> callbacks;
    for (int i = 0; i < kWrites; ++i) {
      const bool waits = i % (kBurst + 1) == kBurst;
      callbacks.push_back(std::make_unique<Numbered>(&order, &mu, i, waits));
      Numbered* cb = callbacks.back().get();
      const TaskRecord r = MakeRecord(static_cast<uint64_t>(i));
      if (waits) std::this_thread::sleep_for(std::chrono::microseconds(300));
      store->WriteAsync({&r, 1}, cb);
      if (!waits) continue;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!cb->answered.load(std::memory_order_acquire) &&
             std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
      ASSERT_TRUE(cb->answered.load()) << "write " << i << " not answered in 10 s";
    }
    ASSERT_TRUE(store->Flush().ok());
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(order.size(), static_cast<size_t>(kWrites));
    for (int i = 0; i < kWrites; ++i) ASSERT_EQ(order[i], i) << "durability " << ToString(mode);
  }
}

// A callback that writes again when told of its write (as the engine does) keeps the store busy
// while it closes: every such write is committed before the store is gone.
TEST(RocksDbTaskStore, WritesSubmittedByAnswersWhileClosingAreCommitted) {
  class Chain final : public WriteCallback {
   public:
    explicit Chain(uint64_t last) : last_(last) {}
    void OnWritten(const Status& status) override {
      EXPECT_TRUE(status.ok()) << status.ToString();
      const uint64_t i = next_.fetch_add(1, std::memory_order_relaxed);
      if (i > last_) return;
      const TaskRecord r = MakeRecord(i);
      store_->WriteAsync({&r, 1}, this);
    }
    TaskStore* store_ = nullptr;

   private:
    const uint64_t last_;
    std::atomic<uint64_t> next_{1};
  };
  TempDir dir;
  constexpr uint64_t kLast = 300;
  Chain chain(kLast);
  {
    auto store = OpenOrDie(dir.path(), Durability::kAsync);
    ASSERT_NE(store, nullptr);
    chain.store_ = store.get();
    const TaskRecord first = MakeRecord(0);
    store->WriteAsync({&first, 1}, &chain);
  }  // closes the store while the chain goes on
  auto store = OpenOrDie(dir.path(), Durability::kAsync);
  ASSERT_NE(store, nullptr);
  for (uint64_t i = 0; i <= kLast; ++i) EXPECT_TRUE(store->Get(IdFor(i)).ok()) << i;
}

TEST(RocksDbTaskStore, SecondOpenOfTheSameDirectoryIsRefused) {
  TempDir dir;
  auto first = OpenOrDie(dir.path());
  ASSERT_NE(first, nullptr);
  RocksDbStoreOptions o;
  o.path = dir.path();
  auto second = RocksDbTaskStore::Open(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("already open"), std::string::npos)
      << second.status().ToString();
  // Read-only openers may look while the writer runs.
  o.read_only = true;
  ASSERT_TRUE(WriteOne(*first, MakeRecord(1)).ok());
  auto reader = RocksDbTaskStore::Open(o);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_TRUE((*reader)->Get(IdFor(1)).ok());
  EXPECT_EQ(WriteOne(**reader, MakeRecord(2)).code(), Status::Code::kFailedPrecondition);
}

// A file system that runs `hook` when an opener lists a directory after it has read a MANIFEST
// for the second time (the store reads it first to list the column families, then to open): the
// moment a reader's open has read the version it will use and looks for the logs to replay. It
// runs once, or (`every_open`) after each later MANIFEST read too: on every retry of the open.
class BetweenManifestAndLogsFs final : public rocksdb::FileSystemWrapper {
 public:
  BetweenManifestAndLogsFs(std::function<void()> hook, bool every_open)
      : rocksdb::FileSystemWrapper(rocksdb::FileSystem::Default()),
        hook_(std::move(hook)),
        every_open_(every_open) {}
  const char* Name() const override { return "BetweenManifestAndLogsFs"; }

  rocksdb::IOStatus NewSequentialFile(const std::string& fname, const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSSequentialFile>* result,
                                      rocksdb::IODebugContext* dbg) override {
    if (fname.find("MANIFEST-") != std::string::npos) ++manifest_reads_;
    return target()->NewSequentialFile(fname, options, result, dbg);
  }
  rocksdb::IOStatus GetChildren(const std::string& dir, const rocksdb::IOOptions& options,
                                std::vector<std::string>* result,
                                rocksdb::IODebugContext* dbg) override {
    if (manifest_reads_ >= 2 && manifest_reads_ > fired_after_ && (every_open_ || fires_ == 0)) {
      fired_after_ = manifest_reads_;
      ++fires_;
      hook_();
    }
    return target()->GetChildren(dir, options, result, dbg);
  }
  int fires() const { return fires_; }

 private:
  std::function<void()> hook_;
  const bool every_open_;
  // The opening thread's only.
  int manifest_reads_ = 0;
  int fired_after_ = 0;
  int fires_ = 0;
};

std::set<std::string> WalFiles(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".log") out.insert(entry.path().filename().string());
  }
  return out;
}

// A reader's options (read_only) for the store in `dir`, over `env`.
RocksDbStoreOptions ReaderOptions(const std::string& dir, rocksdb::Env* env) {
  RocksDbStoreOptions o;
  o.path = dir;
  o.read_only = true;
  o.env = env;
  return o;
}

// Flushes every family of `writer`, which makes its logs obsolete, and waits (bounded) until it
// has deleted them. False if that did not happen in time.
bool FlushAndWaitForLogsGone(RocksDbTaskStore& writer, const std::string& dir) {
  const std::set<std::string> logs = WalFiles(dir);
  if (!writer.CompactAll().ok()) return false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::set<std::string> now = WalFiles(dir);
    if (std::none_of(logs.begin(), logs.end(),
                     [&](const std::string& f) { return now.count(f) > 0; })) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// A reader opens while the writer flushes: the writer's flush lands after the reader has read
// the MANIFEST and deletes the logs that held the records before the reader lists them. The
// reader must not settle for the older version without those logs (it would see none of the
// records and counts of zero); it sees every record.
TEST(RocksDbTaskStore, AReaderOpenedAcrossAFlushSeesEveryRecord) {
  for (const Durability durability : {Durability::kSync, Durability::kAsync}) {
    SCOPED_TRACE(std::string(ToString(durability)));
    TempDir dir;
    auto writer = OpenOrDie(dir.path(), durability);
    ASSERT_NE(writer, nullptr);
    constexpr uint64_t kRecords = 500;
    std::vector<TaskRecord> batch;
    for (uint64_t i = 0; i < kRecords; ++i) batch.push_back(With(MakeRecord(i), S::kCompleted));
    ASSERT_TRUE(writer->Write(batch).ok());
    ASSERT_FALSE(WalFiles(dir.path()).empty());

    bool logs_deleted = false;
    auto fs = std::make_shared<BetweenManifestAndLogsFs>(
        [&] { logs_deleted = FlushAndWaitForLogsGone(*writer, dir.path()); },
        /*every_open=*/false);
    std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
    auto reader = RocksDbTaskStore::Open(ReaderOptions(dir.path(), env.get()));
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    ASSERT_EQ(fs->fires(), 1);
    ASSERT_TRUE(logs_deleted) << "the writer did not delete its old logs in time";

    Result<StoreCounts> counts = (*reader)->Counts();
    ASSERT_TRUE(counts.ok()) << counts.status().ToString();
    EXPECT_EQ(Count(*counts, "default", S::kCompleted), kRecords);
    for (uint64_t i = 0; i < kRecords; i += 50) EXPECT_TRUE((*reader)->Get(IdFor(i)).ok()) << i;
  }
}

// A writer that flushes and deletes its logs during every attempt of a reader's open: the reader
// gives up with a clear, retryable error instead of showing an inconsistent store, and opens once
// it is quiet.
TEST(RocksDbTaskStore, AReaderGivesUpClearlyOnAStoreThatChangesDuringEveryOpen) {
  TempDir dir;
  auto writer = OpenOrDie(dir.path(), Durability::kAsync);
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(WriteOne(*writer, With(MakeRecord(0), S::kCompleted)).ok());
  uint64_t next = 1;
  auto fs = std::make_shared<BetweenManifestAndLogsFs>(
      [&] {
        // One more record, flushed: its log is deleted under the open.
        ASSERT_TRUE(WriteOne(*writer, With(MakeRecord(next++), S::kCompleted)).ok());
        ASSERT_TRUE(FlushAndWaitForLogsGone(*writer, dir.path()));
      },
      /*every_open=*/true);
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  RocksDbStoreOptions o = ReaderOptions(dir.path(), env.get());
  auto reader = RocksDbTaskStore::Open(o);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), Status::Code::kUnavailable) << reader.status().ToString();
  EXPECT_NE(reader.status().message().find("try again"), std::string::npos)
      << reader.status().ToString();
  EXPECT_GE(fs->fires(), 2);  // it did try again

  // Quiet now: the default file system, every record there.
  o.env = nullptr;
  reader = RocksDbTaskStore::Open(o);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  Result<StoreCounts> counts = (*reader)->Counts();
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  EXPECT_EQ(Count(*counts, "default", S::kCompleted), next);
}

// Run by SecondProcessIsRefused in a child process (skipped otherwise): opens the store named by
// BMOS_OPEN_PROBE and exits 3 if the open was refused as "already open", 4 on any other outcome.
TEST(RocksDbTaskStore, OpenProbe) {
  const char* path = std::getenv("BMOS_OPEN_PROBE");
  if (path == nullptr) GTEST_SKIP() << "only run as the child of SecondProcessIsRefused";
  RocksDbStoreOptions o;
  o.path = path;
  auto store = RocksDbTaskStore::Open(o);
  const bool refused = !store.ok() && store.status().code() == Status::Code::kFailedPrecondition &&
                       store.status().message().find("already open") != std::string::npos;
  std::fprintf(stderr, "probe: %s\n", store.ok() ? "opened" : store.status().ToString().c_str());
  std::_Exit(refused ? 3 : 4);
}

TEST(RocksDbTaskStore, SecondProcessIsRefused) {
  TempDir dir;
  auto first = OpenOrDie(dir.path());
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(WriteOne(*first, MakeRecord(1)).ok());
  // A fresh process (this test binary, running only OpenProbe) tries the same directory.
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("BMOS_OPEN_PROBE", dir.path().c_str(), 1);
    execl("/proc/self/exe", "rocksdb_task_store_test", "--gtest_filter=RocksDbTaskStore.OpenProbe",
          static_cast<char*>(nullptr));
    std::_Exit(5);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3) << "the second process was not refused cleanly";
  // The first still works.
  EXPECT_TRUE(WriteOne(*first, MakeRecord(2)).ok());
}

TEST(RocksDbTaskStore, RefusesADirectoryThatHoldsSomethingElse) {
  TempDir dir;
  { std::ofstream(dir.Sub("notes.txt")) << "not a store\n"; }
  RocksDbStoreOptions o;
  o.path = dir.path();
  auto store = RocksDbTaskStore::Open(o);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_TRUE(std::filesystem::exists(dir.Sub("notes.txt")));
}

TEST(RocksDbTaskStore, DamagedDirectoryGivesAClearErrorNotAnEmptyStore) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path());
    ASSERT_TRUE(WriteOne(*store, MakeRecord(1)).ok());
  }
  // CURRENT names a manifest that is not there.
  { std::ofstream(dir.Sub("CURRENT"), std::ios::trunc) << "MANIFEST-999999\n"; }
  RocksDbStoreOptions o;
  o.path = dir.path();
  auto store = RocksDbTaskStore::Open(o);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find(dir.path()), std::string::npos)
      << store.status().ToString();
}

TEST(RocksDbTaskStore, DamagedManifestIsCorruption) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path());
    ASSERT_TRUE(WriteOne(*store, MakeRecord(1)).ok());
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    if (entry.path().filename().string().rfind("MANIFEST-", 0) == 0) {
      std::fstream f(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
      std::string junk(64, '\x5a');
      f.seekp(10);
      f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
  }
  RocksDbStoreOptions o;
  o.path = dir.path();
  auto store = RocksDbTaskStore::Open(o);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Status::Code::kCorruption) << store.status().ToString();
}

TEST(RocksDbTaskStore, ValidatesOptions) {
  RocksDbStoreOptions o;
  EXPECT_EQ(RocksDbTaskStore::Open(o).status().code(), Status::Code::kInvalidArgument);
  TempDir dir;
  o.path = dir.path();
  o.durability = Durability::kMemory;
  EXPECT_EQ(RocksDbTaskStore::Open(o).status().code(), Status::Code::kInvalidArgument);
  o.durability = Durability::kSync;
  o.read_only = true;
  EXPECT_EQ(RocksDbTaskStore::Open(o).status().code(), Status::Code::kNotFound);
}

}  // namespace
}  // namespace bmos::storage
