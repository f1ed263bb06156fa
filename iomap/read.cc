// Buffered reads: read_folio, readahead, filemap_read, and the synchronous
// range read used by read-modify-write.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "block/device.h"
#include "iomap/buffered_io.h"
#include "iomap/internal.h"

namespace iomap {

namespace {

struct ReadCounters {
  std::atomic<uint64_t> bios{0};
  std::atomic<uint64_t> bio_bytes{0};
  std::atomic<uint64_t> zeroed_bytes{0};
};
ReadCounters counters;

// A read bio and the folio ranges it fills.
struct ReadBio {
  struct Segment {
    Folio* folio;
    size_t off;
    size_t len;
  };
  block::Bio bio;
  absl::InlinedVector<Segment, 8> segs;
};

// Ends the read of a folio once no bytes are pending (bias included).
void FinishFolioRead(Folio* folio, int64_t done_bytes) {
  FolioState* ifs = folio->state();
  if (ifs == nullptr ||
      ifs->read_bytes_pending.fetch_sub(done_bytes) == done_bytes) {
    folio->Unlock();
  }
}

// Completion ("interrupt context"): marks what was read uptodate and unlocks
// folios whose reads are all done. Blocks that failed stay !uptodate.
void ReadEndIo(block::Bio* bio) {
  auto* rb = static_cast<ReadBio*>(bio->private_data);
  const bool ok = bio->result >= 0;
  for (const ReadBio::Segment& seg : rb->segs) {
    if (ok) seg.folio->SetRangeUptodate(seg.off, seg.len);
    FinishFolioRead(seg.folio, static_cast<int64_t>(seg.len));
  }
  delete rb;
}

// The state of one read_folio / readahead call (iomap_readpage_ctx).
struct ReadCtx {
  Inode* inode = nullptr;
  bool readahead = false;
  std::vector<Folio*> folios;  // locked, referenced, in file order
  size_t next = 0;             // first folio not started
  Folio* cur = nullptr;
  int64_t cur_submitted = 0;  // bytes of cur in bios
  ReadBio* bio = nullptr;     // being built, not submitted
  block::Device* bio_dev = nullptr;
};

void SubmitReadBio(ReadCtx* ctx) {
  if (ctx->bio == nullptr) return;
  counters.bios.fetch_add(1, std::memory_order_relaxed);
  counters.bio_bytes.fetch_add(ctx->bio->bio.Length(),
                               std::memory_order_relaxed);
  ReadBio* rb = ctx->bio;
  ctx->bio = nullptr;
  ctx->bio_dev->Submit(&rb->bio);
}

void StartFolio(ReadCtx* ctx, Folio* folio) {
  ctx->cur = folio;
  ctx->cur_submitted = 0;
  FolioState* ifs = folio->AttachState();
  // Bias: the folio cannot finish before all of it was considered.
  if (ifs != nullptr) {
    ifs->read_bytes_pending.fetch_add(static_cast<int64_t>(folio->size()));
  }
  // The completion, in another thread, may unlock it from now on.
  folio->HandOffLock();
}

void FinishFolio(ReadCtx* ctx) {
  Folio* folio = ctx->cur;
  if (folio == nullptr) return;
  ctx->cur = nullptr;
  if (folio->state() != nullptr) {
    FinishFolioRead(folio,
                    static_cast<int64_t>(folio->size()) - ctx->cur_submitted);
  } else if (ctx->cur_submitted == 0) {
    folio->Unlock();
  }
}

bool CanMerge(const ReadCtx& ctx, block::Device* dev, uint64_t addr,
              size_t plen) {
  if (ctx.bio == nullptr || ctx.bio_dev != dev) return false;
  const block::Bio& bio = ctx.bio->bio;
  const block::DeviceLimits& limits = dev->limits();
  return bio.offset + bio.Length() == addr &&
         bio.Length() + plen <= limits.max_io_bytes &&
         bio.iov.size() < limits.max_segments;
}

// Adds folio bytes [poff, poff + plen) at file position pos to the bio being
// built, starting a new bio when the device range is not contiguous.
int AddToReadBio(ReadCtx* ctx, const IomapIter& iter, int64_t pos, size_t poff,
                 size_t plen) {
  block::Device* dev = internal::DeviceOf(ctx->inode, iter.iomap);
  if (dev == nullptr || iter.iomap.addr == kNullAddr) return -EIO;
  const uint64_t addr = iter.iomap.DeviceAddr(pos);
  uint8_t* mem = ctx->cur->data() + poff;
  if (!CanMerge(*ctx, dev, addr, plen)) {
    SubmitReadBio(ctx);
    ctx->bio = new ReadBio();
    ctx->bio_dev = dev;
    ctx->bio->bio.op = block::BioOp::kRead;
    ctx->bio->bio.offset = addr;
    ctx->bio->bio.end_io = ReadEndIo;
    ctx->bio->bio.private_data = ctx->bio;
    if (ctx->readahead) ctx->bio->bio.flags |= block::kBioRahead;
  }
  block::Bio& bio = ctx->bio->bio;
  ReadBio::Segment* last =
      ctx->bio->segs.empty() ? nullptr : &ctx->bio->segs.back();
  if (last != nullptr && last->folio == ctx->cur &&
      last->off + last->len == poff) {
    last->len += plen;  // contiguous in memory too: grow the segment
    bio.iov.back().iov_len += plen;
    bio.len += plen;
  } else {
    bio.AddSegment(mem, plen);
    ctx->bio->segs.push_back({ctx->cur, poff, plen});
  }
  ctx->cur_submitted += static_cast<int64_t>(plen);
  return 0;
}

// iomap_read_folio_iter(): the part of the current mapping inside ctx->cur.
int ReadFolioIter(IomapIter* iter, ReadCtx* ctx) {
  Folio* folio = ctx->cur;
  int64_t flen = std::min<int64_t>(iter->Length(), folio->end() - iter->pos());
  if (iter->iomap.type == Iomap::Type::kInline) {
    int ret = internal::ReadInlineData(*iter, folio);
    if (ret < 0) return ret;
    return iter->Advance(static_cast<uint64_t>(flen));
  }
  while (flen > 0) {
    int64_t pos = iter->pos();
    size_t poff = 0, plen = 0;
    internal::AdjustReadRange(ctx->inode, folio, &pos, flen, &poff, &plen);
    if (plen > 0) {
      if (internal::BlockNeedsZeroing(*iter, pos)) {
        std::memset(folio->data() + poff, 0, plen);
        folio->SetRangeUptodate(poff, plen);
        counters.zeroed_bytes.fetch_add(plen, std::memory_order_relaxed);
      } else {
        int ret = AddToReadBio(ctx, *iter, pos, poff, plen);
        if (ret < 0) return ret;
      }
    }
    const int64_t count = pos - iter->pos() + static_cast<int64_t>(plen);
    if (count <= 0) return -EIO;
    int ret = iter->Advance(static_cast<uint64_t>(count));
    if (ret < 0) return ret;
    flen -= count;
  }
  return 0;
}

// iomap_readahead_iter(): walks the folios covered by the current mapping.
int ReadIterStep(IomapIter* iter, ReadCtx* ctx) {
  while (iter->Length() > 0) {
    if (ctx->cur != nullptr && iter->pos() >= ctx->cur->end()) {
      FinishFolio(ctx);
    }
    if (ctx->cur == nullptr) {
      if (ctx->next >= ctx->folios.size()) return -EIO;
      StartFolio(ctx, ctx->folios[ctx->next++]);
    }
    int ret = ReadFolioIter(iter, ctx);
    if (ret < 0) return ret;
  }
  return 0;
}

// Reads a contiguous run of locked folios; unlocks each when done (now or at
// completion) and drops the references in ctx->folios.
int ReadRun(ReadCtx* ctx, IomapOps& ops) {
  const int64_t start = ctx->folios.front()->pos();
  const int64_t len = ctx->folios.back()->end() - start;
  IomapIter iter(ctx->inode, start, static_cast<uint64_t>(len), 0);
  int ret;
  while ((ret = iter.Next(ops)) > 0) iter.status = ReadIterStep(&iter, ctx);
  FinishFolio(ctx);
  SubmitReadBio(ctx);
  for (size_t i = ctx->next; i < ctx->folios.size(); i++) {
    ctx->folios[i]->Unlock();  // never started: left !uptodate
  }
  for (Folio* f : ctx->folios) f->Put();
  return ret;
}

// Largest order whose folio fits in `pages` pages.
unsigned OrderForPages(int64_t pages) {
  unsigned order = 0;
  while (order < kMaxFolioOrder && (int64_t{2} << order) <= pages) order++;
  return order;
}

// The pages one readahead call allocates: [index, end), the folio that
// covers `mark` flagged. `kernel_orders`: folios of `order` (smaller where
// unaligned or at the end) until a cached page is met, then min-order folios
// (page_cache_ra_order falling back to page_cache_ra_unbounded); otherwise
// the largest aligned folios that fit.
struct RaAlloc {
  int64_t index = 0;
  int64_t end = 0;
  int64_t mark = -1;
  unsigned order = 0;
  bool kernel_orders = false;
  bool fallback = false;
};

unsigned RaFolioOrder(Mapping* mapping, RaAlloc* a) {
  const unsigned min_order = mapping->min_order();
  if (!a->kernel_orders) {
    return mapping->ChooseOrder(a->index, OrderForPages(a->end - a->index));
  }
  if (a->fallback) return min_order;
  unsigned order = std::min(a->order, mapping->max_order());
  if (a->index != 0) {
    order = std::min<unsigned>(order, __builtin_ctzll(a->index));
  }
  while (order > min_order && a->index + (int64_t{1} << order) > a->end) {
    order--;
  }
  order = std::max(order, min_order);
  // A cached page inside: the kernel's folio add fails and it falls back.
  if (mapping->ChooseOrder(a->index, order) != order) {
    a->fallback = true;
    return min_order;
  }
  return order;
}

// Allocates the missing folios from a->index up to the first cached one (a
// contiguous run), locked. Moves a->index past the run and any cached folio
// that ended it.
std::vector<Folio*> AllocateRun(Mapping* mapping, RaAlloc* a) {
  std::vector<Folio*> run;
  while (a->index < a->end) {
    FolioRef cached = mapping->Lookup(a->index);
    if (cached) {
      a->fallback = true;
      a->index = cached->index() + (int64_t{1} << cached->order());
      if (!run.empty()) break;
      continue;
    }
    const unsigned order = RaFolioOrder(mapping, a);
    Folio* folio = nullptr;
    if (mapping->AddNewFolio(a->index, order, kFgpLock, &folio) != 0) {
      a->fallback = true;
      continue;
    }
    const int64_t folio_end = folio->index() + (int64_t{1} << folio->order());
    if (folio->index() <= a->mark && a->mark < folio_end) {
      folio->SetReadaheadMark();
    }
    // A run holds up to a window of folio locks, handed to the completions:
    // stop counting them as this thread's at once.
    folio->HandOffLock();
    run.push_back(folio);
    a->index = folio_end;
  }
  return run;
}

// Reads the missing pages of [a->index, a->end) (end clipped at EOF).
void ReadaheadAlloc(Inode* inode, RaAlloc* a, IomapOps& ops) {
  Mapping* mapping = inode->mapping();
  const int64_t isize = inode->i_size_read();
  a->end = std::min(
      a->end, static_cast<int64_t>((isize + kPageSize - 1) >> kPageShift));
  a->index &= ~((int64_t{1} << mapping->min_order()) - 1);
  base::ReaderLock inval(&inode->locks().invalidate);
  while (a->index < a->end) {
    ReadCtx ctx;
    ctx.inode = inode;
    ctx.readahead = true;
    ctx.folios = AllocateRun(mapping, a);
    if (ctx.folios.empty()) break;
    ReadRun(&ctx, ops);
  }
}

// The folio caching `index`, read by readahead when missing (or, when
// readahead could not cache it, by itself: filemap_create_folio); a folio
// carrying the readahead mark starts the next window. Returns it referenced
// in *out. 0, -EAGAIN (nowait: no I/O for a missing folio) or -errno.
int GetFolioForRead(Inode* inode, RaState* ra, int64_t index, int64_t req_pages,
                    unsigned flags, IomapOps& ops, FolioRef* out) {
  Mapping* mapping = inode->mapping();
  FolioRef folio = mapping->Lookup(index);
  if (!folio) {
    if (flags & kNowait) return -EAGAIN;
    internal::SyncReadahead(inode, ra, index, req_pages, ops);
    folio = mapping->Lookup(index);
    if (!folio) {
      base::ReaderLock inval(&inode->locks().invalidate);
      Folio* f = nullptr;
      int ret = mapping->GetFolio(index, kFgpLock | kFgpCreat, 0, &f);
      if (ret < 0) return ret;
      folio = FolioRef(f);
      if (folio->Uptodate()) {
        folio->Unlock();
      } else {
        ReadFolio(folio.get(), ops);
      }
    }
  }
  if (folio->ReadaheadMark()) {
    internal::AsyncReadahead(inode, ra, folio.get(),
                             index + req_pages - folio->index(), ops);
  }
  *out = std::move(folio);
  return 0;
}

// Waits for any read of `folio` and checks [off, off + n) is uptodate,
// reading it once more if not. 0, -EAGAIN (nowait) or -EIO.
int WaitUptodate(Folio* folio, size_t off, size_t n, unsigned flags,
                 IomapOps& ops) {
  if (folio->Uptodate()) return 0;
  if (flags & kNowait) return -EAGAIN;
  for (int attempt = 0; attempt < 2; attempt++) {
    folio->Lock();
    if (folio->Uptodate() || Mapping::IsPartiallyUptodate(*folio, off, n)) {
      folio->Unlock();
      return 0;
    }
    if (attempt == 1 || folio->mapping() == nullptr) {
      folio->Unlock();
      return -EIO;
    }
    ReadFolio(folio, ops);  // unlocks when done
  }
  return -EIO;
}

}  // namespace

namespace internal {

void ReadaheadWindow(Inode* inode, int64_t start, int64_t nr_pages,
                     int64_t mark, unsigned order, IomapOps& ops) {
  RaAlloc a;
  a.index = start;
  a.end = start + nr_pages;
  a.mark = mark;
  a.order = order;
  a.kernel_orders = true;
  ReadaheadAlloc(inode, &a, ops);
}

block::Device* DeviceOf(Inode* inode, const Iomap& map) {
  return map.bdev != nullptr ? map.bdev : inode->bdev();
}

bool BlockNeedsZeroing(const IomapIter& iter, int64_t pos) {
  const Iomap& srcmap = iter.Srcmap();
  return srcmap.type != Iomap::Type::kMapped || (srcmap.flags & kNew) ||
         pos >= iter.inode()->i_size_read();
}

void AdjustReadRange(Inode* inode, Folio* folio, int64_t* pos, int64_t length,
                     size_t* poff, size_t* plen) {
  const int64_t isize = inode->i_size_read();
  const unsigned bb = inode->blkbits();
  const int64_t bs = int64_t{1} << bb;
  const int64_t orig_pos = *pos;
  int64_t off = *pos - folio->pos();
  int64_t len = std::min<int64_t>(folio->size() - off, length);
  const int64_t orig_len = len;
  int64_t first = off >> bb;
  int64_t last = (off + len - 1) >> bb;
  if (folio->state() != nullptr) {
    int64_t i;
    for (i = first; i <= last; i++) {  // skip leading uptodate blocks
      if (!folio->BlockUptodate(static_cast<unsigned>(i))) break;
      *pos += bs;
      off += bs;
      len -= bs;
      first++;
    }
    while (++i <= last) {  // stop before the next uptodate block
      if (folio->BlockUptodate(static_cast<unsigned>(i))) {
        len -= (last - i + 1) * bs;
        last = i - 1;
        break;
      }
    }
  }
  // A range over the block holding i_size is split there, so blocks wholly
  // past EOF get zeroed rather than read.
  if (orig_pos <= isize && orig_pos + orig_len > isize) {
    int64_t end = ((isize - 1) & static_cast<int64_t>(folio->size() - 1)) >> bb;
    if (first <= end && last > end) len -= (last - end) * bs;
  }
  *poff = static_cast<size_t>(off);
  *plen = static_cast<size_t>(std::max<int64_t>(len, 0));
}

int ReadInlineData(const IomapIter& iter, Folio* folio) {
  const Iomap& map = iter.Srcmap();
  if (folio->Uptodate()) return 0;
  const int64_t size = iter.inode()->i_size_read() - map.offset;
  const int64_t poff = map.offset - folio->pos();
  if (poff < 0 || size < 0 ||
      size > static_cast<int64_t>(folio->size()) - poff ||
      size > static_cast<int64_t>(map.length) || map.inline_data == nullptr) {
    return -EIO;
  }
  if (poff > 0) folio->AttachState();
  std::memcpy(folio->data() + poff, map.inline_data, size);
  std::memset(folio->data() + poff + size, 0, folio->size() - poff - size);
  folio->SetRangeUptodate(poff, folio->size() - poff);
  return 0;
}

}  // namespace internal

ReadStats GetReadStats() {
  ReadStats s;
  s.bios = counters.bios.load();
  s.bio_bytes = counters.bio_bytes.load();
  s.zeroed_bytes = counters.zeroed_bytes.load();
  return s;
}

void ResetReadStats() {
  counters.bios = 0;
  counters.bio_bytes = 0;
  counters.zeroed_bytes = 0;
}

int ReadFolio(Folio* folio, IomapOps& ops) {
  folio->AssertLocked();
  Mapping* mapping = folio->mapping();
  if (mapping == nullptr) {
    folio->Unlock();
    return -EIO;
  }
  ReadCtx ctx;
  ctx.inode = mapping->host();
  folio->Get();
  ctx.folios.push_back(folio);
  int ret = ReadRun(&ctx, ops);
  return ret < 0 ? ret : 0;
}

void Readahead(Inode* inode, int64_t index, int64_t nr_pages, IomapOps& ops) {
  RaAlloc a;
  a.index = index;
  a.end = index + nr_pages;
  ReadaheadAlloc(inode, &a, ops);
}

int64_t FileBufferedRead(Inode* inode, int64_t pos, size_t len, uint8_t* buf,
                         unsigned flags, IomapOps& ops, RaState* ra) {
  inode->locks().rwsem.AssertReaderHeld();
  if (ra == nullptr) ra = &inode->mapping()->ra;
  const int64_t isize = inode->i_size_read();
  if (pos < 0) return -EINVAL;
  if (pos >= isize || len == 0) return 0;
  // The request as the caller sized it (not clipped at EOF) is the
  // readahead's req_count, as in filemap_get_pages.
  const int64_t req_end = static_cast<int64_t>(
      std::min<uint64_t>(static_cast<uint64_t>(pos) + len, INT64_MAX - 4096));
  const int64_t last_index = (req_end + kPageSize - 1) >> kPageShift;
  const int64_t end = std::min<int64_t>(isize, req_end);
  int64_t done = 0;
  int ret = 0;
  while (pos + done < end) {
    const int64_t cur = pos + done;
    const int64_t index = cur >> kPageShift;
    FolioRef folio;
    ret = GetFolioForRead(inode, ra, index, last_index - index, flags, ops,
                          &folio);
    if (ret < 0) break;
    const size_t off = static_cast<size_t>(cur - folio->pos());
    const size_t n = static_cast<size_t>(std::min(folio->end(), end) - cur);
    ret = WaitUptodate(folio.get(), off, n, flags, ops);
    if (ret < 0) break;
    std::memcpy(buf + done, folio->data() + off, n);
    done += static_cast<int64_t>(n);
  }
  if (done > 0) {
    base::MutexLock l(&ra->mu);
    ra->window.prev_pos = pos + done;
  }
  if (done > 0) return done;
  return ret;
}

int ReadFolioRangeSync(Inode* inode, const Iomap& srcmap, Folio* folio,
                       int64_t pos, size_t len) {
  folio->AssertLocked();
  uint8_t* dst = folio->data() + (pos - folio->pos());
  if (srcmap.type != Iomap::Type::kMapped) {
    std::memset(dst, 0, len);
    return 0;
  }
  block::Device* dev = internal::DeviceOf(inode, srcmap);
  if (dev == nullptr) return -EIO;
  block::Bio bio;
  bio.op = block::BioOp::kRead;
  bio.flags = block::kBioSync;
  bio.offset = srcmap.DeviceAddr(pos);
  bio.AddSegment(dst, len);
  counters.bios.fetch_add(1, std::memory_order_relaxed);
  counters.bio_bytes.fetch_add(len, std::memory_order_relaxed);
  int64_t ret = block::SubmitAndWait(*dev, &bio);
  return ret < 0 ? static_cast<int>(ret) : 0;
}

}  // namespace iomap
