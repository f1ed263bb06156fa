// iomap::FolioPool: the memory behind folio data. Buffers of freed folios
// are kept per order and handed to the next folio of that order, so a
// pagecache that reclaims as fast as it allocates (a long sequential write
// through a bounded cache) stops paying for mmap, page faults and munmap on
// every large folio.
//
// - Buffers of 128 KiB or more are carved from 2 MiB-aligned anonymous
//   chunks, each asked to be a transparent huge page (MADV_HUGEPAGE) and
//   populated at once (MADV_POPULATE_WRITE, or by touching each page on
//   kernels without it): one fault per 2 MiB instead of one per 4 KiB, fewer
//   TLB misses, cheaper page pinning for O_DIRECT writeback. Carving is
//   buddy-style: a request of order o takes the smallest idle buffer of
//   order >= o (or a new chunk) and leaves the rest idle as one buffer of
//   each order o, o+1, ..., so larger requests still find large buffers.
//   Memory from the kernel is already zero. Smaller buffers come from
//   posix_memalign.
// - A freed buffer goes to the idle list of its order while the pool's idle
//   bytes stay within idle_limit(); otherwise it returns to the system.
//   Idle buffers stay resident, so reusing one faults nothing in.
// - A reserve (Reserve / ReserveAsync, e.g. the pagecache budget at mount)
//   populates 2 MiB chunks ahead of time until the pool holds that much
//   (in use + idle), so writers filling a cache for the first time take
//   resident memory instead of faulting it in; the population time is
//   spent in the caller or a background thread (reserve_seconds()).
// - Alloc(order, kZeroed) always returns zeros; Alloc(order, kUndefined)
//   may return a reused buffer's old bytes (another file's data, possibly
//   of another order): callers that ask for it must write or zero every byte
//   before anyone can read it (Folio enforces that, see folio.h).
//
// Memory: idle bytes stay within idle_limit() = max(max_idle_bytes(),
// reserve_bytes() - in_use_bytes()), so the pool's total (in use + idle) is
// at most max(in use + max_idle_bytes(), reserve_bytes()): a reserve equal
// to the pagecache budget never makes the pool hold more than the budget
// while the cache is below it, nor more than without a reserve above it.
// Buffers in use are accounted by their owners too (PageCache's
// cached_bytes). Under AddressSanitizer idle buffers are poisoned, so a use
// of a freed folio's data is still reported.
//
// Thread-safety: thread-safe. The internal lock is a leaf taken by Free()
// from ~Folio, which may run under any lock, so it is a plain std::mutex
// outside the lock-order checker (nothing is called while it is held; the
// reserve thread takes it only to publish each populated chunk).
#ifndef IOMAPD_IOMAP_FOLIO_POOL_H_
#define IOMAPD_IOMAP_FOLIO_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace iomap {

class FolioPool {
 public:
  // Orders 0..kOrders-1 (4 KiB .. 2 MiB, as kMaxFolioOrder in folio.h).
  static constexpr unsigned kOrders = 10;
  // Default bound of idle memory.
  static constexpr uint64_t kDefaultMaxIdleBytes = uint64_t{64} << 20;

  enum class Fill { kZeroed, kUndefined };

  explicit FolioPool(uint64_t max_idle_bytes = kDefaultMaxIdleBytes);
  // Stops a background reserve and returns every idle buffer to the
  // system. REQUIRES: no buffer of this pool is still in use (the global
  // pool is never destroyed).
  ~FolioPool();
  FolioPool(const FolioPool&) = delete;
  FolioPool& operator=(const FolioPool&) = delete;

  // The process-wide pool every Folio uses.
  static FolioPool* Global();

  // A 4 KiB-aligned, resident buffer of kPageSize << order bytes
  // (REQUIRES: order < kOrders). Aborts when memory is exhausted (a folio
  // cannot fail to exist, as in the rest of the pagecache).
  uint8_t* Alloc(unsigned order, Fill fill);
  // Takes back a buffer from Alloc(order, ...). Null is ignored.
  void Free(uint8_t* data, unsigned order);

  // Sets the reserve to `bytes` (rounded up to 2 MiB) and populates 2 MiB
  // chunks until in_use_bytes() + idle_bytes() reaches it; blocks meanwhile
  // (about 2.5-4 ms per MiB of memory new to a VM, far less for memory the
  // system has at hand). Reserve(0) drops the reserve and returns idle
  // memory beyond max_idle_bytes(). Stops a running ReserveAsync first.
  // Aborts when memory is exhausted, as Alloc.
  void Reserve(uint64_t bytes);
  // As Reserve, populating in a background thread; returns at once.
  // Allocations meanwhile take the chunks populated so far.
  void ReserveAsync(uint64_t bytes);
  // Waits until a ReserveAsync has populated its reserve.
  void WaitReserved();
  uint64_t reserve_bytes() const { return reserve_bytes_.load(); }
  // True while a ReserveAsync thread is populating. Meanwhile an Alloc of
  // 128 KiB or more that finds no idle buffer waits for the thread's next
  // chunk instead of faulting memory in beside it, and the pagecache grows
  // only into memory already populated (PageCache::MakeRoom reclaims clean
  // folios beyond held_bytes()).
  bool populating() const { return populating_.load(); }
  // in_use_bytes() + idle_bytes().
  uint64_t held_bytes() const { return in_use_bytes() + idle_bytes(); }

  uint64_t max_idle_bytes() const { return max_idle_bytes_.load(); }
  // Changes the bound; idle buffers beyond idle_limit() return to the
  // system now.
  void set_max_idle_bytes(uint64_t bytes);
  // The current bound of idle bytes (see "Memory" above).
  uint64_t idle_limit() const;
  // Returns every idle buffer to the system (the reserve setting stays:
  // later frees are kept up to it again).
  void Trim() { TrimTo(0); }

  uint64_t idle_bytes() const { return idle_bytes_.load(); }
  // Bytes handed out by Alloc and not yet freed.
  uint64_t in_use_bytes() const { return in_use_bytes_.load(); }
  // Allocations served from idle buffers / from the system.
  uint64_t reused() const { return reused_.load(); }
  uint64_t fresh() const { return fresh_.load(); }
  // Seconds Alloc spent getting fresh memory from the system (mapping and
  // faulting it in) / Reserve spent populating chunks.
  double fresh_seconds() const { return fresh_ns_.load() / 1e9; }
  double reserve_seconds() const { return reserve_ns_.load() / 1e9; }

 private:
  static size_t Bytes(unsigned order);
  uint8_t* AllocFresh(unsigned order);
  // An idle buffer of `order`, carved from the smallest idle buffer of a
  // larger order when there is none (orders that come from chunks only).
  uint8_t* TakeIdle(unsigned order);
  uint8_t* TakeIdleLocked(unsigned order);
  // TakeIdle, waiting for the reserve thread's chunks while it populates.
  uint8_t* TakeIdleOrWait(unsigned order);
  // Splits `p` of order `from` down to `order`: returns its first part and
  // keeps the rest idle. Caller accounts `p` as not idle.
  uint8_t* SplitLocked(uint8_t* p, unsigned from, unsigned order);
  void PushIdleLocked(uint8_t* p, unsigned order);
  uint64_t IdleLimit(uint64_t in_use) const;
  // A fresh zeroed 2 MiB chunk: returns its first buffer of `order`, keeps
  // the rest idle.
  uint8_t* CarveHugeChunk(unsigned order);
  // Populates chunks until the pool holds reserve_bytes(); stops early when
  // stop_reserve_ is set.
  void PopulateReserve();
  void StopReserveThread();
  void TrimTo(uint64_t limit);

  std::atomic<uint64_t> max_idle_bytes_;
  std::atomic<uint64_t> reserve_bytes_{0};
  std::atomic<uint64_t> idle_bytes_{0};
  std::atomic<uint64_t> in_use_bytes_{0};
  std::atomic<uint64_t> reused_{0};
  std::atomic<uint64_t> fresh_{0};
  std::atomic<uint64_t> fresh_ns_{0};
  std::atomic<uint64_t> reserve_ns_{0};
  std::atomic<bool> stop_reserve_{false};
  std::atomic<bool> populating_{false};  // changed under mu_
  std::mutex mu_;
  std::condition_variable published_;    // a chunk or populating_ changed
  std::vector<uint8_t*> idle_[kOrders];  // guarded by mu_
  std::mutex reserve_mu_;  // serializes Reserve* and guards reserve_thread_
  std::thread reserve_thread_;
};

}  // namespace iomap

#endif  // IOMAPD_IOMAP_FOLIO_POOL_H_
