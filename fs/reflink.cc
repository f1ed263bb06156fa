// Reflink: FICLONERANGE and FIDEDUPERANGE on a Volume (the VFS's
// generic_remap_file_range_prep with XFS's xfs_reflink_remap_prep and
// xfs_reflink_remap_blocks). Blocks become shared through the refcount
// index (journal op kOpShare); writes to them go through the COW fork
// (fs/data_ops.cc).
#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "fs/codec.h"
#include "fs/data_ops.h"
#include "fs/file.h"
#include "fs/format.h"
#include "iomap/pagecache.h"

namespace fs {
namespace {

// Both inodes' rwsem, then both invalidate locks, exclusive, lower inode
// number first (xfs_ilock2_io_mmap); one set when they are the same.
class RemapLocks {
 public:
  RemapLocks(VolInode* a, VolInode* b) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (a->ino() > b->ino()) std::swap(a, b);
    first_ = a;
    second_ = a == b ? nullptr : b;
    first_->locks().rwsem.Lock();
    if (second_ != nullptr) second_->locks().rwsem.Lock();
    first_->locks().invalidate.Lock();
    if (second_ != nullptr) second_->locks().invalidate.Lock();
  }
  ~RemapLocks() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (second_ != nullptr) second_->locks().invalidate.Unlock();
    first_->locks().invalidate.Unlock();
    if (second_ != nullptr) second_->locks().rwsem.Unlock();
    first_->locks().rwsem.Unlock();
  }

 private:
  VolInode* first_;
  VolInode* second_;
};

// The two ilocks in the same order.
class IlockPair {
 public:
  IlockPair(VolInode* a, VolInode* b) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (a->ino() > b->ino()) std::swap(a, b);
    first_ = &a->fork()->ilock;
    second_ = a == b ? nullptr : &b->fork()->ilock;
    first_->Lock();
    if (second_ != nullptr) second_->Lock();
  }
  ~IlockPair() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (second_ != nullptr) second_->Unlock();
    first_->Unlock();
  }

 private:
  base::Mutex* first_;
  base::Mutex* second_;
};

std::string ShareBody(uint64_t ino, uint64_t off, const Extent& src) {
  std::string body = RangeOpBody(ino, off, src.len);
  Encoder e(&body);
  e.U64(src.dev_block);
  e.U16(static_cast<uint16_t>(src.state));
  return body;
}

int64_t AlignUp(int64_t x, int64_t a) { return (x + a - 1) / a * a; }

}  // namespace

int OpenFile::CheckRemapArgs(OpenFile* src, int64_t src_off, int64_t dst_off,
                             int64_t len) const {
  if (src_off < 0 || dst_off < 0 || len < 0) return -EINVAL;
  if (src_off > INT64_MAX - len || dst_off > INT64_MAX - len) return -EINVAL;
  if (src->vol_ != vol_) return -EXDEV;
  if (src->closed_ || closed_) return -EBADF;
  return 0;
}

int64_t OpenFile::CloneRange(OpenFile* src, int64_t src_off, int64_t dst_off,
                             int64_t len) {
  if (int r = CheckRemapArgs(src, src_off, dst_off, len); r != 0) return r;
  int64_t r;
  {
    RemapLocks locks(src->inode_, inode_);
    r = Remap(src->inode_, src_off, dst_off, len, /*dedupe=*/false);
  }
  if (r > 0) inode_->TouchTimes(NowNs());
  vol_->MaybeCheckpointQuiet();
  return r;
}

int64_t OpenFile::DedupeRange(OpenFile* src, int64_t src_off, int64_t dst_off,
                              int64_t len) {
  if (int r = CheckRemapArgs(src, src_off, dst_off, len); r != 0) return r;
  if (len == 0) return 0;
  // vfs_dedupe_file_range: within the source's EOF, at most 1 GiB.
  if (src_off + len > src->size()) return -EINVAL;
  len = std::min<int64_t>(len, int64_t{1} << 30);
  int64_t r;
  {
    RemapLocks locks(src->inode_, inode_);
    r = Remap(src->inode_, src_off, dst_off, len, /*dedupe=*/true);
  }
  vol_->MaybeCheckpointQuiet();
  return r < 0 ? r : len;  // bytes_deduped is the request's length
}

// generic_remap_checks(): adjusts *len (to the source EOF; dedupe may
// shorten it to whole blocks) or returns -errno.
int OpenFile::RemapChecks(VolInode* in, int64_t pos_in, int64_t pos_out,
                          int64_t* len, bool dedupe) const {
  const int64_t bs = inode_->block_size();
  if (pos_in % bs != 0 || pos_out % bs != 0) return -EINVAL;
  const int64_t size_in = in->i_size_read(), size_out = inode_->i_size_read();
  int64_t count = *len;
  if (dedupe && (pos_in >= size_in || pos_in + count > size_in ||
                 pos_out >= size_out || pos_out + count > size_out))
    return -EINVAL;
  if (pos_in >= size_in) return -EINVAL;
  count = std::min(count, size_in - pos_in);
  const int64_t max = static_cast<int64_t>(format::kMaxFileSize);
  if (pos_out >= max) return -EFBIG;
  count = std::min(count, max - pos_out);
  int64_t bcount = count;
  if (pos_in + count == size_in && (!dedupe || pos_out + count == size_out)) {
    bcount = AlignUp(size_in, bs) - pos_in;
  } else {
    count = count / bs * bs;
    bcount = count;
  }
  if (in == inode_ && pos_out + bcount > pos_in && pos_out < pos_in + bcount)
    return -EINVAL;  // overlapping ranges of one file
  if (*len != count && !dedupe) return -EINVAL;  // no REMAP_FILE_CAN_SHORTEN
  *len = count;
  return 0;
}

// vfs_dedupe_file_range_compare(): *same when the ranges hold equal bytes.
int OpenFile::CompareRanges(VolInode* in, int64_t pos_in, int64_t pos_out,
                            int64_t len, bool* same) {
  *same = true;
  while (len > 0 && *same) {
    const int64_t page = static_cast<int64_t>(iomap::kPageSize);
    const int64_t n =
        std::min({page - pos_in % page, page - pos_out % page, len});
    iomap::Folio* a = nullptr;
    iomap::Folio* b = nullptr;
    int r = internal::ReadPage(in, pos_in / page, *vol_->ops_, &a);
    if (r != 0) return r;
    r = internal::ReadPage(inode_, pos_out / page, *vol_->ops_, &b);
    if (r != 0) {
      a->Put();
      return r;
    }
    *same = std::memcmp(a->data() + (pos_in - a->pos()),
                        b->data() + (pos_out - b->pos()), n) == 0;
    a->Put();
    b->Put();
    pos_in += n;
    pos_out += n;
    len -= n;
  }
  return 0;
}

// __generic_remap_file_range_prep + the remap. REQUIRES: RemapLocks.
int64_t OpenFile::Remap(VolInode* in, int64_t pos_in, int64_t pos_out,
                        int64_t len, bool dedupe) {
  if (in->swapfile() || inode_->swapfile()) return -ETXTBSY;
  if (len == 0) {  // reflink to the source's EOF
    const int64_t isize = in->i_size_read();
    if (dedupe || pos_in == isize) return 0;
    if (pos_in > isize) return -EINVAL;
    len = isize - pos_in;
  }
  int r = RemapChecks(in, pos_in, pos_out, &len, dedupe);
  if (r != 0 || len == 0) return r;
  if ((r = vol_->flusher_->WriteAndWaitRange(in, pos_in, pos_in + len - 1)) !=
          0 ||
      (r = vol_->flusher_->WriteAndWaitRange(inode_, pos_out,
                                             pos_out + len - 1)) != 0)
    return r;
  if (dedupe) {
    bool same = false;
    if ((r = CompareRanges(in, pos_in, pos_out, len, &same)) != 0) return r;
    if (!same) return -EBADE;
  }
  // generic_remap_check_len: a partial EOF block only at/after dst's EOF.
  const int64_t bs = inode_->block_size();
  if (len % bs != 0 && pos_out + len < inode_->i_size_read()) {
    if (!dedupe) return -EINVAL;
    len = len / bs * bs;
    if (len == 0) return 0;
  }
  if ((r = RemapBlocks(in, pos_in, pos_out, len)) != 0) return r;
  if (!dedupe && pos_out + len > inode_->i_size_read())
    r = ExtendSize(pos_out + len);
  return r != 0 ? r : len;
}

// xfs_flush_unmap_range on the destination, then one transaction per
// source extent: share it (kOpShare) or unmap the destination over a hole.
int OpenFile::RemapBlocks(VolInode* in, int64_t pos_in, int64_t pos_out,
                          int64_t len) {
  const int64_t bs = inode_->block_size();
  const uint64_t s0 = pos_in / bs, d0 = pos_out / bs;
  const uint64_t nb = static_cast<uint64_t>(AlignUp(len, bs) / bs);
  const int64_t unit = static_cast<int64_t>(iomap::kMaxFolioSize);
  const int64_t start = pos_out / unit * unit;
  const int64_t end = AlignUp(pos_out + len, unit);
  if (int r = vol_->flusher_->WriteAndWaitRange(inode_, start, end - 1); r != 0)
    return r;
  inode_->mapping()->TruncateRange(start, end);
  vol_->ops_->PunchDelalloc(inode_, pos_out, static_cast<int64_t>(nb) * bs);
  vol_->ops_->CancelCow(inode_, d0, nb);
  base::ReaderLock t(&vol_->txn_mu_);
  IlockPair ilocks(in, inode_);
  std::vector<Extent> pieces;
  in->fork()->data.ForEachInRange(s0, nb, [&](const Extent& e) {
    if (e.allocated()) pieces.push_back(e);
  });
  uint64_t cursor = s0;
  auto unmap_gap = [&](uint64_t upto) {
    if (upto <= cursor) return 0;
    TxnBuilder txn;
    txn.Raw(kOpUnmap,
            RangeOpBody(inode_->ino(), d0 + (cursor - s0), upto - cursor));
    return vol_->Transact(inode_, txn);
  };
  for (const Extent& p : pieces) {
    if (int r = unmap_gap(p.file_off); r != 0) return r;
    TxnBuilder txn;
    txn.Raw(kOpShare, ShareBody(inode_->ino(), d0 + (p.file_off - s0), p));
    if (int r = vol_->Transact(inode_, txn); r != 0) return r;
    cursor = p.file_end();
  }
  return unmap_gap(s0 + nb);
}

// --- Handle-level calls for the server.

int64_t Volume::CloneRange(FileHandle src, int64_t src_off, FileHandle dst,
                           int64_t dst_off, int64_t len) {
  std::unique_ptr<OpenFile> in, out;
  if (int r = Open(src, &in); r != 0) return r;
  if (int r = Open(dst, &out); r != 0) return r;
  const int64_t r = out->CloneRange(in.get(), src_off, dst_off, len);
  out->Close();
  in->Close();
  return r;
}

int64_t Volume::DedupeRange(FileHandle src, int64_t src_off, FileHandle dst,
                            int64_t dst_off, int64_t len) {
  std::unique_ptr<OpenFile> in, out;
  if (int r = Open(src, &in); r != 0) return r;
  if (int r = Open(dst, &out); r != 0) return r;
  const int64_t r = out->DedupeRange(in.get(), src_off, dst_off, len);
  out->Close();
  in->Close();
  return r;
}

}  // namespace fs
