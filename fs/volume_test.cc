#include "fs/volume.h"

#include <linux/falloc.h>

#include <bitset>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "block/sim_device.h"
#include "fs/file.h"
#include "fs/testing/mem_device.h"
#include "fs/testing/volume_helpers.h"
#include "gtest/gtest.h"
#include "iomap/buffered_io.h"
#include "iomap/fiemap.h"

namespace fs {
namespace {

using testing::CreateFile;
using testing::ExpectClean;
using testing::FormatAndMount;
using testing::MemDevice;
using testing::OpenOrDie;
using testing::Pattern;
using testing::ReadAll;
using testing::Remount;

constexpr uint64_t kDevBytes = 32ull << 20;

void ExpectFsckClean(MemDevice* dev) {
  FsckResult r = FsckVolume(*dev);
  EXPECT_TRUE(r.clean()) << r.problems[0];
}

TEST(VolumeTest, WriteReadBackAcrossRemount) {
  for (uint32_t bs : {512u, 4096u, 65536u}) {
    SCOPED_TRACE(bs);
    MemDevice dev(kDevBytes);
    std::unique_ptr<Volume> vol = FormatAndMount(&dev, bs);
    ASSERT_NE(vol, nullptr);
    FileHandle h = CreateFile(vol.get(), "a");
    const std::string data = Pattern(300000, bs);
    {
      std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
      ASSERT_EQ(f->Write(1000, data.data(), data.size()),
                static_cast<int64_t>(data.size()));
      EXPECT_EQ(ReadAll(f.get(), 1000, data.size()), data);
      EXPECT_EQ(ReadAll(f.get(), 0, 1000), std::string(1000, '\0'));
      EXPECT_EQ(f->Fsync(), 0);
      ExpectClean(vol.get());
    }
    ASSERT_TRUE(vol->Unmount().ok());
    vol.reset();
    ExpectFsckClean(&dev);
    vol = Remount(&dev);
    ASSERT_NE(vol, nullptr);
    std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
    EXPECT_EQ(f->size(), 1000 + static_cast<int64_t>(data.size()));
    EXPECT_EQ(ReadAll(f.get(), 1000, data.size() + 10), data);
    f->Close();
    ExpectClean(vol.get());
  }
}

TEST(VolumeTest, StaleHandleAndDirectory) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  FileHandle h = CreateFile(vol.get(), "a");
  std::unique_ptr<OpenFile> f;
  EXPECT_EQ(vol->Open(vol->root(), &f), -EISDIR);
  EXPECT_EQ(vol->Unlink(vol->root(), "a"), 0);
  EXPECT_EQ(vol->Open(h, &f), -ESTALE);
}

TEST(VolumeTest, DelallocReservationReturnsToZero) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  FileHandle h = CreateFile(vol.get(), "a");
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  const uint64_t free0 = vol->FreeBlocks();
  const std::string data = Pattern(100000, 1);
  ASSERT_EQ(f->Write(0, data.data(), data.size()), 100000);
  EXPECT_EQ(vol->ReservedBlocks(h.ino), (100000 + 4095) / 4096);
  ASSERT_EQ(f->Fsync(), 0);
  EXPECT_EQ(vol->ReservedBlocks(), 0u);
  EXPECT_EQ(vol->FreeBlocks(), free0 - (100000 + 4095) / 4096);
  // A short write: the source faults after 10000 bytes of a 200000 byte
  // write over a hole; the unused reservation is punched.
  const std::string more = Pattern(200000, 2);
  iomap::BufferSource src(more.data(), more.size(), 10000);
  int64_t r = f->WriteFrom(1 << 20, &src);
  EXPECT_GT(r, 0);
  EXPECT_LT(r, 200000);
  const uint64_t want = ((1 << 20) + r + 4095) / 4096 - (1 << 20) / 4096;
  EXPECT_EQ(vol->ReservedBlocks(h.ino), want);
  ExpectClean(vol.get());
  ASSERT_EQ(f->Fsync(), 0);
  EXPECT_EQ(vol->ReservedBlocks(), 0u);
  ExpectClean(vol.get());
}

// st_blocks counts delalloc, unwritten and written blocks (XFS counts
// delalloc in st_blocks too) and drops when blocks are punched.
TEST(VolumeTest, StatBlocksCountsEveryMappedBlock) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  FileHandle h = CreateFile(vol.get(), "a");
  uint64_t blocks = 1;
  ASSERT_EQ(vol->StatBlocks(h, &blocks), 0);
  EXPECT_EQ(blocks, 0u);
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  const std::string data = Pattern(3 * 4096, 3);
  ASSERT_EQ(f->Write(0, data.data(), data.size()), 3 * 4096);
  ASSERT_EQ(vol->StatBlocks(h, &blocks), 0);
  EXPECT_EQ(blocks, 3u * 8);  // delalloc
  ASSERT_EQ(f->Fallocate(FALLOC_FL_KEEP_SIZE, 1 << 20, 2 * 4096), 0);
  ASSERT_EQ(f->Fsync(), 0);
  ASSERT_EQ(vol->StatBlocks(h, &blocks), 0);
  EXPECT_EQ(blocks, 5u * 8);  // 3 written + 2 unwritten
  ASSERT_EQ(f->Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096),
            0);
  ASSERT_EQ(vol->StatBlocks(h, &blocks), 0);
  EXPECT_EQ(blocks, 4u * 8);
  ASSERT_EQ(f->Close(), 0);
  ASSERT_EQ(vol->StatBlocks(vol->root(), &blocks), 0);
  EXPECT_EQ(blocks, 0u);
  EXPECT_EQ(vol->StatBlocks(FileHandle{h.ino, h.generation + 1}, &blocks),
            -ESTALE);
  ExpectClean(vol.get());
}

// O_APPEND from several open files at once: every record lands whole at
// its own offset, none overwrites another, and the size survives the last
// close (an Open racing with a last close once built its in-core inode from
// a size read before that close persisted the final one).
TEST(VolumeTest, ConcurrentAppendsNeverOverlap) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  FileHandle h = CreateFile(vol.get(), "log");
  constexpr int kThreads = 4, kRecords = 200, kLen = 100;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
      const std::string rec(kLen, static_cast<char>('a' + t));
      for (int i = 0; i < kRecords; ++i) {
        EXPECT_EQ(f->Write(0, rec.data(), rec.size(), OpenFile::kAppend), kLen);
      }
      EXPECT_EQ(f->Close(), 0);
    });
  }
  for (auto& t : threads) t.join();
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  ASSERT_EQ(f->size(), int64_t{kThreads} * kRecords * kLen);
  const std::string all = ReadAll(f.get(), 0, f->size());
  std::vector<int> count(kThreads);
  for (size_t off = 0; off < all.size(); off += kLen) {
    const int t = all[off] - 'a';
    ASSERT_TRUE(t >= 0 && t < kThreads) << off;
    EXPECT_EQ(all.substr(off, kLen), std::string(kLen, all[off])) << off;
    ++count[t];
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(count[t], kRecords);
}

// Writes update mtime and ctime (file_update_time) in core at once; the
// time is journaled with the next inode record: fsync, the size update at
// I/O completion, or the last close.
TEST(VolumeTest, WritesUpdateTimes) {
  MemDevice dev(kDevBytes);
  FileHandle h;
  InodeAttr synced;
  {
    std::unique_ptr<Volume> vol = FormatAndMount(&dev);
    h = CreateFile(vol.get(), "t");
    InodeAttr a0, a1, a2;
    ASSERT_EQ(vol->GetAttr(h, &a0), 0);
    std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
    ASSERT_EQ(f->Write(0, "abc", 3), 3);
    ASSERT_EQ(vol->GetAttr(h, &a1), 0);
    EXPECT_GT(a1.mtime_ns, a0.mtime_ns);
    EXPECT_EQ(a1.ctime_ns, a1.mtime_ns);
    ASSERT_EQ(f->Fsync(), 0);
    ASSERT_EQ(f->MapWrite(0, "x", 1), 1);  // no size change
    ASSERT_EQ(vol->GetAttr(h, &a2), 0);
    EXPECT_GT(a2.mtime_ns, a1.mtime_ns);
    ASSERT_EQ(f->Fsync(), 0);
    ASSERT_EQ(vol->GetAttr(h, &synced), 0);
    EXPECT_EQ(synced.mtime_ns, a2.mtime_ns);
    ASSERT_EQ(f->Write(1, "y", 1), 1);  // never synced
    dev.CrashAfterWrites(0, 1);
    f->Close();
  }  // the volume goes away without reaching the device
  dev.Crash(1);
  std::unique_ptr<Volume> vol = Remount(&dev);
  ASSERT_NE(vol, nullptr);
  InodeAttr got;
  ASSERT_EQ(vol->GetAttr(h, &got), 0);
  EXPECT_EQ(got.mtime_ns, synced.mtime_ns);
  EXPECT_EQ(got.ctime_ns, synced.ctime_ns);
  // The last close journals a pending time.
  int64_t want;
  {
    std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
    ASSERT_EQ(f->Write(0, "z", 1), 1);
    ASSERT_EQ(vol->GetAttr(h, &got), 0);
    want = got.mtime_ns;
    EXPECT_GT(want, synced.mtime_ns);
  }
  ASSERT_TRUE(vol->Unmount().ok());
  vol = Remount(&dev);
  ASSERT_NE(vol, nullptr);
  ASSERT_EQ(vol->GetAttr(h, &got), 0);
  EXPECT_EQ(got.mtime_ns, want);
}

TEST(VolumeTest, EnospcAtWriteTime) {
  MemDevice dev(2ull << 20);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  ASSERT_NE(vol, nullptr);
  FileHandle h = CreateFile(vol.get(), "a");
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  const std::string data = Pattern(64 << 10, 3);
  int64_t pos = 0, r = 0;
  while ((r = f->Write(pos, data.data(), data.size())) ==
         static_cast<int64_t>(data.size()))
    pos += r;
  if (r > 0) {
    pos += r;
    r = f->Write(pos, data.data(), data.size());
  }
  EXPECT_EQ(r, -ENOSPC);
  EXPECT_EQ(f->Fsync(), 0);  // everything accepted reaches the device
  EXPECT_EQ(vol->ReservedBlocks(), 0u);
  EXPECT_EQ(ReadAll(f.get(), 0, data.size()), data);
  ExpectClean(vol.get());
}

TEST(VolumeTest, SeekAndFiemapThroughVolume) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  FileHandle h = CreateFile(vol.get(), "a");
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  const std::string data = Pattern(65536, 4);
  ASSERT_EQ(f->Write(0, data.data(), data.size()), 65536);
  ASSERT_EQ(f->Fsync(), 0);
  ASSERT_EQ(f->Write(1 << 20, data.data(), data.size()), 65536);  // delalloc
  EXPECT_EQ(f->SeekData(0), 0);
  EXPECT_EQ(f->SeekHole(0), 65536);
  EXPECT_EQ(f->SeekData(65536), 1 << 20);
  EXPECT_EQ(f->SeekHole(1 << 20), (1 << 20) + 65536);
  EXPECT_EQ(f->SeekData((1 << 20) + 65536), -ENXIO);
  iomap::FiemapRequest req;
  req.fm_length = iomap::kFiemapMaxOffset;
  req.fm_extent_count = 10;
  ASSERT_EQ(f->Fiemap(&req), 0);
  ASSERT_EQ(req.fm_mapped_extents, 2u);
  EXPECT_EQ(req.fm_extents[0].fe_logical, 0u);
  EXPECT_EQ(req.fm_extents[0].fe_length, 65536u);
  EXPECT_EQ(req.fm_extents[0].fe_flags & iomap::kFiemapExtentDelalloc, 0u);
  EXPECT_NE(req.fm_extents[0].fe_physical, 0u);
  EXPECT_EQ(req.fm_extents[1].fe_logical, 1u << 20);
  EXPECT_NE(req.fm_extents[1].fe_flags & iomap::kFiemapExtentDelalloc, 0u);
  EXPECT_NE(req.fm_extents[1].fe_flags & iomap::kFiemapExtentLast, 0u);
  EXPECT_EQ(f->Bmap(0), req.fm_extents[0].fe_physical / 4096);
  // After writeback the second extent is real (FIEMAP_FLAG_SYNC).
  req = iomap::FiemapRequest();
  req.fm_length = iomap::kFiemapMaxOffset;
  req.fm_extent_count = 10;
  req.fm_flags = iomap::kFiemapFlagSync;
  ASSERT_EQ(f->Fiemap(&req), 0);
  ASSERT_EQ(req.fm_mapped_extents, 2u);
  EXPECT_EQ(req.fm_extents[1].fe_flags & iomap::kFiemapExtentDelalloc, 0u);
  EXPECT_NE(f->Bmap((1 << 20) / 4096), 0u);
  EXPECT_EQ(f->Bmap(100), 0u);  // a hole
}

// A ranged FIEMAP reports each mapping trimmed to the queried range, as
// XFS does (xfs_bmapi_read); a range inside a hole reports nothing.
TEST(VolumeTest, RangedFiemapTrimsToRange) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  std::unique_ptr<OpenFile> f =
      OpenOrDie(vol.get(), CreateFile(vol.get(), "a"));
  const std::string data = Pattern(65536, 4);
  ASSERT_EQ(f->Write(0, data.data(), data.size()), 65536);
  ASSERT_EQ(f->Write(131072, data.data(), data.size()), 65536);
  auto fiemap = [&](uint64_t start, uint64_t len) {
    iomap::FiemapRequest req;
    req.fm_start = start;
    req.fm_length = len;
    req.fm_extent_count = 10;
    req.fm_flags = iomap::kFiemapFlagSync;
    EXPECT_EQ(f->Fiemap(&req), 0);
    return req;
  };
  iomap::FiemapRequest whole = fiemap(0, iomap::kFiemapMaxOffset);
  ASSERT_EQ(whole.fm_mapped_extents, 2u);
  const uint64_t phys0 = whole.fm_extents[0].fe_physical;
  iomap::FiemapRequest req = fiemap(4096, 4096);
  ASSERT_EQ(req.fm_mapped_extents, 1u);
  EXPECT_EQ(req.fm_extents[0].fe_logical, 4096u);
  EXPECT_EQ(req.fm_extents[0].fe_length, 4096u);
  EXPECT_EQ(req.fm_extents[0].fe_physical, phys0 + 4096);
  req = fiemap(61440, 81920);  // 60k..140k: the end of one, start of next
  ASSERT_EQ(req.fm_mapped_extents, 2u);
  EXPECT_EQ(req.fm_extents[0].fe_logical, 61440u);
  EXPECT_EQ(req.fm_extents[0].fe_length, 4096u);
  EXPECT_EQ(req.fm_extents[1].fe_logical, 131072u);
  EXPECT_EQ(req.fm_extents[1].fe_length, 12288u);
  EXPECT_EQ(fiemap(70 * 1024, 20 * 1024).fm_mapped_extents, 0u);
  // Seek is unaffected.
  EXPECT_EQ(f->SeekHole(4096), 65536);
  EXPECT_EQ(f->SeekData(65536), 131072);
}

// FIEMAP_FLAG_XATTR maps the attribute fork, which iomapd files never
// have: no extents, as XFS reports for a file without attributes.
TEST(VolumeTest, FiemapXattrForkIsEmpty) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  std::unique_ptr<OpenFile> f =
      OpenOrDie(vol.get(), CreateFile(vol.get(), "a"));
  const std::string data = Pattern(65536, 4);
  ASSERT_EQ(f->Write(0, data.data(), data.size()), 65536);
  for (uint64_t len : {uint64_t{4096}, iomap::kFiemapMaxOffset}) {
    iomap::FiemapRequest req;
    req.fm_length = len;
    req.fm_extent_count = 10;
    req.fm_flags = iomap::kFiemapFlagXattr;
    ASSERT_EQ(f->Fiemap(&req), 0);
    EXPECT_EQ(req.fm_mapped_extents, 0u);
  }
}

TEST(VolumeTest, TruncateFreesBlocksAndPersists) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  FileHandle h = CreateFile(vol.get(), "a");
  const uint64_t free0 = vol->FreeBlocks();
  const std::string data = Pattern(1 << 20, 5);
  {
    std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
    ASSERT_EQ(f->Write(0, data.data(), data.size()), 1 << 20);
    ASSERT_EQ(f->Fsync(), 0);
    ASSERT_EQ(f->Truncate(10000), 0);
    EXPECT_EQ(f->size(), 10000);
    EXPECT_EQ(vol->FreeBlocks(), free0 - 3);
    EXPECT_EQ(ReadAll(f.get(), 0, 1 << 20), data.substr(0, 10000));
    ASSERT_EQ(f->Truncate(20000), 0);  // the tail reads as zeros
    EXPECT_EQ(ReadAll(f.get(), 0, 1 << 20),
              data.substr(0, 10000) + std::string(10000, '\0'));
    ASSERT_EQ(f->Fsync(), 0);
  }
  ExpectClean(vol.get());
  ASSERT_TRUE(vol->Unmount().ok());
  vol = Remount(&dev);
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  EXPECT_EQ(ReadAll(f.get(), 0, 1 << 20),
            data.substr(0, 10000) + std::string(10000, '\0'));
  f->Close();
  EXPECT_EQ(vol->Unlink(vol->root(), "a"), 0);
  EXPECT_EQ(vol->FreeBlocks(), free0);
  ExpectClean(vol.get());
}

// A growing truncate keeps KEEP_SIZE preallocation past the new EOF (XFS
// frees blocks past EOF only when the size does not grow); shrinking frees.
TEST(VolumeTest, GrowingTruncateKeepsPreallocation) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  std::unique_ptr<OpenFile> f =
      OpenOrDie(vol.get(), CreateFile(vol.get(), "a"));
  const std::string data = Pattern(16384, 4);
  ASSERT_EQ(f->Write(0, data.data(), data.size()), 16384);
  ASSERT_EQ(f->Fallocate(FALLOC_FL_KEEP_SIZE, 16384, 49152), 0);
  auto last_end = [&] {
    iomap::FiemapRequest req;
    req.fm_length = iomap::kFiemapMaxOffset;
    req.fm_extent_count = 10;
    req.fm_flags = iomap::kFiemapFlagSync;
    EXPECT_EQ(f->Fiemap(&req), 0);
    if (req.fm_mapped_extents == 0) return uint64_t{0};
    const iomap::FiemapExtent& e = req.fm_extents[req.fm_mapped_extents - 1];
    return e.fe_logical + e.fe_length;
  };
  ASSERT_EQ(last_end(), 65536u);
  ASSERT_EQ(f->Truncate(20480), 0);
  EXPECT_EQ(last_end(), 65536u);
  ASSERT_EQ(f->Truncate(40960), 0);
  EXPECT_EQ(last_end(), 65536u);
  EXPECT_EQ(ReadAll(f.get(), 16384, 40960 - 16384),
            std::string(40960 - 16384, '\0'));
  ExpectClean(vol.get());
  ASSERT_EQ(f->Truncate(8192), 0);
  EXPECT_EQ(last_end(), 8192u);
  ExpectClean(vol.get());
}

TEST(VolumeTest, FallocatePunchZeroThroughVolume) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  FileHandle h = CreateFile(vol.get(), "a");
  std::string model = Pattern(65536, 6);
  {
    std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
    ASSERT_EQ(f->Write(0, model.data(), model.size()), 65536);
    ASSERT_EQ(f->Fsync(), 0);
    const uint64_t free0 = vol->FreeBlocks();
    ASSERT_EQ(f->Fallocate(FALLOC_FL_KEEP_SIZE, 128 << 10, 64 << 10), 0);
    EXPECT_EQ(f->size(), 65536);
    EXPECT_EQ(vol->FreeBlocks(), free0 - 16);
    ASSERT_EQ(f->Fallocate(0, 256 << 10, 64 << 10), 0);
    EXPECT_EQ(f->size(), 320 << 10);
    model.resize(320 << 10, '\0');
    EXPECT_EQ(f->SeekHole(0), 65536);
    EXPECT_EQ(f->SeekData(65536), -ENXIO);  // unwritten, nothing cached
    EXPECT_EQ(ReadAll(f.get(), 0, 1 << 20), model);
    // Now cached (uptodate zeros): the kernel reports that as data.
    EXPECT_EQ(f->SeekData(65536), 128 << 10);
    iomap::FiemapRequest req;
    req.fm_length = iomap::kFiemapMaxOffset;
    req.fm_extent_count = 10;
    ASSERT_EQ(f->Fiemap(&req), 0);
    ASSERT_EQ(req.fm_mapped_extents, 3u);
    EXPECT_EQ(req.fm_extents[1].fe_logical, 128u << 10);
    EXPECT_NE(req.fm_extents[1].fe_flags & iomap::kFiemapExtentUnwritten, 0u);
    // A write into the unwritten range is data at once, written at fsync.
    const std::string w = Pattern(4096, 7);
    ASSERT_EQ(f->Write(256 << 10, w.data(), w.size()), 4096);
    model.replace(256 << 10, 4096, w);
    EXPECT_EQ(f->SeekData(192 << 10), 256 << 10);
    ASSERT_EQ(f->Fsync(), 0);
    req = iomap::FiemapRequest();
    req.fm_length = iomap::kFiemapMaxOffset;
    req.fm_extent_count = 10;
    ASSERT_EQ(f->Fiemap(&req), 0);
    ASSERT_EQ(req.fm_mapped_extents, 4u);
    EXPECT_EQ(req.fm_extents[2].fe_logical, 256u << 10);
    EXPECT_EQ(req.fm_extents[2].fe_length, 4096u);
    EXPECT_EQ(req.fm_extents[2].fe_flags & iomap::kFiemapExtentUnwritten, 0u);
    // Punch [1000, 11000): block 1 is freed, the edges are zeroed.
    const uint64_t free1 = vol->FreeBlocks();
    ASSERT_EQ(
        f->Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 10000),
        0);
    model.replace(1000, 10000, std::string(10000, '\0'));
    EXPECT_EQ(vol->FreeBlocks(), free1 + 1);
    ASSERT_EQ(
        f->Fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 20000, 20000),
        0);
    model.replace(20000, 20000, std::string(20000, '\0'));
    EXPECT_EQ(ReadAll(f.get(), 0, 1 << 20), model);
    EXPECT_EQ(f->Fallocate(FALLOC_FL_COLLAPSE_RANGE, 0, 4096), -EOPNOTSUPP);
    ASSERT_EQ(f->Fsync(), 0);
    ExpectClean(vol.get());
  }
  ASSERT_TRUE(vol->Unmount().ok());
  vol.reset();
  ExpectFsckClean(&dev);
  vol = Remount(&dev);
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  EXPECT_EQ(ReadAll(f.get(), 0, 1 << 20), model);
}

TEST(VolumeTest, UnlinkedOpenFileIsFreedAtClose) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  const uint64_t free0 = vol->FreeBlocks();
  FileHandle h = CreateFile(vol.get(), "a");
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  const std::string data = Pattern(200000, 8);
  ASSERT_EQ(f->Write(0, data.data(), data.size()), 200000);
  ASSERT_EQ(f->Fsync(), 0);
  ASSERT_EQ(vol->Unlink(vol->root(), "a"), 0);
  EXPECT_EQ(ReadAll(f.get(), 0, data.size()), data);  // still readable
  EXPECT_LT(vol->FreeBlocks(), free0);
  EXPECT_EQ(f->Close(), 0);
  EXPECT_EQ(vol->FreeBlocks(), free0);
  ExpectClean(vol.get());
  ASSERT_TRUE(vol->Unmount().ok());
  vol.reset();
  ExpectFsckClean(&dev);
}

TEST(VolumeTest, ConcurrentWritersAndFsyncs) {
  MemDevice dev(kDevBytes);
  VolumeOptions options;
  options.flusher.writeback_interval_ms = 5;
  options.flusher.dirty_expire_ms = 1;
  LayoutOptions layout;
  layout.device_bytes = kDevBytes;
  ASSERT_TRUE(Volume::Format(dev, layout).ok());
  absl::StatusOr<std::unique_ptr<Volume>> mounted = Volume::Mount(dev, options);
  ASSERT_TRUE(mounted.ok());
  Volume* vol = mounted->get();
  constexpr int kThreads = 4;
  std::vector<FileHandle> handles;
  for (int t = 0; t < kThreads; ++t)
    handles.push_back(CreateFile(vol, "f" + std::to_string(t)));
  std::vector<std::string> models(kThreads, std::string(256 << 10, '\0'));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t + 1);
      std::unique_ptr<OpenFile> f = OpenOrDie(vol, handles[t]);
      for (int i = 0; i < 60; ++i) {
        const int64_t pos = rng() % (200 << 10);
        const std::string buf = Pattern(1 + rng() % 50000, rng());
        EXPECT_EQ(f->Write(pos, buf.data(), buf.size()),
                  static_cast<int64_t>(buf.size()));
        models[t].replace(pos, buf.size(), buf);
        if (i % 10 == 0) {
          EXPECT_EQ(f->Fsync(), 0);
        }
        if (i % 17 == 0) {
          EXPECT_EQ(f->Truncate(pos), 0);
          models[t].replace(pos, std::string::npos,
                            std::string(models[t].size() - pos, '\0'));
        }
      }
      EXPECT_EQ(f->Fsync(), 0);
    });
  }
  for (std::thread& th : threads) th.join();
  ExpectClean(vol);
  ASSERT_TRUE(vol->Unmount().ok());
  mounted->reset();
  ExpectFsckClean(&dev);
  std::unique_ptr<Volume> again = Remount(&dev);
  for (int t = 0; t < kThreads; ++t) {
    std::unique_ptr<OpenFile> f = OpenOrDie(again.get(), handles[t]);
    std::string got = ReadAll(f.get(), 0, 256 << 10);
    got.resize(256 << 10, '\0');
    EXPECT_EQ(got, models[t]) << "file " << t;
  }
}

TEST(VolumeTest, SmallJournalWrapsThroughCheckpoints) {
  MemDevice dev(kDevBytes);
  LayoutOptions layout;
  layout.device_bytes = kDevBytes;
  layout.journal_blocks = 64;  // 256 KiB: ~64 commits of one block
  ASSERT_TRUE(Volume::Format(dev, layout).ok());
  std::unique_ptr<Volume> vol = Remount(&dev);
  FileHandle h = CreateFile(vol.get(), "a");
  std::string model;
  {
    std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
    for (int i = 0; i < 400; ++i) {
      const std::string b = Pattern(100, i);
      ASSERT_EQ(f->Write(i * 8192, b.data(), b.size()), 100) << i;
      ASSERT_EQ(f->Fsync(), 0) << i;
      model.resize(i * 8192, '\0');
      model += b;
    }
    for (int i = 0; i < 100; ++i)
      ASSERT_EQ(vol->Create(vol->root(), "n" + std::to_string(i), 0644, true,
                            nullptr),
                0);
  }
  ASSERT_TRUE(vol->Unmount().ok());
  vol = Remount(&dev);
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  EXPECT_EQ(ReadAll(f.get(), 0, model.size() + 10), model);
}

TEST(VolumeTest, WritebackErrorReportedOncePerOpenFile) {
  block::SimOptions so;
  so.capacity_bytes = kDevBytes;
  so.seed = 42;
  so.background = true;
  so.direct = false;
  block::SimDevice dev(so);
  LayoutOptions layout;
  layout.device_bytes = kDevBytes;
  absl::StatusOr<Superblock> sb = Volume::Format(dev, layout);
  ASSERT_TRUE(sb.ok());
  absl::StatusOr<std::unique_ptr<Volume>> vol = Volume::Mount(dev);
  ASSERT_TRUE(vol.ok());
  FileHandle h = CreateFile(vol->get(), "a");
  std::unique_ptr<OpenFile> f1 = OpenOrDie(vol->get(), h);
  std::unique_ptr<OpenFile> f2 = OpenOrDie(vol->get(), h);
  block::SimFault fault;
  fault.op_mask = block::SimOpBit(block::BioOp::kWrite);
  fault.offset = sb->data_start * sb->block_size;  // data blocks only
  const int id = dev.AddFault(fault);
  const std::string data = Pattern(50000, 9);
  ASSERT_EQ(f1->Write(0, data.data(), data.size()), 50000);
  EXPECT_EQ(f1->Fsync(), -EIO);
  EXPECT_EQ(f1->Fsync(), 0);
  EXPECT_EQ(f2->Fsync(), -EIO);
  EXPECT_EQ(f2->Fsync(), 0);
  dev.RemoveFault(id);
  EXPECT_EQ(vol->get()->ReservedBlocks(), 0u);
  ExpectClean(vol->get());
  // Data that failed is not reported durable: the extent stays unwritten.
  iomap::FiemapRequest req;
  req.fm_length = iomap::kFiemapMaxOffset;
  req.fm_extent_count = 4;
  ASSERT_EQ(f1->Fiemap(&req), 0);
  ASSERT_GE(req.fm_mapped_extents, 1u);
  EXPECT_NE(req.fm_extents[0].fe_flags & iomap::kFiemapExtentUnwritten, 0u);
}

TEST(VolumeTest, NowaitAndSyncWrites) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  FileHandle h = CreateFile(vol.get(), "a");
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  const std::string data = Pattern(8192, 10);
  f->inode()->locks().rwsem.LockShared();
  std::thread other([&] {
    EXPECT_EQ(f->Write(0, data.data(), data.size(), iomap::kNowait), -EAGAIN);
  });
  other.join();
  f->inode()->locks().rwsem.UnlockShared();
  InodeAttr attr;
  ASSERT_EQ(f->Write(100000, "x", 1), 1);
  ASSERT_EQ(vol->GetAttr(h, &attr), 0);
  EXPECT_EQ(attr.size, 100001u);  // in-core size of an open file
  ASSERT_EQ(vol->Truncate(h, 8192), 0);
  EXPECT_EQ(f->size(), 8192);
  const uint64_t flushes = dev.flushes();
  ASSERT_EQ(f->Write(0, data.data(), data.size(), OpenFile::kSync), 8192);
  EXPECT_GT(dev.flushes(), flushes);
  EXPECT_EQ(vol->ReservedBlocks(), 0u);  // written back before returning
}

// Delalloc converts whole extents at writeback: a file written in 1 MiB
// pieces and fsync'd once is one extent on the device.
TEST(VolumeTest, SequentialWriteStaysContiguous) {
  MemDevice dev(96ull << 20);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  FileHandle h = CreateFile(vol.get(), "big");
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  const std::string chunk = Pattern(1 << 20, 11);
  for (int i = 0; i < 64; ++i)
    ASSERT_EQ(f->Write(int64_t{i} << 20, chunk.data(), chunk.size()), 1 << 20);
  ASSERT_EQ(f->Fsync(), 0);
  iomap::FiemapRequest req;
  req.fm_length = iomap::kFiemapMaxOffset;
  ASSERT_EQ(f->Fiemap(&req), 0);
  EXPECT_EQ(req.fm_mapped_extents, 1u);
  EXPECT_EQ(ReadAll(f.get(), 63 << 20, 1 << 20), chunk);
}

// Crash test: random writes and fsyncs on three files; the device freezes
// after a random number of writes (power cut), then comes back with a
// random subset of unflushed writes. Every byte a completed fsync covered
// must read back as it was; any other byte must read as a value written
// to it or as zero - never another file's data.
struct ModelFile {
  FileHandle h;
  int64_t size = 0, synced_size = 0, max_size = 0;
  int64_t floor = 0;            // the smallest size a crash may leave
  std::vector<uint8_t> synced;  // bytes as of the last fsync
  std::vector<std::bitset<256>> since_sync;  // values written since
  std::vector<uint8_t> current;
};

constexpr int64_t kMaxFile = 96 << 10;

void CrashOnce(uint64_t seed) {
  SCOPED_TRACE(seed);
  std::mt19937_64 rng(seed);
  MemDevice dev(16ull << 20);
  std::vector<ModelFile> files(3);
  {
    std::unique_ptr<Volume> vol = FormatAndMount(&dev, rng() % 2 ? 4096 : 1024);
    ASSERT_NE(vol, nullptr);
    std::vector<std::unique_ptr<OpenFile>> open;
    for (int i = 0; i < 3; ++i) {
      files[i].h = CreateFile(vol.get(), "f" + std::to_string(i));
      files[i].synced.assign(kMaxFile, 0);
      files[i].current.assign(kMaxFile, 0);
      files[i].since_sync.assign(kMaxFile, {});
      open.push_back(OpenOrDie(vol.get(), files[i].h));
    }
    ASSERT_EQ(open[0]->Fsync(), 0);  // the creates are durable
    dev.CrashAfterWrites(rng() % 120, rng());
    for (int step = 0; step < 40; ++step) {
      const int i = static_cast<int>(rng() % 3);
      ModelFile& m = files[i];
      if (rng() % 4 == 0) {
        const bool before = dev.frozen();
        int r = open[i]->Fsync();
        if (r == 0 && !before && !dev.frozen()) {
          m.synced = m.current;
          m.synced_size = m.size;
          m.floor = m.size;
          m.since_sync.assign(kMaxFile, {});
        }
        continue;
      }
      if (rng() % 6 == 0) {
        const int64_t t = static_cast<int64_t>(rng() % (m.size + 1));
        ASSERT_EQ(open[i]->Truncate(t), 0);
        for (int64_t b = t; b < kMaxFile; ++b) {
          m.current[b] = 0;
          m.since_sync[b].set(0);
        }
        m.size = t;
        m.floor = std::min(m.floor, t);
        continue;
      }
      if (rng() % 8 == 0 && m.size > 0) {
        const int64_t p = static_cast<int64_t>(rng() % m.size);
        const int64_t l = 1 + static_cast<int64_t>(rng() % (m.size - p));
        ASSERT_EQ(open[i]->Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                     p, l),
                  0);
        for (int64_t b = p; b < p + l; ++b) {
          m.current[b] = 0;
          m.since_sync[b].set(0);
        }
        continue;
      }
      const int64_t pos = static_cast<int64_t>(rng() % (kMaxFile - 1));
      const int64_t len =
          1 + static_cast<int64_t>(rng() %
                                   std::min<int64_t>(20000, kMaxFile - pos));
      const uint8_t v = static_cast<uint8_t>(1 + step + 40 * i);
      std::string buf(static_cast<size_t>(len), static_cast<char>(v));
      ASSERT_EQ(open[i]->Write(pos, buf.data(), buf.size()), len);
      for (int64_t b = pos; b < pos + len; ++b) {
        m.current[b] = v;
        m.since_sync[b].set(v);
      }
      m.size = std::max(m.size, pos + len);
      m.max_size = std::max(m.max_size, m.size);
    }
    if (!dev.frozen()) dev.CrashAfterWrites(0, rng());
    open.clear();
  }  // the volume goes away without reaching the device
  dev.Crash(rng());
  std::unique_ptr<Volume> vol = Remount(&dev);
  ASSERT_NE(vol, nullptr);
  for (int i = 0; i < 3; ++i) {
    ModelFile& m = files[i];
    std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), m.h);
    ASSERT_NE(f, nullptr);
    EXPECT_GE(f->size(), m.floor) << "file " << i;
    EXPECT_LE(f->size(), m.max_size) << "file " << i;
    std::string got = ReadAll(f.get(), 0, kMaxFile);
    for (int64_t b = 0; b < static_cast<int64_t>(got.size()); ++b) {
      const uint8_t g = static_cast<uint8_t>(got[b]);
      const uint8_t base = m.synced[b];
      if (g == base || m.since_sync[b].test(g) ||
          (g == 0 && b >= m.synced_size))
        continue;
      ADD_FAILURE() << "file " << i << " byte " << b << " reads " << int(g)
                    << ", synced " << int(base);
      break;
    }
  }
  ExpectClean(vol.get());
  ASSERT_TRUE(vol->Unmount().ok());
  vol.reset();
  ExpectFsckClean(&dev);
}

TEST(VolumeCrashTest, FsyncedDataSurvivesCrashes) {
  const auto start = std::chrono::steady_clock::now();
  int runs = 0;
  for (uint64_t seed = 1; seed <= 2000; ++seed) {
    CrashOnce(seed * 7919);
    ++runs;
    if (::testing::Test::HasFailure()) break;
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(20))
      break;
  }
  printf("crash points run: %d\n", runs);
}

// The same checks on block::SimDevice in background mode: bios complete out
// of order on the device thread, never-written sectors read as garbage (so
// an extent made reachable before its data would show it), and the crash
// happens while I/O is in flight.
void SimCrashOnce(uint64_t seed) {
  SCOPED_TRACE(seed);
  std::mt19937_64 rng(seed);
  block::SimOptions so;
  so.capacity_bytes = 16ull << 20;
  so.seed = seed;
  so.background = true;
  so.direct = false;
  auto dev = std::make_unique<block::SimDevice>(so);
  LayoutOptions layout;
  layout.block_size = 4096;
  layout.device_bytes = so.capacity_bytes;
  ASSERT_TRUE(Volume::Format(*dev, layout).ok());
  std::vector<ModelFile> files(2);
  {
    absl::StatusOr<std::unique_ptr<Volume>> vol = Volume::Mount(*dev);
    ASSERT_TRUE(vol.ok()) << vol.status();
    std::vector<std::unique_ptr<OpenFile>> open;
    for (int i = 0; i < 2; ++i) {
      files[i].h = CreateFile(vol->get(), "f" + std::to_string(i));
      files[i].synced.assign(kMaxFile, 0);
      files[i].current.assign(kMaxFile, 0);
      files[i].since_sync.assign(kMaxFile, {});
      open.push_back(OpenOrDie(vol->get(), files[i].h));
    }
    ASSERT_EQ(open[0]->Fsync(), 0);
    const int crash_step = static_cast<int>(rng() % 30);
    for (int step = 0; step < crash_step; ++step) {
      const int i = static_cast<int>(rng() % 2);
      ModelFile& m = files[i];
      if (rng() % 3 == 0) {
        ASSERT_EQ(open[i]->Fsync(), 0);
        m.synced = m.current;
        m.synced_size = m.floor = m.size;
        m.since_sync.assign(kMaxFile, {});
        continue;
      }
      const int64_t pos = static_cast<int64_t>(rng() % (kMaxFile - 1));
      const int64_t len =
          1 + static_cast<int64_t>(rng() %
                                   std::min<int64_t>(20000, kMaxFile - pos));
      const uint8_t v = static_cast<uint8_t>(1 + step + 40 * i);
      std::string buf(static_cast<size_t>(len), static_cast<char>(v));
      ASSERT_EQ(open[i]->Write(pos, buf.data(), buf.size()), len);
      for (int64_t b = pos; b < pos + len; ++b) {
        m.current[b] = v;
        m.since_sync[b].set(v);
      }
      m.size = std::max(m.size, pos + len);
      m.max_size = std::max(m.max_size, m.size);
      if (rng() % 4 == 0) vol->get()->flusher()->Kick();
    }
    dev->Crash();
    open.clear();
  }
  std::unique_ptr<block::SimDevice> rebooted = dev->Reboot();
  absl::StatusOr<std::unique_ptr<Volume>> vol = Volume::Mount(*rebooted);
  ASSERT_TRUE(vol.ok()) << vol.status();
  for (int i = 0; i < 2; ++i) {
    ModelFile& m = files[i];
    std::unique_ptr<OpenFile> f = OpenOrDie(vol->get(), m.h);
    ASSERT_NE(f, nullptr);
    EXPECT_GE(f->size(), m.floor);
    EXPECT_LE(f->size(), m.max_size);
    std::string got = ReadAll(f.get(), 0, kMaxFile);
    for (int64_t b = 0; b < static_cast<int64_t>(got.size()); ++b) {
      const uint8_t g = static_cast<uint8_t>(got[b]);
      if (g == m.synced[b] || m.since_sync[b].test(g) ||
          (g == 0 && b >= m.floor))
        continue;
      ADD_FAILURE() << "file " << i << " byte " << b << " reads " << int(g)
                    << ", synced " << int(m.synced[b]);
      break;
    }
  }
  ExpectClean(vol->get());
  ASSERT_TRUE((*vol)->Unmount().ok());
  vol->reset();
  FsckResult r = FsckVolume(*rebooted);
  EXPECT_TRUE(r.clean()) << r.problems[0];
}

TEST(VolumeCrashTest, SimDeviceInFlightCrashes) {
  const auto start = std::chrono::steady_clock::now();
  int runs = 0;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    SimCrashOnce(seed * 104729);
    ++runs;
    if (::testing::Test::HasFailure()) break;
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(8))
      break;
  }
  printf("sim crash points run: %d\n", runs);
}

}  // namespace
}  // namespace fs
