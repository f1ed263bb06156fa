#include "bench/latency_histogram.h"

#include <cstdint>
#include <random>

#include "gtest/gtest.h"

namespace bench {
namespace {

TEST(LatencyHistogramTest, EmptyReportsZeros) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.Percentile(50), 0u);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 50; v++) h.Record(v);
  EXPECT_EQ(h.count(), 50u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 50u);
  EXPECT_DOUBLE_EQ(h.mean(), 25.5);
  EXPECT_EQ(h.Percentile(50), 25u);
  EXPECT_EQ(h.Percentile(100), 50u);
  EXPECT_EQ(h.Percentile(0), 1u);
}

TEST(LatencyHistogramTest, PercentilesWithinBucketPrecision) {
  // 1..100000 us in ns: p50 = 50 ms, p99 = 99 ms, p99.9 = 99.9 ms.
  LatencyHistogram h;
  for (uint64_t us = 1; us <= 100000; us++) h.Record(us * 1000);
  const double tolerance = 1.0 / LatencyHistogram::kSubBuckets;
  const struct {
    double pct;
    double want;
  } cases[] = {{50, 50e6}, {99, 99e6}, {99.9, 99.9e6}, {1, 1e6}};
  for (const auto& c : cases) {
    const double got = static_cast<double>(h.Percentile(c.pct));
    EXPECT_NEAR(got, c.want, c.want * tolerance) << "p" << c.pct;
  }
  EXPECT_EQ(h.Percentile(100), 100000u * 1000);
}

TEST(LatencyHistogramTest, HugeValuesDoNotOverflow) {
  LatencyHistogram h;
  h.Record(UINT64_MAX);
  h.Record(uint64_t{1} << 63);
  EXPECT_EQ(h.max(), UINT64_MAX);
  EXPECT_GE(h.Percentile(50), uint64_t{1} << 63);
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverything) {
  const uint64_t seed = 20261123;
  std::mt19937_64 rng(seed);
  LatencyHistogram a, b, all;
  for (int i = 0; i < 20000; i++) {
    const uint64_t v = rng() % 5000000;
    (i % 3 ? a : b).Record(v);
    all.Record(v);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count()) << "seed " << seed;
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_DOUBLE_EQ(a.mean(), all.mean());
  for (double pct : {1.0, 50.0, 90.0, 99.0, 99.9}) {
    EXPECT_EQ(a.Percentile(pct), all.Percentile(pct)) << "p" << pct;
  }
}

}  // namespace
}  // namespace bench
