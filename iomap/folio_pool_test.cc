// FolioPool: reuse, buddy-style carving, the idle bound, the reserve,
// zero-fill on request, concurrency; and
// end to end through the write path: a reused buffer's old bytes never
// reach a reader (partial writes, short copies, revalidation, holes,
// mapped read-modify-write).
#include "iomap/folio_pool.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "iomap/buffered_io.h"
#include "iomap/testing/fake_fs.h"
#include "iomap/testing/mem_device.h"

namespace iomap {
namespace {

bool AllBytes(const uint8_t* p, size_t n, uint8_t v) {
  return std::all_of(p, p + n, [v](uint8_t b) { return b == v; });
}

TEST(FolioPoolTest, FreshBuffersAreZeroAndAligned) {
  FolioPool pool;
  for (unsigned order : {0u, 3u, 5u, 9u}) {
    uint8_t* p = pool.Alloc(order, FolioPool::Fill::kUndefined);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kPageSize, 0u);
    EXPECT_TRUE(AllBytes(p, kPageSize << order, 0)) << "order " << order;
    pool.Free(p, order);
  }
  EXPECT_EQ(pool.fresh(), 4u);
}

TEST(FolioPoolTest, FreedBufferIsReusedAndZeroedOnRequest) {
  FolioPool pool;
  const unsigned order = 6;
  const size_t bytes = kPageSize << order;
  uint8_t* p = pool.Alloc(order, FolioPool::Fill::kZeroed);
  std::memset(p, 0xa5, bytes);
  // The rest of p's 2 MiB chunk is idle already.
  const uint64_t idle = pool.idle_bytes();
  EXPECT_EQ(idle, (uint64_t{2} << 20) - bytes);
  pool.Free(p, order);
  EXPECT_EQ(pool.idle_bytes(), idle + bytes);
  const uint64_t reused = pool.reused();
  uint8_t* q = pool.Alloc(order, FolioPool::Fill::kZeroed);
  EXPECT_EQ(q, p);
  EXPECT_EQ(pool.reused(), reused + 1);
  EXPECT_EQ(pool.idle_bytes(), idle);
  EXPECT_TRUE(AllBytes(q, bytes, 0));
  std::memset(q, 0xa5, bytes);
  pool.Free(q, order);
  // kUndefined hands the old bytes back: callers must overwrite them.
  uint8_t* r = pool.Alloc(order, FolioPool::Fill::kUndefined);
  EXPECT_EQ(r, p);
  EXPECT_TRUE(AllBytes(r, bytes, 0xa5));
  pool.Free(r, order);
  // A smaller order may be carved from it: zeroed on request too.
  std::memset(pool.Alloc(order, FolioPool::Fill::kUndefined), 0xa5, bytes);
  pool.Free(p, order);
  uint8_t* s = pool.Alloc(order - 1, FolioPool::Fill::kZeroed);
  EXPECT_TRUE(AllBytes(s, bytes / 2, 0));
  pool.Free(s, order - 1);
}

TEST(FolioPoolTest, SmallerOrdersAreCarvedBuddyStyle) {
  FolioPool pool(uint64_t{4} << 20);
  const size_t huge = kPageSize << 9;
  uint8_t* big = pool.Alloc(9, FolioPool::Fill::kZeroed);
  pool.Free(big, 9);
  ASSERT_EQ(pool.idle_bytes(), huge);
  // 128 KiB from the idle 2 MiB buffer: the rest stays idle as one buffer
  // of each order 5..8, and the next requests take those, not new memory.
  uint8_t* a = pool.Alloc(5, FolioPool::Fill::kUndefined);
  EXPECT_EQ(a, big);
  EXPECT_EQ(pool.idle_bytes(), huge - (kPageSize << 5));
  EXPECT_EQ(pool.in_use_bytes(), kPageSize << 5);
  uint8_t* b = pool.Alloc(8, FolioPool::Fill::kUndefined);
  EXPECT_EQ(b, big + (kPageSize << 8));
  uint8_t* c = pool.Alloc(5, FolioPool::Fill::kUndefined);
  EXPECT_EQ(c, big + (kPageSize << 5));
  EXPECT_EQ(pool.fresh(), 1u);
  // Orders below 128 KiB come from the heap, never from a chunk.
  uint8_t* d = pool.Alloc(4, FolioPool::Fill::kUndefined);
  EXPECT_TRUE(d < big || d >= big + huge);
  EXPECT_EQ(pool.fresh(), 2u);
  pool.Free(a, 5);
  pool.Free(b, 8);
  pool.Free(c, 5);
  pool.Free(d, 4);
  EXPECT_EQ(pool.in_use_bytes(), 0u);
}

// in use + idle <= max(in use + max_idle_bytes, reserve).
void ExpectWithinBound(const FolioPool& pool) {
  const uint64_t in_use = pool.in_use_bytes();
  EXPECT_LE(in_use + pool.idle_bytes(),
            std::max(in_use + pool.max_idle_bytes(), pool.reserve_bytes()));
}

TEST(FolioPoolTest, ReserveIsPopulatedAheadAndServesAllocations) {
  const uint64_t huge = kPageSize << 9;
  FolioPool pool(0);
  pool.Reserve(4 * huge - 1);  // rounded up to whole chunks
  EXPECT_EQ(pool.reserve_bytes(), 4 * huge);
  EXPECT_EQ(pool.idle_bytes(), 4 * huge);
  EXPECT_EQ(pool.fresh(), 0u);
  EXPECT_GT(pool.reserve_seconds(), 0.0);
  std::vector<uint8_t*> bufs;
  for (int i = 0; i < 8; i++) {
    bufs.push_back(pool.Alloc(8, FolioPool::Fill::kUndefined));
    EXPECT_TRUE(AllBytes(bufs.back(), huge / 2, 0));
  }
  EXPECT_EQ(pool.fresh(), 0u);
  EXPECT_EQ(pool.idle_bytes(), 0u);
  // Beyond the reserve memory comes from the system, and what is freed is
  // kept only up to the reserve (max_idle_bytes is 0 here).
  bufs.push_back(pool.Alloc(8, FolioPool::Fill::kUndefined));
  EXPECT_EQ(pool.fresh(), 1u);
  ExpectWithinBound(pool);
  for (uint8_t* p : bufs) pool.Free(p, 8);
  EXPECT_EQ(pool.idle_bytes(), 4 * huge);
  ExpectWithinBound(pool);
  // Dropping the reserve returns the memory.
  pool.Reserve(0);
  EXPECT_EQ(pool.idle_bytes(), 0u);
}

TEST(FolioPoolTest, ReserveShrinksAsMemoryIsInUse) {
  const uint64_t huge = kPageSize << 9;
  FolioPool pool(huge);
  // Memory in use counts toward the reserve: only the rest is populated.
  std::vector<uint8_t*> small;
  for (int i = 0; i < 512; i++) {
    small.push_back(pool.Alloc(0, FolioPool::Fill::kUndefined));
  }
  pool.Reserve(3 * huge);
  EXPECT_EQ(pool.idle_bytes(), 2 * huge);
  // Heap allocations beyond it trim the idle chunks back to the bound.
  for (int i = 0; i < 1024; i++) {
    small.push_back(pool.Alloc(0, FolioPool::Fill::kUndefined));
  }
  ExpectWithinBound(pool);
  EXPECT_EQ(pool.idle_bytes(), huge);
  for (uint8_t* p : small) pool.Free(p, 0);
  ExpectWithinBound(pool);
}

TEST(FolioPoolTest, RandomUseStaysWithinTheBound) {
  const unsigned seed = 7;
  std::mt19937 rng(seed);
  FolioPool pool(uint64_t{1} << 20);
  pool.Reserve(uint64_t{8} << 20);
  std::vector<std::pair<uint8_t*, unsigned>> live;
  for (int i = 0; i < 2000; i++) {
    if (live.empty() || rng() % 3 != 0) {
      const unsigned order = rng() % FolioPool::kOrders;
      live.emplace_back(pool.Alloc(order, FolioPool::Fill::kZeroed), order);
    } else {
      const size_t k = rng() % live.size();
      pool.Free(live[k].first, live[k].second);
      live[k] = live.back();
      live.pop_back();
    }
    if (live.size() > 20) {
      pool.Free(live.front().first, live.front().second);
      live.erase(live.begin());
    }
    const uint64_t in_use = pool.in_use_bytes();
    ASSERT_LE(in_use + pool.idle_bytes(),
              std::max(in_use + pool.max_idle_bytes(), pool.reserve_bytes()))
        << "seed " << seed << " step " << i;
  }
  for (auto& [p, order] : live) pool.Free(p, order);
  EXPECT_EQ(pool.in_use_bytes(), 0u);
}

TEST(FolioPoolTest, ReserveAsyncRacesWithAllocations) {
  FolioPool pool(0);
  pool.ReserveAsync(uint64_t{32} << 20);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; t++) {
    threads.emplace_back([&pool, t] {
      std::mt19937 rng(200 + t);
      for (int i = 0; i < 200; i++) {
        const unsigned order = 5 + rng() % 5;
        uint8_t* p = pool.Alloc(order, FolioPool::Fill::kZeroed);
        ASSERT_TRUE(AllBytes(p, kPageSize << order, 0)) << "seed " << 200 + t;
        std::memset(p, t + 1, kPageSize << order);
        pool.Free(p, order);
      }
    });
  }
  for (auto& th : threads) th.join();
  pool.WaitReserved();
  EXPECT_EQ(pool.in_use_bytes(), 0u);
  // Allocations that found nothing idle waited for the reserve's chunks
  // rather than faulting memory in beside it.
  EXPECT_FALSE(pool.populating());
  EXPECT_EQ(pool.fresh(), 0u);
  EXPECT_EQ(pool.idle_bytes(), uint64_t{32} << 20);
  ExpectWithinBound(pool);
}

TEST(FolioPoolTest, DestructionStopsABackgroundReserve) {
  auto pool = std::make_unique<FolioPool>();
  pool->ReserveAsync(uint64_t{1} << 30);
  pool.reset();  // returns promptly; nothing leaks (ASAN's leak check)
}

TEST(FolioPoolTest, IdleBytesStayWithinTheBound) {
  const unsigned order = 5;  // 128 KiB
  const size_t bytes = kPageSize << order;
  FolioPool pool(3 * bytes);
  std::vector<uint8_t*> bufs;
  for (int i = 0; i < 5; i++) {
    bufs.push_back(pool.Alloc(order, FolioPool::Fill::kUndefined));
  }
  for (uint8_t* p : bufs) pool.Free(p, order);
  EXPECT_EQ(pool.idle_bytes(), 3 * bytes);
  pool.set_max_idle_bytes(bytes);
  EXPECT_EQ(pool.idle_bytes(), bytes);
  pool.Trim();
  EXPECT_EQ(pool.idle_bytes(), 0u);
  FolioPool none(0);
  uint8_t* p = none.Alloc(0, FolioPool::Fill::kZeroed);
  none.Free(p, 0);
  EXPECT_EQ(none.idle_bytes(), 0u);
}

TEST(FolioPoolTest, ConcurrentAllocAndFree) {
  FolioPool pool(uint64_t{8} << 20);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&pool, t] {
      std::mt19937 rng(100 + t);
      for (int i = 0; i < 300; i++) {
        const unsigned order = rng() % 6;
        uint8_t* p = pool.Alloc(order, FolioPool::Fill::kZeroed);
        ASSERT_TRUE(AllBytes(p, kPageSize << order, 0)) << "seed " << 100 + t;
        std::memset(p, t + 1, kPageSize << order);
        pool.Free(p, order);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(pool.idle_bytes(), pool.max_idle_bytes());
  EXPECT_GT(pool.reused(), 0u);
}

TEST(FolioPoolTest, FoliosReturnTheirDataToTheGlobalPool) {
  FolioPool* pool = FolioPool::Global();
  pool->Trim();
  auto* f = new Folio(nullptr, 0, 4, 12);
  uint8_t* data = f->data();
  EXPECT_FALSE(f->DataUndefined());
  f->Put();
  EXPECT_EQ(pool->idle_bytes(), kPageSize << 4);
  auto* g = new Folio(nullptr, 0, 4, 12, FolioData::kUndefined);
  EXPECT_EQ(g->data(), data);
  EXPECT_TRUE(g->DataUndefined());
  g->Put();
}

TEST(FolioPoolTest, UnlockZeroesUndefinedData) {
  FolioPool::Global()->Trim();
  const unsigned order = 3;
  uint8_t* p = FolioPool::Global()->Alloc(order, FolioPool::Fill::kZeroed);
  std::memset(p, 0xa5, kPageSize << order);
  FolioPool::Global()->Free(p, order);
  auto* f = new Folio(nullptr, 0, order, 12, FolioData::kUndefined);
  f->Lock();
  ASSERT_EQ(f->data(), p);
  f->Unlock();
  EXPECT_FALSE(f->DataUndefined());
  EXPECT_TRUE(AllBytes(f->data(), f->size(), 0));
  f->Put();
}

// --- End to end: stale pool bytes never reach a reader.

using testing::FakeFs;
using testing::MemDevice;

constexpr uint8_t kStale = 0xa5;
constexpr uint8_t kData = 0x11;
constexpr uint8_t kDisk = 0x33;
constexpr int64_t kFileSize = 4 << 20;

class StaleDataTest
    : public ::testing::TestWithParam<std::tuple<unsigned, bool>> {
 protected:
  StaleDataTest()
      : dev_(16 << 20, /*async=*/true),
        fs_(&dev_, std::get<0>(GetParam()), std::get<1>(GetParam()), &cache_) {}

  Inode* inode() { return fs_.inode(); }

  // Fills the global pool with buffers of every order holding kStale.
  void SeedPool() {
    FolioPool* pool = FolioPool::Global();
    pool->Trim();
    std::vector<std::pair<uint8_t*, unsigned>> bufs;
    for (unsigned order = 0; order < FolioPool::kOrders; order++) {
      for (int i = 0; i < 3; i++) {
        uint8_t* p = pool->Alloc(order, FolioPool::Fill::kUndefined);
        std::memset(p, kStale, kPageSize << order);
        bufs.emplace_back(p, order);
      }
    }
    for (auto& [p, order] : bufs) pool->Free(p, order);
    reused_before_ = pool->reused();
  }

  // Fills the global pool with 2 MiB buffers holding kStale only, so every
  // folio of 128 KiB or more is carved from one.
  void SeedPoolWithChunks() {
    FolioPool* pool = FolioPool::Global();
    pool->Trim();
    const unsigned top = FolioPool::kOrders - 1;
    std::vector<uint8_t*> bufs;
    for (int i = 0; i < 4; i++) {
      bufs.push_back(pool->Alloc(top, FolioPool::Fill::kUndefined));
      std::memset(bufs.back(), kStale, kPageSize << top);
    }
    for (uint8_t* p : bufs) pool->Free(p, top);
    reused_before_ = pool->reused();
  }

  int64_t Write(int64_t pos, size_t len, size_t fault_at = size_t(-1)) {
    std::vector<uint8_t> data(len, kData);
    BufferSource src(data.data(), data.size(), fault_at);
    base::WriterLock l(&inode()->locks().rwsem);
    return FileBufferedWrite(inode(), pos, &src, 0, fs_, &fs_);
  }

  // Reads the whole file: no byte is stale.
  void ExpectNoStaleRead() {
    inode()->i_size_write(std::max<int64_t>(inode()->i_size_read(), kFileSize));
    std::vector<uint8_t> buf(kFileSize);
    {
      base::ReaderLock l(&inode()->locks().rwsem);
      ASSERT_EQ(FileBufferedRead(inode(), 0, kFileSize, buf.data(), 0, fs_),
                kFileSize);
    }
    for (int64_t i = 0; i < kFileSize; i++) {
      ASSERT_NE(buf[i], kStale) << "offset " << i;
    }
  }

  // No cached folio holds a stale byte anywhere, uptodate or not.
  void ExpectNoStaleCached() {
    for (FolioRef& f : inode()->mapping()->FoliosInRange(0, INT64_MAX >> 13)) {
      f->Lock();
      const uint8_t* p = f->data();
      const bool stale = std::find(p, p + f->size(), kStale) != p + f->size();
      f->Unlock();
      ASSERT_FALSE(stale) << "folio at " << f->pos();
    }
  }

  void ExpectPoolReused() {
    EXPECT_GT(FolioPool::Global()->reused(), reused_before_);
  }

  PageCache cache_;
  MemDevice dev_;
  FakeFs fs_;
  uint64_t reused_before_ = 0;
};

TEST_P(StaleDataTest, PartialWritesIntoHoles) {
  SeedPool();
  ASSERT_EQ(Write(100, 3000), 3000);
  ASSERT_EQ(Write((1 << 20) + 4096 * 3 + 7, 70000), 70000);
  ASSERT_EQ(Write(2 << 20, 1 << 20), 1 << 20);  // whole folios
  ASSERT_EQ(Write((3 << 20) + 512, (1 << 20) - 1024), (1 << 20) - 1024);
  ExpectPoolReused();
  ExpectNoStaleCached();
  ExpectNoStaleRead();
}

TEST_P(StaleDataTest, FoliosCarvedFromStaleChunks) {
  SeedPoolWithChunks();
  ASSERT_EQ(Write(100, 3000), 3000);
  ASSERT_EQ(Write((1 << 20) + 4096 * 3 + 7, 70000), 70000);
  ASSERT_EQ(Write(2 << 20, 1 << 20), 1 << 20);
  EXPECT_EQ(Write((3 << 20) + 512, 1 << 19, 4000), 4000);
  // Only large folios (>= 128 KiB) are carved from chunks.
  if (std::get<1>(GetParam())) ExpectPoolReused();
  ExpectNoStaleCached();
  ExpectNoStaleRead();
}

TEST_P(StaleDataTest, ShortCopies) {
  SeedPool();
  // Whole-folio writes whose copy stops early: the folio is kept, its data
  // not written must not be the pool's.
  EXPECT_EQ(Write(0, 1 << 20, 5000), 5000);
  EXPECT_EQ(Write(2 << 20, 1 << 20, 0x40000 + 1), 0x40000 + 1);
  EXPECT_EQ(Write((3 << 20) + 300, 200000, 90000), 90000);
  ExpectPoolReused();
  ExpectNoStaleCached();
  ExpectNoStaleRead();
}

TEST_P(StaleDataTest, RevalidatedWriteThatThenFails) {
  SeedPool();
  bool bumped = false;
  fs_.after_get_folio = [&](int64_t) {
    if (!bumped) {
      // The mapping goes stale under the new folio, and the next
      // IomapBegin fails: the folio stays cached, never written.
      bumped = true;
      fs_.SetExtent(kFileSize, 4096, Iomap::Type::kHole);
      fs_.begin_error = -EIO;
    }
  };
  EXPECT_EQ(Write(1 << 20, 1 << 20), -EIO);
  EXPECT_TRUE(bumped);
  fs_.begin_error = 0;
  EXPECT_GT(inode()->mapping()->nr_folios(), 0u);
  ExpectPoolReused();
  ExpectNoStaleCached();
  ExpectNoStaleRead();
}

TEST_P(StaleDataTest, MappedReadModifyWrite) {
  std::memset(dev_.data(), kDisk, kFileSize);
  fs_.SetExtent(0, kFileSize, Iomap::Type::kMapped, 0);
  inode()->i_size_write(kFileSize);
  SeedPool();
  ASSERT_EQ(Write(4096 + 10, 9000), 9000);
  EXPECT_EQ(Write(1 << 20, 1 << 20, 12345), 12345);
  ASSERT_EQ(Write(2 << 20, 1 << 20), 1 << 20);
  ExpectPoolReused();
  ExpectNoStaleCached();
  ExpectNoStaleRead();
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, StaleDataTest,
                         ::testing::Combine(::testing::Values(9u, 12u, 16u),
                                            ::testing::Bool()));

}  // namespace
}  // namespace iomap
