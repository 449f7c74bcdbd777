#include "engine/internal/histogram.h"

#include <gtest/gtest.h>

namespace bmos::engine::internal {
namespace {

TEST(Histogram, BucketsAreMonotonicAndBoundsContainTheirValues) {
  int last = -1;
  for (uint64_t v : {0ull, 1ull, 15ull, 16ull, 17ull, 31ull, 32ull, 33ull, 1000ull, 123456ull,
                     1ull << 30, (1ull << 40) - 1}) {
    int b = Histogram::BucketOf(v);
    EXPECT_GE(b, last);
    last = b;
    EXPECT_LE(Histogram::LowerBound(b), v);
    if (b + 1 < Histogram::kBuckets) {
      EXPECT_GT(Histogram::LowerBound(b + 1), v);
    }
  }
  EXPECT_EQ(Histogram::BucketOf(~0ull), Histogram::kBuckets - 1);
}

TEST(Histogram, RelativeErrorIsBelowSevenPercent) {
  for (uint64_t v = 16; v < (1ull << 36); v = v * 3 / 2 + 1) {
    uint64_t low = Histogram::LowerBound(Histogram::BucketOf(v));
    EXPECT_LE(static_cast<double>(v - low) / static_cast<double>(v), 1.0 / 16 + 1e-9) << v;
  }
}

TEST(Histogram, QuantilesOfAUniformSpread) {
  Histogram h;
  for (uint64_t v = 1; v <= 10'000; ++v) h.Record(v);
  Histogram::Snapshot s;
  h.MergeInto(s);
  EXPECT_EQ(s.count, 10'000u);
  EXPECT_EQ(s.max, 10'000u);
  EXPECT_NEAR(static_cast<double>(s.Quantile(0.5)), 5000, 5000 * 0.07);
  EXPECT_NEAR(static_cast<double>(s.Quantile(0.99)), 9900, 9900 * 0.07);
  EXPECT_EQ(s.Quantile(1.0), 10'000u);
  Histogram::Snapshot empty;
  EXPECT_EQ(empty.Quantile(0.5), 0u);
}

TEST(Histogram, MergeAddsCounts) {
  Histogram a, b;
  a.Record(10);
  b.Record(20);
  b.Record(30);
  Histogram::Snapshot s;
  a.MergeInto(s);
  b.MergeInto(s);
  EXPECT_EQ(s.count, 3u);
  EXPECT_EQ(s.max, 30u);
}

}  // namespace
}  // namespace bmos::engine::internal
