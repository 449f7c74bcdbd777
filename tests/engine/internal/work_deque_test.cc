#include "engine/internal/work_deque.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace bmos::engine::internal {
namespace {

TEST(WorkDeque, StealFromEmptyReturnsNull) {
  WorkDeque<int> d(8);
  EXPECT_EQ(d.Steal(), nullptr);
  EXPECT_EQ(d.Pop(), nullptr);
  EXPECT_TRUE(d.Empty());
}

TEST(WorkDeque, OwnerPopsLifoThievesStealFifo) {
  int items[4] = {0, 1, 2, 3};
  WorkDeque<int> d(8);
  for (int& i : items) ASSERT_TRUE(d.Push(&i));
  EXPECT_EQ(d.Size(), 4u);
  EXPECT_EQ(d.Steal(), &items[0]);
  EXPECT_EQ(d.Pop(), &items[3]);
  EXPECT_EQ(d.Steal(), &items[1]);
  EXPECT_EQ(d.Pop(), &items[2]);
  EXPECT_EQ(d.Pop(), nullptr);
  EXPECT_EQ(d.Steal(), nullptr);
}

TEST(WorkDeque, PushFailsWhenFullAndRecoversAfterPop) {
  int items[5];
  WorkDeque<int> d(4);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(d.Push(&items[i]));
  EXPECT_FALSE(d.Push(&items[4]));
  EXPECT_EQ(d.Steal(), &items[0]);
  EXPECT_TRUE(d.Push(&items[4]));  // the slot freed by the steal is reused
  int n = 0;
  while (d.Pop() != nullptr) ++n;
  EXPECT_EQ(n, 4);
}

// Every item pushed by the owner is taken exactly once, by the owner or one of the thieves, at
// every thief count from 1 to 8.
TEST(WorkDeque, ConcurrentStealsTakeEveryItemExactlyOnce) {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  constexpr int kItems = 20'000;
#else
  constexpr int kItems = 200'000;
#endif
  for (int thieves : {1, 2, 4, 8}) {
    std::vector<int> values(kItems);
    std::vector<std::atomic<int>> taken(kItems);
    WorkDeque<int> d(64);
    std::atomic<bool> done{false};
    std::vector<std::thread> threads;
    for (int k = 0; k < thieves; ++k) {
      threads.emplace_back([&] {
        while (!done.load(std::memory_order_acquire)) {
          if (int* p = d.Steal()) taken[p - values.data()].fetch_add(1);
        }
        while (int* p = d.Steal()) taken[p - values.data()].fetch_add(1);
      });
    }
    for (int i = 0; i < kItems; ++i) {
      while (!d.Push(&values[i])) {
        if (int* p = d.Pop()) taken[p - values.data()].fetch_add(1);
      }
      if (i % 3 == 0) {
        if (int* p = d.Pop()) taken[p - values.data()].fetch_add(1);
      }
    }
    while (int* p = d.Pop()) taken[p - values.data()].fetch_add(1);
    done.store(true, std::memory_order_release);
    for (auto& t : threads) t.join();
    for (int i = 0; i < kItems; ++i) ASSERT_EQ(taken[i].load(), 1) << "item " << i << " thieves " << thieves;
  }
}

}  // namespace
}  // namespace bmos::engine::internal
