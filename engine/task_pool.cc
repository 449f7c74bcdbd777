#include "engine/internal/task_pool.h"

#include <array>
#include <mutex>
#include <vector>

#include "engine/internal/task.h"

namespace bmos::engine::internal {
namespace {

using Magazine = std::array<Task*, kMagazine>;

class Depot {
 public:
  // False when the depot is full (the caller keeps the tasks).
  bool Put(Task* const* tasks) {
    std::lock_guard<std::mutex> lock(mu_);
    if (full_.size() >= kMaxDepotMagazines) return false;
    Magazine& m = full_.emplace_back();
    std::copy(tasks, tasks + kMagazine, m.begin());
    return true;
  }
  // False when the depot is empty.
  bool Take(Task** tasks) {
    std::lock_guard<std::mutex> lock(mu_);
    if (full_.empty()) return false;
    std::copy(full_.back().begin(), full_.back().end(), tasks);
    full_.pop_back();
    return true;
  }
  size_t Size() {
    std::lock_guard<std::mutex> lock(mu_);
    return full_.size() * kMagazine;
  }

 private:
  std::mutex mu_;
  std::vector<Magazine> full_;  // GUARDED_BY(mu_)
};

// Never destroyed: a thread that exits after static destruction still hands its cache back.
Depot& TheDepot() {
  static Depot* depot = new Depot;
  return *depot;
}

struct LocalCache {
  std::array<Task*, 2 * kMagazine> tasks{};
  size_t n = 0;

  ~LocalCache() {
    while (n >= kMagazine && TheDepot().Put(&tasks[n - kMagazine])) n -= kMagazine;
    while (n > 0) delete tasks[--n];
  }
};

thread_local LocalCache cache;

}  // namespace

Task* TakePooledTask() {
  LocalCache& c = cache;
  if (c.n == 0) {
    if (!TheDepot().Take(c.tasks.data())) return nullptr;
    c.n = kMagazine;
  }
  return c.tasks[--c.n];
}

void GivePooledTask(Task* task) {
  LocalCache& c = cache;
  if (c.n == c.tasks.size()) {
    // Full: the older half goes to the depot (or is freed), the newer, warmer half stays.
    if (!TheDepot().Put(c.tasks.data())) {
      for (size_t i = 0; i < kMagazine; ++i) delete c.tasks[i];
    }
    std::copy(c.tasks.begin() + kMagazine, c.tasks.end(), c.tasks.begin());
    c.n = kMagazine;
  }
  c.tasks[c.n++] = task;
}

size_t PooledTasksInDepot() { return TheDepot().Size(); }

}  // namespace bmos::engine::internal
