// iomap::ErrSeq: the kernel's errseq_t (lib/errseq.c), a 32-bit error
// sequence that lets every open file see a writeback error exactly once, and
// WbError, the writeback error state of one Mapping (errseq + the legacy
// AS_EIO/AS_ENOSPC flags).
//
// Encoding of the 32-bit value:
//   bits 0..11   the last error (a positive errno, 0 = none yet)
//   bit 12       "seen": someone sampled or reported the current error
//   bits 13..31  a counter, bumped when a new error is recorded after the
//                previous one was seen
//
// Usage: a file handle samples a cursor at open (Sample) and at fsync calls
// CheckAndAdvance(&cursor), which reports an error recorded since its cursor
// once and moves the cursor. Sample() returns 0 while the current error is
// unseen, so a handle opened after an error that nobody has reported yet
// still sees it.
//
// Thread-safety: thread-safe (lock-free compare-and-swap). A cursor belongs to
// its handle and must not be shared between threads without synchronisation.
#ifndef IOMAPD_IOMAP_ERRSEQ_H_
#define IOMAPD_IOMAP_ERRSEQ_H_

#include <atomic>
#include <cstdint>

namespace iomap {

class ErrSeq {
 public:
  // A sampled value (the kernel's errseq_t in struct file::f_wb_err).
  using Cursor = uint32_t;

  ErrSeq() = default;
  ErrSeq(const ErrSeq&) = delete;
  ErrSeq& operator=(const ErrSeq&) = delete;

  // errseq_set(): records `err` (negative errno; 0 or out of range is
  // ignored and returns the current value). Returns the new value.
  uint32_t Set(int err);
  // errseq_sample(): the cursor a new handle starts from; 0 while the
  // current error has not been seen (so the new handle will see it).
  Cursor Sample() const;
  // errseq_check(): the error recorded since `since` (negative errno) or 0.
  // Does not mark anything seen.
  int Check(Cursor since) const;
  // errseq_check_and_advance(): as Check, and if the value moved, marks it
  // seen and sets *since to it, so the same error is reported only once to
  // this cursor. Returns the error or 0.
  int CheckAndAdvance(Cursor* since);

  uint32_t raw() const { return value_.load(std::memory_order_acquire); }

  static constexpr uint32_t kErrnoMask = (1u << 12) - 1;  // MAX_ERRNO
  static constexpr uint32_t kSeen = 1u << 12;
  static constexpr uint32_t kCtrInc = 1u << 13;

 private:
  std::atomic<uint32_t> value_{0};
};

// The writeback error state of a Mapping (mapping->wb_err plus the AS_EIO /
// AS_ENOSPC bits of mapping->flags). Thread-safe.
class WbError {
 public:
  // mapping_set_error(): records a writeback error for every open file (the
  // errseq) and for the next FilemapCheckErrors-style caller (the legacy
  // flags). err 0 does nothing.
  void Set(int err);
  // filemap_check_errors(): -ENOSPC or -EIO if the legacy flags were set
  // (clearing them), else 0.
  int TestAndClearLegacy();
  ErrSeq& seq() { return seq_; }
  const ErrSeq& seq() const { return seq_; }

 private:
  static constexpr unsigned kAsEio = 1u << 0;
  static constexpr unsigned kAsEnospc = 1u << 1;
  ErrSeq seq_;
  std::atomic<unsigned> legacy_{0};
};

}  // namespace iomap

#endif  // IOMAPD_IOMAP_ERRSEQ_H_
