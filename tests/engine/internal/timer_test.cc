#include "engine/internal/timer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

namespace bmos::engine::internal {
namespace {

std::unique_ptr<Task> MakeTask() {
  auto t = std::make_unique<Task>();
  auto spec = std::make_shared<storage::TaskSpec>();
  spec->id = storage::NewTaskId(1);
  t->rec.spec = spec;
  return t;
}

struct Fired {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Task*> tasks;
  std::vector<std::pair<storage::TaskId, int>> timeouts;

  bool WaitForTasks(size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return tasks.size() >= n; });
  }
};

class DelayTimerTest : public ::testing::Test {
 protected:
  DelayTimerTest()
      : timer_(&clock_,
               [this](Task* t) {
                 std::lock_guard<std::mutex> lock(fired_.mu);
                 fired_.tasks.push_back(t);
                 fired_.cv.notify_all();
               },
               [this](const storage::TaskId& id, int attempt) {
                 std::lock_guard<std::mutex> lock(fired_.mu);
                 fired_.timeouts.emplace_back(id, attempt);
               }) {}

  ManualClock clock_{1'000'000'000};
  Fired fired_;
  DelayTimer timer_;
};

TEST_F(DelayTimerTest, RunOnceFiresOnlyWhatIsDueInOrder) {
  auto a = MakeTask(), b = MakeTask(), c = MakeTask();
  const int64_t now = clock_.NowMicros();
  timer_.ScheduleTask(b.get(), now + 200);
  timer_.ScheduleTask(a.get(), now + 100);
  timer_.ScheduleTask(c.get(), now + 300);
  EXPECT_EQ(timer_.RunOnce(now + 99), now + 100);
  EXPECT_TRUE(fired_.tasks.empty());
  EXPECT_EQ(timer_.RunOnce(now + 200), now + 300);
  ASSERT_EQ(fired_.tasks.size(), 2u);
  EXPECT_EQ(fired_.tasks[0], a.get());
  EXPECT_EQ(fired_.tasks[1], b.get());
  EXPECT_EQ(timer_.RunOnce(now + 1000), kNever);
  EXPECT_EQ(fired_.tasks.size(), 3u);
}

TEST_F(DelayTimerTest, CancelledTimeoutNeverFires) {
  const int64_t now = clock_.NowMicros();
  storage::TaskId id = storage::NewTaskId(1);
  auto h1 = timer_.ScheduleTimeout(id, 1, now + 10);
  auto h2 = timer_.ScheduleTimeout(id, 2, now + 20);
  EXPECT_TRUE(timer_.CancelTimeout(h1));
  EXPECT_FALSE(timer_.CancelTimeout(h1));  // already gone
  timer_.RunOnce(now + 100);
  ASSERT_EQ(fired_.timeouts.size(), 1u);
  EXPECT_EQ(fired_.timeouts[0].second, 2);
  EXPECT_FALSE(timer_.CancelTimeout(h2));  // fired
}

// The timer thread sleeps until the manual clock reaches the due time; moving the clock wakes it.
TEST_F(DelayTimerTest, ThreadFiresWhenTheManualClockMoves) {
  timer_.Start();
  auto a = MakeTask();
  timer_.ScheduleTask(a.get(), clock_.NowMicros() + 5'000'000);
  {
    std::unique_lock<std::mutex> lock(fired_.mu);
    // Not due: nothing may fire however long we wait in real time.
    EXPECT_FALSE(fired_.cv.wait_for(lock, std::chrono::milliseconds(50),
                                    [&] { return !fired_.tasks.empty(); }));
  }
  clock_.AdvanceMillis(4999);
  clock_.AdvanceMillis(1);
  EXPECT_TRUE(fired_.WaitForTasks(1));
  timer_.Stop();
  timer_.Stop();  // idempotent
}

TEST_F(DelayTimerTest, TakeAllTasksReturnsHeldTasksOnly) {
  auto a = MakeTask(), b = MakeTask();
  timer_.ScheduleTask(a.get(), clock_.NowMicros() + 10);
  timer_.ScheduleTimeout(a->id(), 1, clock_.NowMicros() + 10);
  timer_.ScheduleTask(b.get(), clock_.NowMicros() + 20);
  std::vector<Task*> held = timer_.TakeAllTasks();
  EXPECT_EQ(held.size(), 2u);
  EXPECT_EQ(timer_.size(), 1u);  // the timeout stays
}

}  // namespace
}  // namespace bmos::engine::internal
