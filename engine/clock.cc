#include "engine/clock.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "engine/internal/sleeper.h"

namespace bmos::engine {
namespace {

class RealClock final : public Clock {
 public:
  int64_t NowMicros() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  Reading Now() const override {
    const int64_t steady = SteadyMicros();
    int64_t offset = offset_.load(std::memory_order_relaxed);
    if (steady - synced_at_.load(std::memory_order_relaxed) >= kResyncUs) {
      // Racing threads may each resync; every result is a fresh offset, so any one will do.
      offset = NowMicros() - steady;
      offset_.store(offset, std::memory_order_relaxed);
      synced_at_.store(steady, std::memory_order_relaxed);
    }
    return {steady + offset, steady};
  }

 private:
  static constexpr int64_t kResyncUs = 10'000;
  // Wall clock minus steady clock, as last read; and the steady time of that reading. The
  // first Now() finds synced_at_ far in the past and reads the offset.
  mutable std::atomic<int64_t> offset_{0};
  mutable std::atomic<int64_t> synced_at_{INT64_MIN / 2};
};

}  // namespace

int64_t Clock::SteadyMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Clock* SystemClock() {
  static RealClock* clock = new RealClock();  // never destroyed: threads may read it at exit
  return clock;
}

uint64_t ManualClock::AddListener(std::function<void()> on_change) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t handle = next_handle_++;
  listeners_.emplace(handle, std::move(on_change));
  return handle;
}

void ManualClock::RemoveListener(uint64_t handle) {
  std::lock_guard<std::mutex> lock(mu_);
  listeners_.erase(handle);
}

void ManualClock::AdvanceMicros(int64_t delta) {
  now_.fetch_add(delta, std::memory_order_acq_rel);
  Notify();
}

void ManualClock::SetMicros(int64_t now) {
  now_.store(now, std::memory_order_release);
  Notify();
}

void ManualClock::Notify() {
  // Listeners run under mu_ so that RemoveListener, once it returns, guarantees the listener is
  // not running; listeners must therefore not call back into this clock's listener methods.
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [handle, fn] : listeners_) fn();
}

namespace internal {

Sleeper::Sleeper(Clock* clock) : clock_(clock) {
  if (clock_->IsManual()) {
    listener_ = clock_->AddListener([this] {
      // Taking mu_ orders this notify after a sleeper's time check, so no wake-up is lost.
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    });
  }
}

Sleeper::~Sleeper() {
  if (listener_ != 0) clock_->RemoveListener(listener_);
}

void Sleeper::SleepUntil(int64_t deadline_us) {
  std::unique_lock<std::mutex> lock(mu_);
  while (wakes_ == consumed_) {
    int64_t now = clock_->NowMicros();
    if (now >= deadline_us) return;
    if (clock_->IsManual()) {
      cv_.wait(lock);
    } else {
      int64_t wait_us = std::min<int64_t>(deadline_us - now, 5'000'000);
      cv_.wait_for(lock, std::chrono::microseconds(wait_us));
    }
  }
  consumed_ = wakes_;
}

void Sleeper::Wake() {
  std::lock_guard<std::mutex> lock(mu_);
  ++wakes_;
  cv_.notify_all();
}

}  // namespace internal
}  // namespace bmos::engine
