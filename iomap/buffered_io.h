// Buffered I/O through the pagecache (fs/iomap/buffered-io.c): reads and
// readahead, buffered writes, zeroing, truncation, unshare, page_mkwrite and
// the delalloc cleanup after short writes.
//
// Every entry point documents the locks its caller holds (DESIGN.md, locking
// table) and asserts them, as the kernel's lockdep_assert_held does. Errors:
// 0/-errno, or bytes/-errno.
//
// Thread-safety: every function is thread-safe given the documented locks.
#ifndef IOMAPD_IOMAP_BUFFERED_IO_H_
#define IOMAPD_IOMAP_BUFFERED_IO_H_

#include <cstddef>
#include <cstdint>
#include <functional>

#include "iomap/folio.h"
#include "iomap/iomap.h"
#include "iomap/iter.h"
#include "iomap/pagecache.h"

namespace iomap {

// ---------------------------------------------------------------------------
// Sources of written data (the kernel's iov_iter for a write).

// A source of bytes that may "fault": CopyAtomic may copy less than asked,
// as copy_folio_from_iter_atomic does when a user page is not resident.
// Thread-compatible.
class WriteSource {
 public:
  virtual ~WriteSource() = default;
  // Bytes left to copy.
  virtual size_t Count() const = 0;
  // fault_in_iov_iter_readable(): makes up to `bytes` readable; returns how
  // many of them could NOT be (bytes means none could).
  virtual size_t FaultInReadable(size_t bytes) = 0;
  // Copies up to `bytes` into dst and consumes them; returns bytes copied.
  virtual size_t CopyAtomic(uint8_t* dst, size_t bytes) = 0;
  // Un-consumes the last `bytes` (iov_iter_revert).
  virtual void Revert(size_t bytes) = 0;
};

// A plain memory buffer. With `fault_at` set, every byte at or past that
// offset of the buffer faults (a user buffer whose tail is unmapped), which
// simulates short copies.
class BufferSource : public WriteSource {
 public:
  BufferSource(const void* data, size_t len,
               size_t fault_at = static_cast<size_t>(-1))
      : data_(static_cast<const uint8_t*>(data)),
        len_(len),
        fault_at_(fault_at) {}
  size_t Count() const override { return len_ - off_; }
  size_t FaultInReadable(size_t bytes) override;
  size_t CopyAtomic(uint8_t* dst, size_t bytes) override;
  void Revert(size_t bytes) override { off_ -= bytes; }
  size_t consumed() const { return off_; }

 private:
  const uint8_t* data_;
  size_t len_;
  size_t off_ = 0;
  size_t fault_at_;
};

// filemap_write_and_wait_range() through the mapping's hooks (pagecache.h):
// -EOPNOTSUPP when no writeback engine installed them.
int FilemapWriteAndWaitRange(Inode* inode, int64_t start, int64_t end);

// ---------------------------------------------------------------------------
// Reads.

// Statistics of the read engine, for tests and benchmarks (process-wide).
struct ReadStats {
  uint64_t bios = 0;          // read bios submitted
  uint64_t bio_bytes = 0;     // bytes they read
  uint64_t zeroed_bytes = 0;  // bytes zeroed without I/O
};
ReadStats GetReadStats();
void ResetReadStats();

// iomap_read_folio(): fills the not-uptodate blocks of `folio` (locked, with
// a reference held by the caller). Holes, unwritten, delalloc, "new" and
// past-EOF blocks are zeroed without I/O; inline data is copied; mapped
// blocks are read asynchronously. The folio is unlocked when the read
// completes (possibly by another thread); afterwards the caller checks
// Uptodate() / the blocks it needs. Returns 0 or the iterator's -errno
// (the folio is unlocked in every case). IomapBegin flags: 0.
int ReadFolio(Folio* folio, IomapOps& ops);

// iomap_readahead(): reads pages [index, index + nr_pages) that are not
// cached, creating their folios (large ones when the mapping allows), in
// contiguous runs with merged bios. Does not wait for the reads. Takes the
// invalidate lock shared (REQUIRES: the caller does not hold it).
void Readahead(Inode* inode, int64_t index, int64_t nr_pages, IomapOps& ops);

// filemap_read(): copies up to `len` bytes at `pos` (stopping at i_size)
// into buf through the pagecache, reading and reading ahead as needed with
// the kernel's heuristics (page_cache_sync_ra on a missing page,
// page_cache_async_ra on a folio carrying the readahead mark; see
// docs/iomap.md).
// Flags: kNowait (never reads a missing page: -EAGAIN when nothing could be
// copied; a cached folio carrying the readahead mark still starts the next
// window without waiting, as the kernel does without IOCB_NOIO). `ra` is the
// open file's readahead state (file->f_ra; one per open file, so interleaved
// streams on one inode each stay sequential); null means the mapping's shared
// one. Returns bytes copied, 0 at EOF, or -errno
// (-EIO when a needed block could not be read). REQUIRES: rwsem held (shared
// or exclusive); the invalidate lock not held.
int64_t FileBufferedRead(Inode* inode, int64_t pos, size_t len, uint8_t* buf,
                         unsigned flags, IomapOps& ops, RaState* ra = nullptr);

// ---------------------------------------------------------------------------
// Writes.

// iomap_file_buffered_write(): copies `src` to the pagecache at `pos`.
// `flags`: kNowait and kDontcache may be given (kWrite is implied).
// IomapBegin flags: kWrite [| kNowait] [| kDontcache]. `write_ops` null means
// IomapWriteOps::Default(). Returns bytes written (short on a fault or
// error after progress) or -errno (-EFAULT when nothing could be copied,
// -EAGAIN under kNowait when a lock, a read or an allocation would block).
// i_size is raised before the folio is unlocked and kSizeChanged is set on
// the iomap given to IomapEnd. REQUIRES: rwsem held (exclusive, or shared
// where the filesystem allows concurrent writers).
int64_t FileBufferedWrite(Inode* inode, int64_t pos, WriteSource* src,
                          unsigned flags, IomapOps& ops,
                          IomapWriteOps* write_ops = nullptr,
                          void* private_data = nullptr);

// The filesystem's punch callback for WriteDelallocRelease: removes only the
// delalloc reservations in [offset, offset + length). Must not take folio
// locks.
using PunchFn = std::function<void(Inode* inode, int64_t offset, int64_t length,
                                   Iomap* iomap)>;

// iomap_write_delalloc_release(): after a short write into a fresh delalloc
// mapping, punches every part of [start, end) that holds no dirty data in
// the cache, scanning the cache only below i_size (so post-EOF reservations
// are always punched). Keeps reservations under dirty blocks. Called from
// IomapEnd. REQUIRES: the invalidate lock held exclusive.
void WriteDelallocRelease(Inode* inode, int64_t start, int64_t end,
                          unsigned flags, Iomap* iomap, const PunchFn& punch);

// ---------------------------------------------------------------------------
// Zeroing, truncation, unshare, mapped writes.

// iomap_zero_range(): zeroes [pos, pos + len) in the pagecache (the blocks
// stay dirty for writeback). A mapping with kFolioBatch (FillDirtyFolios)
// has only its batched folios zeroed. Otherwise HOLE and UNWRITTEN mappings
// are skipped unless the range was dirty in the cache, in which case the
// first such mapping flushes the range (Mapping::hooks()) and remaps.
// *did_zero (optional) is set when anything was zeroed. IomapBegin flags:
// kZero.
// REQUIRES: rwsem and invalidate lock held exclusive.
int ZeroRange(Inode* inode, int64_t pos, int64_t len, bool* did_zero,
              IomapOps& ops, IomapWriteOps* write_ops = nullptr,
              void* private_data = nullptr);

// iomap_fill_dirty_folios(): for a filesystem's IomapBegin under kZero (the
// iterator from IomapIter::FromIomap) over a range that reads as zeros on
// disk (UNWRITTEN): collects into iter->fbatch the cached folios of
// [*start, end) that are dirty, under writeback, or locked by someone (they
// may be being dirtied), at most FolioBatch::kMax, and sets kFolioBatch in
// *iomap_flags. *start becomes the end of the last folio when the batch
// filled up, else `end` rounded up to a page: the filesystem ends its
// mapping there (min with the extent end). ZeroRange then zeroes only the
// batched folios and skips the rest of the mapping, instead of writing the
// range back to convert it. Without a batch (another operation) nothing is
// collected, *start = end, and the flag is not set. Returns the number of
// folios in the batch.
unsigned FillDirtyFolios(IomapIter* iter, int64_t* start, int64_t end,
                         uint32_t* iomap_flags);

// iomap_truncate_page(): zeroes from `pos` (the new EOF) to the end of its
// block; nothing when pos is block-aligned. REQUIRES: as ZeroRange.
int TruncatePage(Inode* inode, int64_t pos, bool* did_zero, IomapOps& ops,
                 IomapWriteOps* write_ops = nullptr);

// truncate_setsize(): sets i_size to `newsize` and drops the pagecache past
// it (truncate_pagecache): whole folios beyond are removed once their
// writeback ends, the part of a straddling folio past newsize is zeroed.
// The filesystem zeroes the rest of the new EOF block first (TruncatePage)
// when shrinking. REQUIRES: rwsem and invalidate lock held exclusive.
void TruncateSetsize(Inode* inode, int64_t newsize);

// pagecache_isize_extended(): i_size grew from `from` to `to` (already
// written). With blocks smaller than a page, when the page holding `from`
// now has a whole block inside the file that was past EOF (a block that may
// be a hole), its cached folio is write-protected again (ClearWriteMapped,
// so the next store faults into PageMkwrite and allocates) and, when dirty,
// the bytes [from, to) within it are zeroed: what a mapped store left past
// the old EOF must not become file data. Nothing for bs >= page size.
// Called by TruncateSetsize and FileBufferedWrite (a write that starts past
// the old EOF); filesystems that grow i_size otherwise call it too.
// REQUIRES: rwsem held exclusive; no folio lock held.
void PagecacheIsizeExtended(Inode* inode, int64_t from, int64_t to);

// iomap_file_unshare(): for every SHARED mapping over a MAPPED srcmap in
// [pos, pos + len) (clamped to i_size), reads the old data into the cache
// and dirties it, so writeback copies it to private blocks. pos < 0 or
// pos >= i_size: 0. IomapBegin flags: kWrite | kUnshare.
// REQUIRES: rwsem and invalidate lock held exclusive.
int FileUnshare(Inode* inode, int64_t pos, int64_t len, IomapOps& ops,
                IomapWriteOps* write_ops = nullptr);

// iomap_page_mkwrite(): a write fault on `folio` (referenced by the caller):
// locks it, checks it is still within the file (-EFAULT otherwise, as
// folio_mkwrite_check_truncate), maps the part below EOF with
// kWrite | kFault (allocating delalloc), dirties the whole folio, waits
// for stable pages and marks it write-mapped (Folio::WriteMapped: stores
// need no new fault until writeback or PagecacheIsizeExtended clears it).
// Returns 0 with the folio LOCKED (VM_FAULT_LOCKED) or -errno with it
// unlocked. REQUIRES: the invalidate lock held (shared).
int PageMkwrite(Inode* inode, Folio* folio, IomapOps& ops);

// ---------------------------------------------------------------------------
// Building blocks shared with other engine files and filesystems.

// iomap_get_folio(): the default IomapWriteOps::GetFolio. A locked folio
// caching `pos`, created when missing, sized from `len` when the mapping
// allows large folios, waited out of writeback; with kNowait in the iterator
// flags nothing blocks (-EAGAIN); with kDontcache a new folio is dropbehind.
int IomapGetFolio(IomapIter* iter, int64_t pos, size_t len, Folio** folio);

// The default IomapWriteOps::ReadFolioRange: reads [pos, pos + len) of
// `folio` synchronously from `srcmap` (a MAPPED mapping; others are zeroed).
// REQUIRES: folio locked; the range block-aligned and inside srcmap.
int ReadFolioRangeSync(Inode* inode, const Iomap& srcmap, Folio* folio,
                       int64_t pos, size_t len);

}  // namespace iomap

#endif  // IOMAPD_IOMAP_BUFFERED_IO_H_
