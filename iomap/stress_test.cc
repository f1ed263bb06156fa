// Concurrency: writers and readers of one file (rwsem exclusive / shared)
// under a tiny cache budget, so reclaim runs beside reads, writes and read
// completions on the device thread. Every thread owns a region and checks
// its contents after each operation. Tagged for TSAN.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "iomap/buffered_io.h"
#include "iomap/testing/fake_fs.h"
#include "iomap/testing/mem_device.h"

namespace iomap {
namespace {

using testing::FakeFs;
using testing::MemDevice;

constexpr uint64_t kDevBase = 1 << 20;
constexpr int64_t kRegion = 256 << 10;
constexpr int kThreads = 4;

void Worker(FakeFs* fs, int id, unsigned seed, std::vector<uint8_t>* model) {
  Inode* inode = fs->inode();
  std::mt19937 rng(seed + id);
  const int64_t base = id * kRegion;
  std::vector<uint8_t> buf(64 << 10);
  for (int op = 0; op < 150; op++) {
    const int64_t off = rng() % (kRegion - 1);
    const size_t len = 1 + rng() % std::min<int64_t>(kRegion - off, 32 << 10);
    if (rng() % 2) {
      std::vector<uint8_t> data(len, static_cast<uint8_t>(rng()));
      BufferSource src(data.data(), len);
      base::WriterLock l(&inode->locks().rwsem);
      ASSERT_EQ(FileBufferedWrite(inode, base + off, &src, 0, *fs, fs),
                static_cast<int64_t>(len));
      std::memcpy(model->data() + off, data.data(), len);
    } else {
      base::ReaderLock l(&inode->locks().rwsem);
      ASSERT_EQ(FileBufferedRead(inode, base + off, len, buf.data(), 0, *fs),
                static_cast<int64_t>(len));
      for (size_t i = 0; i < len; i++) {
        ASSERT_EQ(buf[i], (*model)[off + i])
            << "seed " << seed << " thread " << id << " offset " << off + i;
      }
    }
  }
}

TEST(StressTest, ConcurrentReadersWritersAndReclaim) {
  const unsigned seed = 7;
  PageCacheOptions opts;
  opts.budget_bytes = 64 * 4096;
  PageCache cache(opts);
  MemDevice dev(kDevBase + kThreads * kRegion, /*async=*/true);
  FakeFs fs(&dev, 10, /*large_folios=*/true, &cache);
  // Half of each region is on the device, half is a hole.
  std::vector<std::vector<uint8_t>> models(kThreads,
                                           std::vector<uint8_t>(kRegion, 0));
  for (int t = 0; t < kThreads; t++) {
    const int64_t base = t * kRegion;
    for (int64_t i = 0; i < kRegion / 2; i++) {
      const uint8_t v = static_cast<uint8_t>(i * 31 + t);
      dev.data()[kDevBase + base + i] = v;
      models[t][i] = v;
    }
    fs.SetExtent(base, kRegion / 2, Iomap::Type::kMapped, kDevBase + base);
  }
  fs.inode()->i_size_write(kThreads * kRegion);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back(Worker, &fs, t, seed, &models[t]);
  }
  for (auto& th : threads) th.join();
  EXPECT_GT(cache.reclaimed_bytes(), 0u);
}

// The mapping of the file flips between two device copies of the same data
// while a writer does partial-block writes: every write that raced with a
// flip must be revalidated (IomapValid after the folio lock) and still land
// right. The extra IomapBegin calls show the remaps happened.
TEST(StressTest, ConcurrentRemapsDuringWrites) {
  const unsigned seed = 11;
  const int64_t size = 256 << 10;
  PageCache cache;
  MemDevice dev(kDevBase + 2 * size, /*async=*/true);
  FakeFs fs(&dev, 9, /*large_folios=*/true, &cache);
  std::vector<uint8_t> model(size);
  for (int64_t i = 0; i < size; i++) {
    model[i] = static_cast<uint8_t>(i * 17 + 5);
    dev.data()[kDevBase + i] = model[i];
    dev.data()[kDevBase + size + i] = model[i];
  }
  fs.SetExtent(0, size, Iomap::Type::kMapped, kDevBase);
  Inode* inode = fs.inode();
  inode->i_size_write(size);
  std::atomic<bool> stop{false};
  std::thread flipper([&] {
    for (int n = 0; !stop.load(); n++) {
      fs.SetExtent(0, size, Iomap::Type::kMapped,
                   kDevBase + (n % 2 == 0 ? size : 0));
      std::this_thread::yield();
    }
  });
  std::mt19937 rng(seed);
  const int writes = 400;
  for (int op = 0; op < writes; op++) {
    const int64_t off = rng() % (size - 600);
    const size_t len = 1 + rng() % 500;
    std::vector<uint8_t> data(len, static_cast<uint8_t>(rng()));
    BufferSource src(data.data(), len);
    base::WriterLock l(&inode->locks().rwsem);
    ASSERT_EQ(FileBufferedWrite(inode, off, &src, 0, fs, &fs),
              static_cast<int64_t>(len));
    std::memcpy(model.data() + off, data.data(), len);
  }
  stop = true;
  flipper.join();
  std::vector<uint8_t> got(size);
  {
    base::ReaderLock l(&inode->locks().rwsem);
    ASSERT_EQ(FileBufferedRead(inode, 0, size, got.data(), 0, fs), size);
  }
  for (int64_t i = 0; i < size; i++) {
    ASSERT_EQ(got[i], model[i]) << "seed " << seed << " offset " << i;
  }
  std::printf("remaps: %zu IomapBegin calls for %d writes\n",
              fs.begins().size(), writes);
}

// Truncation that splits large folios, racing with readers (readahead
// completions on the device thread hold folio references, so some splits
// are refused), writers and reclaim. The file is a mapped extent with a
// known pattern; a truncation to S zeroes [S, EOF block end) in the cache
// (TruncatePage), drops the cache past S (splitting) and punches the
// filesystem's blocks past S, so [S, old size) must read as zeros once the
// file grows again. Readers check every byte against the model under the
// shared rwsem; the writer changes file and model under the exclusive one.
TEST(StressTest, TruncateSplitsRaceWithReadersAndReclaim) {
  const unsigned seed = 23;
  const int64_t size = 4 << 20;
  PageCacheOptions opts;
  opts.budget_bytes = 2 << 20;
  PageCache cache(opts);
  MemDevice dev(kDevBase + size, /*async=*/true);
  FakeFs fs(&dev, 10, /*large_folios=*/true, &cache);
  std::vector<uint8_t> model(size);
  for (int64_t i = 0; i < size; i++) {
    model[i] = static_cast<uint8_t>(i * 31 + 7);
    dev.data()[kDevBase + i] = model[i];
  }
  fs.SetExtent(0, size, Iomap::Type::kMapped, kDevBase);
  Inode* inode = fs.inode();
  inode->i_size_write(size);
  std::atomic<bool> stop{false};
  auto reader = [&](int id) {
    std::mt19937 rng(seed + id);
    std::vector<uint8_t> buf(256 << 10);
    while (!stop.load()) {
      {
        base::ReaderLock l(&inode->locks().rwsem);
        const int64_t isize = inode->i_size_read();
        const int64_t off = rng() % isize;
        const size_t len =
            1 + rng() % std::min<int64_t>(isize - off, 256 << 10);
        ASSERT_EQ(FileBufferedRead(inode, off, len, buf.data(), 0, fs),
                  static_cast<int64_t>(len));
        if (std::memcmp(buf.data(), model.data() + off, len) != 0) {
          for (size_t i = 0; i < len; i++) {
            ASSERT_EQ(buf[i], model[off + i])
                << "seed " << seed << " reader " << id << " offset " << off + i;
          }
        }
      }
      // The rwsem prefers readers: leave the writer a gap.
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
  };
  std::thread r1(reader, 1), r2(reader, 2);
  std::mt19937 rng(seed);
  for (int cycle = 0; cycle < 150; cycle++) {
    {
      const int64_t off = rng() % (size / 2);
      const size_t len = 1 + rng() % (1 << 20);
      std::vector<uint8_t> data(len, static_cast<uint8_t>(0x80 + cycle));
      BufferSource src(data.data(), len);
      base::WriterLock l(&inode->locks().rwsem);
      ASSERT_EQ(FileBufferedWrite(inode, off, &src, 0, fs, &fs),
                static_cast<int64_t>(len));
      std::memcpy(model.data() + off, data.data(), len);
    }
    const int64_t newsize = size / 2 + rng() % (size / 2);
    {
      base::WriterLock l(&inode->locks().rwsem);
      base::WriterLock m(&inode->locks().invalidate);
      ASSERT_EQ(TruncatePage(inode, newsize, nullptr, fs, &fs), 0);
      TruncateSetsize(inode, newsize);
      const int64_t bs = inode->block_size();
      const int64_t punch = (newsize + bs - 1) / bs * bs;
      fs.SetExtent(punch, size - punch, Iomap::Type::kHole);
      std::memset(model.data() + newsize, 0, size - newsize);
    }
    std::this_thread::yield();
    {
      base::WriterLock l(&inode->locks().rwsem);
      base::WriterLock m(&inode->locks().invalidate);
      TruncateSetsize(inode, size);
    }
  }
  stop = true;
  r1.join();
  r2.join();
  // The split pieces kept the accounting exact.
  uint64_t cached = 0, dirty = 0;
  for (FolioRef& f : inode->mapping()->FoliosInRange(0, size >> kPageShift)) {
    cached += f->size();
    if (f->Dirty()) dirty += f->size();
  }
  EXPECT_EQ(cache.cached_bytes(), cached);
  EXPECT_EQ(inode->mapping()->dirty_bytes(), dirty);
  EXPECT_EQ(cache.dirty_bytes(), dirty);
}

}  // namespace
}  // namespace iomap
