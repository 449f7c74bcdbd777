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
};

}  // namespace

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
