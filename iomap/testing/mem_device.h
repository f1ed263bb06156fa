// A tiny in-memory block::Device for the engine's tests: counts bios and
// bytes, can fail reads or writes of a byte range with -EIO, and completes
// bios either inline or on its own completion thread (as a real device does,
// which exercises folio locks released by another thread).
//
// Thread-safety: thread-safe.
#ifndef IOMAPD_IOMAP_TESTING_MEM_DEVICE_H_
#define IOMAPD_IOMAP_TESTING_MEM_DEVICE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "block/device.h"

namespace iomap {
namespace testing {

class MemDevice : public block::Device {
 public:
  // `async`: complete bios on a completion thread instead of inside Submit.
  explicit MemDevice(uint64_t capacity_bytes, bool async = true);
  ~MemDevice() override;

  void Submit(block::Bio* bio) override;
  const block::DeviceLimits& limits() const override { return limits_; }
  std::string name() const override { return "mem"; }
  uint64_t inflight() const override { return inflight_.load(); }
  void Drain() override;

  // Direct access to the contents (tests only; not synchronised with I/O).
  uint8_t* data() { return data_.data(); }
  void Fill(uint64_t offset, uint64_t len, uint8_t byte);

  // Reads overlapping [offset, offset + len) fail with -EIO (len 0: none).
  void FailReads(uint64_t offset, uint64_t len);

  uint64_t read_bios() const { return read_bios_.load(); }
  uint64_t read_bytes() const { return read_bytes_.load(); }
  uint64_t write_bios() const { return write_bios_.load(); }
  void ResetCounters();

  block::DeviceLimits& mutable_limits() { return limits_; }

 private:
  void Execute(block::Bio* bio);
  void CompletionLoop();

  block::DeviceLimits limits_;
  std::vector<uint8_t> data_;
  const bool async_;
  std::atomic<uint64_t> inflight_{0};
  std::atomic<uint64_t> read_bios_{0};
  std::atomic<uint64_t> read_bytes_{0};
  std::atomic<uint64_t> write_bios_{0};
  std::atomic<uint64_t> fail_off_{0};
  std::atomic<uint64_t> fail_len_{0};

  base::Mutex mu_{base::LockRank::kLeaf};
  base::CondVar cv_;
  base::CondVar idle_cv_;
  std::deque<block::Bio*> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace testing
}  // namespace iomap

#endif  // IOMAPD_IOMAP_TESTING_MEM_DEVICE_H_
