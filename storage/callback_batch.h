// CallbackBatch: marks a stretch of one thread that runs many callbacks in a row (a store
// answering the writes of a group commit, the engine dispatching a batch of tasks). Code run
// inside may defer an action that the whole batch needs only once to the end of the stretch: the
// engine's worker wake-up, a futex call that per callback cost more than the callback's own work
// (most of those calls found nobody left to wake: the worker woken by the first had not run yet).
//
// Thread-local, no locks. Scopes nest; the outermost one runs the deferred actions when it ends,
// outside any scope (an action that pushes more work acts at once). An action deferred several
// times in one batch (same function and argument) runs once, told how many times it was
// deferred (the engine wakes that many workers at most). A deferring caller must make sure its
// argument outlives the scope (see the rule for stores in task_store.h: a write is answered, and
// its writer may go on, only after the batch's deferred actions ran).
#ifndef BMOS_STORAGE_CALLBACK_BATCH_H_
#define BMOS_STORAGE_CALLBACK_BATCH_H_

#include <array>
#include <cstddef>

namespace bmos::storage {

class CallbackBatch {
 public:
  // `times`: how often the action was deferred in the batch (at least 1).
  using Action = void (*)(void* arg, int times);
  // Most actions a batch defers; beyond it, Defer declines and the caller acts at once.
  static constexpr size_t kMaxDeferred = 8;

  CallbackBatch() { ++State().depth; }
  ~CallbackBatch() {
    PerThread& s = State();
    if (--s.depth == 0) RunDeferred(s);
  }
  CallbackBatch(const CallbackBatch&) = delete;
  CallbackBatch& operator=(const CallbackBatch&) = delete;

  // True inside a scope on the calling thread.
  static bool Active() { return State().depth > 0; }

  // Runs `fn(arg, times)` when the outermost scope of the calling thread ends. True if deferred
  // (or already deferred in this batch: `times` grows); false outside a scope or when
  // kMaxDeferred other actions are waiting: the caller then acts itself.
  static bool Defer(Action fn, void* arg) {
    PerThread& s = State();
    if (s.depth == 0) return false;
    for (size_t i = 0; i < s.count; ++i) {
      if (s.items[i].fn == fn && s.items[i].arg == arg) {
        ++s.items[i].times;
        return true;
      }
    }
    if (s.count == kMaxDeferred) return false;
    s.items[s.count++] = {fn, arg, 1};
    return true;
  }

 private:
  struct Deferred {
    Action fn;
    void* arg;
    int times;
  };
  struct PerThread {
    int depth = 0;
    size_t count = 0;
    std::array<Deferred, kMaxDeferred> items{};
  };

  static PerThread& State() {
    static thread_local PerThread state;
    return state;
  }

  // Oldest first. An action may defer nothing (no scope is open while it runs).
  static void RunDeferred(PerThread& s) {
    const size_t n = s.count;
    std::array<Deferred, kMaxDeferred> items = s.items;
    s.count = 0;
    for (size_t i = 0; i < n; ++i) items[i].fn(items[i].arg, items[i].times);
  }
};

}  // namespace bmos::storage

#endif  // BMOS_STORAGE_CALLBACK_BATCH_H_
