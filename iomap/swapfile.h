// Swap file activation (the kernel's iomap_swapfile_activate,
// fs/iomap/swapfile.c, with add_swap_extent from mm/swapfile.c). See
// docs/reporting.md for every rule and the test that checks it.
//
// After the caller's fsync, walks [0, ALIGN_DOWN(i_size, kPageSize)) with
// kReport mappings. Every mapping must be kMapped or kUnwritten, committed
// (no kDirty), unshared (no kShared) and on the swap device; otherwise
// -EINVAL with the kernel's reason. Physically contiguous mappings are
// merged; each merged extent is rounded inward to whole pages (shorter ones
// are dropped) and capped at SwapInfo::max pages in total. The page at file
// offset 0 (the swap header) is part of the extents but not of `pages`.
//
// What the filesystem must do around it (the engine keeps no state): hold
// the inode's rwsem exclusive; on success mark the inode as an active swap
// file and, while it is, refuse writes, truncation, fallocate that changes
// blocks, and reflink/dedupe with -ETXTBSY (as the kernel's IS_SWAPFILE
// checks do); clear the mark on swapoff (Deactivate).
//
// Thread-safety: thread-safe for different inodes.
#ifndef IOMAPD_IOMAP_SWAPFILE_H_
#define IOMAPD_IOMAP_SWAPFILE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "iomap/iomap.h"

namespace iomap {

// struct swap_extent: swap pages [start_page, start_page + nr_pages) live at
// device pages [start_block, start_block + nr_pages) (units: kPageSize).
struct SwapExtent {
  uint64_t start_page = 0;
  uint64_t nr_pages = 0;
  uint64_t start_block = 0;
};

// The parts of struct swap_info_struct activation reads and fills.
struct SwapInfo {
  // in: the swap device (sis->bdev); mappings elsewhere are rejected.
  block::Device* bdev = nullptr;
  // in: the most pages to use (from the swap header; default: no limit);
  // out: the pages found, header included (sis->max).
  uint64_t max = UINT64_MAX;
  // out: usable pages, max - 1 (the header page does not count).
  uint64_t pages = 0;
  uint64_t highest_bit = 0;  // out: max - 1
  // out: 1 + highest - lowest device page used (the header page excluded
  // from the lowest), as *pagespan.
  uint64_t pagespan = 0;
  std::vector<SwapExtent> extents;  // out: add_swap_extent's list
  // out on -EINVAL: the reason, as the kernel logs it after "swapon: file
  // <path> ": "is inline", "has unallocated extents", "is not committed",
  // "has shared extents", "outside the main device"; or "Cannot find a
  // single usable page in file."
  std::string error;
};

// vfs_fsync(file, 1) before activation: 0 or -errno. Null: none.
using FsyncFn = std::function<int(Inode* inode)>;

// iomap_swapfile_activate(). Returns the number of swap extents (>= 1), or
// -errno: the fsync's error, IomapBegin's error, -EINVAL (see SwapInfo::
// error). REQUIRES: inode->locks().rwsem held exclusive (asserted).
int SwapfileActivate(Inode* inode, SwapInfo* sis, IomapOps& ops,
                     const FsyncFn& fsync);

// add_swap_extent(): appends swap pages [start_page, +nr_pages) at device
// page start_block, merging with the previous extent when physically
// contiguous. Returns 1 when a new extent was added, 0 when merged.
int AddSwapExtent(SwapInfo* sis, uint64_t start_page, uint64_t nr_pages,
                  uint64_t start_block);

}  // namespace iomap

#endif  // IOMAPD_IOMAP_SWAPFILE_H_
