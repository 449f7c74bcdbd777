// TaskIndex: an open-addressing hash map from TaskId to Task*, for one shard of the live index.
//
// Linear probing with backward-shift deletion (no tombstones), load factor at most 1/2. One probe
// usually touches one cache line, and inserts and erases allocate nothing except when the table
// grows, which matters at millions of tasks per second (a node-based map costs an allocation, a
// free and two cache misses per task). Not thread-safe: the engine guards each shard with a mutex.
#ifndef BMOS_ENGINE_INTERNAL_TASK_INDEX_H_
#define BMOS_ENGINE_INTERNAL_TASK_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "storage/task_id.h"

namespace bmos::engine::internal {

struct Task;

class TaskIndex {
 public:
  TaskIndex() : slots_(kMinCapacity), mask_(kMinCapacity - 1) {}

  size_t size() const { return size_; }

  // The task with `id`, or null.
  Task* Find(const storage::TaskId& id) const {
    for (size_t i = Home(id);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.task == nullptr) return nullptr;
      if (s.id == id) return s.task;
    }
  }

  // REQUIRES: task != null and no entry with `id` exists.
  void Insert(const storage::TaskId& id, Task* task) {
    if ((size_ + 1) * 2 > slots_.size()) Rehash(slots_.size() * 2);
    size_t i = Home(id);
    while (slots_[i].task != nullptr) i = (i + 1) & mask_;
    slots_[i] = Slot{id, task};
    ++size_;
  }

  // Removes `id`; false if it was not there.
  bool Erase(const storage::TaskId& id) {
    size_t i = Home(id);
    for (;; i = (i + 1) & mask_) {
      if (slots_[i].task == nullptr) return false;
      if (slots_[i].id == id) break;
    }
    // Backward shift: pull later entries of the probe run into the hole when their home
    // position allows it, so lookups never need tombstones.
    size_t hole = i;
    for (size_t j = (i + 1) & mask_; slots_[j].task != nullptr; j = (j + 1) & mask_) {
      size_t home = Home(slots_[j].id);
      // Move j into the hole if home is not cyclically within (hole, j].
      bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
      if (movable) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = Slot{};
    --size_;
    if (slots_.size() > kMinCapacity && size_ * 8 < slots_.size()) Rehash(slots_.size() / 2);
    return true;
  }

  template <typename F>
  void ForEach(F&& f) const {
    for (const Slot& s : slots_) {
      if (s.task != nullptr) f(s.id, s.task);
    }
  }

  void Clear() {
    slots_.assign(kMinCapacity, Slot{});
    mask_ = kMinCapacity - 1;
    size_ = 0;
  }

 private:
  static constexpr size_t kMinCapacity = 64;
  struct Slot {
    storage::TaskId id;
    Task* task = nullptr;  // null = empty
  };

  size_t Home(const storage::TaskId& id) const {
    // The engine picks the shard from the low bits of the same hash; use the high bits here.
    return static_cast<size_t>(storage::TaskIdHash()(id) >> 16) & mask_;
  }

  void Rehash(size_t capacity) {
    std::vector<Slot> old(capacity);
    old.swap(slots_);
    mask_ = capacity - 1;
    size_ = 0;
    for (const Slot& s : old) {
      if (s.task == nullptr) continue;
      size_t i = Home(s.id);
      while (slots_[i].task != nullptr) i = (i + 1) & mask_;
      slots_[i] = s;
      ++size_;
    }
  }

  std::vector<Slot> slots_;
  size_t mask_;
  size_t size_ = 0;
};

}  // namespace bmos::engine::internal

#endif  // BMOS_ENGINE_INTERNAL_TASK_INDEX_H_
