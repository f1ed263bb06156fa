// UringDevice: a block::Device over io_uring (liburing).
//
// One io_uring ring per device (plus an IOPOLL ring for kBioHipri reads and
// writes when the device supports polled I/O). The descriptor is a registered
// file. Submit() prepares one SQE per bio and calls io_uring_submit once per
// Submit/SubmitBatch (bios submitted from end_io callbacks are plugged: one
// io_uring_submit after the completion batch); when the ring is full
// (queue_depth bios in flight) bios wait in an internal FIFO and are issued
// as completions free slots, so Submit never blocks on I/O and never drops a
// bio. When the IOPOLL ring refuses polled I/O (-EOPNOTSUPP), the bio moves to
// the normal ring and polling is switched off.
//
// One completion thread per ring reaps CQEs and runs end_io:
//   -EAGAIN       the bio is resubmitted (up to 10,000 times in a row)
//   short count   the remainder is resubmitted (iovecs advanced)
//   0 bytes       the device ended early: the bio completes with -EIO
//   -errno        the bio completes with it
// Every CQE is marked seen.
//
// Op mapping: kRead/kWrite -> READ/WRITE(V), FUA -> RWF_DSYNC, kFlush ->
// FSYNC with IORING_FSYNC_DATASYNC, kDiscard -> FALLOCATE PUNCH_HOLE|KEEP_SIZE,
// kWriteZeroes -> FALLOCATE ZERO_RANGE|KEEP_SIZE (PUNCH_HOLE on a regular
// file whose file system has no ZERO_RANGE).
//
// Thread-safety: thread-safe (see device.h). The destructor drains.
#ifndef IOMAPD_BLOCK_URING_DEVICE_H_
#define IOMAPD_BLOCK_URING_DEVICE_H_

#include <liburing.h>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "block/backing_file.h"
#include "block/device.h"

namespace block {

class UringDevice : public Device {
 public:
  struct Options {
    uint32_t queue_depth = 128;  // SQ entries; bios in flight per ring
    bool hipri_poll = true;      // IOPOLL ring for kBioHipri (direct only)
    // Test hook (fault point): sees each CQE result of a read or write before
    // the completion loop does and returns the result to use (e.g. a shorter
    // count or -EAGAIN). Runs on the completion thread.
    std::function<int(const Bio& bio, int res)> result_hook;
  };

  // Takes ownership of file.fd on success only (on failure the caller still
  // owns it, e.g. to fall back to SyncDevice). Fails when the ring cannot be
  // set up (ENOMEM, ENOSYS, EPERM).
  static absl::StatusOr<std::unique_ptr<UringDevice>> Create(
      const BackingFile& file, const Options& options);

  ~UringDevice() override;

  void Submit(Bio* bio) override;
  void SubmitBatch(absl::Span<Bio* const> bios) override;
  const DeviceLimits& limits() const override { return limits_; }
  std::string name() const override { return "uring:" + path_; }
  uint64_t inflight() const override { return inflight_.load(); }
  void Drain() override;

  // True when kBioHipri bios go to an IOPOLL ring.
  bool polling() const { return poll_ring_ != nullptr && !poll_failed_.load(); }

  struct Request;  // one bio on its way (uring_device.cc)

  // A ring, its lock-protected submission state and its completion thread.
  struct Ring {
    struct io_uring ring;
    bool inited = false;
    bool iopoll = false;
    bool fixed_file = false;
    uint32_t capacity = 0;
    base::Mutex mu{base::LockRank::kLeaf};
    base::CondVar poll_cv;                             // IOPOLL: work arrived
    uint32_t issued ABSL_GUARDED_BY(mu) = 0;           // SQEs the kernel holds
    uint32_t prepared ABSL_GUARDED_BY(mu) = 0;         // SQEs not yet submitted
    std::deque<Request*> backlog ABSL_GUARDED_BY(mu);  // waiting for a slot
    bool stopping ABSL_GUARDED_BY(mu) = false;
    std::thread thread;

    ~Ring();
  };

 private:
  UringDevice(const BackingFile& file, const Options& options);

  absl::Status SetUp();
  Request* NewRequest(Bio* bio);
  Ring* RingFor(const Bio& bio);
  void Complete(Bio* bio, int64_t result);
  void FinishRequest(Request* req, int64_t result);
  // Issues `reqs` on `ring` (or queues them behind its backlog) and submits.
  void IssueAll(Ring* ring, absl::Span<Request* const> reqs);
  void IssueLocked(Ring* ring, Request* req)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(ring->mu);
  void SubmitLocked(Ring* ring) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ring->mu);
  void FillFromBacklogLocked(Ring* ring)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(ring->mu);
  void PrepSqe(Request* req, struct io_uring_sqe* sqe);
  // Decides what a CQE means for its request: true when it is finished.
  bool HandleResult(Request* req, int res, int64_t* result);
  void CompletionLoop(Ring* ring);
  int ReapBatch(Ring* ring, bool* stop);
  void StopRing(Ring* ring);

  const std::string path_;
  const int fd_;
  const bool is_block_device_;
  DeviceLimits limits_;
  const Options options_;
  std::unique_ptr<Ring> ring_;
  std::unique_ptr<Ring> poll_ring_;       // null when not polling
  std::atomic<bool> poll_failed_{false};  // polled I/O returned EOPNOTSUPP
  std::atomic<uint64_t> inflight_{0};
  base::Mutex drain_mu_{base::LockRank::kLeaf};
  base::CondVar drain_cv_;
};

}  // namespace block

#endif  // IOMAPD_BLOCK_URING_DEVICE_H_
