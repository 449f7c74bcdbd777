// WorkDeque<T>: a bounded Chase-Lev work-stealing deque of pointers.
//
// Who may call what: the owner thread alone calls Push and Pop (LIFO end, "bottom"); any thread
// may call Steal (FIFO end, "top") and Size. Invariants: top_ <= bottom_ + 1 transiently during
// Pop; slots in [top_, bottom_) hold valid items; capacity is a fixed power of two, so Push fails
// (returns false) when full instead of growing, and the caller puts the item elsewhere.
//
// Orderings follow "Correct and Efficient Work-Stealing for Weak Memory Models" (Le, Pop, Cohen,
// Zappa Nardelli, PPoPP'13), with the standalone fences replaced by seq_cst operations on the
// indices, which ThreadSanitizer understands (it does not model atomic_thread_fence).
#ifndef BMOS_ENGINE_INTERNAL_WORK_DEQUE_H_
#define BMOS_ENGINE_INTERNAL_WORK_DEQUE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace bmos::engine::internal {

template <typename T>
class WorkDeque {
 public:
  // REQUIRES: capacity is a power of two >= 2.
  explicit WorkDeque(size_t capacity = 256)
      : mask_(static_cast<int64_t>(capacity) - 1), slots_(new std::atomic<T*>[capacity]) {
    for (size_t i = 0; i < capacity; ++i) slots_[i].store(nullptr, std::memory_order_relaxed);
  }
  WorkDeque(const WorkDeque&) = delete;
  WorkDeque& operator=(const WorkDeque&) = delete;

  // Owner only. False when full (the item was not added).
  bool Push(T* item) {
    int64_t b = bottom_.load(std::memory_order_relaxed);
    // Acquire pairs with the seq_cst CAS on top_ in Steal/Pop: we see how far thieves got.
    int64_t t = top_.load(std::memory_order_acquire);
    if (b - t > mask_) return false;
    slots_[b & mask_].store(item, std::memory_order_relaxed);
    // Release publishes the slot to a thief that reads bottom_ with acquire (seq_cst) in Steal.
    bottom_.store(b + 1, std::memory_order_seq_cst);
    return true;
  }

  // Owner only. The most recently pushed item, or null when empty.
  T* Pop() {
    int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    // seq_cst store then seq_cst load of top_: the store-load order that the paper's full fence
    // gives; a concurrent thief either sees the smaller bottom or we see its top increment.
    bottom_.store(b, std::memory_order_seq_cst);
    int64_t t = top_.load(std::memory_order_seq_cst);
    if (t > b) {  // empty
      bottom_.store(b + 1, std::memory_order_relaxed);
      return nullptr;
    }
    T* item = slots_[b & mask_].load(std::memory_order_relaxed);
    if (t == b) {  // last item: race a thief for it through top_
      if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
        item = nullptr;  // a thief took it
      }
      bottom_.store(b + 1, std::memory_order_relaxed);
    }
    return item;
  }

  // Any thread. The oldest item, or null when empty or when it lost a race (callers retry
  // elsewhere; a lost race means another thread made progress).
  T* Steal() {
    int64_t t = top_.load(std::memory_order_seq_cst);
    int64_t b = bottom_.load(std::memory_order_seq_cst);
    if (t >= b) return nullptr;
    // Relaxed is enough: the seq_cst load of bottom_ above synchronises with the Push that
    // wrote this slot, and the CAS below rejects a slot that was reused after we read it.
    T* item = slots_[t & mask_].load(std::memory_order_relaxed);
    if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
      return nullptr;
    }
    return item;
  }

  // Any thread. Approximate number of items (exact when only the owner is active).
  size_t Size() const {
    int64_t b = bottom_.load(std::memory_order_relaxed);
    int64_t t = top_.load(std::memory_order_relaxed);
    return b > t ? static_cast<size_t>(b - t) : 0;
  }
  bool Empty() const { return Size() == 0; }
  size_t capacity() const { return static_cast<size_t>(mask_ + 1); }

 private:
  // top_ and bottom_ sit on separate cache lines: thieves write top_, the owner writes bottom_,
  // and sharing a line would make every Push and Steal bounce it between cores.
  alignas(64) std::atomic<int64_t> top_{0};
  alignas(64) std::atomic<int64_t> bottom_{0};
  alignas(64) const int64_t mask_;
  std::unique_ptr<std::atomic<T*>[]> slots_;
};

}  // namespace bmos::engine::internal

#endif  // BMOS_ENGINE_INTERNAL_WORK_DEQUE_H_
