#include "storage/object_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

namespace bmos::storage {
namespace {

// Counts live objects, so the tests see that the pool deletes what it does not keep.
struct Item {
  Item() { live.fetch_add(1); }
  ~Item() { live.fetch_sub(1); }
  Item(const Item&) = delete;
  Item& operator=(const Item&) = delete;
  static inline std::atomic<int> live{0};
  int payload = 0;  // written by its holder only (see the concurrent test)
};

using Pool = ObjectPool<Item>;

// The pool is process-wide: each test starts from an empty one on this thread.
void Drain() {
  while (Item* t = Pool::Take()) delete t;
  ASSERT_EQ(Pool::InDepot(), 0u);
}

std::vector<Item*> TakeAll() {
  std::vector<Item*> out;
  while (Item* t = Pool::Take()) out.push_back(t);
  return out;
}

TEST(ObjectPool, AnObjectGivenBackIsTakenAgainOnTheSameThreadNewestFirst) {
  Drain();
  EXPECT_EQ(Pool::Take(), nullptr);
  Item* a = new Item;
  Item* b = new Item;
  Pool::Give(a);
  Pool::Give(b);
  EXPECT_EQ(Pool::Take(), b);
  EXPECT_EQ(Pool::Take(), a);
  EXPECT_EQ(Pool::Take(), nullptr);
  delete a;
  delete b;
}

// The engine's pattern: consumers give, producers take. A consumer's cache passes full magazines
// to the depot, and hands the rest back when the thread exits.
TEST(ObjectPool, TakeOrNewAllocatesOnlyWhenNothingIsKept) {
  Drain();
  const int live = Item::live.load();
  Item* fresh = Pool::TakeOrNew();
  ASSERT_NE(fresh, nullptr);
  EXPECT_EQ(Item::live.load(), live + 1);
  fresh->payload = 7;
  Pool::Give(fresh);
  EXPECT_EQ(Pool::TakeOrNew(), fresh) << "a kept object was not reused";
  EXPECT_EQ(fresh->payload, 7);  // handed out as it was given
  EXPECT_EQ(Item::live.load(), live + 1);
  delete fresh;
}

TEST(ObjectPool, AnotherThreadTakesWhatAConsumerGaveIncludingItsCacheAtExit) {
  Drain();
  const int live_before = Item::live.load();
  const size_t given = 2 * Pool::kMagazine + 1;
  std::set<Item*> gave;
  std::thread consumer([&] {
    for (size_t i = 0; i < given; ++i) {
      Item* t = new Item;
      gave.insert(t);
      Pool::Give(t);
    }
    // 2 * kMagazine + 1 gives: one magazine went to the depot when the cache overflowed.
    EXPECT_EQ(Pool::InDepot(), Pool::kMagazine);
  });
  consumer.join();
  // At exit the consumer handed one more full magazine over and deleted the odd object.
  EXPECT_EQ(Pool::InDepot(), 2 * Pool::kMagazine);
  EXPECT_EQ(Item::live.load(), live_before + static_cast<int>(2 * Pool::kMagazine));
  const std::vector<Item*> taken = TakeAll();
  EXPECT_EQ(taken.size(), 2 * Pool::kMagazine);
  EXPECT_EQ(std::set<Item*>(taken.begin(), taken.end()).size(), taken.size());  // no duplicates
  for (Item* t : taken) {
    EXPECT_TRUE(gave.contains(t));
    delete t;
  }
  EXPECT_EQ(Pool::InDepot(), 0u);
  EXPECT_EQ(Item::live.load(), live_before);
}

// However many objects are given back, the pool keeps a bounded number and deletes the rest.
TEST(ObjectPool, KeepsABoundedNumberOfObjects) {
  Drain();
  const int live_before = Item::live.load();
  const size_t limit = Pool::kMaxDepotMagazines * Pool::kMagazine;
  std::thread consumer([&] {
    for (size_t i = 0; i < limit + 5 * Pool::kMagazine; ++i) Pool::Give(new Item);
    EXPECT_LE(Pool::InDepot(), limit);
  });
  consumer.join();
  EXPECT_EQ(Pool::InDepot(), limit);
  EXPECT_EQ(Item::live.load(), live_before + static_cast<int>(limit));
  const std::vector<Item*> taken = TakeAll();
  EXPECT_EQ(taken.size(), limit);
  for (Item* t : taken) delete t;
  EXPECT_EQ(Item::live.load(), live_before);
}

// Several givers and takers at once (run under TSan in CI): no object is handed to two holders.
TEST(ObjectPool, ConcurrentGiversAndTakersNeverShareAnObject) {
  Drain();
  constexpr int kThreads = 4;
  constexpr int kRounds = 2000;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([i] {
      std::vector<Item*> held;
      for (int r = 0; r < kRounds; ++r) {
        if ((r + i) % 3 != 0) {
          Item* t = Pool::Take();
          if (t == nullptr) t = new Item;
          // Written by its holder only: TSan reports an object handed to two holders at once.
          t->payload = r;
          held.push_back(t);
        } else {
          for (Item* t : held) Pool::Give(t);
          held.clear();
        }
      }
      for (Item* t : held) Pool::Give(t);
    });
  }
  for (std::thread& t : threads) t.join();
  for (Item* t : TakeAll()) delete t;
}

}  // namespace
}  // namespace bmos::storage
