// The readahead policy of mm/readahead.c (Linux 6.16+): page_cache_sync_ra
// (initial window, context readahead from the cached pages before a miss,
// or just the request), page_cache_async_ra (the next window when a reader
// reaches the readahead mark) and the folio order ramp of
// page_cache_ra_order. read.cc allocates and reads the windows.
#include <algorithm>
#include <cstdint>

#include "block/device.h"
#include "iomap/internal.h"

namespace iomap {
namespace internal {

namespace {

// What to read once the state's lock is dropped.
struct RaPlan {
  int64_t start = 0;
  int64_t size = 0;
  int64_t mark = -1;
  unsigned order = 0;
};

// get_init_ra_size(): the first window for a request of `req` pages.
int64_t InitRaSize(int64_t req, int64_t max) {
  int64_t size = 1;
  while (size < req) size <<= 1;
  if (size <= max / 32) return size * 4;
  if (size <= max / 4) return size * 2;
  return max;
}

// get_next_ra_size(): ramps the window up, fast while it is small.
int64_t NextRaSize(int64_t cur, int64_t max) {
  if (cur < max / 16) return 4 * cur;
  if (cur <= max / 2) return 2 * cur;
  return max;
}

// ractl_max_pages(): a request larger than the window may read up to the
// device's largest I/O (bdi->io_pages).
int64_t MaxPages(Inode* inode, int64_t ra_pages, int64_t req) {
  int64_t io_pages = 0;
  if (inode->bdev() != nullptr) {
    io_pages = static_cast<int64_t>(inode->bdev()->limits().max_io_bytes >>
                                    kPageShift);
  }
  if (req > ra_pages && io_pages > ra_pages) return std::min(req, io_pages);
  return ra_pages;
}

int Log2(int64_t n) { return 63 - __builtin_clzll(static_cast<uint64_t>(n)); }

// page_cache_ra_order()'s folio order for the window in `ra` (stored back
// as the kernel does) and the plan to read it.
RaPlan PlanWindow(Mapping* mapping, RaWindow* ra) {
  unsigned order = 0;
  if (mapping->LargeFolios()) {
    order = std::min(ra->order, mapping->max_order());
    order = std::min<unsigned>(order, Log2(ra->size));
    order = std::max(order, mapping->min_order());
  }
  ra->order = order;
  RaPlan plan;
  plan.start = ra->start;
  plan.size = ra->size;
  plan.mark = ra->start + ra->size - ra->async_size;
  plan.order = order;
  return plan;
}

int64_t RaPages(RaState* state) {
  base::MutexLock l(&state->mu);
  return state->window.ra_pages;
}

// The sync decision with the state locked. `miss` is the first page not
// cached below `index` (-1: cached down to page 0), or -2 when the caller
// has not looked (the sequential cases do not need it). Returns false when
// the caller must look it up and call again.
bool SyncPlan(Inode* inode, RaWindow* ra, int64_t index, int64_t req,
              int64_t miss, RaPlan* plan) {
  const int64_t max = MaxPages(inode, ra->ra_pages, req);
  const uint64_t prev_index = static_cast<uint64_t>(ra->prev_pos) >> kPageShift;
  if (index == 0 || req > max ||
      static_cast<uint64_t>(index) - prev_index <= 1) {
    ra->start = index;
    ra->size = InitRaSize(req, max);
    ra->async_size = ra->size > req ? ra->size - req : ra->size >> 1;
  } else {
    if (miss == -2) return false;
    int64_t contig = index - miss - 1;
    if (contig <= req) {  // a lone random read: the request, state untouched
      *plan = RaPlan{index, req, -1, 0};
      return true;
    }
    if (miss == -1) contig *= 2;  // cached from the start: a long stream
    ra->start = index;
    ra->size = std::min(contig + req, max);
    ra->async_size = 1;
  }
  ra->order = 0;
  *plan = PlanWindow(inode->mapping(), ra);
  return true;
}

}  // namespace

void SyncReadahead(Inode* inode, RaState* state, int64_t index,
                   int64_t req_pages, IomapOps& ops) {
  RaPlan plan;
  bool planned;
  {
    base::MutexLock l(&state->mu);
    if (state->window.ra_pages == 0) {  // readahead off: just this page
      planned = true;
      plan = RaPlan{index, 1, -1, 0};
    } else {
      planned = SyncPlan(inode, &state->window, index, req_pages, -2, &plan);
    }
  }
  if (!planned) {
    // page_cache_prev_miss() takes the mapping lock: not under the state's.
    const int64_t max =
        MaxPages(inode, std::max<int64_t>(RaPages(state), 1), req_pages);
    const int64_t miss = inode->mapping()->PrevMiss(index - 1, max);
    base::MutexLock l(&state->mu);
    SyncPlan(inode, &state->window, index, req_pages, miss, &plan);
  }
  ReadaheadWindow(inode, plan.start, plan.size, plan.mark, plan.order, ops);
}

void AsyncReadahead(Inode* inode, RaState* state, Folio* folio,
                    int64_t req_pages, IomapOps& ops) {
  const int64_t ra_pages = RaPages(state);
  if (ra_pages == 0 || folio->Writeback()) return;
  folio->ClearReadaheadMark();
  const int64_t index = folio->index();
  const int64_t max = MaxPages(inode, ra_pages, req_pages);
  // Only needed when the state does not expect this folio; looked up
  // first because it takes the mapping lock.
  const int64_t next_miss = inode->mapping()->NextMiss(index + 1, max);
  RaPlan plan;
  {
    base::MutexLock l(&state->mu);
    RaWindow& ra = state->window;
    const int64_t nr = int64_t{1} << folio->order();
    const int64_t expected = (ra.start + ra.size - ra.async_size) & ~(nr - 1);
    if (index == expected) {  // the stream we expected: push the window on
      ra.start += ra.size;
      ra.size = std::max(ra.size, NextRaSize(ra.size, max));
    } else {  // a mark without our state (interleaved streams)
      if (next_miss - index > max) return;
      ra.start = next_miss;
      ra.size = NextRaSize(next_miss - index + req_pages, max);
    }
    // Ramp the folio order up and end the window on a boundary of it.
    ra.order += 2;
    const int64_t align = int64_t{1}
                          << std::min<int>(ra.order, __builtin_ctzll(max));
    const int64_t end = ra.start + ra.size;
    const int64_t aligned_end = end & ~(align - 1);
    if (aligned_end > ra.start) ra.size -= end - aligned_end;
    ra.async_size = ra.size;
    plan = PlanWindow(inode->mapping(), &ra);
  }
  ReadaheadWindow(inode, plan.start, plan.size, plan.mark, plan.order, ops);
}

}  // namespace internal
}  // namespace iomap
