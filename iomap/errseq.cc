#include "iomap/errseq.h"

#include <cerrno>

namespace iomap {

uint32_t ErrSeq::Set(int err) {
  uint32_t old = value_.load(std::memory_order_acquire);
  if (err >= 0 || static_cast<uint32_t>(-err) > kErrnoMask) return old;
  for (;;) {
    uint32_t next = (old & ~(kErrnoMask | kSeen)) | static_cast<uint32_t>(-err);
    // Only a seen error needs a new sequence number: an unseen one is
    // simply replaced (whoever looks next reports the latest error).
    if (old & kSeen) next += kCtrInc;
    if (next == old) return old;
    if (value_.compare_exchange_weak(old, next, std::memory_order_acq_rel)) {
      return next;
    }
  }
}

ErrSeq::Cursor ErrSeq::Sample() const {
  uint32_t old = value_.load(std::memory_order_acquire);
  return (old & kSeen) ? old : 0;
}

int ErrSeq::Check(Cursor since) const {
  uint32_t cur = value_.load(std::memory_order_acquire);
  if (cur == since) return 0;
  return -static_cast<int>(cur & kErrnoMask);
}

int ErrSeq::CheckAndAdvance(Cursor* since) {
  uint32_t old = value_.load(std::memory_order_acquire);
  if (old == *since) return 0;
  uint32_t next = old | kSeen;
  while (next != old &&
         !value_.compare_exchange_weak(old, next, std::memory_order_acq_rel)) {
    next = old | kSeen;
  }
  *since = next;
  return -static_cast<int>(next & kErrnoMask);
}

void WbError::Set(int err) {
  if (err == 0) return;
  seq_.Set(err);
  legacy_.fetch_or(err == -ENOSPC ? kAsEnospc : kAsEio,
                   std::memory_order_acq_rel);
}

int WbError::TestAndClearLegacy() {
  unsigned bits = legacy_.exchange(0, std::memory_order_acq_rel);
  if (bits & kAsEnospc) return -ENOSPC;
  if (bits & kAsEio) return -EIO;
  return 0;
}

}  // namespace iomap
