// Zeroing, truncate_page, unshare and page_mkwrite: the write-like paths
// that are not plain buffered writes.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "iomap/buffered_io.h"
#include "iomap/internal.h"

namespace iomap {

namespace {

IomapWriteOps* WriteOpsOrDefault(IomapWriteOps* wops) {
  return wops != nullptr ? wops : &IomapWriteOps::Default();
}

// iomap_zero_iter(): zeroes the current mapping through the pagecache (with
// kFolioBatch: only the batched folios).
int ZeroIter(IomapIter* iter, bool* did_zero, IomapWriteOps* wops) {
  int status = 0;
  do {
    uint64_t bytes = iter->Length();
    Folio* folio = nullptr;
    size_t off = 0;
    status = internal::WriteBegin(iter, wops, &folio, &off, &bytes);
    if (status < 0) return status;
    if (iter->iomap.flags & kStale) break;
    if (folio == nullptr) {
      // The batch is used up: nothing else here needs zeroing.
      if (iter->Length() > 0) status = iter->Advance(iter->Length());
      break;
    }
    std::memset(folio->data() + off, 0, bytes);
    folio->lru_referenced.store(true, std::memory_order_relaxed);
    const bool ok = internal::WriteEnd(iter, bytes, bytes, folio);
    internal::PutFolio(iter, wops, bytes, folio);
    if (!ok) return -EIO;
    status = iter->Advance(bytes);
    if (status < 0) break;
  } while (iter->Length() > 0);
  if (did_zero != nullptr) *did_zero = true;
  return status;
}

// iomap_zero_iter_flush_and_stale(): the range was dirty over a mapping that
// reads as zeros on disk: write it back so the mapping converts, and remap.
int ZeroFlushAndStale(IomapIter* iter) {
  iter->iomap.flags |= kStale;
  const int64_t end = iter->pos() + static_cast<int64_t>(iter->len()) - 1;
  return FilemapWriteAndWaitRange(iter->inode(), iter->pos(), end);
}

bool WantUnshare(const IomapIter& iter) {
  return (iter.iomap.flags & kShared) &&
         iter.srcmap.type == Iomap::Type::kMapped;
}

// iomap_unshare_iter(): reads the old data of shared blocks into the cache
// and dirties it.
int UnshareIter(IomapIter* iter, IomapWriteOps* wops) {
  uint64_t bytes = iter->Length();
  if (!WantUnshare(*iter)) return iter->Advance(bytes);
  int status = 0;
  do {
    Folio* folio = nullptr;
    size_t off = 0;
    status = internal::WriteBegin(iter, wops, &folio, &off, &bytes);
    if (status < 0) return status;
    if (iter->iomap.flags & kStale) break;
    const bool ok = internal::WriteEnd(iter, bytes, bytes, folio);
    internal::PutFolio(iter, wops, bytes, folio);
    if (!ok) return -EIO;
    MappingHooks* hooks = iter->inode()->mapping()->hooks();
    if (hooks != nullptr) hooks->BalanceDirty(iter->inode(), false);
    status = iter->Advance(bytes);
    if (status < 0) break;
  } while ((bytes = iter->Length()) > 0);
  return status;
}

// folio_mkwrite_check_truncate(): bytes of the folio inside EOF, or -EFAULT
// when it was truncated away.
int64_t MkwriteCheckTruncate(Folio* folio, Inode* inode) {
  const int64_t size = inode->i_size_read();
  const int64_t eof_index = size >> kPageShift;
  const int64_t offset = size & static_cast<int64_t>(folio->size() - 1);
  if (folio->mapping() != inode->mapping()) return -EFAULT;
  const int64_t last = folio->index() + (int64_t{1} << folio->order()) - 1;
  if (last < eof_index) return static_cast<int64_t>(folio->size());
  if (folio->index() > eof_index || offset == 0) return -EFAULT;
  return offset;
}

}  // namespace

int ZeroRange(Inode* inode, int64_t pos, int64_t len, bool* did_zero,
              IomapOps& ops, IomapWriteOps* write_ops, void* private_data) {
  inode->locks().rwsem.AssertHeld();
  inode->locks().invalidate.AssertHeld();
  if (len <= 0) return 0;
  IomapWriteOps* wops = WriteOpsOrDefault(write_ops);
  Mapping* mapping = inode->mapping();
  const int64_t bs = inode->block_size();
  const int64_t off = pos & (bs - 1);
  int64_t start = pos;
  int ret;
  // An unaligned start already dirty in the cache is zeroed first, whatever
  // the mapping, to avoid a flush for the common partial-EOF-block case.
  if (off != 0) {
    const int64_t plen = std::min(len, bs - off);
    if (mapping->RangeNeedsWriteback(pos, pos + plen)) {
      IomapIter head(inode, pos, static_cast<uint64_t>(plen), kZero);
      head.private_data = private_data;
      while ((ret = head.Next(ops)) > 0) {
        head.status = ZeroIter(&head, did_zero, wops);
      }
      if (ret < 0) return ret;
      start = head.pos();
      if (start - pos >= len) return 0;
    }
  }
  IomapIter iter(inode, start, static_cast<uint64_t>(len - (start - pos)),
                 kZero);
  iter.private_data = private_data;
  FolioBatch batch;
  iter.fbatch = &batch;
  bool range_dirty = mapping->RangeNeedsWriteback(
      iter.pos(), iter.pos() + static_cast<int64_t>(iter.len()));
  while ((ret = iter.Next(ops)) > 0) {
    const Iomap& srcmap = iter.Srcmap();
    if (!(iter.iomap.flags & kFolioBatch) &&
        (srcmap.type == Iomap::Type::kHole ||
         srcmap.type == Iomap::Type::kUnwritten)) {
      if (range_dirty) {
        range_dirty = false;
        iter.status = ZeroFlushAndStale(&iter);
      } else {
        iter.status = iter.Advance(iter.Length());
      }
      continue;
    }
    iter.status = ZeroIter(&iter, did_zero, wops);
  }
  return ret;
}

unsigned FillDirtyFolios(IomapIter* iter, int64_t* start, int64_t end,
                         uint32_t* iomap_flags) {
  if (iter->fbatch == nullptr || end <= *start) {
    *start = std::max(*start, end);
    return 0;
  }
  FolioBatch* batch = iter->fbatch;
  const int64_t last = (end - 1) >> kPageShift;
  int64_t next = last + 1;
  for (FolioRef& f :
       iter->inode()->mapping()->FoliosInRange(*start >> kPageShift, last)) {
    if (batch->folios.size() >= FolioBatch::kMax) break;
    if (f->TryLock()) {
      // A folio locked by someone else may be about to be dirtied: keep it.
      const bool clean = !f->Dirty() && !f->Writeback();
      f->Unlock();
      if (clean) continue;
    }
    const int64_t folio_next = f->index() + (int64_t{1} << f->order());
    batch->folios.push_back(std::move(f));
    if (batch->folios.size() == FolioBatch::kMax) next = folio_next;
  }
  *start = next << kPageShift;
  *iomap_flags |= kFolioBatch;
  return static_cast<unsigned>(batch->folios.size());
}

int TruncatePage(Inode* inode, int64_t pos, bool* did_zero, IomapOps& ops,
                 IomapWriteOps* write_ops) {
  const int64_t bs = inode->block_size();
  const int64_t off = pos & (bs - 1);
  if (off == 0) return 0;
  return ZeroRange(inode, pos, bs - off, did_zero, ops, write_ops);
}

void TruncateSetsize(Inode* inode, int64_t newsize) {
  inode->locks().rwsem.AssertHeld();
  inode->locks().invalidate.AssertHeld();
  const int64_t oldsize = inode->i_size_read();
  inode->i_size_write(newsize);
  if (newsize > oldsize) PagecacheIsizeExtended(inode, oldsize, newsize);
  if (newsize < oldsize) {
    inode->mapping()->TruncateRange(newsize,
                                    std::numeric_limits<int64_t>::max());
  }
}

void PagecacheIsizeExtended(Inode* inode, int64_t from, int64_t to) {
  const int64_t bs = inode->block_size();
  if (from >= to || bs >= static_cast<int64_t>(kPageSize)) return;
  // Only a page that straddled the old EOF and now gains a whole block
  // that was past EOF needs anything: that block may be a hole.
  const int64_t rounded_from = (from + bs - 1) & ~(bs - 1);
  if (to <= rounded_from ||
      (rounded_from & static_cast<int64_t>(kPageSize - 1)) == 0) {
    return;
  }
  Folio* folio = nullptr;
  if (inode->mapping()->GetFolio(from >> kPageShift, kFgpLock, 0, &folio) < 0) {
    return;  // not cached: the next fault creates it through PageMkwrite
  }
  // folio_mkclean(): the next store faults and allocates the new blocks.
  if (folio->ClearWriteMapped()) Mapping::DirtyFolio(folio);
  // Bytes stored past the old EOF (writeback would have zeroed them) must
  // not appear inside the file.
  if (folio->Dirty()) {
    const int64_t off = from - folio->pos();
    const int64_t end =
        std::min(to - folio->pos(), static_cast<int64_t>(folio->size()));
    std::memset(folio->data() + off, 0, static_cast<size_t>(end - off));
  }
  folio->Unlock();
  folio->Put();
}

int FileUnshare(Inode* inode, int64_t pos, int64_t len, IomapOps& ops,
                IomapWriteOps* write_ops) {
  inode->locks().rwsem.AssertHeld();
  inode->locks().invalidate.AssertHeld();
  const int64_t size = inode->i_size_read();
  if (pos < 0 || pos >= size || len <= 0) return 0;
  IomapWriteOps* wops = WriteOpsOrDefault(write_ops);
  IomapIter iter(inode, pos, static_cast<uint64_t>(std::min(len, size - pos)),
                 kWrite | kUnshare);
  int ret;
  while ((ret = iter.Next(ops)) > 0) iter.status = UnshareIter(&iter, wops);
  return ret;
}

int PageMkwrite(Inode* inode, Folio* folio, IomapOps& ops) {
  inode->locks().invalidate.AssertReaderHeld();
  folio->Lock();
  const int64_t len = MkwriteCheckTruncate(folio, inode);
  if (len < 0) {
    folio->Unlock();
    return static_cast<int>(len);
  }
  IomapIter iter(inode, folio->pos(), static_cast<uint64_t>(len),
                 kWrite | kFault);
  int ret;
  while ((ret = iter.Next(ops)) > 0) {
    Mapping::DirtyFolio(folio);  // folio_mark_dirty: every block
    iter.status = iter.Advance(iter.Length());
  }
  if (ret < 0) {
    folio->Unlock();
    return ret;
  }
  folio->WaitWriteback();   // folio_wait_stable
  folio->SetWriteMapped();  // the faulting store may now proceed
  return 0;
}

}  // namespace iomap
