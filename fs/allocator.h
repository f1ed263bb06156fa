// fs::Allocator: free space of one device, the in-memory counterpart of
// XFS's free-space btrees (the bnobt indexed by start block and the cntbt
// indexed by length) and of xfs_alloc_vextent.
//
// It manages the blocks [first_block, end_block). Free space is kept twice,
// in two ordered indexes held in step: by start block (to find neighbours
// and to merge on Free) and by (length, start) (to find the best fit).
//
// Delayed allocation: Reserve(n) sets blocks aside for buffered writes over
// holes, so ENOSPC is reported at write time, never at writeback. Reserved
// blocks are still free, but ordinary allocations may not use them; an
// allocation with `from_reservation` consumes them.
//
// Invariants (Check() verifies them): free extents are non-empty, inside
// [first_block, end_block), non-overlapping and never adjacent (always
// merged); both indexes hold exactly the same extents; the free counter
// equals the sum of the lengths; reserved <= free.
//
// Thread-safety: thread-safe. Every method takes an internal base::Mutex of
// rank LockRank::kFsAlloc, so callers may hold inode metadata locks
// (kFsInode) but not the journal lock (kJournal) when calling in.
// ForEachFree() runs its callback under that mutex: it must not call back
// into the allocator.
#ifndef IOMAPD_FS_ALLOCATOR_H_
#define IOMAPD_FS_ALLOCATOR_H_

#include <cstdint>
#include <utility>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "base/mutex.h"
#include "fs/extent_map.h"

namespace fs {

// hint_block value meaning "no preference".
inline constexpr uint64_t kNoHint = ~uint64_t{0};

// One allocation request (xfs_alloc_arg, reduced).
struct AllocRequest {
  // Blocks wanted; the result may be shorter, never longer. Must be > 0.
  uint64_t want_blocks = 0;
  // The shortest acceptable result; 0 is treated as 1. Must be <= want.
  uint64_t min_blocks = 1;
  // Preferred first block, usually the block right after the file's
  // previous extent so that the file stays contiguous; kNoHint for none.
  uint64_t hint_block = kNoHint;
  // Consume blocks previously set aside with Reserve(): the reserved
  // counter drops by the length allocated. REQUIRES: want <= ReservedBlocks().
  bool from_reservation = false;
  // The result starts on a device block that is a multiple of this (for
  // untorn atomic writes: startblock % blockcount == 0). 0 and 1 mean no
  // alignment. An unaligned hint_block skips the exact step.
  uint64_t align_blocks = 1;
};

class Allocator {
 public:
  // Which state the managed blocks start in.
  enum class Init {
    kAllFree,  // a fresh device: mkfs, or rebuild with MarkUsed()
    kAllUsed,  // rebuild from a serialized free list with Free()
  };

  // Manages [first_block, end_block). REQUIRES: first_block <= end_block
  // <= kMaxDevBlocks.
  Allocator(uint64_t first_block, uint64_t end_block, Init init);
  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;

  // Allocates one extent (xfs_alloc_vextent). Preference order:
  //   1. exact: starting at hint_block, if it is free and at least
  //      min_blocks long from there (extends the file's previous extent);
  //   2. near: the closest free extent to the hint that holds want_blocks
  //      (a bounded search on both sides of the hint), taking the blocks
  //      nearest the hint;
  //   3. best fit: the shortest free extent holding want_blocks;
  //   4. the longest free extent, if it holds at least min_blocks.
  // With align_blocks > 1 every step only considers aligned starts, and
  // step 4 takes the longest aligned run instead.
  // Returns 0 and sets *out, or -EINVAL for a malformed request, or
  // -ENOSPC when no free (aligned) run of min_blocks exists or when fewer
  // than min_blocks are free beyond the reservations (unless
  // from_reservation).
  int Alloc(const AllocRequest& req, BlockRange* out);
  // Alloc() with only the three usual fields set.
  int Alloc(uint64_t want_blocks, uint64_t min_blocks, uint64_t hint_block,
            BlockRange* out) {
    AllocRequest req;
    req.want_blocks = want_blocks;
    req.min_blocks = min_blocks;
    req.hint_block = hint_block;
    return Alloc(req, out);
  }

  // Returns [start, start + len) to free space, merging with neighbours
  // (xfs_free_extent). -EINVAL if outside the managed range or len == 0;
  // -EUCLEAN if any block of it is already free (a double free).
  int Free(uint64_t start, uint64_t len);

  // Marks [start, start + len) used (rebuild, or allocating a known range).
  // -EINVAL for a bad range; -EUCLEAN unless every block is free; -ENOSPC
  // if it would leave fewer free blocks than are reserved.
  int MarkUsed(uint64_t start, uint64_t len);

  // Sets aside n free blocks for delayed allocation. -ENOSPC if fewer than
  // n blocks are free beyond existing reservations.
  int Reserve(uint64_t n);
  // Returns n reserved blocks. -EINVAL (and no change) if n > reserved.
  int Unreserve(uint64_t n);

  uint64_t FreeBlocks() const;
  uint64_t ReservedBlocks() const;
  // FreeBlocks() - ReservedBlocks(): what ordinary allocations may use.
  uint64_t AvailableBlocks() const;
  uint64_t NumFreeExtents() const;
  // The longest free extent's length (0 when full).
  uint64_t LongestFreeExtent() const;
  uint64_t first_block() const { return first_block_; }
  uint64_t end_block() const { return end_block_; }

  // True if every block of [start, start + len) is free.
  bool IsFree(uint64_t start, uint64_t len) const;

  // Calls fn for each free extent in block order (for serialization).
  void ForEachFree(absl::FunctionRef<void(const BlockRange&)> fn) const;

  // Verifies the invariants above; the error (errno EUCLEAN) names the
  // first problem found.
  absl::Status Check() const;

 private:
  friend class AllocatorTestPeer;  // corrupts private state in tests
  using ByStart = absl::btree_map<uint64_t, uint64_t>;  // start -> len
  using BySize = absl::btree_set<std::pair<uint64_t, uint64_t>>;  // len,start

  bool InRange(uint64_t start, uint64_t len) const;
  void AddFree(uint64_t start, uint64_t len) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveFree(uint64_t start, uint64_t len)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The free extent containing `block`, or by_start_.end().
  ByStart::const_iterator FindContaining(uint64_t block) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool TryExact(const AllocRequest& req, uint64_t limit, BlockRange* out) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool TryNear(const AllocRequest& req, uint64_t limit, BlockRange* out) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool TryBySize(const AllocRequest& req, uint64_t limit, BlockRange* out) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool TryLongest(const AllocRequest& req, uint64_t limit,
                  BlockRange* out) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckIndexes() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const uint64_t first_block_;
  const uint64_t end_block_;
  mutable base::Mutex mu_{base::LockRank::kFsAlloc};
  ByStart by_start_ ABSL_GUARDED_BY(mu_);
  BySize by_size_ ABSL_GUARDED_BY(mu_);
  uint64_t free_blocks_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t reserved_blocks_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fs

#endif  // IOMAPD_FS_ALLOCATOR_H_
