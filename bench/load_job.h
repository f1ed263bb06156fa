// One iomapd-bench job: keeps `iodepth` reads/writes in flight on one Submit
// stream (client::AsyncStream) against one open file, like one fio job, and
// measures each request's latency from Submit to its completion callback.
//
// Also the layout step (write the file fully and fsync it, so that reads hit
// allocated, written blocks) and the fio-style option parsing the driver
// shares.
//
// Thread-safety: RunJob may be called from several threads at once, each
// with its own stream. Results are plain values.
#ifndef IOMAPD_BENCH_LOAD_JOB_H_
#define IOMAPD_BENCH_LOAD_JOB_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/latency_histogram.h"
#include "client/async.h"
#include "client/client.h"

namespace bench {

// fio's rw= values the generator supports.
enum class Pattern { kRead, kWrite, kRandRead, kRandWrite, kRandRW };

// "read", "write", "randread", "randwrite", "randrw"; -EINVAL otherwise.
absl::StatusOr<Pattern> ParsePattern(const std::string& rw);
const char* PatternName(Pattern pattern);

// fio-style sizes: a decimal number with an optional binary suffix k, m, g
// or t (case-insensitive, "KiB"/"kb" accepted): "4k" = 4096. -EINVAL on
// anything else or on overflow.
absl::StatusOr<uint64_t> ParseSize(const std::string& text);

struct JobSpec {
  Pattern pattern = Pattern::kRandRead;
  uint64_t bs = 4096;       // bytes per request, > 0
  uint32_t iodepth = 32;    // requests kept in flight, > 0
  uint64_t size = 0;        // the I/O range [0, size), >= bs
  double runtime_s = 10;    // > 0: stop after this long; 0: one pass of size
  uint32_t rwmixread = 50;  // randrw: percentage of reads
  uint32_t io_flags = 0;    // v1::IoFlag bits on every request
  uint64_t seed = 1;        // offsets and the randrw mix; never 0
};

// What one job did, per direction. Latencies are in nanoseconds.
struct DirectionResult {
  uint64_t ios = 0;
  uint64_t bytes = 0;
  LatencyHistogram latency;
};

struct JobResult {
  DirectionResult read;
  DirectionResult write;
  uint64_t errors = 0;      // failed or short requests
  std::string first_error;  // the first failure, for humans
  double elapsed_s = 0;     // first Submit to last completion

  // Adds `other`'s counts; elapsed_s becomes the longer of the two.
  void Merge(const JobResult& other);
};

// Runs `spec` on `stream` against `file` and returns when every request it
// submitted has completed. A failed request is counted and the run goes on;
// if the stream itself fails, the run ends early with the failure recorded.
// REQUIRES: spec.iodepth requests of spec.bs bytes fit the stream's limits
// (see FitDepth).
JobResult RunJob(client::AsyncStream* stream, const client::OpenFile& file,
                 const JobSpec& spec);

// The largest queue depth <= `iodepth` that the stream's limits admit for
// requests of `bs` bytes; 0 when even one request is too big.
uint32_t FitDepth(const iomapd::v1::StreamLimits& limits, uint64_t bs,
                  uint32_t iodepth);

// Makes [0, size) of `file` written data: unless SEEK_HOLE from 0 already
// finds no hole before `size` (and the file is at least that long), writes
// it sequentially in chunks of up to 1 MiB with a few in flight, then
// fsyncs. Sets *wrote to whether it wrote anything.
absl::Status LayOut(client::Client* client, client::AsyncStream* stream,
                    const client::OpenFile& file, uint64_t size, bool* wrote);

}  // namespace bench

#endif  // IOMAPD_BENCH_LOAD_JOB_H_
