#include "fs/file.h"

#include <algorithm>

#include "fs/codec.h"
#include "fs/data_ops.h"
#include "fs/format.h"
#include "iomap/buffered_io.h"
#include "iomap/dax.h"
#include "iomap/direct_io.h"
#include "iomap/pagecache.h"
#include "iomap/seek.h"

namespace fs {
namespace {

// The attribute fork for FIEMAP_FLAG_XATTR (xfs_xattr_iomap_ops). iomapd
// files carry no extended attributes, so there is never an attribute fork:
// -ENOENT, which iomap::Fiemap reports as no extents, as XFS does for a
// file without attributes. Stateless, thread-safe.
class NoAttrForkOps : public iomap::IomapOps {
 public:
  int IomapBegin(iomap::Inode*, int64_t, int64_t, unsigned, iomap::Iomap*,
                 iomap::Iomap*) override {
    return -ENOENT;
  }
};

NoAttrForkOps xattr_fork_ops;

}  // namespace

OpenFile::OpenFile(Volume* vol, VolInode* inode) : vol_(vol), inode_(inode) {
  base::MutexLock l(&mu_);
  cursor_ = inode->mapping()->wb_err.seq().Sample();
}

OpenFile::~OpenFile() { Close(); }

int OpenFile::Close() {
  if (closed_) return 0;
  closed_ = true;
  return vol_->CloseInode(inode_);
}

int64_t OpenFile::Read(int64_t pos, size_t len, uint8_t* buf, unsigned flags) {
  if (pos < 0) return -EINVAL;
  if (Dax()) return DaxRead(pos, len, buf, flags);
  if (flags & iomap::kDirect) return DirectRead(pos, len, buf, flags);
  auto& rwsem = inode_->locks().rwsem;
  if (flags & iomap::kNowait) {
    if (!rwsem.TryLockShared()) return -EAGAIN;
  } else {
    rwsem.LockShared();
  }
  int64_t r = iomap::FileBufferedRead(
      inode_, pos, len, buf, flags & iomap::kNowait, *vol_->ops_, &ra_);
  rwsem.UnlockShared();
  return r;
}

int64_t OpenFile::Write(int64_t pos, const void* data, size_t len,
                        unsigned flags) {
  if (pos < 0) return -EINVAL;
  if (Dax()) return DaxWrite(pos, data, len, flags);
  if (flags & iomap::kDirect) return DirectWrite(pos, data, len, flags);
  iomap::BufferSource src(data, len);
  return WriteFrom(pos, &src, flags);
}

int64_t OpenFile::WriteFrom(int64_t pos, iomap::WriteSource* src,
                            unsigned flags) {
  if (pos < 0) return -EINVAL;
  if (Dax()) return DaxWriteFrom(pos, src, flags);
  const size_t len = src->Count();
  // generic_write_checks: an active swap file refuses every write.
  if (inode_->swapfile()) return -ETXTBSY;
  if (len == 0) return 0;
  auto& rwsem = inode_->locks().rwsem;
  if (flags & iomap::kNowait) {
    if (!rwsem.TryLock()) return -EAGAIN;
  } else {
    rwsem.Lock();
  }
  // O_APPEND: the offset is i_size, read under the rwsem, so appends from
  // any number of open files never overlap (generic_write_checks).
  if (flags & kAppend) pos = inode_->i_size_read();
  int64_t r;
  if (static_cast<uint64_t>(pos) + len > format::kMaxFileSize) {
    r = -EFBIG;
  } else if (inode_->swapfile()) {
    r = -ETXTBSY;
  } else {
    r = ZeroTailBeforeWrite(pos, len, flags & iomap::kNowait);
  }
  if (r == 0) {
    r = iomap::FileBufferedWrite(inode_, pos, src,
                                 flags & (iomap::kNowait | iomap::kDontcache),
                                 *vol_->ops_, vol_->ops_.get());
  }
  if (r > 0) inode_->TouchTimes(NowNs());  // file_update_time
  rwsem.Unlock();
  if (flags & iomap::kNowait) {
    vol_->KickCheckpoint();  // a NOWAIT caller must not wait for one
  } else {
    vol_->MaybeCheckpointQuiet();
  }
  if (r > 0 && (flags & kSync)) {
    int s = Fdatasync(pos, pos + r - 1);
    if (s != 0) return s;
  }
  return r;
}

// xfs_file_write_zero_eof(): a write that moves EOF first zeroes what mapped
// stores left in the cache past the old EOF. REQUIRES: rwsem exclusive.
int OpenFile::ZeroTailBeforeWrite(int64_t pos, size_t len, bool nowait) {
  const int64_t size = inode_->i_size_read();
  if (pos + static_cast<int64_t>(len) <= size) return 0;
  auto& inv = inode_->locks().invalidate;
  if (nowait) {
    if (!inv.TryLock()) return -EAGAIN;
  } else {
    inv.Lock();
  }
  int r = ZeroCachedTail(size, nowait);
  inv.Unlock();
  return r;
}

int OpenFile::Fsync(int64_t start, int64_t end) {
  return SyncRange(start, end, /*datasync=*/false);
}

int OpenFile::Fdatasync(int64_t start, int64_t end) {
  return SyncRange(start, end, /*datasync=*/true);
}

// xfs_file_fsync: write back and wait, journal what is still pending in
// core (fdatasync leaves a timestamp-only change there, as XFS does when
// only XFS_ILOG_TIMESTAMP is dirty), commit the inode's records, flush
// the device cache.
int OpenFile::SyncRange(int64_t start, int64_t end, bool datasync) {
  int err;
  {
    base::MutexLock l(&mu_);
    err = vol_->flusher_->FileWriteAndWaitRange(inode_, &cursor_, start, end);
    if (err == 0 && Dax()) err = iomap::DaxWriteback(&inode_->dax_dirty);
  }
  int r = datasync ? 0 : vol_->PersistTimes(inode_);
  if (err == 0) err = r;
  r = vol_->ns_->Sync(inode_->ino());
  if (err == 0) err = r;
  r = vol_->FlushDevice();
  vol_->MaybeCheckpointQuiet();
  return err != 0 ? err : r;
}

int OpenFile::Truncate(int64_t size) {
  if (size < 0) return -EINVAL;
  if (static_cast<uint64_t>(size) > format::kMaxFileSize) return -EFBIG;
  base::WriterLock rw(&inode_->locks().rwsem);
  base::WriterLock inv(&inode_->locks().invalidate);
  const int64_t old = inode_->i_size_read();
  // inode_newsize_ok: an active swap file may not shrink (or stay put).
  if (inode_->swapfile() && size <= old) return -ETXTBSY;
  if (Dax() && size != old) {
    if (int r = DaxTruncateZero(old, size); r != 0) return r;
  } else if (size < old) {
    int r = iomap::TruncatePage(inode_, size, nullptr, *vol_->ops_,
                                vol_->ops_.get());
    if (r != 0) return r;
  }
  if (size > old && !Dax()) {
    if (int r = ZeroCachedTail(old); r != 0) return r;
  }
  iomap::TruncateSetsize(inode_, size);
  // xfs_setattr_size frees blocks past EOF only when the size does not
  // grow: a growing truncate keeps KEEP_SIZE preallocation past the new EOF.
  const bool shrink = size <= old;
  const unsigned bits = inode_->blkbits();
  const uint64_t first =
      (static_cast<uint64_t>(size) + inode_->block_size() - 1) >> bits;
  if (shrink) {
    vol_->ops_->PunchDelalloc(inode_, static_cast<int64_t>(first << bits),
                              INT64_MAX - static_cast<int64_t>(first << bits));
  }
  FileData* fd = inode_->fork();
  base::ReaderLock t(&vol_->txn_mu_);
  base::MutexLock l(&fd->ilock);
  TxnBuilder txn;
  Extent next;
  if (shrink && fd->data.NextExtent(first, &next)) {
    std::string body;
    Encoder e(&body);
    e.U64(inode_->ino());
    e.U64(first);
    e.U64(kMaxFileBlocks - first);
    txn.Raw(kOpUnmap, body);
  }
  InodeAttr attr;
  if (int r = vol_->ns_->GetAttr(inode_->handle(), &attr); r != 0) return r;
  attr.size = static_cast<uint64_t>(size);
  const int64_t dirty_time = inode_->dirty_time();
  attr.mtime_ns = attr.ctime_ns = NowNs();
  txn.InodeSet(attr);
  int r = vol_->Transact(inode_, txn);
  if (r == 0) fd->disk_size.store(size);
  if (r == 0) inode_->ClearDirtyTime(dirty_time);
  if (shrink)
    vol_->ops_->CancelCowLocked(inode_, first, kMaxFileBlocks - first);
  return r;
}

int64_t OpenFile::SeekData(int64_t pos) {
  base::ReaderLock l(&inode_->locks().rwsem);
  return iomap::SeekData(inode_, pos, *vol_->ops_);
}

int64_t OpenFile::SeekHole(int64_t pos) {
  base::ReaderLock l(&inode_->locks().rwsem);
  return iomap::SeekHole(inode_, pos, *vol_->ops_);
}

int OpenFile::WriteAndWait(iomap::Inode* inode) {
  return vol_->flusher_->WriteAndWaitRange(inode, 0, INT64_MAX);
}

int OpenFile::Fiemap(iomap::FiemapRequest* req) {
  iomap::FiemapOptions options;
  options.maxbytes = static_cast<int64_t>(format::kMaxFileSize);
  options.xattr_ops = &xattr_fork_ops;
  options.write_and_wait = [this](iomap::Inode* in) {
    return WriteAndWait(in);
  };
  base::ReaderLock l(&inode_->locks().rwsem);
  return iomap::Fiemap(inode_, req, *vol_->ops_, options);
}

uint64_t OpenFile::Bmap(uint64_t block) {
  base::ReaderLock l(&inode_->locks().rwsem);
  return iomap::Bmap(inode_, block, *vol_->ops_,
                     [this](iomap::Inode* in) { return WriteAndWait(in); });
}

// --- Direct I/O (xfs_file_dio_read, xfs_file_dio_write and its aligned,
// unaligned and atomic variants).

namespace {

// xfs_dio_write_ops: the end_io of direct writes.
class DioWriteOps : public iomap::IomapDioOps {
 public:
  explicit DioWriteOps(internal::DataOps* ops) : ops_(ops) {}
  int EndIo(iomap::Inode* inode, int64_t pos, int64_t size, int error,
            unsigned flags) override {
    return ops_->DirectWriteEndIo(static_cast<VolInode*>(inode), pos, size,
                                  error, flags);
  }

 private:
  internal::DataOps* const ops_;
};

// generic_atomic_write_valid plus the filesystem's unit limits.
bool AtomicWriteValid(VolInode* vi, int64_t pos, size_t len) {
  const uint64_t max_io = vi->bdev()->limits().max_io_bytes;
  return len >= vi->block_size() && (len & (len - 1)) == 0 && len <= max_io &&
         pos % static_cast<int64_t>(len) == 0;
}

}  // namespace

int64_t OpenFile::DirectRead(int64_t pos, size_t len, uint8_t* buf,
                             unsigned flags) {
  auto& rwsem = inode_->locks().rwsem;
  if (flags & iomap::kNowait) {
    if (!rwsem.TryLockShared()) return -EAGAIN;
  } else {
    rwsem.LockShared();
  }
  iomap::DioRequest req;
  req.pos = pos;
  req.len = len;
  req.buf = buf;
  req.flags = flags & iomap::kNowait;
  int64_t r = iomap::DioRw(inode_, req, *vol_->ops_, nullptr);
  rwsem.UnlockShared();
  return r;
}

// The rwsem is taken in a mode chosen at run time and left held for the
// caller: beyond what the static analysis can follow.
int OpenFile::LockDirectWrite(int64_t* pos, size_t len, unsigned flags,
                              bool* exclusive, unsigned* dio_flags)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  auto& rwsem = inode_->locks().rwsem;
  const bool nowait = flags & iomap::kNowait;
  const uint64_t mask = inode_->block_size() - 1;
  for (;;) {
    if (*exclusive) {
      if (!nowait) {
        rwsem.Lock();
      } else if (!rwsem.TryLock()) {
        return -EAGAIN;
      }
    } else if (!nowait) {
      rwsem.LockShared();
    } else if (!rwsem.TryLockShared()) {
      return -EAGAIN;
    }
    if (flags & kAppend) *pos = inode_->i_size_read();
    const bool extends =
        *pos + static_cast<int64_t>(len) > inode_->i_size_read();
    const bool unaligned = ((static_cast<uint64_t>(*pos) | len) & mask) != 0;
    *dio_flags = 0;
    if (*exclusive || !extends) {
      // Unaligned inside EOF: a pure overwrite under the shared lock, or
      // -EAGAIN and the exclusive retry.
      if (!*exclusive && unaligned) *dio_flags = iomap::kDioOverwriteOnly;
      return 0;
    }
    // Past EOF: the sub-block zeroing and the size update need the
    // exclusive lock.
    rwsem.UnlockShared();
    if (nowait && unaligned) return -EAGAIN;
    *exclusive = true;
  }
}

int64_t OpenFile::DirectWriteLocked(int64_t pos, const void* data, size_t len,
                                    unsigned flags, unsigned dio_flags) {
  const uint64_t lbs = inode_->bdev()->limits().logical_block_size;
  if (((static_cast<uint64_t>(pos) | len) & (lbs - 1)) != 0) return -EINVAL;
  if (static_cast<uint64_t>(pos) + len > format::kMaxFileSize) return -EFBIG;
  if (inode_->swapfile()) return -ETXTBSY;
  const bool nowait = flags & iomap::kNowait;
  const bool unaligned =
      ((static_cast<uint64_t>(pos) | len) & (inode_->block_size() - 1)) != 0;
  if (unaligned && vol_->ops_->DirectMayCow(inode_, pos, len)) return -ENOTBLK;
  if (pos + static_cast<int64_t>(len) > inode_->i_size_read()) {
    if (int r = ZeroTailBeforeWrite(pos, len, nowait); r != 0) return r;
  }
  iomap::DioRequest req;
  req.write = true;
  req.pos = pos;
  req.len = len;
  req.buf = static_cast<uint8_t*>(const_cast<void*>(data));
  req.flags = flags & (iomap::kNowait | iomap::kAtomic);
  req.dio_flags = dio_flags;
  DioWriteOps dops(vol_->ops_.get());
  int64_t r = iomap::DioRw(inode_, req, *vol_->ops_, &dops);
  if (r > 0) inode_->TouchTimes(NowNs());  // file_update_time
  return r;
}

// Unlocks what LockDirectWrite took (see there).
int64_t OpenFile::DirectWrite(int64_t pos, const void* data, size_t len,
                              unsigned flags) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (pos < 0) return -EINVAL;
  if (inode_->swapfile()) return -ETXTBSY;
  if (len == 0) return 0;
  const bool atomic = flags & iomap::kAtomic;
  if (atomic && !(flags & kAppend) && !AtomicWriteValid(inode_, pos, len))
    return -EINVAL;
  auto& rwsem = inode_->locks().rwsem;
  bool exclusive = atomic;  // the remap of a whole range: no concurrent I/O
  int64_t r;
  for (;;) {
    unsigned dio_flags = 0;
    if (int l = LockDirectWrite(&pos, len, flags, &exclusive, &dio_flags);
        l != 0)
      return l;
    if (atomic && !AtomicWriteValid(inode_, pos, len)) {
      r = -EINVAL;
    } else {
      r = DirectWriteLocked(pos, data, len, flags, dio_flags);
    }
    if (exclusive) {
      rwsem.Unlock();
    } else {
      rwsem.UnlockShared();
    }
    // An unaligned write that was not a pure overwrite: again, exclusive
    // (the lock waits out every direct I/O in flight, inode_dio_wait).
    if (r == -EAGAIN && (dio_flags & iomap::kDioOverwriteOnly) &&
        !(flags & iomap::kNowait)) {
      exclusive = true;
      continue;
    }
    break;
  }
  if (r == -ENOTBLK && !atomic)
    return DirectWriteFallback(pos, data, len, flags);
  if (flags & iomap::kNowait) {
    vol_->KickCheckpoint();
  } else {
    vol_->MaybeCheckpointQuiet();
  }
  if (r > 0 && (flags & kSync)) {
    int s = Fdatasync(pos, pos + r - 1);
    if (s != 0) return s;
  }
  return r;
}

int64_t OpenFile::DirectWriteFallback(int64_t pos, const void* data, size_t len,
                                      unsigned flags) {
  const unsigned bflags = flags & (iomap::kNowait | kSync | kAppend);
  iomap::BufferSource src(data, len);
  const int64_t r = WriteFrom(pos, &src, bflags);
  if (r <= 0) return r;
  // The data is on the device when the call returns, and the cache holds
  // no copy of it, as after a direct write.
  int64_t start = pos, end = pos + r - 1;
  if (flags & kAppend) start = 0, end = INT64_MAX;
  if (int s = vol_->flusher_->WriteAndWaitRange(inode_, start, end); s != 0)
    return s;
  inode_->mapping()->InvalidateClean(start, end == INT64_MAX ? end : end + 1);
  return r;
}

}  // namespace fs
