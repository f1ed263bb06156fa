// fs::ReservationCounter: delayed-allocation block reservations, per inode
// and in total (XFS keeps i_delayed_blks per inode and takes the blocks out
// of sb_fdblocks at write time).
//
// A buffered write over a hole reserves its blocks here (so ENOSPC is
// reported at write time) and records them as kDelalloc extents in the
// inode's data fork. Writeback allocates them from the reservation
// (AllocReserved); a short write punches the unused delalloc extents and
// releases their blocks (Release). The invariant that proves "short writes
// leave no reservation behind" is
//   Reserved(ino) == delalloc blocks in ino's forks       (CheckInode)
//   sum over inodes of Reserved(ino) == TotalReserved()
//                                  == allocator.ReservedBlocks()   (Check)
//
// Reservations live in memory only: delalloc data is never on the device,
// so nothing here is journalled or checkpointed; ForEach exists for
// debugging and fsck of a live volume.
//
// The counter owns the allocator's reservations: nothing else may call
// Allocator::Reserve/Unreserve or allocate with from_reservation, or
// Check() reports a mismatch.
//
// Thread-safety: thread-safe. An internal base::Mutex of rank
// LockRank::kFsAlloc is held while calling into the allocator (order:
// this counter, then the allocator). ForEach() runs its callback under the
// mutex; it must not call back into the counter.
#ifndef IOMAPD_FS_RESERVATION_H_
#define IOMAPD_FS_RESERVATION_H_

#include <cstdint>

#include "absl/container/btree_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "base/mutex.h"
#include "fs/allocator.h"

namespace fs {

class ReservationCounter {
 public:
  // `allocator` is not owned and must outlive the counter.
  explicit ReservationCounter(Allocator* allocator) : allocator_(allocator) {}
  ReservationCounter(const ReservationCounter&) = delete;
  ReservationCounter& operator=(const ReservationCounter&) = delete;

  // Reserves n blocks for inode `ino` in the allocator. -ENOSPC (and no
  // change) if fewer than n blocks are available. n == 0 is a no-op.
  int Reserve(uint64_t ino, uint64_t n);

  // Returns n of ino's reserved blocks to the allocator (punched delalloc,
  // a failed write). -EINVAL (and no change) if ino holds fewer than n.
  int Release(uint64_t ino, uint64_t n);

  // Releases everything ino holds (eviction, truncate); returns the count.
  uint64_t ReleaseAll(uint64_t ino);

  // Allocates from ino's reservation (writeback converting delalloc):
  // Allocator::Alloc with from_reservation set; ino's count drops by the
  // length allocated. -EINVAL if req.want_blocks > Reserved(ino), else
  // Allocator::Alloc's result.
  int AllocReserved(uint64_t ino, AllocRequest req, BlockRange* out);

  uint64_t Reserved(uint64_t ino) const;
  uint64_t TotalReserved() const;
  // Inodes holding a non-zero reservation.
  size_t NumInodes() const;

  // Calls fn(ino, blocks) for each inode holding a reservation, by inode.
  void ForEach(absl::FunctionRef<void(uint64_t, uint64_t)> fn) const;

  // Per-inode sum == total == allocator's reserved counter. The error
  // (errno EUCLEAN) names the mismatch.
  absl::Status Check() const;

  // Reserved(ino) == expected_blocks, typically the delalloc blocks of the
  // inode's forks (ExtentMap::BlocksInState(kDelalloc)). The error (errno
  // EUCLEAN) names the inode and both numbers.
  absl::Status CheckInode(uint64_t ino, uint64_t expected_blocks) const;

 private:
  void Drop(uint64_t ino, uint64_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Allocator* const allocator_;
  mutable base::Mutex mu_{base::LockRank::kFsAlloc};
  absl::btree_map<uint64_t, uint64_t> per_inode_ ABSL_GUARDED_BY(mu_);
  uint64_t total_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fs

#endif  // IOMAPD_FS_RESERVATION_H_
