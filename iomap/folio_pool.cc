#include "iomap/folio_pool.h"

#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IOMAPD_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define IOMAPD_ASAN 1
#endif
#ifdef IOMAPD_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace iomap {

namespace {

constexpr size_t kPoolPageSize = 4096;
// From this size up a buffer is its own mapping (glibc would mmap it too).
constexpr size_t kMmapMinBytes = size_t{128} << 10;
// The x86-64 transparent huge page size.
constexpr size_t kHugeBytes = size_t{2} << 20;

void Poison(uint8_t* p, size_t bytes) {
#ifdef IOMAPD_ASAN
  ASAN_POISON_MEMORY_REGION(p, bytes);
#else
  (void)p;
  (void)bytes;
#endif
}

void Unpoison(uint8_t* p, size_t bytes) {
#ifdef IOMAPD_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, bytes);
#else
  (void)p;
  (void)bytes;
#endif
}

[[noreturn]] void OutOfMemory(size_t bytes) {
  std::fprintf(stderr, "iomap: out of memory allocating a %zu byte folio\n",
               bytes);
  std::abort();
}

// A 2 MiB chunk on its own 2 MiB-aligned mapping, backed by a transparent
// huge page when the kernel has one: one fault instead of 512, and fewer
// TLB misses and cheaper page pinning when the data goes to O_DIRECT I/O.
uint8_t* HugeAlloc(size_t bytes) {
  const size_t span = 2 * bytes;
  void* p = mmap(nullptr, span, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) OutOfMemory(bytes);
  const uintptr_t base = reinterpret_cast<uintptr_t>(p);
  const uintptr_t start = (base + bytes - 1) & ~(uintptr_t{bytes} - 1);
  if (start > base) munmap(p, start - base);
  const uintptr_t tail = base + span - (start + bytes);
  if (tail > 0) munmap(reinterpret_cast<void*>(start + bytes), tail);
  auto* data = reinterpret_cast<uint8_t*>(start);
  madvise(data, bytes, MADV_HUGEPAGE);
  // Fault it in now (one huge page, or 4 KiB pages without THP).
  for (size_t off = 0; off < bytes; off += kPoolPageSize) {
    reinterpret_cast<volatile uint8_t*>(data)[off] = 0;
  }
  return data;
}

// A buffer on its own mapping, faulted in at once (zero from the kernel).
uint8_t* ExactAlloc(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) OutOfMemory(bytes);
  return static_cast<uint8_t*>(p);
}

// A new zero-filled buffer from the system (below kMmapMinBytes).
uint8_t* SmallAlloc(size_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, kPoolPageSize, bytes) != 0) OutOfMemory(bytes);
  std::memset(p, 0, bytes);
  return static_cast<uint8_t*>(p);
}

void SystemFree(uint8_t* p, size_t bytes) {
  if (bytes >= kMmapMinBytes) {
    munmap(p, bytes);
  } else {
    std::free(p);
  }
}

}  // namespace

FolioPool::FolioPool(uint64_t max_idle_bytes)
    : max_idle_bytes_(max_idle_bytes) {}

FolioPool::~FolioPool() { Trim(); }

FolioPool* FolioPool::Global() {
  static FolioPool* pool = new FolioPool();
  return pool;
}

size_t FolioPool::Bytes(unsigned order) { return kPoolPageSize << order; }

uint8_t* FolioPool::TakeIdle(unsigned order) {
  std::lock_guard<std::mutex> l(mu_);
  if (idle_[order].empty()) return nullptr;
  uint8_t* p = idle_[order].back();
  idle_[order].pop_back();
  idle_bytes_.fetch_sub(Bytes(order));
  return p;
}

uint8_t* FolioPool::Alloc(unsigned order, Fill fill) {
  if (order >= kOrders) {
    std::fprintf(stderr, "iomap: folio order %u out of range\n", order);
    std::abort();
  }
  const size_t bytes = Bytes(order);
  uint8_t* p = TakeIdle(order);
  if (p == nullptr) {
    fresh_.fetch_add(1, std::memory_order_relaxed);
    if (bytes < kMmapMinBytes) return SmallAlloc(bytes);
    return CarveHugeChunk(order);  // already zero
  }
  reused_.fetch_add(1, std::memory_order_relaxed);
  Unpoison(p, bytes);
  if (fill == Fill::kZeroed) std::memset(p, 0, bytes);
  return p;
}

uint8_t* FolioPool::CarveHugeChunk(unsigned order) {
  const size_t bytes = Bytes(order);
  const uint64_t rest = kHugeBytes - bytes;
  const uint64_t max = max_idle_bytes_.load();
  if (rest > max) return ExactAlloc(bytes);
  // The other pieces become idle buffers of this order: make room for them
  // by dropping idle buffers (of other orders) rather than unmapping part
  // of a huge page, which splits it.
  TrimTo(max - rest);
  uint8_t* chunk = HugeAlloc(kHugeBytes);
  for (size_t off = bytes; off < kHugeBytes; off += bytes) {
    Free(chunk + off, order);
  }
  return chunk;
}

void FolioPool::Free(uint8_t* data, unsigned order) {
  if (data == nullptr) return;
  const size_t bytes = Bytes(order);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (idle_bytes_.load() + bytes <= max_idle_bytes_.load()) {
      Poison(data, bytes);
      idle_[order].push_back(data);
      idle_bytes_.fetch_add(bytes);
      return;
    }
  }
  SystemFree(data, bytes);
}

void FolioPool::set_max_idle_bytes(uint64_t bytes) {
  max_idle_bytes_.store(bytes);
  TrimTo(bytes);
}

void FolioPool::TrimTo(uint64_t limit) {
  std::vector<std::pair<uint8_t*, unsigned>> drop;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (unsigned order = kOrders; order-- > 0 && idle_bytes_.load() > limit;) {
      while (!idle_[order].empty() && idle_bytes_.load() > limit) {
        drop.emplace_back(idle_[order].back(), order);
        idle_[order].pop_back();
        idle_bytes_.fetch_sub(Bytes(order));
      }
    }
  }
  for (auto& [p, order] : drop) {
    Unpoison(p, Bytes(order));
    SystemFree(p, Bytes(order));
  }
}

}  // namespace iomap
