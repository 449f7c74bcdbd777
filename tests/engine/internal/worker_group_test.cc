#include "engine/internal/worker_group.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "storage/callback_batch.h"

namespace bmos::engine {
namespace {

using internal::QueueSlot;
using internal::Task;

// Records the order in which tasks run; a gate can hold the first task.
class RecordingRunner : public TaskRunner {
 public:
  void RunTask(Task* task, WorkerStats&) override {
    std::unique_lock<std::mutex> lock(mu_);
    order_.push_back(task);
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return order_.size() >= n; });
  }
  std::vector<Task*> order() {
    std::lock_guard<std::mutex> lock(mu_);
    return order_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  std::vector<Task*> order_;
};

class WorkerGroupTest : public ::testing::Test {
 protected:
  Task* NewTask(storage::Priority p) {
    auto t = std::make_unique<Task>();
    auto spec = std::make_shared<storage::TaskSpec>();
    spec->id = storage::NewTaskId(1);
    spec->priority = p;
    t->rec.spec = spec;
    t->queue = &slot_;
    tasks_.push_back(std::move(t));
    return tasks_.back().get();
  }
  std::unique_ptr<WorkerGroup> MakeGroup(int interval) {
    auto g =
        std::make_unique<WorkerGroup>("g", std::vector<QueueSlot*>{&slot_}, &runner_, interval, 16);
    slot_.group = g.get();
    return g;
  }

  // Waits (bounded) until `n` workers of `group` have found no work and parked. A fixed sleep
  // is not enough on a loaded machine, where a new worker may not run for a while.
  static bool WaitParked(const WorkerGroup& group, int n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (group.idle() < n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    // Between joining the idle count and sleeping a worker looks at the queues once more.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return true;
  }

  QueueSlot slot_;
  RecordingRunner runner_;
  std::vector<std::unique_ptr<Task>> tasks_;
};

TEST_F(WorkerGroupTest, HigherPriorityRunsFirst) {
  auto group = MakeGroup(0);
  ASSERT_TRUE(group->Resize(1).ok());
  Task* gate = NewTask(storage::Priority::kLow);
  group->Push(gate);
  ASSERT_TRUE(runner_.WaitFor(1));  // the only worker is now held by `gate`
  Task* low = NewTask(storage::Priority::kLow);
  Task* normal = NewTask(storage::Priority::kNormal);
  Task* high = NewTask(storage::Priority::kHigh);
  Task* critical = NewTask(storage::Priority::kCritical);
  for (Task* t : {low, normal, high, critical}) group->Push(t);
  runner_.Open();
  ASSERT_TRUE(runner_.WaitFor(5));
  EXPECT_EQ(runner_.order(), (std::vector<Task*>{gate, critical, high, normal, low}));
  group->StopAccepting();
  group->Join();
}

TEST_F(WorkerGroupTest, AntiStarvationGuardLetsLowThrough) {
  auto group = MakeGroup(8);
  ASSERT_TRUE(group->Resize(1).ok());
  Task* gate = NewTask(storage::Priority::kCritical);
  group->Push(gate);
  ASSERT_TRUE(runner_.WaitFor(1));
  for (int i = 0; i < 200; ++i) group->Push(NewTask(storage::Priority::kCritical));
  Task* low = NewTask(storage::Priority::kLow);
  group->Push(low);
  runner_.Open();
  ASSERT_TRUE(runner_.WaitFor(202));
  auto order = runner_.order();
  size_t pos = std::find(order.begin(), order.end(), low) - order.begin();
  // With a guard every 8th pick cycling LOW, NORMAL, HIGH, LOW gets a turn within 24 picks.
  EXPECT_LE(pos, 30u);
  group->StopAccepting();
  group->Join();
}

TEST_F(WorkerGroupTest, IdleWorkersParkAndPushWakesThem) {
  auto group = MakeGroup(32);
  runner_.Open();
  ASSERT_TRUE(group->Resize(4).ok());
  ASSERT_TRUE(WaitParked(*group, 4));
  uint64_t wakeups = group->wakeups();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(group->wakeups(), wakeups) << "parked workers woke up with no work";
  for (int i = 0; i < 100; ++i) group->Push(NewTask(storage::Priority::kNormal));
  ASSERT_TRUE(runner_.WaitFor(100));
  group->StopAccepting();
  group->Join();
}

// Tasks pushed inside a storage::CallbackBatch (a store answering a commit) wake the parked
// workers once, when the batch ends, as many as there are tasks: none runs before (the workers
// stay parked), all run after.
TEST_F(WorkerGroupTest, PushesInACallbackBatchWakeWorkersWhenItEnds) {
  auto group = MakeGroup(32);
  runner_.Open();
  ASSERT_TRUE(group->Resize(3).ok());
  for (int round = 0; round < 20; ++round) {
    if (round == 0) {
      ASSERT_TRUE(WaitParked(*group, 3));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // some park, some not
    }
    {
      storage::CallbackBatch batch;
      for (int i = 0; i < 1 + round % 5; ++i) group->Push(NewTask(storage::Priority::kNormal));
      if (round == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        EXPECT_TRUE(runner_.order().empty()) << "a parked worker was woken inside the batch";
      }
    }
    ASSERT_TRUE(runner_.WaitFor(tasks_.size())) << "tasks of round " << round << " never ran";
  }
  group->StopAccepting();
  group->Join();
}

// Workers look beyond their own deque only at levels that may hold work, and a level's mark
// is cleared whenever they find it empty. Tasks pushed one at a time at changing levels (each
// level drained, its mark cleared, the workers often parked in between) and from two threads
// at once must all be found: a task pushed in the window of a clear is never stranded.
TEST_F(WorkerGroupTest, EveryLevelIsFoundAgainAfterItWasDrained) {
  auto group = MakeGroup(32);
  runner_.Open();
  ASSERT_TRUE(group->Resize(3).ok());
  const storage::Priority levels[] = {storage::Priority::kCritical, storage::Priority::kLow,
                                      storage::Priority::kHigh, storage::Priority::kNormal};
  size_t pushed = 0;
  for (int round = 0; round < 400; ++round) {
    if (round % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // park
    group->Push(NewTask(levels[round % 4]));
    ASSERT_TRUE(runner_.WaitFor(++pushed)) << "task of round " << round << " never ran";
  }
  std::vector<Task*> batch[2];
  for (int i = 0; i < 4000; ++i) batch[i % 2].push_back(NewTask(levels[(i / 2) % 4]));
  std::thread other([&] {
    for (Task* t : batch[1]) group->Push(t);
  });
  for (Task* t : batch[0]) group->Push(t);
  other.join();
  ASSERT_TRUE(runner_.WaitFor(pushed + 4000));
  group->StopAccepting();
  group->Join();
  EXPECT_EQ(runner_.order().size(), pushed + 4000);
}

TEST_F(WorkerGroupTest, ResizeDownReturnsDequedTasksAndUpRestarts) {
  auto group = MakeGroup(32);
  runner_.Open();
  ASSERT_TRUE(group->Resize(4).ok());
  EXPECT_EQ(group->workers(), 4);
  for (int i = 0; i < 1000; ++i) group->Push(NewTask(storage::Priority::kNormal));
  ASSERT_TRUE(group->Resize(1).ok());
  EXPECT_EQ(group->workers(), 1);
  for (int i = 0; i < 1000; ++i) group->Push(NewTask(storage::Priority::kNormal));
  ASSERT_TRUE(group->Resize(3).ok());
  ASSERT_TRUE(runner_.WaitFor(2000));
  EXPECT_FALSE(group->Resize(0).ok());
  EXPECT_FALSE(group->Resize(WorkerGroup::kMaxWorkers + 1).ok());
  group->StopAccepting();
  group->Join();
  EXPECT_TRUE(group->TakeAllQueued().empty());
  // Each task ran exactly once.
  auto order = runner_.order();
  std::sort(order.begin(), order.end());
  EXPECT_EQ(std::adjacent_find(order.begin(), order.end()), order.end());
  EXPECT_EQ(order.size(), 2000u);
}

}  // namespace
}  // namespace bmos::engine
