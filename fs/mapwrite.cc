// OpenFile::MapWrite: a store through a shared writable mapping, page by
// page as the kernel's write faults run it (filemap_fault to bring the page
// in, then xfs_write_fault -> iomap_page_mkwrite), and the zeroing of the
// cached bytes past EOF that such stores leave behind when the size grows
// (xfs_file_write_zero_eof / xfs_setattr_size).
#include <algorithm>
#include <cstring>

#include "fs/data_ops.h"
#include "fs/file.h"
#include "iomap/buffered_io.h"
#include "iomap/pagecache.h"

namespace fs {
namespace internal {

int ReadPage(VolInode* vi, int64_t index, iomap::IomapOps& ops,
             iomap::Folio** out) {
  iomap::Folio* folio = nullptr;
  int r = vi->mapping()->GetFolio(index, iomap::kFgpLock | iomap::kFgpCreat, 0,
                                  &folio);
  if (r != 0) return r;
  if (!folio->Uptodate()) {
    iomap::ReadFolio(folio, ops);  // unlocks, now or at read completion
    folio->Lock();
    if (!folio->Uptodate()) r = -EIO;
  }
  folio->Unlock();
  if (r != 0) {
    folio->Put();
    return r;
  }
  *out = folio;
  return 0;
}

}  // namespace internal

// One write fault and the store into the page it made writable.
// REQUIRES: the invalidate lock held shared.
int OpenFile::MapWritePage(int64_t pos, const uint8_t* data, size_t n) {
  iomap::Folio* folio = nullptr;
  int r =
      internal::ReadPage(inode_, pos >> iomap::kPageShift, *vol_->ops_, &folio);
  if (r != 0) return r;
  r = iomap::PageMkwrite(inode_, folio, *vol_->ops_);  // locked on success
  if (r == 0) {
    std::memcpy(folio->data() + (pos - folio->pos()), data, n);
    folio->Unlock();
  }
  folio->Put();
  return r;
}

int64_t OpenFile::MapWrite(int64_t pos, const void* data, size_t len) {
  if (pos < 0) return -EINVAL;
  if (Dax()) return DaxMapWrite(pos, data, len);  // fs/dax_file.cc
  const uint8_t* src = static_cast<const uint8_t*>(data);
  size_t done = 0;
  int err = 0;
  while (done < len) {
    const int64_t at = pos + static_cast<int64_t>(done);
    const int64_t page_end = ((at >> iomap::kPageShift) + 1)
                             << iomap::kPageShift;
    const size_t n = std::min(len - done, static_cast<size_t>(page_end - at));
    {
      base::ReaderLock inv(&inode_->locks().invalidate);
      // A page wholly past EOF is not part of the mapping (SIGBUS).
      const int64_t page_start = page_end - int64_t{iomap::kPageSize};
      if (inode_->swapfile()) {
        err = -ETXTBSY;
      } else if (page_start >= inode_->i_size_read()) {
        err = -EFAULT;
      } else {
        err = MapWritePage(at, src + done, n);
      }
    }
    if (err != 0) break;
    if (iomap::MappingHooks* h = inode_->mapping()->hooks(); h != nullptr)
      h->BalanceDirty(inode_, false);
    done += n;
  }
  if (done > 0) inode_->TouchTimes(NowNs());  // page_mkwrite's file_update_time
  return done > 0 ? static_cast<int64_t>(done) : err;
}

// Bytes a mapped store left past EOF in the EOF folio must not appear when
// the size grows: zero them before i_size moves past `old_size`.
// REQUIRES: rwsem and invalidate held exclusive.
int OpenFile::ZeroCachedTail(int64_t old_size, bool nowait) {
  if ((old_size & (iomap::kPageSize - 1)) == 0) return 0;
  iomap::Folio* folio = nullptr;
  // kFgpStable: the folio may be under writeback (folio_wait_stable).
  const unsigned fgp = iomap::kFgpLock | iomap::kFgpStable |
                       (nowait ? iomap::kFgpNowait : 0);
  int r = inode_->mapping()->GetFolio(old_size >> iomap::kPageShift, fgp, 0,
                                      &folio);
  if (r == -ENOENT) return 0;  // not cached: nothing was stored there
  if (r != 0) return r;
  const size_t off = static_cast<size_t>(old_size - folio->pos());
  if (off < folio->size())
    std::memset(folio->data() + off, 0, folio->size() - off);
  folio->Unlock();
  folio->Put();
  return 0;
}

}  // namespace fs
