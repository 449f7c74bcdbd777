// The statistics' view of a latency histogram: quantiles and fixed Prometheus buckets.
#ifndef BMOS_ENGINE_INTERNAL_PERCENTILES_H_
#define BMOS_ENGINE_INTERNAL_PERCENTILES_H_

#include "engine/engine.h"
#include "engine/internal/histogram.h"

namespace bmos::engine::internal {

// `h` (microseconds) as EngineStats::Percentiles (milliseconds, kBucketBoundsMs buckets).
EngineStats::Percentiles ToPercentiles(const Histogram::Snapshot& h);

}  // namespace bmos::engine::internal

#endif  // BMOS_ENGINE_INTERNAL_PERCENTILES_H_
