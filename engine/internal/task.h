// Task: the engine's in-memory handle of one live task (PENDING, RUNNING or RETRYING).
//
// Ownership: exactly one holder owns a Task at a time and alone may delete it: the shared queue
// or a worker's deque it waits in (passed on to the worker that takes it), or the delay timer.
// Other threads (Get, Cancel, timeouts) reach a Task only through the live index, under the
// index shard's lock, and then lock `mu`. A Task leaves the index (under the shard lock) when it
// turns terminal; after that a holder that locks and unlocks `mu` once knows nobody else is using
// it and may delete it. Lock order: index shard, then Task::mu, then the store's own locks.
#ifndef BMOS_ENGINE_INTERNAL_TASK_H_
#define BMOS_ENGINE_INTERNAL_TASK_H_

#include <concurrentqueue/concurrentqueue.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "engine/engine.h"
#include "engine/internal/counters.h"
#include "storage/task_record.h"
#include "storage/task_store.h"

namespace bmos::engine {
class EngineImpl;
class WorkerGroup;
}  // namespace bmos::engine

namespace bmos::engine::internal {

// Values of Task::cancel_flag.
inline constexpr uint8_t kNotCancelled = 0;
inline constexpr uint8_t kCancelByUser = 1;
inline constexpr uint8_t kCancelByTimeout = 2;

struct QueueSlot;

// A registered handler. Entries are never removed, so a pointer to one stays valid for the
// engine's life.
struct HandlerEntry {
  std::string name;
  Handler fn;
  HandlerOptions options;
  QueueSlot* queue = nullptr;  // the handler's default queue
};

// One named queue: a lock-free MPMC queue per priority level, served by one worker group.
struct QueueSlot {
  std::string name;
  WorkerGroup* group = nullptr;  // must outlive the slot; both live as long as the engine
  int index_in_group = 0;
  std::array<moodycamel::ConcurrentQueue<struct Task*>, storage::kPriorityCount> levels;
  // Live tasks of this queue by state (PENDING, RUNNING, RETRYING): the engine's own count, used
  // for stats when the store does not record live transitions (durability `memory`).
  std::array<ShardedCounter, 3> live;
};

struct Task;

// Tells the engine that a task's outcome record was written (or not). One per Task, so handing
// an outcome to the store allocates nothing.
struct OutcomeWritten final : storage::WriteCallback {
  EngineImpl* engine = nullptr;
  Task* task = nullptr;
  void OnWritten(const Status& status) override;  // engine.cc
};

struct Task {
  // The record as last written to the store (plus in-memory progress). GUARDED_BY(mu).
  storage::TaskRecord rec;
  std::mutex mu;
  // Mirrors rec.state for lock-free peeks (Wait, Stop); written only under mu (release), read
  // with acquire.
  std::atomic<storage::TaskState> state{storage::TaskState::kPending};
  // kCancelByUser / kCancelByTimeout once set; the CancelToken reads it (acquire) and Cancel /
  // the timeout write it (release) so the handler sees the state that led to the cancel.
  std::atomic<uint8_t> cancel_flag{kNotCancelled};
  // Set (under the index shard's lock) by Engine::Wait, so only terminal transitions that
  // someone waits for pay for a notification.
  bool watched = false;  // GUARDED_BY(index shard mu)
  // A Cancel is writing this task's CANCELLED record; workers set the task aside. GUARDED_BY(mu)
  bool cancel_in_flight = false;
  const HandlerEntry* handler = nullptr;  // immutable after enqueue
  QueueSlot* queue = nullptr;             // immutable after enqueue
  // Steady time (µs) at which the task last became runnable; the holder writes it before it
  // hands the task on, which publishes it.
  int64_t runnable_since_us = 0;
  // The outcome of the attempt that just ended, on its way to the store: built by the worker,
  // then owned by the write until OnOutcomeWritten swaps it into `rec` under mu.
  storage::TaskRecord outcome;
  int64_t retry_at_us = 0;       // when outcome is RETRYING: when to run again
  bool rewrite_outcome = false;  // held by the timer to write `outcome` again (store refused it)
  OutcomeWritten outcome_written;

  const storage::TaskId& id() const { return rec.spec->id; }
  storage::Priority priority() const { return rec.spec->priority; }
};

}  // namespace bmos::engine::internal

#endif  // BMOS_ENGINE_INTERNAL_TASK_H_
