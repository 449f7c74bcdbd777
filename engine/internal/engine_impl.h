// EngineImpl: the engine behind the Engine facade (engine/engine.h has the contract).
//
// Threads: callers (enqueue, get, cancel, ...), the workers of each group (run tasks), the delay
// timer thread (ETA, backoff, timeouts) and the janitor thread (retention). Shared state:
//   - handlers_: registry, append-only, behind handlers_mu_; hot lookups use a per-thread cache
//     invalidated by handlers_version_.
//   - queues_ / groups_: built at Open, immutable afterwards (group sizes change inside groups).
//   - live index: shards of TaskId -> Task*, each behind its own mutex.
//   - unique keys: key -> TaskId behind unique_mu_; a keyed enqueue reserves its key before it
//     writes and settles it after, so two enqueues of one key cannot both create a task.
// No engine lock is ever held while waiting for a store write: the store's commit thread runs
// the engine's callbacks (OnOutcomeWritten), which take the index and key locks.
// See internal/task.h for who owns a Task and the lock order.
#ifndef BMOS_ENGINE_INTERNAL_ENGINE_IMPL_H_
#define BMOS_ENGINE_INTERNAL_ENGINE_IMPL_H_

#include <atomic>
#include <boost/container/small_vector.hpp>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/engine.h"
#include "engine/internal/counters.h"
#include "engine/internal/sleeper.h"
#include "engine/internal/task.h"
#include "engine/internal/timer.h"
#include "engine/internal/worker_group.h"
#include "engine/retry_policy.h"
#include "storage/id_index.h"

namespace bmos::engine {

class EngineImpl final : public TaskRunner {
 public:
  explicit EngineImpl(EngineOptions options);
  ~EngineImpl() override;

  // Validates options (no side effects).
  static Status Validate(const EngineOptions& options);
  // Builds queues and groups, recovers live tasks and starts the threads.
  Status Start();

  Status RegisterHandler(std::string name, Handler handler, HandlerOptions options);
  std::vector<std::string> HandlerNames() const;
  // Enqueues all of `requests` (moved from) or none. `one`, when not null, receives the result of
  // a single request without building a vector (the hot path).
  Result<std::vector<EnqueueResult>> Enqueue(std::span<EnqueueRequest> requests,
                                             EnqueueResult* one = nullptr);
  // Engine::EnqueueAsync.
  void EnqueueAsync(std::vector<EnqueueRequest> requests, EnqueueCallback done);
  Result<TaskRecord> Get(const TaskId& id) const;
  Status ValidateEnqueue(const EnqueueRequest& request) const {
    Checked checked;
    return Check(request, &checked);
  }
  void SetTaskEndObserver(TaskEndObserver observer);
  Status Cancel(const TaskId& id);
  Result<ListPage> List(const ListQuery& query) const;
  EngineStats Stats() const;
  Result<TaskRecord> Wait(const TaskId& id, std::chrono::milliseconds timeout) const;
  Status ResizeGroup(std::string_view group, int workers);
  Status Stop(std::chrono::milliseconds drain);
  Result<size_t> RunRetentionOnce();

  storage::TaskStore& store() const { return *store_; }
  Clock& clock() const { return *clock_; }

  // TaskRunner: runs one attempt on the calling worker.
  void RunTask(internal::Task* task, WorkerStats& stats) override;

  // The store's answer to WriteOutcome: publishes the outcome (OK) or schedules a rewrite.
  void OnOutcomeWritten(internal::Task* task, const Status& status);

  // TaskContext::ReportProgress.
  void ReportProgress(internal::Task* task, double fraction, std::string_view message);

 private:
  struct Prepared {
    std::unique_ptr<internal::Task> task;
    int64_t run_at_us = 0;  // 0 = runnable now
  };
  static constexpr int kIndexShardBits = 6;
  static constexpr size_t kIndexShards = size_t{1} << kIndexShardBits;
  struct alignas(64) IndexShard {
    mutable std::mutex mu;
    storage::IdIndex<internal::Task*, kIndexShardBits> tasks;  // GUARDED_BY(mu)
  };

  using ReservedKeys = std::vector<std::pair<std::string, TaskId>>;
  class AsyncEnqueue;

  // What Check found out about a request.
  struct Checked {
    const internal::HandlerEntry* entry = nullptr;
    internal::QueueSlot* queue = nullptr;
    int32_t max_retries = 0;
    std::chrono::milliseconds timeout{0};
  };
  // Validates `request` without side effects (InvalidArgument naming the field).
  Status Check(const EnqueueRequest& request, Checked* out) const;
  Result<Prepared> Prepare(EnqueueRequest& request, int64_t now_us);
  // Prepares every request into `prepared` (same size) or returns the first error (naming its
  // index in a batch); Unavailable once stopping. `has_keys`: some request has a unique key.
  // Sets *steady_us to the steady time read with the enqueue's wall time.
  Status PrepareAll(std::span<EnqueueRequest> requests, std::span<Prepared> prepared,
                    bool* has_keys, int64_t* steady_us);
  // Reserves the unique keys of `prepared`. Sets create[i] = false (and results[i] to the live
  // task) for requests whose key a live task or an earlier request of the batch holds; adds the
  // keys it reserved to `reserved`. May wait for a concurrent reservation of the same key.
  void ReserveKeys(std::span<Prepared> prepared, std::span<EnqueueResult> results,
                   std::vector<bool>& create, ReservedKeys& reserved);
  // Ends the reservations: kept (the tasks exist) when `written`, dropped otherwise.
  void SettleKeys(const ReservedKeys& reserved, bool written);
  // A task indexed by Index, waiting for DispatchAll.
  struct Admitted {
    internal::Task* task;
    int64_t run_at_us;
  };
  // On the stack for a single enqueue (the hot path): no allocation per task.
  using AdmittedList = boost::container::small_vector<Admitted, 1>;
  // Indexes and counts the tasks to create (`create` empty: all of them) and lists them in
  // `admitted` for DispatchAll.
  void Index(std::span<Prepared> prepared, const std::vector<bool>& create, AdmittedList& admitted);
  // Hands indexed tasks to the timer or their group. `steady_us`: the steady time now, when the
  // caller has it; 0 reads the clock.
  void DispatchAll(const AdmittedList& admitted, int64_t steady_us = 0);
  // Index, then DispatchAll.
  void Admit(std::span<Prepared> prepared, const std::vector<bool>& create, int64_t steady_us);
  // The records to write for the tasks to create (none in memory mode): one task's record in
  // place, several copied into `storage`. Valid until the tasks are handed to the store's
  // callback or freed.
  std::span<const TaskRecord> RecordsToWrite(std::span<Prepared> prepared,
                                             const std::vector<bool>& create,
                                             std::vector<TaskRecord>& storage) const;
  const internal::HandlerEntry* FindHandler(std::string_view name) const;
  std::string KnownHandlersText() const;
  // "queue 'x' is not served by any worker group (served: a, b)".
  std::string UnservedQueueText(std::string_view queue) const;
  IndexShard& ShardOf(const TaskId& id) const {
    return index_[decltype(IndexShard::tasks)::ShardOf(id)];
  }
  // Hands a runnable or delayed task to the timer or its group.
  // `steady_us` as for DispatchAll.
  void Dispatch(internal::Task* task, int64_t run_at_us, int64_t steady_us = 0);
  // Timer callbacks.
  void OnDue(internal::Task* task);
  void OnTimeout(const TaskId& id, int attempt);
  // After a task turned terminal (its record is written and mu released): forget it and free it.
  void Retire(internal::Task* task);
  // A Task for a new enqueue: a recycled one when available.
  std::unique_ptr<internal::Task> AllocateTask();
  // Returns a finished task (out of the index, nobody else holding it) for reuse.
  void RecycleTask(internal::Task* task);
  // Drops `key` (if not empty) from the live unique keys when it still maps to `id`.
  void ReleaseUniqueKey(const std::string& key, const TaskId& id);
  // Writes `records` to the store in batches of at most 1000; stops at the first error.
  Status WriteInChunks(const std::vector<TaskRecord>& records);
  // Frees a task that someone else made terminal (Cancel) once they are done with it.
  static void FreeAfterOthers(internal::Task* task);
  void NotifyWaiters() const;
  // Moves one task of `queue` between live-state counts; terminal states are not counted.
  static void CountLive(internal::QueueSlot* queue, TaskState from, TaskState to);
  // Writes a Cancel's record (no lock held), then makes the task CANCELLED if it was written.
  Status FinishCancel(const TaskId& id, const TaskRecord& cancelled);
  // Hands task->outcome to the store without waiting; OnOutcomeWritten continues.
  void WriteOutcome(internal::Task* task);
  void JanitorLoop();
  double NextJitterDraw();
  int64_t NowUs() const { return clock_->NowMicros(); }

  EngineOptions options_;
  Clock* clock_;
  std::shared_ptr<storage::TaskStore> store_;  // set by Start when options_.store is null
  RetryPolicy retry_policy_;
  // True when the store logs every transition (sync, async). In `memory` mode there is no log to
  // recover from, so only terminal records go to the store (for get, list and retention) and the
  // live index is the truth for live tasks: one store write per task instead of four.
  const bool persist_live_;
  const uint64_t uid_;  // distinguishes engines in per-thread caches

  // Queues and groups: built in Start, immutable afterwards.
  std::vector<std::unique_ptr<internal::QueueSlot>> queue_slots_;
  std::map<std::string, internal::QueueSlot*, std::less<>> queues_;
  std::vector<std::unique_ptr<WorkerGroup>> groups_;

  mutable std::shared_mutex handlers_mu_;
  std::map<std::string, std::unique_ptr<internal::HandlerEntry>, std::less<>> handlers_;
  std::atomic<uint64_t> handlers_version_{0};  // bumped (release) after each registration
  // Recovered tasks whose handler is not registered yet, by task name; RegisterHandler
  // dispatches them. GUARDED_BY(handlers_mu_)
  std::map<std::string, std::vector<internal::Task*>, std::less<>> awaiting_handler_;

  mutable std::array<IndexShard, kIndexShards> index_;

  // Unique keys of live tasks. `reserved` while the enqueue that took the key writes its record;
  // unique_cv_ tells waiters when reservations settle.
  struct UniqueKeyEntry {
    TaskId id;
    bool reserved = false;
  };
  std::mutex unique_mu_;
  std::condition_variable unique_cv_;
  std::unordered_map<std::string, UniqueKeyEntry> unique_keys_;  // GUARDED_BY(unique_mu_)

  std::unique_ptr<internal::DelayTimer> timer_;

  std::mutex jitter_mu_;
  std::mt19937_64 jitter_rng_;  // GUARDED_BY(jitter_mu_)

  // Wait(): a terminal transition of a watched task notifies wait_cv_ under wait_mu_; a waiter
  // checks the state under wait_mu_, so the notification cannot fall between check and wait.
  mutable std::mutex wait_mu_;
  mutable std::condition_variable wait_cv_;

  // Engine::SetTaskEndObserver. The current observer is read with one atomic load per ended
  // task; every observer ever installed stays in observers_ until the engine is destroyed, so a
  // call that loaded an older one may finish safely.
  void NotifyTaskEnd(const TaskRecord& record) const {
    const TaskEndObserver* observer = end_observer_.load(std::memory_order_acquire);
    if (observer != nullptr) (*observer)(record);
  }
  std::atomic<const TaskEndObserver*> end_observer_{nullptr};
  std::mutex observers_mu_;
  std::vector<std::unique_ptr<TaskEndObserver>> observers_;  // GUARDED_BY(observers_mu_)

  internal::ShardedCounter enqueued_, completed_, failed_, retried_, cancelled_;
  int64_t started_at_s_ = 0;

  std::unique_ptr<internal::Sleeper> janitor_sleeper_;
  std::thread janitor_;
  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;
  bool stopped_ = false;  // GUARDED_BY(stop_mu_)
};

}  // namespace bmos::engine

#endif  // BMOS_ENGINE_INTERNAL_ENGINE_IMPL_H_
