#include "fs/testing/mem_device.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

namespace fs {
namespace testing {

MemDevice::MemDevice(uint64_t capacity_bytes, uint32_t logical_block_size) {
  limits_.capacity_bytes = capacity_bytes;
  limits_.logical_block_size = logical_block_size;
  limits_.dma_alignment = 1;
  limits_.max_io_bytes = 64u << 20;
  limits_.max_segments = 1024;
  cache_.assign(capacity_bytes, '\0');
  durable_ = cache_;
}

void MemDevice::Submit(block::Bio* bio) {
  std::string why;
  int err = block::ValidateBio(*bio, limits_, &why);
  if (err == 0 && bio->op == block::BioOp::kFlush) {
    std::chrono::microseconds delay;
    {
      base::MutexLock lock(&mu_);
      delay = flush_delay_;
    }
    std::this_thread::sleep_for(delay);
  }
  bio->result = err != 0 ? err : Execute(bio);
  bio->end_io(bio);
}

int64_t MemDevice::Execute(block::Bio* bio) {
  base::MutexLock lock(&mu_);
  if (fail_all_) return -EIO;
  switch (bio->op) {
    case block::BioOp::kFlush:
      if (frozen_) return 0;
      ++flushes_;
      for (const PendingWrite& w : pending_)
        durable_.replace(w.offset, w.bytes.size(), w.bytes);
      pending_.clear();
      return 0;
    case block::BioOp::kRead: {
      uint64_t off = bio->offset;
      for (const iovec& v : bio->iov) {
        std::memcpy(v.iov_base, cache_.data() + off, v.iov_len);
        off += v.iov_len;
      }
      return bio->len;
    }
    case block::BioOp::kWrite: {
      ++writes_;
      std::string bytes;
      for (const iovec& v : bio->iov)
        bytes.append(static_cast<const char*>(v.iov_base), v.iov_len);
      if (MaybeFreezeLocked(bio->offset, bytes)) return bio->len;
      cache_.replace(bio->offset, bytes.size(), bytes);
      if (bio->flags & block::kBioFua) {
        durable_.replace(bio->offset, bytes.size(), bytes);
      } else {
        pending_.push_back({bio->offset, std::move(bytes)});
      }
      return bio->len;
    }
    case block::BioOp::kDiscard:
    case block::BioOp::kWriteZeroes: {
      std::string zeroes(bio->len, '\0');
      if (MaybeFreezeLocked(bio->offset, zeroes)) return bio->len;
      cache_.replace(bio->offset, bio->len, zeroes);
      pending_.push_back({bio->offset, std::move(zeroes)});
      return bio->len;
    }
  }
  return -EINVAL;
}

bool MemDevice::MaybeFreezeLocked(uint64_t offset, const std::string& bytes) {
  if (frozen_) return true;
  if (!crash_armed_) return false;
  if (writes_left_-- > 0) return false;
  const uint64_t sectors = (bytes.size() + 511) / 512;
  const uint64_t keep =
      std::min<uint64_t>(bytes.size(), 512 * (crash_rng_() % (sectors + 1)));
  durable_.replace(offset, keep, bytes.substr(0, keep));
  frozen_ = true;
  return true;
}

void MemDevice::CrashAfterWrites(uint64_t n, uint64_t seed) {
  base::MutexLock lock(&mu_);
  crash_armed_ = true;
  writes_left_ = n;
  crash_rng_.seed(seed);
}

bool MemDevice::frozen() const {
  base::MutexLock lock(&mu_);
  return frozen_;
}

void MemDevice::Crash(uint64_t seed, bool tear) {
  base::MutexLock lock(&mu_);
  crash_armed_ = frozen_ = false;
  std::mt19937_64 rng(seed);
  for (const PendingWrite& w : pending_) {
    uint64_t choice = rng() % 3;
    if (choice == 0) continue;  // dropped
    size_t len = w.bytes.size();
    if (choice == 2 && tear && len > 512) len = 512 * (1 + rng() % (len / 512));
    durable_.replace(w.offset, len, w.bytes.substr(0, len));
  }
  pending_.clear();
  cache_ = durable_;
}

uint64_t MemDevice::flushes() const {
  base::MutexLock lock(&mu_);
  return flushes_;
}

uint64_t MemDevice::writes() const {
  base::MutexLock lock(&mu_);
  return writes_;
}

void MemDevice::SetFailAll(bool fail) {
  base::MutexLock lock(&mu_);
  fail_all_ = fail;
}

void MemDevice::SetFlushDelay(std::chrono::microseconds delay) {
  base::MutexLock lock(&mu_);
  flush_delay_ = delay;
}

void MemDevice::Corrupt(uint64_t offset, uint8_t xor_mask) {
  base::MutexLock lock(&mu_);
  cache_[offset] ^= xor_mask;
  durable_[offset] ^= xor_mask;
}

void MemDevice::Overwrite(uint64_t offset, const std::string& bytes) {
  base::MutexLock lock(&mu_);
  cache_.replace(offset, bytes.size(), bytes);
  durable_.replace(offset, bytes.size(), bytes);
}

std::string MemDevice::Read(uint64_t offset, uint64_t len) const {
  base::MutexLock lock(&mu_);
  return cache_.substr(offset, len);
}

}  // namespace testing
}  // namespace fs
