#include "fs/refcount.h"

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/errno.h"

namespace fs {
namespace {

absl::Status Corrupt(const std::string& what) {
  return base::ErrnoStatus(-EUCLEAN, absl::StrCat("refcount index: ", what));
}

// Appends [start, start + len) to `out`, merging with the last range.
void AppendMerged(std::vector<BlockRange>* out, uint64_t start, uint64_t len) {
  if (out == nullptr) return;
  if (!out->empty() && out->back().end() == start) {
    out->back().len += len;
    return;
  }
  out->push_back(BlockRange{start, len});
}

}  // namespace

bool RefcountIndex::ValidRange(uint64_t start, uint64_t len) {
  return len > 0 && start < kMaxDevBlocks && len <= kMaxDevBlocks - start;
}

// --- internal editing helpers (btree iterators die on insert/erase) ---

std::vector<RefcountRecord> RefcountIndex::Pieces(uint64_t start,
                                                  uint64_t end) const {
  std::vector<RefcountRecord> out;
  uint64_t pos = start;
  auto it = map_.upper_bound(start);
  if (it != map_.begin() &&
      std::prev(it)->first + std::prev(it)->second.len > start) {
    --it;
  }
  for (; pos < end; ++it) {
    const uint64_t next = it == map_.end() ? end : std::min(end, it->first);
    if (next > pos) {  // a gap: count 1
      out.push_back(RefcountRecord{pos, next - pos, 1});
      pos = next;
    }
    if (it == map_.end() || pos >= end) break;
    const uint64_t rec_end = std::min(end, it->first + it->second.len);
    out.push_back(RefcountRecord{pos, rec_end - pos, it->second.count});
    pos = rec_end;
  }
  return out;
}

void RefcountIndex::SplitAt(uint64_t block) {
  auto it = map_.upper_bound(block);
  if (it == map_.begin()) return;
  --it;
  const uint64_t s = it->first;
  const Rec r = it->second;
  if (s >= block || s + r.len <= block) return;
  it->second.len = block - s;
  map_.emplace(block, Rec{s + r.len - block, r.count});
}

void RefcountIndex::MergeRange(uint64_t start, uint64_t end) {
  auto it = map_.lower_bound(start);
  if (it != map_.begin()) --it;
  while (it != map_.end() && it->first <= end) {
    auto next = std::next(it);
    if (next == map_.end()) return;
    if (it->first + it->second.len == next->first &&
        it->second.count == next->second.count) {
      it->second.len += next->second.len;
      it = std::prev(map_.erase(next));
    } else {
      it = next;
    }
  }
}

void RefcountIndex::Replace(uint64_t start, uint64_t end,
                            const std::vector<RefcountRecord>& pieces) {
  SplitAt(start);
  SplitAt(end);
  auto it = map_.lower_bound(start);
  while (it != map_.end() && it->first < end) {
    shared_blocks_ -= it->second.len;
    it = map_.erase(it);
  }
  for (const RefcountRecord& p : pieces) {
    if (p.count < 2) continue;
    map_.emplace(p.start, Rec{p.len, p.count});
    shared_blocks_ += p.len;
  }
  MergeRange(start, end);
}

// --- updates ---

int RefcountIndex::Increment(uint64_t start, uint64_t len) {
  if (!ValidRange(start, len)) return -EINVAL;
  base::MutexLock lock(&mu_);
  std::vector<RefcountRecord> pieces = Pieces(start, start + len);
  for (RefcountRecord& p : pieces) {
    if (p.count >= kMaxRefcount) return -EOVERFLOW;
    p.count += 1;
  }
  Replace(start, start + len, pieces);
  return 0;
}

int RefcountIndex::Decrement(uint64_t start, uint64_t len,
                             std::vector<BlockRange>* to_free,
                             std::vector<BlockRange>* still_shared) {
  if (!ValidRange(start, len)) return -EINVAL;
  base::MutexLock lock(&mu_);
  std::vector<RefcountRecord> pieces = Pieces(start, start + len);
  for (RefcountRecord& p : pieces) {
    if (p.count == 1) {
      AppendMerged(to_free, p.start, p.len);
    } else if (p.count > 2) {
      AppendMerged(still_shared, p.start, p.len);
    }
    p.count -= 1;
  }
  Replace(start, start + len, pieces);
  return 0;
}

int RefcountIndex::Insert(const RefcountRecord& rec) {
  if (!ValidRange(rec.start, rec.len) || rec.count < 2 ||
      rec.count > kMaxRefcount) {
    return -EINVAL;
  }
  base::MutexLock lock(&mu_);
  for (const RefcountRecord& p : Pieces(rec.start, rec.end())) {
    if (p.count != 1) return -EEXIST;
  }
  map_.emplace(rec.start, Rec{rec.len, rec.count});
  shared_blocks_ += rec.len;
  MergeRange(rec.start, rec.end());
  return 0;
}

// --- queries ---

bool RefcountIndex::IsShared(uint64_t start, uint64_t len) const {
  BlockRange unused;
  return FindShared(start, len, &unused);
}

bool RefcountIndex::FindShared(uint64_t start, uint64_t len,
                               BlockRange* out) const {
  if (len == 0) return false;
  const uint64_t end = len > ~uint64_t{0} - start ? ~uint64_t{0} : start + len;
  base::MutexLock lock(&mu_);
  auto it = map_.upper_bound(start);
  if (it != map_.begin() &&
      std::prev(it)->first + std::prev(it)->second.len > start) {
    --it;
  }
  if (it == map_.end() || it->first >= end) return false;
  const uint64_t run_start = std::max(start, it->first);
  uint64_t run_end = it->first + it->second.len;
  for (++it; it != map_.end() && it->first == run_end && run_end < end; ++it) {
    run_end += it->second.len;
  }
  *out = BlockRange{run_start, std::min(run_end, end) - run_start};
  return true;
}

uint32_t RefcountIndex::Count(uint64_t block) const {
  base::MutexLock lock(&mu_);
  auto it = map_.upper_bound(block);
  if (it == map_.begin()) return 1;
  --it;
  return it->first + it->second.len > block ? it->second.count : 1;
}

void RefcountIndex::ForEach(
    absl::FunctionRef<void(const RefcountRecord&)> fn) const {
  base::MutexLock lock(&mu_);
  for (const auto& kv : map_) {
    fn(RefcountRecord{kv.first, kv.second.len, kv.second.count});
  }
}

size_t RefcountIndex::NumRecords() const {
  base::MutexLock lock(&mu_);
  return map_.size();
}

uint64_t RefcountIndex::SharedBlocks() const {
  base::MutexLock lock(&mu_);
  return shared_blocks_;
}

// --- invariants ---

absl::Status RefcountIndex::Check() const {
  base::MutexLock lock(&mu_);
  uint64_t sum = 0;
  const RefcountRecord* prev = nullptr;
  RefcountRecord prev_storage;
  for (const auto& kv : map_) {
    RefcountRecord r{kv.first, kv.second.len, kv.second.count};
    const std::string what =
        absl::StrCat("record [", r.start, "+", r.len, "]x", r.count);
    if (!ValidRange(r.start, r.len)) return Corrupt(what + " bad range");
    if (r.count < 2 || r.count > kMaxRefcount) {
      return Corrupt(what + " count out of [2, MAXREFCOUNT]");
    }
    if (prev != nullptr && prev->end() > r.start) {
      return Corrupt(what + " overlaps its predecessor");
    }
    if (prev != nullptr && prev->end() == r.start && prev->count == r.count) {
      return Corrupt(what + " not merged with its predecessor");
    }
    sum += r.len;
    prev_storage = r;
    prev = &prev_storage;
  }
  if (sum != shared_blocks_) {
    return Corrupt(absl::StrCat("shared block counter ", shared_blocks_,
                                " but records hold ", sum));
  }
  return absl::OkStatus();
}

// --- cross-structure check ---

namespace {

// Walks a sorted, non-overlapping list of records with increasing x.
class Cursor {
 public:
  explicit Cursor(const std::vector<RefcountRecord>& v) : v_(v) {}
  // The count of the record containing x, 0 if none.
  uint32_t At(uint64_t x) {
    while (i_ < v_.size() && v_[i_].end() <= x) ++i_;
    return i_ < v_.size() && v_[i_].start <= x ? v_[i_].count : 0;
  }

 private:
  const std::vector<RefcountRecord>& v_;
  size_t i_ = 0;
};

// Sweeps the owned ranges into records of their reference counts (>= 1).
absl::Status OwnedToRecords(const std::vector<BlockRange>& owned,
                            uint64_t dev_end,
                            std::vector<RefcountRecord>* out) {
  std::vector<std::pair<uint64_t, int>> events;
  events.reserve(owned.size() * 2);
  for (const BlockRange& r : owned) {
    if (r.len == 0 || r.start > dev_end || r.len > dev_end - r.start) {
      return Corrupt(absl::StrCat("owned range [", r.start, "+", r.len,
                                  "] outside the device (end ", dev_end, ")"));
    }
    events.push_back({r.start, +1});
    events.push_back({r.end(), -1});
  }
  std::sort(events.begin(), events.end());
  int64_t refs = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    refs += events[i].second;
    const uint64_t from = events[i].first;
    if (i + 1 == events.size() || events[i + 1].first == from || refs == 0) {
      continue;
    }
    out->push_back(RefcountRecord{from, events[i + 1].first - from,
                                  static_cast<uint32_t>(refs)});
  }
  return absl::OkStatus();
}

// The first rule broken by the elementary interval [x, y), if any.
absl::Status CheckInterval(uint64_t x, uint64_t y, uint32_t refs,
                           uint32_t stored, bool is_free, bool in_alloc) {
  const std::string where = absl::StrCat("blocks [", x, ", ", y, ")");
  if (in_alloc && is_free && refs > 0) {
    return Corrupt(
        absl::StrCat(where, " are free and referenced ", refs, " times"));
  }
  if (in_alloc && !is_free && refs == 0) {
    return Corrupt(where + " are neither free nor referenced (leaked)");
  }
  const uint32_t want = refs >= 2 ? refs : 0;
  if (stored != want) {
    return Corrupt(absl::StrCat(where, " are referenced ", refs,
                                " times but the refcount record says ",
                                stored == 0 ? 1 : stored));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CrossCheckBlocks(const Allocator& alloc,
                              const RefcountIndex& refcounts,
                              const std::vector<BlockRange>& owned) {
  std::vector<RefcountRecord> refs, stored, free_list;
  absl::Status st = OwnedToRecords(owned, alloc.end_block(), &refs);
  if (!st.ok()) return st;
  refcounts.ForEach([&](const RefcountRecord& r) { stored.push_back(r); });
  alloc.ForEachFree([&](const BlockRange& r) {
    free_list.push_back(RefcountRecord{r.start, r.len, 1});
  });
  std::vector<uint64_t> points = {alloc.first_block(), alloc.end_block()};
  for (const auto* list : {&refs, &stored, &free_list}) {
    for (const RefcountRecord& r : *list) {
      points.push_back(r.start);
      points.push_back(r.end());
    }
  }
  std::sort(points.begin(), points.end());
  points.erase(std::unique(points.begin(), points.end()), points.end());
  Cursor ref_at(refs), stored_at(stored), free_at(free_list);
  for (size_t i = 0; i + 1 < points.size(); ++i) {
    const uint64_t x = points[i];
    const bool in_alloc = x >= alloc.first_block() && x < alloc.end_block();
    st = CheckInterval(x, points[i + 1], ref_at.At(x), stored_at.At(x),
                       free_at.At(x) != 0, in_alloc);
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

}  // namespace fs
