#include "iomap/folio_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
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

// Faults `bytes` at `data` in, writable, in one call where the kernel has
// MADV_POPULATE_WRITE (5.14); otherwise, or when that call fails, by
// touching every page (which fails as any first touch would).
void Populate(uint8_t* data, size_t bytes) {
  static std::atomic<bool> have_populate_write{true};
  if (have_populate_write.load(std::memory_order_relaxed)) {
    if (madvise(data, bytes, MADV_POPULATE_WRITE) == 0) return;
    // An older kernel (EINVAL) or a filter (ENOSYS, EPERM): never again.
    if (errno == EINVAL || errno == ENOSYS || errno == EPERM) {
      have_populate_write.store(false, std::memory_order_relaxed);
    }
  }
  for (size_t off = 0; off < bytes; off += kPoolPageSize) {
    reinterpret_cast<volatile uint8_t*>(data)[off] = 0;
  }
}

// A 2 MiB chunk on its own 2 MiB-aligned mapping, backed by a transparent
// huge page when the kernel has one: one fault instead of 512, and fewer
// TLB misses and cheaper page pinning when the data goes to O_DIRECT I/O.
// Populated before it is returned.
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
  Populate(data, bytes);
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

uint64_t NanosSince(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::steady_clock::now() - start)
          .count());
}

}  // namespace

FolioPool::FolioPool(uint64_t max_idle_bytes)
    : max_idle_bytes_(max_idle_bytes) {}

FolioPool::~FolioPool() {
  {
    std::lock_guard<std::mutex> l(reserve_mu_);
    StopReserveThread();
  }
  Trim();
}

FolioPool* FolioPool::Global() {
  static FolioPool* pool = new FolioPool();
  return pool;
}

size_t FolioPool::Bytes(unsigned order) { return kPoolPageSize << order; }

uint64_t FolioPool::IdleLimit(uint64_t in_use) const {
  const uint64_t reserve = reserve_bytes_.load();
  const uint64_t rest = reserve > in_use ? reserve - in_use : 0;
  return std::max(max_idle_bytes_.load(), rest);
}

uint64_t FolioPool::idle_limit() const {
  return IdleLimit(in_use_bytes_.load());
}

void FolioPool::PushIdleLocked(uint8_t* p, unsigned order) {
  Poison(p, Bytes(order));
  idle_[order].push_back(p);
  idle_bytes_.fetch_add(Bytes(order));
}

uint8_t* FolioPool::SplitLocked(uint8_t* p, unsigned from, unsigned order) {
  for (unsigned o = from; o-- > order;) PushIdleLocked(p + Bytes(o), o);
  return p;
}

uint8_t* FolioPool::TakeIdleLocked(unsigned order) {
  if (!idle_[order].empty()) {
    uint8_t* p = idle_[order].back();
    idle_[order].pop_back();
    idle_bytes_.fetch_sub(Bytes(order));
    return p;
  }
  // Only chunk-backed orders split: a piece is returned with munmap.
  if (Bytes(order) < kMmapMinBytes) return nullptr;
  for (unsigned from = order + 1; from < kOrders; from++) {
    if (idle_[from].empty()) continue;
    uint8_t* p = idle_[from].back();
    idle_[from].pop_back();
    idle_bytes_.fetch_sub(Bytes(from));
    return SplitLocked(p, from, order);
  }
  return nullptr;
}

uint8_t* FolioPool::TakeIdle(unsigned order) {
  std::lock_guard<std::mutex> l(mu_);
  return TakeIdleLocked(order);
}

uint8_t* FolioPool::TakeIdleOrWait(unsigned order) {
  std::unique_lock<std::mutex> l(mu_);
  uint8_t* p = TakeIdleLocked(order);
  if (Bytes(order) < kMmapMinBytes) return p;
  while (p == nullptr && populating_.load()) {
    published_.wait(l);
    p = TakeIdleLocked(order);
  }
  return p;
}

uint8_t* FolioPool::Alloc(unsigned order, Fill fill) {
  if (order >= kOrders) {
    std::fprintf(stderr, "iomap: folio order %u out of range\n", order);
    std::abort();
  }
  const size_t bytes = Bytes(order);
  in_use_bytes_.fetch_add(bytes);
  uint8_t* p = populating_.load() ? TakeIdleOrWait(order) : TakeIdle(order);
  if (p == nullptr) return AllocFresh(order);  // already zero
  reused_.fetch_add(1, std::memory_order_relaxed);
  Unpoison(p, bytes);
  if (fill == Fill::kZeroed) std::memset(p, 0, bytes);
  return p;
}

uint8_t* FolioPool::AllocFresh(unsigned order) {
  fresh_.fetch_add(1, std::memory_order_relaxed);
  const auto start = std::chrono::steady_clock::now();
  const size_t bytes = Bytes(order);
  uint8_t* p =
      bytes < kMmapMinBytes ? SmallAlloc(bytes) : CarveHugeChunk(order);
  fresh_ns_.fetch_add(NanosSince(start), std::memory_order_relaxed);
  // The pool grew: a reserve's share of idle memory shrinks with it.
  const uint64_t limit = idle_limit();
  if (idle_bytes_.load() > limit) TrimTo(limit);
  return p;
}

uint8_t* FolioPool::CarveHugeChunk(unsigned order) {
  const size_t bytes = Bytes(order);
  const uint64_t rest = kHugeBytes - bytes;
  const uint64_t limit = idle_limit();
  if (rest > limit) return ExactAlloc(bytes);
  // The other pieces become idle buffers: make room for them by dropping
  // idle buffers rather than unmapping part of a huge page, which splits it.
  TrimTo(limit - rest);
  uint8_t* chunk = HugeAlloc(kHugeBytes);
  std::lock_guard<std::mutex> l(mu_);
  return SplitLocked(chunk, kOrders - 1, order);
}

void FolioPool::Free(uint8_t* data, unsigned order) {
  if (data == nullptr) return;
  const size_t bytes = Bytes(order);
  const uint64_t in_use = in_use_bytes_.fetch_sub(bytes) - bytes;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (idle_bytes_.load() + bytes <= IdleLimit(in_use)) {
      PushIdleLocked(data, order);
      if (populating_.load()) published_.notify_all();
      return;
    }
  }
  SystemFree(data, bytes);
}

void FolioPool::Reserve(uint64_t bytes) {
  std::lock_guard<std::mutex> l(reserve_mu_);
  StopReserveThread();
  reserve_bytes_.store((bytes + kHugeBytes - 1) & ~uint64_t{kHugeBytes - 1});
  if (bytes == 0) {
    TrimTo(idle_limit());
    return;
  }
  PopulateReserve();
}

void FolioPool::ReserveAsync(uint64_t bytes) {
  std::lock_guard<std::mutex> l(reserve_mu_);
  StopReserveThread();
  reserve_bytes_.store((bytes + kHugeBytes - 1) & ~uint64_t{kHugeBytes - 1});
  if (bytes == 0) {
    TrimTo(idle_limit());
    return;
  }
  {
    std::lock_guard<std::mutex> m(mu_);
    populating_.store(true);
  }
  reserve_thread_ = std::thread([this] {
    PopulateReserve();
    std::lock_guard<std::mutex> m(mu_);
    populating_.store(false);
    published_.notify_all();
  });
}

void FolioPool::WaitReserved() {
  std::lock_guard<std::mutex> l(reserve_mu_);
  if (reserve_thread_.joinable()) reserve_thread_.join();
}

void FolioPool::StopReserveThread() {
  if (!reserve_thread_.joinable()) return;
  stop_reserve_.store(true);
  reserve_thread_.join();
  stop_reserve_.store(false);
}

void FolioPool::PopulateReserve() {
  while (!stop_reserve_.load()) {
    const uint64_t held = in_use_bytes_.load() + idle_bytes_.load();
    if (held + kHugeBytes > reserve_bytes_.load()) return;
    const auto start = std::chrono::steady_clock::now();
    uint8_t* chunk = HugeAlloc(kHugeBytes);
    reserve_ns_.fetch_add(NanosSince(start), std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> l(mu_);
      if (idle_bytes_.load() + kHugeBytes <= IdleLimit(in_use_bytes_.load())) {
        PushIdleLocked(chunk, kOrders - 1);
        published_.notify_all();
        continue;
      }
    }
    SystemFree(chunk, kHugeBytes);  // allocations overtook the reserve
    return;
  }
}

void FolioPool::set_max_idle_bytes(uint64_t bytes) {
  max_idle_bytes_.store(bytes);
  TrimTo(idle_limit());
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
