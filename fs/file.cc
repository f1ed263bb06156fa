#include "fs/file.h"

#include <algorithm>

#include "fs/codec.h"
#include "fs/data_ops.h"
#include "fs/format.h"
#include "iomap/buffered_io.h"
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
  iomap::BufferSource src(data, len);
  return WriteFrom(pos, &src, flags);
}

int64_t OpenFile::WriteFrom(int64_t pos, iomap::WriteSource* src,
                            unsigned flags) {
  if (pos < 0) return -EINVAL;
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
  vol_->MaybeCheckpointQuiet();
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
  int err;
  {
    base::MutexLock l(&mu_);
    err = vol_->flusher_->FileWriteAndWaitRange(inode_, &cursor_, start, end);
  }
  int r = vol_->PersistTimes(inode_);
  if (err == 0) err = r;
  r = vol_->ns_->Sync(inode_->ino());
  if (err == 0) err = r;
  r = vol_->FlushDevice();
  vol_->MaybeCheckpointQuiet();
  return err != 0 ? err : r;
}

int OpenFile::Fdatasync(int64_t start, int64_t end) {
  // Timestamps are not journaled separately yet, so fdatasync == fsync.
  return Fsync(start, end);
}

int OpenFile::Truncate(int64_t size) {
  if (size < 0) return -EINVAL;
  if (static_cast<uint64_t>(size) > format::kMaxFileSize) return -EFBIG;
  base::WriterLock rw(&inode_->locks().rwsem);
  base::WriterLock inv(&inode_->locks().invalidate);
  const int64_t old = inode_->i_size_read();
  // inode_newsize_ok: an active swap file may not shrink (or stay put).
  if (inode_->swapfile() && size <= old) return -ETXTBSY;
  if (size < old) {
    int r = iomap::TruncatePage(inode_, size, nullptr, *vol_->ops_,
                                vol_->ops_.get());
    if (r != 0) return r;
  }
  if (size > old) {
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

}  // namespace fs
