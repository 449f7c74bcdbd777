#include "engine/internal/worker_group.h"

#include <pthread.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <exception>

#include "storage/callback_batch.h"
#include "storage/futex.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BMOS_CPU_RELAX() _mm_pause()
#else
#define BMOS_CPU_RELAX() std::this_thread::yield()
#endif

namespace bmos::engine {

using internal::Task;

namespace {
// The worker running on this thread, so a handler's enqueue can use its worker's deque.
thread_local void* tls_worker_group = nullptr;
thread_local void* tls_worker = nullptr;

// A StoreLoad barrier: the caller's earlier writes are visible before its later reads.
// ThreadSanitizer does not model atomic_thread_fence (gcc refuses it under -fsanitize=thread), so
// there a seq_cst read-modify-write on a private atomic gives the same ordering in its model.
inline void FullBarrier() {
#if defined(__SANITIZE_THREAD__)
  thread_local std::atomic<int> dummy{0};
  dummy.fetch_add(0, std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

// Polls before parking. Parking and waking cost a futex call each (~5-50 µs), so a worker that
// just ran out of work looks again a few times first; short enough to cost nothing when idle.
constexpr int kSpinsBeforePark = 64;
}  // namespace

WorkerGroup::Worker::Worker(WorkerGroup* g, int i)
    : group(g), index(i), buffer(static_cast<size_t>(g->dequeue_batch_)) {
  tokens.resize(g->queues_.size());
  for (size_t q = 0; q < g->queues_.size(); ++q) {
    for (int l = 0; l < storage::kPriorityCount; ++l) {
      tokens[q][l] = std::make_unique<moodycamel::ConsumerToken>(g->queues_[q]->levels[l]);
    }
  }
}

WorkerGroup::WorkerGroup(std::string name, std::vector<internal::QueueSlot*> queues,
                         TaskRunner* runner, int anti_starvation_interval, int dequeue_batch)
    : name_(std::move(name)),
      queues_(std::move(queues)),
      runner_(runner),
      anti_starvation_interval_(anti_starvation_interval),
      dequeue_batch_(dequeue_batch) {}

WorkerGroup::~WorkerGroup() {
  StopAccepting();
  Join();
}

storage::Status WorkerGroup::Resize(int workers) {
  if (workers < 1 || workers > kMaxWorkers) {
    return storage::Status::InvalidArgument("workers must be within 1.." +
                                            std::to_string(kMaxWorkers));
  }
  std::lock_guard<std::mutex> lock(resize_mu_);
  if (!accepting_.load(std::memory_order_acquire)) {
    return storage::Status::Unavailable("worker group '" + name_ + "' is stopping");
  }
  int active = active_.load(std::memory_order_relaxed);
  if (workers > active) {
    for (int i = active; i < workers; ++i) {
      Worker* w = slots_[i].get();
      if (w == nullptr) {
        slots_[i] = std::make_unique<Worker>(this, i);
        w = slots_[i].get();
        // Release: a thief that reads created_ with acquire sees the slot fully built.
        created_.store(i + 1, std::memory_order_release);
      } else if (w->thread.joinable()) {
        // A retired worker still finishing its last task: wait for it before reusing the slot.
        w->thread.join();
      }
      w->retire.store(false, std::memory_order_release);
      w->thread = std::thread([this, w] { Loop(w); });
    }
  } else {
    for (int i = workers; i < active; ++i) {
      slots_[i]->retire.store(true, std::memory_order_release);
    }
    WakeAll();
  }
  active_.store(workers, std::memory_order_relaxed);
  return storage::Status::Ok();
}

void WorkerGroup::Push(Task* task) {
  // A handler enqueueing into its own group keeps the work local; idle workers steal it.
  if (tls_worker_group == this) {
    auto* w = static_cast<Worker*>(tls_worker);
    // Read before the push: once pushed, the task belongs to whoever takes it.
    const int level = static_cast<int>(task->priority());
    if (!w->retire.load(std::memory_order_relaxed) && w->deques[level].Push(task)) {
      WakeOne(level);
      return;
    }
  }
  PushShared(task);
}

void WorkerGroup::PushShared(Task* task) {
  // Read before the push: once pushed, the task belongs to whoever takes it.
  const int level = static_cast<int>(task->priority());
  if (!task->queue->levels[level].enqueue(task)) {
    // moodycamel fails only when it cannot allocate a block: the process is out of memory.
    std::fputs("bmos: out of memory in task queue\n", stderr);
    std::terminate();
  }
  WakeOne(level);
}
void WorkerGroup::MarkLevel(int level) {
  if (level < 0) return;
  // The caller's full barrier separates the push from this load (see levels_with_work_).
  const uint32_t bit = uint32_t{1} << level;
  if ((levels_with_work_.load(std::memory_order_relaxed) & bit) == 0) {
    levels_with_work_.fetch_or(bit, std::memory_order_seq_cst);
  }
}

void WorkerGroup::WakeOne(int level) {
  // Pairs with FullBarrier in Loop after idle_.fetch_add: either the parker sees our task, or
  // we see the parker in idle_.
  FullBarrier();
  // Before any wake-up: a woken worker looks only at levels marked.
  MarkLevel(level);
  // A spinning worker will find the task without a futex call (the costly part of a push).
  if (spinning_.load(std::memory_order_relaxed) > 0) return;
  if (idle_.load(std::memory_order_relaxed) > 0) {
    // One of many pushes in a row (a commit's tasks): one futex call for all, at the end. One
    // per push cost the answering thread a system call per task, and most found nobody to wake
    // (the worker the first one woke had not run yet).
    if (level >= 0 && DeferWake()) return;
    WakeUpTo(1);
  }
}
void WorkerGroup::WakeUpTo(int workers) {
  epoch_.fetch_add(1, std::memory_order_release);
  storage::FutexWake(epoch_, workers);
}
bool WorkerGroup::DeferWake() {
  return storage::CallbackBatch::Defer(&WorkerGroup::WakeDeferred, this);
}
void WorkerGroup::WakeDeferred(void* group, int tasks) {
  auto* g = static_cast<WorkerGroup*>(group);
  // The batch's pushes came before this barrier, so as in WakeOne a worker that parks from now
  // on finds them, and one parked before is seen in idle_. Workers that were parked when the
  // tasks were pushed and left since look for work again before they park.
  FullBarrier();
  if (g->idle_.load(std::memory_order_relaxed) > 0) {
    g->WakeUpTo(std::min(tasks, kMaxWorkers));
  }
}
void WorkerGroup::WakeParked(int level) {
  // A spinning worker takes at most one of the tasks on offer here (a batch in one worker's
  // deque), so unlike WakeOne this wakes a parked worker even while others spin.
  FullBarrier();
  MarkLevel(level);
  if (idle_.load(std::memory_order_relaxed) > 0) WakeUpTo(1);
}
void WorkerGroup::WakeAll() { WakeUpTo(INT_MAX); }

void WorkerGroup::StopAccepting() {
  accepting_.store(false, std::memory_order_release);
  WakeAll();
}

bool WorkerGroup::WaitIdle(std::chrono::steady_clock::time_point deadline) const {
  // Polling is fine here: it runs only while the engine stops.
  for (;;) {
    if (busy() == 0) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void WorkerGroup::Join() {
  std::lock_guard<std::mutex> lock(resize_mu_);
  WakeAll();
  int created = created_.load(std::memory_order_acquire);
  for (int i = 0; i < created; ++i) {
    if (slots_[i]->thread.joinable()) slots_[i]->thread.join();
  }
}

std::vector<Task*> WorkerGroup::TakeAllQueued() {
  std::vector<Task*> tasks;
  int created = created_.load(std::memory_order_acquire);
  for (int i = 0; i < created; ++i) {
    for (auto& d : slots_[i]->deques) {
      while (Task* t = d.Steal()) tasks.push_back(t);
    }
  }
  for (internal::QueueSlot* q : queues_) {
    for (auto& level : q->levels) {
      Task* t;
      while (level.try_dequeue(t)) tasks.push_back(t);
    }
  }
  return tasks;
}

bool WorkerGroup::OnWorkerThread() const { return tls_worker_group == this; }

int WorkerGroup::busy() const {
  int n = 0;
  int created = created_.load(std::memory_order_acquire);
  for (int i = 0; i < created; ++i) {
    if (slots_[i]->stats.busy.load(std::memory_order_relaxed)) ++n;
  }
  return n;
}

void WorkerGroup::CollectStats(internal::Histogram::Snapshot& queue_wait,
                               internal::Histogram::Snapshot& run_time, int64_t now_s, int seconds,
                               uint64_t& completed, uint64_t& failed) const {
  int created = created_.load(std::memory_order_acquire);
  for (int i = 0; i < created; ++i) {
    const WorkerStats& s = slots_[i]->stats;
    s.queue_wait.MergeInto(queue_wait);
    s.run_time.MergeInto(run_time);
    completed += s.completed.CountSince(now_s, seconds);
    failed += s.failed.CountSince(now_s, seconds);
  }
}

void WorkerGroup::Loop(Worker* w) {
  pthread_setname_np(pthread_self(), "bmos-worker");  // for top -H, perf and gdb
  tls_worker_group = this;
  tls_worker = w;
  auto should_exit = [&] {
    return w->retire.load(std::memory_order_acquire) || !accepting_.load(std::memory_order_acquire);
  };
  while (!should_exit()) {
    Task* t = Next(*w);
    if (t == nullptr) {
      // Spinning: pushers need not wake anyone while we look (see WakeOne).
      spinning_.fetch_add(1, std::memory_order_seq_cst);
      for (int spin = 0; t == nullptr && spin < kSpinsBeforePark; ++spin) {
        BMOS_CPU_RELAX();
        t = Next(*w);
      }
      if (t != nullptr) {
        spinning_.fetch_sub(1, std::memory_order_seq_cst);
        // Pushes skipped their wake-up while we spun; pass it on so work that arrived in a
        // burst does not wait for this one task to finish.
        WakeOne(-1);
        runner_->RunTask(t, w->stats);
        continue;
      }
      // Register as idle before we stop spinning, so a pusher always sees one or the other.
      idle_.fetch_add(1, std::memory_order_seq_cst);
      spinning_.fetch_sub(1, std::memory_order_seq_cst);
      FullBarrier();  // pairs with the one in WakeOne (see the comment on idle_)
      uint32_t epoch = epoch_.load(std::memory_order_acquire);
      if (!should_exit()) t = Next(*w);
      if (t == nullptr) {
        if (!should_exit()) {
          storage::FutexWait(epoch_, epoch);  // returns early at times: the loop looks again
          wakeups_.Add();
        }
        idle_.fetch_sub(1, std::memory_order_relaxed);
        continue;
      }
      idle_.fetch_sub(1, std::memory_order_relaxed);
    }
    runner_->RunTask(t, w->stats);
  }
  // A retired worker hands back what it had taken, so nothing waits on a gone worker.
  if (w->retire.load(std::memory_order_acquire) && accepting_.load(std::memory_order_acquire)) {
    for (auto& d : w->deques) {
      while (Task* t = d.Pop()) PushShared(t);
    }
  }
  tls_worker_group = nullptr;
  tls_worker = nullptr;
}

Task* WorkerGroup::Next(Worker& w) {
  ++w.picks;
  if (anti_starvation_interval_ > 0 &&
      w.picks % static_cast<uint64_t>(anti_starvation_interval_) == 0) {
    int guard = static_cast<int>(w.guard_turn++ % 3);  // LOW, NORMAL, HIGH in turn
    if (Task* t = TakeAtLevel(w, guard)) return t;
  }
  for (int level = storage::kPriorityCount - 1; level >= 0; --level) {
    if (Task* t = TakeAtLevel(w, level)) return t;
  }
  return nullptr;
}

Task* WorkerGroup::TakeAtLevel(Worker& w, int level) {
  if (Task* t = w.deques[level].Pop()) return t;
  const uint32_t bit = uint32_t{1} << level;
  if ((levels_with_work_.load(std::memory_order_acquire) & bit) == 0) return nullptr;
  bool left = false;  // a victim's deque still holds tasks (our steal lost a race for one)
  auto look = [&]() -> Task* {
    Task* t = TakeShared(w, level);
    return t != nullptr ? t : Steal(w, level, &left);
  };
  if (Task* t = look()) return t;
  if (left) return nullptr;  // the bit stays: the next pick tries again
  // Nothing there: clear the bit, then look once more (see levels_with_work_).
  levels_with_work_.fetch_and(~bit, std::memory_order_seq_cst);
  Task* t = look();
  // More may have come with it, or be left in a deque: set the bit back.
  if (t != nullptr || left) levels_with_work_.fetch_or(bit, std::memory_order_seq_cst);
  return t;
}

Task* WorkerGroup::TakeShared(Worker& w, int level) {
  const size_t n = queues_.size();
  for (size_t i = 0; i < n; ++i) {
    size_t q = (w.next_queue + i) % n;
    size_t got = queues_[q]->levels[level].try_dequeue_bulk(*w.tokens[q][level], w.buffer.data(),
                                                            w.buffer.size());
    if (got == 0) continue;
    w.next_queue = (q + 1) % n;  // the next pick starts at the next queue: fairness
    // The tasks come from other threads' caches: fetch the lines a run touches first (record,
    // lock, state, handler) now, for all of them at once, instead of one miss after another.
    for (size_t k = 0; k < got; ++k) {
      const char* p = reinterpret_cast<const char*>(w.buffer[k]);
      for (size_t line = 0; line < 4; ++line) __builtin_prefetch(p + 64 * line, 1);
    }
    // Keep the first; push the rest newest-first so the owner's LIFO pops return them oldest-first.
    for (size_t k = got - 1; k >= 1; --k) {
      if (!w.deques[level].Push(w.buffer[k])) PushShared(w.buffer[k]);
    }
    if (got > 1) WakeParked(level);  // someone idle may steal part of the batch
    return w.buffer[0];
  }
  return nullptr;
}

Task* WorkerGroup::Steal(Worker& w, int level, bool* left) {
  int created = created_.load(std::memory_order_acquire);
  for (int k = 1; k < created; ++k) {
    Worker* victim = slots_[(w.index + k) % created].get();
    if (Task* t = victim->deques[level].Steal()) {
      // More left there: pass the wake-up on, so a batch spreads over every idle worker.
      if (!victim->deques[level].Empty()) WakeParked(level);
      return t;
    }
    // Empty, or another thief (or the owner) won the race for the top task.
    if (!victim->deques[level].Empty()) *left = true;
  }
  return nullptr;
}

}  // namespace bmos::engine
