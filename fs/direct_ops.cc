// Direct I/O rules of fs::Volume (xfs_direct_write_iomap_begin,
// xfs_iomap_write_direct, xfs_reflink_allocate_cow, the software
// atomic-write COW path and xfs_dio_write_end_io), as DataOps methods. See
// docs/fs-volume.md, "Direct I/O".
#include <algorithm>
#include <cerrno>

#include "fs/data_ops.h"
#include "iomap/ioend.h"

namespace fs {
namespace internal {
namespace {

// xfs_direct_write_iomap_begin caps one allocation at 1024 pages.
constexpr uint64_t kDirectAllocMaxBytes = uint64_t{1024} * 4096;

}  // namespace

bool DataOps::DirectMayCow(VolInode* vi, int64_t pos, int64_t len) {
  const unsigned bits = vi->blkbits();
  const uint64_t first = static_cast<uint64_t>(pos) >> bits;
  const uint64_t end =
      (static_cast<uint64_t>(pos + len) + vi->block_size() - 1) >> bits;
  FileData* fd = vi->fork();
  base::MutexLock l(&fd->ilock);
  bool cow = false;
  fd->cow.ForEachInRange(first, end - first,
                         [&](const Extent&) { cow = true; });
  fd->data.ForEachInRange(first, end - first, [&](const Extent& e) {
    if (e.allocated() && vol_->refc_.IsShared(e.dev_block, e.len)) cow = true;
  });
  return cow;
}

int DataOps::DirectIomapBegin(VolInode* vi, int64_t pos, int64_t len,
                              unsigned flags, iomap::Iomap* iomap,
                              iomap::Iomap* srcmap) {
  // Reads map as buffered reads do (xfs_read_iomap_ops): the engine has
  // flushed the range, so no delalloc remains to be found.
  if (!(flags & iomap::kWrite))
    return IomapBegin(vi, pos, len, 0, iomap, srcmap);
  const unsigned bits = vi->blkbits();
  const uint64_t off_b = static_cast<uint64_t>(pos) >> bits;
  const uint64_t end_b =
      (static_cast<uint64_t>(pos + len) + vi->block_size() - 1) >> bits;
  if (end_b > kMaxFileBlocks) return -EFBIG;
  const bool nowait = flags & iomap::kNowait;
  FileData* fd = vi->fork();
  if (nowait) {
    if (!vol_->txn_mu_.TryLockShared()) return -EAGAIN;
    if (!fd->ilock.TryLock()) {
      vol_->txn_mu_.UnlockShared();
      return -EAGAIN;
    }
  } else {
    vol_->txn_mu_.LockShared();
    fd->ilock.Lock();
  }
  int r =
      DirectWriteBeginLocked(vi, pos, len, off_b, end_b, flags, iomap, srcmap);
  fd->ilock.Unlock();
  vol_->txn_mu_.UnlockShared();
  // Blocks freed by earlier changes must not receive data before the
  // change that freed them is durable (as at writeback).
  if (r == 0 && (iomap->flags & (iomap::kNew | iomap::kShared)))
    r = vol_->CommitFrees();
  return r;
}

int DataOps::DirectWriteBeginLocked(VolInode* vi, int64_t pos, int64_t len,
                                    uint64_t off_b, uint64_t end_b,
                                    unsigned flags, iomap::Iomap* iomap,
                                    iomap::Iomap* srcmap) {
  FileData* fd = vi->fork();
  const bool refuse = flags & (iomap::kNowait | iomap::kOverwriteOnly);
  const bool unaligned =
      ((static_cast<uint64_t>(pos) | static_cast<uint64_t>(len)) &
       (vi->block_size() - 1)) != 0;
  if (flags & iomap::kAtomic) {
    if (flags & iomap::kNowait) return -EAGAIN;
    return DirectAtomicLocked(vi, off_b, end_b, iomap, srcmap);
  }
  Extent e = fd->data.Lookup(off_b);
  bool shared = false;
  const uint64_t run =
      e.allocated() ? SharedRun(e, off_b, &shared) : e.file_end() - off_b;
  // Shared blocks, or a COW-fork extent already there: COW staging.
  if (shared || fd->cow.Lookup(off_b).state != ExtentState::kHole) {
    if (refuse) return -EAGAIN;
    // The engine cannot fill the rest of a staging block: unaligned COW
    // writes go buffered (xfs_reflink_bounce_dio_write).
    if (unaligned) return -ENOTBLK;
    return DirectCowLocked(vi, e.Slice(off_b, run), end_b, iomap, srcmap);
  }
  uint32_t new_flag = 0;
  if (!e.allocated()) {  // a hole or delalloc: allocate
    if (refuse) return -EAGAIN;
    if (int r = DirectAllocLocked(vi, e, off_b, end_b); r != 0) return r;
    e = fd->data.Lookup(off_b);
    if (!e.allocated()) return -EIO;
    new_flag = iomap::kNew;
  }
  // Never past the shared blocks or the COW fork that follow.
  uint64_t lim = new_flag != 0 ? e.file_end() : off_b + run;
  Extent next;
  if (fd->cow.NextExtent(off_b, &next)) lim = std::min(lim, next.file_off);
  if (new_flag == 0 && refuse && lim < end_b) return -EAGAIN;
  // Converting unwritten blocks under a partial write needs sub-block
  // zeroing: only under the exclusive lock.
  if ((flags & iomap::kOverwriteOnly) && e.state == ExtentState::kUnwritten &&
      unaligned)
    return -EAGAIN;
  FillIomap(vi, e.Slice(off_b, lim - off_b), iomap);
  iomap->flags |= new_flag;
  return 0;
}

int DataOps::DirectAllocLocked(VolInode* vi, const Extent& e, uint64_t off_b,
                               uint64_t end_b) {
  FileData* fd = vi->fork();
  uint64_t n = 0;
  if (e.state == ExtentState::kHole) {
    // Reserve, then convert as writeback converts delalloc: real blocks
    // journaled UNWRITTEN (xfs_iomap_write_direct).
    const uint64_t cap =
        std::max<uint64_t>(kDirectAllocMaxBytes >> vi->blkbits(), 1);
    n = std::min({e.file_end(), end_b, off_b + cap}) - off_b;
    if (int r = vol_->resv_->Reserve(vi->ino(), n); r != 0) return r;
    if (int r = fd->data.Map(off_b, n, kNoDevBlock, ExtentState::kDelalloc,
                             nullptr);
        r != 0) {
      vol_->resv_->Release(vi->ino(), n);
      return r;
    }
  }
  const int r = ConvertDelalloc(vi, off_b);
  if (n == 0) return r;
  // What of this reservation was not allocated goes back.
  const Extent got = fd->data.Lookup(off_b);
  const uint64_t from =
      r == 0 && got.allocated() ? std::min(got.file_end(), off_b + n) : off_b;
  if (from < off_b + n) {
    const int64_t k = fd->data.PunchDelalloc(from, off_b + n - from, nullptr);
    if (k > 0) vol_->resv_->Release(vi->ino(), static_cast<uint64_t>(k));
  }
  return r;
}

int DataOps::DirectCowLocked(VolInode* vi, const Extent& data, uint64_t end_b,
                             iomap::Iomap* iomap, iomap::Iomap* srcmap) {
  FileData* fd = vi->fork();
  const uint64_t off_b = data.file_off;
  if (fd->cow.Lookup(off_b).state == ExtentState::kHole) {
    iomap::Iomap unused_map, unused_src;
    if (int r = CowBegin(vi, data, end_b, &unused_map, &unused_src); r != 0)
      return r;
  }
  // Direct writes need real staging blocks now (xfs_reflink_allocate_cow
  // with convert_now).
  if (fd->cow.Lookup(off_b).state == ExtentState::kDelalloc) {
    if (int r = ConvertCow(vi, off_b); r != 0) return r;
  }
  const Extent c = fd->cow.Lookup(off_b);
  if (!c.allocated()) return -EIO;
  const uint64_t n = std::min(c.file_end(), data.file_end()) - off_b;
  FillIomap(vi, c.Slice(off_b, n), iomap);
  iomap->type = iomap::Iomap::Type::kMapped;
  iomap->flags |= iomap::kShared;
  if (data.state != ExtentState::kHole)
    FillIomap(vi, data.Slice(off_b, n), srcmap);
  return 0;
}

int DataOps::DirectAtomicLocked(VolInode* vi, uint64_t off_b, uint64_t end_b,
                                iomap::Iomap* iomap, iomap::Iomap* srcmap) {
  FileData* fd = vi->fork();
  // xfs_atomic_write_cow_iomap_begin: staging blocks over the whole range,
  // remapped in one transaction at completion, whatever the data fork
  // holds (untorn without device support).
  uint64_t b = off_b;
  for (int i = 0; b < end_b && i < 64; ++i) {
    Extent c = fd->cow.Lookup(b);
    if (c.state == ExtentState::kHole) {
      const uint64_t n = std::min(c.file_end(), end_b) - b;
      if (int r = vol_->resv_->Reserve(vi->ino(), n); r != 0) return r;
      if (int r =
              fd->cow.Map(b, n, kNoDevBlock, ExtentState::kDelalloc, nullptr);
          r != 0) {
        vol_->resv_->Release(vi->ino(), n);
        return r;
      }
      c = fd->cow.Lookup(b);
    }
    if (c.state == ExtentState::kDelalloc) {
      if (int r = ConvertCow(vi, b); r != 0) return r;
      c = fd->cow.Lookup(b);
    }
    if (!c.allocated()) return -EIO;
    b = c.file_end();
  }
  const Extent c = fd->cow.Lookup(off_b);
  // One mapping must cover the write (the engine sends one bio).
  if (!c.allocated() || c.file_end() < end_b) return -EINVAL;
  FillIomap(vi, c.Slice(off_b, end_b - off_b), iomap);
  iomap->type = iomap::Iomap::Type::kMapped;
  iomap->flags |= iomap::kShared;
  const Extent d = fd->data.Lookup(off_b);
  if (d.state != ExtentState::kHole) {
    FillIomap(vi, d.Slice(off_b, std::min(d.file_end(), end_b) - off_b),
              srcmap);
  }
  return 0;
}

int DataOps::DirectWriteEndIo(VolInode* vi, int64_t pos, int64_t size,
                              int error, unsigned dio_flags) {
  iomap::Ioend io;
  io.inode = vi;
  io.bdev = vi->bdev();
  io.io_offset = pos;
  io.io_size = static_cast<uint64_t>(std::max<int64_t>(size, 0));
  io.error = error;
  const bool cow = dio_flags & iomap::IomapDioOps::kDioCow;
  if (error != 0 || size <= 0) {
    if (cow && error != 0) {  // the old blocks stay; staging is dropped
      io.flags = iomap::kIoendShared;
      FinishCowIoend(vi, &io);
    }
    return error;
  }
  // The in-core size first: the transactions below journal
  // min(end, i_size) as the on-disk size, together with the remap or the
  // conversion (xfs_iomap_write_unwritten with update_isize).
  {
    base::MutexLock l(&vi->fork()->ilock);
    if (pos + size > vi->i_size_read()) vi->i_size_write(pos + size);
  }
  if (cow) {
    io.flags = iomap::kIoendShared;
    if (int r = FinishCowIoend(vi, &io); r != 0) return r;
  }
  io.flags = (dio_flags & iomap::IomapDioOps::kDioUnwritten)
                 ? iomap::kIoendUnwritten
                 : 0;
  return FinishIoend(vi, &io);
}

}  // namespace internal
}  // namespace fs
