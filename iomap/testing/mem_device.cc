#include "iomap/testing/mem_device.h"

#include <cerrno>
#include <cstring>

namespace iomap {
namespace testing {

MemDevice::MemDevice(uint64_t capacity_bytes, bool async)
    : data_(capacity_bytes, 0), async_(async) {
  limits_.capacity_bytes = capacity_bytes;
  limits_.logical_block_size = 512;
  limits_.dma_alignment = 512;
  limits_.max_io_bytes = 1u << 20;
  limits_.max_segments = 256;
  if (async_) thread_ = std::thread([this] { CompletionLoop(); });
}

MemDevice::~MemDevice() {
  if (!async_) return;
  {
    base::MutexLock l(&mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  thread_.join();
}

void MemDevice::Fill(uint64_t offset, uint64_t len, uint8_t byte) {
  std::memset(data_.data() + offset, byte, len);
}

void MemDevice::FailReads(uint64_t offset, uint64_t len) {
  fail_off_ = offset;
  fail_len_ = len;
}

void MemDevice::ResetCounters() {
  read_bios_ = 0;
  read_bytes_ = 0;
  write_bios_ = 0;
}

void MemDevice::Submit(block::Bio* bio) {
  inflight_.fetch_add(1);
  std::string why;
  int err = block::ValidateBio(*bio, limits_, &why);
  if (err != 0 || !async_) {
    if (err != 0) {
      bio->result = err;
      inflight_.fetch_sub(1);
      bio->end_io(bio);
      return;
    }
    Execute(bio);
    return;
  }
  {
    base::MutexLock l(&mu_);
    queue_.push_back(bio);
  }
  cv_.Signal();
}

void MemDevice::Execute(block::Bio* bio) {
  const uint64_t flen = fail_len_.load();
  const uint64_t foff = fail_off_.load();
  bool fail = bio->op == block::BioOp::kRead && flen != 0 &&
              bio->offset < foff + flen && foff < bio->offset + bio->len;
  if (bio->op == block::BioOp::kRead) {
    read_bios_.fetch_add(1);
    read_bytes_.fetch_add(bio->len);
  } else if (bio->op == block::BioOp::kWrite) {
    write_bios_.fetch_add(1);
  }
  uint64_t off = bio->offset;
  if (!fail) {
    for (const struct iovec& v : bio->iov) {
      if (bio->op == block::BioOp::kRead) {
        std::memcpy(v.iov_base, data_.data() + off, v.iov_len);
      } else if (bio->op == block::BioOp::kWrite) {
        std::memcpy(data_.data() + off, v.iov_base, v.iov_len);
      }
      off += v.iov_len;
    }
  }
  bio->result = fail ? -EIO : static_cast<int64_t>(bio->len);
  bio->end_io(bio);
  if (inflight_.fetch_sub(1) == 1) {
    base::MutexLock l(&mu_);
    idle_cv_.SignalAll();
  }
}

void MemDevice::CompletionLoop() {
  for (;;) {
    block::Bio* bio;
    {
      base::MutexLock l(&mu_);
      while (queue_.empty() && !stop_) cv_.Wait(&mu_);
      if (queue_.empty()) return;
      bio = queue_.front();
      queue_.pop_front();
    }
    Execute(bio);
  }
}

void MemDevice::Drain() {
  base::MutexLock l(&mu_);
  while (inflight_.load() != 0)
    idle_cv_.WaitFor(&mu_, std::chrono::milliseconds(1));
}

}  // namespace testing
}  // namespace iomap
