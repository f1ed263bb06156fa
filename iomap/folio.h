// iomap::Folio: a power-of-two run of 4 KiB pages of one file in the
// pagecache (orders 0..kMaxOrder, i.e. 4 KiB .. 2 MiB), and FolioState, the
// per-block uptodate/dirty bitmaps the kernel calls iomap_folio_state.
//
// A Folio has:
//   - its data, aligned for direct I/O (4 KiB);
//   - a lock (the kernel's PG_locked). Unlike a mutex, it may be released by
//     another thread: a folio locked for a read is unlocked by the read
//     completion. The lock takes part in the lock-order checker with rank
//     LockRank::kFolio;
//   - flags: uptodate, dirty, writeback, dropbehind (DONTCACHE);
//   - a reference count; the last Put() frees it;
//   - a FolioState when the folio holds more than one filesystem block.
//
// Data comes from FolioPool::Global() and goes back there. A folio is
// normally created zero-filled. One created with FolioData::kUndefined (the
// write path, for a folio it is about to overwrite whole) may hold a reused
// buffer's old bytes: it must be created locked, none of its blocks is
// uptodate, and its holder either writes every byte and calls
// SetDataDefined() or calls ZeroUndefinedData(). Unlock() zeroes the data of
// a folio still undefined, so old bytes never outlive the creator's lock.
//
// Thread-safety: all members are thread-safe. Changing uptodate/dirty state
// REQUIRES the folio lock except where noted (read completion marks blocks
// uptodate while the reader still owns the lock; writeback completion ends
// writeback without it), as in the kernel.
#ifndef IOMAPD_IOMAP_FOLIO_H_
#define IOMAPD_IOMAP_FOLIO_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "base/mutex.h"
#include "block/device.h"
#include "iomap/folio_pool.h"

namespace iomap {

class Mapping;

inline constexpr unsigned kPageShift = 12;
inline constexpr size_t kPageSize = size_t{1} << kPageShift;
inline constexpr unsigned kMaxFolioOrder = 9;  // 2 MiB
inline constexpr size_t kMaxFolioSize = kPageSize << kMaxFolioOrder;

// iomap_folio_state: one uptodate and one dirty bit per block, plus the bytes
// of read and write I/O in flight. Only attached when blocks-per-folio > 1.
// Thread-safety: thread-safe (an internal leaf lock, the kernel's state_lock).
class FolioState {
 public:
  // A state for `nr_blocks` blocks; every block starts uptodate/dirty when
  // the folio already is (ifs_alloc copies the folio flags).
  FolioState(unsigned nr_blocks, bool uptodate, bool dirty);

  unsigned nr_blocks() const { return nr_blocks_; }

  // Marks blocks [first, first + nr) uptodate. Returns true when now every
  // block is uptodate.
  bool SetRangeUptodate(unsigned first, unsigned nr);
  void ClearRangeUptodate(unsigned first, unsigned nr);
  bool BlockUptodate(unsigned block) const;
  // Whether every block of [first, first + nr) is uptodate.
  bool RangeUptodate(unsigned first, unsigned nr) const;
  bool AllUptodate() const;

  void SetRangeDirty(unsigned first, unsigned nr);
  void ClearRangeDirty(unsigned first, unsigned nr);
  bool BlockDirty(unsigned block) const;
  bool AnyDirty() const;
  // The next run of dirty blocks at or after `*first` and before `end`:
  // returns its length and moves *first to its start; 0 when none.
  unsigned NextDirtyRun(unsigned* first, unsigned end) const;

  // I/O in flight, in bytes.
  std::atomic<int64_t> read_bytes_pending{0};
  std::atomic<int64_t> write_bytes_pending{0};

 private:
  bool TestBit(size_t bit) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return (bits_[bit / 64] >> (bit % 64)) & 1;
  }
  void SetBits(size_t first, size_t nr, bool value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AllSet(size_t first, size_t nr) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const unsigned nr_blocks_;
  mutable base::Mutex mu_{base::LockRank::kLeaf};
  // Uptodate bits [0, n), dirty bits [n, 2n).
  std::vector<uint64_t> bits_ ABSL_GUARDED_BY(mu_);
};

// What a new folio's data holds (see the Folio comment).
enum class FolioData { kZeroed, kUndefined };

class Folio {
 public:
  // A new, unlocked, not-uptodate folio with one reference (the caller's),
  // caching file page `index` (a multiple of 1 << order) of `mapping`, for a
  // filesystem with 1 << blkbits byte blocks. Data is zero-filled.
  Folio(Mapping* mapping, int64_t index, unsigned order, unsigned blkbits);
  // The same with the data filled as `data` says. With kUndefined the caller
  // must lock the folio before anyone else can see it.
  Folio(Mapping* mapping, int64_t index, unsigned order, unsigned blkbits,
        FolioData data);
  // Returns the data to the pool.
  ~Folio();
  Folio(const Folio&) = delete;
  Folio& operator=(const Folio&) = delete;

  // --- geometry
  int64_t index() const { return index_; }  // first page index
  unsigned order() const { return order_; }
  size_t size() const { return kPageSize << order_; }
  int64_t pos() const { return index_ << kPageShift; }  // folio_pos()
  int64_t end() const { return pos() + static_cast<int64_t>(size()); }
  uint8_t* data() const { return data_; }
  unsigned blkbits() const { return blkbits_; }
  unsigned nr_blocks() const {
    return static_cast<unsigned>(size() >> blkbits_);
  }
  // The owning mapping; null once the folio was removed (truncated).
  Mapping* mapping() const { return mapping_.load(std::memory_order_acquire); }
  void set_mapping(Mapping* mapping) {
    mapping_.store(mapping, std::memory_order_release);
  }

  // --- references
  void Get() { refs_.fetch_add(1, std::memory_order_relaxed); }
  // Drops a reference; frees the folio at zero.
  void Put();
  int RefCount() const { return refs_.load(std::memory_order_acquire); }

  // --- the folio lock (blocking; may be released by another thread)
  void Lock();
  bool TryLock();
  void Unlock();
  bool Locked() const { return locked_.load(std::memory_order_acquire); }
  // Aborts unless the folio is locked (VM_BUG_ON_FOLIO(!folio_test_locked)).
  void AssertLocked() const;
  // Hands the lock to another thread (a read completion) that will Unlock():
  // the calling thread stops counting it in the lock-order checker.
  void HandOffLock();

  // --- flags
  bool Uptodate() const { return TestFlag(kUptodateBit); }
  // folio_mark_uptodate(): whole folio (and every block of the state).
  void MarkUptodate();
  void ClearUptodate();
  bool Dirty() const { return TestFlag(kDirtyBit); }
  bool Writeback() const { return TestFlag(kWritebackBit); }
  bool Dropbehind() const { return TestFlag(kDropbehindBit); }
  void SetDropbehind() { SetFlag(kDropbehindBit); }
  void ClearDropbehind() { ClearFlag(kDropbehindBit); }
  // PG_readahead: readahead put this folio where a reader reaching it should
  // start the next window (page_cache_async_ra). Set on a new folio before
  // it is visible; tested and cleared by readers (atomic, no lock needed).
  bool ReadaheadMark() const { return TestFlag(kReadaheadBit); }
  void SetReadaheadMark() { SetFlag(kReadaheadBit); }
  void ClearReadaheadMark() { ClearFlag(kReadaheadBit); }

  // Write-mapped: a user mapping may store into the folio without faulting
  // (the kernel's writable PTEs). PageMkwrite sets it when it returns the
  // folio dirty; folio_mkclean write-protects it again, so the next store
  // goes through PageMkwrite: ClearDirtyForIo (writeback) and
  // PagecacheIsizeExtended do. ClearWriteMapped returns whether it was set.
  // REQUIRES: folio locked.
  bool WriteMapped() const { return TestFlag(kWriteMappedBit); }
  void SetWriteMapped() { SetFlag(kWriteMappedBit); }
  bool ClearWriteMapped() {
    return flags_.fetch_and(~kWriteMappedBit, std::memory_order_acq_rel) &
           kWriteMappedBit;
  }

  // Undefined data (FolioData::kUndefined, see above). REQUIRES for both
  // changes: folio locked. SetDataDefined: the caller wrote every byte.
  bool DataUndefined() const { return TestFlag(kUndefinedBit); }
  void SetDataDefined() { ClearFlag(kUndefinedBit); }
  void ZeroUndefinedData();

  // Dirty flag changes keep the mapping's dirty index and counters in step.
  // REQUIRES: folio locked. Return whether the flag changed.
  bool MarkDirtyFlag();  // filemap_dirty_folio (blocks: caller's job)
  // folio_clear_dirty_for_io (writeback handover; also write-protects the
  // folio: ClearWriteMapped).
  bool ClearDirtyForIo();
  // cancel_dirty_folio (invalidate): flag and every block bit.
  void CancelDirty();

  // Writeback: StartWriteback REQUIRES the folio lock; EndWriteback may run
  // in any thread (completion) and wakes waiters.
  void StartWriteback();
  void EndWriteback();
  void WaitWriteback();  // folio_wait_writeback / folio_wait_stable

  // --- per-block state (null when the folio is a single block)
  FolioState* state() const { return state_.get(); }
  // ifs_alloc(): attaches a state when nr_blocks() > 1 and none exists.
  // REQUIRES: folio locked. Returns the state (null for single-block folios).
  FolioState* AttachState();
  void DetachState();

  // Block helpers that work with or without a state.
  // Marks [off, off + len) (bytes within the folio) uptodate; the folio flag
  // follows once every block is (iomap_set_range_uptodate).
  void SetRangeUptodate(size_t off, size_t len);
  void SetRangeDirty(size_t off, size_t len);    // per-block bits only
  void ClearRangeDirty(size_t off, size_t len);  // per-block bits only
  bool RangeUptodate(size_t off, size_t len) const;
  bool BlockUptodate(unsigned block) const;
  bool BlockDirty(unsigned block) const;

  // LRU bookkeeping for PageCache (guarded by the cache's lock).
  Folio* lru_prev = nullptr;
  Folio* lru_next = nullptr;
  bool on_lru = false;
  // Set on lookup, cleared by reclaim (second chance).
  std::atomic<bool> lru_referenced{false};

 private:
  enum : uint32_t {
    kUptodateBit = 1u << 0,
    kDirtyBit = 1u << 1,
    kWritebackBit = 1u << 2,
    kDropbehindBit = 1u << 3,
    kUndefinedBit = 1u << 4,
    kWriteMappedBit = 1u << 5,
    kReadaheadBit = 1u << 6,
  };
  bool TestFlag(uint32_t bit) const {
    return flags_.load(std::memory_order_acquire) & bit;
  }
  void SetFlag(uint32_t bit) {
    flags_.fetch_or(bit, std::memory_order_acq_rel);
  }
  void ClearFlag(uint32_t bit) {
    flags_.fetch_and(~bit, std::memory_order_acq_rel);
  }
  void BlockRange(size_t off, size_t len, unsigned* first, unsigned* nr) const;

  const int64_t index_;
  const unsigned order_;
  const unsigned blkbits_;
  uint8_t* const data_;  // from FolioPool::Global()
  std::atomic<Mapping*> mapping_;
  std::atomic<int> refs_{1};
  std::atomic<uint32_t> flags_{0};
  std::atomic<bool> locked_{false};
  std::unique_ptr<FolioState> state_;

  // Waiters for the lock and for writeback (the kernel's folio waitqueue).
  // Plain std:: primitives: the thread that unlocks a folio may still be
  // returning from the unlock while the new owner frees the folio, and
  // base::Mutex reads its rank after releasing (see ~Folio).
  mutable std::mutex wait_mu_;
  std::condition_variable wait_cv_;
};

// RAII holder of a folio reference (folio_put on scope exit).
class FolioRef {
 public:
  FolioRef() = default;
  explicit FolioRef(Folio* folio) : folio_(folio) {}
  ~FolioRef() { Reset(); }
  FolioRef(FolioRef&& o) noexcept : folio_(o.Release()) {}
  FolioRef& operator=(FolioRef&& o) noexcept {
    if (this != &o) {
      Reset();
      folio_ = o.Release();
    }
    return *this;
  }
  Folio* get() const { return folio_; }
  Folio* operator->() const { return folio_; }
  explicit operator bool() const { return folio_ != nullptr; }
  Folio* Release() {
    Folio* f = folio_;
    folio_ = nullptr;
    return f;
  }
  void Reset() {
    if (folio_ != nullptr) folio_->Put();
    folio_ = nullptr;
  }

 private:
  Folio* folio_ = nullptr;
};

}  // namespace iomap

#endif  // IOMAPD_IOMAP_FOLIO_H_
