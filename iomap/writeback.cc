#include "iomap/writeback.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "base/mutex.h"

namespace iomap {

namespace {

constexpr size_t kDirtyBatch = 64;  // folios looked up per index walk

// Writeback takes folio locks itself. A caller holding a lock ranked above
// the folio lock (mapping, filesystem metadata, a leaf) would invert the lock
// order: the checker aborts here, at once, rather than on a rare path. The
// rwsem and invalidate lock may be held (truncate, zero range and direct I/O
// flush with them held); writeback never takes them.
void AssertMayLockFolios() {
  static const char kProbe = 0;
  base::internal::NoteAcquire(base::LockRank::kFolio, &kProbe);
  base::internal::NoteRelease(base::LockRank::kFolio, &kProbe);
}

// iomap_writeback_handle_eof(): false when the folio lies wholly past EOF;
// zeroes the part of a straddling folio past EOF (every time: mmap may have
// written there) and moves *end_pos to i_size.
bool HandleEof(Folio* folio, Inode* inode, int64_t* end_pos) {
  const int64_t isize = inode->i_size_read();
  if (*end_pos <= isize) return true;
  const int64_t end_index = isize >> kPageShift;
  const size_t poff =
      static_cast<size_t>(isize & static_cast<int64_t>(folio->size() - 1));
  if (folio->index() > end_index ||
      (folio->index() == end_index && poff == 0) || isize <= folio->pos()) {
    return false;
  }
  const size_t off = static_cast<size_t>(isize - folio->pos());
  std::memset(folio->data() + off, 0, folio->size() - off);
  *end_pos = isize;
  return true;
}

// iomap_find_dirty_range(): the next run of dirty blocks in [*pos, end);
// moves *pos to its start and returns its length (0: none).
uint64_t FindDirtyRange(Folio* folio, int64_t* pos, int64_t end) {
  FolioState* ifs = folio->state();
  if (*pos >= end) return 0;
  if (ifs == nullptr) return static_cast<uint64_t>(end - *pos);
  const unsigned bits = folio->blkbits();
  unsigned first = static_cast<unsigned>((*pos - folio->pos()) >> bits);
  const unsigned last = static_cast<unsigned>(
      (end - folio->pos() + (int64_t{1} << bits) - 1) >> bits);
  const unsigned nr =
      ifs->NextDirtyRun(&first, std::min(last, ifs->nr_blocks()));
  if (nr == 0) return 0;
  *pos = folio->pos() + (int64_t{first} << bits);
  return std::min<uint64_t>(uint64_t{nr} << bits,
                            static_cast<uint64_t>(end - *pos));
}

// iomap_writeback_range(): hands one dirty run to the filesystem until it is
// all handled. *wb_pending: something other than a hole was queued.
int WritebackRange(WritepageCtx* wpc, Folio* folio, int64_t pos, uint64_t rlen,
                   int64_t end_pos, bool* wb_pending) {
  do {
    const int64_t ret = wpc->ops->WritebackRange(
        wpc, folio, static_cast<uint64_t>(pos), static_cast<unsigned>(rlen),
        static_cast<uint64_t>(end_pos));
    if (ret == 0 || ret > static_cast<int64_t>(rlen)) return -EIO;
    if (ret < 0) return static_cast<int>(ret);
    const Iomap::Type type = wpc->iomap.type;
    // Delalloc and inline data never reach the engine unconverted.
    if (type == Iomap::Type::kDelalloc || type == Iomap::Type::kInline) {
      return -EIO;
    }
    rlen -= static_cast<uint64_t>(ret);
    pos += ret;
    if (type != Iomap::Type::kHole) *wb_pending = true;
  } while (rlen != 0);
  return 0;
}

}  // namespace

int WritebackFolio(WritepageCtx* wpc, Folio* folio) {
  folio->AssertLocked();
  if (folio->Dirty() || folio->Writeback()) {
    std::fprintf(stderr, "iomap: writeback of a dirty or busy folio\n");
    std::abort();
  }
  Inode* inode = wpc->inode;
  int64_t pos = folio->pos();
  int64_t end_pos = folio->end();
  if (!HandleEof(folio, inode, &end_pos)) return 0;

  FolioState* ifs = nullptr;
  if (folio->nr_blocks() > 1) {
    ifs = folio->state();
    if (ifs == nullptr) {
      ifs = folio->AttachState();
      folio->SetRangeDirty(0, static_cast<size_t>(end_pos - pos));
    }
    // The bias keeps completions from ending writeback before every range
    // of the folio has been submitted.
    if (ifs->write_bytes_pending.load() != 0) {
      std::fprintf(stderr, "iomap: folio writeback already pending\n");
      std::abort();
    }
    StartFolioWrite(folio, 1);
  }
  // Set writeback before the first bio can complete.
  folio->StartWriteback();

  const int64_t bs = int64_t{1} << inode->blkbits();
  const int64_t end_aligned = (end_pos + bs - 1) & ~(bs - 1);
  bool wb_pending = false;
  int error = 0;
  uint64_t rlen;
  while ((rlen = FindDirtyRange(folio, &pos, end_aligned)) != 0) {
    error = WritebackRange(wpc, folio, pos, rlen, end_pos, &wb_pending);
    if (error != 0) break;
    pos += static_cast<int64_t>(rlen);
  }
  if (wb_pending) wpc->nr_folios++;
  // Every dirty bit goes, including post-EOF ones from page_mkwrite and
  // those of a range that failed: a failing device must not pin memory.
  folio->ClearRangeDirty(0, folio->size());
  if (ifs != nullptr) {
    FinishFolioWrite(folio, 1);  // drop the bias
  } else if (!wb_pending) {
    folio->EndWriteback();
  }
  MappingSetError(inode->mapping(), error);
  return error;
}

namespace {

// writeback_iter()'s folio preparation: locked, still ours, dirty, not under
// writeback (waited for in integrity mode), dirty flag cleared.
bool PrepareFolio(Mapping* mapping, WritebackControl* wbc, Folio* folio) {
  folio->Lock();
  if (folio->mapping() != mapping || !folio->Dirty()) {
    folio->Unlock();
    return false;
  }
  if (folio->Writeback()) {
    if (wbc->sync_mode == SyncMode::kNone) {
      folio->Unlock();
      return false;
    }
    folio->WaitWriteback();
  }
  if (!folio->ClearDirtyForIo()) {
    folio->Unlock();
    return false;
  }
  return true;
}

}  // namespace

int Writepages(WritepageCtx* wpc) {
  AssertMayLockFolios();
  Mapping* mapping = wpc->inode->mapping();
  WritebackControl* wbc = wpc->wbc;
  if (wbc->range_end < wbc->range_start) return 0;
  int64_t index = wbc->range_start >> kPageShift;
  const int64_t last = wbc->range_end >> kPageShift;
  int error = 0;
  int saved = 0;
  bool done = false;
  while (!done && index <= last) {
    std::vector<FolioRef> batch =
        mapping->DirtyFolios(index, last, kDirtyBatch);
    if (batch.empty()) break;
    for (FolioRef& ref : batch) {
      Folio* folio = ref.get();
      // Monotonic: a folio is visited once per pass, so we never wait for
      // writeback of a folio sitting in our own unsubmitted ioend.
      if (folio->end() >> kPageShift <= index) continue;
      index = folio->end() >> kPageShift;
      if (!PrepareFolio(mapping, wbc, folio)) continue;
      wbc->nr_to_write -= int64_t{1} << folio->order();
      wbc->folios_written++;
      error = WritebackFolio(wpc, folio);
      folio->Unlock();
      if (wbc->sync_mode == SyncMode::kAll) {
        if (error != 0 && saved == 0) saved = error;
      } else if (error != 0 || wbc->nr_to_write <= 0) {
        done = true;
        break;
      }
    }
  }
  if (wbc->sync_mode == SyncMode::kAll) error = saved;
  if (wpc->ioend == nullptr) return error;
  return wpc->ops->WritebackSubmit(wpc, error);
}

int Writepages(Mapping* mapping, WritebackControl* wbc, WritepageCtx* wpc,
               IomapWritebackOps* ops) {
  wpc->inode = mapping->host();
  wpc->wbc = wbc;
  wpc->ops = ops;
  return Writepages(wpc);
}

int SimpleWritepages::Writepages(Inode* inode, WritebackControl* wbc) {
  WritepageCtx wpc;
  return iomap::Writepages(inode->mapping(), wbc, &wpc, ops_);
}

namespace {

// [start, end] inclusive -> exclusive end, without overflow at INT64_MAX.
int64_t ExclusiveEnd(int64_t end) {
  return end == std::numeric_limits<int64_t>::max() ? end : end + 1;
}

}  // namespace

int FdatawriteRange(WritepagesOps* ops, Inode* inode, int64_t start,
                    int64_t end, SyncMode sync_mode) {
  if (end < start) return 0;
  if (!inode->mapping()->RangeNeedsWriteback(start, ExclusiveEnd(end)) &&
      sync_mode == SyncMode::kNone) {
    return 0;
  }
  WritebackControl wbc;
  wbc.sync_mode = sync_mode;
  wbc.range_start = start;
  wbc.range_end = end;
  return ops->Writepages(inode, &wbc);
}

void FdatawaitRange(Mapping* mapping, int64_t start, int64_t end) {
  if (end < start) return;
  for (FolioRef& f :
       mapping->FoliosInRange(start >> kPageShift, end >> kPageShift)) {
    f->WaitWriteback();
  }
}

namespace {

int WriteAndWaitNoCheck(WritepagesOps* ops, Inode* inode, int64_t start,
                        int64_t end) {
  Mapping* mapping = inode->mapping();
  if (end < start || !mapping->RangeNeedsWriteback(start, ExclusiveEnd(end)))
    return 0;
  int err = FdatawriteRange(ops, inode, start, end, SyncMode::kAll);
  // An -EIO from the pass means the device is failing: do not wait on it
  // (the kernel's rule), the error is already recorded.
  if (err != -EIO) FdatawaitRange(mapping, start, end);
  return err;
}

}  // namespace

int WriteAndWaitRange(WritepagesOps* ops, Inode* inode, int64_t start,
                      int64_t end) {
  int err = WriteAndWaitNoCheck(ops, inode, start, end);
  int err2 = inode->mapping()->wb_err.TestAndClearLegacy();
  return err != 0 ? err : err2;
}

int FileCheckAndAdvanceWbErr(Mapping* mapping, ErrSeq::Cursor* cursor) {
  int err = mapping->wb_err.seq().CheckAndAdvance(cursor);
  mapping->wb_err.TestAndClearLegacy();
  return err;
}

int FileWriteAndWaitRange(WritepagesOps* ops, Inode* inode,
                          ErrSeq::Cursor* cursor, int64_t start, int64_t end) {
  int err = WriteAndWaitNoCheck(ops, inode, start, end);
  int err2 = FileCheckAndAdvanceWbErr(inode->mapping(), cursor);
  return err != 0 ? err : err2;
}

}  // namespace iomap
