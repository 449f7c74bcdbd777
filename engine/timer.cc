#include "engine/internal/timer.h"

namespace bmos::engine::internal {

DelayTimer::DelayTimer(Clock* clock, std::function<void(Task*)> on_due,
                       std::function<void(const storage::TaskId&, int)> on_timeout)
    : clock_(clock),
      on_due_(std::move(on_due)),
      on_timeout_(std::move(on_timeout)),
      sleeper_(clock) {}

DelayTimer::~DelayTimer() { Stop(); }

void DelayTimer::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void DelayTimer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  sleeper_.Wake();
  if (thread_.joinable()) thread_.join();
}

void DelayTimer::ScheduleTask(Task* task, int64_t due_us) {
  bool earliest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.insert(Entry{due_us, next_seq_++, task, task->id(), 0}).first;
    earliest = it == entries_.begin();
  }
  if (earliest) sleeper_.Wake();  // the thread may be sleeping until a later time
}

DelayTimer::Handle DelayTimer::ScheduleTimeout(const storage::TaskId& id, int attempt,
                                               int64_t due_us) {
  Handle handle{due_us, 0};
  bool earliest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    handle.seq = next_seq_++;
    auto it = entries_.insert(Entry{due_us, handle.seq, nullptr, id, attempt}).first;
    earliest = it == entries_.begin();
  }
  if (earliest) sleeper_.Wake();
  return handle;
}

bool DelayTimer::CancelTimeout(Handle handle) {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.erase(Entry{handle.due_us, handle.seq, nullptr, {}, 0}) > 0;
}

int64_t DelayTimer::RunOnce(int64_t now_us) {
  std::vector<Entry> due;
  int64_t next = kNever;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.begin();
    while (it != entries_.end() && it->due_us <= now_us) ++it;
    due.assign(entries_.begin(), it);
    entries_.erase(entries_.begin(), it);
    if (!entries_.empty()) next = entries_.begin()->due_us;
  }
  // Callbacks run unlocked: they take task and index locks, and may schedule again.
  for (const Entry& e : due) {
    if (e.task != nullptr) {
      on_due_(e.task);
    } else {
      on_timeout_(e.id, e.attempt);
    }
  }
  return next;
}

std::vector<Task*> DelayTimer::TakeAllTasks() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Task*> tasks;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->task != nullptr) {
      tasks.push_back(it->task);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  return tasks;
}

size_t DelayTimer::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

void DelayTimer::Loop() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    int64_t next = RunOnce(clock_->NowMicros());
    sleeper_.SleepUntil(next);
  }
}

}  // namespace bmos::engine::internal
