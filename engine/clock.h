// Clock: the only way engine code reads the time, so tests can drive time by hand.
//
// SystemClock reads the real wall clock. ManualClock stays where a test puts it; moving it
// wakes every component that sleeps until a time (timers, scheduler) through the listeners they
// registered. Both are thread-safe.
#ifndef BMOS_ENGINE_CLOCK_H_
#define BMOS_ENGINE_CLOCK_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

namespace bmos::engine {

class Clock {
 public:
  virtual ~Clock() = default;

  // Microseconds since the Unix epoch.
  virtual int64_t NowMicros() const = 0;
  int64_t NowMillis() const { return NowMicros() / 1000; }

  // The wall time (as NowMicros) and a steady reading (SteadyMicros) taken together, for code
  // that needs both at once: a task's start and end give its record's times and its queue-wait
  // and run-time statistics. Default: one reading of each.
  struct Reading {
    int64_t wall_us;
    int64_t steady_us;
  };
  virtual Reading Now() const { return {NowMicros(), SteadyMicros()}; }

  // Microseconds of std::chrono::steady_clock: never steps; for measuring durations.
  static int64_t SteadyMicros();

  // True if time only moves when a test moves it: components then wait for a listener call
  // instead of sleeping in real time.
  virtual bool IsManual() const { return false; }

  // Registers `on_change`, called (from the thread that moved the clock) after every change of a
  // manual clock. Returns a handle for RemoveListener. A SystemClock never calls it.
  virtual uint64_t AddListener(std::function<void()> on_change) {
    (void)on_change;
    return 0;
  }
  // After this returns, the listener is not running and will not be called again.
  virtual void RemoveListener(uint64_t handle) { (void)handle; }
};

// The real clock (std::chrono::system_clock). A process-wide instance; never destroyed. Its
// Now() reads only the steady clock and adds the wall clock's offset from it, read again at
// least every 10 ms: one clock read instead of two, and a step of the wall clock shows in Now()
// within 10 ms (NowMicros sees it at once).
Clock* SystemClock();

// A clock that moves only when told. Starts at `start_micros`.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_micros = 1'767'225'600'000'000)  // 2026-01-01T00:00:00Z
      : now_(start_micros) {}

  int64_t NowMicros() const override { return now_.load(std::memory_order_acquire); }
  bool IsManual() const override { return true; }
  uint64_t AddListener(std::function<void()> on_change) override;
  void RemoveListener(uint64_t handle) override;

  // Moves the clock forward (or back, if negative) and calls the listeners.
  void AdvanceMicros(int64_t delta);
  void AdvanceMillis(int64_t delta) { AdvanceMicros(delta * 1000); }
  void SetMicros(int64_t now);

 private:
  void Notify();

  // Pairs with the acquire load in NowMicros: a reader that sees the new time sees what the
  // mover wrote before moving it.
  std::atomic<int64_t> now_;
  std::mutex mu_;  // serialises listener calls with RemoveListener
  std::map<uint64_t, std::function<void()>> listeners_;  // GUARDED_BY(mu_)
  uint64_t next_handle_ = 1;                             // GUARDED_BY(mu_)
};

}  // namespace bmos::engine

#endif  // BMOS_ENGINE_CLOCK_H_
