// UringDevice: submission, the completion loop, and the IOPOLL ring.
#include "block/uring_device.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "base/errno.h"

namespace block {
namespace {

// A bio that keeps getting -EAGAIN completes with it after this many tries.
constexpr uint32_t kMaxRetries = 10000;
constexpr int kPunchMode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
constexpr int kZeroMode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;

bool IsDataOp(BioOp op) { return op == BioOp::kRead || op == BioOp::kWrite; }

// ThreadSanitizer cannot see the kernel pass a request from the submitting
// thread to the completion thread; tell it.
#if defined(__SANITIZE_THREAD__)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
void HandOver(void* p) { __tsan_release(p); }
void TakeOver(void* p) { __tsan_acquire(p); }
#else
void HandOver(void*) {}
void TakeOver(void*) {}
#endif

[[noreturn]] void Die(const char* what, int err) {
  fprintf(stderr, "UringDevice: %s: %s\n", what, strerror(-err));
  abort();
}

// The ring whose completion thread is running end_io callbacks right now:
// bios those callbacks submit are prepared but submitted together after the
// batch (a plug), one io_uring_submit for many bios.
thread_local UringDevice::Ring* tls_plugged_ring = nullptr;
thread_local bool tls_plug_pending = false;

}  // namespace

// One bio on its way through a ring.
struct UringDevice::Request {
  Bio* bio = nullptr;
  Ring* ring = nullptr;
  uint64_t done = 0;  // bytes already transferred
  uint32_t retries = 0;
  int fallocate_mode = 0;
  bool use_rest = false;  // issue `rest` instead of bio->iov
  absl::InlinedVector<struct iovec, 4> rest;

  // Points `rest` at the part of bio->iov after the first `done` bytes.
  void AdvanceIov() {
    rest.clear();
    uint64_t skip = done;
    for (const struct iovec& v : bio->iov) {
      if (skip >= v.iov_len) {
        skip -= v.iov_len;
        continue;
      }
      rest.push_back({static_cast<char*>(v.iov_base) + skip, v.iov_len - skip});
      skip = 0;
    }
    use_rest = true;
  }
};

UringDevice::Ring::~Ring() {
  if (inited) io_uring_queue_exit(&ring);
}

namespace {

// Sets up `r` with `entries` SQEs (SUBMIT_ALL when the kernel has it).
int InitRing(UringDevice::Ring* r, uint32_t entries, unsigned extra_flags);

}  // namespace

UringDevice::UringDevice(const BackingFile& file, const Options& options)
    : path_(file.path),
      fd_(file.fd),
      is_block_device_(file.is_block_device),
      limits_(file.limits),
      options_(options) {}

absl::StatusOr<std::unique_ptr<UringDevice>> UringDevice::Create(
    const BackingFile& file, const Options& options) {
  std::unique_ptr<UringDevice> dev(new UringDevice(file, options));
  absl::Status s = dev->SetUp();
  if (!s.ok()) return s;
  return dev;
}

namespace {

int InitRing(UringDevice::Ring* r, uint32_t entries, unsigned extra_flags) {
  struct io_uring_params p;
  memset(&p, 0, sizeof(p));
  p.flags = extra_flags | IORING_SETUP_SUBMIT_ALL;
  int ret = io_uring_queue_init_params(entries, &r->ring, &p);
  if (ret == -EINVAL) {
    memset(&p, 0, sizeof(p));
    p.flags = extra_flags;
    ret = io_uring_queue_init_params(entries, &r->ring, &p);
  }
  if (ret < 0) return ret;
  r->inited = true;
  r->capacity = p.sq_entries < entries ? p.sq_entries : entries;
  r->iopoll = (extra_flags & IORING_SETUP_IOPOLL) != 0;
  return 0;
}

void RegisterFile(UringDevice::Ring* r, int fd) {
  r->fixed_file = io_uring_register_files(&r->ring, &fd, 1) == 0;
}

// Reads one block through an IOPOLL ring: does polled I/O work here?
bool PollWorks(UringDevice::Ring* r, int fd, const DeviceLimits& l) {
  if (l.capacity_bytes < l.logical_block_size) return false;
  AlignedBuffer buf = AllocAligned(l.logical_block_size, 4096);
  struct io_uring_sqe* sqe = io_uring_get_sqe(&r->ring);
  io_uring_prep_read(sqe, fd, buf.get(), l.logical_block_size, 0);
  if (io_uring_submit(&r->ring) != 1) return false;
  struct io_uring_cqe* cqe = nullptr;
  if (io_uring_wait_cqe(&r->ring, &cqe) != 0) return false;
  const bool ok = cqe->res == static_cast<int>(l.logical_block_size);
  io_uring_cqe_seen(&r->ring, cqe);
  return ok;
}

}  // namespace

absl::Status UringDevice::SetUp() {
  ring_ = std::make_unique<Ring>();
  const uint32_t depth = options_.queue_depth == 0 ? 1 : options_.queue_depth;
  int ret = InitRing(ring_.get(), depth, 0);
  if (ret < 0) {
    ring_.reset();
    return base::ErrnoStatus(
        ret, absl::StrCat(path_, ": io_uring_queue_init: ", strerror(-ret)));
  }
  RegisterFile(ring_.get(), fd_);
  if (options_.hipri_poll && limits_.direct) {
    auto poll = std::make_unique<Ring>();
    if (InitRing(poll.get(), depth, IORING_SETUP_IOPOLL) < 0) {
      poll.reset();
    } else if (PollWorks(poll.get(), fd_, limits_)) {
      RegisterFile(poll.get(), fd_);
      poll_ring_ = std::move(poll);
    }
  }
  ring_->thread = std::thread([this] { CompletionLoop(ring_.get()); });
  if (poll_ring_)
    poll_ring_->thread =
        std::thread([this] { CompletionLoop(poll_ring_.get()); });
  return absl::OkStatus();
}

UringDevice::~UringDevice() {
  if (!ring_) return;  // SetUp failed: the caller still owns fd_
  Drain();
  StopRing(ring_.get());
  if (poll_ring_) StopRing(poll_ring_.get());
  close(fd_);
}

void UringDevice::StopRing(Ring* ring) {
  {
    base::MutexLock lock(&ring->mu);
    ring->stopping = true;
    if (!ring->iopoll) {
      // A NOP with no request wakes the completion thread and tells it to
      // stop; nothing is in flight after Drain, so there is a free SQE.
      struct io_uring_sqe* sqe = io_uring_get_sqe(&ring->ring);
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data(sqe, nullptr);
      ring->prepared++;
      SubmitLocked(ring);
    }
    ring->poll_cv.SignalAll();
  }
  ring->thread.join();
}

UringDevice::Ring* UringDevice::RingFor(const Bio& bio) {
  if (poll_ring_ && (bio.flags & kBioHipri) && IsDataOp(bio.op) &&
      !poll_failed_.load(std::memory_order_relaxed))
    return poll_ring_.get();
  return ring_.get();
}

UringDevice::Request* UringDevice::NewRequest(Bio* bio) {
  auto* req = new Request;
  req->bio = bio;
  req->ring = RingFor(*bio);
  req->fallocate_mode = bio->op == BioOp::kWriteZeroes ? kZeroMode : kPunchMode;
  return req;
}

void UringDevice::Complete(Bio* bio, int64_t result) {
  bio->result = result;
  bio->end_io(bio);
  if (inflight_.fetch_sub(1) == 1) {
    base::MutexLock lock(&drain_mu_);
    drain_cv_.SignalAll();
  }
}

void UringDevice::FinishRequest(Request* req, int64_t result) {
  Bio* bio = req->bio;
  delete req;
  Complete(bio, result);
}

void UringDevice::Submit(Bio* bio) {
  SubmitBatch(absl::MakeConstSpan(&bio, 1));
}

void UringDevice::SubmitBatch(absl::Span<Bio* const> bios) {
  inflight_.fetch_add(bios.size());
  absl::InlinedVector<Request*, 32> reqs;
  for (Bio* bio : bios) {
    int err = ValidateBio(*bio, limits_, nullptr);
    if (err != 0) {
      std::string why;
      ValidateBio(*bio, limits_, &why);
      fprintf(stderr, "%s: rejected bio: %s (%s)\n", name().c_str(),
              why.c_str(), base::ErrnoName(err));
      Complete(bio, err);
      continue;
    }
    reqs.push_back(NewRequest(bio));
  }
  // Split by ring first: once a ring's lock is released its requests may
  // complete and be freed at any moment.
  absl::InlinedVector<Request*, 32> polled;
  auto normal_end =
      std::stable_partition(reqs.begin(), reqs.end(),
                            [&](Request* r) { return r->ring == ring_.get(); });
  polled.assign(normal_end, reqs.end());
  reqs.erase(normal_end, reqs.end());
  if (!reqs.empty()) IssueAll(ring_.get(), reqs);
  if (!polled.empty()) IssueAll(poll_ring_.get(), polled);
}

void UringDevice::IssueAll(Ring* ring, absl::Span<Request* const> reqs) {
  base::MutexLock lock(&ring->mu);
  for (Request* req : reqs) {
    if (ring->backlog.empty()) {
      IssueLocked(ring, req);
    } else {
      ring->backlog.push_back(req);
    }
  }
  if (tls_plugged_ring == ring) {
    tls_plug_pending = true;  // ReapBatch submits after its callbacks
  } else {
    SubmitLocked(ring);
  }
}

void UringDevice::IssueLocked(Ring* ring, Request* req) {
  struct io_uring_sqe* sqe = nullptr;
  if (ring->issued + ring->prepared < ring->capacity)
    sqe = io_uring_get_sqe(&ring->ring);
  if (sqe == nullptr) {
    ring->backlog.push_back(req);
    return;
  }
  PrepSqe(req, sqe);
  ring->prepared++;
}

void UringDevice::FillFromBacklogLocked(Ring* ring) {
  while (!ring->backlog.empty() &&
         ring->issued + ring->prepared < ring->capacity) {
    Request* req = ring->backlog.front();
    ring->backlog.pop_front();
    IssueLocked(ring, req);
  }
}

void UringDevice::SubmitLocked(Ring* ring) {
  int spins = 0;
  while (ring->prepared > 0) {
    int ret = io_uring_submit(&ring->ring);
    if (ret > 0) {
      ring->issued += ret;
      ring->prepared -= ret;
      continue;
    }
    if (ret == -EINTR || ret == -EAGAIN || ret == -EBUSY || ret == 0) {
      if (++spins > 1000000) Die("io_uring_submit makes no progress", ret);
      sched_yield();
      continue;
    }
    Die("io_uring_submit", ret);
  }
  if (ring->iopoll && ring->issued > 0) ring->poll_cv.SignalAll();
}

void UringDevice::PrepSqe(Request* req, struct io_uring_sqe* sqe) {
  const Bio& bio = *req->bio;
  const uint64_t off = bio.offset + req->done;
  const int fd = req->ring->fixed_file ? 0 : fd_;
  if (IsDataOp(bio.op)) {
    const struct iovec* iov = req->use_rest ? req->rest.data() : bio.iov.data();
    const unsigned n = req->use_rest ? req->rest.size() : bio.iov.size();
    const bool rd = bio.op == BioOp::kRead;
    if (n == 1 && rd) {
      io_uring_prep_read(sqe, fd, iov[0].iov_base, iov[0].iov_len, off);
    } else if (n == 1) {
      io_uring_prep_write(sqe, fd, iov[0].iov_base, iov[0].iov_len, off);
    } else if (rd) {
      io_uring_prep_readv(sqe, fd, iov, n, off);
    } else {
      io_uring_prep_writev(sqe, fd, iov, n, off);
    }
    if (!rd && (bio.flags & kBioFua)) sqe->rw_flags = RWF_DSYNC;
  } else if (bio.op == BioOp::kFlush) {
    io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
  } else {
    io_uring_prep_fallocate(sqe, fd, req->fallocate_mode, off, bio.len);
  }
  if (req->ring->fixed_file) sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data(sqe, req);
  HandOver(req);
}

bool UringDevice::HandleResult(Request* req, int res, int64_t* result) {
  TakeOver(req);
  const Bio& bio = *req->bio;
  if (options_.result_hook && IsDataOp(bio.op))
    res = options_.result_hook(bio, res);
  if (res == -EAGAIN || res == -EINTR) {
    *result = -EAGAIN;
    return ++req->retries >= kMaxRetries;
  }
  if (res == -EOPNOTSUPP && req->ring->iopoll) {
    // The file or queue cannot poll after all: use the normal ring from now.
    poll_failed_.store(true, std::memory_order_relaxed);
    req->ring = ring_.get();
    return false;
  }
  if (res == -EOPNOTSUPP && bio.op == BioOp::kWriteZeroes &&
      req->fallocate_mode == kZeroMode && !is_block_device_) {
    req->fallocate_mode = kPunchMode;  // a hole reads back as zeroes too
    return false;
  }
  if (res < 0) {
    *result = res;
    return true;
  }
  if (bio.op == BioOp::kFlush) {
    *result = 0;
    return true;
  }
  if (!IsDataOp(bio.op)) {
    *result = static_cast<int64_t>(bio.len);
    return true;
  }
  if (res == 0) {  // the device ended before the range did
    *result = -EIO;
    return true;
  }
  req->done += static_cast<uint64_t>(res);
  if (req->done >= bio.len) {
    *result = static_cast<int64_t>(bio.len);
    return true;
  }
  req->retries = 0;
  req->AdvanceIov();  // short transfer: requeue the rest
  return false;
}

int UringDevice::ReapBatch(Ring* ring, bool* stop) {
  absl::InlinedVector<std::pair<Request*, int64_t>, 64> finished;
  absl::InlinedVector<Request*, 16> again;
  absl::InlinedVector<Request*, 4> moved;  // to another ring
  unsigned head;
  unsigned seen = 0;
  struct io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring->ring, head, cqe) {
    ++seen;
    auto* req = static_cast<Request*>(io_uring_cqe_get_data(cqe));
    if (req == nullptr) {
      *stop = true;
      continue;
    }
    int64_t result = 0;
    if (HandleResult(req, cqe->res, &result)) {
      finished.push_back({req, result});
    } else if (req->ring != ring) {
      moved.push_back(req);
    } else {
      again.push_back(req);
    }
  }
  io_uring_cq_advance(&ring->ring, seen);
  if (seen > 0) {
    base::MutexLock lock(&ring->mu);
    ring->issued -= seen;
    for (Request* req : again) IssueLocked(ring, req);
    FillFromBacklogLocked(ring);
    SubmitLocked(ring);
  }
  for (Request* req : moved) {
    base::MutexLock lock(&req->ring->mu);
    IssueLocked(req->ring, req);
    SubmitLocked(req->ring);
  }
  tls_plugged_ring = ring;
  for (auto& [req, result] : finished) FinishRequest(req, result);
  tls_plugged_ring = nullptr;
  if (tls_plug_pending) {
    tls_plug_pending = false;
    base::MutexLock lock(&ring->mu);
    SubmitLocked(ring);
  }
  return static_cast<int>(seen);
}

void UringDevice::CompletionLoop(Ring* ring) {
  bool stop = false;
  while (!stop) {
    if (ring->iopoll) {
      base::MutexLock lock(&ring->mu);
      while (ring->issued == 0 && !ring->stopping)
        ring->poll_cv.Wait(&ring->mu);
      if (ring->issued == 0) return;  // stopping and idle
    }
    struct io_uring_cqe* cqe = nullptr;
    int ret = io_uring_wait_cqe(&ring->ring, &cqe);
    if (ret == -EINTR || ret == -EAGAIN || ret == -ETIME) continue;
    if (ret < 0) Die("io_uring_wait_cqe", ret);
    ReapBatch(ring, &stop);
  }
}

void UringDevice::Drain() {
  base::MutexLock lock(&drain_mu_);
  while (inflight_.load() > 0) drain_cv_.Wait(&drain_mu_);
}

}  // namespace block
