#include "engine/internal/task_index.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "storage/task_id.h"

namespace bmos::engine::internal {
namespace {

Task* Fake(uintptr_t v) { return reinterpret_cast<Task*>(v * 8); }

TEST(TaskIndex, InsertFindErase) {
  TaskIndex index;
  storage::TaskId a = storage::NewTaskId(1000), b = storage::NewTaskId(1000);
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

// Random inserts and erases against std::map as the reference, across growth and shrinking,
// with ids that share their hash bits often enough to build long probe runs.
TEST(TaskIndex, MatchesReferenceUnderRandomOperations) {
  std::mt19937_64 rng(42);
  TaskIndex index;
  std::map<storage::TaskId, Task*> ref;
  std::vector<storage::TaskId> ids;
  for (int round = 0; round < 200'000; ++round) {
    int op = static_cast<int>(rng() % 10);
    if (op < 6 || ids.empty()) {
      storage::TaskId id{rng() & 0xFFFF0000FFFFull, rng() % 5000};  // collisions in low bits
      if (ref.count(id) != 0) continue;
      Task* t = Fake(static_cast<uintptr_t>(round + 1));
      index.Insert(id, t);
      ref.emplace(id, t);
      ids.push_back(id);
    } else {
      size_t k = rng() % ids.size();
      storage::TaskId id = ids[k];
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
  index.ForEach([&](const storage::TaskId& id, Task* t) {
    ++seen;
    EXPECT_EQ(ref.at(id), t);
  });
  EXPECT_EQ(seen, ref.size());
  // Drain completely: shrinking must keep every remaining entry reachable.
  for (const storage::TaskId& id : ids) ASSERT_TRUE(index.Erase(id));
  EXPECT_EQ(index.size(), 0u);
}

TEST(TaskIndex, ClearEmptiesTheIndex) {
  TaskIndex index;
  for (int i = 0; i < 1000; ++i) index.Insert(storage::NewTaskId(5), Fake(static_cast<uintptr_t>(i + 1)));
  index.Clear();
  EXPECT_EQ(index.size(), 0u);
  int n = 0;
  index.ForEach([&](const storage::TaskId&, Task*) { ++n; });
  EXPECT_EQ(n, 0);
}

}  // namespace
}  // namespace bmos::engine::internal
