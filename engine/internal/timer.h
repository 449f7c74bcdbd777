// DelayTimer: holds tasks until they may run (ETA, retry backoff) and fires attempt timeouts.
//
// One thread sleeps until the earliest due time on the engine's Clock (no polling) and hands due
// work to the callbacks given at construction, outside its lock. While a Task is scheduled here
// the timer is its holder (see internal/task.h). Thread-safety: Schedule*, Cancel* and RunOnce
// may be called from any thread; Start and Stop from the owner (the engine). Stop is idempotent
// and joins the thread.
#ifndef BMOS_ENGINE_INTERNAL_TIMER_H_
#define BMOS_ENGINE_INTERNAL_TIMER_H_

#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "engine/clock.h"
#include "engine/internal/sleeper.h"
#include "engine/internal/task.h"

namespace bmos::engine::internal {

class DelayTimer {
 public:
  struct Entry {
    int64_t due_us;
    uint64_t seq;  // tie-breaker: equal due times fire in scheduling order
    Task* task;    // a task to release, or null for a timeout
    storage::TaskId id;
    int attempt;  // timeouts: the attempt they belong to
    bool operator<(const Entry& o) const {
      return due_us != o.due_us ? due_us < o.due_us : seq < o.seq;
    }
  };
  // Identifies a scheduled timeout by its key in the ordered set (never dangles).
  struct Handle {
    int64_t due_us = 0;
    uint64_t seq = 0;
  };

  // `on_due(task)` receives each task whose time has come (ownership passes to it);
  // `on_timeout(id, attempt)` is called for each expired timeout. Both run on the timer thread
  // (or the RunOnce caller) without the timer's lock held. `clock` must outlive the timer.
  DelayTimer(Clock* clock, std::function<void(Task*)> on_due,
             std::function<void(const storage::TaskId&, int)> on_timeout);
  ~DelayTimer();

  void Start();
  void Stop();

  // Takes ownership of `task` until `due_us` (Unix µs on the clock).
  void ScheduleTask(Task* task, int64_t due_us);
  // Calls on_timeout(id, attempt) at due_us unless cancelled first.
  Handle ScheduleTimeout(const storage::TaskId& id, int attempt, int64_t due_us);
  // Removes a timeout that has not fired. Returns false if it already fired (or is firing).
  bool CancelTimeout(Handle handle);

  // Fires everything due at `now_us`; returns the next due time or kNever.
  int64_t RunOnce(int64_t now_us);

  // Removes and returns every task still held (the engine frees them at stop).
  std::vector<Task*> TakeAllTasks();

  size_t size() const;

 private:
  void Loop();

  Clock* clock_;
  std::function<void(Task*)> on_due_;
  std::function<void(const storage::TaskId&, int)> on_timeout_;
  Sleeper sleeper_;
  mutable std::mutex mu_;
  std::set<Entry> entries_;  // GUARDED_BY(mu_); ordered by due time
  uint64_t next_seq_ = 0;    // GUARDED_BY(mu_)
  bool stop_ = false;        // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace bmos::engine::internal

#endif  // BMOS_ENGINE_INTERNAL_TIMER_H_
