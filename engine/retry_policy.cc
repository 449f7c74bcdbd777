#include "engine/retry_policy.h"

#include <algorithm>
#include <cmath>

namespace bmos::engine {

storage::Status RetryPolicy::Validate(const RetryOptions& o) {
  using storage::Status;
  if (o.base.count() <= 0) return Status::InvalidArgument("retry.base must be > 0 ms");
  if (o.cap < o.base) return Status::InvalidArgument("retry.cap must be >= retry.base");
  if (!(o.multiplier >= 1.0) || !std::isfinite(o.multiplier)) {
    return Status::InvalidArgument("retry.multiplier must be a finite number >= 1");
  }
  if (!(o.jitter >= 0.0 && o.jitter <= 1.0)) {
    return Status::InvalidArgument("retry.jitter must be within [0, 1]");
  }
  return Status::Ok();
}

int64_t RetryPolicy::DelayMillis(int attempt, double u) const {
  const double base = static_cast<double>(options_.base.count());
  const double cap = static_cast<double>(options_.cap.count());
  // pow may overflow to inf for large attempts; min() with cap handles it.
  double d = base * std::pow(options_.multiplier, std::max(0, attempt - 1));
  d = std::min(d, cap);
  d *= 1.0 + options_.jitter * (2.0 * u - 1.0);
  return std::max<int64_t>(0, static_cast<int64_t>(std::llround(d)));
}

}  // namespace bmos::engine
