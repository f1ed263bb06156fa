// OpenFile::Fallocate: preallocation (unwritten extents), punch hole, zero
// range and unshare range, as xfs_file_fallocate does them.
#include <linux/falloc.h>

#include <algorithm>

#include "fs/codec.h"
#include "fs/data_ops.h"
#include "fs/file.h"
#include "fs/format.h"
#include "iomap/buffered_io.h"
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
    std::string body;
    Encoder e(&body);
    e.U64(inode_->ino());
    e.U64(static_cast<uint64_t>(first));
    e.U64(static_cast<uint64_t>(last - first));
    TxnBuilder txn;
    txn.Raw(kOpUnmap, body);
    vol_->ops_->CancelCowLocked(inode_, static_cast<uint64_t>(first),
                                static_cast<uint64_t>(last - first));
    if ((r = vol_->Transact(inode_, txn)) != 0) return r;
  }
  // Partial blocks keep their other bytes: zero the covered part.
  const int64_t size = inode_->i_size_read();
  auto zero = [&](int64_t a, int64_t b) {
    b = std::min(b, size);
    if (a >= b) return 0;
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
  if (static_cast<uint64_t>(offset) + static_cast<uint64_t>(len) >
      format::kMaxFileSize)
    return -EFBIG;
  const int keep = mode & FALLOC_FL_KEEP_SIZE;
  const int op = mode & ~FALLOC_FL_KEEP_SIZE;
  // vfs_fallocate: unshare only goes with the allocate mode.
  if ((mode & FALLOC_FL_UNSHARE_RANGE) &&
      (mode & ~(FALLOC_FL_UNSHARE_RANGE | FALLOC_FL_KEEP_SIZE)))
    return -EINVAL;
  // Collapse and insert ranges are listed under "Not done" in
  // docs/fs-volume.md.
  if (op != 0 && op != FALLOC_FL_PUNCH_HOLE && op != FALLOC_FL_ZERO_RANGE &&
      op != FALLOC_FL_UNSHARE_RANGE)
    return -EOPNOTSUPP;
  if (op == FALLOC_FL_PUNCH_HOLE && !keep) return -EOPNOTSUPP;
  base::WriterLock rw(&inode_->locks().rwsem);
  base::WriterLock inv(&inode_->locks().invalidate);
  if (inode_->swapfile()) return -ETXTBSY;  // vfs_fallocate
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

}  // namespace fs
