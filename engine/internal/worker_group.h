// WorkerGroup: the threads that serve a set of queues.
//
// Each queue has one lock-free MPMC queue per priority level (internal::QueueSlot). A worker
// picks CRITICAL before HIGH before NORMAL before LOW; at each level it tries its own deque, then
// the shared queues (taking up to `dequeue_batch` tasks at once into its deque), then steals from
// the other workers' deques. Every `anti_starvation_interval`-th pick tries one lower level first
// (LOW, NORMAL, HIGH in turn), so no level starves. Tasks enqueued by a handler running on one of
// the group's workers go to that worker's deque. Idle workers park on a futex (no spinning when
// idle) and a push wakes one of them; pushes inside a storage::CallbackBatch (a store answering a
// group commit) wake them once, at the end of the batch, as many as the batch pushed tasks.
//
// Thread-safety: Push, Resize, StopAccepting, Join and the stat readers may be called from any
// thread; a worker's deque is pushed and popped by that worker only (others steal). Resize calls
// are serialised by an internal mutex.
#ifndef BMOS_ENGINE_INTERNAL_WORKER_GROUP_H_
#define BMOS_ENGINE_INTERNAL_WORKER_GROUP_H_

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/internal/counters.h"
#include "engine/internal/histogram.h"
#include "engine/internal/task.h"
#include "engine/internal/work_deque.h"
#include "storage/status.h"

namespace bmos::engine {

// What a worker records about the tasks it runs; written by that worker only.
struct WorkerStats {
  internal::Histogram queue_wait;  // µs from runnable to start
  internal::Histogram run_time;    // µs of handler time
  internal::RateWindow completed;
  internal::RateWindow failed;
  std::atomic<bool> busy{false};  // relaxed: a statistic
};

// Runs one task on the calling worker thread; implemented by the engine.
class TaskRunner {
 public:
  virtual ~TaskRunner() = default;
  // Takes ownership of `task`.
  virtual void RunTask(internal::Task* task, WorkerStats& stats) = 0;
};

class WorkerGroup {
 public:
  static constexpr int kMaxWorkers = 256;

  // `runner` must outlive the group; `queues` are the group's slots (they must outlive it).
  WorkerGroup(std::string name, std::vector<internal::QueueSlot*> queues, TaskRunner* runner,
              int anti_starvation_interval, int dequeue_batch);
  ~WorkerGroup();
  WorkerGroup(const WorkerGroup&) = delete;
  WorkerGroup& operator=(const WorkerGroup&) = delete;

  const std::string& name() const { return name_; }
  const std::vector<internal::QueueSlot*>& queues() const { return queues_; }

  // Starts or stops workers so that `workers` run. REQUIRES: 1 <= workers <= kMaxWorkers.
  // Workers taken away finish their current task and return the tasks in their deque.
  storage::Status Resize(int workers);

  // Any thread: makes `task` runnable; the group owns it from now on.
  void Push(internal::Task* task);

  // Workers stop taking tasks (they finish the one they run) and exit; wakes parked ones.
  void StopAccepting();
  // True once no worker runs a task; false if `deadline` passed first.
  bool WaitIdle(std::chrono::steady_clock::time_point deadline) const;
  // Joins every worker thread. REQUIRES: StopAccepting was called.
  void Join();
  // After Join: removes and returns every task still queued (shared queues and deques).
  std::vector<internal::Task*> TakeAllQueued();

  // True on one of this group's worker threads (inside a handler it runs).
  bool OnWorkerThread() const;

  int workers() const { return active_.load(std::memory_order_relaxed); }
  int busy() const;
  // Adds every worker's histograms and rates (including retired workers') to the outputs.
  void CollectStats(internal::Histogram::Snapshot& queue_wait,
                    internal::Histogram::Snapshot& run_time, int64_t now_s, int seconds,
                    uint64_t& completed, uint64_t& failed) const;
  // Times a parked worker woke up (tests check that idle workers stay parked).
  uint64_t wakeups() const { return wakeups_.Sum(); }
  // Workers that found no work and are parked or about to park (tests wait for them to park).
  int idle() const { return idle_.load(std::memory_order_relaxed); }

 private:
  struct Worker {
    Worker(WorkerGroup* group, int index);
    WorkerGroup* group;
    int index;
    std::thread thread;
    std::atomic<bool> retire{false};  // release by Resize, acquire by the worker
    std::array<internal::WorkDeque<internal::Task>, storage::kPriorityCount> deques;
    // tokens[q][level]: the worker's consumer token for queue q's level, which lets moodycamel
    // resume where this consumer left off instead of rescanning every producer.
    std::vector<std::array<std::unique_ptr<moodycamel::ConsumerToken>, storage::kPriorityCount>>
        tokens;
    std::vector<internal::Task*> buffer;  // bulk dequeue scratch
    uint64_t picks = 0;
    unsigned guard_turn = 0;
    size_t next_queue = 0;
    WorkerStats stats;
  };

  void Loop(Worker* w);
  internal::Task* Next(Worker& w);
  internal::Task* TakeAtLevel(Worker& w, int level);
  // A task of `level` from the shared queues.
  internal::Task* TakeShared(Worker& w, int level);
  // A task of `level` from another worker's deque; sets *left when one still holds some.
  internal::Task* Steal(Worker& w, int level, bool* left);
  // Sets the bit of `level` in levels_with_work_ (none when level < 0). REQUIRES: a full
  // barrier since the task of that level was pushed.
  void MarkLevel(int level);
  void PushShared(internal::Task* task);
  // After a push of a task of `level` (-1: none, only passing a wake-up on): marks the level,
  // then wakes a parked worker unless one is spinning.
  void WakeOne(int level);
  void WakeAll();
  // Wakes one parked worker, if any, even while others spin (work sits in a worker's deque).
  void WakeParked(int level);
  // Inside a storage::CallbackBatch on the calling thread: leaves the wake-up for one more
  // pushed task to the end of the batch (WakeDeferred) and returns true. False outside one.
  bool DeferWake();
  // The end of a batch that pushed `tasks` tasks: wakes as many parked workers (at most).
  static void WakeDeferred(void* group, int tasks);
  // Bumps the parking epoch and wakes up to `workers` parked workers (INT_MAX: all).
  void WakeUpTo(int workers);

  const std::string name_;
  const std::vector<internal::QueueSlot*> queues_;
  TaskRunner* const runner_;
  const int anti_starvation_interval_;
  const int dequeue_batch_;

  std::mutex resize_mu_;  // serialises Resize and Join
  // Slots ever created; a slot is never freed before the group, so thieves may read any slot
  // below created_ without a lock. created_ is stored with release after the slot is set.
  std::array<std::unique_ptr<Worker>, kMaxWorkers> slots_;
  std::atomic<int> created_{0};
  std::atomic<int> active_{0};
  std::atomic<bool> accepting_{true};

  // Parking: a worker that found nothing registers in idle_, reads epoch_, checks the queues once
  // more and waits for epoch_ to change. A pusher publishes its task, then (after a seq_cst
  // fence) reads idle_ and bumps epoch_ if anyone may be parked. The fences on both sides make
  // "task visible to the parker" or "parker visible to the pusher" always true.
  alignas(64) std::atomic<int> idle_{0};
  // Workers looking for work before they park. A pusher that sees one skips the wake-up; a
  // spinner leaves this count only after joining idle_, so a pusher sees at least one of them.
  alignas(64) std::atomic<int> spinning_{0};
  alignas(64) std::atomic<uint32_t> epoch_{0};
  // Bit L set: a shared queue or some worker's deque may hold a task of priority level L. A worker
  // looks beyond its own deque only at the levels set here, so a pick costs nothing at levels
  // that have no work (with only NORMAL tasks, CRITICAL and HIGH were scanned on every pick).
  // Publishing a task: push it, full barrier, set the bit if clear (MarkLevel). A worker that
  // found a level empty clears its bit and then looks once more: a push it missed either shows
  // up in that second look or sets the bit again after the clear (the Dekker pattern of idle_).
  alignas(64) std::atomic<uint32_t> levels_with_work_{0};
  internal::ShardedCounter wakeups_;
};

}  // namespace bmos::engine

#endif  // BMOS_ENGINE_INTERNAL_WORKER_GROUP_H_
