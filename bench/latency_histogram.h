// LatencyHistogram: a log-linear histogram of durations in nanoseconds, for
// percentiles of I/O latency (p50, p99, p99.9) the way fio reports them.
//
// Values are grouped by their highest set bit, and each power-of-two range
// is split into kSubBuckets equal buckets, so a percentile is exact to
// within 1/kSubBuckets (about 1.6 %) of its value. Values below kSubBuckets
// nanoseconds are exact. Fixed memory (a few tens of KiB); Record is O(1).
//
// Thread-safety: not thread-safe; one writer at a time. Merge histograms of
// several threads after they stopped recording.
#ifndef IOMAPD_BENCH_LATENCY_HISTOGRAM_H_
#define IOMAPD_BENCH_LATENCY_HISTOGRAM_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace bench {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 6;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBits;

  LatencyHistogram();

  void Record(uint64_t ns);
  // Adds every value recorded in `other`.
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  // 0 when empty.
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const;

  // The smallest recorded value v such that at least `pct` percent of the
  // values are <= v, rounded to its bucket's midpoint (exact below
  // kSubBuckets, and clamped to [min, max]). `pct` in [0, 100]; 0 when
  // empty.
  uint64_t Percentile(double pct) const;

 private:
  static size_t BucketOf(uint64_t ns);
  static uint64_t BucketLow(size_t bucket);
  static uint64_t BucketWidth(size_t bucket);

  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  long double sum_ = 0;
};

}  // namespace bench

#endif  // IOMAPD_BENCH_LATENCY_HISTOGRAM_H_
