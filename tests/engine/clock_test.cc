#include "engine/clock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

namespace bmos::engine {
namespace {

TEST(ManualClock, StartsWhereToldAndMovesOnlyWhenTold) {
  ManualClock clock(5'000'000);
  EXPECT_TRUE(clock.IsManual());
  EXPECT_EQ(clock.NowMicros(), 5'000'000);
  EXPECT_EQ(clock.NowMillis(), 5'000);
  clock.AdvanceMillis(250);
  EXPECT_EQ(clock.NowMillis(), 5'250);
  clock.AdvanceMicros(999);
  EXPECT_EQ(clock.NowMicros(), 5'250'999);
  EXPECT_EQ(clock.NowMillis(), 5'250);
  clock.AdvanceMillis(-250);
  EXPECT_EQ(clock.NowMicros(), 5'000'999);
  clock.SetMicros(42'000'000);
  EXPECT_EQ(clock.NowMillis(), 42'000);
}

TEST(ManualClock, DefaultStartIsJanuary2026) {
  ManualClock clock;
  EXPECT_EQ(clock.NowMillis(), 1'767'225'600'000);
}

TEST(ManualClock, AdvanceAndSetCallListeners) {
  ManualClock clock;
  int a = 0, b = 0;
  int64_t seen_by_a = 0;
  clock.AddListener([&] {
    ++a;
    seen_by_a = clock.NowMillis();
  });
  clock.AddListener([&] { ++b; });
  clock.AdvanceMillis(10);
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 1);
  // Listeners run after the change: they see the new time.
  EXPECT_EQ(seen_by_a, clock.NowMillis());
  clock.AdvanceMicros(1);
  clock.SetMicros(7);
  EXPECT_EQ(a, 3);
  EXPECT_EQ(b, 3);
  EXPECT_EQ(seen_by_a, 0);
}

TEST(ManualClock, RemoveListenerStopsCalls) {
  ManualClock clock;
  int a = 0, b = 0;
  const uint64_t ha = clock.AddListener([&] { ++a; });
  const uint64_t hb = clock.AddListener([&] { ++b; });
  EXPECT_NE(ha, hb);
  clock.AdvanceMillis(1);
  clock.RemoveListener(ha);
  clock.AdvanceMillis(1);
  clock.AdvanceMillis(1);
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 3);
  clock.RemoveListener(hb);
  clock.AdvanceMillis(1);
  EXPECT_EQ(b, 3);
}

TEST(ManualClock, RemoveListenerWhileAnotherThreadAdvances) {
  // After RemoveListener returns the listener is not running and is never called again, even
  // with another thread moving the clock all the time.
  for (int round = 0; round < 20; ++round) {
    ManualClock clock;
    std::atomic<bool> stop{false};
    std::atomic<int> calls{0};
    const uint64_t handle =
        clock.AddListener([&] { calls.fetch_add(1, std::memory_order_relaxed); });
    std::thread mover([&] {
      while (!stop.load(std::memory_order_relaxed)) clock.AdvanceMicros(1);
    });
    while (calls.load(std::memory_order_relaxed) < 10) std::this_thread::yield();
    clock.RemoveListener(handle);
    const int after_remove = calls.load(std::memory_order_relaxed);
    const int64_t t0 = clock.NowMicros();
    while (clock.NowMicros() < t0 + 100) std::this_thread::yield();  // the mover keeps going
    EXPECT_EQ(calls.load(std::memory_order_relaxed), after_remove);
    stop.store(true, std::memory_order_relaxed);
    mover.join();
  }
}

TEST(ManualClock, ConcurrentAdvancesAllCount) {
  ManualClock clock(0);
  std::atomic<int> calls{0};
  clock.AddListener([&] { calls.fetch_add(1, std::memory_order_relaxed); });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) clock.AdvanceMicros(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(clock.NowMicros(), 4000);
  EXPECT_EQ(calls.load(), 4000);
}

TEST(SystemClock, ReadsTheRealTime) {
  Clock* clock = SystemClock();
  ASSERT_NE(clock, nullptr);
  EXPECT_EQ(clock, SystemClock());  // one process-wide instance
  EXPECT_FALSE(clock->IsManual());
  const int64_t real = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  // A sanity bound (the same epoch and unit), not a timing assertion.
  EXPECT_LT(std::llabs(clock->NowMicros() - real), 60'000'000);
  // Listeners are never called by the real clock; adding one is harmless.
  const uint64_t h = clock->AddListener([] { FAIL() << "SystemClock called a listener"; });
  clock->RemoveListener(h);
}

// Now() reads the steady clock only and adds the wall clock's offset: its wall time must agree
// with NowMicros read just before and after (to a millisecond: the offset is at most 10 ms old
// and the two clocks tick at the same rate), its steady time with SteadyMicros, and both must
// never run backwards across calls on many threads.
TEST(SystemClock, PairedReadingAgreesWithBothClocks) {
  Clock* clock = SystemClock();
  for (int i = 0; i < 2000; ++i) {
    const int64_t wall_before = clock->NowMicros();
    const int64_t steady_before = Clock::SteadyMicros();
    const Clock::Reading r = clock->Now();
    const int64_t steady_after = Clock::SteadyMicros();
    const int64_t wall_after = clock->NowMicros();
    ASSERT_GE(r.steady_us, steady_before);
    ASSERT_LE(r.steady_us, steady_after);
    ASSERT_GE(r.wall_us, wall_before - 1000) << i;
    ASSERT_LE(r.wall_us, wall_after + 1000) << i;
    if (i % 500 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(12));  // resync
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([clock] {
      int64_t last = clock->Now().steady_us;
      for (int i = 0; i < 20'000; ++i) {
        const int64_t now = clock->Now().steady_us;
        ASSERT_GE(now, last);
        last = now;
      }
    });
  }
  for (auto& t : threads) t.join();
}

// A manual clock's reading pairs its own time with the real steady clock.
TEST(ManualClock, PairedReadingUsesTheManualTime) {
  ManualClock clock(5'000'000);
  const int64_t steady_before = Clock::SteadyMicros();
  const Clock::Reading r = clock.Now();
  EXPECT_EQ(r.wall_us, 5'000'000);
  EXPECT_GE(r.steady_us, steady_before);
}

}  // namespace
}  // namespace bmos::engine
