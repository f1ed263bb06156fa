#include "bench/latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace bench {
namespace {

// Buckets 0..kSubBuckets-1 hold the exact values below kSubBuckets; then
// each shift s >= 0 owns kSubBuckets buckets of width 2^s covering
// [kSubBuckets << s, kSubBuckets << (s + 1)).
constexpr size_t kShifts = 64 - LatencyHistogram::kSubBits;
constexpr size_t kBuckets = (kShifts + 1) * LatencyHistogram::kSubBuckets;

int HighestBit(uint64_t v) { return 63 - __builtin_clzll(v); }

}  // namespace

LatencyHistogram::LatencyHistogram() : buckets_(kBuckets, 0) {}

size_t LatencyHistogram::BucketOf(uint64_t ns) {
  if (ns < kSubBuckets) return ns;
  const int shift = HighestBit(ns) - kSubBits;
  const uint64_t top = ns >> shift;  // in [kSubBuckets, 2 * kSubBuckets)
  return (shift + 1) * kSubBuckets + (top - kSubBuckets);
}

uint64_t LatencyHistogram::BucketLow(size_t bucket) {
  if (bucket < kSubBuckets) return bucket;
  const int shift = static_cast<int>(bucket / kSubBuckets) - 1;
  return (kSubBuckets + bucket % kSubBuckets) << shift;
}

uint64_t LatencyHistogram::BucketWidth(size_t bucket) {
  if (bucket < kSubBuckets) return 1;
  return uint64_t{1} << (bucket / kSubBuckets - 1);
}

void LatencyHistogram::Record(uint64_t ns) {
  buckets_[BucketOf(ns)]++;
  count_++;
  min_ = std::min(min_, ns);
  max_ = std::max(max_, ns);
  sum_ += ns;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < buckets_.size(); i++) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

double LatencyHistogram::mean() const {
  return count_ ? static_cast<double>(sum_ / count_) : 0.0;
}

uint64_t LatencyHistogram::Percentile(double pct) const {
  if (count_ == 0) return 0;
  pct = std::clamp(pct, 0.0, 100.0);
  uint64_t rank = static_cast<uint64_t>(std::ceil(pct / 100.0 * count_));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t b = 0; b < buckets_.size(); b++) {
    seen += buckets_[b];
    if (seen >= rank) {
      const uint64_t mid = BucketLow(b) + BucketWidth(b) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

}  // namespace bench
