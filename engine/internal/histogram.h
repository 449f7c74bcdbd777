// Histogram: a fixed-size log-linear histogram of durations in microseconds.
//
// Who may call what: one writer thread calls Record (each worker owns its histograms, so
// recording is two relaxed load/store pairs, no read-modify-write); any thread may call
// MergeInto to read it. Readers may see a sample's bucket before the count or vice versa; stats
// tolerate that. Bucket i covers values with a relative width of 1/16 (about 6% resolution), from
// 1 µs to ~2^40 µs (12 days); larger values land in the last bucket.
#ifndef BMOS_ENGINE_INTERNAL_HISTOGRAM_H_
#define BMOS_ENGINE_INTERNAL_HISTOGRAM_H_

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>

namespace bmos::engine::internal {

class Histogram {
 public:
  static constexpr int kSubBits = 4;  // 16 sub-buckets per power of two
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kBuckets = (41 - kSubBits) * kSub + kSub;

  // Bucket index of `micros`: exact below 16, then 16 sub-buckets per power of two.
  static int BucketOf(uint64_t micros) {
    if (micros < kSub) return static_cast<int>(micros);
    int msb = 63 - std::countl_zero(micros);  // >= kSubBits
    int shift = msb - kSubBits;
    int index = (shift + 1) * kSub + static_cast<int>((micros >> shift) & (kSub - 1));
    return index < kBuckets ? index : kBuckets - 1;
  }
  // The smallest value of bucket `index` (its lower bound).
  static uint64_t LowerBound(int index) {
    if (index < kSub) return static_cast<uint64_t>(index);
    int shift = index / kSub - 1;
    return (static_cast<uint64_t>(kSub + index % kSub)) << shift;
  }

  // Writer only.
  void Record(uint64_t micros) {
    auto& b = buckets_[BucketOf(micros)];
    // Relaxed load+store, not fetch_add: this thread is the only writer.
    b.store(b.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    count_.store(count_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (micros > max_.load(std::memory_order_relaxed)) {
      max_.store(micros, std::memory_order_relaxed);
    }
  }

  // A plain (non-atomic) copy that readers merge and query.
  struct Snapshot {
    std::array<uint64_t, kBuckets> buckets{};
    uint64_t count = 0;
    uint64_t max = 0;

    // The value at quantile q in [0, 1], in microseconds (a bucket's lower bound, or the exact
    // maximum for q == 1). 0 when empty.
    uint64_t Quantile(double q) const;
  };

  // Any thread. Adds this histogram's counts to `out`.
  void MergeInto(Snapshot& out) const {
    for (int i = 0; i < kBuckets; ++i)
      out.buckets[i] += buckets_[i].load(std::memory_order_relaxed);
    out.count += count_.load(std::memory_order_relaxed);
    uint64_t m = max_.load(std::memory_order_relaxed);
    if (m > out.max) out.max = m;
  }

 private:
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> max_{0};
};

inline uint64_t Histogram::Snapshot::Quantile(double q) const {
  if (count == 0) return 0;
  if (q >= 1.0) return max;
  uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(count));  // 0-based
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets[i];
    if (seen > rank) {
      uint64_t v = LowerBound(i);
      return v < max ? v : max;
    }
  }
  return max;
}

}  // namespace bmos::engine::internal

#endif  // BMOS_ENGINE_INTERNAL_HISTOGRAM_H_
