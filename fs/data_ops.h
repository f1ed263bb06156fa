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

  // IomapOps. Flags 0 and kReport map (kReport|kSeek: COW-fork extents
  // over data-fork holes are UNWRITTEN, xfs_seek_iomap_ops); kWrite (and
  // kWrite|kFault) reserve delalloc over holes (-ENOSPC here, never at
  // writeback) and go through the COW fork wherever it has an extent.
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

  // --- Direct I/O (fs/direct_ops.cc; docs/fs-volume.md "Direct I/O").
  // IomapBegin under kDirect (xfs_direct_write_iomap_begin). Reads map as
  // flags 0. Writes: holes and delalloc get real blocks journaled UNWRITTEN
  // (kNew); written and unwritten blocks are overwritten in place; shared
  // blocks (or a COW-fork extent) go to COW-fork staging blocks, MAPPED |
  // kShared with the old blocks as srcmap (-ENOTBLK when the write is not
  // block-aligned: buffered fallback). kNowait and kOverwriteOnly: -EAGAIN
  // where an allocation or COW is needed or one mapping does not span the
  // range; kOverwriteOnly also for an unaligned write into unwritten blocks.
  // kAtomic: staging blocks over the whole range, one mapping (-EINVAL
  // otherwise; -EAGAIN with kNowait), remapped in one transaction by
  // DirectWriteEndIo. Takes txn_mu_ shared and the ilock.
  int DirectIomapBegin(VolInode* vi, int64_t pos, int64_t len, unsigned flags,
                       iomap::Iomap* iomap, iomap::Iomap* srcmap);
  // IomapDioOps::EndIo of direct writes (xfs_dio_write_end_io): on error
  // drops the COW staging written to; else raises i_size, remaps COW
  // staging (kDioCow) and converts unwritten blocks (kDioUnwritten), each
  // in one transaction carrying the new on-disk size. 0 or -errno.
  int DirectWriteEndIo(VolInode* vi, int64_t pos, int64_t size, int error,
                       unsigned dio_flags);
  // Whether a write to [pos, pos + len) touches shared blocks or COW-fork
  // extents (xfs_is_cow_inode, per range). Takes the ilock.
  bool DirectMayCow(VolInode* vi, int64_t pos, int64_t len);

  // --- DAX (fs/dax_ops.cc; docs/fs-volume.md "DAX").
  // IomapBegin under kDax (xfs_dax_write_iomap_begin). Reads and read
  // faults map as flags 0. Writes and write faults get written blocks:
  // holes and delalloc are allocated, and those and unwritten blocks are
  // zeroed through the device's DaxMapping, flushed, then journaled
  // written (kNew when allocated); shared blocks or a COW-fork extent give
  // COW-fork staging blocks, MAPPED | kShared, the old data as srcmap.
  // kZero (zeroing) allocates nothing: only written blocks are mapped for
  // zeroing (shared ones through COW). kNowait: -EAGAIN where allocation,
  // conversion or COW is needed. -EOPNOTSUPP when the device has no
  // DaxMapping. Takes txn_mu_ shared and the ilock.
  int DaxIomapBegin(VolInode* vi, int64_t pos, int64_t len, unsigned flags,
                    iomap::Iomap* iomap, iomap::Iomap* srcmap);
  // IomapEnd under kDax (xfs_dax_write_iomap_end): for a kShared mapping,
  // the written bytes' staging blocks are remapped into the data fork in
  // one transaction; nothing written: the staging is dropped. 0 or -errno.
  int DaxIomapEnd(VolInode* vi, int64_t pos, int64_t len, int64_t written,
                  unsigned flags, iomap::Iomap* iomap);

 private:
  // The run of blocks from off_b inside allocated extent e that are all
  // shared (*shared) or all unshared. REQUIRES: ilock.
  uint64_t SharedRun(const Extent& e, uint64_t off_b, bool* shared) const;
  // A write (or zeroing) over shared blocks with no COW-fork extent at
  // their start: a new COW-fork delalloc reservation, rounded out to the
  // COW extent size hint (kCowExtSizeHint), as iomap (kShared | kNew), the
  // shared data-fork blocks as srcmap. REQUIRES: ilock.
  int CowBegin(VolInode* vi, const Extent& shared, uint64_t end_b,
               iomap::Iomap* iomap, iomap::Iomap* srcmap);
  // A write (or zeroing) at file block off_b where COW-fork extent `cow`
  // already lies: it goes to the COW fork whatever the data fork holds
  // there (`data`: an extent or a hole), as xfs_buffered_write_iomap_begin
  // does. REQUIRES: ilock.
  void CowFound(VolInode* vi, const Extent& data, const Extent& cow,
                uint64_t off_b, iomap::Iomap* iomap, iomap::Iomap* srcmap);
  // SEEK_DATA/SEEK_HOLE over data-fork hole `hole` (xfs_seek_iomap_begin):
  // a COW-fork extent there is reported UNWRITTEN (the pagecache decides),
  // else a hole up to the next data-fork or COW-fork extent. Both trimmed
  // to [off_b, end_b). REQUIRES: ilock.
  void SeekHoleBegin(VolInode* vi, const Extent& hole, uint64_t off_b,
                     uint64_t end_b, iomap::Iomap* iomap);
  // PunchDelalloc of the data fork, or of the COW fork (`cow`: a short
  // write into a new COW reservation). Takes the ilock.
  void PunchForkDelalloc(VolInode* vi, int64_t off, int64_t len, bool cow);
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
  // Direct I/O pieces (fs/direct_ops.cc). REQUIRE: txn_mu_ shared, ilock.
  int DirectWriteBeginLocked(VolInode* vi, int64_t pos, int64_t len,
                             uint64_t off_b, uint64_t end_b, unsigned flags,
                             iomap::Iomap* iomap, iomap::Iomap* srcmap);
  // Real blocks (UNWRITTEN) for hole or delalloc extent e at off_b.
  int DirectAllocLocked(VolInode* vi, const Extent& e, uint64_t off_b,
                        uint64_t end_b);
  // Staging blocks for `data` (from off_b = data.file_off).
  int DirectCowLocked(VolInode* vi, const Extent& data, uint64_t end_b,
                      iomap::Iomap* iomap, iomap::Iomap* srcmap);
  int DirectAtomicLocked(VolInode* vi, uint64_t off_b, uint64_t end_b,
                         iomap::Iomap* iomap, iomap::Iomap* srcmap);
  // DAX pieces (fs/dax_ops.cc). REQUIRE: txn_mu_ shared, ilock.
  int DaxBeginLocked(VolInode* vi, uint64_t off_b, uint64_t end_b,
                     unsigned flags, iomap::Iomap* iomap,
                     iomap::Iomap* srcmap);
  // Zeroes the unwritten blocks at off_b (up to end_b) through the
  // DaxMapping, flushes them, journals them written and maps them.
  int DaxZeroUnwrittenLocked(VolInode* vi, uint64_t off_b, uint64_t end_b,
                             iomap::Iomap* iomap);
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
