// internal::DataOps: the iomap side of a Volume (xfs_iomap.c + xfs_aops.c):
// IomapOps for reads, buffered writes and REPORT; IomapWriteOps::IomapValid;
// writeback (delalloc conversion, ioend submission) and ioend completion
// (unwritten conversion, on-disk size). Private to fs/volume and fs/file.
//
// Thread-safety: thread-safe (see the lock order in fs/volume.h).
#ifndef IOMAPD_FS_DATA_OPS_H_
#define IOMAPD_FS_DATA_OPS_H_

#include <cstdint>

#include "fs/volume.h"
#include "iomap/folio.h"
#include "iomap/ioend.h"
#include "iomap/iomap.h"
#include "iomap/writeback.h"

namespace fs {
namespace internal {

class DataOps : public iomap::IomapOps,
                public iomap::IomapWriteOps,
                public iomap::IomapWritebackOps,
                public iomap::WritepagesOps,
                public iomap::IoendCompletionOps {
 public:
  explicit DataOps(Volume* vol) : vol_(vol) {}

  // IomapOps. Flags 0 and kReport map; kWrite (and kWrite|kFault) reserve
  // delalloc over holes (-ENOSPC here, never at writeback).
  int IomapBegin(iomap::Inode* inode, int64_t pos, int64_t len, unsigned flags,
                 iomap::Iomap* iomap, iomap::Iomap* srcmap) override;
  // Buffered writes: releases the delalloc a short write did not use.
  int IomapEnd(iomap::Inode* inode, int64_t pos, int64_t len, int64_t written,
               unsigned flags, iomap::Iomap* iomap) override;
  // IomapWriteOps
  bool IomapValid(iomap::Inode* inode, const iomap::Iomap& iomap) override;
  // IomapWritebackOps
  int64_t WritebackRange(iomap::WritepageCtx* wpc, iomap::Folio* folio,
                         uint64_t pos, unsigned len, uint64_t end_pos) override;
  int WritebackSubmit(iomap::WritepageCtx* wpc, int error) override;
  // WritepagesOps
  int Writepages(iomap::Inode* inode, iomap::WritebackControl* wbc) override;
  // IoendCompletionOps
  bool NeedsWorkqueue(const iomap::Ioend& ioend) const override;
  int FinishIoend(iomap::Inode* inode, iomap::Ioend* ioend) override;

  // Removes the delalloc of [off, off + len) bytes (rounded out to blocks)
  // and returns its reservation. Takes the ilock.
  void PunchDelalloc(VolInode* vi, int64_t off, int64_t len);
  // xfs_reflink_cancel_cow_range: drops the COW fork over file blocks
  // [first, first + n): staging blocks go back to the allocator, delalloc
  // to the reservation. REQUIRES: ilock; no I/O in flight to them.
  void CancelCowLocked(VolInode* vi, uint64_t first, uint64_t n);
  void CancelCow(VolInode* vi, uint64_t first, uint64_t n);

 private:
  // The run of blocks from off_b inside allocated extent e that are all
  // shared (*shared) or all unshared. REQUIRES: ilock.
  uint64_t SharedRun(const Extent& e, uint64_t off_b, bool* shared) const;
  // A write (or zeroing) over shared blocks: the COW fork mapping (a new
  // delalloc reservation over a COW hole) as iomap, the shared data-fork
  // blocks as srcmap. REQUIRES: ilock.
  int CowBegin(VolInode* vi, const Extent& shared, uint64_t end_b,
               iomap::Iomap* iomap, iomap::Iomap* srcmap);
  // Writeback: the mapping for file block off_b, COW fork first
  // (xfs_map_blocks). REQUIRES: txn_mu_ shared, ilock.
  int MapForWriteback(VolInode* vi, uint64_t off_b, uint64_t end_b,
                      iomap::Iomap* out);
  // Allocates staging blocks for the COW delalloc extent holding off_b
  // (not journaled). REQUIRES: ilock.
  int ConvertCow(VolInode* vi, uint64_t off_b);
  // Ioend completion of a COW write: one transaction remapping the staging
  // blocks into the data fork (dropping the old blocks' references).
  int FinishCowIoend(VolInode* vi, iomap::Ioend* ioend);
  uint64_t Cookie(VolInode* vi) const;
  // Allocates blocks for the delalloc extent holding file block `off_b`
  // and journals them as unwritten. REQUIRES: txn_mu_ shared, ilock.
  int ConvertDelalloc(VolInode* vi, uint64_t off_b);
  void FillIomap(VolInode* vi, const Extent& e, iomap::Iomap* iomap) const;

  Volume* const vol_;
};

// filemap_fault() / read_mapping_folio(): the folio caching page `index`
// of vi, uptodate, referenced (the caller Puts it) and unlocked. -EIO when
// it cannot be read. (fs/mapwrite.cc)
int ReadPage(VolInode* vi, int64_t index, iomap::IomapOps& ops,
             iomap::Folio** out);

}  // namespace internal
}  // namespace fs

#endif  // IOMAPD_FS_DATA_OPS_H_
