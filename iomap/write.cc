// Buffered writes: iomap_get_folio, write_begin/write_end, the
// iomap_file_buffered_write loop, and delalloc release after short writes.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "iomap/buffered_io.h"
#include "iomap/internal.h"

namespace iomap {

namespace {

// fgf_set_order(): the folio order a write of `len` bytes asks for.
unsigned OrderForLength(size_t len) {
  unsigned order = 0;
  while (order < kMaxFolioOrder && (kPageSize << (order + 1)) <= len) order++;
  return order;
}

// iomap_write_failed(): drops cached folios a failed write created past
// i_size (never the ones inside the file).
void WriteFailed(Inode* inode, int64_t pos, uint64_t len) {
  const int64_t isize = inode->i_size_read();
  const int64_t end = pos + static_cast<int64_t>(len);
  if (end > isize) inode->mapping()->TruncateRange(std::max(pos, isize), end);
}

// __iomap_write_begin(): brings the blocks of `folio` around a write of
// `len` bytes at iter->pos() uptodate: reads (from srcmap) or zeroes
// (new/unwritten/hole/past EOF) each run the write covers only in part.
int PrepareFolio(IomapIter* iter, IomapWriteOps* wops, size_t len,
                 Folio* folio) {
  Inode* inode = iter->inode();
  const int64_t pos = iter->pos();
  const int64_t bs = inode->block_size();
  int64_t block_start = pos & ~(bs - 1);
  const int64_t block_end =
      (pos + static_cast<int64_t>(len) + bs - 1) & ~(bs - 1);
  const size_t from = static_cast<size_t>(pos - folio->pos());
  const size_t to = from + len;
  const bool unshare = iter->flags() & kUnshare;

  // A write over the whole folio dirties all of it: no per-block state.
  if (!unshare && pos <= folio->pos() &&
      pos + static_cast<int64_t>(len) >= folio->end()) {
    return 0;
  }
  folio->AttachState();
  if (folio->Uptodate()) return 0;
  do {
    size_t poff = 0, plen = 0;
    internal::AdjustReadRange(inode, folio, &block_start,
                              block_end - block_start, &poff, &plen);
    if (plen == 0) break;
    const bool partial =
        (from > poff && from < poff + plen) || (to > poff && to < poff + plen);
    if (unshare || partial) {
      if (internal::BlockNeedsZeroing(*iter, block_start)) {
        if (unshare) return -EIO;
        // Zero the parts of the run the write will not fill.
        if (from > poff) std::memset(folio->data() + poff, 0, from - poff);
        if (to < poff + plen) {
          std::memset(folio->data() + to, 0, poff + plen - to);
        }
      } else {
        if (iter->flags() & kNowait) return -EAGAIN;
        int ret = wops->ReadFolioRange(*iter, folio, block_start, plen);
        if (ret < 0) return ret;
      }
      folio->SetRangeUptodate(poff, plen);
    }
    block_start += static_cast<int64_t>(plen);
  } while (block_start < block_end);
  return 0;
}

int WriteBeginInline(IomapIter* iter, Folio* folio) {
  if (iter->Srcmap().offset != 0) return -EIO;  // tail packing: unsupported
  return internal::ReadInlineData(*iter, folio);
}

// The write-loop step of iomap_write_iter(): copies from `src` folio by folio.
int WriteIterStep(IomapIter* iter, WriteSource* src, IomapWriteOps* wops) {
  Inode* inode = iter->inode();
  Mapping* mapping = inode->mapping();
  MappingHooks* hooks = mapping->hooks();
  size_t chunk = mapping->max_folio_size();
  int64_t total = 0;
  int status = 0;
  uint64_t bytes = 0;
  bool retry = false;
  do {
    if (!retry) bytes = src->Count();
    retry = false;
    const uint64_t offset = static_cast<uint64_t>(iter->pos()) & (chunk - 1);
    bytes = std::min<uint64_t>(chunk - offset, bytes);
    if (hooks != nullptr) {
      status = hooks->BalanceDirty(inode, iter->flags() & kNowait);
      if (status < 0) break;
    }
    bytes = std::min<uint64_t>(bytes, iter->Length());
    if (src->FaultInReadable(bytes) == bytes) {
      status = -EFAULT;
      break;
    }
    Folio* folio = nullptr;
    size_t foff = 0;
    status = internal::WriteBegin(iter, wops, &folio, &foff, &bytes);
    if (status < 0) {
      WriteFailed(inode, iter->pos(), bytes);
      break;
    }
    if (iter->iomap.flags & kStale) break;
    const int64_t pos = iter->pos();
    const size_t copied = src->CopyAtomic(folio->data() + foff, bytes);
    const size_t written =
        internal::WriteEnd(iter, bytes, copied, folio) ? copied : 0;
    // i_size moves before the folio is unlocked (see iomap_write_iter).
    const int64_t old_size = inode->i_size_read();
    if (pos + static_cast<int64_t>(written) > old_size) {
      inode->i_size_write(pos + static_cast<int64_t>(written));
      iter->iomap.flags |= kSizeChanged;
    }
    internal::PutFolio(iter, wops, written, folio);
    if (written > 0 && old_size < pos) {
      PagecacheIsizeExtended(inode, old_size, pos);
    }
    if (written == 0) {
      // A short copy into a !uptodate folio counts as nothing: retry with
      // what could be copied, in smaller chunks.
      WriteFailed(inode, pos, bytes);
      src->Revert(copied);
      if (chunk > kPageSize) chunk /= 2;
      if (copied > 0) {
        bytes = copied;
        retry = true;
      }
    } else {
      total += static_cast<int64_t>(written);
      status = iter->Advance(written);
      if (status < 0) break;
    }
  } while (src->Count() > 0 && iter->Length() > 0);
  return total > 0 ? 0 : status;
}

// One folio of iomap_write_delalloc_release(): a dirty folio keeps the
// reservation under its dirty blocks; everything else is punched.
void DelallocPunchFolio(Inode* inode, Folio* folio, int64_t* punch_start,
                        int64_t start, int64_t end, Iomap* iomap,
                        const PunchFn& punch) {
  if (!folio->Dirty()) return;
  if (start > *punch_start)
    punch(inode, *punch_start, start - *punch_start, iomap);
  if (folio->state() != nullptr) {
    const unsigned bb = inode->blkbits();
    const int64_t last_byte = std::min(end - 1, folio->end() - 1);
    const unsigned first = static_cast<unsigned>((start - folio->pos()) >> bb);
    const unsigned last =
        static_cast<unsigned>((last_byte - folio->pos()) >> bb);
    for (unsigned b = first; b <= last; b++) {
      if (!folio->BlockDirty(b)) {
        punch(inode, folio->pos() + (int64_t{b} << bb), int64_t{1} << bb,
              iomap);
      }
    }
  }
  *punch_start = std::min(end, folio->end());
}

void DelallocScan(Inode* inode, int64_t* punch_start, int64_t start,
                  int64_t end, Iomap* iomap, const PunchFn& punch) {
  Mapping* mapping = inode->mapping();
  while (start < end) {
    Folio* folio = nullptr;
    if (mapping->GetFolio(start >> kPageShift, kFgpLock, 0, &folio) < 0) {
      start = ((start >> kPageShift) + 1) << kPageShift;
      continue;
    }
    DelallocPunchFolio(inode, folio, punch_start, start, end, iomap, punch);
    start = folio->end();
    folio->Unlock();
    folio->Put();
  }
}

}  // namespace

size_t BufferSource::FaultInReadable(size_t bytes) {
  const size_t limit = std::min(len_, fault_at_);
  const size_t readable = off_ >= limit ? 0 : std::min(bytes, limit - off_);
  return bytes - readable;
}

size_t BufferSource::CopyAtomic(uint8_t* dst, size_t bytes) {
  const size_t limit = std::min(len_, fault_at_);
  const size_t n = off_ >= limit ? 0 : std::min(bytes, limit - off_);
  std::memcpy(dst, data_ + off_, n);
  off_ += n;
  return n;
}

int FilemapWriteAndWaitRange(Inode* inode, int64_t start, int64_t end) {
  MappingHooks* hooks = inode->mapping()->hooks();
  if (hooks == nullptr) {
    // Without a writeback engine nothing can be written back.
    if (!inode->mapping()->RangeNeedsWriteback(start, end + 1)) return 0;
    std::fprintf(stderr, "iomap: no writeback hooks on inode %llu\n",
                 static_cast<unsigned long long>(inode->ino()));
    return -EOPNOTSUPP;
  }
  return hooks->WriteAndWaitRange(inode, start, end);
}

int IomapGetFolio(IomapIter* iter, int64_t pos, size_t len, Folio** folio) {
  // A new folio's data is left undefined; WriteBegin zeroes it unless this
  // write covers all of it.
  unsigned fgp = kFgpWriteBegin | kFgpNoZero;
  if (iter->flags() & kNowait) fgp |= kFgpNowait;
  if (iter->flags() & kDontcache) fgp |= kFgpDontcache;
  Mapping* mapping = iter->inode()->mapping();
  return mapping->GetFolio(pos >> kPageShift, fgp, OrderForLength(len), folio);
}

namespace internal {

int BatchNextFolio(IomapIter* iter, Folio** folio) {
  FolioBatch* batch = iter->fbatch;
  if (batch == nullptr) {
    std::fprintf(stderr, "iomap: kFolioBatch without a folio batch\n");
    return -EIO;
  }
  if (batch->next >= batch->folios.size()) return 0;
  Folio* f = batch->folios[batch->next++].get();
  f->Lock();
  if (f->mapping() != iter->inode()->mapping()) {
    // Truncated since the lookup: remap from here.
    f->Unlock();
    iter->iomap.flags |= kStale;
    return 0;
  }
  f->WaitWriteback();  // stable pages, as FGP_STABLE
  f->Get();
  *folio = f;
  return 0;
}

int WriteBegin(IomapIter* iter, IomapWriteOps* wops, Folio** foliop,
               size_t* offset, uint64_t* bytes) {
  Inode* inode = iter->inode();
  int64_t pos = iter->pos();
  uint64_t len = std::min<uint64_t>(*bytes, iter->Length());
  const size_t max_folio = inode->mapping()->max_folio_size();
  len = std::min<uint64_t>(
      len, max_folio - (static_cast<uint64_t>(pos) & (max_folio - 1)));
  Folio* folio = nullptr;
  *foliop = nullptr;
  int ret = (iter->iomap.flags & kFolioBatch)
                ? BatchNextFolio(iter, &folio)
                : wops->GetFolio(iter, pos, len, &folio);
  if (ret < 0 || folio == nullptr) return ret;  // null: the batch is done
  // The mapping may have changed while we waited for the folio lock.
  if (!wops->IomapValid(inode, iter->iomap)) {
    iter->iomap.flags |= kStale;
    PutFolio(iter, wops, 0, folio);
    return 0;
  }
  if (folio->pos() > pos) {
    // Batched folios need not be contiguous: skip the clean gap.
    ret = iter->Advance(std::min<uint64_t>(folio->pos() - pos, iter->Length()));
    if (ret < 0 || iter->Length() == 0) {
      PutFolio(iter, wops, 0, folio);
      return ret;
    }
    pos = iter->pos();
    len = iter->Length();
  }
  *offset = static_cast<size_t>(pos - folio->pos());
  len = std::min<uint64_t>(len, folio->size() - *offset);
  *bytes = len;
  // Undefined data (a new folio from IomapGetFolio) is kept only for a plain
  // write over the whole folio, which WriteEnd accepts only when it copied
  // every byte; otherwise zero it now, as a new folio always was.
  if (folio->DataUndefined() &&
      (*offset != 0 || len < folio->size() || (iter->flags() & kUnshare) ||
       iter->Srcmap().type == Iomap::Type::kInline)) {
    folio->ZeroUndefinedData();
  }
  if (iter->Srcmap().type == Iomap::Type::kInline) {
    ret = WriteBeginInline(iter, folio);
  } else {
    ret = PrepareFolio(iter, wops, len, folio);
  }
  if (ret < 0) {
    PutFolio(iter, wops, 0, folio);
    return ret;
  }
  *foliop = folio;
  return 0;
}

bool WriteEnd(IomapIter* iter, size_t len, size_t copied, Folio* folio) {
  const Iomap& srcmap = iter->Srcmap();
  const int64_t pos = iter->pos();
  const size_t off = static_cast<size_t>(pos - folio->pos());
  if (srcmap.type == Iomap::Type::kInline) {
    // iomap_write_end_inline(): the data lives in the inode.
    std::memcpy(
        static_cast<uint8_t*>(srcmap.inline_data) + (pos - srcmap.offset),
        folio->data() + off, copied);
    return true;
  }
  // A short copy into a !uptodate folio could leave a partly written block
  // that a later read would clobber: treat it as nothing written.
  // (A folio with undefined data is then unlocked and zeroed by Unlock.)
  if (copied < len && !folio->Uptodate()) return false;
  // Every byte of a folio with undefined data was just copied (WriteBegin).
  folio->SetDataDefined();
  folio->SetRangeUptodate(off, len);
  folio->SetRangeDirty(off, copied);
  folio->MarkDirtyFlag();
  return true;
}

void PutFolio(IomapIter* iter, IomapWriteOps* wops, size_t written,
              Folio* folio) {
  wops->PutFolio(iter->inode(), iter->pos(), written, folio);
}

}  // namespace internal

int64_t FileBufferedWrite(Inode* inode, int64_t pos, WriteSource* src,
                          unsigned flags, IomapOps& ops,
                          IomapWriteOps* write_ops, void* private_data) {
  inode->locks().rwsem.AssertReaderHeld();
  if (pos < 0) return -EINVAL;
  if (src->Count() == 0) return 0;
  IomapWriteOps* wops = write_ops ? write_ops : &IomapWriteOps::Default();
  IomapIter iter(inode, pos, src->Count(),
                 kWrite | (flags & (kNowait | kDontcache)));
  iter.private_data = private_data;
  int ret;
  while ((ret = iter.Next(ops)) > 0) {
    iter.status = WriteIterStep(&iter, src, wops);
  }
  if (iter.pos() == pos) return ret;
  return iter.pos() - pos;
}

void WriteDelallocRelease(Inode* inode, int64_t start, int64_t end,
                          unsigned flags, Iomap* iomap, const PunchFn& punch) {
  (void)flags;
  inode->locks().invalidate.AssertHeld();
  Mapping* mapping = inode->mapping();
  int64_t punch_start = start;
  const int64_t scan_end = std::min(inode->i_size_read(), end);
  while (start < scan_end) {
    start = mapping->SeekHoleData(start, scan_end, SEEK_DATA);
    if (start < 0 || start >= scan_end) break;
    const int64_t data_end = mapping->SeekHoleData(start, scan_end, SEEK_HOLE);
    if (data_end <= start) {  // raced with invalidation: step over a block
      start += inode->block_size();
      continue;
    }
    DelallocScan(inode, &punch_start, start, data_end, iomap, punch);
    start = data_end;
  }
  if (punch_start < end) punch(inode, punch_start, end - punch_start, iomap);
}

}  // namespace iomap
