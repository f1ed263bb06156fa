#include "iomap/fiemap.h"

#include <cerrno>

#include "iomap/iter.h"
#include "iomap/pagecache.h"

namespace iomap {

int DefaultWriteAndWait(Inode* inode) {
  Mapping* mapping = inode->mapping();
  if (MappingHooks* hooks = mapping->hooks()) {
    return hooks->WriteAndWaitRange(inode, 0, INT64_MAX);
  }
  if (mapping->dirty_bytes() == 0 && mapping->writeback_bytes() == 0) {
    return 0;
  }
  return -EOPNOTSUPP;  // dirty data and no writeback engine installed
}

static int WriteAndWait(Inode* inode, const WriteAndWaitFn& fn) {
  return fn ? fn(inode) : DefaultWriteAndWait(inode);
}

int FiemapPrep(Inode* inode, FiemapExtentInfo* fi, uint64_t start,
               uint64_t* len, uint32_t supported_flags, int64_t maxbytes,
               const WriteAndWaitFn& write_and_wait) {
  const uint64_t max = static_cast<uint64_t>(maxbytes);
  if (*len == 0) return -EINVAL;
  if (start >= max) return -EFBIG;
  // Shrink the request to what the filesystem can address.
  if (*len > max || max - *len < start) *len = max - start;
  supported_flags |= kFiemapFlagSync;
  supported_flags &= kFiemapFlagsCompat;
  const uint32_t incompat = fi->fi_flags & ~supported_flags;
  if (incompat != 0) {
    fi->fi_flags = incompat;
    return -EBADR;
  }
  if (fi->fi_flags & kFiemapFlagSync)
    return WriteAndWait(inode, write_and_wait);
  return 0;
}

int FiemapFillNextExtent(FiemapExtentInfo* fi, uint64_t logical, uint64_t phys,
                         uint64_t len, uint32_t flags) {
  if (fi->fi_extents_max == 0) {  // only count
    fi->fi_extents_mapped++;
    return (flags & kFiemapExtentLast) ? 1 : 0;
  }
  if (fi->fi_extents_mapped >= fi->fi_extents_max) return 1;
  if (flags & kFiemapExtentDelalloc) flags |= kFiemapExtentUnknown;
  if (flags & kFiemapExtentDataEncrypted) flags |= kFiemapExtentEncoded;
  if (flags & (kFiemapExtentDataTail | kFiemapExtentDataInline)) {
    flags |= kFiemapExtentNotAligned;
  }
  FiemapExtent extent;
  extent.fe_logical = logical;
  extent.fe_physical = phys;
  extent.fe_length = len;
  extent.fe_flags = flags;
  fi->fi_extents->push_back(extent);
  fi->fi_extents_mapped++;
  if (fi->fi_extents_mapped == fi->fi_extents_max) return 1;
  return (flags & kFiemapExtentLast) ? 1 : 0;
}

namespace {

// iomap_to_fiemap(): one mapping as one extent (holes are skipped).
int IomapToFiemap(FiemapExtentInfo* fi, const Iomap& iomap, uint32_t flags) {
  switch (iomap.type) {
    case Iomap::Type::kHole:
      return 0;
    case Iomap::Type::kDelalloc:
      flags |= kFiemapExtentDelalloc | kFiemapExtentUnknown;
      break;
    case Iomap::Type::kMapped:
      break;
    case Iomap::Type::kUnwritten:
      flags |= kFiemapExtentUnwritten;
      break;
    case Iomap::Type::kInline:
      flags |= kFiemapExtentDataInline;
      break;
  }
  if (iomap.flags & kMerged) flags |= kFiemapExtentMerged;
  if (iomap.flags & kShared) flags |= kFiemapExtentShared;
  return FiemapFillNextExtent(fi, static_cast<uint64_t>(iomap.offset),
                              iomap.addr != kNullAddr ? iomap.addr : 0,
                              iomap.length, flags);
}

// iomap_fiemap_iter(): emits the previous extent when a non-hole mapping
// arrives; stops (no advance) once the array is full.
int FiemapStep(IomapIter& iter, FiemapExtentInfo* fi, Iomap* prev) {
  if (iter.iomap.type != Iomap::Type::kHole) {
    const int ret = IomapToFiemap(fi, *prev, 0);
    *prev = iter.iomap;
    if (ret < 0) return ret;
    if (ret == 1) return 0;  // extent array full
  }
  return iter.Advance(iter.Length());
}

}  // namespace

int IomapFiemap(Inode* inode, FiemapExtentInfo* fi, uint64_t start,
                uint64_t len, IomapOps& ops) {
  IomapIter iter(inode, static_cast<int64_t>(start), len, kReport);
  Iomap prev;  // a hole: nothing pending
  int ret;
  while ((ret = iter.Next(ops)) > 0) iter.status = FiemapStep(iter, fi, &prev);
  if (prev.type != Iomap::Type::kHole) {
    // As the kernel: this replaces the loop's result, so an error after a
    // pending extent is dropped.
    ret = IomapToFiemap(fi, prev, kFiemapExtentLast);
    if (ret < 0) return ret;
  }
  // An inode with no (attribute) mapping gives -ENOENT.
  if (ret < 0 && ret != -ENOENT) return ret;
  return 0;
}

int Fiemap(Inode* inode, FiemapRequest* req, IomapOps& ops,
           const FiemapOptions& options) {
  inode->locks().rwsem.AssertReaderHeld();
  if (req->fm_extent_count > kFiemapMaxExtents) return -EINVAL;
  req->fm_extents.clear();
  FiemapExtentInfo fi;
  fi.fi_flags = req->fm_flags;
  fi.fi_extents_max = req->fm_extent_count;
  fi.fi_extents = &req->fm_extents;
  IomapOps* fork_ops = &ops;
  if ((fi.fi_flags & kFiemapFlagXattr) && options.xattr_ops != nullptr) {
    fi.fi_flags &= ~kFiemapFlagXattr;
    fork_ops = options.xattr_ops;
  }
  uint64_t len = req->fm_length;
  int ret = FiemapPrep(inode, &fi, req->fm_start, &len, 0, options.maxbytes,
                       options.write_and_wait);
  if (ret == 0) ret = IomapFiemap(inode, &fi, req->fm_start, len, *fork_ops);
  req->fm_flags = fi.fi_flags;
  req->fm_mapped_extents = fi.fi_extents_mapped;
  return ret;
}

uint64_t Bmap(Inode* inode, uint64_t block, IomapOps& ops,
              const WriteAndWaitFn& write_and_wait) {
  inode->locks().rwsem.AssertReaderHeld();
  const unsigned blkbits = inode->blkbits();
  if (WriteAndWait(inode, write_and_wait) != 0) return 0;
  if (block > (static_cast<uint64_t>(INT64_MAX) >> blkbits)) return 0;
  IomapIter iter(inode, static_cast<int64_t>(block << blkbits),
                 inode->block_size(), kReport);
  uint64_t bno = 0;
  int ret;
  while ((ret = iter.Next(ops)) > 0) {
    if (iter.iomap.type == Iomap::Type::kMapped) {
      bno = iter.iomap.DeviceAddr(iter.pos()) >> blkbits;
    }
    // status stays 0 and nothing advances: the loop ends after one mapping.
  }
  if (ret != 0) return 0;
  return bno;
}

}  // namespace iomap
