// SimDevice: a simulated, deterministic block::Device for tests.
//
// Contents live in memory (sparse, 64 KiB chunks). Sectors never written read
// back as garbage derived from the seed. Each bio completes `latency` ticks
// after it was submitted (drawn from the seeded PRNG), so bios complete out
// of order. Reads see the media at completion time; writes change it then.
//
// Write cache model (a volatile cache, as on most disks):
//  - a completed write is visible to reads at once but is only *durable*
//    once a flush submitted after it completes, or when it was written FUA;
//  - a flush makes durable exactly the writes that completed before the flush
//    was submitted; when more than options.cache_bytes of writes are cached,
//    the oldest are made durable on their own (destaged);
//  - Crash() models power loss: every completed-but-not-durable write is
//    split into runs of whole logical blocks and each run independently
//    survives or is lost (seeded), and each write still in flight may be
//    torn: each run of logical blocks of it independently reaches the durable
//    image or not. Atomic writes (kBioAtomic) survive or vanish whole. Torn
//    never means a partial logical block. In-flight bios then complete with
//    -EIO and later submissions fail with -EIO at once;
//  - Reboot() gives a fresh device over the surviving durable image.
//
// Time: in manual mode (the default) nothing completes until the test calls
// RunFor()/RunUntilIdle() (Drain() runs the clock too), which makes a run
// fully reproducible from its seed. In background mode a thread of the device
// advances time whenever bios are queued, for code that blocks on I/O.
//
// Faults: AddFault() fails matching bios with an errno (EIO by default), by
// range and op, always or with a probability, once or every time. A failed
// write changes nothing; a failed flush makes nothing durable.
//
// Seeds: options.seed 0 means "take IOMAPD_SEED from the environment, else a
// fresh random seed". Print SeedTrace() on failure (e.g. SCOPED_TRACE) and
// replay with IOMAPD_SEED=<seed>.
//
// Thread-safety: thread-safe. end_io runs on the thread calling RunFor/
// RunUntilIdle/Drain (manual) or on the device thread (background), never
// with a device lock held; it may submit more bios.
#ifndef IOMAPD_BLOCK_SIM_DEVICE_H_
#define IOMAPD_BLOCK_SIM_DEVICE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "base/mutex.h"
#include "block/device.h"

namespace block {

struct SimOptions {
  uint64_t capacity_bytes = 64ull << 20;
  uint32_t logical_block_size = 512;
  uint32_t physical_block_size = 4096;
  uint32_t dma_alignment = 512;
  uint64_t max_io_bytes = 1u << 20;
  uint32_t max_segments = 256;
  uint32_t atomic_write_unit_min = 0;  // 0/0: no atomic writes
  uint32_t atomic_write_unit_max = 0;
  bool direct = true;  // enforce direct-I/O alignment of iovecs
  bool read_only = false;
  uint64_t seed = 0;               // 0: IOMAPD_SEED, else random
  uint32_t min_latency_ticks = 1;  // >= 1
  uint32_t max_latency_ticks = 16;
  bool background = false;              // device thread advances time
  uint32_t background_tick_us = 0;      // real time per tick in background mode
  double crash_keep_probability = 0.5;  // per run of an unflushed write
  // Size of the volatile cache: when completed, unflushed writes exceed it,
  // the oldest are destaged (made durable), as a disk does on its own.
  uint64_t cache_bytes = 32ull << 20;
  double tear_keep_probability = 0.5;  // per run of an in-flight write
};

// Bit for `op` in SimFault::op_mask.
constexpr uint32_t SimOpBit(BioOp op) { return 1u << static_cast<int>(op); }

struct SimFault {
  uint32_t op_mask = SimOpBit(BioOp::kRead) | SimOpBit(BioOp::kWrite);
  uint64_t offset = 0;        // a bio overlapping [offset, offset+len) fails
  uint64_t len = UINT64_MAX;  // (ignored for flushes)
  double probability = 1.0;
  bool sticky = true;  // false: removed once it has fired
  int error = -EIO;
};

struct SimCounters {
  uint64_t bios[5] = {};   // completed, by BioOp (including failed ones)
  uint64_t bytes[5] = {};  // bytes of successful bios, by BioOp
  uint64_t fua_writes = 0;
  uint64_t failed = 0;    // completed with an injected error or after crash
  uint64_t rejected = 0;  // failed ValidateBio
};

// The seed a SimDevice with options.seed == 0 uses: IOMAPD_SEED or random.
uint64_t SimSeedFromEnv();
// "SimDevice seed=N (replay with IOMAPD_SEED=N)".
std::string SimSeedMessage(uint64_t seed);

// Sparse byte store: unwritten chunks read as garbage derived from the seed.
class SimStore {
 public:
  SimStore(uint64_t capacity_bytes, uint64_t garbage_seed);
  void Read(uint64_t off, uint8_t* dst, uint64_t len) const;
  void Write(uint64_t off, const uint8_t* src, uint64_t len);
  std::unique_ptr<SimStore> Clone() const;

 private:
  static constexpr uint64_t kChunk = 64 << 10;
  void FillGarbage(uint64_t chunk, uint8_t* dst) const;
  uint64_t capacity_bytes_;
  uint64_t garbage_seed_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<uint8_t[]>> chunks_;
};

class SimDevice : public Device {
 public:
  explicit SimDevice(const SimOptions& options);
  ~SimDevice() override;

  void Submit(Bio* bio) override;
  const DeviceLimits& limits() const override { return limits_; }
  std::string name() const override;
  uint64_t inflight() const override { return inflight_.load(); }
  // Manual mode: runs the clock until idle. Background: waits.
  void Drain() override;

  // Manual mode: advances time by `ticks`, completing due bios in order.
  // Returns how many completed. REQUIRES: !options.background.
  int RunFor(uint64_t ticks);
  // Manual mode: runs until nothing is queued. Returns how many completed.
  int RunUntilIdle();
  uint64_t now() const;

  // Returns an id for RemoveFault.
  int AddFault(const SimFault& fault);
  void RemoveFault(int id);
  void ClearFaults();

  // Power loss (see above). Idempotent.
  void Crash();
  bool crashed() const;
  // A new device over the durable image. Same options, the next seed.
  // REQUIRES: crashed().
  std::unique_ptr<SimDevice> Reboot() const;

  // Copies bytes of the durable image / of what reads see now (for tests).
  void PeekDurable(uint64_t off, void* dst, uint64_t len) const;
  void PeekMedia(uint64_t off, void* dst, uint64_t len) const;

  SimCounters counters() const;
  uint64_t seed() const { return seed_; }
  std::string SeedTrace() const { return SimSeedMessage(seed_); }

 private:
  struct Event {
    Bio* bio;
    uint64_t flush_covers;  // kFlush: writes completed before submission
  };
  using EventKey = std::pair<uint64_t, uint64_t>;  // (complete_at, seq)
  struct VolatileWrite {
    uint64_t seq;
    uint64_t offset;
    std::vector<uint8_t> data;
    bool atomic;
  };

  SimDevice(const SimOptions& options, uint64_t seed,
            std::unique_ptr<SimStore> image);
  void Complete(Bio* bio, int64_t result);
  // Completes the earliest event due by `limit`; false when none is.
  bool Step(uint64_t limit);
  int64_t Execute(const Event& ev) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t ExecuteWrite(const Bio& bio) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExecuteFlush(uint64_t covers) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes the oldest cached write durable.
  void DestageOldest() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<uint8_t> WriteData(const Bio& bio)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int FaultFor(const Bio& bio) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TrimVolatile(uint64_t off, uint64_t len)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Copies runs of `data` at `off` to the durable image, each kept with
  // probability p (all-or-nothing when `whole`).
  void PersistRuns(uint64_t off, const std::vector<uint8_t>& data, double p,
                   bool whole) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t Uniform(uint64_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Chance(double p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void BackgroundLoop();

  const SimOptions options_;
  const uint64_t seed_;
  DeviceLimits limits_;
  std::atomic<uint64_t> inflight_{0};
  mutable base::Mutex mu_{base::LockRank::kLeaf};
  base::CondVar work_cv_;  // background: events queued or stopping
  base::CondVar idle_cv_;  // inflight_ reached 0
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  uint64_t now_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t completed_writes_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<EventKey, Event> queue_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<SimStore> media_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<SimStore> durable_ ABSL_GUARDED_BY(mu_);
  std::deque<VolatileWrite> volatile_ ABSL_GUARDED_BY(mu_);
  uint64_t volatile_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int, SimFault> faults_ ABSL_GUARDED_BY(mu_);
  int next_fault_id_ ABSL_GUARDED_BY(mu_) = 1;
  SimCounters counters_ ABSL_GUARDED_BY(mu_);
  bool crashed_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace block

#endif  // IOMAPD_BLOCK_SIM_DEVICE_H_
