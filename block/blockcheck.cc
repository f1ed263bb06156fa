// blockcheck: opens a device through OpenDevice, prints what it found, then
// writes a seeded pattern, flushes, reads it back and verifies it.
//
//   blockcheck --device=PATH [--bytes=N] [--backend=auto|uring|sync]
//
// Exits 0 and prints "ok" when every byte read back matches.
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "block/device.h"

ABSL_FLAG(std::string, device, "", "file or block device to check");
ABSL_FLAG(uint64_t, bytes, 64ull << 20, "bytes to write and read back");
ABSL_FLAG(std::string, backend, "auto", "auto, uring or sync");
ABSL_FLAG(uint64_t, seed, 1, "pattern seed");

namespace {

constexpr uint64_t kChunk = 1 << 20;  // bytes per bio
constexpr int kDepth = 16;            // bios in flight

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
      .count();
}

void PrintLimits(const block::Device& dev) {
  const block::DeviceLimits& l = dev.limits();
  printf("device      %s\n", dev.name().c_str());
  printf("capacity    %" PRIu64 " bytes\n", l.capacity_bytes);
  printf("blocks      logical %u, physical %u, dma alignment %u\n",
         l.logical_block_size, l.physical_block_size, l.dma_alignment);
  printf("max io      %" PRIu64 " bytes, %u segments\n", l.max_io_bytes,
         l.max_segments);
  printf(
      "flags       direct=%d read_only=%d volatile_cache=%d atomic=[%u,%u]\n",
      l.direct, l.read_only, l.volatile_cache, l.atomic_write_unit_min,
      l.atomic_write_unit_max);
}

void Fill(uint8_t* p, uint64_t len, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (uint64_t i = 0; i + 8 <= len; i += 8) {
    uint64_t v = rng();
    memcpy(p + i, &v, 8);
  }
}

// Runs `op` over [0, bytes) in kChunk bios, kDepth at a time. Returns the
// first error (negative errno) or 0.
int64_t Pass(block::Device& dev, block::BioOp op, uint8_t* buf,
             uint64_t bytes) {
  std::vector<block::Bio> bios((bytes + kChunk - 1) / kChunk);
  int64_t err = 0;
  for (size_t i = 0; i < bios.size(); i += kDepth) {
    for (size_t j = i; j < bios.size() && j < i + kDepth; ++j) {
      block::Bio& b = bios[j];
      b.op = op;
      b.offset = j * kChunk;
      b.AddSegment(buf + b.offset, std::min(kChunk, bytes - b.offset));
      b.end_io = [](block::Bio*) {};
      dev.Submit(&b);
    }
    dev.Drain();
    for (size_t j = i; j < bios.size() && j < i + kDepth; ++j)
      if (bios[j].result < 0 && err == 0) err = bios[j].result;
  }
  return err;
}

int Fail(const char* what, int64_t err) {
  fprintf(stderr, "blockcheck: %s failed: %s\n", what, strerror(-err));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  block::OpenOptions opts;
  const std::string backend = absl::GetFlag(FLAGS_backend);
  opts.backend = backend == "sync"    ? block::Backend::kSync
                 : backend == "uring" ? block::Backend::kUring
                                      : block::Backend::kAuto;
  auto dev_or = block::OpenDevice(absl::GetFlag(FLAGS_device), opts);
  if (!dev_or.ok()) {
    fprintf(stderr, "blockcheck: %s\n", dev_or.status().ToString().c_str());
    return 1;
  }
  block::Device& dev = **dev_or;
  PrintLimits(dev);
  const uint64_t lbs = dev.limits().logical_block_size;
  uint64_t bytes =
      std::min(absl::GetFlag(FLAGS_bytes), dev.limits().capacity_bytes);
  bytes -= bytes % lbs;
  if (bytes == 0) return Fail("sizing (device too small)", -EINVAL);
  block::AlignedBuffer out = block::AllocAligned(bytes);
  block::AlignedBuffer in = block::AllocAligned(bytes);
  Fill(out.get(), bytes, absl::GetFlag(FLAGS_seed));
  auto t0 = std::chrono::steady_clock::now();
  if (int64_t e = Pass(dev, block::BioOp::kWrite, out.get(), bytes))
    return Fail("write", e);
  block::Bio flush;
  flush.op = block::BioOp::kFlush;
  if (int64_t e = block::SubmitAndWait(dev, &flush); e < 0)
    return Fail("flush", e);
  const double wsec = Seconds(t0);
  t0 = std::chrono::steady_clock::now();
  if (int64_t e = Pass(dev, block::BioOp::kRead, in.get(), bytes))
    return Fail("read", e);
  const double rsec = Seconds(t0);
  if (memcmp(in.get(), out.get(), bytes) != 0) {
    fprintf(stderr, "blockcheck: data read back differs from data written\n");
    return 1;
  }
  printf("write+flush %" PRIu64 " bytes: %.1f MB/s\n", bytes,
         bytes / wsec / 1e6);
  printf("read        %" PRIu64 " bytes: %.1f MB/s\n", bytes,
         bytes / rsec / 1e6);
  printf("ok\n");
  return 0;
}
