// The pagecache: iomap::Mapping (the kernel's address_space: one per inode,
// an ordered index of folios) and iomap::PageCache (the memory budget shared
// by every mapping, with LRU reclaim of clean folios).
//
// Locking: Mapping::mu_ (rank kMapping) guards the index and the dirty and
// writeback tags; it is never held while waiting for a folio lock or for I/O,
// so it may be taken under a folio lock and from I/O completions. The
// PageCache LRU lock is a leaf. Order: folio lock -> mapping -> cache.
//
// Thread-safety: Mapping and PageCache are thread-safe.
#ifndef IOMAPD_IOMAP_PAGECACHE_H_
#define IOMAPD_IOMAP_PAGECACHE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "base/mutex.h"
#include "iomap/errseq.h"
#include "iomap/folio.h"

namespace iomap {

class Inode;

struct PageCacheOptions {
  // Memory for cached folios, all mappings together. Above it, allocating a
  // folio first reclaims clean, unlocked, unreferenced folios (LRU order).
  // Dirty and writeback folios are never reclaimed: the budget may be
  // exceeded while they are (writeback throttling keeps that bounded).
  uint64_t budget_bytes = uint64_t{256} << 20;
};

// The memory budget and LRU of cached folios. One global instance serves
// every inode unless an Inode is given its own (tests do).
class PageCache {
 public:
  explicit PageCache(const PageCacheOptions& options = PageCacheOptions());
  PageCache(const PageCache&) = delete;
  PageCache& operator=(const PageCache&) = delete;

  // The process-wide cache (default options).
  static PageCache* Global();

  uint64_t budget_bytes() const { return budget_bytes_.load(); }
  void set_budget_bytes(uint64_t bytes) { budget_bytes_.store(bytes); }
  uint64_t cached_bytes() const { return cached_bytes_.load(); }
  uint64_t dirty_bytes() const { return dirty_bytes_.load(); }
  uint64_t writeback_bytes() const { return writeback_bytes_.load(); }
  uint64_t reclaimed_bytes() const { return reclaimed_bytes_.load(); }
  // Folio memory freed and kept for reuse (FolioPool::Global(), shared by
  // every cache): not part of cached_bytes(), bounded by the pool.
  static uint64_t pool_idle_bytes() {
    return FolioPool::Global()->idle_bytes();
  }

  // Makes room for `bytes` more: reclaims while over budget. Never fails
  // (see PageCacheOptions). Callers may hold folio locks (only try-locks are
  // taken here), never a mapping lock.
  void MakeRoom(size_t bytes);
  // Reclaims up to `bytes` of clean folios; returns bytes freed.
  uint64_t Reclaim(uint64_t bytes);

  // Bookkeeping by Mapping (under the mapping lock).
  void AddFolio(Folio* folio);
  void RemoveFolio(Folio* folio);
  void AddDirty(int64_t delta) { dirty_bytes_.fetch_add(delta); }
  void AddWriteback(int64_t delta) { writeback_bytes_.fetch_add(delta); }

 private:
  std::atomic<uint64_t> budget_bytes_;
  std::atomic<uint64_t> cached_bytes_{0};
  std::atomic<int64_t> dirty_bytes_{0};
  std::atomic<int64_t> writeback_bytes_{0};
  std::atomic<uint64_t> reclaimed_bytes_{0};
  base::Mutex lru_mu_{base::LockRank::kLeaf};
  // Doubly linked through Folio::lru_prev/lru_next.
  Folio* lru_first_ ABSL_GUARDED_BY(lru_mu_) = nullptr;  // most recent
  Folio* lru_last_ ABSL_GUARDED_BY(lru_mu_) = nullptr;   // least recent
};

// Flags of Mapping::GetFolio (the kernel's FGP_*).
inline constexpr unsigned kFgpAccessed = 1u << 0;
inline constexpr unsigned kFgpLock = 1u << 1;       // return it locked
inline constexpr unsigned kFgpCreat = 1u << 2;      // create when missing
inline constexpr unsigned kFgpNowait = 1u << 3;     // never block: -EAGAIN
inline constexpr unsigned kFgpStable = 1u << 4;     // wait for writeback
inline constexpr unsigned kFgpDontcache = 1u << 5;  // new folio is dropbehind
// With kFgpLock: a folio this call creates has FolioData::kUndefined data
// (the caller will overwrite it; see folio.h). Ignored without kFgpLock.
inline constexpr unsigned kFgpNoZero = 1u << 6;
inline constexpr unsigned kFgpWriteBegin =
    kFgpLock | kFgpCreat | kFgpStable;  // FGP_WRITEBEGIN

// What a mapping needs from the layers above the pagecache: writeback
// (filemap_write_and_wait_range) and dirty throttling
// (balance_dirty_pages_ratelimited). The writeback engine installs them with
// Mapping::set_hooks; without hooks, throttling does nothing and a flush that
// is required fails with -EOPNOTSUPP. Thread-safety: called concurrently.
class MappingHooks {
 public:
  virtual ~MappingHooks() = default;
  // Writes back bytes [start, end] (inclusive) of `inode` and waits for it.
  // 0 or -errno.
  virtual int WriteAndWaitRange(Inode* inode, int64_t start, int64_t end) = 0;
  // Throttles a writer that dirtied pages; with `nowait` returns -EAGAIN
  // instead of sleeping. 0 or -errno.
  virtual int BalanceDirty(Inode* inode, bool nowait) = 0;
};

// The default readahead limit in pages (VM_READAHEAD_PAGES: 128 KiB, the
// kernel's bdi->ra_pages default).
inline constexpr int64_t kDefaultRaPages = 32;

// The fields of the kernel's file_ra_state. The last readahead window is
// [start, start + size); its page start + size - async_size carries the
// readahead mark (Folio::ReadaheadMark) when that page was newly read.
struct RaWindow {
  int64_t start = 0;
  int64_t size = 0;
  int64_t async_size = 0;
  unsigned order = 0;                  // folio order of the last window
  int64_t ra_pages = kDefaultRaPages;  // the window limit (0: no readahead)
  int64_t prev_pos = -1;  // byte after the previous read request's last byte
};

// file_ra_state: the readahead state of one open file. Each open file keeps
// its own (as the kernel keeps file->f_ra), so two streams reading the same
// inode are each seen as sequential; reads without a file use the mapping's
// (Mapping::ra). Thread-safe (a leaf lock: concurrent reads through one
// handle may share it).
class RaState {
 public:
  explicit RaState(int64_t ra_pages = kDefaultRaPages) {
    window.ra_pages = ra_pages;
  }
  RaState(const RaState&) = delete;
  RaState& operator=(const RaState&) = delete;

  base::Mutex mu{base::LockRank::kLeaf};
  RaWindow window ABSL_GUARDED_BY(mu);
};

// The pagecache of one inode (address_space).
class Mapping {
 public:
  Mapping(Inode* host, PageCache* cache);
  // Drops every folio (REQUIRES: no folio locked or under I/O).
  ~Mapping();
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  Inode* host() const { return host_; }
  PageCache* cache() const { return cache_; }

  // mapping_set_large_folios().
  void SetLargeFolios() { large_folios_.store(true); }
  bool LargeFolios() const { return large_folios_.load(); }
  // Smallest order: a folio holds at least one block (bs > ps).
  unsigned min_order() const { return min_order_; }
  unsigned max_order() const {
    return LargeFolios() ? kMaxFolioOrder : min_order_;
  }
  // mapping_max_folio_size().
  size_t max_folio_size() const { return kPageSize << max_order(); }

  // __filemap_get_folio(): the folio caching page `index`, with a reference,
  // per `fgp` (kFgp*). With kFgpCreat a missing folio is created, of the
  // largest order <= `order` that is aligned at `index` and fits the free
  // range (order is clamped to [min_order, max_order]). Returns 0 and
  // *folio, -ENOENT when missing and not kFgpCreat, -EAGAIN under kFgpNowait
  // when the lock is taken or writeback must be waited for.
  int GetFolio(int64_t index, unsigned fgp, unsigned order, Folio** folio);
  // filemap_alloc_folio() + filemap_add_folio(): a new folio of exactly
  // `order` (clamped to [min_order, max_order]) at `index` (aligned down to
  // the order), locked and referenced (kFgpLock), zero-filled unless
  // kFgpNoZero. -EEXIST when it would overlap a cached folio.
  int AddNewFolio(int64_t index, unsigned order, unsigned fgp, Folio** folio);
  // The largest order <= `order` for a new folio at `index`: aligned there
  // and over pages not cached (at least min_order).
  unsigned ChooseOrder(int64_t index, unsigned order);
  // filemap_get_folio(): lookup only; null when missing.
  FolioRef Lookup(int64_t index);
  // page_cache_next_miss() / page_cache_prev_miss(): the first page not
  // cached scanning up (down) from `index`, looking at no more than
  // `max_scan` pages. When all of them are cached: index + max_scan
  // (index - max_scan); a downward scan past page 0 returns -1.
  int64_t NextMiss(int64_t index, int64_t max_scan);
  int64_t PrevMiss(int64_t index, int64_t max_scan);
  // The folios that intersect pages [first, last], in order, referenced.
  std::vector<FolioRef> FoliosInRange(int64_t first, int64_t last);
  // Dirty folios (tagged) starting at page >= first and <= last, up to `max`.
  std::vector<FolioRef> DirtyFolios(int64_t first, int64_t last, size_t max);

  // Inserts a new folio (one reference moves to the index). -EEXIST when it
  // would overlap a cached folio (the caller keeps its reference).
  int Insert(Folio* folio);
  // Removes a folio from the index (filemap_remove_folio). REQUIRES: folio
  // locked, clean, not under writeback. Drops the index's reference.
  void Remove(Folio* folio);

  // address_space_operations, as iomap implements them:
  // iomap_is_partially_uptodate: every block of [from, from + count) uptodate.
  static bool IsPartiallyUptodate(const Folio& folio, size_t from,
                                  size_t count);
  // iomap_release_folio: false when dirty or under writeback; else frees the
  // per-block state and returns true. REQUIRES: folio locked.
  static bool ReleaseFolio(Folio* folio);
  // iomap_invalidate_folio: acts only on the whole folio (cancels dirty,
  // frees state); a partial range does nothing. REQUIRES: folio locked.
  static void InvalidateFolio(Folio* folio, size_t offset, size_t len);
  // iomap_dirty_folio: marks every block dirty and the folio dirty. Returns
  // whether the folio was clean. REQUIRES: folio locked.
  static bool DirtyFolio(Folio* folio);

  // Whether any folio in [start, end) (bytes) is dirty or under writeback
  // (filemap_range_needs_writeback).
  bool RangeNeedsWriteback(int64_t start, int64_t end);

  // mapping_seek_hole_data(): the first data (whence SEEK_DATA) or hole
  // (SEEK_HOLE) offset in [start, end) according to the cache: an uptodate
  // folio or uptodate block is data, a missing folio or !uptodate block is a
  // hole. Returns the offset, `end` when SEEK_HOLE finds none, or -ENXIO when
  // SEEK_DATA finds none.
  int64_t SeekHoleData(int64_t start, int64_t end, int whence);

  // truncate_inode_pages_range(): bytes [start, end) leave the cache. Whole
  // folios are removed (after their writeback ends); the covered part of a
  // partial folio is zeroed, and a large partial folio is split (as
  // truncate_inode_partial_folio) so that its pieces wholly in the range
  // leave the cache too; when it cannot be split (another reference), a
  // clean one is removed whole and a dirty one kept. REQUIRES: the caller
  // holds the invalidate lock exclusive (not asserted: callers vary).
  void TruncateRange(int64_t start, int64_t end);
  // Removes clean, unlocked folios wholly within [start, end) without
  // waiting (invalidate_mapping_pages). Returns the number removed.
  size_t InvalidateClean(int64_t start, int64_t end);

  // Dirty / writeback accounting (Folio calls these).
  void AccountDirty(Folio* folio, bool dirty);
  void AccountWriteback(Folio* folio, bool writeback);
  uint64_t dirty_bytes() const { return dirty_bytes_.load(); }
  uint64_t writeback_bytes() const { return writeback_bytes_.load(); }
  uint64_t nr_folios();

  // Reclaim (PageCache): removes `folio` if it is still cached here, clean,
  // idle and referenced only by the index and the caller. REQUIRES: folio
  // locked. Returns whether it was removed.
  bool TryRemoveIdle(Folio* folio);

  // Writeback / throttling hooks (null until installed). The hooks object
  // must outlive the mapping.
  void set_hooks(MappingHooks* hooks) { hooks_.store(hooks); }
  MappingHooks* hooks() const { return hooks_.load(); }

  // Writeback errors (mapping->wb_err + AS_EIO/AS_ENOSPC; see errseq.h and
  // writeback.h). Set by writeback, sampled by open files.
  WbError wb_err;

  // Readahead state of reads that come without an open file's own
  // (FileBufferedRead with ra == nullptr).
  RaState ra;

 private:
  Folio* FindLocked(int64_t index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool RangeFreeLocked(int64_t first, int64_t nr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int CreateFolio(int64_t index, unsigned fgp, unsigned order, Folio** folio);
  int LockForGet(Folio* folio, unsigned fgp);
  void RemoveLocked(Folio* folio) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TruncateFolio(Folio* folio, int64_t start, int64_t end);
  // Folio splitting (split_folio / try_folio_split) for truncation. A large
  // locked folio referenced only by the index and the caller is replaced by
  // new locked pieces (buddy split isolating page `at` at min_order; data,
  // block state, dirty flag and accounting move over); the old folio leaves
  // the mapping (the caller still unlocks and puts it). Returns false, and
  // changes nothing, when it is not large or someone else holds it.
  bool SplitFolio(Folio* folio, int64_t at, std::vector<FolioRef>* pieces);
  Folio* NewPiece(Folio* folio, int64_t index, unsigned order);
  bool SwapInPieces(Folio* folio, const std::vector<FolioRef>& pieces);
  // Splits the piece holding page `at` again (a punch ending inside it).
  void SplitPieceAt(std::vector<FolioRef>* pieces, int64_t at);

  Inode* const host_;
  PageCache* const cache_;
  const unsigned min_order_;
  std::atomic<bool> large_folios_{false};
  std::atomic<MappingHooks*> hooks_{nullptr};
  std::atomic<int64_t> dirty_bytes_{0};
  std::atomic<int64_t> writeback_bytes_{0};

  base::Mutex mu_{base::LockRank::kMapping};
  // Keyed by the folio's first page index.
  absl::btree_map<int64_t, Folio*> index_ ABSL_GUARDED_BY(mu_);
  absl::btree_set<int64_t> dirty_tag_ ABSL_GUARDED_BY(mu_);
};

}  // namespace iomap

#endif  // IOMAPD_IOMAP_PAGECACHE_H_
