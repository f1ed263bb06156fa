#include "iomap/pagecache.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "iomap/iomap.h"

namespace iomap {

// ---------------------------------------------------------------------------
// PageCache

PageCache::PageCache(const PageCacheOptions& options)
    : budget_bytes_(options.budget_bytes) {}

PageCache* PageCache::Global() {
  static PageCache* cache = new PageCache();
  return cache;
}

void PageCache::AddFolio(Folio* folio) {
  cached_bytes_.fetch_add(folio->size());
  base::MutexLock l(&lru_mu_);
  folio->lru_prev = nullptr;
  folio->lru_next = lru_first_;
  if (lru_first_ != nullptr) lru_first_->lru_prev = folio;
  lru_first_ = folio;
  if (lru_last_ == nullptr) lru_last_ = folio;
  folio->on_lru = true;
}

void PageCache::RemoveFolio(Folio* folio) {
  cached_bytes_.fetch_sub(folio->size());
  base::MutexLock l(&lru_mu_);
  if (!folio->on_lru) return;
  if (folio->lru_prev != nullptr) {
    folio->lru_prev->lru_next = folio->lru_next;
  } else {
    lru_first_ = folio->lru_next;
  }
  if (folio->lru_next != nullptr) {
    folio->lru_next->lru_prev = folio->lru_prev;
  } else {
    lru_last_ = folio->lru_prev;
  }
  folio->lru_prev = folio->lru_next = nullptr;
  folio->on_lru = false;
}

void PageCache::MakeRoom(size_t bytes) {
  uint64_t cached = cached_bytes_.load();
  uint64_t budget = budget_bytes_.load();
  // While the folio pool populates its reserve (at mount), grow only into
  // memory it already holds: recycling clean folios is cheaper than waiting
  // for, or faulting in, more.
  FolioPool* pool = FolioPool::Global();
  if (pool->populating()) budget = std::min(budget, pool->held_bytes());
  if (cached + bytes <= budget) return;
  Reclaim(cached + bytes - budget);
}

uint64_t PageCache::Reclaim(uint64_t bytes) {
  // Pick candidates from the cold end under the LRU lock, taking a reference
  // (safe: a folio on the LRU is referenced by its mapping's index). Folios
  // seen since the last scan get a second chance at the hot end.
  std::vector<Folio*> candidates;
  {
    base::MutexLock l(&lru_mu_);
    uint64_t picked = 0;
    size_t scanned = 0;
    Folio* f = lru_last_;
    const size_t max_scan = 8192;
    while (f != nullptr && picked < bytes && scanned++ < max_scan) {
      Folio* prev = f->lru_prev;
      if (f->lru_referenced.exchange(false)) {
        // Rotate to the hot end.
        if (f != lru_first_) {
          prev->lru_next = f->lru_next;
          if (f->lru_next != nullptr) {
            f->lru_next->lru_prev = prev;
          } else {
            lru_last_ = prev;
          }
          f->lru_prev = nullptr;
          f->lru_next = lru_first_;
          lru_first_->lru_prev = f;
          lru_first_ = f;
        }
      } else if (!f->Dirty() && !f->Writeback() && !f->Locked()) {
        f->Get();
        candidates.push_back(f);
        picked += f->size();
      }
      f = prev;
    }
  }
  uint64_t freed = 0;
  for (Folio* f : candidates) {
    if (f->TryLock()) {
      Mapping* m = f->mapping();
      if (m != nullptr && m->TryRemoveIdle(f)) freed += f->size();
      f->Unlock();
    }
    f->Put();
  }
  reclaimed_bytes_.fetch_add(freed);
  return freed;
}

// ---------------------------------------------------------------------------
// Mapping: index

Mapping::Mapping(Inode* host, PageCache* cache)
    : host_(host),
      cache_(cache),
      min_order_(host->blkbits() > kPageShift ? host->blkbits() - kPageShift
                                              : 0) {}

Mapping::~Mapping() {
  std::vector<Folio*> all;
  {
    base::MutexLock l(&mu_);
    for (auto& entry : index_) all.push_back(entry.second);
  }
  for (Folio* f : all) {
    f->Lock();
    f->CancelDirty();
    {
      base::MutexLock l(&mu_);
      RemoveLocked(f);
    }
    f->Unlock();
    f->Put();
  }
}

Folio* Mapping::FindLocked(int64_t index) {
  auto it = index_.upper_bound(index);
  if (it == index_.begin()) return nullptr;
  --it;
  Folio* f = it->second;
  if (index < f->index() + (int64_t{1} << f->order())) return f;
  return nullptr;
}

bool Mapping::RangeFreeLocked(int64_t first, int64_t nr) {
  if (FindLocked(first) != nullptr) return false;
  auto it = index_.lower_bound(first);
  return it == index_.end() || it->first >= first + nr;
}

uint64_t Mapping::nr_folios() {
  base::MutexLock l(&mu_);
  return index_.size();
}

FolioRef Mapping::Lookup(int64_t index) {
  base::MutexLock l(&mu_);
  Folio* f = FindLocked(index);
  if (f == nullptr) return FolioRef();
  f->Get();
  f->lru_referenced.store(true, std::memory_order_relaxed);
  return FolioRef(f);
}

int64_t Mapping::NextMiss(int64_t index, int64_t max_scan) {
  base::MutexLock l(&mu_);
  const int64_t end = index + max_scan;
  while (index < end) {
    Folio* f = FindLocked(index);
    if (f == nullptr) return index;
    index = f->index() + (int64_t{1} << f->order());
  }
  return end;
}

int64_t Mapping::PrevMiss(int64_t index, int64_t max_scan) {
  base::MutexLock l(&mu_);
  const int64_t end = index - max_scan;
  while (index > end && index >= 0) {
    Folio* f = FindLocked(index);
    if (f == nullptr) return index;
    index = f->index() - 1;
  }
  return std::max(index, end);
}

std::vector<FolioRef> Mapping::FoliosInRange(int64_t first, int64_t last) {
  std::vector<FolioRef> out;
  base::MutexLock l(&mu_);
  Folio* head = FindLocked(first);
  auto it = index_.lower_bound(first);
  if (head != nullptr && head->index() < first) {
    head->Get();
    out.emplace_back(head);
  }
  for (; it != index_.end() && it->first <= last; ++it) {
    it->second->Get();
    out.emplace_back(it->second);
  }
  return out;
}

std::vector<FolioRef> Mapping::DirtyFolios(int64_t first, int64_t last,
                                           size_t max) {
  std::vector<FolioRef> out;
  base::MutexLock l(&mu_);
  Folio* head = FindLocked(first);
  if (head != nullptr && head->index() < first && head->Dirty()) {
    head->Get();
    out.emplace_back(head);
  }
  for (auto it = dirty_tag_.lower_bound(first);
       it != dirty_tag_.end() && *it <= last && out.size() < max; ++it) {
    Folio* f = FindLocked(*it);
    if (f == nullptr) continue;
    f->Get();
    out.emplace_back(f);
  }
  return out;
}

int Mapping::Insert(Folio* folio) {
  int64_t nr = int64_t{1} << folio->order();
  {
    base::MutexLock l(&mu_);
    if (!RangeFreeLocked(folio->index(), nr)) return -EEXIST;
    index_.emplace(folio->index(), folio);
    folio->set_mapping(this);
    cache_->AddFolio(folio);
    if (folio->Dirty()) {
      dirty_tag_.insert(folio->index());
      dirty_bytes_.fetch_add(folio->size());
      cache_->AddDirty(folio->size());
    }
  }
  return 0;
}

void Mapping::RemoveLocked(Folio* folio) {
  auto it = index_.find(folio->index());
  if (it == index_.end() || it->second != folio) return;
  index_.erase(it);
  dirty_tag_.erase(folio->index());
  cache_->RemoveFolio(folio);
  folio->set_mapping(nullptr);
}

void Mapping::Remove(Folio* folio) {
  folio->AssertLocked();
  {
    base::MutexLock l(&mu_);
    if (folio->mapping() != this) return;
    RemoveLocked(folio);
  }
  folio->Put();  // the index's reference
}

bool Mapping::TryRemoveIdle(Folio* folio) {
  folio->AssertLocked();
  {
    base::MutexLock l(&mu_);
    if (folio->mapping() != this || folio->Dirty() || folio->Writeback()) {
      return false;
    }
    // The index and the caller hold the only references; lookups take theirs
    // under mu_, so none can appear before the removal below.
    if (folio->RefCount() != 2) return false;
    FolioState* ifs = folio->state();
    if (ifs != nullptr && (ifs->read_bytes_pending.load() != 0 ||
                           ifs->write_bytes_pending.load() != 0)) {
      return false;
    }
    RemoveLocked(folio);
  }
  folio->Put();
  return true;
}

// ---------------------------------------------------------------------------
// Mapping: __filemap_get_folio

unsigned Mapping::ChooseOrder(int64_t index, unsigned order) {
  order = std::max(order, min_order_);
  order = std::min(order, max_order());
  while (order > min_order_ && (index & ((int64_t{1} << order) - 1)) != 0) {
    order--;
  }
  base::MutexLock l(&mu_);
  while (order > min_order_ && !RangeFreeLocked(index, int64_t{1} << order)) {
    order--;
  }
  return order;
}

int Mapping::LockForGet(Folio* folio, unsigned fgp) {
  if (fgp & kFgpLock) {
    if (fgp & kFgpNowait) {
      if (!folio->TryLock()) return -EAGAIN;
    } else {
      folio->Lock();
    }
  }
  if ((fgp & kFgpStable) && folio->Writeback()) {
    if (fgp & kFgpNowait) {
      if (fgp & kFgpLock) folio->Unlock();
      return -EAGAIN;
    }
    folio->WaitWriteback();
  }
  return 0;
}

int Mapping::AddNewFolio(int64_t index, unsigned order, unsigned fgp,
                         Folio** out) {
  order = std::min(std::max(order, min_order_), max_order());
  index &= ~((int64_t{1} << order) - 1);
  cache_->MakeRoom(kPageSize << order);
  const bool undefined = (fgp & kFgpNoZero) && (fgp & kFgpLock);
  auto* folio =
      new Folio(this, index, order, host_->blkbits(),
                undefined ? FolioData::kUndefined : FolioData::kZeroed);
  if (fgp & kFgpDontcache) folio->SetDropbehind();
  if (fgp & kFgpLock) folio->Lock();  // new: never contended
  folio->Get();                       // the caller's; Insert takes the other
  if (Insert(folio) != 0) {
    if (fgp & kFgpLock) folio->Unlock();
    folio->Put();
    folio->Put();
    return -EEXIST;
  }
  *out = folio;
  return 0;
}

int Mapping::CreateFolio(int64_t index, unsigned fgp, unsigned order,
                         Folio** out) {
  index &= ~((int64_t{1} << min_order_) - 1);
  return AddNewFolio(index, ChooseOrder(index, order), fgp, out);
}

int Mapping::GetFolio(int64_t index, unsigned fgp, unsigned order,
                      Folio** folio) {
  for (;;) {
    FolioRef ref = Lookup(index);
    if (!ref) {
      if (!(fgp & kFgpCreat)) return -ENOENT;
      int ret = CreateFolio(index, fgp, order, folio);
      if (ret == -EEXIST) continue;  // lost a race: look up again
      return ret;
    }
    int ret = LockForGet(ref.get(), fgp);
    if (ret != 0) return ret;
    if ((fgp & kFgpLock) && ref->mapping() != this) {
      ref->Unlock();  // truncated while we waited
      continue;
    }
    if (!(fgp & kFgpDontcache) && ref->Dropbehind()) ref->ClearDropbehind();
    *folio = ref.Release();
    return 0;
  }
}

// ---------------------------------------------------------------------------
// Mapping: address_space_operations

bool Mapping::IsPartiallyUptodate(const Folio& folio, size_t from,
                                  size_t count) {
  FolioState* ifs = folio.state();
  if (ifs == nullptr || count == 0) return false;
  count = std::min(count, folio.size() - from);
  unsigned first = static_cast<unsigned>(from >> folio.blkbits());
  unsigned last = static_cast<unsigned>((from + count - 1) >> folio.blkbits());
  return ifs->RangeUptodate(first, last - first + 1);
}

bool Mapping::ReleaseFolio(Folio* folio) {
  folio->AssertLocked();
  if (folio->Dirty() || folio->Writeback()) return false;
  folio->DetachState();
  return true;
}

void Mapping::InvalidateFolio(Folio* folio, size_t offset, size_t len) {
  folio->AssertLocked();
  if (offset != 0 || len != folio->size()) return;
  folio->CancelDirty();
  folio->DetachState();
}

bool Mapping::DirtyFolio(Folio* folio) {
  folio->AssertLocked();
  FolioState* ifs = folio->AttachState();
  if (ifs != nullptr) ifs->SetRangeDirty(0, ifs->nr_blocks());
  return folio->MarkDirtyFlag();
}

// ---------------------------------------------------------------------------
// Mapping: accounting

void Mapping::AccountDirty(Folio* folio, bool dirty) {
  int64_t delta = dirty ? static_cast<int64_t>(folio->size())
                        : -static_cast<int64_t>(folio->size());
  base::MutexLock l(&mu_);
  if (folio->mapping() != this) return;
  if (dirty) {
    dirty_tag_.insert(folio->index());
  } else {
    dirty_tag_.erase(folio->index());
  }
  dirty_bytes_.fetch_add(delta);
  cache_->AddDirty(delta);
}

void Mapping::AccountWriteback(Folio* folio, bool writeback) {
  int64_t delta = writeback ? static_cast<int64_t>(folio->size())
                            : -static_cast<int64_t>(folio->size());
  writeback_bytes_.fetch_add(delta);
  cache_->AddWriteback(delta);
}

// ---------------------------------------------------------------------------
// Mapping: range helpers

bool Mapping::RangeNeedsWriteback(int64_t start, int64_t end) {
  if (end <= start) return false;
  for (FolioRef& f :
       FoliosInRange(start >> kPageShift, (end - 1) >> kPageShift)) {
    if (f->Dirty() || f->Writeback()) return true;
  }
  return false;
}

// folio_seek_hole_data(): within folio `f`, from *pos up to `end`. Returns
// true (with *pos) when the wanted kind of range starts there.
static bool FolioSeekHoleData(Folio* f, int64_t* pos, int64_t end,
                              bool want_data) {
  const int64_t fend = std::min(f->end(), end);
  if (f->Uptodate()) {
    if (want_data) return true;
    *pos = fend;
    return false;
  }
  // Per-block state is only stable under the folio lock.
  f->Lock();
  const int64_t bs = int64_t{1} << f->blkbits();
  bool found = false;
  while (*pos < fend) {
    unsigned block = static_cast<unsigned>((*pos - f->pos()) / bs);
    if (f->BlockUptodate(block) == want_data) {
      found = true;
      break;
    }
    *pos = std::min(f->pos() + (block + 1) * bs, fend);
  }
  f->Unlock();
  return found;
}

int64_t Mapping::SeekHoleData(int64_t start, int64_t end, int whence) {
  const bool want_data = whence == SEEK_DATA;
  int64_t pos = start;
  if (end > start) {
    for (FolioRef& f :
         FoliosInRange(start >> kPageShift, (end - 1) >> kPageShift)) {
      if (pos >= end) break;
      if (f->pos() > pos && !want_data) return pos;  // a gap is a hole
      pos = std::max(pos, f->pos());
      if (FolioSeekHoleData(f.get(), &pos, end, want_data)) return pos;
    }
  }
  if (want_data) return -ENXIO;
  return pos < end ? pos : end;
}

namespace {

// The pieces, as (first page, order) in index order, of the buddy split of
// the folio [index, index + 2^order) that leaves page `at` in a piece of
// `min_order` and every other page in the largest piece possible (the
// kernel's non-uniform try_folio_split).
std::vector<std::pair<int64_t, unsigned>> SplitPlan(int64_t index,
                                                    unsigned order,
                                                    unsigned min_order,
                                                    int64_t at) {
  std::vector<std::pair<int64_t, unsigned>> plan;
  while (order > min_order) {
    order--;
    const int64_t half = int64_t{1} << order;
    if (at < index + half) {
      plan.emplace_back(index + half, order);
    } else {
      plan.emplace_back(index, order);
      index += half;
    }
  }
  plan.emplace_back(index, order);
  std::sort(plan.begin(), plan.end());
  return plan;
}

// Copies the uptodate and dirty state of the blocks `piece` covers, from
// byte `off` of `from`. REQUIRES: both locked; piece in no mapping yet.
void CopyBlockState(Folio* from, size_t off, Folio* piece) {
  if (from->state() == nullptr) {
    if (from->Uptodate()) piece->MarkUptodate();
    if (from->Dirty()) Mapping::DirtyFolio(piece);
    return;
  }
  piece->AttachState();
  const unsigned bb = piece->blkbits();
  const unsigned first = static_cast<unsigned>(off >> bb);
  const size_t bs = size_t{1} << bb;
  bool dirty = false;
  for (unsigned b = 0; b < piece->nr_blocks(); b++) {
    if (from->BlockUptodate(first + b)) piece->SetRangeUptodate(b * bs, bs);
    if (from->BlockDirty(first + b)) {
      piece->SetRangeDirty(b * bs, bs);
      dirty = true;
    }
  }
  if (dirty) piece->MarkDirtyFlag();
}

bool WhollyIn(const Folio& f, int64_t start, int64_t end) {
  return start <= f.pos() && end >= f.end();
}

}  // namespace

Folio* Mapping::NewPiece(Folio* folio, int64_t index, unsigned order) {
  auto* piece =
      new Folio(nullptr, index, order, folio->blkbits(), FolioData::kUndefined);
  piece->Lock();
  const size_t off = static_cast<size_t>(index - folio->index()) << kPageShift;
  std::memcpy(piece->data(), folio->data() + off, piece->size());
  piece->SetDataDefined();
  if (folio->Dropbehind()) piece->SetDropbehind();
  CopyBlockState(folio, off, piece);
  return piece;
}

bool Mapping::SwapInPieces(Folio* folio, const std::vector<FolioRef>& pieces) {
  {
    base::MutexLock l(&mu_);
    FolioState* ifs = folio->state();
    // The index and the caller must hold the only references (lookups take
    // theirs under mu_), as split_folio freezes the reference count.
    if (folio->mapping() != this || folio->RefCount() != 2 ||
        folio->Writeback() ||
        (ifs != nullptr && (ifs->read_bytes_pending.load() != 0 ||
                            ifs->write_bytes_pending.load() != 0))) {
      return false;
    }
    if (folio->Dirty()) {
      dirty_bytes_.fetch_sub(folio->size());
      cache_->AddDirty(-static_cast<int64_t>(folio->size()));
    }
    RemoveLocked(folio);
    for (const FolioRef& p : pieces) {
      p->Get();  // the index's reference
      p->set_mapping(this);
      index_.emplace(p->index(), p.get());
      cache_->AddFolio(p.get());
      if (p->Dirty()) {
        dirty_tag_.insert(p->index());
        dirty_bytes_.fetch_add(p->size());
        cache_->AddDirty(static_cast<int64_t>(p->size()));
      }
    }
  }
  folio->CancelDirty();  // out of the mapping: nothing left to account
  folio->Put();          // the index's reference
  return true;
}

bool Mapping::SplitFolio(Folio* folio, int64_t at,
                         std::vector<FolioRef>* pieces) {
  folio->AssertLocked();
  pieces->clear();
  if (folio->order() <= min_order_ || folio->RefCount() != 2) return false;
  for (const auto& [index, order] :
       SplitPlan(folio->index(), folio->order(), min_order_, at)) {
    pieces->emplace_back(NewPiece(folio, index, order));
  }
  if (SwapInPieces(folio, *pieces)) return true;
  for (FolioRef& p : *pieces) p->Unlock();
  pieces->clear();
  return false;
}

void Mapping::TruncateFolio(Folio* folio, int64_t start, int64_t end) {
  if (WhollyIn(*folio, start, end)) {
    InvalidateFolio(folio, 0, folio->size());
    Remove(folio);
    return;
  }
  int64_t from = std::max(start, folio->pos());
  int64_t to = std::min(end, folio->end());
  if (to > from) {
    std::memset(folio->data() + (from - folio->pos()), 0, to - from);
  }
  if (folio->order() <= min_order_) return;
  // truncate_inode_partial_folio(): split so the pages in the range can
  // leave the cache.
  std::vector<FolioRef> pieces;
  if (!SplitFolio(folio, from >> kPageShift, &pieces)) {
    // Someone else holds it: a clean folio leaves the cache whole (read
    // again when needed), a dirty one stays, zeroed in the range.
    if (!folio->Dirty()) {
      InvalidateFolio(folio, 0, folio->size());
      Remove(folio);
    }
    return;
  }
  if (to < folio->end()) SplitPieceAt(&pieces, to >> kPageShift);
  for (FolioRef& p : pieces) {
    if (WhollyIn(*p.get(), start, end)) {
      InvalidateFolio(p.get(), 0, p->size());
      Remove(p.get());
    }
    p->Unlock();
  }
}

void Mapping::SplitPieceAt(std::vector<FolioRef>* pieces, int64_t at) {
  for (size_t i = 0; i < pieces->size(); i++) {
    Folio* p = (*pieces)[i].get();
    if (at < p->index() || at >= p->index() + (int64_t{1} << p->order())) {
      continue;
    }
    std::vector<FolioRef> sub;
    if (!SplitFolio(p, at, &sub)) return;
    p->Unlock();
    pieces->erase(pieces->begin() + static_cast<std::ptrdiff_t>(i));
    for (FolioRef& s : sub) pieces->push_back(std::move(s));
    return;
  }
}

void Mapping::TruncateRange(int64_t start, int64_t end) {
  if (end <= start) return;
  for (FolioRef& f :
       FoliosInRange(start >> kPageShift, (end - 1) >> kPageShift)) {
    f->Lock();
    if (f->mapping() == this) {
      f->WaitWriteback();
      TruncateFolio(f.get(), start, end);
    }
    f->Unlock();
  }
}

size_t Mapping::InvalidateClean(int64_t start, int64_t end) {
  size_t removed = 0;
  if (end <= start) return 0;
  for (FolioRef& f :
       FoliosInRange(start >> kPageShift, (end - 1) >> kPageShift)) {
    if (f->pos() < start || f->end() > end) continue;
    if (!f->TryLock()) continue;
    if (!f->Dirty() && !f->Writeback() && TryRemoveIdle(f.get())) removed++;
    f->Unlock();
  }
  return removed;
}

}  // namespace iomap
