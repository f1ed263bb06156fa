// fs::RefcountIndex: reference counts of shared (reflinked) device blocks,
// the in-memory counterpart of XFS's refcount btree (xfs_refcount_*).
//
// Like XFS, only counts >= 2 are stored, as ranges:
//   [start, start + len) -> count
// A block that is not in the index has count 1 if it is in use (one owner)
// and 0 if it is free; the index cannot tell those apart, the allocator can.
// So clone_range / dedupe_range call Increment() on blocks that are in use,
// and a fork that drops its mapping calls Decrement() and frees what comes
// back in `to_free`.
//
// Invariants (Check() verifies them): records are non-empty,
// non-overlapping, inside [0, kMaxDevBlocks), have 2 <= count <=
// kMaxRefcount, and neighbours that touch with equal counts are merged (the
// index is canonical). SharedBlocks() equals the sum of the lengths.
//
// Thread-safety: thread-safe. Every method takes an internal base::Mutex of
// rank LockRank::kFsAlloc (equal to the allocator's: take this one first
// when both are needed). ForEach() runs its callback under that mutex; it
// must not call back into the index.
#ifndef IOMAPD_FS_REFCOUNT_H_
#define IOMAPD_FS_REFCOUNT_H_

#include <cstdint>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "base/mutex.h"
#include "fs/allocator.h"
#include "fs/extent_map.h"

namespace fs {

// The highest count a block can reach (XFS MAXREFCOUNT).
inline constexpr uint32_t kMaxRefcount = (uint32_t{1} << 31) - 1;

// One stored record (xfs_refcount_irec).
struct RefcountRecord {
  uint64_t start = 0;
  uint64_t len = 0;
  uint32_t count = 0;
  uint64_t end() const { return start + len; }
  bool operator==(const RefcountRecord& o) const {
    return start == o.start && len == o.len && count == o.count;
  }
};

class RefcountIndex {
 public:
  RefcountIndex() = default;
  RefcountIndex(const RefcountIndex&) = delete;
  RefcountIndex& operator=(const RefcountIndex&) = delete;

  // Adds one reference to every block of [start, start + len): blocks at
  // count 1 (not stored) go to 2. -EINVAL for an empty range or one past
  // kMaxDevBlocks; -EOVERFLOW (and no change) if a block is at kMaxRefcount.
  int Increment(uint64_t start, uint64_t len);

  // Drops one reference from every block of [start, start + len)
  // (xfs_refcount_decrease_extent). Appends, in block order and merged:
  //   to_free:      blocks whose count was 1 and is now 0 (free them);
  //   still_shared: blocks whose count is still >= 2 afterwards.
  // Blocks that went from 2 to 1 appear in neither (now private).
  // Either vector may be null. -EINVAL for a bad range.
  int Decrement(uint64_t start, uint64_t len, std::vector<BlockRange>* to_free,
                std::vector<BlockRange>* still_shared);

  // True if any block of [start, start + len) has count >= 2.
  bool IsShared(uint64_t start, uint64_t len) const;

  // The first run of shared blocks inside [start, start + len), clipped to
  // it and extended over touching records of any count >= 2
  // (xfs_refcount_find_shared with find_end_of_shared). False if none.
  bool FindShared(uint64_t start, uint64_t len, BlockRange* out) const;

  // The count of `block`: the stored one, or 1 when not stored.
  uint32_t Count(uint64_t block) const;

  // Adds one record (rebuild from a checkpoint), merging it with touching
  // records of equal count. -EINVAL if count < 2, count > kMaxRefcount or
  // the range is bad; -EEXIST if it overlaps a stored record.
  int Insert(const RefcountRecord& rec);

  // Calls fn for every record in block order (for serialization).
  void ForEach(absl::FunctionRef<void(const RefcountRecord&)> fn) const;

  size_t NumRecords() const;
  // Blocks with count >= 2.
  uint64_t SharedBlocks() const;

  // Verifies the invariants above; the error (errno EUCLEAN) names the
  // first problem found.
  absl::Status Check() const;

 private:
  friend class RefcountIndexTestPeer;  // corrupts private state in tests
  struct Rec {
    uint64_t len;
    uint32_t count;
  };
  using Map_ = absl::btree_map<uint64_t, Rec>;

  static bool ValidRange(uint64_t start, uint64_t len);
  // The pieces of [start, end) in order: stored records clipped to the
  // range, and the gaps between them as count-1 pieces.
  std::vector<RefcountRecord> Pieces(uint64_t start, uint64_t end) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Replaces [start, end) with `pieces` (count < 2 means not stored).
  void Replace(uint64_t start, uint64_t end,
               const std::vector<RefcountRecord>& pieces)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SplitAt(uint64_t block) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MergeRange(uint64_t start, uint64_t end)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable base::Mutex mu_{base::LockRank::kFsAlloc};
  Map_ map_ ABSL_GUARDED_BY(mu_);
  uint64_t shared_blocks_ ABSL_GUARDED_BY(mu_) = 0;
};

// fsck's cross-structure rules for device blocks (what xfs_scrub checks
// between the free-space, refcount and reverse-mapping btrees).
//
// `owned` lists every reference to device blocks, in any order: each
// allocated (written or unwritten) extent of every fork of every inode
// (Extent::dev_range()), and the filesystem's own metadata ranges once
// each. With refs(b) the number of owned ranges covering block b, it
// verifies:
//   - every owned range is non-empty and ends by alloc.end_block();
//   - inside [alloc.first_block(), alloc.end_block()): b is free in the
//     allocator exactly when refs(b) == 0 (no block both free and used, no
//     leaked block);
//   - refcounts.Count(b) == refs(b) wherever refs(b) >= 2, and no refcount
//     record covers a block with refs(b) < 2.
// Returns OK or an error (errno EUCLEAN) naming the first bad block range.
// Takes the allocator's and the index's locks in turn, never together; the
// caller must keep the structures quiescent (fsck, or mount).
absl::Status CrossCheckBlocks(const Allocator& alloc,
                              const RefcountIndex& refcounts,
                              const std::vector<BlockRange>& owned);

}  // namespace fs

#endif  // IOMAPD_FS_REFCOUNT_H_
