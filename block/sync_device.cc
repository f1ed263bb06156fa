// SyncDevice: a worker pool doing preadv/pwritev/fdatasync/fallocate.
#include "block/sync_device.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "absl/container/inlined_vector.h"
#include "base/errno.h"

namespace block {
namespace {

constexpr int kPunchMode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
constexpr int kZeroMode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;

// Drops the first `skip` bytes of `iov`.
void Advance(absl::InlinedVector<struct iovec, 4>* iov, uint64_t skip) {
  size_t i = 0;
  while (i < iov->size() && skip >= (*iov)[i].iov_len)
    skip -= (*iov)[i++].iov_len;
  iov->erase(iov->begin(), iov->begin() + i);
  if (!iov->empty() && skip > 0) {
    (*iov)[0].iov_base = static_cast<char*>((*iov)[0].iov_base) + skip;
    (*iov)[0].iov_len -= skip;
  }
}

}  // namespace

SyncDevice::SyncDevice(const BackingFile& file, const Options& options)
    : path_(file.path),
      fd_(file.fd),
      is_block_device_(file.is_block_device),
      limits_(file.limits),
      options_(options) {}

std::unique_ptr<SyncDevice> SyncDevice::Create(const BackingFile& file,
                                               const Options& options) {
  std::unique_ptr<SyncDevice> dev(new SyncDevice(file, options));
  const uint32_t n = options.threads == 0 ? 1 : options.threads;
  for (uint32_t i = 0; i < n; ++i)
    dev->workers_.emplace_back([d = dev.get()] { d->Worker(); });
  return dev;
}

SyncDevice::~SyncDevice() {
  Drain();
  {
    base::MutexLock lock(&mu_);
    stopping_ = true;
    work_cv_.SignalAll();
  }
  for (std::thread& t : workers_) t.join();
  close(fd_);
}

bool SyncDevice::Accept(Bio* bio) {
  int err = ValidateBio(*bio, limits_, nullptr);
  if (err == 0) return true;
  std::string why;
  ValidateBio(*bio, limits_, &why);
  fprintf(stderr, "%s: rejected bio: %s (%s)\n", name().c_str(), why.c_str(),
          base::ErrnoName(err));
  Complete(bio, err);
  return false;
}

void SyncDevice::Submit(Bio* bio) { SubmitBatch(absl::MakeConstSpan(&bio, 1)); }

void SyncDevice::SubmitBatch(absl::Span<Bio* const> bios) {
  inflight_.fetch_add(bios.size());
  absl::InlinedVector<Bio*, 32> ok;
  for (Bio* bio : bios)
    if (Accept(bio)) ok.push_back(bio);
  if (ok.empty()) return;
  base::MutexLock lock(&mu_);
  for (Bio* bio : ok) queue_.push_back(bio);
  if (ok.size() == 1) {
    work_cv_.Signal();
  } else {
    work_cv_.SignalAll();
  }
}

void SyncDevice::Complete(Bio* bio, int64_t result) {
  bio->result = result;
  bio->end_io(bio);
  if (inflight_.fetch_sub(1) == 1) {
    base::MutexLock lock(&drain_mu_);
    drain_cv_.SignalAll();
  }
}

void SyncDevice::Worker() {
  for (;;) {
    Bio* bio = nullptr;
    {
      base::MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) work_cv_.Wait(&mu_);
      if (queue_.empty()) return;
      bio = queue_.front();
      queue_.pop_front();
    }
    Complete(bio, Execute(*bio));
  }
}

int64_t SyncDevice::Execute(const Bio& bio) {
  switch (bio.op) {
    case BioOp::kRead:
    case BioOp::kWrite:
      return Transfer(bio);
    case BioOp::kFlush:
      return fdatasync(fd_) == 0 ? 0 : -errno;
    case BioOp::kDiscard:
    case BioOp::kWriteZeroes:
      return Fallocate(bio);
  }
  return -EINVAL;
}

ssize_t SyncDevice::TransferOnce(const Bio& bio, const struct iovec* iov, int n,
                                 uint64_t off) {
  ssize_t res;
  if (bio.op == BioOp::kRead) {
    res = preadv(fd_, iov, n, static_cast<off_t>(off));
  } else if (bio.flags & kBioFua) {
    res = pwritev2(fd_, iov, n, static_cast<off_t>(off), RWF_DSYNC);
    if (res < 0 && errno == EOPNOTSUPP) {
      res = pwritev(fd_, iov, n, static_cast<off_t>(off));
      if (res > 0 && fdatasync(fd_) != 0) res = -1;
    }
  } else {
    res = pwritev(fd_, iov, n, static_cast<off_t>(off));
  }
  if (res < 0) res = -errno;
  if (options_.result_hook) res = options_.result_hook(bio, res);
  return res;
}

int64_t SyncDevice::Transfer(const Bio& bio) {
  absl::InlinedVector<struct iovec, 4> iov(bio.iov.begin(), bio.iov.end());
  uint64_t done = 0;
  while (done < bio.len) {
    ssize_t res = TransferOnce(bio, iov.data(), static_cast<int>(iov.size()),
                               bio.offset + done);
    if (res == -EINTR || res == -EAGAIN) continue;
    if (res < 0) return res;
    if (res == 0) return -EIO;  // the device ended before the range did
    done += static_cast<uint64_t>(res);
    Advance(&iov, static_cast<uint64_t>(res));
  }
  return static_cast<int64_t>(bio.len);
}

int64_t SyncDevice::Fallocate(const Bio& bio) {
  int mode = bio.op == BioOp::kWriteZeroes ? kZeroMode : kPunchMode;
  const off_t off = static_cast<off_t>(bio.offset);
  const off_t len = static_cast<off_t>(bio.len);
  int rc = fallocate(fd_, mode, off, len);
  if (rc != 0 && errno == EOPNOTSUPP && mode == kZeroMode && !is_block_device_)
    rc = fallocate(fd_, kPunchMode, off, len);
  return rc == 0 ? static_cast<int64_t>(bio.len) : -errno;
}

void SyncDevice::Drain() {
  base::MutexLock lock(&drain_mu_);
  while (inflight_.load() > 0) drain_cv_.Wait(&drain_mu_);
}

}  // namespace block
