// Direct I/O through fs::OpenFile (iomap::DioRw over DataOps'
// xfs_direct_write_iomap_begin rules): writes over holes, unwritten,
// written and shared (reflinked) blocks read back directly and through the
// cache; dirty cache seen by direct reads; NOWAIT / OVERWRITE_ONLY; atomic
// writes (also across crashes); alignment; size growth; crash safety of
// acknowledged writes and of allocations whose data never arrived.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "block/device.h"
#include "fs/file.h"
#include "fs/testing/mem_device.h"
#include "fs/testing/volume_helpers.h"
#include "fs/volume.h"
#include "gtest/gtest.h"
#include "iomap/iomap.h"

namespace fs {
namespace {

using testing::CreateFile;
using testing::ExpectClean;
using testing::MemDevice;
using testing::OpenOrDie;
using testing::Pattern;
using testing::ReadAll;
using testing::Remount;

constexpr uint64_t kDevBytes = 32ull << 20;

// A direct write of `data` (copied to an aligned buffer).
int64_t DWrite(OpenFile* f, int64_t pos, const std::string& data,
               unsigned flags = 0) {
  block::AlignedBuffer buf = block::AllocAligned(data.size() + 1);
  std::memcpy(buf.get(), data.data(), data.size());
  return f->Write(pos, buf.get(), data.size(), flags | iomap::kDirect);
}

// A direct read of up to `len` bytes (short at EOF), or "" on error.
std::string DRead(OpenFile* f, int64_t pos, size_t len,
                  int64_t* ret = nullptr) {
  block::AlignedBuffer buf = block::AllocAligned(len + 1);
  int64_t r = f->Read(pos, len, buf.get(), iomap::kDirect);
  if (ret != nullptr) *ret = r;
  if (r < 0) return "";
  return std::string(reinterpret_cast<char*>(buf.get()), r);
}

std::string Zeros(size_t n) { return std::string(n, '\0'); }

// Every test runs at each block size of the format. The device's logical
// block is 512 bytes: a direct write of whole sectors but part of a block
// is "unaligned" (xfs_file_dio_write_unaligned) above 512-byte blocks only.
class DirectIoTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  std::unique_ptr<Volume> FormatAndMount(MemDevice* dev) {
    return testing::FormatAndMount(dev, GetParam());
  }
  const int64_t bs_ = GetParam();
};
class DirectIoCrashTest : public DirectIoTest {};

TEST_P(DirectIoTest, WriteOverHoleReadsBackBothWays) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  const FileHandle h = CreateFile(vol.get(), "a");
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  const std::string data = Pattern(64 * 1024, 1);
  ASSERT_EQ(DWrite(f.get(), 0, data), 64 * 1024);
  EXPECT_EQ(f->size(), 64 * 1024);
  EXPECT_EQ(DRead(f.get(), 0, data.size()), data);
  EXPECT_EQ(ReadAll(f.get(), 0, data.size()), data);
  uint64_t blocks = 0;
  ASSERT_EQ(vol->StatBlocks(f->handle(), &blocks), 0);
  EXPECT_EQ(blocks, 128u);
  EXPECT_EQ(vol->ReservedBlocks(), 0u);
  ExpectClean(vol.get());
  f->Close();
  ASSERT_TRUE(vol->Unmount().ok());
  vol = Remount(&dev);
  f = OpenOrDie(vol.get(), h);
  EXPECT_EQ(f->size(), 64 * 1024);
  EXPECT_EQ(DRead(f.get(), 0, data.size()), data);
}

TEST_P(DirectIoTest, WriteOverUnwrittenConvertsAndZeroesSubBlocks) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  const FileHandle h = CreateFile(vol.get(), "a");
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  const int64_t len = std::max<int64_t>(16 * bs_, 64 * 1024);
  ASSERT_EQ(f->Fallocate(0, 0, len), 0);
  const std::string d1 = Pattern(8192, 2), d2 = Pattern(512, 3);
  // Whole blocks above 4 KiB blocks, part of one at 64 KiB.
  ASSERT_EQ(DWrite(f.get(), 8192, d1), 8192);
  // A sector write inside an unwritten block: exclusive, edges zeroed.
  ASSERT_EQ(DWrite(f.get(), 5 * bs_ + 1024, d2), 512);
  std::string want = Zeros(len);
  want.replace(8192, d1.size(), d1);
  want.replace(5 * bs_ + 1024, d2.size(), d2);
  EXPECT_EQ(DRead(f.get(), 0, len), want);
  EXPECT_EQ(ReadAll(f.get(), 0, len), want);
  ExpectClean(vol.get());
  f->Close();
  ASSERT_TRUE(vol->Unmount().ok());
  vol = Remount(&dev);
  f = OpenOrDie(vol.get(), h);
  EXPECT_EQ(ReadAll(f.get(), 0, len), want);
}

TEST_P(DirectIoTest, OverwriteWrittenInvalidatesCache) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  const FileHandle h = CreateFile(vol.get(), "a");
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  const std::string old = Pattern(32768, 4), d = Pattern(8192, 5);
  ASSERT_EQ(f->Write(0, old.data(), old.size()), 32768);
  ASSERT_EQ(f->Fsync(), 0);
  ASSERT_EQ(ReadAll(f.get(), 0, 32768), old);  // cached
  ASSERT_EQ(DWrite(f.get(), 4096, d), 8192);
  std::string want = old;
  want.replace(4096, 8192, d);
  EXPECT_EQ(ReadAll(f.get(), 0, 32768), want);
  EXPECT_EQ(DRead(f.get(), 0, 32768), want);
  // NOWAIT refuses while folios of the range are cached (it would have to
  // invalidate them).
  ASSERT_EQ(ReadAll(f.get(), 0, 4096), want.substr(0, 4096));
  EXPECT_EQ(DWrite(f.get(), 0, d, iomap::kNowait), -EAGAIN);
  // A sector overwrite of written blocks inside EOF: shared lock,
  // OVERWRITE_ONLY succeeds.
  ASSERT_EQ(DWrite(f.get(), 512, "x" + Zeros(511)), 512);
  want.replace(512, 512, "x" + Zeros(511));
  EXPECT_EQ(ReadAll(f.get(), 0, 32768), want);
  ExpectClean(vol.get());
}

TEST_P(DirectIoTest, WriteOverSharedBlocksCopiesOnWrite) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  const FileHandle ha = CreateFile(vol.get(), "a");
  std::unique_ptr<OpenFile> a = OpenOrDie(vol.get(), ha);
  const FileHandle hb = CreateFile(vol.get(), "b");
  std::unique_ptr<OpenFile> b = OpenOrDie(vol.get(), hb);
  const int64_t len = 8 * bs_;
  const std::string old = Pattern(len, 6), d = Pattern(2 * bs_, 7);
  ASSERT_EQ(a->Write(0, old.data(), old.size()), len);
  ASSERT_EQ(b->CloneRange(a.get(), 0, 0, len), len);
  const uint64_t free_before = vol->FreeBlocks();
  ASSERT_EQ(DWrite(b.get(), 2 * bs_, d), 2 * bs_);
  // Private staging blocks: at least the two written (the COW extent
  // size hint may preallocate more in the COW fork).
  EXPECT_LE(vol->FreeBlocks(), free_before - 2);
  std::string want = old;
  want.replace(2 * bs_, d.size(), d);
  EXPECT_EQ(DRead(b.get(), 0, len), want);
  EXPECT_EQ(ReadAll(b.get(), 0, len), want);
  EXPECT_EQ(DRead(a.get(), 0, len), old);
  EXPECT_EQ(ReadAll(a.get(), 0, len), old);
  // Unaligned over shared blocks: the buffered fallback (512-byte blocks:
  // an aligned copy on write).
  ASSERT_EQ(DWrite(b.get(), 512, Pattern(512, 8)), 512);
  want.replace(512, 512, Pattern(512, 8));
  EXPECT_EQ(DRead(b.get(), 0, len), want);
  EXPECT_EQ(DRead(a.get(), 0, len), old);
  // NOWAIT never copies on write.
  EXPECT_EQ(DWrite(b.get(), 4 * bs_, d, iomap::kNowait), -EAGAIN);
  ExpectClean(vol.get());
  a->Close();
  b->Close();
  ASSERT_TRUE(vol->Unmount().ok());
  vol = Remount(&dev);
  a = OpenOrDie(vol.get(), ha);
  b = OpenOrDie(vol.get(), hb);
  EXPECT_EQ(ReadAll(a.get(), 0, len), old);
  EXPECT_EQ(ReadAll(b.get(), 0, len), want);
  ExpectClean(vol.get());
}

TEST_P(DirectIoTest, DirectReadSeesDirtyCache) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  const FileHandle h = CreateFile(vol.get(), "a");
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  const std::string d = Pattern(10000, 9);
  ASSERT_EQ(f->Write(0, d.data(), d.size()), 10000);
  block::AlignedBuffer buf = block::AllocAligned(16384);
  EXPECT_EQ(f->Read(0, 16384, buf.get(), iomap::kDirect | iomap::kNowait),
            -EAGAIN);                      // would wait for writeback
  EXPECT_EQ(DRead(f.get(), 0, 16384), d);  // flushed first; short at EOF
  EXPECT_EQ(DRead(f.get(), 16384, 4096), "");
  ExpectClean(vol.get());
}

TEST_P(DirectIoTest, NowaitAndOverwriteOnlyRefuseWhatWouldBlock) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  const FileHandle h = CreateFile(vol.get(), "a");
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  const unsigned nw = iomap::kNowait;
  ASSERT_EQ(f->Fallocate(0, 0, 8 * bs_), 0);  // unwritten blocks [0, 8)
  ASSERT_EQ(f->Truncate(16 * bs_), 0);        // a hole: blocks [8, 16)
  EXPECT_EQ(DWrite(f.get(), 8 * bs_, Pattern(bs_, 1), nw), -EAGAIN);  // hole
  // Aligned over unwritten: no allocation, fine even with NOWAIT.
  EXPECT_EQ(DWrite(f.get(), 0, Pattern(bs_, 2), nw), bs_);
  if (bs_ > 512) {
    // Unaligned into unwritten: OVERWRITE_ONLY refuses; NOWAIT returns it.
    EXPECT_EQ(DWrite(f.get(), bs_ + 512, Pattern(512, 3), nw), -EAGAIN);
    // ... and without NOWAIT the exclusive retry does it.
    EXPECT_EQ(DWrite(f.get(), bs_ + 512, Pattern(512, 3)), 512);
  } else {
    // A sector is a block: aligned, an overwrite even under NOWAIT.
    EXPECT_EQ(DWrite(f.get(), bs_ + 512, Pattern(512, 3), nw), 512);
  }
  // Unaligned and extending: never NOWAIT.
  EXPECT_EQ(DWrite(f.get(), 16 * bs_, Pattern(512, 4), nw), -EAGAIN);
  // A range spanning two mappings (written and unwritten blocks) is not a
  // NOWAIT overwrite.
  EXPECT_EQ(DWrite(f.get(), bs_, Pattern(2 * bs_, 5), nw), -EAGAIN);
  EXPECT_EQ(DWrite(f.get(), bs_, Pattern(2 * bs_, 5)), 2 * bs_);
  EXPECT_EQ(DRead(f.get(), bs_, 2 * bs_), Pattern(2 * bs_, 5));
  ExpectClean(vol.get());
}

TEST_P(DirectIoTest, MisalignedIsEinval) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  const FileHandle h = CreateFile(vol.get(), "a");
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  EXPECT_EQ(DWrite(f.get(), 100, Pattern(512, 1)), -EINVAL);
  EXPECT_EQ(DWrite(f.get(), 0, Pattern(100, 1)), -EINVAL);
  // This device needs no memory alignment (dma_alignment 1): an odd
  // buffer is fine.
  block::AlignedBuffer buf = block::AllocAligned(8192);
  std::memcpy(buf.get() + 8, Pattern(4096, 1).data(), 4096);
  ASSERT_EQ(f->Write(0, buf.get() + 8, 4096, iomap::kDirect), 4096);
  EXPECT_EQ(f->Read(0, 4096, buf.get() + 1, iomap::kDirect), 4096);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf.get()) + 1, 4096),
            Pattern(4096, 1));
  EXPECT_EQ(f->Read(7, 512, buf.get(), iomap::kDirect), -EINVAL);
  EXPECT_EQ(f->size(), 4096);
}

TEST_P(DirectIoTest, ExtendingWritesGrowSize) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  const FileHandle h = CreateFile(vol.get(), "a");
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  const std::string d = Pattern(bs_, 1), e = Pattern(512, 2);
  ASSERT_EQ(DWrite(f.get(), 2 * bs_, d), bs_);
  EXPECT_EQ(f->size(), 3 * bs_);
  ASSERT_EQ(DWrite(f.get(), 3 * bs_ + 1024, e), 512);  // unaligned, past EOF
  EXPECT_EQ(f->size(), 3 * bs_ + 1536);
  const std::string want = Zeros(2 * bs_) + d + Zeros(1024) + e;
  EXPECT_EQ(DRead(f.get(), 0, want.size() + bs_), want);  // short at EOF
  EXPECT_EQ(ReadAll(f.get(), 0, want.size() + bs_), want);
  ASSERT_EQ(DWrite(f.get(), 0, d, OpenFile::kAppend), bs_);
  EXPECT_EQ(f->size(), 4 * bs_ + 1536);
  f->Close();
  ASSERT_TRUE(vol->Unmount().ok());
  vol = Remount(&dev);
  f = OpenOrDie(vol.get(), h);
  EXPECT_EQ(f->size(), 4 * bs_ + 1536);
  EXPECT_EQ(ReadAll(f.get(), 0, 3 * bs_ + 1536), want);
  ExpectClean(vol.get());
}

TEST_P(DirectIoTest, AtomicWrites) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  const FileHandle h = CreateFile(vol.get(), "a");
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  const unsigned at = iomap::kAtomic;
  const std::string old = Pattern(16 * bs_, 1), d = Pattern(4 * bs_, 2);
  ASSERT_EQ(f->Write(0, old.data(), old.size()), 16 * bs_);
  EXPECT_EQ(DWrite(f.get(), 0, Pattern(3 * bs_, 3), at), -EINVAL);  // not 2^n
  EXPECT_EQ(DWrite(f.get(), 2 * bs_, d, at), -EINVAL);              // pos % len
  EXPECT_EQ(DWrite(f.get(), 0, Pattern(bs_ / 2, 3), at), -EINVAL);  // < block
  ASSERT_EQ(DWrite(f.get(), 4 * bs_, d, at), 4 * bs_);
  std::string want = old;
  want.replace(4 * bs_, 4 * bs_, d);
  EXPECT_EQ(DRead(f.get(), 0, 16 * bs_), want);
  // Past EOF too (extends in the same transaction).
  ASSERT_EQ(DWrite(f.get(), 16 * bs_, d, at), 4 * bs_);
  EXPECT_EQ(f->size(), 20 * bs_);
  EXPECT_EQ(vol->ReservedBlocks(), 0u);
  ExpectClean(vol.get());
}

// Aligned direct writes inside EOF share the rwsem: four writers on
// interleaved blocks of an unwritten file, a direct reader and a buffered
// reader at the same time. Every block reads as zeroes or its data.
TEST_P(DirectIoTest, ConcurrentDirectWritersAndReaders) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  const FileHandle h = CreateFile(vol.get(), "a");
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  constexpr int kBlocks = 128;
  ASSERT_EQ(f->Fallocate(0, 0, kBlocks * bs_), 0);
  std::vector<std::string> want(kBlocks);
  for (int i = 0; i < kBlocks; ++i) want[i] = Pattern(bs_, 100 + i);
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  auto check = [&](int i, const std::string& got) {
    if (got != want[i] && got != Zeros(bs_)) bad++;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kBlocks; i += 4) {
        if (DWrite(f.get(), i * bs_, want[i]) != bs_) bad++;
      }
    });
  }
  std::thread direct_reader([&] {
    for (int n = 0; !done.load(); n = (n + 37) % kBlocks)
      check(n, DRead(f.get(), n * bs_, bs_));
  });
  std::thread buffered_reader([&] {
    for (int n = 0; !done.load(); n = (n + 53) % kBlocks)
      check(n, ReadAll(f.get(), n * bs_, bs_));
  });
  for (std::thread& t : threads) t.join();
  done = true;
  direct_reader.join();
  buffered_reader.join();
  EXPECT_EQ(bad.load(), 0);
  for (int i = 0; i < kBlocks; ++i)
    ASSERT_EQ(DRead(f.get(), i * bs_, bs_), want[i]) << i;
  ExpectClean(vol.get());
}

// A crash anywhere during an atomic write and its fsync leaves all old or
// all new data.
TEST_P(DirectIoCrashTest, AtomicWriteIsAllOrNothing) {
  const std::string old = Pattern(8 * bs_, 11), d = Pattern(8 * bs_, 12);
  for (uint64_t k = 0; k < 12; ++k) {
    SCOPED_TRACE("crash after write " + std::to_string(k));
    MemDevice dev(kDevBytes);
    FileHandle h;
    {
      std::unique_ptr<Volume> vol = FormatAndMount(&dev);
      h = CreateFile(vol.get(), "a");
      std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
      ASSERT_EQ(f->Write(0, old.data(), old.size()), 8 * bs_);
      ASSERT_EQ(f->Fsync(), 0);
      dev.CrashAfterWrites(k, k + 1);
      DWrite(f.get(), 0, d, iomap::kAtomic);
      f->Fsync();
      f->Close();
    }
    dev.Crash(k + 1);
    std::unique_ptr<Volume> vol = Remount(&dev);
    ASSERT_NE(vol, nullptr);
    std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
    const std::string got = ReadAll(f.get(), 0, 8 * bs_);
    EXPECT_TRUE(got == old || got == d);
    ExpectClean(vol.get());
  }
}

TEST_P(DirectIoCrashTest, AcknowledgedWritePlusFsyncSurvives) {
  MemDevice dev(kDevBytes);
  FileHandle h;
  const std::string d = Pattern(64 * 1024, 21), e = Pattern(4096, 22);
  {
    std::unique_ptr<Volume> vol = FormatAndMount(&dev);
    h = CreateFile(vol.get(), "a");
    std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
    ASSERT_EQ(DWrite(f.get(), 0, d), 64 * 1024);
    ASSERT_EQ(f->Fsync(), 0);
    ASSERT_EQ(DWrite(f.get(), 64 * 1024, e, OpenFile::kSync), 4096);  // O_DSYNC
    dev.CrashAfterWrites(0, 5);
    f->Close();
  }
  dev.Crash(5);
  std::unique_ptr<Volume> vol = Remount(&dev);
  ASSERT_NE(vol, nullptr);
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  EXPECT_EQ(f->size(), 68 * 1024);
  EXPECT_EQ(ReadAll(f.get(), 0, 68 * 1024), d + e);
  ExpectClean(vol.get());
}

// Blocks that held another file's data are allocated to a direct write,
// and the power fails at every point of the write and its fsync: each
// block of the file reads as the new data or as zeroes, never the old
// file's bytes.
TEST_P(DirectIoCrashTest, AllocationWithoutDataNeverExposesStaleBlocks) {
  const size_t n = 64 * 1024;
  const std::string stale = Pattern(n, 31), d = Pattern(n, 32);
  int reused = 0;  // new blocks that held the stale data
  for (uint64_t k = 0; k < 10; ++k) {
    SCOPED_TRACE("crash after write " + std::to_string(k));
    MemDevice dev(kDevBytes);
    FileHandle h;
    std::set<uint64_t> stale_blocks;
    {
      std::unique_ptr<Volume> vol = FormatAndMount(&dev);
      {
        FileHandle s = CreateFile(vol.get(), "stale");
        std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), s);
        ASSERT_EQ(f->Write(0, stale.data(), n), static_cast<int64_t>(n));
        ASSERT_EQ(f->Fsync(), 0);
        for (uint64_t b = 0; b < n / bs_; ++b) stale_blocks.insert(f->Bmap(b));
      }
      ASSERT_EQ(vol->Unlink(vol->root(), "stale"), 0);
      ASSERT_TRUE(vol->Checkpoint().ok());
      h = CreateFile(vol.get(), "a");
      std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
      ASSERT_EQ(f->Truncate(n), 0);
      ASSERT_EQ(f->Fsync(), 0);
      dev.CrashAfterWrites(k, k + 7);
      DWrite(f.get(), 0, d);
      f->Fsync();
      f->Close();
    }
    dev.Crash(k + 7);
    std::unique_ptr<Volume> vol = Remount(&dev);
    ASSERT_NE(vol, nullptr);
    std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
    const std::string got = ReadAll(f.get(), 0, n);
    ASSERT_EQ(got.size(), n);
    for (size_t b = 0; b < n; b += bs_) {
      const std::string blk = got.substr(b, bs_);
      EXPECT_TRUE(blk == d.substr(b, bs_) || blk == Zeros(bs_))
          << "block " << b / bs_
          << (blk == stale.substr(b, bs_) ? " stale" : "");
      reused += stale_blocks.count(f->Bmap(b / bs_)) ? 1 : 0;
    }
    ExpectClean(vol.get());
  }
  EXPECT_GT(reused, 0);  // the write did land on blocks that held stale data
}

std::string BlockSizeName(const ::testing::TestParamInfo<uint32_t>& info) {
  return "bs" + std::to_string(info.param);
}
INSTANTIATE_TEST_SUITE_P(BlockSizes, DirectIoTest,
                         ::testing::Values(512u, 1024u, 4096u, 65536u),
                         BlockSizeName);
INSTANTIATE_TEST_SUITE_P(BlockSizes, DirectIoCrashTest,
                         ::testing::Values(512u, 1024u, 4096u, 65536u),
                         BlockSizeName);

}  // namespace
}  // namespace fs
