#include "storage/task_id.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace bmos::storage {
namespace {

constexpr int64_t kNowMs = 1'764'360'972'123;  // 2025-11-28T20:16:12.123Z

TEST(TaskId, FormatKnownValue) {
  TaskId id{0x0190a5b27c3e7d41ull, 0x8f2a1b2c3d4e5f60ull};
  EXPECT_EQ(id.ToString(), "0190a5b2-7c3e-7d41-8f2a-1b2c3d4e5f60");
  char buf[37] = {};
  id.Format(buf);
  EXPECT_EQ(std::string(buf), "0190a5b2-7c3e-7d41-8f2a-1b2c3d4e5f60");
  EXPECT_EQ(TaskId{}.ToString(), "00000000-0000-0000-0000-000000000000");
  EXPECT_TRUE(TaskId{}.is_nil());
  EXPECT_FALSE(id.is_nil());
}

TEST(TaskId, ParseRoundTrip) {
  for (int i = 0; i < 1000; ++i) {
    const TaskId id = NewTaskId(kNowMs + i);
    const std::string text = id.ToString();
    ASSERT_EQ(text.size(), 36u);
    auto parsed = TaskId::Parse(text);
    ASSERT_TRUE(parsed.has_value()) << text;
    EXPECT_EQ(*parsed, id);
  }
}

TEST(TaskId, ParseAcceptsUpperCase) {
  auto parsed = TaskId::Parse("0190A5B2-7C3E-7D41-8F2A-1B2C3D4E5F60");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->hi, 0x0190a5b27c3e7d41ull);
  EXPECT_EQ(parsed->lo, 0x8f2a1b2c3d4e5f60ull);
}

TEST(TaskId, ParseRejectsBadInput) {
  const char* bad[] = {
      "",
      "0190a5b2-7c3e-7d41-8f2a-1b2c3d4e5f6",    // 35 chars
      "0190a5b2-7c3e-7d41-8f2a-1b2c3d4e5f600",  // 37 chars
      "0190a5b2-7c3e-7d41-8f2a-1b2c3d4e5f6g",   // bad hex
      "0190a5b2-7c3e-7d41-8f2a-1b2c3d4e5f6 ",   // space
      "0190a5b2x7c3e-7d41-8f2a-1b2c3d4e5f60",   // missing dash
      "0190a5b2-7c3ex7d41-8f2a-1b2c3d4e5f60",
      "0190a5b2-7c3e-7d41x8f2a-1b2c3d4e5f60",
      "0190a5b2-7c3e-7d41-8f2ax1b2c3d4e5f60",
      "0190a5b27c3e7d418f2a1b2c3d4e5f60",      // no dashes at all
      "0190a5b-27c3e-7d41-8f2a-1b2c3d4e5f60",  // dash in the wrong place
      "{190a5b2-7c3e-7d41-8f2a-1b2c3d4e5f6}",
  };
  for (const char* text : bad) EXPECT_FALSE(TaskId::Parse(text).has_value()) << text;
}

TEST(TaskId, VersionAndVariantBits) {
  for (int i = 0; i < 10000; ++i) {
    const TaskId id = NewTaskId(kNowMs);
    EXPECT_EQ((id.hi >> 12) & 0xF, 7u);
    EXPECT_EQ(id.lo >> 62, 0b10u);
    const std::string text = id.ToString();
    EXPECT_EQ(text[14], '7');
    EXPECT_TRUE(text[19] == '8' || text[19] == '9' || text[19] == 'a' || text[19] == 'b');
  }
}

// Ids are ordered process-wide, so a test that needs fresh milliseconds starts after the latest
// one any earlier test used.
int64_t FreshMs() { return NewTaskId(0).unix_ms() + 1000; }

TEST(TaskId, UnixMsRoundTrip) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const int64_t instants[] = {0, 1, kNowMs, (int64_t{1} << 48) - 1};
  for (int64_t ms : instants) {
    // In a child process: the process-wide order is not held back by this process's ids.
    EXPECT_EXIT(std::exit(NewTaskId(ms).unix_ms() == ms ? 0 : 1), ::testing::ExitedWithCode(0), "")
        << ms;
  }
}

TEST(TaskId, StrictlyIncreasingWithinAMillisecond) {
  // 100k ids in one millisecond overflow the 12-bit counter many times; ids must still increase
  // (the generator borrows the following milliseconds).
  const int64_t ms = FreshMs();
  TaskId prev = NewTaskId(ms);
  for (int i = 0; i < 100'000; ++i) {
    const TaskId id = NewTaskId(ms);
    ASSERT_LT(prev, id) << i;
    prev = id;
  }
}

TEST(TaskId, IncreasingAcrossThreadsInTheOrderTheyAreMade) {
  // Each id is made and appended under one lock, so the vector holds them in the order they were
  // made, whichever thread made them; that order must be id order.
  std::mutex mu;
  std::vector<TaskId> made;
  const int64_t ms = FreshMs();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5000; ++i) {
        std::lock_guard<std::mutex> lock(mu);
        made.push_back(NewTaskId(ms + i / 1000));
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(made.size(), 20'000u);
  EXPECT_TRUE(std::is_sorted(made.begin(), made.end()));
  EXPECT_EQ(std::adjacent_find(made.begin(), made.end()), made.end());
}

TEST(TaskId, CounterRestartsEachMillisecond) {
  const int64_t base = FreshMs();
  for (int64_t ms = base; ms < base + 1000; ++ms) {
    const TaskId id = NewTaskId(ms);
    EXPECT_EQ(id.unix_ms(), ms);
    EXPECT_EQ(id.hi & 0xFFF, 0u);  // the first id of its millisecond: 4096 fit before overflow
  }
}

TEST(TaskId, ClockGoingBackwardsKeepsIdsIncreasing) {
  const int64_t now = FreshMs();
  const TaskId a = NewTaskId(now);
  const TaskId b = NewTaskId(now - 5000);
  const TaskId c = NewTaskId(now - 1);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(b.unix_ms(), now);
  const TaskId d = NewTaskId(now + 1);
  EXPECT_LT(c, d);
  EXPECT_EQ(d.unix_ms(), now + 1);
}

TEST(TaskId, OrderFollowsTime) {
  std::thread([] {
    const int64_t now = FreshMs();
    const TaskId older = NewTaskId(now);
    const TaskId newer = NewTaskId(now + 1);
    EXPECT_LT(older, newer);
    EXPECT_LT(older.ToString(), newer.ToString());  // text order matches id order
  }).join();
}

TEST(TaskId, UniqueAcrossThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50'000;
  std::vector<std::vector<TaskId>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&ids, t] {
      ids[t].reserve(kPerThread);
      for (int i = 0; i < kPerThread; ++i) ids[t].push_back(NewTaskId(kNowMs));
    });
  }
  for (auto& th : threads) th.join();
  std::unordered_set<TaskId, TaskIdHash> seen;
  for (const auto& v : ids) {
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
    for (const TaskId& id : v) EXPECT_TRUE(seen.insert(id).second) << id.ToString();
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kThreads * kPerThread));
}

}  // namespace
}  // namespace bmos::storage
