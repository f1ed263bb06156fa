#include "fs/allocator.h"

#include <algorithm>
#include <cerrno>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "base/errno.h"

namespace fs {
namespace {

// How many free extents TryNear examines on each side of the hint before
// giving up on locality (xfs_alloc_ag_vextent_near bounds its walk too).
constexpr int kNearScan = 32;

absl::Status Corrupt(const std::string& what) {
  return base::ErrnoStatus(-EUCLEAN, absl::StrCat("allocator: ", what));
}

}  // namespace

Allocator::Allocator(uint64_t first_block, uint64_t end_block, Init init)
    : first_block_(first_block), end_block_(std::max(first_block, end_block)) {
  base::MutexLock lock(&mu_);
  if (init == Init::kAllFree && end_block_ > first_block_) {
    AddFree(first_block_, end_block_ - first_block_);
  }
}

bool Allocator::InRange(uint64_t start, uint64_t len) const {
  return len > 0 && start >= first_block_ && start < end_block_ &&
         len <= end_block_ - start;
}

// --- the two indexes ---

void Allocator::AddFree(uint64_t start, uint64_t len) {
  free_blocks_ += len;
  auto next = by_start_.lower_bound(start);
  if (next != by_start_.end() && next->first == start + len) {
    len += next->second;
    by_size_.erase({next->second, next->first});
    next = by_start_.erase(next);
  }
  if (next != by_start_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      by_size_.erase({prev->second, prev->first});
      start = prev->first;
      len += prev->second;
      by_start_.erase(prev);
    }
  }
  by_start_.emplace(start, len);
  by_size_.insert({len, start});
}

// REQUIRES: [start, start + len) lies inside one free extent.
void Allocator::RemoveFree(uint64_t start, uint64_t len) {
  auto it = FindContaining(start);
  const uint64_t s = it->first;
  const uint64_t l = it->second;
  by_start_.erase(it);
  by_size_.erase({l, s});
  free_blocks_ -= len;
  if (start > s) {
    by_start_.emplace(s, start - s);
    by_size_.insert({start - s, s});
  }
  if (start + len < s + l) {
    by_start_.emplace(start + len, s + l - start - len);
    by_size_.insert({s + l - start - len, start + len});
  }
}

Allocator::ByStart::const_iterator Allocator::FindContaining(
    uint64_t block) const {
  auto it = by_start_.upper_bound(block);
  if (it == by_start_.begin()) return by_start_.end();
  --it;
  return it->first + it->second > block ? it : by_start_.end();
}

// --- allocation policies ---

namespace {

// The aligned run that starts first in free extent [s, s + l): its start
// and how many blocks it has (0 if none).
BlockRange FirstAligned(uint64_t s, uint64_t l, uint64_t align) {
  const uint64_t a = (s + align - 1) / align * align;
  return a >= s + l ? BlockRange{a, 0} : BlockRange{a, s + l - a};
}

}  // namespace

bool Allocator::TryExact(const AllocRequest& req, uint64_t limit,
                         BlockRange* out) const {
  if (req.hint_block == kNoHint || req.hint_block % req.align_blocks != 0) {
    return false;
  }
  auto it = FindContaining(req.hint_block);
  if (it == by_start_.end()) return false;
  const uint64_t room = it->first + it->second - req.hint_block;
  if (room < req.min_blocks) return false;
  *out = BlockRange{req.hint_block, std::min(room, limit)};
  return true;
}

bool Allocator::TryNear(const AllocRequest& req, uint64_t limit,
                        BlockRange* out) const {
  if (req.hint_block == kNoHint) return false;
  const uint64_t hint = req.hint_block;
  const uint64_t align = req.align_blocks;
  auto right = by_start_.lower_bound(hint);
  uint64_t best_dist = ~uint64_t{0};
  auto it = right;
  for (int i = 0; i < kNearScan && it != by_start_.end(); ++i, ++it) {
    BlockRange run = FirstAligned(it->first, it->second, align);
    if (run.len < limit) continue;
    best_dist = run.start - hint;
    *out = BlockRange{run.start, limit};
    break;
  }
  it = right;
  for (int i = 0; i < kNearScan && it != by_start_.begin(); ++i) {
    --it;
    if (it->second < limit) continue;
    const uint64_t end = it->first + it->second;
    const uint64_t start = (end - limit) / align * align;  // highest aligned
    if (start < it->first) continue;
    const uint64_t dist = end > hint ? 0 : hint - end;
    if (dist < best_dist) {
      best_dist = dist;
      *out = BlockRange{start, limit};
    }
    break;
  }
  return best_dist != ~uint64_t{0};
}

bool Allocator::TryBySize(const AllocRequest& req, uint64_t limit,
                          BlockRange* out) const {
  // Extents of [limit, limit + align - 1) blocks fit only if well placed;
  // any extent of limit + align - 1 or more blocks always fits.
  for (auto it = by_size_.lower_bound({limit, 0}); it != by_size_.end(); ++it) {
    BlockRange run = FirstAligned(it->second, it->first, req.align_blocks);
    if (run.len >= limit) {
      *out = BlockRange{run.start, limit};
      return true;
    }
  }
  return false;
}

bool Allocator::TryLongest(const AllocRequest& req, uint64_t limit,
                           BlockRange* out) const {
  BlockRange best{0, 0};
  for (auto it = by_size_.rbegin(); it != by_size_.rend(); ++it) {
    if (it->first < req.min_blocks || it->first <= best.len) break;
    BlockRange run = FirstAligned(it->second, it->first, req.align_blocks);
    if (run.len > best.len) best = run;
  }
  if (best.len < req.min_blocks) return false;
  *out = BlockRange{best.start, std::min(best.len, limit)};
  return true;
}

int Allocator::Alloc(const AllocRequest& req, BlockRange* out) {
  AllocRequest r = req;
  if (r.min_blocks == 0) r.min_blocks = 1;
  if (r.align_blocks == 0) r.align_blocks = 1;
  if (r.want_blocks == 0 || r.min_blocks > r.want_blocks ||
      r.align_blocks > kMaxDevBlocks) {
    return -EINVAL;
  }
  base::MutexLock lock(&mu_);
  uint64_t limit = r.want_blocks;
  if (r.from_reservation) {
    if (r.want_blocks > reserved_blocks_) return -EINVAL;
  } else {
    const uint64_t avail = free_blocks_ - reserved_blocks_;
    if (avail < r.min_blocks) return -ENOSPC;
    limit = std::min(limit, avail);
  }
  BlockRange got;
  if (!TryExact(r, limit, &got) && !TryNear(r, limit, &got) &&
      !TryBySize(r, limit, &got) && !TryLongest(r, limit, &got)) {
    return -ENOSPC;
  }
  RemoveFree(got.start, got.len);
  if (r.from_reservation) reserved_blocks_ -= got.len;
  *out = got;
  return 0;
}

// --- freeing and rebuilding ---

int Allocator::Free(uint64_t start, uint64_t len) {
  if (!InRange(start, len)) return -EINVAL;
  base::MutexLock lock(&mu_);
  if (FindContaining(start) != by_start_.end()) return -EUCLEAN;
  auto next = by_start_.upper_bound(start);
  if (next != by_start_.end() && next->first < start + len) return -EUCLEAN;
  AddFree(start, len);
  return 0;
}

int Allocator::MarkUsed(uint64_t start, uint64_t len) {
  if (!InRange(start, len)) return -EINVAL;
  base::MutexLock lock(&mu_);
  auto it = FindContaining(start);
  if (it == by_start_.end() || it->first + it->second < start + len) {
    return -EUCLEAN;
  }
  if (free_blocks_ - len < reserved_blocks_) return -ENOSPC;
  RemoveFree(start, len);
  return 0;
}

bool Allocator::IsFree(uint64_t start, uint64_t len) const {
  if (!InRange(start, len)) return false;
  base::MutexLock lock(&mu_);
  auto it = FindContaining(start);
  return it != by_start_.end() && it->first + it->second >= start + len;
}

// --- reservations and counters ---

int Allocator::Reserve(uint64_t n) {
  base::MutexLock lock(&mu_);
  if (free_blocks_ - reserved_blocks_ < n) return -ENOSPC;
  reserved_blocks_ += n;
  return 0;
}

int Allocator::Unreserve(uint64_t n) {
  base::MutexLock lock(&mu_);
  if (n > reserved_blocks_) return -EINVAL;
  reserved_blocks_ -= n;
  return 0;
}

uint64_t Allocator::FreeBlocks() const {
  base::MutexLock lock(&mu_);
  return free_blocks_;
}

uint64_t Allocator::ReservedBlocks() const {
  base::MutexLock lock(&mu_);
  return reserved_blocks_;
}

uint64_t Allocator::AvailableBlocks() const {
  base::MutexLock lock(&mu_);
  return free_blocks_ - reserved_blocks_;
}

uint64_t Allocator::NumFreeExtents() const {
  base::MutexLock lock(&mu_);
  return by_start_.size();
}

uint64_t Allocator::LongestFreeExtent() const {
  base::MutexLock lock(&mu_);
  return by_size_.empty() ? 0 : by_size_.rbegin()->first;
}

void Allocator::ForEachFree(
    absl::FunctionRef<void(const BlockRange&)> fn) const {
  base::MutexLock lock(&mu_);
  for (const auto& kv : by_start_) fn(BlockRange{kv.first, kv.second});
}

// --- invariants ---

absl::Status Allocator::CheckIndexes() const {
  if (by_size_.size() != by_start_.size()) {
    return Corrupt(absl::StrCat("by-size index has ", by_size_.size(),
                                " extents, by-start index ", by_start_.size()));
  }
  uint64_t sum = 0;
  uint64_t prev_end = 0;
  bool first = true;
  for (const auto& [start, len] : by_start_) {
    const std::string what =
        absl::StrCat("free extent [", start, "+", len, "]");
    if (!InRange(start, len)) return Corrupt(what + " outside the device");
    if (!first && prev_end > start) return Corrupt(what + " overlaps");
    if (!first && prev_end == start) return Corrupt(what + " not merged");
    if (by_size_.count({len, start}) == 0) {
      return Corrupt(what + " missing from the by-size index");
    }
    sum += len;
    prev_end = start + len;
    first = false;
  }
  if (sum != free_blocks_) {
    return Corrupt(absl::StrCat("free counter ", free_blocks_,
                                " but free extents hold ", sum));
  }
  return absl::OkStatus();
}

absl::Status Allocator::Check() const {
  base::MutexLock lock(&mu_);
  absl::Status st = CheckIndexes();
  if (!st.ok()) return st;
  if (reserved_blocks_ > free_blocks_) {
    return Corrupt(absl::StrCat("reserved ", reserved_blocks_, " exceeds free ",
                                free_blocks_));
  }
  return absl::OkStatus();
}

}  // namespace fs
