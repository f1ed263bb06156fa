#include "fs/reservation.h"

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/errno.h"

namespace fs {

int ReservationCounter::Reserve(uint64_t ino, uint64_t n) {
  if (n == 0) return 0;
  base::MutexLock lock(&mu_);
  if (int err = allocator_->Reserve(n); err != 0) return err;
  per_inode_[ino] += n;
  total_ += n;
  return 0;
}

void ReservationCounter::Drop(uint64_t ino, uint64_t n) {
  auto it = per_inode_.find(ino);
  it->second -= n;
  total_ -= n;
  if (it->second == 0) per_inode_.erase(it);
}

int ReservationCounter::Release(uint64_t ino, uint64_t n) {
  if (n == 0) return 0;
  base::MutexLock lock(&mu_);
  auto it = per_inode_.find(ino);
  if (it == per_inode_.end() || it->second < n) return -EINVAL;
  if (int err = allocator_->Unreserve(n); err != 0) return err;
  Drop(ino, n);
  return 0;
}

uint64_t ReservationCounter::ReleaseAll(uint64_t ino) {
  base::MutexLock lock(&mu_);
  auto it = per_inode_.find(ino);
  if (it == per_inode_.end()) return 0;
  const uint64_t n = it->second;
  if (allocator_->Unreserve(n) != 0) return 0;  // Check() will report it
  Drop(ino, n);
  return n;
}

int ReservationCounter::AllocReserved(uint64_t ino, AllocRequest req,
                                      BlockRange* out) {
  base::MutexLock lock(&mu_);
  auto it = per_inode_.find(ino);
  const uint64_t held = it == per_inode_.end() ? 0 : it->second;
  if (req.want_blocks == 0 || req.want_blocks > held) return -EINVAL;
  req.from_reservation = true;
  BlockRange got;
  if (int err = allocator_->Alloc(req, &got); err != 0) return err;
  Drop(ino, got.len);
  *out = got;
  return 0;
}

uint64_t ReservationCounter::Reserved(uint64_t ino) const {
  base::MutexLock lock(&mu_);
  auto it = per_inode_.find(ino);
  return it == per_inode_.end() ? 0 : it->second;
}

uint64_t ReservationCounter::TotalReserved() const {
  base::MutexLock lock(&mu_);
  return total_;
}

size_t ReservationCounter::NumInodes() const {
  base::MutexLock lock(&mu_);
  return per_inode_.size();
}

void ReservationCounter::ForEach(
    absl::FunctionRef<void(uint64_t, uint64_t)> fn) const {
  base::MutexLock lock(&mu_);
  for (const auto& [ino, n] : per_inode_) fn(ino, n);
}

absl::Status ReservationCounter::Check() const {
  base::MutexLock lock(&mu_);
  uint64_t sum = 0;
  for (const auto& [ino, n] : per_inode_) {
    if (n == 0) {
      return base::ErrnoStatus(
          -EUCLEAN,
          absl::StrCat("reservations: inode ", ino, " has an empty entry"));
    }
    sum += n;
  }
  if (sum != total_) {
    return base::ErrnoStatus(-EUCLEAN,
                             absl::StrCat("reservations: per-inode sum ", sum,
                                          " but total ", total_));
  }
  const uint64_t in_allocator = allocator_->ReservedBlocks();
  if (in_allocator != total_) {
    return base::ErrnoStatus(
        -EUCLEAN, absl::StrCat("reservations: total ", total_,
                               " but the allocator holds ", in_allocator));
  }
  return absl::OkStatus();
}

absl::Status ReservationCounter::CheckInode(uint64_t ino,
                                            uint64_t expected_blocks) const {
  const uint64_t held = Reserved(ino);
  if (held == expected_blocks) return absl::OkStatus();
  return base::ErrnoStatus(
      -EUCLEAN, absl::StrCat("reservations: inode ", ino, " holds ", held,
                             " reserved blocks but has ", expected_blocks,
                             " delalloc blocks"));
}

}  // namespace fs
