// iomap::FolioPool: the memory behind folio data. Buffers of freed folios
// are kept per order and handed to the next folio of that order, so a
// pagecache that reclaims as fast as it allocates (a long sequential write
// through a bounded cache) stops paying for mmap, page faults and munmap on
// every large folio.
//
// - Buffers of 128 KiB or more are carved from 2 MiB-aligned anonymous
//   chunks, each asked to be a transparent huge page (MADV_HUGEPAGE) and
//   faulted in at once: one fault per 2 MiB instead of one per 4 KiB, fewer
//   TLB misses, cheaper page pinning for O_DIRECT writeback. The other
//   pieces of a chunk become idle buffers of the same order. Memory from the
//   kernel is already zero. Smaller buffers come from posix_memalign.
// - A freed buffer goes to the idle list of its order while the pool's idle
//   bytes stay within max_idle_bytes(); otherwise it returns to the system.
//   Idle buffers stay resident, so reusing one faults nothing in.
// - Alloc(order, kZeroed) always returns zeros; Alloc(order, kUndefined)
//   may return a reused buffer's old bytes (another file's data): callers
//   that ask for it must write or zero every byte before anyone can read it
//   (Folio enforces that, see folio.h).
//
// Memory: the pool holds at most max_idle_bytes() idle (visible through
// idle_bytes()); buffers in use are accounted by their owners (PageCache's
// cached_bytes). Under AddressSanitizer idle buffers are poisoned, so a use
// of a freed folio's data is still reported.
//
// Thread-safety: thread-safe. The internal lock is a leaf taken by Free()
// from ~Folio, which may run under any lock, so it is a plain std::mutex
// outside the lock-order checker (nothing is called while it is held).
#ifndef IOMAPD_IOMAP_FOLIO_POOL_H_
#define IOMAPD_IOMAP_FOLIO_POOL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
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
  // Returns every idle buffer to the system. REQUIRES: no buffer of this
  // pool is still in use (the global pool is never destroyed).
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

  uint64_t max_idle_bytes() const { return max_idle_bytes_.load(); }
  // Changes the bound; idle buffers beyond it return to the system now.
  void set_max_idle_bytes(uint64_t bytes);
  // Returns every idle buffer to the system.
  void Trim() { TrimTo(0); }

  uint64_t idle_bytes() const { return idle_bytes_.load(); }
  // Allocations served from idle buffers / from the system.
  uint64_t reused() const { return reused_.load(); }
  uint64_t fresh() const { return fresh_.load(); }

 private:
  static size_t Bytes(unsigned order);
  uint8_t* TakeIdle(unsigned order);
  // A fresh zeroed 2 MiB chunk: returns its first buffer of `order`, frees
  // the rest into the pool.
  uint8_t* CarveHugeChunk(unsigned order);
  void TrimTo(uint64_t limit);

  std::atomic<uint64_t> max_idle_bytes_;
  std::atomic<uint64_t> idle_bytes_{0};
  std::atomic<uint64_t> reused_{0};
  std::atomic<uint64_t> fresh_{0};
  std::mutex mu_;
  std::vector<uint8_t*> idle_[kOrders];  // guarded by mu_
};

}  // namespace iomap

#endif  // IOMAPD_IOMAP_FOLIO_POOL_H_
