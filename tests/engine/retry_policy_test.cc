#include "engine/retry_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace bmos::engine {
namespace {

using storage::Status;
using ::testing::HasSubstr;

RetryOptions NoJitter(int64_t base_ms, int64_t cap_ms, double multiplier = 2.0) {
  RetryOptions o;
  o.base = std::chrono::milliseconds(base_ms);
  o.cap = std::chrono::milliseconds(cap_ms);
  o.multiplier = multiplier;
  o.jitter = 0;
  return o;
}

TEST(RetryPolicy, DefaultsAreValid) {
  RetryOptions o;
  EXPECT_TRUE(RetryPolicy::Validate(o).ok());
  EXPECT_EQ(o.base, std::chrono::milliseconds(1000));
  EXPECT_EQ(o.cap, std::chrono::milliseconds(600'000));
  EXPECT_EQ(o.multiplier, 2.0);
  EXPECT_EQ(o.jitter, 0.2);
}

TEST(RetryPolicy, ExactExponentialDelaysWithoutJitter) {
  RetryPolicy p(NoJitter(1000, 600'000));
  EXPECT_EQ(p.DelayMillis(1, 0.0), 1000);
  EXPECT_EQ(p.DelayMillis(2, 0.0), 2000);
  EXPECT_EQ(p.DelayMillis(3, 0.0), 4000);
  EXPECT_EQ(p.DelayMillis(4, 0.7), 8000);  // the draw does not matter without jitter
  EXPECT_EQ(p.DelayMillis(10, 0.99), 512'000);
}

TEST(RetryPolicy, DelayIsCapped) {
  RetryPolicy p(NoJitter(1000, 600'000));
  EXPECT_EQ(p.DelayMillis(11, 0.0), 600'000);  // 1,024,000 capped
  EXPECT_EQ(p.DelayMillis(50, 0.0), 600'000);
  // Far past any double/int64 range of base * 2^(n-1): still the cap, never overflowed.
  EXPECT_EQ(p.DelayMillis(1000, 0.0), 600'000);
  EXPECT_EQ(p.DelayMillis(1'000'000, 0.5), 600'000);

  RetryPolicy small(NoJitter(100, 250));
  EXPECT_EQ(small.DelayMillis(1, 0.0), 100);
  EXPECT_EQ(small.DelayMillis(2, 0.0), 200);
  EXPECT_EQ(small.DelayMillis(3, 0.0), 250);
}

TEST(RetryPolicy, MultiplierOneIsConstant) {
  RetryPolicy p(NoJitter(300, 10'000, 1.0));
  for (int attempt = 1; attempt <= 20; ++attempt) EXPECT_EQ(p.DelayMillis(attempt, 0.3), 300);
}

TEST(RetryPolicy, FractionalMultiplier) {
  RetryPolicy p(NoJitter(1000, 100'000, 1.5));
  EXPECT_EQ(p.DelayMillis(1, 0.0), 1000);
  EXPECT_EQ(p.DelayMillis(2, 0.0), 1500);
  EXPECT_EQ(p.DelayMillis(3, 0.0), 2250);
}

TEST(RetryPolicy, JitterStaysWithinBounds) {
  RetryOptions o = NoJitter(1000, 600'000);
  o.jitter = 0.2;
  RetryPolicy p(o);
  for (int attempt = 1; attempt <= 12; ++attempt) {
    // 1000 * 2^(attempt-1), capped at 600,000.
    const double d = std::min(600'000.0, 1000.0 * static_cast<double>(1ll << (attempt - 1)));
    for (double u = 0.0; u < 1.0; u += 0.01) {
      const int64_t got = p.DelayMillis(attempt, u);
      EXPECT_GE(got, static_cast<int64_t>(d * 0.8) - 1) << "attempt " << attempt << " u " << u;
      EXPECT_LE(got, static_cast<int64_t>(d * 1.2) + 1) << "attempt " << attempt << " u " << u;
    }
  }
}

TEST(RetryPolicy, JitterUsesTheDraw) {
  RetryOptions o = NoJitter(1000, 600'000);
  o.jitter = 0.2;
  RetryPolicy p(o);
  // The factor is uniform in [1-j, 1+j]: the lowest draw gives the lowest delay, the middle draw
  // the undisturbed one, and draws near 1 approach the top.
  EXPECT_NEAR(p.DelayMillis(1, 0.0), 800, 1);
  EXPECT_NEAR(p.DelayMillis(1, 0.5), 1000, 1);
  EXPECT_NEAR(p.DelayMillis(1, 0.999999), 1200, 1);
  std::set<int64_t> seen;
  for (double u = 0.0; u < 1.0; u += 0.05) seen.insert(p.DelayMillis(1, u));
  EXPECT_GT(seen.size(), 10u);
  // Monotonic in the draw.
  int64_t last = -1;
  for (double u = 0.0; u < 1.0; u += 0.01) {
    const int64_t got = p.DelayMillis(3, u);
    EXPECT_GE(got, last);
    last = got;
  }
}

TEST(RetryPolicy, FullJitterNeverNegative) {
  RetryOptions o = NoJitter(1000, 600'000);
  o.jitter = 1.0;
  RetryPolicy p(o);
  EXPECT_GE(p.DelayMillis(1, 0.0), 0);
  EXPECT_LE(p.DelayMillis(1, 0.0), 1);
  for (double u = 0.0; u < 1.0; u += 0.01) {
    EXPECT_GE(p.DelayMillis(2, u), 0);
    EXPECT_LE(p.DelayMillis(2, u), 4001);
  }
}

void ExpectInvalid(const RetryOptions& o, const char* field) {
  Status s = RetryPolicy::Validate(o);
  ASSERT_FALSE(s.ok()) << "expected " << field << " to be rejected";
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr(field));
}

TEST(RetryPolicy, ValidateRejectsBadJitter) {
  RetryOptions o;
  o.jitter = 1.01;
  ExpectInvalid(o, "jitter");
  o.jitter = -0.1;
  ExpectInvalid(o, "jitter");
  o.jitter = 1.0;
  EXPECT_TRUE(RetryPolicy::Validate(o).ok());
  o.jitter = 0.0;
  EXPECT_TRUE(RetryPolicy::Validate(o).ok());
}

TEST(RetryPolicy, ValidateRejectsBadMultiplier) {
  RetryOptions o;
  o.multiplier = 0.99;
  ExpectInvalid(o, "multiplier");
  o.multiplier = 0;
  ExpectInvalid(o, "multiplier");
  o.multiplier = 1.0;
  EXPECT_TRUE(RetryPolicy::Validate(o).ok());
}

TEST(RetryPolicy, ValidateRejectsBadBase) {
  RetryOptions o;
  o.base = std::chrono::milliseconds(0);
  ExpectInvalid(o, "base");
  o.base = std::chrono::milliseconds(-5);
  ExpectInvalid(o, "base");
  o.base = std::chrono::milliseconds(1);
  EXPECT_TRUE(RetryPolicy::Validate(o).ok());
}

TEST(RetryPolicy, ValidateRejectsCapBelowBase) {
  RetryOptions o;
  o.base = std::chrono::milliseconds(2000);
  o.cap = std::chrono::milliseconds(1999);
  ExpectInvalid(o, "cap");
  o.cap = std::chrono::milliseconds(2000);
  EXPECT_TRUE(RetryPolicy::Validate(o).ok());
}

}  // namespace
}  // namespace bmos::engine
