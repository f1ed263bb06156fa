// SyncDevice: a block::Device over preadv/pwritev on a small thread pool.
//
// The fallback when io_uring is unavailable. Submit() queues the bio and
// returns; one of `threads` workers performs it with plain system calls and
// runs end_io. Short transfers are continued, EINTR/EAGAIN retried, a
// transfer of 0 bytes before the end completes the bio with -EIO.
//
// Op mapping: FUA -> pwritev2(RWF_DSYNC) (pwritev + fdatasync when the kernel
// lacks it), flush -> fdatasync, discard -> fallocate(PUNCH_HOLE|KEEP_SIZE),
// write-zeroes -> fallocate(ZERO_RANGE|KEEP_SIZE), PUNCH_HOLE on a regular
// file whose file system has no ZERO_RANGE.
//
// Thread-safety: thread-safe (see device.h). end_io runs on a worker thread;
// bios complete in any order. The destructor drains.
#ifndef IOMAPD_BLOCK_SYNC_DEVICE_H_
#define IOMAPD_BLOCK_SYNC_DEVICE_H_

#include <sys/types.h>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "block/backing_file.h"
#include "block/device.h"

namespace block {

class SyncDevice : public Device {
 public:
  struct Options {
    uint32_t threads = 4;  // worker threads (at least 1)
    // Test hook (fault point): sees the result of each preadv/pwritev call
    // (bytes or -errno) and returns the one to use, e.g. a shorter count,
    // -EINTR or -EAGAIN. Runs on a worker thread.
    std::function<ssize_t(const Bio& bio, ssize_t res)> result_hook;
  };

  // Takes ownership of file.fd. Never fails.
  static std::unique_ptr<SyncDevice> Create(const BackingFile& file,
                                            const Options& options);
  ~SyncDevice() override;

  void Submit(Bio* bio) override;
  void SubmitBatch(absl::Span<Bio* const> bios) override;
  const DeviceLimits& limits() const override { return limits_; }
  std::string name() const override { return "sync:" + path_; }
  uint64_t inflight() const override { return inflight_.load(); }
  void Drain() override;

 private:
  SyncDevice(const BackingFile& file, const Options& options);

  bool Accept(Bio* bio);  // validates; completes an invalid bio at once
  void Complete(Bio* bio, int64_t result);
  void Worker();
  int64_t Execute(const Bio& bio);
  int64_t Transfer(const Bio& bio);
  ssize_t TransferOnce(const Bio& bio, const struct iovec* iov, int n,
                       uint64_t off);
  int64_t Fallocate(const Bio& bio);

  const std::string path_;
  const int fd_;
  const bool is_block_device_;
  DeviceLimits limits_;
  const Options options_;
  std::atomic<uint64_t> inflight_{0};
  base::Mutex mu_{base::LockRank::kLeaf};
  base::CondVar work_cv_;
  std::deque<Bio*> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  base::Mutex drain_mu_{base::LockRank::kLeaf};
  base::CondVar drain_cv_;
  std::vector<std::thread> workers_;
};

}  // namespace block

#endif  // IOMAPD_BLOCK_SYNC_DEVICE_H_
