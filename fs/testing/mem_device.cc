#include "fs/testing/mem_device.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace fs {
namespace testing {
namespace {

// A test's misuse of the device: there is no caller to return an error to.
[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "MemDevice: %s\n", what);
  std::abort();
}

}  // namespace

MemDevice::Image::Image(uint64_t size) : size_(size) {
  void* p = mmap(nullptr, std::max<uint64_t>(size, 1), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) Die("mmap of the image failed");
  data_ = static_cast<uint8_t*>(p);
}

MemDevice::Image::~Image() { munmap(data_, std::max<uint64_t>(size_, 1)); }

void MemDevice::Image::Write(uint64_t offset, const void* bytes,
                             uint64_t len) {
  if (offset > size_ || len > size_ - offset) Die("write past the image");
  std::memcpy(data_ + offset, bytes, len);
}

MemDevice::MemDevice(uint64_t capacity_bytes, uint32_t logical_block_size)
    : cache_(capacity_bytes), durable_(capacity_bytes) {
  limits_.capacity_bytes = capacity_bytes;
  limits_.logical_block_size = logical_block_size;
  limits_.dma_alignment = 1;
  limits_.max_io_bytes = 64u << 20;
  limits_.max_segments = 1024;
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
      for (const PendingWrite& w : pending_) durable_.Write(w.offset, w.bytes);
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
      cache_.Write(bio->offset, bytes);
      if (bio->flags & block::kBioFua) {
        durable_.Write(bio->offset, bytes);
      } else {
        pending_.push_back({bio->offset, std::move(bytes)});
      }
      return bio->len;
    }
    case block::BioOp::kDiscard:
    case block::BioOp::kWriteZeroes: {
      std::string zeroes(bio->len, '\0');
      if (MaybeFreezeLocked(bio->offset, zeroes)) return bio->len;
      cache_.Write(bio->offset, zeroes);
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
  durable_.Write(offset, bytes.data(), keep);
  torn_offset_ = offset;
  torn_len_ = keep;
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
    durable_.Write(w.offset, w.bytes.data(), len);
  }
  // Everywhere else the images already agree: every other write reached
  // both (FUA, or a flush applied it to durable_).
  for (const PendingWrite& w : pending_)
    cache_.Write(w.offset, durable_.data() + w.offset, w.bytes.size());
  cache_.Write(torn_offset_, durable_.data() + torn_offset_, torn_len_);
  torn_len_ = 0;
  pending_.clear();
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
  if (offset >= limits_.capacity_bytes) Die("Corrupt past the end");
  cache_.data()[offset] ^= xor_mask;
  durable_.data()[offset] ^= xor_mask;
}

void MemDevice::Overwrite(uint64_t offset, const std::string& bytes) {
  base::MutexLock lock(&mu_);
  cache_.Write(offset, bytes);
  durable_.Write(offset, bytes);
}

std::string MemDevice::Read(uint64_t offset, uint64_t len) const {
  base::MutexLock lock(&mu_);
  if (offset > limits_.capacity_bytes || len > limits_.capacity_bytes - offset)
    Die("Read past the end");
  return std::string(reinterpret_cast<const char*>(cache_.data()) + offset,
                     len);
}

}  // namespace testing
}  // namespace fs
