// MemDevice: a small in-memory block::Device for fs tests, with a volatile
// write cache and crashes.
//
// Writes land in the "cache" image at once and complete inline (end_io runs
// before Submit returns). A flush, or a FUA write, makes data durable. Crash()
// rebuilds the cache from the durable image plus a seeded random subset of
// the writes not yet flushed (each of which may also be torn at a 512-byte
// sector boundary), as a power cut would. Counters let tests see how many
// flushes and writes the code under test issued.
//
// Both images are anonymous mappings, zero until written: a device costs
// memory (and, under the sanitizers, shadow memory) only for the sectors
// the test touches. Crash() copies back only the ranges where the two
// images can differ (unflushed writes and a torn write).
//
// Thread-safety: all methods are thread-safe.
#ifndef IOMAPD_FS_TESTING_MEM_DEVICE_H_
#define IOMAPD_FS_TESTING_MEM_DEVICE_H_

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "base/mutex.h"
#include "block/device.h"

namespace fs {
namespace testing {

class MemDevice : public block::Device {
 public:
  explicit MemDevice(uint64_t capacity_bytes,
                     uint32_t logical_block_size = 512);

  void Submit(block::Bio* bio) override;
  const block::DeviceLimits& limits() const override { return limits_; }
  std::string name() const override { return "mem"; }
  uint64_t inflight() const override { return 0; }
  void Drain() override {}

  // Simulates a power cut: unflushed writes are each kept, dropped or (when
  // `tear` is set) torn, chosen by `seed`.
  void Crash(uint64_t seed, bool tear = true);

  // Power fails during the (n+1)-th write from now: that write is torn (a
  // seeded prefix of its sectors reaches the medium) and every later write
  // or flush is silently lost, as if the machine were already dead. Crash()
  // then restarts the device.
  void CrashAfterWrites(uint64_t n, uint64_t seed);
  // True once the armed crash has happened (until Crash()).
  bool frozen() const;

  uint64_t flushes() const;
  uint64_t writes() const;
  // When set, every bio fails with -EIO (a dead device).
  void SetFailAll(bool fail);
  // Each flush sleeps this long before completing (to make batching visible).
  void SetFlushDelay(std::chrono::microseconds delay);

  // Direct access to the current (cached) contents, for corruption tests.
  void Corrupt(uint64_t offset, uint8_t xor_mask);
  void Overwrite(uint64_t offset, const std::string& bytes);
  std::string Read(uint64_t offset, uint64_t len) const;

 private:
  struct PendingWrite {
    uint64_t offset;
    std::string bytes;
  };
  // `size` bytes of zeros, mapped lazily (MAP_ANONYMOUS | MAP_NORESERVE).
  class Image {
   public:
    explicit Image(uint64_t size);
    ~Image();
    Image(const Image&) = delete;
    Image& operator=(const Image&) = delete;
    void Write(uint64_t offset, const void* bytes, uint64_t len);
    void Write(uint64_t offset, const std::string& bytes) {
      Write(offset, bytes.data(), bytes.size());
    }
    uint8_t* data() { return data_; }
    const uint8_t* data() const { return data_; }

   private:
    uint8_t* data_;
    uint64_t size_;
  };
  int64_t Execute(block::Bio* bio);
  // Handles a write-like bio when a crash is armed; true when it was eaten.
  bool MaybeFreezeLocked(uint64_t offset, const std::string& bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  block::DeviceLimits limits_;
  mutable base::Mutex mu_{base::LockRank::kLeaf};
  Image cache_ ABSL_GUARDED_BY(mu_);
  Image durable_ ABSL_GUARDED_BY(mu_);
  std::vector<PendingWrite> pending_ ABSL_GUARDED_BY(mu_);
  // The write torn by an armed crash: its prefix is in durable_ only.
  uint64_t torn_offset_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t torn_len_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t flushes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t writes_ ABSL_GUARDED_BY(mu_) = 0;
  bool fail_all_ ABSL_GUARDED_BY(mu_) = false;
  bool crash_armed_ ABSL_GUARDED_BY(mu_) = false;
  bool frozen_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t writes_left_ ABSL_GUARDED_BY(mu_) = 0;
  std::mt19937_64 crash_rng_ ABSL_GUARDED_BY(mu_);
  std::chrono::microseconds flush_delay_ ABSL_GUARDED_BY(mu_){0};
};

}  // namespace testing
}  // namespace fs

#endif  // IOMAPD_FS_TESTING_MEM_DEVICE_H_
