#include "iomap/swapfile.h"

#include <algorithm>
#include <cerrno>

#include "iomap/folio.h"
#include "iomap/iter.h"

namespace iomap {

int AddSwapExtent(SwapInfo* sis, uint64_t start_page, uint64_t nr_pages,
                  uint64_t start_block) {
  if (!sis->extents.empty()) {
    SwapExtent& last = sis->extents.back();
    if (last.start_block + last.nr_pages == start_block) {
      last.nr_pages += nr_pages;
      return 0;
    }
  }
  sis->extents.push_back(SwapExtent{start_page, nr_pages, start_block});
  return 1;
}

namespace {

// struct iomap_swapfile_info.
struct SwapfileWalk {
  SwapInfo* sis;
  Iomap iomap;  // the accumulated, physically contiguous extent
  uint64_t lowest_ppage = UINT64_MAX;
  uint64_t highest_ppage = 0;
  uint64_t nr_pages = 0;
  int nr_extents = 0;
};

constexpr uint64_t AlignUp(uint64_t x) {
  return (x + kPageSize - 1) & ~uint64_t{kPageSize - 1};
}
constexpr uint64_t AlignDown(uint64_t x) {
  return x & ~uint64_t{kPageSize - 1};
}

// iomap_swapfile_add_extent(): the accumulated extent, rounded inward to
// whole device pages, becomes swap pages (within the cap).
void AddExtent(SwapfileWalk* w) {
  const Iomap& iomap = w->iomap;
  if (w->nr_pages >= w->sis->max) return;
  const uint64_t max_pages = w->sis->max - w->nr_pages;
  const uint64_t first_ppage = AlignUp(iomap.addr) >> kPageShift;
  const uint64_t next_ppage =
      AlignDown(iomap.addr + iomap.length) >> kPageShift;
  if (first_ppage >= next_ppage) return;  // shorter than a page
  const uint64_t nr_pages = std::min(next_ppage - first_ppage, max_pages);
  // The header page (file offset 0) is fed in but not counted as swap space.
  uint64_t first_reported = first_ppage;
  if (iomap.offset == 0) first_reported++;
  w->lowest_ppage = std::min(w->lowest_ppage, first_reported);
  w->highest_ppage = std::max(w->highest_ppage, next_ppage - 1);
  w->nr_extents += AddSwapExtent(w->sis, w->nr_pages, nr_pages, first_ppage);
  w->nr_pages += nr_pages;
}

int Fail(SwapfileWalk* w, const char* reason) {
  w->sis->error = reason;
  return -EINVAL;
}

// Why a mapping cannot back swap, or null.
const char* Unusable(const Iomap& iomap, const SwapInfo& sis) {
  switch (iomap.type) {
    case Iomap::Type::kMapped:
    case Iomap::Type::kUnwritten:
      break;
    case Iomap::Type::kInline:
      return "is inline";
    default:
      return "has unallocated extents";
  }
  if (iomap.flags & kDirty) return "is not committed";
  if (iomap.flags & kShared) return "has shared extents";
  if (iomap.bdev != sis.bdev) return "outside the main device";
  return nullptr;
}

// iomap_swapfile_iter(): accumulate the whole mapping (as returned, not
// trimmed to the walk) while physically contiguous.
int SwapfileStep(IomapIter& iter, SwapfileWalk* w) {
  const Iomap& iomap = iter.iomap;
  if (const char* reason = Unusable(iomap, *w->sis)) return Fail(w, reason);
  if (w->iomap.length == 0) {
    w->iomap = iomap;
  } else if (w->iomap.addr + w->iomap.length == iomap.addr) {
    w->iomap.length += iomap.length;
  } else {
    AddExtent(w);
    w->iomap = iomap;
  }
  return iter.Advance(iter.Length());
}

}  // namespace

int SwapfileActivate(Inode* inode, SwapInfo* sis, IomapOps& ops,
                     const FsyncFn& fsync) {
  inode->locks().rwsem.AssertHeld();
  sis->extents.clear();
  sis->error.clear();
  // Persist the mapping metadata so that no mapping is kDirty.
  if (fsync) {
    const int ret = fsync(inode);
    if (ret != 0) return ret;
  }
  SwapfileWalk w{sis};
  const uint64_t len = AlignDown(static_cast<uint64_t>(inode->i_size_read()));
  if (len > 0) {
    IomapIter iter(inode, 0, len, kReport);
    int ret;
    while ((ret = iter.Next(ops)) > 0) iter.status = SwapfileStep(iter, &w);
    if (ret < 0) return ret;
  }
  if (w.iomap.length != 0) AddExtent(&w);
  if (w.nr_pages == 0) {
    return Fail(&w, "Cannot find a single usable page in file.");
  }
  sis->pagespan = 1 + w.highest_ppage - w.lowest_ppage;
  sis->max = w.nr_pages;
  sis->pages = w.nr_pages - 1;
  sis->highest_bit = w.nr_pages - 1;
  return w.nr_extents;
}

}  // namespace iomap
