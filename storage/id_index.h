// IdIndex: an open-addressing hash map from TaskId to a small value (a pointer, a slot number),
// for one of the 2^kShardBits shards of an index (callers pick the shard with ShardOf). The
// engine's live tasks (Task*) and the memory store's records (slot numbers) are found by it.
//
// Linear probing with backward-shift deletion (no tombstones), load factor at most 1/2. One probe
// usually touches one cache line, and inserts and erases allocate nothing except when the table
// grows, which matters at millions of tasks per second (a node-based map costs an allocation, a
// free and two cache misses per task). Ids made one after another are placed side by side (see
// Mix). Not thread-safe: callers guard each shard with a mutex.
#ifndef BMOS_STORAGE_ID_INDEX_H_
#define BMOS_STORAGE_ID_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "storage/task_id.h"

namespace bmos::storage {

// V: a pointer or an unsigned integer; V{} (null, 0) marks an empty slot and is never stored.
template <typename V, int kShardBits>
class IdIndex {
 public:
  IdIndex() : slots_(kMinCapacity), mask_(kMinCapacity - 1) {}

  // The shard that holds `id`: ids made one after another go to the same shard in runs.
  static size_t ShardOf(const TaskId& id) {
    return static_cast<size_t>(Mix(id) & ((uint64_t{1} << kShardBits) - 1));
  }

  size_t size() const { return size_; }

  // The value of `id`, or V{}.
  V Find(const TaskId& id) const {
    for (size_t i = Home(id);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.value == V{}) return V{};
      if (s.id == id) return s.value;
    }
  }

  // The value of `id`, after inserting make_value() when `id` is absent: one probe sequence for
  // both (a Find and then an Insert would walk it twice). Returns the value and whether it was
  // inserted. make_value is called only to insert, and must not return V{}.
  template <typename MakeValue>
  std::pair<V, bool> FindOrInsert(const TaskId& id, MakeValue&& make_value) {
    if ((size_ + 1) * 2 > slots_.size()) Rehash(slots_.size() * 2);
    size_t i = Home(id);
    for (;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.value == V{}) break;
      if (s.id == id) return {s.value, false};
    }
    const V value = make_value();
    slots_[i] = Slot{id, value};
    ++size_;
    return {value, true};
  }

  // REQUIRES: value != V{} and no entry with `id` exists.
  void Insert(const TaskId& id, V value) {
    if ((size_ + 1) * 2 > slots_.size()) Rehash(slots_.size() * 2);
    size_t i = Home(id);
    while (slots_[i].value != V{}) i = (i + 1) & mask_;
    slots_[i] = Slot{id, value};
    ++size_;
  }

  // How many slots a lookup of `id` examines (1 when it sits at its home); for tests.
  size_t ProbeLength(const TaskId& id) const {
    size_t n = 1;
    for (size_t i = Home(id); slots_[i].value != V{} && !(slots_[i].id == id);
         i = (i + 1) & mask_) {
      ++n;
    }
    return n;
  }

  // Removes `id`; false if it was not there.
  bool Erase(const TaskId& id) {
    size_t i = Home(id);
    for (;; i = (i + 1) & mask_) {
      if (slots_[i].value == V{}) return false;
      if (slots_[i].id == id) break;
    }
    // Backward shift: pull later entries of the probe run into the hole when their home
    // position allows it, so lookups never need tombstones.
    size_t hole = i;
    for (size_t j = (i + 1) & mask_; slots_[j].value != V{}; j = (j + 1) & mask_) {
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
      if (s.value != V{}) f(s.id, s.value);
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
    TaskId id;
    V value{};  // V{} = empty
  };

  // Ids are placed in runs of 2^kRunBits consecutive sequence numbers (TaskId::sequence): a run
  // goes to one shard and to neighbouring slots there, and only the runs are scattered, by a
  // hash. Ids made one after another (and, as tasks mostly finish in order, erased one after
  // another) thus share cache lines: a burst of tasks costs a cache miss per run instead of one
  // per insert and per erase. Ids made far apart (one per millisecond, or by another process)
  // are scattered like any hash's keys, so no pattern of ids piles up in a few slots.
  static constexpr int kRunBits = 3;
  static uint64_t Mix(const TaskId& id) {
    const uint64_t h = (id.sequence() >> kRunBits) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
  }
  size_t Home(const TaskId& id) const {
    const uint64_t run = Mix(id) >> kShardBits;
    const uint64_t in_run = id.sequence() & ((uint64_t{1} << kRunBits) - 1);
    return static_cast<size_t>((run << kRunBits) | in_run) & mask_;
  }

  void Rehash(size_t capacity) {
    std::vector<Slot> old(capacity);
    old.swap(slots_);
    mask_ = capacity - 1;
    size_ = 0;
    for (const Slot& s : old) {
      if (s.value == V{}) continue;
      size_t i = Home(s.id);
      while (slots_[i].value != V{}) i = (i + 1) & mask_;
      slots_[i] = s;
      ++size_;
    }
  }

  std::vector<Slot> slots_;
  size_t mask_;
  size_t size_ = 0;
};

}  // namespace bmos::storage

#endif  // BMOS_STORAGE_ID_INDEX_H_
