#include "engine/internal/task_pool.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

#include "engine/internal/task.h"

namespace bmos::engine::internal {
namespace {

// The pool is process-wide: each test starts from an empty one on this thread.
void Drain() {
  while (Task* t = TakePooledTask()) delete t;
  ASSERT_EQ(PooledTasksInDepot(), 0u);
}

std::vector<Task*> TakeAll() {
  std::vector<Task*> out;
  while (Task* t = TakePooledTask()) out.push_back(t);
  return out;
}

TEST(TaskPool, ATaskGivenBackIsTakenAgainOnTheSameThreadNewestFirst) {
  Drain();
  EXPECT_EQ(TakePooledTask(), nullptr);
  Task* a = new Task;
  Task* b = new Task;
  GivePooledTask(a);
  GivePooledTask(b);
  EXPECT_EQ(TakePooledTask(), b);
  EXPECT_EQ(TakePooledTask(), a);
  EXPECT_EQ(TakePooledTask(), nullptr);
  delete a;
  delete b;
}

// The engine's pattern: workers give, producers take. A worker's cache passes full magazines to
// the depot, and hands the rest back when the worker exits.
TEST(TaskPool, AnotherThreadTakesWhatAWorkerGaveIncludingItsCacheAtExit) {
  Drain();
  const size_t given = 2 * kMagazine + 1;
  std::set<Task*> gave;
  std::thread worker([&] {
    for (size_t i = 0; i < given; ++i) {
      Task* t = new Task;
      gave.insert(t);
      GivePooledTask(t);
    }
    // 2 * kMagazine + 1 gives: one magazine went to the depot when the cache overflowed.
    EXPECT_EQ(PooledTasksInDepot(), kMagazine);
  });
  worker.join();
  // At exit the worker handed one more full magazine over and freed the odd task.
  EXPECT_EQ(PooledTasksInDepot(), 2 * kMagazine);
  const std::vector<Task*> taken = TakeAll();
  EXPECT_EQ(taken.size(), 2 * kMagazine);
  EXPECT_EQ(std::set<Task*>(taken.begin(), taken.end()).size(), taken.size());  // no duplicates
  for (Task* t : taken) {
    EXPECT_TRUE(gave.contains(t));
    delete t;
  }
  EXPECT_EQ(PooledTasksInDepot(), 0u);
}

// However many tasks are given back, the pool keeps a bounded number (the rest are freed; the
// sanitizer builds would report a task lost instead).
TEST(TaskPool, KeepsABoundedNumberOfTasks) {
  Drain();
  const size_t limit = kMaxDepotMagazines * kMagazine;
  std::thread worker([&] {
    for (size_t i = 0; i < limit + 5 * kMagazine; ++i) GivePooledTask(new Task);
    EXPECT_LE(PooledTasksInDepot(), limit);
  });
  worker.join();
  EXPECT_EQ(PooledTasksInDepot(), limit);
  const std::vector<Task*> taken = TakeAll();
  EXPECT_EQ(taken.size(), limit);
  for (Task* t : taken) delete t;
}

// Several workers and producers at once (run under TSan in CI): every task taken was given,
// none is taken twice while held.
TEST(TaskPool, ConcurrentGiversAndTakersNeverShareATask) {
  Drain();
  constexpr int kThreads = 4;
  constexpr int kRounds = 2000;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([i] {
      std::vector<Task*> held;
      for (int r = 0; r < kRounds; ++r) {
        if ((r + i) % 3 != 0) {
          Task* t = TakePooledTask();
          if (t == nullptr) t = new Task;
          // Written by its holder only: TSan reports a task handed to two holders at once.
          t->retry_at_us = r;
          held.push_back(t);
        } else {
          for (Task* t : held) GivePooledTask(t);
          held.clear();
        }
      }
      for (Task* t : held) GivePooledTask(t);
    });
  }
  for (std::thread& t : threads) t.join();
  for (Task* t : TakeAll()) delete t;
}

}  // namespace
}  // namespace bmos::engine::internal
