#include "fs/extent_map.h"

#include <cerrno>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errno.h"

namespace fs {

const char* ExtentStateName(ExtentState state) {
  switch (state) {
    case ExtentState::kHole:
      return "hole";
    case ExtentState::kDelalloc:
      return "delalloc";
    case ExtentState::kUnwritten:
      return "unwritten";
    case ExtentState::kWritten:
      return "written";
  }
  return "invalid";
}

namespace {

std::string Describe(const Extent& e) {
  return absl::StrCat(
      "[", e.file_off, "+", e.len, " ", ExtentStateName(e.state), " @",
      e.dev_block == kNoDevBlock ? std::string("-") : absl::StrCat(e.dev_block),
      "]");
}

absl::Status Corrupt(const std::string& what) {
  return base::ErrnoStatus(-EUCLEAN, absl::StrCat("extent map: ", what));
}

// 0 if (dev_block, len, state) may be stored, else -EINVAL.
int ValidateTarget(uint64_t len, uint64_t dev_block, ExtentState state) {
  if (state == ExtentState::kDelalloc) {
    return dev_block == kNoDevBlock ? 0 : -EINVAL;
  }
  if (state != ExtentState::kWritten && state != ExtentState::kUnwritten) {
    return -EINVAL;
  }
  if (dev_block >= kMaxDevBlocks || len > kMaxDevBlocks - dev_block) {
    return -EINVAL;
  }
  return 0;
}

}  // namespace

ExtentMap::ExtentMap(ExtentMap&& other) noexcept
    : map_(std::move(other.map_)), seq_(other.Sequence()) {
  for (int i = 0; i < 4; ++i) {
    blocks_[i] = other.blocks_[i];
    other.blocks_[i] = 0;
  }
  other.map_.clear();
}

ExtentMap& ExtentMap::operator=(ExtentMap&& other) noexcept {
  if (this == &other) return *this;
  map_ = std::move(other.map_);
  other.map_.clear();
  for (int i = 0; i < 4; ++i) {
    blocks_[i] = other.blocks_[i];
    other.blocks_[i] = 0;
  }
  seq_.store(other.Sequence(), std::memory_order_release);
  return *this;
}

Extent ExtentMap::ToExtent(const Map_::value_type& kv) {
  return Extent{kv.first, kv.second.len, kv.second.dev_block, kv.second.state};
}

bool ExtentMap::ValidRange(uint64_t off, uint64_t len) {
  return len > 0 && off < kMaxFileBlocks && len <= kMaxFileBlocks - off;
}

bool ExtentMap::Mergeable(const Extent& a, const Extent& b) {
  if (a.file_end() != b.file_off || a.state != b.state) return false;
  if (a.state == ExtentState::kDelalloc) return true;
  return a.dev_block + a.len == b.dev_block;
}

// --- queries ---

Extent ExtentMap::Lookup(uint64_t off) const {
  Extent hole{off, 0, kNoDevBlock, ExtentState::kHole};
  if (off >= kMaxFileBlocks) return hole;
  auto it = map_.upper_bound(off);
  if (it != map_.begin()) {
    auto prev = std::prev(it);
    if (prev->first + prev->second.len > off) return ToExtent(*prev);
  }
  hole.len = (it == map_.end() ? kMaxFileBlocks : it->first) - off;
  return hole;
}

bool ExtentMap::NextExtent(uint64_t off, Extent* out) const {
  auto it = map_.upper_bound(off);
  if (it != map_.begin()) {
    auto prev = std::prev(it);
    if (prev->first + prev->second.len > off) it = prev;
  }
  if (it == map_.end()) return false;
  *out = ToExtent(*it);
  return true;
}

void ExtentMap::ForEachInRange(
    uint64_t off, uint64_t len,
    absl::FunctionRef<void(const Extent&)> fn) const {
  if (len == 0) return;
  const uint64_t end = len > ~uint64_t{0} - off ? ~uint64_t{0} : off + len;
  auto it = map_.upper_bound(off);
  if (it != map_.begin()) --it;
  for (; it != map_.end() && it->first < end; ++it) {
    Extent e = ToExtent(*it);
    if (e.file_end() <= off) continue;
    uint64_t lo = std::max(off, e.file_off);
    uint64_t hi = std::min(end, e.file_end());
    if (e.allocated()) e.dev_block += lo - e.file_off;
    e.file_off = lo;
    e.len = hi - lo;
    fn(e);
  }
}

void ExtentMap::ForEach(absl::FunctionRef<void(const Extent&)> fn) const {
  for (const auto& kv : map_) fn(ToExtent(kv));
}

uint64_t ExtentMap::BlocksInState(ExtentState state) const {
  if (state == ExtentState::kHole) return 0;
  return blocks_[static_cast<int>(state)];
}

// --- internal editing helpers (iterators die on every insert/erase) ---

ExtentMap::Iter ExtentMap::Put(const Extent& e) {
  blocks_[static_cast<int>(e.state)] += e.len;
  return map_.emplace(e.file_off, Rec{e.len, e.dev_block, e.state}).first;
}

ExtentMap::Iter ExtentMap::Erase(Iter it) {
  blocks_[static_cast<int>(it->second.state)] -= it->second.len;
  return map_.erase(it);
}

// Splits the extent that strictly contains `off` into [start, off) and
// [off, end). Contents are unchanged.
void ExtentMap::SplitAt(uint64_t off) {
  auto it = map_.upper_bound(off);
  if (it == map_.begin()) return;
  --it;
  Extent e = ToExtent(*it);
  if (e.file_off >= off || e.file_end() <= off) return;
  it->second.len = off - e.file_off;
  uint64_t dev = e.allocated() ? e.dev_block + (off - e.file_off) : kNoDevBlock;
  map_.emplace(off, Rec{e.file_end() - off, dev, e.state});
}

// Merges `it` with its successor if compatible; returns the iterator to the
// (possibly grown) extent at it's key.
ExtentMap::Iter ExtentMap::MergeWithNext(Iter it) {
  auto next = std::next(it);
  if (next == map_.end() || !Mergeable(ToExtent(*it), ToExtent(*next))) {
    return it;
  }
  it->second.len += next->second.len;
  return std::prev(map_.erase(next));
}

// Restores canonical form for extents touching [off, end].
void ExtentMap::MergeRange(uint64_t off, uint64_t end) {
  auto it = map_.lower_bound(off);
  if (it != map_.begin()) --it;
  while (it != map_.end() && it->first <= end) {
    const uint64_t len_before = it->second.len;
    it = MergeWithNext(it);
    if (it->second.len == len_before) ++it;
  }
}

// REQUIRES: SplitAt(off) and SplitAt(end) were called.
void ExtentMap::RemoveRange(uint64_t off, uint64_t end,
                            std::vector<Extent>* removed) {
  auto it = map_.lower_bound(off);
  while (it != map_.end() && it->first < end) {
    if (removed != nullptr) removed->push_back(ToExtent(*it));
    it = Erase(it);
  }
}

// --- updates ---

int ExtentMap::Map(uint64_t off, uint64_t len, uint64_t dev_block,
                   ExtentState state, std::vector<Extent>* replaced) {
  if (!ValidRange(off, len)) return -EINVAL;
  if (int err = ValidateTarget(len, dev_block, state); err != 0) return err;
  const uint64_t end = off + len;
  SplitAt(off);
  SplitAt(end);
  RemoveRange(off, end, replaced);
  Put(Extent{off, len, dev_block, state});
  MergeRange(off, end);
  Bump();
  return 0;
}

int ExtentMap::Unmap(uint64_t off, uint64_t len, std::vector<Extent>* removed) {
  if (!ValidRange(off, len)) return -EINVAL;
  const uint64_t end = off + len;
  const size_t before = map_.size();
  const uint64_t blocks_before = blocks_[1] + blocks_[2] + blocks_[3];
  SplitAt(off);
  SplitAt(end);
  RemoveRange(off, end, removed);
  if (map_.size() != before ||
      blocks_[1] + blocks_[2] + blocks_[3] != blocks_before) {
    Bump();
  }
  return 0;
}

int64_t ExtentMap::ConvertState(uint64_t off, uint64_t len, ExtentState from,
                                ExtentState to) {
  auto allowed = [](ExtentState s) {
    return s == ExtentState::kWritten || s == ExtentState::kUnwritten;
  };
  if (!ValidRange(off, len) || !allowed(from) || !allowed(to)) return -EINVAL;
  if (from == to) return 0;
  const uint64_t end = off + len;
  SplitAt(off);
  SplitAt(end);
  int64_t converted = 0;
  for (auto it = map_.lower_bound(off); it != map_.end() && it->first < end;
       ++it) {
    if (it->second.state != from) continue;
    blocks_[static_cast<int>(from)] -= it->second.len;
    blocks_[static_cast<int>(to)] += it->second.len;
    it->second.state = to;
    converted += static_cast<int64_t>(it->second.len);
  }
  MergeRange(off, end);
  if (converted > 0) Bump();
  return converted;
}

int64_t ExtentMap::PunchDelalloc(uint64_t off, uint64_t len,
                                 std::vector<Extent>* punched) {
  if (!ValidRange(off, len)) return -EINVAL;
  const uint64_t end = off + len;
  SplitAt(off);
  SplitAt(end);
  int64_t nr = 0;
  auto it = map_.lower_bound(off);
  while (it != map_.end() && it->first < end) {
    if (it->second.state != ExtentState::kDelalloc) {
      ++it;
      continue;
    }
    if (punched != nullptr) punched->push_back(ToExtent(*it));
    nr += static_cast<int64_t>(it->second.len);
    it = Erase(it);
  }
  MergeRange(off, end);
  if (nr > 0) Bump();
  return nr;
}

// 0 if every extent at or after `off` may move by `delta`, else -EINVAL.
int ExtentMap::CheckShift(uint64_t off, int64_t delta) const {
  if (off >= kMaxFileBlocks) return -EINVAL;
  if (delta == 0 || map_.empty()) return 0;
  if (delta < 0) {
    const uint64_t down = static_cast<uint64_t>(-(delta + 1)) + 1;
    if (down > off) return -EINVAL;
    auto it = map_.lower_bound(off);
    if (it != map_.begin() &&
        std::prev(it)->first + std::prev(it)->second.len > off - down) {
      return -EINVAL;  // would collapse onto (or split) data below `off`
    }
    return 0;
  }
  const uint64_t up = static_cast<uint64_t>(delta);
  const auto& last = *map_.rbegin();
  if (last.first + last.second.len <= off) return 0;  // nothing moves
  if (up >= kMaxFileBlocks ||
      last.first + last.second.len > kMaxFileBlocks - up)
    return -EINVAL;
  return 0;
}

// The moved extents keep their order and land beyond every extent that
// stays, so they are re-inserted at the end of the tree (amortised O(1)
// each): the whole shift is O(log n + moved), never O(n log n).
int ExtentMap::Shift(uint64_t off, int64_t delta) {
  if (int err = CheckShift(off, delta); err != 0) return err;
  if (delta == 0 || map_.empty()) return 0;
  if (delta > 0) SplitAt(off);  // xfs_bmap_split_extent
  auto first = map_.lower_bound(off);
  if (first == map_.end()) return 0;
  std::vector<Map_::value_type> moved(first, map_.end());
  map_.erase(first, map_.end());
  for (const auto& kv : moved) {
    const uint64_t to =
        static_cast<uint64_t>(static_cast<int64_t>(kv.first) + delta);
    map_.emplace_hint(map_.end(), to, kv.second);
  }
  // Collapse: the first moved extent may now continue its left neighbour
  // (xfs_bmap_shift_can_merge); insert leaves a gap, nothing to merge.
  if (delta < 0) {
    const uint64_t seam =
        static_cast<uint64_t>(static_cast<int64_t>(off) + delta);
    MergeRange(seam, seam);
  }
  Bump();
  return 0;
}

int ExtentMap::Insert(const Extent& extent) {
  if (!ValidRange(extent.file_off, extent.len)) return -EINVAL;
  if (int err = ValidateTarget(extent.len, extent.dev_block, extent.state);
      err != 0) {
    return err;
  }
  Extent at = Lookup(extent.file_off);
  if (at.state != ExtentState::kHole || at.len < extent.len) return -EEXIST;
  Put(extent);
  MergeRange(extent.file_off, extent.file_end());
  Bump();
  return 0;
}

void ExtentMap::Clear() {
  if (map_.empty()) return;
  map_.clear();
  for (uint64_t& b : blocks_) b = 0;
  Bump();
}

// --- invariants ---

absl::Status ExtentMap::CheckCounters() const {
  uint64_t sums[4] = {0, 0, 0, 0};
  for (const auto& kv : map_) {
    sums[static_cast<int>(kv.second.state)] += kv.second.len;
  }
  for (int i = 0; i < 4; ++i) {
    if (sums[i] != blocks_[i]) {
      return Corrupt(absl::StrCat(ExtentStateName(static_cast<ExtentState>(i)),
                                  " block counter ", blocks_[i],
                                  " but extents hold ", sums[i]));
    }
  }
  return absl::OkStatus();
}

absl::Status ExtentMap::Check(uint64_t dev_first, uint64_t dev_end) const {
  const Extent* prev = nullptr;
  Extent prev_storage;
  for (const auto& kv : map_) {
    Extent e = ToExtent(kv);
    if (!ValidRange(e.file_off, e.len)) {
      return Corrupt(absl::StrCat("bad file range ", Describe(e)));
    }
    if (e.state == ExtentState::kHole ||
        ValidateTarget(e.len, e.dev_block, e.state) != 0) {
      return Corrupt(absl::StrCat("bad state/device block ", Describe(e)));
    }
    if (e.allocated() && (e.dev_block < dev_first || e.dev_block > dev_end ||
                          e.len > dev_end - e.dev_block)) {
      return Corrupt(absl::StrCat("extent ", Describe(e), " outside device [",
                                  dev_first, ", ", dev_end, ")"));
    }
    if (prev != nullptr && prev->file_end() > e.file_off) {
      return Corrupt(
          absl::StrCat("extents overlap: ", Describe(*prev), " ", Describe(e)));
    }
    if (prev != nullptr && Mergeable(*prev, e)) {
      return Corrupt(absl::StrCat("mergeable neighbours not merged: ",
                                  Describe(*prev), " ", Describe(e)));
    }
    prev_storage = e;
    prev = &prev_storage;
  }
  return CheckCounters();
}

}  // namespace fs
