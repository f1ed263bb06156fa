// Pagecache writeback (fs/iomap/buffered-io.c, "Pagecache Writeback" of the
// spec): Writepages walks the dirty folios of a mapping, hands each one over
// locked with its dirty flag cleared and writeback set, and calls the
// filesystem's IomapWritebackOps::WritebackRange per run of dirty blocks,
// which maps them and adds them to ioends (ioend.h).
//
// Locks: writeback takes folio locks and the writeback state only, never an
// inode's rwsem or invalidate lock (so it may be called with them held, as
// truncate, zero range and direct I/O do, and the flusher calls it with no
// lock at all). REQUIRES for every entry point: the caller holds no folio lock
// and no lock of rank >= folio.
//
// Errors: when a range cannot be written, the folio is still marked clean,
// its writeback ends, and the error is recorded on the mapping (WbError):
// every open file sees it once at fsync.
//
// The filesystem's WritebackRange maps the range (converting delalloc: the
// engine rejects DELALLOC and INLINE mappings with -EIO) and calls
// AddToIoend. When it fails it must discard the delalloc reservations from
// `pos` to the end of the folio (xfs_discard_folio): the folio is about to
// become clean and nothing else would release them.
//
// Thread-safety: thread-safe; concurrent Writepages calls on one mapping are
// allowed (each folio is written by whoever locks it first).
#ifndef IOMAPD_IOMAP_WRITEBACK_H_
#define IOMAPD_IOMAP_WRITEBACK_H_

#include <cstdint>
#include <limits>

#include "iomap/errseq.h"
#include "iomap/folio.h"
#include "iomap/ioend.h"
#include "iomap/iomap.h"
#include "iomap/pagecache.h"

namespace iomap {

// enum writeback_sync_modes.
enum class SyncMode {
  kNone,  // WB_SYNC_NONE: background; skip folios already under writeback,
          // stop at the first error or when nr_to_write is used up
  kAll,   // WB_SYNC_ALL: data integrity; wait for folios under writeback,
          // keep going after errors and return the first
};

// struct writeback_control (the parts the engine uses).
struct WritebackControl {
  SyncMode sync_mode = SyncMode::kNone;
  int64_t range_start = 0;                                  // bytes
  int64_t range_end = std::numeric_limits<int64_t>::max();  // inclusive
  // Pages left to write (decremented per folio); kNone stops at <= 0.
  int64_t nr_to_write = std::numeric_limits<int64_t>::max();
  bool for_background = false;
  // Output: folios written (handed to writeback).
  int64_t folios_written = 0;
};

// struct iomap_writepage_ctx. Allocated (value-initialised) by the filesystem
// per Writepages call; a filesystem may derive from it to cache its own
// mapping state (XFS: data/COW fork sequence numbers).
struct WritepageCtx {
  Iomap iomap;  // the current mapping (set by WritebackRange)
  Inode* inode = nullptr;
  WritebackControl* wbc = nullptr;
  IomapWritebackOps* ops = nullptr;
  uint32_t nr_folios = 0;        // folios added to the current ioend
  Ioend* ioend = nullptr;        // wb_ctx: the ioend being built
  void* private_data = nullptr;  // the filesystem's own
};

// iomap_writepages(): writes back the dirty folios of wpc->inode in
// [wbc->range_start, wbc->range_end] per wbc, then submits the last ioend
// (WritebackSubmit). wpc->inode, wbc and ops must be set. Returns 0 or the
// first -errno (the errors are also recorded on the mapping).
int Writepages(WritepageCtx* wpc);
// The spec's form: iomap_writepages(mapping, wbc, wpc, ops).
int Writepages(Mapping* mapping, WritebackControl* wbc, WritepageCtx* wpc,
               IomapWritebackOps* ops);

// iomap_writeback_folio(): writes back one folio. REQUIRES: folio locked,
// its dirty flag already cleared (Folio::ClearDirtyForIo), not under
// writeback. Leaves it locked. Returns 0 or -errno (recorded on the mapping).
int WritebackFolio(WritepageCtx* wpc, Folio* folio);

// mapping_set_error().
inline void MappingSetError(Mapping* mapping, int error) {
  mapping->wb_err.Set(error);
}

// a_ops->writepages: what a filesystem does to write back a range of one
// inode (allocate its WritepageCtx, call Writepages). The flusher and the
// fsync helpers call it. Thread-safety: called concurrently.
class WritepagesOps {
 public:
  virtual ~WritepagesOps() = default;
  virtual int Writepages(Inode* inode, WritebackControl* wbc) = 0;
};

// WritepagesOps for filesystems without per-call state: a plain
// WritepageCtx and one IomapWritebackOps.
class SimpleWritepages : public WritepagesOps {
 public:
  explicit SimpleWritepages(IomapWritebackOps* ops) : ops_(ops) {}
  int Writepages(Inode* inode, WritebackControl* wbc) override;

 private:
  IomapWritebackOps* const ops_;
};

// __filemap_fdatawrite_range(): writes back [start, end] (inclusive) with
// `sync_mode`. 0 or -errno.
int FdatawriteRange(WritepagesOps* ops, Inode* inode, int64_t start,
                    int64_t end, SyncMode sync_mode);

// __filemap_fdatawait_range(): waits until no folio in [start, end] is under
// writeback (folio_wait_writeback on each). Truncation uses the same
// per-folio wait (Mapping::TruncateRange).
void FdatawaitRange(Mapping* mapping, int64_t start, int64_t end);

// filemap_write_and_wait_range(): write back (WB_SYNC_ALL) and wait, then
// report (and clear) the mapping's legacy error flags. 0 or -errno.
int WriteAndWaitRange(WritepagesOps* ops, Inode* inode, int64_t start,
                      int64_t end);

// file_write_and_wait_range() (fsync): as WriteAndWaitRange, but reports the
// mapping's errors through the file's errseq cursor: an error recorded since
// *cursor is returned once and the cursor advances. 0 or -errno.
int FileWriteAndWaitRange(WritepagesOps* ops, Inode* inode,
                          ErrSeq::Cursor* cursor, int64_t start, int64_t end);

// file_check_and_advance_wb_err(): the error for this file's cursor (once),
// clearing the legacy flags.
int FileCheckAndAdvanceWbErr(Mapping* mapping, ErrSeq::Cursor* cursor);

}  // namespace iomap

#endif  // IOMAPD_IOMAP_WRITEBACK_H_
