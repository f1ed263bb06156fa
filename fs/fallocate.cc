// OpenFile::Fallocate: preallocation (unwritten extents), punch hole, zero
// range, unshare range, collapse range and insert range, as
// xfs_file_fallocate does them.
#include <linux/falloc.h>

#include <algorithm>
#include <climits>

#include "fs/codec.h"
#include "fs/data_ops.h"
#include "fs/file.h"
#include "fs/format.h"
#include "iomap/buffered_io.h"
#include "iomap/dax.h"
#include "iomap/pagecache.h"

namespace fs {
namespace {

std::string MapAllocBody(uint64_t ino, uint64_t off, const BlockRange& got) {
  std::string body;
  Encoder e(&body);
  e.U64(ino);
  e.U64(off);
  e.U64(got.len);
  e.U64(got.start);
  e.U16(static_cast<uint16_t>(ExtentState::kUnwritten));
  return body;
}

std::string ShiftBody(uint64_t ino, uint64_t start, uint64_t n, bool up) {
  std::string body;
  Encoder e(&body);
  e.U64(ino);
  e.U64(start);
  e.U64(n);
  e.U16(up ? kShiftUp : kShiftDown);
  return body;
}

// vfs_fallocate (Linux 6.13 and later) and xfs_file_fallocate: which mode
// combinations exist. 0 or -EOPNOTSUPP.
int CheckMode(int mode) {
  constexpr int kModeMask = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE |
                            FALLOC_FL_ZERO_RANGE | FALLOC_FL_INSERT_RANGE |
                            FALLOC_FL_UNSHARE_RANGE;
  if (mode & ~(kModeMask | FALLOC_FL_KEEP_SIZE)) return -EOPNOTSUPP;
  const bool keep = mode & FALLOC_FL_KEEP_SIZE;
  switch (mode & kModeMask) {
    case 0:
    case FALLOC_FL_ZERO_RANGE:
    case FALLOC_FL_UNSHARE_RANGE:
      return 0;
    case FALLOC_FL_PUNCH_HOLE:
      return keep ? 0 : -EOPNOTSUPP;
    case FALLOC_FL_COLLAPSE_RANGE:
    case FALLOC_FL_INSERT_RANGE:
      return keep ? -EOPNOTSUPP : 0;
    default:
      return -EOPNOTSUPP;
  }
}

}  // namespace

// Allocates unwritten blocks over the holes of file blocks [first, end),
// one journaled transaction per allocated run.
int OpenFile::AllocateBlocks(uint64_t first, uint64_t end) {
  FileData* fd = inode_->fork();
  uint64_t off = first;
  while (off < end) {
    base::ReaderLock t(&vol_->txn_mu_);
    base::MutexLock l(&fd->ilock);
    const Extent e = fd->data.Lookup(off);
    if (e.state != ExtentState::kHole) {
      off = e.file_end();
      continue;
    }
    AllocRequest req;
    req.want_blocks = std::min(e.file_end(), end) - off;
    if (off > 0) {
      const Extent prev = fd->data.Lookup(off - 1);
      if (prev.allocated()) req.hint_block = prev.DevBlockAt(off - 1) + 1;
    }
    BlockRange got;
    if (int r = vol_->alloc_->Alloc(req, &got); r != 0) return r;
    TxnBuilder txn;
    txn.Raw(kOpMapAlloc, MapAllocBody(inode_->ino(), off, got));
    if (int r = vol_->Transact(inode_, txn); r != 0) {
      vol_->alloc_->Free(got.start, got.len);
      return r;
    }
    off += got.len;
  }
  return 0;
}

// Punch: write back and drop the cache over the range, unmap the whole
// blocks (journaled), zero the partial blocks at the edges in the cache.
int OpenFile::PunchRange(int64_t off, int64_t len) {
  const int64_t end = off + len;
  const int64_t bs = inode_->block_size();
  const int64_t first = (off + bs - 1) / bs, last = end / bs;  // whole blocks
  int r = vol_->flusher_->WriteAndWaitRange(inode_, off / bs * bs,
                                            (end + bs - 1) / bs * bs - 1);
  if (r != 0) return r;
  inode_->mapping()->TruncateRange(off, end);
  if (first < last) {
    vol_->ops_->PunchDelalloc(inode_, first * bs, (last - first) * bs);
    FileData* fd = inode_->fork();
    base::ReaderLock t(&vol_->txn_mu_);
    base::MutexLock l(&fd->ilock);
    TxnBuilder txn;
    txn.Raw(kOpUnmap, RangeOpBody(inode_->ino(), static_cast<uint64_t>(first),
                                  static_cast<uint64_t>(last - first)));
    vol_->ops_->CancelCowLocked(inode_, static_cast<uint64_t>(first),
                                static_cast<uint64_t>(last - first));
    if ((r = vol_->Transact(inode_, txn)) != 0) return r;
  }
  // Partial blocks keep their other bytes: zero the covered part.
  const int64_t size = inode_->i_size_read();
  auto zero = [&](int64_t a, int64_t b) {
    b = std::min(b, size);
    if (a >= b) return 0;
    if (Dax()) {  // through the mapping, never the page cache
      return iomap::DaxZeroRange(inode_, a, b - a, nullptr, *vol_->ops_,
                                 &inode_->dax_dirty);
    }
    return iomap::ZeroRange(inode_, a, b - a, nullptr, *vol_->ops_,
                            vol_->ops_.get());
  };
  if (first >= last) return zero(off, end);
  if ((r = zero(off, first * bs)) != 0) return r;
  return zero(last * bs, end);
}

int OpenFile::ExtendSize(int64_t size) {
  const int64_t old = inode_->i_size_read();
  if (size <= old) return 0;
  if (int r = ZeroCachedTail(old); r != 0) return r;
  if (int r = PersistSize(size); r != 0) return r;
  // Not TruncateSetsize or a buffered write: the cached EOF page must be
  // write-protected and cleaned past the old EOF here (no folio lock may
  // be taken under the ilock, so after the transaction).
  iomap::PagecacheIsizeExtended(inode_, old, size);
  return 0;
}

int OpenFile::PersistSize(int64_t size) {
  FileData* fd = inode_->fork();
  base::ReaderLock t(&vol_->txn_mu_);
  base::MutexLock l(&fd->ilock);
  InodeAttr attr;
  if (int r = vol_->ns_->GetAttr(inode_->handle(), &attr); r != 0) return r;
  attr.size = static_cast<uint64_t>(size);
  const int64_t dirty_time = inode_->dirty_time();
  attr.mtime_ns = attr.ctime_ns = NowNs();
  TxnBuilder txn;
  txn.InodeSet(attr);
  int r = vol_->Transact(inode_, txn);
  if (r != 0) return r;
  inode_->ClearDirtyTime(dirty_time);
  inode_->i_size_write(size);
  fd->disk_size.store(size);
  return 0;
}

// xfs_reflink_unshare: shared blocks of the range are read into the cache
// and dirtied (their writeback copies them to private blocks through the
// COW fork), then written back and waited.
int OpenFile::Unshare(int64_t offset, int64_t len) {
  int r =
      iomap::FileUnshare(inode_, offset, len, *vol_->ops_, vol_->ops_.get());
  if (r != 0) return r;
  return vol_->flusher_->WriteAndWaitRange(inode_, offset, offset + len - 1);
}

int OpenFile::Fallocate(int mode, int64_t offset, int64_t len) {
  int r = FallocateLocked(mode, offset, len);
  if (r == 0) inode_->TouchTimes(NowNs());  // file_modified
  return r;
}

int OpenFile::FallocateLocked(int mode, int64_t offset, int64_t len) {
  if (offset < 0 || len <= 0) return -EINVAL;
  if (int r = CheckMode(mode); r != 0) return r;
  if (static_cast<uint64_t>(offset) + static_cast<uint64_t>(len) >
      format::kMaxFileSize)
    return -EFBIG;
  const int keep = mode & FALLOC_FL_KEEP_SIZE;
  const int op = mode & ~FALLOC_FL_KEEP_SIZE;
  base::WriterLock rw(&inode_->locks().rwsem);
  base::WriterLock inv(&inode_->locks().invalidate);
  if (inode_->swapfile()) return -ETXTBSY;  // vfs_fallocate
  if (op == FALLOC_FL_COLLAPSE_RANGE)
    return vol_->CollapseRange(inode_, offset, len);
  if (op == FALLOC_FL_INSERT_RANGE)
    return vol_->InsertRange(inode_, offset, len);
  const int64_t bs = inode_->block_size();
  const uint64_t first = static_cast<uint64_t>(offset / bs);
  const uint64_t end = static_cast<uint64_t>((offset + len + bs - 1) / bs);
  int r = 0;
  if (op == FALLOC_FL_PUNCH_HOLE) return PunchRange(offset, len);
  if (op == FALLOC_FL_UNSHARE_RANGE && (r = Unshare(offset, len)) != 0)
    return r;
  if (op == FALLOC_FL_ZERO_RANGE) {
    const int64_t size = inode_->i_size_read();
    if (offset < size) r = PunchRange(offset, std::min(len, size - offset));
    if (r != 0) return r;
  }
  r = AllocateBlocks(first, end);
  if (r != 0) return r;
  return keep ? 0 : ExtendSize(offset + len);
}

// --- Collapse and insert range (Volume members: they need the volume's
// flusher, journal and data ops, and run under OpenFile::Fallocate's locks).

int Volume::CollapseRange(VolInode* vi, int64_t offset, int64_t len) {
  const int64_t bs = vi->block_size();
  if (offset % bs != 0 || len % bs != 0) return -EINVAL;
  // Reaching EOF would be a truncate: xfs_falloc_collapse_range refuses it.
  const int64_t size = vi->i_size_read();
  if (offset + len >= size) return -EINVAL;
  if (int r = PrepareShift(vi, offset); r != 0) return r;
  return JournalShift(vi, static_cast<uint64_t>(offset / bs),
                      static_cast<uint64_t>(len / bs), /*up=*/false,
                      size - len);
}

int Volume::InsertRange(VolInode* vi, int64_t offset, int64_t len) {
  const int64_t bs = vi->block_size();
  if (offset % bs != 0 || len % bs != 0) return -EINVAL;
  const int64_t size = vi->i_size_read();
  if (static_cast<int64_t>(format::kMaxFileSize) - size < len) return -EFBIG;
  if (offset >= size) return -EINVAL;
  if (int r = PrepareShift(vi, offset); r != 0) return r;
  return JournalShift(vi, static_cast<uint64_t>(offset / bs),
                      static_cast<uint64_t>(len / bs), /*up=*/true, size + len);
}

int Volume::PrepareShift(VolInode* vi, int64_t offset) {
  const int64_t bs = vi->block_size();
  // The block before `offset` too: its extent is the one a collapse may
  // merge with, so nothing may be in flight there (xfs_prepare_shift).
  // Whole pages and blocks, so no cached page keeps bytes that move.
  const int64_t unit = std::max<int64_t>(bs, iomap::kPageSize);
  const int64_t start = std::max<int64_t>(offset - bs, 0) / unit * unit;
  int r = flusher_->WriteAndWaitRange(vi, start, INT64_MAX);
  if (r != 0) return r;
  vi->mapping()->TruncateRange(start, INT64_MAX);
  // Written back, nothing dirty is left there: any delalloc would be a
  // stale reservation, and the COW fork holds no data to keep.
  ops_->PunchDelalloc(vi, start, INT64_MAX - start);
  const uint64_t first = static_cast<uint64_t>(start / bs);
  ops_->CancelCow(vi, first, kMaxFileBlocks - first);
  return 0;
}

int Volume::JournalShift(VolInode* vi, uint64_t first, uint64_t n, bool up,
                         int64_t new_size) {
  FileData* fd = vi->fork();
  const uint64_t ino = vi->ino();
  {
    base::ReaderLock t(&txn_mu_);
    base::MutexLock l(&fd->ilock);
    TxnBuilder txn;
    if (up) {
      if (fd->data.CheckShift(first, static_cast<int64_t>(n)) != 0)
        return -EINVAL;  // xfs_bmap_can_insert_extents
      txn.Raw(kOpShift, ShiftBody(ino, first, n, true));
    } else {
      txn.Raw(kOpUnmap, RangeOpBody(ino, first, n));
      txn.Raw(kOpShift, ShiftBody(ino, first + n, n, false));
      // The size change frees what lands past the new EOF, as
      // xfs_setattr_size does after xfs_collapse_file_space.
      const unsigned bits = vi->blkbits();
      const uint64_t eof =
          (static_cast<uint64_t>(new_size) + vi->block_size() - 1) >> bits;
      Extent next;
      if (fd->data.NextExtent(eof + n, &next))
        txn.Raw(kOpUnmap, RangeOpBody(ino, eof, kMaxFileBlocks - eof));
    }
    InodeAttr attr;
    if (int r = ns_->GetAttr(vi->handle(), &attr); r != 0) return r;
    attr.size = static_cast<uint64_t>(new_size);
    const int64_t dirty_time = vi->dirty_time();
    attr.mtime_ns = attr.ctime_ns = NowNs();
    txn.InodeSet(attr);
    if (int r = Transact(vi, txn); r != 0) return r;
    vi->ClearDirtyTime(dirty_time);
    fd->disk_size.store(new_size);
  }
  // i_size; the cache past offset is already gone.
  iomap::TruncateSetsize(vi, new_size);
  return 0;
}

}  // namespace fs
