#include "storage/id_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "storage/task_id.h"

namespace bmos::storage {
namespace {

struct Task;
using TaskIndex = IdIndex<Task*, 6>;
Task* Fake(uintptr_t v) { return reinterpret_cast<Task*>(v * 8); }

TEST(IdIndex, InsertFindErase) {
  TaskIndex index;
  TaskId a = NewTaskId(1000), b = NewTaskId(1000);
  EXPECT_EQ(index.Find(a), nullptr);
  index.Insert(a, Fake(1));
  index.Insert(b, Fake(2));
  EXPECT_EQ(index.size(), 2u);
  EXPECT_EQ(index.Find(a), Fake(1));
  EXPECT_EQ(index.Find(b), Fake(2));
  EXPECT_TRUE(index.Erase(a));
  EXPECT_FALSE(index.Erase(a));
  EXPECT_EQ(index.Find(a), nullptr);
  EXPECT_EQ(index.Find(b), Fake(2));
  EXPECT_EQ(index.size(), 1u);
}

// Random inserts (Insert and FindOrInsert) and erases against std::map as the reference, across
// growth and shrinking, with ids that share their hash bits often enough to build long probe runs.
TEST(IdIndex, MatchesReferenceUnderRandomOperations) {
  std::mt19937_64 rng(42);
  TaskIndex index;
  std::map<TaskId, Task*> ref;
  std::vector<TaskId> ids;
  for (int round = 0; round < 200'000; ++round) {
    int op = static_cast<int>(rng() % 10);
    if (op < 6 || ids.empty()) {
      TaskId id{rng() & 0xFFFF0000FFFFull, rng() % 5000};  // collisions in low bits
      Task* t = Fake(static_cast<uintptr_t>(round + 1));
      if (op < 3) {
        if (op == 0 && !ids.empty()) id = ids[rng() % ids.size()];
        // FindOrInsert: the present value stays, an absent id gets the new one.
        const bool present = ref.count(id) != 0;
        bool made = false;
        const auto [value, inserted] = index.FindOrInsert(id, [&] {
          made = true;
          return t;
        });
        ASSERT_EQ(inserted, !present);
        ASSERT_EQ(made, !present);
        ASSERT_EQ(value, present ? ref.at(id) : t);
        if (present) continue;
      } else {
        if (ref.count(id) != 0) continue;
        index.Insert(id, t);
      }
      ref.emplace(id, t);
      ids.push_back(id);
    } else {
      size_t k = rng() % ids.size();
      TaskId id = ids[k];
      ids[k] = ids.back();
      ids.pop_back();
      ASSERT_TRUE(index.Erase(id));
      ref.erase(id);
    }
    if (round % 997 == 0) {
      ASSERT_EQ(index.size(), ref.size());
      for (const auto& [id, t] : ref) ASSERT_EQ(index.Find(id), t);
    }
  }
  size_t seen = 0;
  index.ForEach([&](const TaskId& id, Task* t) {
    ++seen;
    EXPECT_EQ(ref.at(id), t);
  });
  EXPECT_EQ(seen, ref.size());
  // Drain completely: shrinking must keep every remaining entry reachable.
  for (const TaskId& id : ids) ASSERT_TRUE(index.Erase(id));
  EXPECT_EQ(index.size(), 0u);
}

// Integer values (the memory store's slot numbers), and ids made one after another, as the
// engine makes them: the index places them side by side, and each must still be found.
TEST(IdIndex, IntegerValuesOfConsecutiveIds) {
  IdIndex<uint32_t, 6> index;
  std::vector<TaskId> ids;
  for (uint32_t i = 1; i <= 50'000; ++i) {
    ids.push_back(NewTaskId(1'000'000 + i / 300));  // about 300 ids per millisecond
    index.Insert(ids.back(), i);
  }
  for (uint32_t i = 1; i <= 50'000; ++i) ASSERT_EQ(index.Find(ids[i - 1]), i);
  EXPECT_EQ(index.Find(NewTaskId(5)), 0u);
  // Erased oldest first, as tasks mostly finish, with the rest still found.
  for (uint32_t i = 1; i <= 40'000; ++i) ASSERT_TRUE(index.Erase(ids[i - 1]));
  for (uint32_t i = 1; i <= 50'000; ++i) ASSERT_EQ(index.Find(ids[i - 1]), i > 40'000 ? i : 0u);
  EXPECT_EQ(index.size(), 10'000u);
}

TaskId IdAt(uint64_t ms, uint64_t counter, uint64_t lo) {
  return TaskId{(ms << 16) | 0x7000 | counter, 0x8000000000000000ull | lo};
}

// Average lookup length over `ids` in one shard's index, after inserting them all.
double MeanProbes(const std::vector<TaskId>& ids) {
  IdIndex<uint32_t, 6> index;
  for (size_t i = 0; i < ids.size(); ++i) index.Insert(ids[i], static_cast<uint32_t>(i + 1));
  size_t total = 0;
  for (const TaskId& id : ids) total += index.ProbeLength(id);
  return static_cast<double>(total) / static_cast<double>(ids.size());
}

// Ids are placed by their sequence, yet no pattern in which ids are made piles them up: a
// burst (consecutive counters), one id per millisecond (counter 0 every time), and ids of two
// processes with the same sequences (a restart after the clock stepped back) all keep lookups
// short and spread over the shards. Placing by the raw sequence puts every id of the second
// pattern in one shard at a few homes; scattering runs of sequences by a hash passes all three.
TEST(IdIndex, NoPatternOfIdsBuildsLongProbeRuns) {
  constexpr uint64_t kN = 40'000;
  std::vector<TaskId> burst, slow, two_runs;
  for (uint64_t i = 0; i < kN; ++i) {
    burst.push_back(IdAt(5'000 + i / 1000, i % 1000, i * 7919));
    slow.push_back(IdAt(5'000 + i, 0, i * 7919));
  }
  for (uint64_t i = 0; i < kN / 2; ++i) {
    two_runs.push_back(IdAt(5'000 + i / 1000, i % 1000, i));
    two_runs.push_back(IdAt(5'000 + i / 1000, i % 1000, i + (1u << 30)));
  }
  for (const auto* ids : {&burst, &slow, &two_runs}) {
    // Two ids per sequence claim each run's slots twice, so the second of each pair lies about
    // a run further on; still a few cache lines, never a scan of the table.
    const double bound = ids == &two_runs ? 12.0 : 3.0;
    EXPECT_LT(MeanProbes(*ids), bound) << (ids == &burst ? "burst" : ids == &slow ? "slow" : "two");
    std::vector<size_t> per_shard(64);
    for (const TaskId& id : *ids) ++per_shard[IdIndex<uint32_t, 6>::ShardOf(id)];
    const auto [least, most] = std::minmax_element(per_shard.begin(), per_shard.end());
    EXPECT_GT(*least, kN / 64 / 2);
    EXPECT_LT(*most, kN / 64 * 2);
  }
}

TEST(IdIndex, ClearEmptiesTheIndex) {
  TaskIndex index;
  for (int i = 0; i < 1000; ++i) index.Insert(NewTaskId(5), Fake(static_cast<uintptr_t>(i + 1)));
  index.Clear();
  EXPECT_EQ(index.size(), 0u);
  int n = 0;
  index.ForEach([&](const TaskId&, Task*) { ++n; });
  EXPECT_EQ(n, 0);
}

}  // namespace
}  // namespace bmos::storage
