#include "storage/memory_task_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/storage/store_test_util.h"

namespace bmos::storage {
namespace {

using S = TaskState;

using test_util::IdFor;
using test_util::kAllStates;
using test_util::kBaseMs;
using test_util::MakeRecord;
using test_util::With;
using test_util::WriteOne;

uint64_t Count(const TaskStore& store, const std::string& queue, S state) {
  auto counts = store.Counts();
  EXPECT_TRUE(counts.ok());
  auto it = counts->by_queue.find(queue);
  return it == counts->by_queue.end() ? 0 : it->second[static_cast<size_t>(state)];
}

TEST(MemoryTaskStore, DurabilityIsMemory) {
  EXPECT_EQ(NewMemoryTaskStore()->durability(), Durability::kMemory);
}

TEST(MemoryTaskStore, WriteThenGet) {
  auto store = NewMemoryTaskStore();
  TaskRecord r = MakeRecord(1);
  r.progress_message = "queued";
  ASSERT_TRUE(WriteOne(*store, r).ok());
  auto got = store->Get(IdFor(1));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->id(), IdFor(1));
  EXPECT_EQ(got->state, S::kPending);
  EXPECT_EQ(got->progress_message, "queued");
  EXPECT_EQ(got->spec->queue, "default");
}

TEST(MemoryTaskStore, GetMissingIsNotFound) {
  auto store = NewMemoryTaskStore();
  auto got = store->Get(IdFor(9));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(got.status().message(), "task " + IdFor(9).ToString() + " not found");
}

TEST(MemoryTaskStore, ReplaceUpdatesFieldsAndKeepsSpec) {
  auto store = NewMemoryTaskStore();
  const TaskRecord first = MakeRecord(1);
  ASSERT_TRUE(WriteOne(*store, first).ok());

  // A replacement carrying an equal but distinct spec object: the stored spec is kept.
  TaskRecord second = With(first, S::kRunning, kBaseMs + 5);
  second.spec = std::make_shared<TaskSpec>(*first.spec);
  second.progress = 0.5;
  second.progress_message = "half";
  ASSERT_TRUE(WriteOne(*store, second).ok());

  auto got = store->Get(IdFor(1));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state, S::kRunning);
  EXPECT_EQ(got->started_ms, kBaseMs + 5);
  EXPECT_EQ(got->progress, 0.5);
  EXPECT_EQ(got->progress_message, "half");
  EXPECT_EQ(got->spec.get(), first.spec.get());
}

TEST(MemoryTaskStore, WriteWithoutSpecAppliesNothing) {
  auto store = NewMemoryTaskStore();
  std::vector<TaskRecord> batch = {MakeRecord(1), TaskRecord{}, MakeRecord(2)};
  Status s = store->Write(batch);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(store->Get(IdFor(1)).ok());
  EXPECT_FALSE(store->Get(IdFor(2)).ok());
  EXPECT_EQ(Count(*store, "default", S::kPending), 0u);
}

TEST(MemoryTaskStore, BatchWriteAppliesAllInOrder) {
  auto store = NewMemoryTaskStore();
  const TaskRecord r = MakeRecord(1);
  std::vector<TaskRecord> batch = {r, With(r, S::kRunning), MakeRecord(2)};
  ASSERT_TRUE(store->Write(batch).ok());
  EXPECT_EQ(store->Get(IdFor(1))->state, S::kRunning);
  EXPECT_TRUE(store->Get(IdFor(2)).ok());
  EXPECT_EQ(Count(*store, "default", S::kPending), 1u);
  EXPECT_EQ(Count(*store, "default", S::kRunning), 1u);
  EXPECT_TRUE(store->Write({}).ok());
}

TEST(MemoryTaskStore, CountsFollowTransitions) {
  auto store = NewMemoryTaskStore();
  TaskRecord a = MakeRecord(1, "default");
  TaskRecord b = MakeRecord(2, "training");
  ASSERT_TRUE(WriteOne(*store, a).ok());
  ASSERT_TRUE(WriteOne(*store, b).ok());
  EXPECT_EQ(Count(*store, "default", S::kPending), 1u);
  EXPECT_EQ(Count(*store, "training", S::kPending), 1u);

  a = With(a, S::kRunning);
  ASSERT_TRUE(WriteOne(*store, a).ok());
  EXPECT_EQ(Count(*store, "default", S::kPending), 0u);
  EXPECT_EQ(Count(*store, "default", S::kRunning), 1u);

  a = With(a, S::kRetrying);
  ASSERT_TRUE(WriteOne(*store, a).ok());
  a = With(a, S::kPending);
  ASSERT_TRUE(WriteOne(*store, a).ok());
  a = With(a, S::kRunning);
  ASSERT_TRUE(WriteOne(*store, a).ok());
  a = With(a, S::kFailed);
  ASSERT_TRUE(WriteOne(*store, a).ok());
  // Rewriting a record in the same state must not double count it.
  ASSERT_TRUE(WriteOne(*store, a).ok());

  auto counts = store->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->by_queue.size(), 2u);
  const auto& d = counts->by_queue.at("default");
  EXPECT_EQ(d[static_cast<size_t>(S::kFailed)], 1u);
  for (S s : {S::kPending, S::kRunning, S::kRetrying, S::kCompleted, S::kCancelled}) {
    EXPECT_EQ(d[static_cast<size_t>(s)], 0u) << ToString(s);
  }
  EXPECT_EQ(counts->total(S::kPending), 1u);
  EXPECT_EQ(counts->total(S::kFailed), 1u);
}

TEST(MemoryTaskStore, ListValidatesLimit) {
  auto store = NewMemoryTaskStore();
  for (size_t limit : {size_t{0}, size_t{1001}, size_t{1'000'000}}) {
    ListQuery q;
    q.limit = limit;
    auto page = store->List(q);
    ASSERT_FALSE(page.ok()) << limit;
    EXPECT_EQ(page.status().code(), Status::Code::kInvalidArgument);
  }
  for (size_t limit : {size_t{1}, size_t{1000}}) {
    ListQuery q;
    q.limit = limit;
    EXPECT_TRUE(store->List(q).ok()) << limit;
  }
}

TEST(MemoryTaskStore, ListEmpty) {
  auto store = NewMemoryTaskStore();
  auto page = store->List(ListQuery{});
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->records.empty());
  EXPECT_FALSE(page->next_cursor.has_value());
}

TEST(MemoryTaskStore, ListIsNewestFirstAndFilters) {
  auto store = NewMemoryTaskStore();
  // 30 records: queue alternates a/b, name cycles x/y/z, every 5th one RUNNING.
  for (uint64_t i = 0; i < 30; ++i) {
    TaskRecord r = MakeRecord(i, i % 2 ? "b" : "a", std::string(1, static_cast<char>('x' + i % 3)),
                              i % 5 == 0 ? S::kRunning : S::kPending);
    ASSERT_TRUE(WriteOne(*store, r).ok());
  }
  auto all = store->List(ListQuery{});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->records.size(), 30u);
  EXPECT_FALSE(all->next_cursor.has_value());
  for (size_t k = 0; k < 30; ++k) EXPECT_EQ(all->records[k].id(), IdFor(29 - k));

  ListQuery q;
  q.queue = "b";
  auto b = store->List(q);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->records.size(), 15u);
  for (const auto& r : b->records) EXPECT_EQ(r.spec->queue, "b");

  q = ListQuery{};
  q.name = "y";
  auto y = store->List(q);
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(y->records.size(), 10u);
  for (const auto& r : y->records) EXPECT_EQ(r.spec->name, "y");

  q = ListQuery{};
  q.state = S::kRunning;
  q.queue = "a";
  auto running_a = store->List(q);
  ASSERT_TRUE(running_a.ok());
  // i in {0, 10, 20}: even (queue a) and multiples of 5.
  ASSERT_EQ(running_a->records.size(), 3u);
  EXPECT_EQ(running_a->records[0].id(), IdFor(20));
  EXPECT_EQ(running_a->records[2].id(), IdFor(0));

  q = ListQuery{};
  q.before = IdFor(10);
  auto older = store->List(q);
  ASSERT_TRUE(older.ok());
  ASSERT_EQ(older->records.size(), 10u);
  EXPECT_EQ(older->records.front().id(), IdFor(9));

  q = ListQuery{};
  q.queue = "nope";
  EXPECT_TRUE(store->List(q)->records.empty());
}

TEST(MemoryTaskStore, CursorPagingHasNoDuplicatesOrGaps) {
  auto store = NewMemoryTaskStore();
  constexpr uint64_t kRecords = 1234;
  std::vector<TaskRecord> batch;
  for (uint64_t i = 0; i < kRecords; ++i) batch.push_back(MakeRecord(i));
  ASSERT_TRUE(store->Write(batch).ok());

  for (size_t limit : {size_t{1}, size_t{7}, size_t{100}, size_t{617}, size_t{1000}}) {
    ListQuery q;
    q.limit = limit;
    std::vector<TaskId> seen;
    int pages = 0;
    while (true) {
      auto page = store->List(q);
      ASSERT_TRUE(page.ok());
      ++pages;
      ASSERT_LE(page->records.size(), limit);
      for (const auto& r : page->records) seen.push_back(r.id());
      if (!page->next_cursor) break;
      ASSERT_EQ(page->records.size(), limit);
      EXPECT_EQ(*page->next_cursor, page->records.back().id());
      q.before = page->next_cursor;
    }
    EXPECT_EQ(pages, static_cast<int>((kRecords + limit - 1) / limit)) << limit;
    ASSERT_EQ(seen.size(), kRecords) << limit;
    for (uint64_t k = 0; k < kRecords; ++k) ASSERT_EQ(seen[k], IdFor(kRecords - 1 - k)) << limit;
  }
}

TEST(MemoryTaskStore, ExactlyFullPageHasNoCursor) {
  auto store = NewMemoryTaskStore();
  for (uint64_t i = 0; i < 10; ++i) ASSERT_TRUE(WriteOne(*store, MakeRecord(i)).ok());
  ListQuery q;
  q.limit = 10;
  auto page = store->List(q);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->records.size(), 10u);
  EXPECT_FALSE(page->next_cursor.has_value());
  q.limit = 9;
  page = store->List(q);
  ASSERT_TRUE(page.ok());
  ASSERT_TRUE(page->next_cursor.has_value());
  EXPECT_EQ(*page->next_cursor, IdFor(1));
}

// Writes `n` records with ids from `first`, completing every one at kBaseMs + its index.
void WriteCompleted(TaskStore& store, uint64_t first, uint64_t n, S state = S::kCompleted) {
  for (uint64_t i = first; i < first + n; ++i) {
    ASSERT_TRUE(
        WriteOne(store, With(MakeRecord(i), state, kBaseMs + static_cast<int64_t>(i))).ok());
  }
}

TEST(MemoryTaskStore, PurgeByAge) {
  auto store = NewMemoryTaskStore();
  WriteCompleted(*store, 0, 10);
  PurgeOptions opts;
  opts.completed_before_ms = kBaseMs + 4;  // completed at +0..+3
  auto removed = store->PurgeTerminal(opts);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 4u);
  for (uint64_t i = 0; i < 4; ++i) EXPECT_FALSE(store->Get(IdFor(i)).ok()) << i;
  for (uint64_t i = 4; i < 10; ++i) EXPECT_TRUE(store->Get(IdFor(i)).ok()) << i;
  EXPECT_EQ(Count(*store, "default", S::kCompleted), 6u);
  // A second call finds nothing more to do.
  EXPECT_EQ(*store->PurgeTerminal(opts), 0u);
}

TEST(MemoryTaskStore, PurgeByCountKeepsNewest) {
  auto store = NewMemoryTaskStore();
  WriteCompleted(*store, 0, 10, S::kCompleted);
  WriteCompleted(*store, 10, 5, S::kFailed);
  PurgeOptions opts;
  opts.keep_at_most = 6;
  auto removed = store->PurgeTerminal(opts);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 9u);
  for (uint64_t i = 0; i < 9; ++i) EXPECT_FALSE(store->Get(IdFor(i)).ok()) << i;
  for (uint64_t i = 9; i < 15; ++i) EXPECT_TRUE(store->Get(IdFor(i)).ok()) << i;
  EXPECT_EQ(Count(*store, "default", S::kCompleted), 1u);
  EXPECT_EQ(Count(*store, "default", S::kFailed), 5u);
}

TEST(MemoryTaskStore, PurgeRespectsMaxBatch) {
  auto store = NewMemoryTaskStore();
  WriteCompleted(*store, 0, 25);
  PurgeOptions opts;
  opts.completed_before_ms = kBaseMs + 1000;
  opts.max_batch = 10;
  EXPECT_EQ(*store->PurgeTerminal(opts), 10u);
  EXPECT_EQ(*store->PurgeTerminal(opts), 10u);
  EXPECT_EQ(*store->PurgeTerminal(opts), 5u);
  EXPECT_EQ(*store->PurgeTerminal(opts), 0u);
  EXPECT_TRUE(store->List(ListQuery{})->records.empty());
  opts.max_batch = 0;
  WriteCompleted(*store, 100, 3);
  EXPECT_EQ(*store->PurgeTerminal(opts), 0u);
}

TEST(MemoryTaskStore, PurgeWithDefaultsRemovesNothing) {
  auto store = NewMemoryTaskStore();
  WriteCompleted(*store, 0, 5);
  EXPECT_EQ(*store->PurgeTerminal(PurgeOptions{}), 0u);
  EXPECT_EQ(Count(*store, "default", S::kCompleted), 5u);
}

TEST(MemoryTaskStore, PurgeNeverRemovesLiveRecords) {
  auto store = NewMemoryTaskStore();
  for (uint64_t i = 0; i < 30; ++i) {
    const S state = i % 3 == 0 ? S::kPending : i % 3 == 1 ? S::kRunning : S::kRetrying;
    ASSERT_TRUE(WriteOne(*store, With(MakeRecord(i), state)).ok());
  }
  WriteCompleted(*store, 100, 10, S::kCancelled);
  PurgeOptions opts;
  opts.completed_before_ms = INT64_MAX;
  opts.keep_at_most = 1;
  opts.max_batch = 1'000'000;
  EXPECT_EQ(*store->PurgeTerminal(opts), 10u);
  for (uint64_t i = 0; i < 30; ++i) EXPECT_TRUE(store->Get(IdFor(i)).ok()) << i;
  EXPECT_EQ(store->List(ListQuery{})->records.size(), 30u);
}

TEST(MemoryTaskStore, PurgeForgetsEmptyQueues) {
  auto store = NewMemoryTaskStore();
  ASSERT_TRUE(WriteOne(*store, With(MakeRecord(1, "gone"), S::kCompleted)).ok());
  ASSERT_TRUE(WriteOne(*store, MakeRecord(2, "kept")).ok());
  PurgeOptions opts;
  opts.completed_before_ms = INT64_MAX;
  EXPECT_EQ(*store->PurgeTerminal(opts), 1u);
  auto counts = store->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_FALSE(counts->by_queue.contains("gone"));
  EXPECT_TRUE(counts->by_queue.contains("kept"));
}

TEST(MemoryTaskStore, PurgeFollowsCompletionOrderNotIdOrder) {
  auto store = NewMemoryTaskStore();
  // Task 5 (newer id) completes first, task 1 later.
  for (uint64_t i : {1u, 5u}) ASSERT_TRUE(WriteOne(*store, MakeRecord(i)).ok());
  ASSERT_TRUE(WriteOne(*store, With(MakeRecord(5), S::kCompleted, kBaseMs + 10)).ok());
  ASSERT_TRUE(WriteOne(*store, With(MakeRecord(1), S::kCompleted, kBaseMs + 20)).ok());
  PurgeOptions opts;
  opts.keep_at_most = 1;
  EXPECT_EQ(*store->PurgeTerminal(opts), 1u);
  EXPECT_FALSE(store->Get(IdFor(5)).ok());
  EXPECT_TRUE(store->Get(IdFor(1)).ok());
}

// Records finished on different threads are purged oldest-first across threads: an old record
// written by one thread does not wait behind a younger one that another thread wrote earlier.
TEST(MemoryTaskStore, PurgeOrdersRecordsFromDifferentWritersByCompletion) {
  auto store = NewMemoryTaskStore();
  auto write_on_thread = [&](uint64_t i, int64_t completed_ms) {
    std::thread t([&] {
      ASSERT_TRUE(WriteOne(*store, With(MakeRecord(i), S::kCompleted, completed_ms)).ok());
    });
    t.join();
  };
  write_on_thread(1, kBaseMs + 2'000);  // young, written first
  write_on_thread(2, kBaseMs + 1'000);  // old, written second, by another thread
  write_on_thread(3, kBaseMs + 3'000);
  PurgeOptions by_age;
  by_age.completed_before_ms = kBaseMs + 1'500;
  EXPECT_EQ(*store->PurgeTerminal(by_age), 1u);
  EXPECT_FALSE(store->Get(IdFor(2)).ok());
  EXPECT_TRUE(store->Get(IdFor(1)).ok());
  PurgeOptions by_count;
  by_count.keep_at_most = 1;
  EXPECT_EQ(*store->PurgeTerminal(by_count), 1u);
  EXPECT_FALSE(store->Get(IdFor(1)).ok());
  EXPECT_TRUE(store->Get(IdFor(3)).ok());
}

// Completions written newest first: with more records than the store has shards, many land in
// a shard behind a younger one, and each must still be purged by its own completion time.
TEST(MemoryTaskStore, PurgeByAgeHonoursCompletionTimesWrittenOutOfOrder) {
  constexpr uint64_t kN = 500;
  auto store = NewMemoryTaskStore();
  for (uint64_t i = kN; i-- > 0;) {
    ASSERT_TRUE(
        WriteOne(*store, With(MakeRecord(i), S::kCompleted, kBaseMs + static_cast<int64_t>(i)))
            .ok());
  }
  PurgeOptions by_age;
  by_age.completed_before_ms = kBaseMs + 200;  // exactly ids 0..199
  by_age.max_batch = kN;
  EXPECT_EQ(*store->PurgeTerminal(by_age), 200u);
  for (uint64_t i = 0; i < kN; ++i) EXPECT_EQ(store->Get(IdFor(i)).ok(), i >= 200) << i;
  PurgeOptions by_count;
  by_count.keep_at_most = 100;  // the 100 newest: ids 400..499
  by_count.max_batch = kN;
  EXPECT_EQ(*store->PurgeTerminal(by_count), 200u);
  for (uint64_t i = 200; i < kN; ++i) EXPECT_EQ(store->Get(IdFor(i)).ok(), i >= 400) << i;
}

// Purged records' places are reused by later writes; nothing of a purged record shows through,
// and every record still reads back as written.
TEST(MemoryTaskStore, RecordsWrittenAfterPurgesReadBackExactly) {
  constexpr uint64_t kRound = 20'000;  // more than a chunk of places per shard
  auto store = NewMemoryTaskStore();
  for (uint64_t round = 0; round < 3; ++round) {
    const uint64_t first = round * kRound;
    for (uint64_t i = first; i < first + kRound; ++i) {
      TaskRecord r = With(MakeRecord(i, i % 2 ? "odd" : "even"), S::kCompleted,
                          kBaseMs + static_cast<int64_t>(i));
      if (round == 0) r.result_json = std::string(300, 'r');  // a large buffer, then purged
      r.error = round == 2 ? "" : "e" + std::to_string(i);
      ASSERT_TRUE(WriteOne(*store, r).ok());
    }
    PurgeOptions opts;
    opts.keep_at_most = kRound / 2;
    opts.max_batch = 2 * kRound;
    EXPECT_EQ(*store->PurgeTerminal(opts), round == 0 ? kRound / 2 : kRound);
  }
  // Left: the newest kRound / 2 of round 2.
  EXPECT_EQ(Count(*store, "odd", S::kCompleted) + Count(*store, "even", S::kCompleted), kRound / 2);
  for (uint64_t i = 0; i < 3 * kRound; i += 7) {
    auto r = store->Get(IdFor(i));
    if (i < 3 * kRound - kRound / 2) {
      EXPECT_FALSE(r.ok()) << i;
      continue;
    }
    ASSERT_TRUE(r.ok()) << i;
    EXPECT_EQ(r->id(), IdFor(i));
    EXPECT_EQ(r->spec->queue, i % 2 ? "odd" : "even");
    EXPECT_EQ(r->completed_ms, kBaseMs + static_cast<int64_t>(i));
    EXPECT_EQ(r->result_json, "");
    EXPECT_EQ(r->error, "");
  }
  ListQuery q;
  q.limit = 1000;
  q.queue = "odd";
  auto page = store->List(q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->records.size(), 1000u);
  EXPECT_EQ(page->records.front().id(), IdFor(3 * kRound - 1));
}

TEST(MemoryTaskStore, ForEachLiveVisitsOnlyLive) {
  auto store = NewMemoryTaskStore();
  std::set<TaskId> live;
  for (uint64_t i = 0; i < 300; ++i) {
    const S state = kAllStates[i % kAllStates.size()];
    ASSERT_TRUE(WriteOne(*store, With(MakeRecord(i), state)).ok());
    if (!IsTerminal(state)) live.insert(IdFor(i));
  }
  std::set<TaskId> visited;
  Status s = store->ForEachLive([&](const TaskRecord& r) {
    EXPECT_FALSE(IsTerminal(r.state));
    EXPECT_TRUE(visited.insert(r.id()).second);
    // The visitor may call back into the store.
    EXPECT_TRUE(store->Get(r.id()).ok());
  });
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(visited, live);
}

TEST(MemoryTaskStore, ConcurrentWritersAndReaders) {
  constexpr int kWriters = 8;
  constexpr uint64_t kPerWriter = 2000;
  auto store = NewMemoryTaskStore();
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&store, t] {
      const std::string queue = "q" + std::to_string(t % 3);
      for (uint64_t k = 0; k < kPerWriter; ++k) {
        const uint64_t i = static_cast<uint64_t>(t) * kPerWriter + k;
        TaskRecord r = MakeRecord(i, queue);
        ASSERT_TRUE(WriteOne(*store, r).ok());
        r = With(r, S::kRunning);
        ASSERT_TRUE(WriteOne(*store, r).ok());
        // Every other task completes; the rest stay RUNNING.
        if (k % 2 == 0) {
          r = With(r, S::kCompleted, kBaseMs + static_cast<int64_t>(k));
          ASSERT_TRUE(WriteOne(*store, r).ok());
        }
      }
    });
  }
  // Readers and a purger run alongside the writers.
  threads.emplace_back([&] {
    while (!done.load(std::memory_order_acquire)) {
      ListQuery q;
      q.limit = 20;
      ASSERT_TRUE(store->List(q).ok());
      ASSERT_TRUE(store->Counts().ok());
      ASSERT_TRUE(store->ForEachLive([](const TaskRecord& r) { (void)r; }).ok());
    }
  });
  threads.emplace_back([&] {
    PurgeOptions opts;
    opts.keep_at_most = kWriters * kPerWriter / 4;
    opts.max_batch = 100;
    while (!done.load(std::memory_order_acquire)) ASSERT_TRUE(store->PurgeTerminal(opts).ok());
  });
  for (int t = 0; t < kWriters; ++t) threads[t].join();
  done.store(true, std::memory_order_release);  // pairs with the loads in the reader threads
  for (size_t t = kWriters; t < threads.size(); ++t) threads[t].join();

  auto counts = store->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->total(S::kRunning), kWriters * kPerWriter / 2);
  EXPECT_EQ(counts->total(S::kPending), 0u);
  size_t live = 0;
  ASSERT_TRUE(store->ForEachLive([&](const TaskRecord&) { ++live; }).ok());
  EXPECT_EQ(live, kWriters * kPerWriter / 2);
  // Purge down to nothing; counts end with only RUNNING records.
  PurgeOptions opts;
  opts.completed_before_ms = INT64_MAX;
  opts.max_batch = 1'000'000;
  auto removed = store->PurgeTerminal(opts);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(store->Counts()->total(S::kCompleted), 0u);
  ListQuery q;
  q.limit = 1000;
  q.state = S::kCompleted;
  EXPECT_TRUE(store->List(q)->records.empty());
}

}  // namespace
}  // namespace bmos::storage
