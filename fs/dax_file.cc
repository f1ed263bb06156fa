// OpenFile on a DAX volume (VolumeOptions::dax): xfs_file_dax_read,
// xfs_file_dax_write, the DAX write fault, truncate zeroing and fsync's
// dax_writeback_mapping_range. The data never enters the pagecache: the
// iomap DAX engine (iomap/dax.h) copies between the caller's buffer and the
// device's DaxMapping under the filesystem's DAX mappings (fs/dax_ops.cc).
#include <algorithm>
#include <vector>

#include "fs/data_ops.h"
#include "fs/file.h"
#include "fs/format.h"
#include "iomap/dax.h"
#include "iomap/direct_io.h"

namespace fs {

bool OpenFile::Dax() const { return vol_->options_.dax; }

int OpenFile::DaxDropCache(bool nowait) {
  if (inode_->mapping()->nr_folios() == 0) return 0;
  if (nowait) return -EAGAIN;
  if (int r = vol_->flusher_->WriteAndWaitRange(inode_, 0, INT64_MAX); r != 0)
    return r;
  return iomap::InvalidateInodePages2(inode_, 0, INT64_MAX);
}

int64_t OpenFile::DaxRead(int64_t pos, size_t len, uint8_t* buf,
                          unsigned flags) {
  auto& rwsem = inode_->locks().rwsem;
  if (flags & iomap::kNowait) {
    if (!rwsem.TryLockShared()) return -EAGAIN;
  } else {
    rwsem.LockShared();
  }
  iomap::DaxRequest req;
  req.pos = pos;
  req.len = len;
  req.buf = buf;
  req.flags = flags & iomap::kNowait;
  int64_t r = DaxDropCache(flags & iomap::kNowait);
  if (r == 0) r = iomap::DaxRw(inode_, req, *vol_->ops_, &inode_->dax_dirty);
  rwsem.UnlockShared();
  return r;
}

// xfs_file_write_checks for DAX: bytes between the old EOF and a write
// starting past it read as zeroes (a mapped store may have left data in
// the EOF block). REQUIRES: rwsem exclusive.
int OpenFile::DaxZeroGap(int64_t from, int64_t to) {
  if (to <= from) return 0;
  base::WriterLock inv(&inode_->locks().invalidate);
  return iomap::DaxZeroRange(inode_, from, to - from, nullptr, *vol_->ops_,
                             &inode_->dax_dirty);
}

int64_t OpenFile::DaxWriteLocked(int64_t pos, const void* data, size_t len,
                                 unsigned flags) {
  if (static_cast<uint64_t>(pos) + len > format::kMaxFileSize) return -EFBIG;
  if (inode_->swapfile()) return -ETXTBSY;
  if (int r = DaxDropCache(flags & iomap::kNowait); r != 0) return r;
  const int64_t size = inode_->i_size_read();
  if (pos > size) {
    if (flags & iomap::kNowait) return -EAGAIN;
    if (int r = DaxZeroGap(size, pos); r != 0) return r;
  }
  iomap::DaxRequest req;
  req.write = true;
  req.pos = pos;
  req.len = len;
  req.buf = const_cast<uint8_t*>(static_cast<const uint8_t*>(data));
  req.flags = flags & iomap::kNowait;
  const int64_t r = iomap::DaxRw(inode_, req, *vol_->ops_, &inode_->dax_dirty);
  if (r <= 0) return r;
  inode_->TouchTimes(NowNs());
  // xfs_file_dax_write: a write past EOF raises the size at once, journaled
  // (xfs_setfilesize).
  if (pos + r > inode_->i_size_read()) {
    if (int s = PersistSize(pos + r); s != 0) return s;
  }
  return r;
}

int64_t OpenFile::DaxWrite(int64_t pos, const void* data, size_t len,
                           unsigned flags) {
  if (len == 0) return inode_->swapfile() ? -ETXTBSY : 0;
  auto& rwsem = inode_->locks().rwsem;
  if (flags & iomap::kNowait) {
    if (!rwsem.TryLock()) return -EAGAIN;
  } else {
    rwsem.Lock();
  }
  if (flags & kAppend) pos = inode_->i_size_read();
  const int64_t r = DaxWriteLocked(pos, data, len, flags);
  rwsem.Unlock();
  if (flags & iomap::kNowait) {
    vol_->KickCheckpoint();
  } else {
    vol_->MaybeCheckpointQuiet();
  }
  if (r > 0 && (flags & kSync)) {
    if (int s = Fdatasync(pos, pos + r - 1); s != 0) return s;
  }
  return r;
}

int64_t OpenFile::DaxWriteFrom(int64_t pos, iomap::WriteSource* src,
                               unsigned flags) {
  std::vector<uint8_t> buf(src->Count());
  const size_t n = src->CopyAtomic(buf.data(), buf.size());
  if (n == 0 && !buf.empty()) return -EFAULT;
  const int64_t r = DaxWrite(pos, buf.data(), n, flags);
  if (r >= 0 && static_cast<size_t>(r) < n) src->Revert(n - r);
  return r;
}

int64_t OpenFile::DaxMapWrite(int64_t pos, const void* data, size_t len) {
  if (pos < 0) return -EINVAL;
  int64_t r = DaxDropCache(false);
  if (r != 0) return r;
  {
    base::ReaderLock inv(&inode_->locks().invalidate);
    r = inode_->swapfile()
            ? -ETXTBSY
            : iomap::DaxMapStore(inode_, pos, data, len, *vol_->ops_,
                                 &inode_->dax_dirty);
  }
  if (r > 0) inode_->TouchTimes(NowNs());
  return r;
}

int OpenFile::DaxTruncateZero(int64_t old_size, int64_t new_size) {
  if (int r = DaxDropCache(false); r != 0) return r;
  if (new_size < old_size)
    return iomap::DaxTruncatePage(inode_, new_size, nullptr, *vol_->ops_,
                                  &inode_->dax_dirty);
  return iomap::DaxZeroRange(inode_, old_size, new_size - old_size, nullptr,
                             *vol_->ops_, &inode_->dax_dirty);
}

}  // namespace fs
