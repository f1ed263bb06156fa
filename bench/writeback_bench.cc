// Buffered write + writeback throughput of the iomap engine against fio.
//
//   bazel run //bench:writeback_bench -- [--file=PATH] [--size_mb=1024]
//       [--random_writes=100000] [--no_fio] [--malloc_reuse] [--budget_mb=N]
//       [--reserve=wait|mount|off]
//
// 1. fio: sequential write, ioengine=io_uring, direct=1, bs=1M, iodepth=32 on
//    the device file, ending with an fsync of the file (--end_fsync=1) as our
//    run ends with a device cache flush (run first, which also lays the file
//    out, then again; the second run is reported).
// 2. iomapd: the same file opened as a block::Device (io_uring, O_DIRECT);
//    a fake filesystem maps file offset N to device byte N (identity); 1 MiB
//    buffered writes through FileBufferedWrite (large folios) with the
//    per-volume Flusher throttling and writing back, then fsync
//    (FileWriteAndWaitRange) and a device cache flush. MB/s over the whole.
//    Twice: "cold" (fresh process: the cache's memory is new to it) and
//    "warm" (the same write again, folio buffers reused, as in a
//    long-running server).
//    --reserve: what "mount" (opening the volume) does with the folio pool:
//      wait:  FolioPool::Reserve(budget), then the writes: a volume whose
//             mount-time reserve was populated before the first write
//             (default); the mount time is printed, and the cold figure
//             counting it too;
//      mount: FolioPool::ReserveAsync(budget), the writes start at once,
//             racing the background population;
//      off:   no reserve: the writers fault the cache's memory in.
// 3. iomapd: 4 KiB random buffered writes, fsync every 1,000: IOPS.
// Prints both sequential figures, the ratio ours/fio, and where the time went
// (page faults, fresh pool memory, bios and device submissions).
#include <fcntl.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/mutex.h"
#include "block/device.h"
#include "iomap/buffered_io.h"
#include "iomap/flusher.h"
#include "iomap/folio_pool.h"
#include "iomap/ioend.h"
#include "iomap/iomap.h"
#include "iomap/pagecache.h"
#include "iomap/writeback.h"

namespace {

using Clock = std::chrono::steady_clock;

// Forwards to the real device, counting what the writeback path submits.
class CountingDevice : public block::Device {
 public:
  explicit CountingDevice(std::unique_ptr<block::Device> dev)
      : dev_(std::move(dev)) {}
  void Submit(block::Bio* bio) override {
    submits_.fetch_add(1, std::memory_order_relaxed);
    Count(*bio);
    dev_->Submit(bio);
  }
  void SubmitBatch(absl::Span<block::Bio* const> bios) override {
    submits_.fetch_add(1, std::memory_order_relaxed);
    for (block::Bio* bio : bios) Count(*bio);
    dev_->SubmitBatch(bios);
  }
  const block::DeviceLimits& limits() const override { return dev_->limits(); }
  std::string name() const override { return dev_->name(); }
  uint64_t inflight() const override { return dev_->inflight(); }
  void Drain() override { dev_->Drain(); }

  struct Counts {
    uint64_t submits = 0, writes = 0, write_bytes = 0, segments = 0;
    uint64_t flushes = 0, max_bio = 0;
  };
  Counts counts() const {
    Counts c;
    c.submits = submits_.load();
    c.writes = writes_.load();
    c.write_bytes = write_bytes_.load();
    c.segments = segments_.load();
    c.flushes = flushes_.load();
    c.max_bio = max_bio_.load();
    return c;
  }

 private:
  void Count(const block::Bio& bio) {
    if (bio.op == block::BioOp::kFlush) flushes_.fetch_add(1);
    if (bio.op != block::BioOp::kWrite) return;
    writes_.fetch_add(1, std::memory_order_relaxed);
    write_bytes_.fetch_add(bio.len, std::memory_order_relaxed);
    segments_.fetch_add(bio.iov.size(), std::memory_order_relaxed);
    uint64_t max = max_bio_.load();
    while (bio.len > max && !max_bio_.compare_exchange_weak(max, bio.len)) {
    }
  }

  std::unique_ptr<block::Device> dev_;
  std::atomic<uint64_t> submits_{0}, writes_{0}, write_bytes_{0};
  std::atomic<uint64_t> segments_{0}, flushes_{0}, max_bio_{0};
};

// Identity-mapped, fully allocated "filesystem".
class IdentityFs : public iomap::IomapOps, public iomap::IomapWritebackOps {
 public:
  explicit IdentityFs(block::Device* dev) : dev_(dev) {}
  int IomapBegin(iomap::Inode*, int64_t pos, int64_t len, unsigned,
                 iomap::Iomap* map, iomap::Iomap*) override {
    Fill(pos, len, map);
    return 0;
  }
  int64_t WritebackRange(iomap::WritepageCtx* wpc, iomap::Folio* folio,
                         uint64_t pos, unsigned len,
                         uint64_t end_pos) override {
    const int64_t p = static_cast<int64_t>(pos);
    Fill(p, static_cast<int64_t>(dev_->limits().capacity_bytes) - p,
         &wpc->iomap);
    return iomap::AddToIoend(wpc, folio, p, static_cast<int64_t>(end_pos), len);
  }
  int WritebackSubmit(iomap::WritepageCtx* wpc, int error) override {
    return iomap::IoendWritebackSubmit(wpc, error);
  }

 private:
  void Fill(int64_t pos, int64_t len, iomap::Iomap* map) {
    *map = iomap::Iomap();
    map->offset = pos;
    map->length = static_cast<uint64_t>(len);
    map->type = iomap::Iomap::Type::kMapped;
    map->addr = static_cast<uint64_t>(pos);
    map->bdev = dev_;
  }
  block::Device* const dev_;
};

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Runs fio's sequential write; returns MB/s (1e6 bytes), or -1.
double RunFio(const std::string& file, uint64_t size_mb) {
  std::string cmd = "fio --name=seq --filename=" + file +
                    " --size=" + std::to_string(size_mb) +
                    "m --rw=write --bs=1m --ioengine=io_uring --direct=1"
                    " --iodepth=32 --end_fsync=1 --output-format=json"
                    " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  if (pclose(p) != 0) return -1;
  size_t w = out.find("\"write\" : {");
  if (w == std::string::npos) return -1;
  size_t b = out.find("\"bw_bytes\"", w);
  if (b == std::string::npos) return -1;
  b = out.find(':', b);
  return std::strtod(out.c_str() + b + 1, nullptr) / 1e6;
}

int Flush(block::Device* dev) {
  block::Bio bio;
  bio.op = block::BioOp::kFlush;
  return static_cast<int>(block::SubmitAndWait(*dev, &bio));
}

struct Volume {
  std::unique_ptr<CountingDevice> dev;
  std::unique_ptr<IdentityFs> fs;
  std::unique_ptr<iomap::SimpleWritepages> wp;
  iomap::PageCache cache;
  std::unique_ptr<iomap::Inode> inode;
  std::unique_ptr<iomap::Flusher> flusher;
  ~Volume() {
    if (flusher != nullptr) flusher->Detach(inode.get());
  }
};

enum class ReserveMode { kMount, kWait, kOff };

// "Mounts" the file: the device, the fake filesystem, the cache, the
// flusher, and the folio pool's reserve as `mode` says. Returns the seconds
// it took, or -1.
double Open(const std::string& file, uint64_t size, uint64_t budget_mb,
            ReserveMode mode, Volume* v) {
  const Clock::time_point start = Clock::now();
  block::OpenOptions o;
  o.create = true;
  o.create_size = size;
  auto dev = block::OpenDevice(file, o);
  if (!dev.ok()) {
    std::fprintf(stderr, "%s\n", dev.status().ToString().c_str());
    return -1;
  }
  v->dev = std::make_unique<CountingDevice>(std::move(*dev));
  v->fs = std::make_unique<IdentityFs>(v->dev.get());
  v->wp = std::make_unique<iomap::SimpleWritepages>(v->fs.get());
  if (budget_mb != 0) v->cache.set_budget_bytes(budget_mb << 20);
  v->inode = std::make_unique<iomap::Inode>(1, 12, v->dev.get(), &v->cache);
  v->inode->SetLargeFolios();
  v->flusher = std::make_unique<iomap::Flusher>(v->wp.get(), &v->cache);
  v->flusher->Attach(v->inode.get());
  iomap::FolioPool* pool = iomap::FolioPool::Global();
  if (mode == ReserveMode::kMount) pool->ReserveAsync(v->cache.budget_bytes());
  if (mode == ReserveMode::kWait) pool->Reserve(v->cache.budget_bytes());
  return Seconds(start);
}

int64_t Write(Volume* v, int64_t pos, const std::vector<uint8_t>& buf) {
  iomap::BufferSource src(buf.data(), buf.size());
  base::WriterLock l(&v->inode->locks().rwsem);
  return iomap::FileBufferedWrite(v->inode.get(), pos, &src, 0, *v->fs);
}

double g_flush_s = 0;  // time spent in device cache flushes

int Fsync(Volume* v, iomap::ErrSeq::Cursor* cursor) {
  int err =
      v->flusher->FileWriteAndWaitRange(v->inode.get(), cursor, 0, INT64_MAX);
  const Clock::time_point start = Clock::now();
  int err2 = Flush(v->dev.get());
  g_flush_s += Seconds(start);
  return err != 0 ? err : err2;
}

// What a pass cost besides its time: page faults, fresh pool memory, bios.
struct PassStats {
  long minflt = 0;
  uint64_t fresh = 0, reused = 0;
  double fresh_s = 0;
  CountingDevice::Counts io;

  static PassStats Now(const Volume& v) {
    PassStats s;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    s.minflt = ru.ru_minflt;
    iomap::FolioPool* pool = iomap::FolioPool::Global();
    s.fresh = pool->fresh();
    s.reused = pool->reused();
    s.fresh_s = pool->fresh_seconds();
    s.io = v.dev->counts();
    return s;
  }
};

void PrintPass(const PassStats& a, const PassStats& b, double copy_s,
               double total_s, const std::vector<double>& laps,
               uint64_t throttled) {
  std::printf(
      "  buffered writes %.2f s (throttled %llu times), fsync %.2f s "
      "(device flush %.2f s)\n  per 256 MiB:",
      copy_s, static_cast<unsigned long long>(throttled), total_s - copy_s,
      g_flush_s);
  for (double lap : laps) std::printf(" %.2f", lap);
  const uint64_t bios = b.io.writes - a.io.writes;
  const uint64_t bytes = b.io.write_bytes - a.io.write_bytes;
  std::printf(
      " s\n  minor faults %ld; folio buffers %llu fresh (%.2f s), %llu "
      "reused; reserve populated in %.2f s\n",
      b.minflt - a.minflt, static_cast<unsigned long long>(b.fresh - a.fresh),
      b.fresh_s - a.fresh_s,
      static_cast<unsigned long long>(b.reused - a.reused),
      iomap::FolioPool::Global()->reserve_seconds());
  std::printf(
      "  write bios %llu (avg %.0f KiB, max %llu KiB, %.1f segments), "
      "device submissions %llu, flushes %llu\n",
      static_cast<unsigned long long>(bios),
      bios != 0 ? bytes / 1024.0 / bios : 0.0,
      static_cast<unsigned long long>(b.io.max_bio >> 10),
      bios != 0 ? static_cast<double>(b.io.segments - a.io.segments) / bios
                : 0.0,
      static_cast<unsigned long long>(b.io.submits - a.io.submits),
      static_cast<unsigned long long>(b.io.flushes - a.io.flushes));
}

// Returns the seconds of the whole pass (writes + fsync), or -1.
double SeqWrite(Volume* v, uint64_t size) {
  std::vector<uint8_t> buf(1 << 20);
  for (size_t i = 0; i < buf.size(); i++) buf[i] = static_cast<uint8_t>(i * 7);
  iomap::ErrSeq::Cursor cursor = v->inode->mapping()->wb_err.seq().Sample();
  g_flush_s = 0;
  const PassStats before = PassStats::Now(*v);
  std::vector<double> laps;
  const Clock::time_point start = Clock::now();
  Clock::time_point lap = start;
  for (uint64_t pos = 0; pos < size; pos += buf.size()) {
    buf[0] = static_cast<uint8_t>(pos >> 20);
    if (Write(v, static_cast<int64_t>(pos), buf) !=
        static_cast<int64_t>(buf.size())) {
      std::fprintf(stderr, "write failed at %llu\n",
                   static_cast<unsigned long long>(pos));
      return -1;
    }
    if (((pos + buf.size()) & ((uint64_t{256} << 20) - 1)) == 0) {
      laps.push_back(Seconds(lap));
      lap = Clock::now();
    }
  }
  const double copy_s = Seconds(start);
  if (Fsync(v, &cursor) != 0) return -1;
  const double total_s = Seconds(start);
  PrintPass(before, PassStats::Now(*v), copy_s, total_s, laps,
            v->flusher->throttled());
  return total_s;
}

double RandomWrites(Volume* v, uint64_t size, int count) {
  std::vector<uint8_t> buf(4096, 0x5c);
  std::mt19937_64 rng(42);
  iomap::ErrSeq::Cursor cursor = v->inode->mapping()->wb_err.seq().Sample();
  g_flush_s = 0;
  const PassStats before = PassStats::Now(*v);
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < count; i++) {
    const int64_t pos = static_cast<int64_t>(rng() % (size / 4096)) * 4096;
    if (Write(v, pos, buf) != 4096) return -1;
    if ((i + 1) % 1000 == 0 && Fsync(v, &cursor) != 0) return -1;
  }
  if (Fsync(v, &cursor) != 0) return -1;
  const double secs = Seconds(start);
  const PassStats after = PassStats::Now(*v);
  std::printf(
      "  random writes %.2f s, device flushes %.2f s; minor faults %ld; "
      "folio buffers %llu fresh (%.2f s), %llu reused; %llu write bios\n",
      secs, g_flush_s, after.minflt - before.minflt,
      static_cast<unsigned long long>(after.fresh - before.fresh),
      after.fresh_s - before.fresh_s,
      static_cast<unsigned long long>(after.reused - before.reused),
      static_cast<unsigned long long>(after.io.writes - before.io.writes));
  return count / secs;
}

std::string Flag(int argc, char** argv, const char* name, const char* def) {
  const std::string prefix = std::string("--") + name + "=";
  for (int i = 1; i < argc; i++) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) {
      return argv[i] + prefix.size();
    }
  }
  return def;
}

bool HasFlag(int argc, char** argv, const char* name) {
  for (int i = 1; i < argc; i++) {
    if (std::string(argv[i]) == std::string("--") + name) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  const char* tmp = std::getenv("TMPDIR");
  const std::string def =
      std::string(tmp != nullptr ? tmp : "/tmp") + "/iomapd-writeback.img";
  const std::string file = Flag(argc, argv, "file", def.c_str());
  const uint64_t size_mb = std::stoull(Flag(argc, argv, "size_mb", "1024"));
  const int random = std::stoi(Flag(argc, argv, "random_writes", "100000"));
  // Pagecache budget (0: the default); the flusher's thresholds follow it.
  const uint64_t budget_mb = std::stoull(Flag(argc, argv, "budget_mb", "0"));
  const uint64_t size = size_mb << 20;
  if (HasFlag(argc, argv, "malloc_reuse")) {
    // Keep freed folio memory in the heap instead of returning it to the
    // kernel (glibc serves >= 128 KiB blocks with mmap by default, so every
    // large folio costs an mmap, page faults and a munmap).
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }

  double fio = -1;
  if (!HasFlag(argc, argv, "no_fio")) {
    RunFio(file, size_mb);  // lays the file out
    fio = RunFio(file, size_mb);
  }
  const std::string reserve = Flag(argc, argv, "reserve", "wait");
  const ReserveMode mode = reserve == "mount" ? ReserveMode::kMount
                           : reserve == "off" ? ReserveMode::kOff
                                              : ReserveMode::kWait;
  Volume v;
  const double mount_s = Open(file, size, budget_mb, mode, &v);
  if (mount_s < 0) return 1;
  std::printf("device: %s; mount %.2f s (reserve=%s, %llu MiB)\n",
              v.dev->name().c_str(), mount_s, reserve.c_str(),
              static_cast<unsigned long long>(
                  iomap::FolioPool::Global()->reserve_bytes() >> 20));
  // Cold: a fresh process, so the cache's memory (up to its budget) is new
  // to it: populated at mount (reserve) or faulted in by the writes (off).
  // Warm: the same write again in the same process, folio buffers reused.
  const char* const kPass[] = {"cold", "warm"};
  double ours = 0;
  for (const char* pass : kPass) {
    const double secs = SeqWrite(&v, size);
    if (secs <= 0) return 1;
    ours = static_cast<double>(size) / 1e6 / secs;
    std::printf("seq write %llu MiB buffered + fsync (%s): iomapd %.0f MB/s",
                static_cast<unsigned long long>(size_mb), pass, ours);
    if (fio > 0) {
      std::printf(
          ", fio (io_uring direct bs=1M qd=32 end_fsync) %.0f MB/s, "
          "ratio %.2f",
          fio, ours / fio);
    }
    std::printf("\n");
    if (pass == kPass[0] && mode == ReserveMode::kWait) {
      const double with_mount =
          static_cast<double>(size) / 1e6 / (secs + mount_s);
      std::printf("  cold counting the mount's %.2f s: %.0f MB/s", mount_s,
                  with_mount);
      if (fio > 0) std::printf(", ratio %.2f", with_mount / fio);
      std::printf("\n");
    }
  }
  iomap::FolioPool::Global()->WaitReserved();
  const double iops = RandomWrites(&v, size, random);
  std::printf("4k random buffered writes, fsync every 1000: %.0f IOPS\n", iops);
  return ours > 0 && iops > 0 ? 0 : 1;
}
