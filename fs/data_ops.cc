#include "fs/data_ops.h"

#include <algorithm>
#include <vector>

#include "fs/codec.h"
#include "fs/format.h"
#include "iomap/buffered_io.h"
#include "iomap/folio.h"

namespace fs {
namespace internal {
namespace {

// Mappings are clipped here so that byte offsets never overflow.
uint64_t LimitBlocks(unsigned bits) { return (uint64_t{1} << 62) >> bits; }

iomap::Iomap::Type TypeOf(ExtentState s) {
  switch (s) {
    case ExtentState::kWritten:
      return iomap::Iomap::Type::kMapped;
    case ExtentState::kUnwritten:
      return iomap::Iomap::Type::kUnwritten;
    case ExtentState::kDelalloc:
      return iomap::Iomap::Type::kDelalloc;
    default:
      return iomap::Iomap::Type::kHole;
  }
}

VolInode* Vi(iomap::Inode* inode) { return static_cast<VolInode*>(inode); }

// FIEMAP, SEEK and FIBMAP see mappings trimmed to the queried blocks
// [off_b, end_b), as xfs_read_iomap_begin (xfs_bmapi_read) returns them.
// REQUIRES: e contains off_b.
Extent TrimToRange(const Extent& e, uint64_t off_b, uint64_t end_b) {
  const uint64_t end = std::min(e.file_end(), std::max(end_b, off_b + 1));
  return e.Slice(off_b, end - off_b);
}

// XFS_DEFAULT_COWEXTSZ_HINT: what xfs_get_cowextsz_hint returns for an
// inode without a cowextsize or extsize hint. New COW-fork delalloc
// reservations are rounded out to windows of this many blocks, so the
// unshared blocks and holes around a copy-on-write go through the COW fork
// too (speculative COW preallocation).
constexpr uint64_t kCowExtSizeHint = 32;

// xfs_bmap_extsize_align for a COW-fork delalloc reservation: [off, end),
// part of a COW-fork hole that ends at `next` (kMaxFileBlocks: no COW
// extent follows), rounded out to kCowExtSizeHint-aligned windows, then
// shifted or cut, as XFS does, so that it overlaps neither the COW extent
// before it (ending at prev_end, 0 if none) nor the next one.
BlockRange AlignCowReservation(uint64_t off, uint64_t end, uint64_t prev_end,
                               uint64_t next) {
  const bool has_next = next < kMaxFileBlocks;
  uint64_t a = off - off % kCowExtSizeHint;
  uint64_t n = end - a;
  if (n % kCowExtSizeHint != 0) n += kCowExtSizeHint - n % kCowExtSizeHint;
  if (a != off && a < prev_end) a = prev_end;
  if (has_next && a + n != end && a + n > next) a = next > n ? next - n : 0;
  if (a != off && a < prev_end) a = prev_end;
  if (has_next && a + n != end && a + n > next) n = next - a;
  n = std::min(n, kMaxFileBlocks - a);
  return BlockRange{a, n};
}

// The COW-fork reservation for [off, end) (a COW hole ending at `next`)
// with the extent size hint applied; [off, end) itself when the window
// would overlap a COW extent.
BlockRange CowReservation(const ExtentMap& cow, uint64_t off, uint64_t end,
                          uint64_t next) {
  // Every candidate window starts at or after off - span.
  const uint64_t span = end - off + 2 * kCowExtSizeHint;
  const uint64_t lo = off - std::min(off, span);
  uint64_t prev_end = 0;
  if (off > lo)
    cow.ForEachInRange(lo, off - lo, [&](const Extent& x) {
      prev_end = std::max(prev_end, x.file_end());
    });
  const BlockRange w = AlignCowReservation(off, end, prev_end, next);
  bool clear = w.start <= off && w.end() >= end;
  cow.ForEachInRange(w.start, w.len, [&](const Extent&) { clear = false; });
  return clear ? w : BlockRange{off, end - off};
}

std::string MapAllocBody(uint64_t ino, const Extent& e, ExtentState st) {
  std::string body = RangeOpBody(ino, e.file_off, e.len);
  Encoder enc(&body);
  enc.U64(e.dev_block);
  enc.U16(static_cast<uint16_t>(st));
  return body;
}

}  // namespace

void DataOps::FillIomap(VolInode* vi, const Extent& e,
                        iomap::Iomap* iomap) const {
  const unsigned bits = vi->blkbits();
  const uint64_t end = std::min(e.file_end(), LimitBlocks(bits));
  iomap->offset = static_cast<int64_t>(e.file_off << bits);
  iomap->length = (end - e.file_off) << bits;
  iomap->type = TypeOf(e.state);
  iomap->bdev = vi->bdev();
  iomap->addr = e.allocated() ? e.dev_block << bits : iomap::kNullAddr;
  iomap->validity_cookie = Cookie(vi);
}

// Both forks' sequence counters (xfs_iomap_inode_sequence).
uint64_t DataOps::Cookie(VolInode* vi) const {
  return vi->fork()->data.Sequence() + (vi->fork()->cow.Sequence() << 32);
}

uint64_t DataOps::SharedRun(const Extent& e, uint64_t off_b,
                            bool* shared) const {
  const uint64_t dev = e.DevBlockAt(off_b), n = e.file_end() - off_b;
  BlockRange r;
  *shared = false;
  if (!vol_->refc_.FindShared(dev, n, &r)) return n;
  if (r.start > dev) return r.start - dev;
  *shared = true;
  return r.len;
}

int DataOps::CowBegin(VolInode* vi, const Extent& shared, uint64_t end_b,
                      iomap::Iomap* iomap, iomap::Iomap* srcmap) {
  FileData* fd = vi->fork();
  const uint64_t off_b = shared.file_off;
  const uint64_t next = fd->cow.Lookup(off_b).file_end();  // a COW hole
  const uint64_t end =
      std::min({next, shared.file_end(), std::max(end_b, off_b + 1)});
  BlockRange w = CowReservation(fd->cow, off_b, end, next);
  int r = vol_->resv_->Reserve(vi->ino(), w.len);
  if (r == -ENOSPC && w.len != end - off_b) {
    w = BlockRange{off_b, end - off_b};  // retry without the hint, as XFS
    r = vol_->resv_->Reserve(vi->ino(), w.len);
  }
  if (r != 0) return r;
  r = fd->cow.Map(w.start, w.len, kNoDevBlock, ExtentState::kDelalloc, nullptr);
  if (r != 0) {
    vol_->resv_->Release(vi->ino(), w.len);
    return r;
  }
  // Only this call's reservation, so that IomapEnd punches nothing older.
  const uint64_t n = std::min(w.end(), shared.file_end()) - off_b;
  FillIomap(vi, Extent{off_b, n, kNoDevBlock, ExtentState::kDelalloc}, iomap);
  iomap->flags |= iomap::kShared | iomap::kNew;
  FillIomap(vi, shared.Slice(off_b, n), srcmap);
  return 0;
}

void DataOps::CowFound(VolInode* vi, const Extent& data, const Extent& cow,
                       uint64_t off_b, iomap::Iomap* iomap,
                       iomap::Iomap* srcmap) {
  const uint64_t n = std::min(cow.file_end(), data.file_end()) - off_b;
  const Extent c = cow.Slice(off_b, n);
  FillIomap(vi, c, iomap);
  // Staging blocks hold nothing until written back (XFS keeps COW-fork
  // blocks unwritten until the I/O): a partial write over a data-fork hole
  // zeroes the rest of the block rather than reading them.
  if (c.allocated()) iomap->type = iomap::Iomap::Type::kUnwritten;
  iomap->flags |= iomap::kShared;
  if (data.state != ExtentState::kHole)
    FillIomap(vi, data.Slice(off_b, n), srcmap);
}

void DataOps::SeekHoleBegin(VolInode* vi, const Extent& hole, uint64_t off_b,
                            uint64_t end_b, iomap::Iomap* iomap) {
  const Extent c = vi->fork()->cow.Lookup(off_b);
  const uint64_t n = std::min(c.file_end(), hole.file_end()) - off_b;
  FillIomap(vi, TrimToRange(c.Slice(off_b, n), off_b, end_b), iomap);
  if (c.state == ExtentState::kHole) return;
  // Dirty cached data may lie over it: let the pagecache answer.
  iomap->type = iomap::Iomap::Type::kUnwritten;
  iomap->flags |= iomap::kShared;
}

int DataOps::IomapBegin(iomap::Inode* inode, int64_t pos, int64_t len,
                        unsigned flags, iomap::Iomap* iomap,
                        iomap::Iomap* srcmap) {
  VolInode* vi = Vi(inode);
  const unsigned bits = vi->blkbits();
  if (pos < 0 || len <= 0) return -EINVAL;
  if (flags & iomap::kDirect)
    return DirectIomapBegin(vi, pos, len, flags, iomap, srcmap);
  if (flags & iomap::kDax)
    return DaxIomapBegin(vi, pos, len, flags, iomap, srcmap);
  const uint64_t off_b = static_cast<uint64_t>(pos) >> bits;
  if (off_b >= LimitBlocks(bits)) return -EFBIG;
  const uint64_t end_b = std::min(
      (static_cast<uint64_t>(pos + len) + vi->block_size() - 1) >> bits,
      LimitBlocks(bits));
  FileData* fd = vi->fork();
  base::MutexLock l(&fd->ilock);
  Extent e = fd->data.Lookup(off_b);
  const bool hole = e.state == ExtentState::kHole;
  if ((flags & iomap::kSeek) && hole) {
    SeekHoleBegin(vi, e, off_b, end_b, iomap);
    return 0;
  }
  // Writes and zeroing go wherever the COW fork already has an extent
  // (zeroing or unsharing a data-fork hole needs no blocks at all).
  if ((flags & (iomap::kWrite | iomap::kZero)) &&
      !(hole && (flags & (iomap::kZero | iomap::kUnshare)))) {
    const Extent c = fd->cow.Lookup(off_b);
    if (c.state != ExtentState::kHole) {
      CowFound(vi, e, c, off_b, iomap, srcmap);
      return 0;
    }
  }
  if (e.allocated()) {
    // Shared blocks are reported SHARED; writes and zeroing go to the COW
    // fork (xfs_buffered_write_iomap_begin / xfs_reflink_trim_around_shared).
    bool shared = false;
    const uint64_t run = SharedRun(e, off_b, &shared);
    if (shared && (flags & (iomap::kWrite | iomap::kZero)))
      return CowBegin(vi, e.Slice(off_b, run), end_b, iomap, srcmap);
    if (shared || vol_->refc_.IsShared(e.dev_block, e.len))
      e = e.Slice(off_b, run);  // the run of equal sharing holding off_b
    if (flags & iomap::kReport) e = TrimToRange(e, off_b, end_b);
    FillIomap(vi, e, iomap);
    if (shared) iomap->flags |= iomap::kShared;
    return 0;
  }
  const bool reserve = (flags & iomap::kWrite) && !(flags & iomap::kUnshare) &&
                       e.state == ExtentState::kHole;
  if (!reserve) {
    if (flags & iomap::kReport) e = TrimToRange(e, off_b, end_b);
    FillIomap(vi, e, iomap);
    return 0;
  }
  // A buffered write over a hole: reserve delalloc for the part written.
  const uint64_t n = std::min(e.file_end(), end_b) - off_b;
  if (int r = vol_->resv_->Reserve(vi->ino(), n); r != 0) return r;
  if (int r =
          fd->data.Map(off_b, n, kNoDevBlock, ExtentState::kDelalloc, nullptr);
      r != 0) {
    vol_->resv_->Release(vi->ino(), n);
    return r;
  }
  FillIomap(vi, fd->data.Lookup(off_b), iomap);
  // Report only the new reservation, so IomapEnd releases exactly it.
  iomap->offset = static_cast<int64_t>(off_b << bits);
  iomap->length = n << bits;
  iomap->flags |= iomap::kNew;
  return 0;
}

void DataOps::PunchDelalloc(VolInode* vi, int64_t off, int64_t len) {
  PunchForkDelalloc(vi, off, len, /*cow=*/false);
}

void DataOps::PunchForkDelalloc(VolInode* vi, int64_t off, int64_t len,
                                bool cow) {
  const unsigned bits = vi->blkbits();
  const uint64_t first = static_cast<uint64_t>(off) >> bits;
  const uint64_t end =
      std::min((static_cast<uint64_t>(off) + static_cast<uint64_t>(len) +
                vi->block_size() - 1) >>
                   bits,
               LimitBlocks(bits));
  if (end <= first) return;
  FileData* fd = vi->fork();
  base::MutexLock l(&fd->ilock);
  ExtentMap& fork = cow ? fd->cow : fd->data;
  int64_t n = fork.PunchDelalloc(first, end - first, nullptr);
  if (n > 0) vol_->resv_->Release(vi->ino(), static_cast<uint64_t>(n));
}

int DataOps::IomapEnd(iomap::Inode* inode, int64_t pos, int64_t len,
                      int64_t written, unsigned flags, iomap::Iomap* iomap) {
  if (flags & iomap::kDax)
    return DaxIomapEnd(Vi(inode), pos, len, written, flags, iomap);
  if (!(flags & iomap::kWrite) || (flags & iomap::kFault) ||
      iomap->type != iomap::Iomap::Type::kDelalloc ||
      !(iomap->flags & iomap::kNew))
    return 0;
  const int64_t bs = inode->block_size();
  const int64_t start =
      (pos + std::max<int64_t>(written, 0) + bs - 1) / bs * bs;
  const int64_t end = (pos + len + bs - 1) / bs * bs;
  if (start >= end) return 0;
  auto release = [&] {
    iomap::WriteDelallocRelease(
        inode, start, end, flags, iomap,
        [this](iomap::Inode* in, int64_t off, int64_t n, iomap::Iomap* m) {
          // A new COW reservation (CowBegin) is punched in the COW fork.
          PunchForkDelalloc(Vi(in), off, n, (m->flags & iomap::kShared) != 0);
        });
  };
  // Unshare runs under the invalidate lock already (fallocate holds it
  // exclusive), as xfs_buffered_write_iomap_end expects of IOMAP_UNSHARE
  // and IOMAP_ZERO callers; a write takes it here.
  if (flags & iomap::kUnshare) {
    inode->locks().invalidate.AssertHeld();
    release();
    return 0;
  }
  base::WriterLock l(&inode->locks().invalidate);
  release();
  return 0;
}

bool DataOps::IomapValid(iomap::Inode* inode, const iomap::Iomap& iomap) {
  return iomap.validity_cookie == Cookie(Vi(inode));
}

void DataOps::CancelCowLocked(VolInode* vi, uint64_t first, uint64_t n) {
  FileData* fd = vi->fork();
  if (fd->cow.empty() || n == 0) return;
  std::vector<Extent> removed;
  fd->cow.Unmap(first, std::min(n, kMaxFileBlocks - first), &removed);
  uint64_t delalloc = 0;
  for (const Extent& e : removed) {
    if (e.allocated()) vol_->alloc_->Free(e.dev_block, e.len);
    if (e.state == ExtentState::kDelalloc) delalloc += e.len;
  }
  if (delalloc > 0) vol_->resv_->Release(vi->ino(), delalloc);
}

void DataOps::CancelCow(VolInode* vi, uint64_t first, uint64_t n) {
  base::MutexLock l(&vi->fork()->ilock);
  CancelCowLocked(vi, first, n);
}

int DataOps::ConvertCow(VolInode* vi, uint64_t off_b) {
  FileData* fd = vi->fork();
  const Extent c = fd->cow.Lookup(off_b);
  AllocRequest req;
  req.want_blocks = c.len;
  req.min_blocks = 1;
  const Extent d = fd->data.Lookup(c.file_off);
  if (d.allocated()) req.hint_block = d.DevBlockAt(c.file_off);
  BlockRange got;
  if (int r = vol_->resv_->AllocReserved(vi->ino(), req, &got); r != 0)
    return r;
  // Staging blocks are not journaled: a crash before the remap leaves them
  // free on disk, and checkpoints record them free.
  int r = fd->cow.Map(c.file_off, got.len, got.start, ExtentState::kWritten,
                      nullptr);
  if (r != 0) {
    vol_->alloc_->Free(got.start, got.len);
    fd->cow.PunchDelalloc(c.file_off, got.len, nullptr);
  }
  return r;
}

int DataOps::MapForWriteback(VolInode* vi, uint64_t off_b, uint64_t end_b,
                             iomap::Iomap* out) {
  FileData* fd = vi->fork();
  for (int i = 0; i < 64; ++i) {
    const Extent c = fd->cow.Lookup(off_b);
    if (c.state == ExtentState::kDelalloc) {
      if (int r = ConvertCow(vi, off_b); r != 0) return r;
      continue;
    }
    if (c.allocated()) {
      *out = iomap::Iomap();
      FillIomap(vi, c, out);
      out->type = iomap::Iomap::Type::kMapped;  // whole blocks are written
      out->flags |= iomap::kShared;
      return 0;
    }
    const Extent e = fd->data.Lookup(off_b);
    if (e.state == ExtentState::kDelalloc) {
      if (int r = ConvertDelalloc(vi, off_b); r != 0) return r;
      continue;
    }
    bool shared = false;
    const uint64_t run = e.allocated() ? SharedRun(e, off_b, &shared) : 0;
    if (!shared) {
      // Write in place, but never into the shared blocks or the COW
      // staging that follow (xfs_map_blocks trims to both).
      *out = iomap::Iomap();
      if (e.allocated())
        FillIomap(vi, e.Slice(off_b, std::min(run, c.file_end() - off_b)), out);
      else
        FillIomap(vi, e, out);
      return 0;
    }
    // Dirty data over shared blocks without a COW reservation: shared
    // blocks are never overwritten in place, so reserve one now.
    const uint64_t n = std::min(run, std::max(end_b, off_b + 1) - off_b);
    if (int r = vol_->resv_->Reserve(vi->ino(), n); r != 0) return r;
    fd->cow.Map(off_b, n, kNoDevBlock, ExtentState::kDelalloc, nullptr);
  }
  return -EIO;  // absurdly fragmented free space
}

int DataOps::ConvertDelalloc(VolInode* vi, uint64_t off_b) {
  FileData* fd = vi->fork();
  const Extent e = fd->data.Lookup(off_b);
  AllocRequest req;
  req.want_blocks = e.len;
  req.min_blocks = 1;
  if (e.file_off > 0) {
    const Extent prev = fd->data.Lookup(e.file_off - 1);
    if (prev.allocated()) req.hint_block = prev.DevBlockAt(e.file_off - 1) + 1;
  }
  BlockRange got;
  if (int r = vol_->resv_->AllocReserved(vi->ino(), req, &got); r != 0)
    return r;
  std::string body = RangeOpBody(vi->ino(), e.file_off, got.len);
  Encoder enc(&body);
  enc.U64(got.start);
  enc.U16(static_cast<uint16_t>(ExtentState::kUnwritten));
  TxnBuilder t;
  t.Raw(kOpMapAlloc, body);
  int r = vol_->Transact(vi, t);
  if (r != 0) {
    // Not journaled: give the blocks back and drop the delalloc they were
    // to replace (its reservation was consumed by the allocation).
    vol_->alloc_->Free(got.start, got.len);
    fd->data.PunchDelalloc(e.file_off, got.len, nullptr);
  }
  return r;
}

int64_t DataOps::WritebackRange(iomap::WritepageCtx* wpc, iomap::Folio* folio,
                                uint64_t pos, unsigned len, uint64_t end_pos) {
  VolInode* vi = Vi(wpc->inode);
  FileData* fd = vi->fork();
  const unsigned bits = vi->blkbits();
  const uint64_t off_b = pos >> bits;
  const uint64_t end_b = (pos + len + vi->block_size() - 1) >> bits;
  int err = 0;
  {
    base::ReaderLock t(&vol_->txn_mu_);
    base::MutexLock l(&fd->ilock);
    err = MapForWriteback(vi, off_b, end_b, &wpc->iomap);
  }
  // Blocks freed by earlier changes must not receive data before the
  // change that freed them is durable.
  if (err == 0) err = vol_->CommitFrees();
  if (err != 0) {
    // xfs_discard_folio: the folio becomes clean; drop its reservations.
    const int64_t fend = folio->pos() + static_cast<int64_t>(folio->size());
    PunchDelalloc(vi, static_cast<int64_t>(pos),
                  fend - static_cast<int64_t>(pos));
    return err;
  }
  return iomap::AddToIoend(wpc, folio, static_cast<int64_t>(pos),
                           static_cast<int64_t>(end_pos), len);
}

int DataOps::WritebackSubmit(iomap::WritepageCtx* wpc, int error) {
  if (wpc->ioend != nullptr) vol_->queue_->Attach(wpc->ioend);
  return iomap::IoendWritebackSubmit(wpc, error);
}

int DataOps::Writepages(iomap::Inode* inode, iomap::WritebackControl* wbc) {
  iomap::WritepageCtx wpc;
  wpc.inode = inode;
  wpc.wbc = wbc;
  wpc.ops = this;
  return iomap::Writepages(&wpc);
}

bool DataOps::NeedsWorkqueue(const iomap::Ioend& ioend) const {
  if (iomap::IoendCompletionOps::NeedsWorkqueue(ioend)) return true;
  const int64_t end = ioend.io_offset + static_cast<int64_t>(ioend.io_size);
  return end > Vi(ioend.inode)->fork()->disk_size.load();
}

int DataOps::FinishCowIoend(VolInode* vi, iomap::Ioend* ioend) {
  FileData* fd = vi->fork();
  const unsigned bits = vi->blkbits();
  const int64_t end = ioend->io_offset + static_cast<int64_t>(ioend->io_size);
  const uint64_t first = static_cast<uint64_t>(ioend->io_offset) >> bits;
  const uint64_t last =
      (static_cast<uint64_t>(end) + vi->block_size() - 1) >> bits;
  const int64_t new_size = std::min(end, vi->i_size_read());
  base::ReaderLock t(&vol_->txn_mu_);
  base::MutexLock l(&fd->ilock);
  if (ioend->error != 0) {  // the old shared blocks stay in place
    CancelCowLocked(vi, first, last - first);
    return 0;
  }
  std::vector<Extent> staged;
  fd->cow.ForEachInRange(first, last - first, [&](const Extent& e) {
    if (e.allocated()) staged.push_back(e);
  });
  // Data-fork delalloc under the staging blocks (a write into a data-fork
  // hole that a COW window covered later) is replaced by the remap: its
  // reservation goes back (xfs_reflink_end_cow_extent).
  uint64_t replaced_delalloc = 0;
  for (const Extent& e : staged)
    fd->data.ForEachInRange(e.file_off, e.len, [&](const Extent& d) {
      if (d.state == ExtentState::kDelalloc) replaced_delalloc += d.len;
    });
  TxnBuilder txn;
  for (const Extent& e : staged)
    txn.Raw(kOpMapAlloc, MapAllocBody(vi->ino(), e, ExtentState::kWritten));
  const bool grow = new_size > fd->disk_size.load();
  int64_t dirty_time = 0;
  if (grow) {
    InodeAttr attr;
    if (int r = vol_->ns_->GetAttr(vi->handle(), &attr); r != 0) return r;
    attr.size = static_cast<uint64_t>(new_size);
    dirty_time = vi->ApplyDirtyTime(&attr);
    txn.InodeSet(attr);
  }
  if (txn.empty()) return 0;
  int r = vol_->Transact(vi, txn);
  if (r != 0) {
    CancelCowLocked(vi, first, last - first);
    return r;
  }
  // The staging blocks now belong to the data fork.
  for (const Extent& e : staged) fd->cow.Unmap(e.file_off, e.len, nullptr);
  if (replaced_delalloc > 0) vol_->resv_->Release(vi->ino(), replaced_delalloc);
  if (grow) fd->disk_size.store(new_size);
  vi->ClearDirtyTime(dirty_time);
  return 0;
}

int DataOps::FinishIoend(iomap::Inode* inode, iomap::Ioend* ioend) {
  if (ioend->flags & iomap::kIoendShared)
    return FinishCowIoend(Vi(inode), ioend);
  if (ioend->error != 0) return 0;  // unwritten stays unwritten: reads zero
  VolInode* vi = Vi(inode);
  FileData* fd = vi->fork();
  const unsigned bits = vi->blkbits();
  const int64_t end = ioend->io_offset + static_cast<int64_t>(ioend->io_size);
  const int64_t new_size = std::min(end, vi->i_size_read());
  base::ReaderLock t(&vol_->txn_mu_);
  base::MutexLock l(&fd->ilock);
  TxnBuilder txn;
  if (ioend->flags & iomap::kIoendUnwritten) {
    const uint64_t first = static_cast<uint64_t>(ioend->io_offset) >> bits;
    const uint64_t last =
        (static_cast<uint64_t>(end) + vi->block_size() - 1) >> bits;
    txn.Raw(kOpConvert, RangeOpBody(vi->ino(), first, last - first));
  }
  const bool grow = new_size > fd->disk_size.load();
  int64_t dirty_time = 0;
  if (grow) {
    InodeAttr attr;
    if (int r = vol_->ns_->GetAttr(vi->handle(), &attr); r != 0) return r;
    attr.size = static_cast<uint64_t>(new_size);
    dirty_time = vi->ApplyDirtyTime(&attr);
    txn.InodeSet(attr);
  }
  if (txn.empty()) return 0;
  int r = vol_->Transact(vi, txn);
  if (r == 0 && grow) fd->disk_size.store(new_size);
  if (r == 0) vi->ClearDirtyTime(dirty_time);
  return r;
}

}  // namespace internal
}  // namespace fs
