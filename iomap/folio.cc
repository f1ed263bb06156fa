#include "iomap/folio.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "iomap/pagecache.h"

namespace iomap {

// ---------------------------------------------------------------------------
// FolioState

FolioState::FolioState(unsigned nr_blocks, bool uptodate, bool dirty)
    : nr_blocks_(nr_blocks) {
  base::MutexLock l(&mu_);
  bits_.assign((2 * size_t{nr_blocks} + 63) / 64, 0);
  if (uptodate) SetBits(0, nr_blocks, true);
  if (dirty) SetBits(nr_blocks, nr_blocks, true);
}

void FolioState::SetBits(size_t first, size_t nr, bool value) {
  for (size_t bit = first; bit < first + nr; bit++) {
    uint64_t mask = uint64_t{1} << (bit % 64);
    if (value) {
      bits_[bit / 64] |= mask;
    } else {
      bits_[bit / 64] &= ~mask;
    }
  }
}

bool FolioState::AllSet(size_t first, size_t nr) const {
  for (size_t bit = first; bit < first + nr; bit++) {
    if (!TestBit(bit)) return false;
  }
  return true;
}

bool FolioState::SetRangeUptodate(unsigned first, unsigned nr) {
  base::MutexLock l(&mu_);
  SetBits(first, nr, true);
  return AllSet(0, nr_blocks_);
}

void FolioState::ClearRangeUptodate(unsigned first, unsigned nr) {
  base::MutexLock l(&mu_);
  SetBits(first, nr, false);
}

bool FolioState::BlockUptodate(unsigned block) const {
  base::MutexLock l(&mu_);
  return TestBit(block);
}

bool FolioState::RangeUptodate(unsigned first, unsigned nr) const {
  base::MutexLock l(&mu_);
  return AllSet(first, nr);
}

bool FolioState::AllUptodate() const {
  base::MutexLock l(&mu_);
  return AllSet(0, nr_blocks_);
}

void FolioState::SetRangeDirty(unsigned first, unsigned nr) {
  base::MutexLock l(&mu_);
  SetBits(nr_blocks_ + first, nr, true);
}

void FolioState::ClearRangeDirty(unsigned first, unsigned nr) {
  base::MutexLock l(&mu_);
  SetBits(nr_blocks_ + first, nr, false);
}

bool FolioState::BlockDirty(unsigned block) const {
  base::MutexLock l(&mu_);
  return TestBit(nr_blocks_ + block);
}

bool FolioState::AnyDirty() const {
  base::MutexLock l(&mu_);
  for (unsigned b = 0; b < nr_blocks_; b++) {
    if (TestBit(nr_blocks_ + b)) return true;
  }
  return false;
}

unsigned FolioState::NextDirtyRun(unsigned* first, unsigned end) const {
  base::MutexLock l(&mu_);
  unsigned b = *first;
  while (b < end && !TestBit(nr_blocks_ + b)) b++;
  if (b >= end) return 0;
  unsigned e = b;
  while (e < end && TestBit(nr_blocks_ + e)) e++;
  *first = b;
  return e - b;
}

// ---------------------------------------------------------------------------
// Folio

Folio::Folio(Mapping* mapping, int64_t index, unsigned order, unsigned blkbits)
    : Folio(mapping, index, order, blkbits, FolioData::kZeroed) {}

Folio::Folio(Mapping* mapping, int64_t index, unsigned order, unsigned blkbits,
             FolioData data)
    : index_(index),
      order_(order),
      blkbits_(blkbits),
      data_(FolioPool::Global()->Alloc(
          order, data == FolioData::kZeroed ? FolioPool::Fill::kZeroed
                                            : FolioPool::Fill::kUndefined)),
      mapping_(mapping),
      flags_(data == FolioData::kUndefined ? kUndefinedBit : 0) {}

Folio::~Folio() {
  // A thread that just unlocked the folio or ended its writeback may still be
  // inside wait_mu_: wait for it before the memory goes.
  { std::lock_guard<std::mutex> l(wait_mu_); }
  FolioPool::Global()->Free(data_, order_);
}

void Folio::ZeroUndefinedData() {
  if (!DataUndefined()) return;
  std::memset(data_, 0, size());
  ClearFlag(kUndefinedBit);
}

void Folio::Put() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

void Folio::Lock() {
  base::internal::NoteAcquire(base::LockRank::kFolio, this);
  bool expected = false;
  if (locked_.compare_exchange_strong(expected, true,
                                      std::memory_order_acquire)) {
    return;
  }
  std::unique_lock<std::mutex> l(wait_mu_);
  for (;;) {
    expected = false;
    if (locked_.compare_exchange_strong(expected, true,
                                        std::memory_order_acquire)) {
      return;
    }
    wait_cv_.wait(l);
  }
}

bool Folio::TryLock() {
  bool expected = false;
  if (!locked_.compare_exchange_strong(expected, true,
                                       std::memory_order_acquire)) {
    return false;
  }
  base::internal::NoteAcquire(base::LockRank::kFolio, this);
  return true;
}

void Folio::Unlock() {
  if (!locked_.load(std::memory_order_relaxed)) {
    std::fprintf(stderr, "iomap: unlocking an unlocked folio\n");
    std::abort();
  }
  // Old bytes of a reused buffer never outlive the creator's lock.
  if (DataUndefined()) ZeroUndefinedData();
  base::internal::NoteRelease(base::LockRank::kFolio, this);
  // Clearing and waking under wait_mu_ orders it with a waiter's
  // check-then-wait, and lets ~Folio wait until this thread is done with the
  // folio (the new owner may free it as soon as it has the lock).
  std::lock_guard<std::mutex> l(wait_mu_);
  locked_.store(false, std::memory_order_release);
  wait_cv_.notify_all();
}

void Folio::AssertLocked() const {
  if (!Locked()) {
    std::fprintf(stderr, "iomap: folio at %lld not locked\n",
                 static_cast<long long>(pos()));
    std::abort();
  }
}

void Folio::HandOffLock() {
  AssertLocked();
  base::internal::NoteRelease(base::LockRank::kFolio, this);
}

void Folio::MarkUptodate() {
  if (state_ != nullptr) state_->SetRangeUptodate(0, nr_blocks());
  SetFlag(kUptodateBit);
}

void Folio::ClearUptodate() {
  if (state_ != nullptr) state_->ClearRangeUptodate(0, nr_blocks());
  ClearFlag(kUptodateBit);
}

bool Folio::MarkDirtyFlag() {
  AssertLocked();
  if (flags_.fetch_or(kDirtyBit, std::memory_order_acq_rel) & kDirtyBit) {
    return false;
  }
  Mapping* m = mapping();
  if (m != nullptr) m->AccountDirty(this, true);
  return true;
}

bool Folio::ClearDirtyForIo() {
  AssertLocked();
  ClearWriteMapped();  // folio_mkclean: stores after this fault again
  if (!(flags_.fetch_and(~kDirtyBit, std::memory_order_acq_rel) & kDirtyBit)) {
    return false;
  }
  Mapping* m = mapping();
  if (m != nullptr) m->AccountDirty(this, false);
  return true;
}

void Folio::CancelDirty() {
  if (state_ != nullptr) state_->ClearRangeDirty(0, nr_blocks());
  ClearDirtyForIo();
}

void Folio::StartWriteback() {
  AssertLocked();
  SetFlag(kWritebackBit);
  Mapping* m = mapping();
  if (m != nullptr) m->AccountWriteback(this, true);
}

void Folio::EndWriteback() {
  Mapping* m = mapping();
  if (m != nullptr) m->AccountWriteback(this, false);
  std::lock_guard<std::mutex> l(wait_mu_);
  ClearFlag(kWritebackBit);
  wait_cv_.notify_all();
}

void Folio::WaitWriteback() {
  if (!Writeback()) return;
  std::unique_lock<std::mutex> l(wait_mu_);
  while (Writeback()) wait_cv_.wait(l);
}

FolioState* Folio::AttachState() {
  if (state_ == nullptr && nr_blocks() > 1) {
    state_ = std::make_unique<FolioState>(nr_blocks(), Uptodate(), Dirty());
  }
  return state_.get();
}

void Folio::DetachState() { state_.reset(); }

void Folio::BlockRange(size_t off, size_t len, unsigned* first,
                       unsigned* nr) const {
  size_t bs = size_t{1} << blkbits_;
  size_t first_block = off >> blkbits_;
  size_t last_block = (off + len + bs - 1) >> blkbits_;
  *first = static_cast<unsigned>(first_block);
  *nr = static_cast<unsigned>(last_block - first_block);
}

void Folio::SetRangeUptodate(size_t off, size_t len) {
  if (len == 0) return;
  if (state_ == nullptr) {
    // A single-block folio (or no state yet): any uptodate range makes the
    // whole folio uptodate only when it covers the folio.
    if (nr_blocks() <= 1 || (off == 0 && len >= size())) SetFlag(kUptodateBit);
    return;
  }
  unsigned first, nr;
  BlockRange(off, len, &first, &nr);
  if (state_->SetRangeUptodate(first, nr)) SetFlag(kUptodateBit);
}

void Folio::SetRangeDirty(size_t off, size_t len) {
  if (state_ == nullptr || len == 0) return;
  unsigned first, nr;
  BlockRange(off, len, &first, &nr);
  state_->SetRangeDirty(first, nr);
}

void Folio::ClearRangeDirty(size_t off, size_t len) {
  if (state_ == nullptr || len == 0) return;
  unsigned first, nr;
  BlockRange(off, len, &first, &nr);
  state_->ClearRangeDirty(first, nr);
}

bool Folio::RangeUptodate(size_t off, size_t len) const {
  if (Uptodate()) return true;
  if (state_ == nullptr || len == 0) return false;
  unsigned first, nr;
  BlockRange(off, len, &first, &nr);
  return state_->RangeUptodate(first, nr);
}

bool Folio::BlockUptodate(unsigned block) const {
  if (Uptodate()) return true;
  return state_ != nullptr && state_->BlockUptodate(block);
}

bool Folio::BlockDirty(unsigned block) const {
  if (state_ == nullptr) return Dirty();
  return state_->BlockDirty(block);
}

}  // namespace iomap
