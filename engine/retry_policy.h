// RetryPolicy: how long a task waits before its next attempt.
//
// delay(attempt) = min(cap, base * multiplier^(attempt-1)), then spread by +-jitter (a fraction)
// with a random draw, and never below zero. A pure function of its inputs: the random draw is
// passed in, so tests check exact values. Thread-safe (immutable).
#ifndef BMOS_ENGINE_RETRY_POLICY_H_
#define BMOS_ENGINE_RETRY_POLICY_H_

#include <chrono>
#include <cstdint>

#include "storage/status.h"

namespace bmos::engine {

struct RetryOptions {
  // Delay before the second attempt. Default: 1 s.
  std::chrono::milliseconds base{1000};
  // Upper bound of any delay, before jitter. Default: 10 min.
  std::chrono::milliseconds cap{600'000};
  // Growth per attempt. Must be >= 1. Default: 2 (1 s, 2 s, 4 s, ...).
  double multiplier = 2.0;
  // Each delay is scaled by a uniform factor in [1-jitter, 1+jitter], so a burst of failures does
  // not retry in lock step. 0 disables it. Must be in [0, 1]. Default: 0.2.
  double jitter = 0.2;
};

class RetryPolicy {
 public:
  explicit RetryPolicy(const RetryOptions& options) : options_(options) {}

  // InvalidArgument naming the bad field, or OK.
  static storage::Status Validate(const RetryOptions& options);

  // Delay after failed attempt number `attempt` (1 = the first attempt failed), given a uniform
  // draw `u` in [0, 1). Milliseconds, >= 0.
  int64_t DelayMillis(int attempt, double u) const;

 private:
  RetryOptions options_;
};

}  // namespace bmos::engine

#endif  // BMOS_ENGINE_RETRY_POLICY_H_
