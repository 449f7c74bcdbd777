// Sleeper: lets a background thread sleep until a time on a Clock, or until woken.
//
// With a real clock it waits on a condition variable for the remaining time (at most 5 s per
// wait, so a step of the wall clock is noticed within 5 s). With a manual clock it registers a
// listener and waits until the clock moves far enough. Wake() may be called from any thread;
// SleepUntil from one thread at a time.
#ifndef BMOS_ENGINE_INTERNAL_SLEEPER_H_
#define BMOS_ENGINE_INTERNAL_SLEEPER_H_

#include <condition_variable>
#include <cstdint>
#include <limits>
#include <mutex>

#include "engine/clock.h"

namespace bmos::engine::internal {

inline constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

class Sleeper {
 public:
  // `clock` must outlive the Sleeper.
  explicit Sleeper(Clock* clock);
  ~Sleeper();
  Sleeper(const Sleeper&) = delete;
  Sleeper& operator=(const Sleeper&) = delete;

  // Returns once clock time >= deadline_us (kNever: only Wake ends it) or Wake() was called
  // after this call began or since the previous SleepUntil returned.
  void SleepUntil(int64_t deadline_us);
  void Wake();

 private:
  Clock* clock_;
  uint64_t listener_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t wakes_ = 0;     // GUARDED_BY(mu_): Wake() calls so far
  uint64_t consumed_ = 0;  // GUARDED_BY(mu_): wakes already answered by a return
};

}  // namespace bmos::engine::internal

#endif  // BMOS_ENGINE_INTERNAL_SLEEPER_H_
