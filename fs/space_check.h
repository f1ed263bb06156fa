// Cross-structure checks of block ownership for fsck: every block of the
// data area is exactly one of free, used by extents, and the refcount index
// agrees with how many data-fork extents reference each block.
//
// The per-structure Check() functions (Allocator, RefcountIndex, ExtentMap)
// verify each structure alone; CheckSpace runs them and then sweeps all of
// them together, so it catches what no single structure can see: a block
// both free and used, a block neither free nor used (leaked), refcounts
// that differ from the number of referencing extents, COW staging blocks
// that are also mapped elsewhere, and extents outside [data_start,
// block_count).
//
// Thread-safety: reads the structures; the caller keeps them unchanged for
// the duration (fsck works on a read-only mount).
#ifndef IOMAPD_FS_SPACE_CHECK_H_
#define IOMAPD_FS_SPACE_CHECK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "fs/allocator.h"
#include "fs/extent_map.h"
#include "fs/refcount.h"

namespace fs {

struct ForkRef {
  uint64_t ino = 0;
  bool cow = false;  // the COW fork (staging blocks) rather than the data fork
  const ExtentMap* map = nullptr;
};

struct SpaceView {
  uint64_t data_start = 0;   // first block of the data area
  uint64_t block_count = 0;  // end of the data area
  const Allocator* allocator = nullptr;
  const RefcountIndex* refcounts = nullptr;  // may be null: no sharing
  std::vector<ForkRef> forks;
};

// Appends one line per problem (at most `max_problems` lines in all).
void CheckSpace(const SpaceView& view, std::vector<std::string>* problems,
                size_t max_problems = 100);

}  // namespace fs

#endif  // IOMAPD_FS_SPACE_CHECK_H_
