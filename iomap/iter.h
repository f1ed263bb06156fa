// iomap::IomapIter: the iterator every engine operation is written around
// (the kernel's struct iomap_iter and iomap_iter(), fs/iomap/iter.c).
//
//   IomapIter iter(inode, pos, len, flags);
//   int ret;
//   while ((ret = iter.Next(ops)) > 0) iter.status = Step(iter);
//
// Each Step works on [iter.pos(), iter.pos() + iter.Length()) of the current
// mapping, moves forward with iter.Advance(n), and returns 0 or -errno.
//
// Next(), on every call after the first:
//   1. advanced = pos - start of this mapping;
//   2. IomapEnd(inode, mapping start, min(original length, mapping end) -
//      mapping start, advanced, flags, &iomap); its error is returned only
//      when advanced == 0 (after progress it is dropped);
//   3. status < 0: return status. No bytes left, or a step that advanced
//      nothing without setting kStale: return 0 (the loop ends quietly).
//      Otherwise (progress, or kStale) reset iomap and srcmap and call
//      IomapBegin(inode, pos, len left, flags, &iomap, &srcmap).
//   4. Check the mapping (contains pos, non-empty, kStale clear) and return 1.
//
// Thread-safety: thread-compatible (one operation, one thread).
#ifndef IOMAPD_IOMAP_ITER_H_
#define IOMAPD_IOMAP_ITER_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "iomap/folio.h"
#include "iomap/iomap.h"

namespace iomap {

// folio_batch: folios a filesystem's IomapBegin collected for the current
// mapping (FillDirtyFolios, buffered_io.h), taken in order by the zeroing
// step. Holds a reference on each. Emptied by IomapIter::Next before every
// IomapBegin. Thread-compatible.
struct FolioBatch {
  static constexpr size_t kMax = 31;  // PAGEVEC_SIZE
  std::vector<FolioRef> folios;
  size_t next = 0;  // the next folio to hand out
  void Reset() {
    folios.clear();
    next = 0;
  }
};

class IomapIter {
 public:
  IomapIter(Inode* inode, int64_t pos, uint64_t len, unsigned flags)
      : inode_(inode), pos_(pos), len_(len), flags_(flags) {}

  // iomap_iter(): returns 1 while there is a mapping to process, 0 at the
  // end, or -errno.
  int Next(IomapOps& ops);

  // iomap_iter_advance(): moves pos forward by `count` bytes of the current
  // mapping. Returns -EIO (and moves nothing) if count > Length().
  int Advance(uint64_t count);

  // iomap_length(): bytes left in the current mapping (and srcmap, when
  // there is one), capped by the bytes left in the operation.
  uint64_t Length() const { return LengthTrim(pos_, len_); }
  // iomap_iter_srcmap(): where to read existing data from: srcmap when it is
  // not a hole, else iomap.
  const Iomap& Srcmap() const {
    return srcmap.type != Iomap::Type::kHole ? srcmap : iomap;
  }

  Inode* inode() const { return inode_; }
  int64_t pos() const { return pos_; }
  uint64_t len() const { return len_; }  // bytes left in the operation
  unsigned flags() const { return flags_; }
  // Where the current mapping's step started (iter_start_pos).
  int64_t iter_start_pos() const { return iter_start_pos_; }

  // The mapping being processed and its source (COW). Steps may set
  // iomap.flags |= kStale to ask for a remap from pos.
  Iomap iomap;
  Iomap srcmap;
  // The step's result: 0 or -errno.
  int status = 0;
  // For the operation's own use (the kernel's iter->private).
  void* private_data = nullptr;
  // The folio batch of operations that accept one (ZeroRange); null
  // otherwise, and then FillDirtyFolios collects nothing.
  FolioBatch* fbatch = nullptr;

  // container_of(iomap, struct iomap_iter, iomap): the iterator whose
  // `iomap` member `map` is. IomapBegin implementations may use it on the
  // iomap they are given (the engine always passes &iter.iomap).
  static IomapIter* FromIomap(Iomap* map);

 private:
  uint64_t LengthTrim(int64_t pos, uint64_t len) const;
  int CheckMapping() const;

  Inode* const inode_;
  int64_t pos_;
  uint64_t len_;
  const unsigned flags_;
  int64_t iter_start_pos_ = 0;
};

}  // namespace iomap

#endif  // IOMAPD_IOMAP_ITER_H_
