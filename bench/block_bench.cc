// block_bench: drives one block::Device at a fixed queue depth, like fio.
//
//   block_bench --device=PATH --rw=randread|randwrite|read|write --bs=4k
//               --iodepth=32 --runtime_s=10 --size=1g [--backend=uring|sync]
//
// Keeps `iodepth` bios in flight through the Device API (O_DIRECT): each
// completion submits the slot's next bio from the completion context. Prints
// one parseable line:
//   block_bench rw=randread bs=4096 iodepth=32 backend=uring runtime_s=10.00
//     ios=N iops=N bw_bytes=N mib_s=N errors=0
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "block/device.h"

ABSL_FLAG(std::string, device, "", "file or block device");
ABSL_FLAG(std::string, rw, "randread", "randread, randwrite, read or write");
ABSL_FLAG(std::string, bs, "4k", "block size (k, m suffixes)");
ABSL_FLAG(uint32_t, iodepth, 32, "bios in flight");
ABSL_FLAG(double, runtime_s, 10, "seconds to run");
ABSL_FLAG(std::string, size, "0", "bytes of the device to use (0: all)");
ABSL_FLAG(std::string, backend, "uring", "uring or sync");
ABSL_FLAG(bool, hipri, false, "mark bios kBioHipri (polled when possible)");

namespace {

// "4k" -> 4096, "1m" -> 1 MiB, "1g" -> 1 GiB.
uint64_t ParseSize(const std::string& s) {
  char* end = nullptr;
  uint64_t v = strtoull(s.c_str(), &end, 10);
  switch (end && *end ? (*end | 0x20) : 0) {
    case 'k':
      return v << 10;
    case 'm':
      return v << 20;
    case 'g':
      return v << 30;
    default:
      return v;
  }
}

struct Bench;

// One queue slot: a bio and its buffer, resubmitted until the run ends.
struct Slot {
  Bench* bench = nullptr;
  block::Bio bio;
  block::AlignedBuffer buf;
  uint64_t rng = 0;  // xorshift state for random offsets
};

struct Bench {
  block::Device* dev = nullptr;
  bool random = false;
  bool write = false;
  uint32_t flags = 0;
  uint64_t bs = 0;
  uint64_t nblocks = 0;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> next_block{0};  // sequential runs
  std::atomic<uint64_t> ios{0};
  std::atomic<uint64_t> errors{0};

  uint64_t NextOffset(Slot* s) {
    if (!random) return next_block.fetch_add(1) % nblocks * bs;
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng % nblocks * bs;
  }
  void Issue(Slot* s) {
    s->bio.offset = NextOffset(s);
    dev->Submit(&s->bio);
  }
};

void OnComplete(block::Bio* bio) {
  auto* s = static_cast<Slot*>(bio->private_data);
  Bench* b = s->bench;
  if (bio->result != static_cast<int64_t>(b->bs)) {
    if (b->errors.fetch_add(1) == 0)
      fprintf(stderr, "block_bench: bio failed: %s\n", strerror(-bio->result));
  }
  b->ios.fetch_add(1, std::memory_order_relaxed);
  if (!b->stop.load(std::memory_order_relaxed)) b->Issue(s);
}

std::vector<Slot> MakeSlots(Bench* b, uint32_t depth) {
  std::vector<Slot> slots(depth);
  std::mt19937_64 rng(12345);
  for (uint32_t i = 0; i < depth; ++i) {
    Slot& s = slots[i];
    s.bench = b;
    s.buf = block::AllocAligned(b->bs);
    for (uint64_t j = 0; j + 8 <= b->bs; j += 8) {
      uint64_t v = rng();
      memcpy(s.buf.get() + j, &v, 8);
    }
    s.rng = rng() | 1;
    s.bio.op = b->write ? block::BioOp::kWrite : block::BioOp::kRead;
    s.bio.flags = b->flags;
    s.bio.AddSegment(s.buf.get(), b->bs);
    s.bio.end_io = OnComplete;
    s.bio.private_data = &s;
  }
  return slots;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string rw = absl::GetFlag(FLAGS_rw);
  if (rw != "randread" && rw != "randwrite" && rw != "read" && rw != "write") {
    fprintf(stderr, "block_bench: bad --rw=%s\n", rw.c_str());
    return 2;
  }
  const uint32_t depth = std::max<uint32_t>(1, absl::GetFlag(FLAGS_iodepth));
  block::OpenOptions opts;
  opts.backend = absl::GetFlag(FLAGS_backend) == "sync"
                     ? block::Backend::kSync
                     : block::Backend::kUring;
  opts.direct = true;
  opts.queue_depth = depth;
  opts.sync_threads = depth;
  auto dev = block::OpenDevice(absl::GetFlag(FLAGS_device), opts);
  if (!dev.ok()) {
    fprintf(stderr, "block_bench: %s\n", dev.status().ToString().c_str());
    return 1;
  }
  Bench b;
  b.dev = dev->get();
  b.random = rw.rfind("rand", 0) == 0;
  b.write = rw.find("write") != std::string::npos;
  b.flags = absl::GetFlag(FLAGS_hipri) ? block::kBioHipri : 0;
  b.bs = ParseSize(absl::GetFlag(FLAGS_bs));
  uint64_t size = ParseSize(absl::GetFlag(FLAGS_size));
  const uint64_t cap = (*dev)->limits().capacity_bytes;
  if (size == 0 || size > cap) size = cap;
  b.nblocks = b.bs == 0 ? 0 : size / b.bs;
  if (b.nblocks == 0) {
    fprintf(stderr, "block_bench: --size smaller than --bs\n");
    return 2;
  }
  std::vector<Slot> slots = MakeSlots(&b, depth);
  std::vector<block::Bio*> first;
  for (Slot& s : slots) {
    s.bio.offset = b.NextOffset(&s);
    first.push_back(&s.bio);
  }
  const auto t0 = std::chrono::steady_clock::now();
  (*dev)->SubmitBatch(first);
  std::this_thread::sleep_for(
      std::chrono::duration<double>(absl::GetFlag(FLAGS_runtime_s)));
  b.stop.store(true);
  (*dev)->Drain();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  const uint64_t ios = b.ios.load();
  const double bw = static_cast<double>(ios) * b.bs / secs;
  printf("block_bench rw=%s bs=%" PRIu64
         " iodepth=%u backend=%s runtime_s=%.2f "
         "ios=%" PRIu64 " iops=%.0f bw_bytes=%.0f mib_s=%.1f errors=%" PRIu64
         "\n",
         rw.c_str(), b.bs, depth,
         (*dev)->name().substr(0, (*dev)->name().find(':')).c_str(), secs, ios,
         ios / secs, bw, bw / (1 << 20), b.errors.load());
  return b.errors.load() == 0 ? 0 : 1;
}
