// DAX mapping rules of fs::Volume (xfs_dax_write_iomap_begin, which is
// xfs_direct_write_iomap_begin under IOMAP_DAX, and xfs_dax_write_iomap_end),
// as DataOps methods. See docs/fs-volume.md, "DAX".
//
// Under DAX the engine stores straight into the device, so write mappings
// must be written blocks: holes get blocks that are zeroed through the
// device mapping and journaled written (XFS_BMAPI_ZERO | XFS_BMAPI_CONVERT),
// unwritten blocks are zeroed and converted the same way, and shared blocks
// get COW-fork staging blocks that IomapEnd remaps into the data fork.
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "fs/codec.h"
#include "fs/data_ops.h"
#include "iomap/ioend.h"

namespace fs {
namespace internal {

int DataOps::DaxIomapBegin(VolInode* vi, int64_t pos, int64_t len,
                           unsigned flags, iomap::Iomap* iomap,
                           iomap::Iomap* srcmap) {
  // Reads and read faults map as buffered reads (xfs_read_iomap_ops).
  if (!(flags & (iomap::kWrite | iomap::kZero)))
    return IomapBegin(vi, pos, len, 0, iomap, srcmap);
  const unsigned bits = vi->blkbits();
  const uint64_t off_b = static_cast<uint64_t>(pos) >> bits;
  const uint64_t end_b =
      (static_cast<uint64_t>(pos + len) + vi->block_size() - 1) >> bits;
  if (end_b > kMaxFileBlocks) return -EFBIG;
  FileData* fd = vi->fork();
  int r;
  {
    base::ReaderLock t(&vol_->txn_mu_);
    base::MutexLock l(&fd->ilock);
    r = DaxBeginLocked(vi, off_b, end_b, flags, iomap, srcmap);
  }
  if (r != 0) return r;
  // Blocks freed by earlier changes must not receive data (or zeroes)
  // before the change that freed them is durable.
  const bool fresh = iomap->flags & (iomap::kNew | iomap::kShared);
  const bool zeroing =
      iomap->type == iomap::Iomap::Type::kUnwritten && !(flags & iomap::kZero);
  if (fresh || zeroing) {
    if ((r = vol_->CommitFrees()) != 0) return r;
  }
  if (!zeroing) return 0;
  base::ReaderLock t(&vol_->txn_mu_);
  base::MutexLock l(&fd->ilock);
  const uint32_t new_flag = iomap->flags & iomap::kNew;
  r = DaxZeroUnwrittenLocked(vi, off_b, end_b, iomap);
  iomap->flags |= new_flag;
  return r;
}

int DataOps::DaxBeginLocked(VolInode* vi, uint64_t off_b, uint64_t end_b,
                            unsigned flags, iomap::Iomap* iomap,
                            iomap::Iomap* srcmap) {
  FileData* fd = vi->fork();
  const bool nowait = flags & iomap::kNowait;
  const bool zero = flags & iomap::kZero;
  Extent e = fd->data.Lookup(off_b);
  // Zeroing needs no blocks where there is no data (imap_needs_alloc and
  // imap_needs_cow under IOMAP_ZERO).
  if (zero && e.state != ExtentState::kWritten) {
    FillIomap(vi, e.Slice(off_b, std::min(e.file_end(), end_b) - off_b), iomap);
    return 0;
  }
  bool shared = false;
  const uint64_t run =
      e.allocated() ? SharedRun(e, off_b, &shared) : e.file_end() - off_b;
  if (shared || fd->cow.Lookup(off_b).state != ExtentState::kHole) {
    if (nowait) return -EAGAIN;
    // xfs_reflink_allocate_cow with convert_now: real staging blocks; the
    // engine fills the rest of each block from srcmap (copy around).
    return DirectCowLocked(vi, e.Slice(off_b, run), end_b, iomap, srcmap);
  }
  uint32_t new_flag = 0;
  if (!e.allocated()) {
    if (nowait) return -EAGAIN;
    if (int r = DirectAllocLocked(vi, e, off_b, end_b); r != 0) return r;
    e = fd->data.Lookup(off_b);
    if (!e.allocated()) return -EIO;
    new_flag = iomap::kNew;
  }
  if (e.state == ExtentState::kUnwritten && nowait) return -EAGAIN;
  uint64_t lim = new_flag != 0 ? e.file_end() : off_b + run;
  Extent next;
  if (fd->cow.NextExtent(off_b, &next)) lim = std::min(lim, next.file_off);
  FillIomap(vi, e.Slice(off_b, lim - off_b), iomap);
  iomap->flags |= new_flag;
  return 0;
}

int DataOps::DaxZeroUnwrittenLocked(VolInode* vi, uint64_t off_b,
                                    uint64_t end_b, iomap::Iomap* iomap) {
  FileData* fd = vi->fork();
  const unsigned bits = vi->blkbits();
  Extent e = fd->data.Lookup(off_b);
  if (e.state == ExtentState::kUnwritten) {
    const uint64_t n = std::min(e.file_end(), end_b) - off_b;
    block::DaxMapping* dax = vi->bdev()->dax();
    if (dax == nullptr) return -EOPNOTSUPP;
    const uint64_t addr = e.DevBlockAt(off_b) << bits;
    uint8_t* p = dax->DirectAccess(addr, n << bits);
    if (p == nullptr) return -EIO;
    // XFS_BMAPI_ZERO: the zeroes are durable before the blocks are
    // journaled written, so a crash never exposes old contents.
    memset(p, 0, n << bits);
    if (int r = dax->Flush(addr, n << bits); r != 0) return r;
    TxnBuilder txn;
    txn.Raw(kOpConvert, RangeOpBody(vi->ino(), off_b, n));
    if (int r = vol_->Transact(vi, txn); r != 0) return r;
    e = fd->data.Lookup(off_b);
    if (e.state != ExtentState::kWritten) return -EIO;
    e = e.Slice(off_b, std::min(e.file_end(), off_b + n) - off_b);
  } else if (e.state == ExtentState::kWritten) {
    // Another fault converted it meanwhile.
    bool shared = false;
    e = e.Slice(off_b, SharedRun(e, off_b, &shared));
    if (shared) return -EAGAIN;
  } else {
    return -EIO;  // punched meanwhile: impossible under the caller's locks
  }
  Extent next;
  if (vi->fork()->cow.NextExtent(off_b, &next) && next.file_off < e.file_end())
    e = e.Slice(off_b, next.file_off - off_b);
  FillIomap(vi, e, iomap);
  return 0;
}

int DataOps::DaxIomapEnd(VolInode* vi, int64_t pos, int64_t len,
                         int64_t written, unsigned flags, iomap::Iomap* iomap) {
  // Reads see kShared on shared blocks too: only stores remap.
  if (!(flags & (iomap::kWrite | iomap::kZero)) ||
      !(iomap->flags & iomap::kShared))
    return 0;
  // xfs_dax_write_iomap_end: remap what was written, drop the rest.
  if (written <= 0) {
    const unsigned bits = vi->blkbits();
    const uint64_t first = static_cast<uint64_t>(pos) >> bits;
    const uint64_t last =
        (static_cast<uint64_t>(pos + len) + vi->block_size() - 1) >> bits;
    CancelCow(vi, first, last - first);
    return 0;
  }
  iomap::Ioend io;
  io.inode = vi;
  io.bdev = vi->bdev();
  io.io_offset = pos;
  io.io_size = static_cast<uint64_t>(written);
  io.flags = iomap::kIoendShared;
  return FinishCowIoend(vi, &io);
}

}  // namespace internal
}  // namespace fs
