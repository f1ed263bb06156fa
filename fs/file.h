// fs::OpenFile: file operations on an open regular file of a Volume (the
// "xfs_file.c" of iomapd). Each takes the DESIGN.md locks before calling
// the iomap engine:
//   Read                       rwsem shared
//   Write                      rwsem exclusive (kNowait: try-lock, -EAGAIN)
//   Truncate                   rwsem + invalidate exclusive
//   MapWrite                   invalidate shared + folio lock, per page
//   SeekData/SeekHole/Fiemap/Bmap   rwsem shared
//   Fsync/Fdatasync            none (writeback takes folio locks only)
// An OpenFile holds an errseq cursor sampled at open: a writeback error is
// reported once per open file, at its next Fsync.
//
// Thread-safety: thread-safe (the locks above serialize what must be).
// Close() (or the destructor) must run before Volume::Unmount.
#ifndef IOMAPD_FS_FILE_H_
#define IOMAPD_FS_FILE_H_

#include <cstdint>

#include "base/mutex.h"
#include "fs/volume.h"
#include "iomap/buffered_io.h"
#include "iomap/errseq.h"
#include "iomap/fiemap.h"
#include "iomap/pagecache.h"

namespace fs {

class OpenFile {
 public:
  ~OpenFile();
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;

  FileHandle handle() const { return inode_->handle(); }
  VolInode* inode() const { return inode_; }
  int64_t size() const { return inode_->i_size_read(); }

  // Request flags: iomap::kNowait, iomap::kDontcache; kSync (O_SYNC/DSYNC
  // for writes: fdatasync of the written range before returning).
  static constexpr unsigned kSync = 1u << 20;
  // O_APPEND for writes: `pos` is ignored, the write lands at i_size as
  // read under the rwsem.
  static constexpr unsigned kAppend = 1u << 21;

  // Bytes read (0 at EOF) or -errno.
  // With iomap::kDirect: O_DIRECT (iomap::DioRw under the rwsem shared,
  // kNowait: try-lock and no flush wait, -EAGAIN): pos and len multiples of
  // the device's logical block size and buf aligned to its dma_alignment
  // (else -EINVAL); dirty cache over the range is written back first; the
  // result is short at EOF.
  int64_t Read(int64_t pos, size_t len, uint8_t* buf, unsigned flags = 0);
  // Bytes written (short after an error past some progress) or -errno:
  // -ENOSPC when no delalloc reservation could be made, -EFBIG past the
  // maximum file size, -EAGAIN under kNowait.
  //
  // With iomap::kDirect: O_DIRECT (xfs_file_dio_write). pos and len must be
  // multiples of the device's logical block size and data aligned to its
  // dma_alignment (-EINVAL). Block-aligned writes inside EOF run under the
  // rwsem shared; unaligned ones try shared with OVERWRITE_ONLY and retry
  // exclusive on -EAGAIN; writes reaching past EOF run exclusive (waiting
  // out every other direct I/O). kNowait: -EAGAIN instead of blocking,
  // allocating, COW or an unaligned write past EOF. An unaligned write over
  // shared blocks, or a cache that cannot be invalidated, falls back to a
  // buffered write of the range, then written back and dropped from the
  // cache. With iomap::kAtomic (RWF_ATOMIC): len a power of two, >= the
  // block size, <= the device's max_io_bytes, pos a multiple of len (else
  // -EINVAL); written to COW staging blocks and remapped in one
  // transaction, so a crash leaves all old or all new data. kSync and
  // kAppend as for buffered writes. Returns bytes written or -errno.
  int64_t Write(int64_t pos, const void* data, size_t len, unsigned flags = 0);
  // Write from any WriteSource (a source that may copy short, as a user
  // buffer with an unmapped tail does).
  int64_t WriteFrom(int64_t pos, iomap::WriteSource* src, unsigned flags = 0);
  // Writes back [start, end] (inclusive) and waits, commits the journal
  // records of this inode and flushes the device cache. Reports an unseen
  // writeback error once per open file. 0 or -errno.
  int Fsync(int64_t start = 0, int64_t end = INT64_MAX);
  // The same, except that a change of the timestamps alone stays in core:
  // everything needed to read the data back (size, extents) is made
  // durable, a write's new mtime/ctime may be lost in a crash.
  int Fdatasync(int64_t start = 0, int64_t end = INT64_MAX);
  // Sets the size; blocks past the new EOF are freed (journaled). 0/-errno.
  int Truncate(int64_t size);
  // lseek SEEK_DATA / SEEK_HOLE: offset or -ENXIO.
  int64_t SeekData(int64_t pos);
  int64_t SeekHole(int64_t pos);
  // FIEMAP (iomap::Fiemap semantics; kFiemapFlagSync writes back first).
  int Fiemap(iomap::FiemapRequest* req);
  // FIBMAP: the device block of file block `block`, 0 when not mapped.
  uint64_t Bmap(uint64_t block);
  // fallocate(2) modes (Linux FALLOC_FL_* values): 0 and KEEP_SIZE
  // (unwritten blocks over holes; -ENOSPC when space runs out, keeping what
  // was allocated), PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE[|KEEP_SIZE],
  // UNSHARE_RANGE[|KEEP_SIZE] (shared blocks of the range copied to private
  // ones and written back, then allocate as mode 0), COLLAPSE_RANGE and
  // INSERT_RANGE (block-aligned offset and length, -EINVAL otherwise or
  // when the range reaches EOF; -EFBIG past the maximum size). Any other
  // combination of mode bits: -EOPNOTSUPP (vfs_fallocate, 6.13+). An active
  // swap file: -ETXTBSY.
  // Takes rwsem + invalidate exclusive. 0 or -errno.
  int Fallocate(int mode, int64_t offset, int64_t len);

  // A store of `len` bytes at `pos` through a shared writable mapping
  // (memcpy into an mmap'ed region). Page by page, as write faults run: the
  // page is read in if needed, then iomap::PageMkwrite (invalidate lock
  // shared + folio lock; delalloc reserved over holes) dirties its folio and
  // the bytes are copied into it while it is locked. Never changes the size:
  // a page starting at or past EOF is -EFAULT (SIGBUS); bytes of the EOF page
  // past EOF land in the cache but are never visible (writeback and any size
  // increase zero them). Returns the bytes stored (short when a later page
  // failed) or -errno: -EFAULT, -ENOSPC (no reservation), -EIO (the page
  // could not be read), -EINVAL (pos < 0). Takes no rwsem.
  int64_t MapWrite(int64_t pos, const void* data, size_t len);

  // FICLONERANGE (ioctl_file_clone_range; this file is the destination):
  // shares the blocks of src's [src_off, src_off + len) at dst_off (len 0:
  // to src's EOF). Both inodes locked (rwsem + invalidate exclusive, lower
  // inode number first), both ranges written back, the destination's cache
  // over the range dropped; the destination's size grows when the range
  // ends past its EOF. Returns the bytes cloned or -errno with the VFS's
  // rules: -EINVAL (negative or wrapping values, offsets not block-aligned,
  // a length not block-aligned unless it reaches src's EOF and lands at or
  // past dst's EOF, src_off at/after src's EOF, overlapping ranges of one
  // file), -EFBIG (past the maximum size), -ETXTBSY (an active swap
  // file), -EXDEV (files of different volumes), -EBADF (a closed file),
  // -ENOSPC/-EIO from the journal or writeback.
  int64_t CloneRange(OpenFile* src, int64_t src_off, int64_t dst_off,
                     int64_t len);
  // FIDEDUPERANGE for one destination (vfs_dedupe_file_range_one with
  // REMAP_FILE_CAN_SHORTEN): if the bytes are equal the destination range
  // is made to share src's blocks. Returns the bytes_deduped the kernel
  // reports (the request length, capped at 1 GiB) when they were equal,
  // -EBADE when they differ (FILE_DEDUPE_RANGE_DIFFERS), or -errno as
  // CloneRange (both ranges must lie within EOF: -EINVAL). len 0: 0.
  int64_t DedupeRange(OpenFile* src, int64_t src_off, int64_t dst_off,
                      int64_t len);

  // Writes back and drops the in-core inode at the last close. 0 or the
  // writeback error. Idempotent.
  int Close();

 private:
  friend class Volume;
  OpenFile(Volume* vol, VolInode* inode);
  int WriteAndWait(iomap::Inode* inode);
  int SyncRange(int64_t start, int64_t end, bool datasync);
  // Direct I/O paths of Read/Write (fs/file.cc, end).
  int64_t DirectRead(int64_t pos, size_t len, uint8_t* buf, unsigned flags);
  int64_t DirectWrite(int64_t pos, const void* data, size_t len,
                      unsigned flags);
  // Takes the rwsem as the write needs it (see Write), setting *pos for
  // kAppend, *exclusive and *dio_flags. 0 or -EAGAIN (kNowait).
  int LockDirectWrite(int64_t* pos, size_t len, unsigned flags,
                      bool* exclusive, unsigned* dio_flags);
  // The checks and iomap::DioRw. REQUIRES: rwsem held (LockDirectWrite).
  int64_t DirectWriteLocked(int64_t pos, const void* data, size_t len,
                            unsigned flags, unsigned dio_flags);
  // direct_write_fallback: a buffered write, written back and dropped.
  int64_t DirectWriteFallback(int64_t pos, const void* data, size_t len,
                              unsigned flags);
  // DAX paths (fs/dax_file.cc), taken when the volume is mounted with
  // VolumeOptions::dax. Locks as the pagecache paths: DaxRead rwsem
  // shared, DaxWrite rwsem exclusive, DaxMapWrite invalidate shared.
  bool Dax() const;
  // Folios that pagecache paths left in a DAX file's cache (fallocate's
  // partial-block zeroing, unshare, the dedupe compare) are written back
  // and dropped before DAX touches the file, so that the mapping holds the
  // latest bytes. nowait: -EAGAIN when there are any. 0 or -errno.
  int DaxDropCache(bool nowait);
  int64_t DaxRead(int64_t pos, size_t len, uint8_t* buf, unsigned flags);
  int64_t DaxWrite(int64_t pos, const void* data, size_t len, unsigned flags);
  int64_t DaxWriteFrom(int64_t pos, iomap::WriteSource* src, unsigned flags);
  int64_t DaxMapWrite(int64_t pos, const void* data, size_t len);
  // REQUIRES: rwsem exclusive.
  int64_t DaxWriteLocked(int64_t pos, const void* data, size_t len,
                         unsigned flags);
  int DaxZeroGap(int64_t from, int64_t to);
  // Truncate's zeroing: the tail of the new EOF block (shrink) or
  // [old_size, new_size) (grow). REQUIRES: rwsem + invalidate exclusive.
  int DaxTruncateZero(int64_t old_size, int64_t new_size);
  // fallocate pieces (fs/fallocate.cc). REQUIRES: rwsem + invalidate held.
  int AllocateBlocks(uint64_t first, uint64_t end);
  int PunchRange(int64_t off, int64_t len);
  // Raises i_size (journaled with the on-disk size, mtime and ctime) and
  // runs iomap::PagecacheIsizeExtended for the old EOF page.
  int ExtendSize(int64_t size);
  // Fallocate's checks and work; Fallocate then updates the times.
  int FallocateLocked(int mode, int64_t offset, int64_t len);
  // The journaled part of ExtendSize. REQUIRES: no folio lock held.
  int PersistSize(int64_t size);
  int Unshare(int64_t offset, int64_t len);
  // fs/mapwrite.cc. REQUIRES: the invalidate lock held shared.
  int MapWritePage(int64_t pos, const uint8_t* data, size_t n);
  // Zeroes the cached bytes past `old_size` in its folio (mapped stores may
  // have left some there) before the size grows. kNowait-style when
  // `nowait` (-EAGAIN). REQUIRES: rwsem + invalidate held exclusive.
  int ZeroCachedTail(int64_t old_size, bool nowait = false);
  // fs/reflink.cc. Remap* REQUIRE both inodes' rwsem + invalidate held.
  int CheckRemapArgs(OpenFile* src, int64_t src_off, int64_t dst_off,
                     int64_t len) const;
  int64_t Remap(VolInode* in, int64_t pos_in, int64_t pos_out, int64_t len,
                bool dedupe);
  int RemapChecks(VolInode* in, int64_t pos_in, int64_t pos_out, int64_t* len,
                  bool dedupe) const;
  int CompareRanges(VolInode* in, int64_t pos_in, int64_t pos_out, int64_t len,
                    bool* same);
  int RemapBlocks(VolInode* in, int64_t pos_in, int64_t pos_out, int64_t len);
  // ZeroCachedTail for a write reaching past EOF. REQUIRES: rwsem exclusive.
  int ZeroTailBeforeWrite(int64_t pos, size_t len, bool nowait);

  Volume* const vol_;
  VolInode* const inode_;
  base::Mutex mu_{base::LockRank::kNone};
  iomap::ErrSeq::Cursor cursor_ ABSL_GUARDED_BY(mu_);
  bool closed_ = false;
  // file_ra_state: this open file's readahead history (thread-safe).
  iomap::RaState ra_;
};

}  // namespace fs

#endif  // IOMAPD_FS_FILE_H_
