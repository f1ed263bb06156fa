#include "fs/volume.h"

#include <linux/falloc.h>

#include <algorithm>
#include <atomic>
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

// Every test runs at each block size of the format (512 B to 64 KiB);
// offsets and counts are written in blocks (`bs_`) where they depend on it.
class VolumeTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  std::unique_ptr<Volume> FormatAndMount(MemDevice* dev) {
    return testing::FormatAndMount(dev, bs_);
  }
  // A layout at this block size for a device of `bytes`.
  LayoutOptions Layout(uint64_t bytes) const {
    LayoutOptions layout;
    layout.block_size = bs_;
    layout.device_bytes = bytes;
    return layout;
  }
  // Blocks needed to hold `bytes`.
  uint64_t BlocksFor(uint64_t bytes) const { return (bytes + bs_ - 1) / bs_; }

  const uint32_t bs_ = GetParam();
  const int64_t bs64_ = GetParam();  // for signed offsets and results
};

TEST_P(VolumeTest, WriteReadBackAcrossRemount) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  ASSERT_NE(vol, nullptr);
  FileHandle h = CreateFile(vol.get(), "a");
  const std::string data = Pattern(300000, bs_);
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

TEST_P(VolumeTest, StaleHandleAndDirectory) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  FileHandle h = CreateFile(vol.get(), "a");
  std::unique_ptr<OpenFile> f;
  EXPECT_EQ(vol->Open(vol->root(), &f), -EISDIR);
  EXPECT_EQ(vol->Unlink(vol->root(), "a"), 0);
  EXPECT_EQ(vol->Open(h, &f), -ESTALE);
}

TEST_P(VolumeTest, DelallocReservationReturnsToZero) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  FileHandle h = CreateFile(vol.get(), "a");
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  const uint64_t free0 = vol->FreeBlocks();
  const std::string data = Pattern(100000, 1);
  ASSERT_EQ(f->Write(0, data.data(), data.size()), 100000);
  EXPECT_EQ(vol->ReservedBlocks(h.ino), BlocksFor(100000));
  ASSERT_EQ(f->Fsync(), 0);
  EXPECT_EQ(vol->ReservedBlocks(), 0u);
  EXPECT_EQ(vol->FreeBlocks(), free0 - BlocksFor(100000));
  // A short write: the source faults after 10000 bytes of a 200000 byte
  // write over a hole; the unused reservation is punched.
  const std::string more = Pattern(200000, 2);
  iomap::BufferSource src(more.data(), more.size(), 10000);
  int64_t r = f->WriteFrom(1 << 20, &src);
  EXPECT_GT(r, 0);
  EXPECT_LT(r, 200000);
  const uint64_t want = BlocksFor((1 << 20) + r) - (1 << 20) / bs_;
  EXPECT_EQ(vol->ReservedBlocks(h.ino), want);
  ExpectClean(vol.get());
  ASSERT_EQ(f->Fsync(), 0);
  EXPECT_EQ(vol->ReservedBlocks(), 0u);
  ExpectClean(vol.get());
}

// st_blocks counts delalloc, unwritten and written blocks (XFS counts
// delalloc in st_blocks too) and drops when blocks are punched.
TEST_P(VolumeTest, StatBlocksCountsEveryMappedBlock) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  FileHandle h = CreateFile(vol.get(), "a");
  uint64_t blocks = 1;
  ASSERT_EQ(vol->StatBlocks(h, &blocks), 0);
  EXPECT_EQ(blocks, 0u);
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  const uint64_t sectors = bs_ / 512;  // st_blocks per block
  const std::string data = Pattern(3 * bs_, 3);
  ASSERT_EQ(f->Write(0, data.data(), data.size()), 3 * bs64_);
  ASSERT_EQ(vol->StatBlocks(h, &blocks), 0);
  EXPECT_EQ(blocks, 3 * sectors);  // delalloc
  ASSERT_EQ(f->Fallocate(FALLOC_FL_KEEP_SIZE, 1 << 20, 2 * bs64_), 0);
  ASSERT_EQ(f->Fsync(), 0);
  ASSERT_EQ(vol->StatBlocks(h, &blocks), 0);
  EXPECT_EQ(blocks, 5 * sectors);  // 3 written + 2 unwritten
  ASSERT_EQ(f->Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, bs_),
            0);
  ASSERT_EQ(vol->StatBlocks(h, &blocks), 0);
  EXPECT_EQ(blocks, 4 * sectors);
  ASSERT_EQ(f->Close(), 0);
  ASSERT_EQ(vol->StatBlocks(vol->root(), &blocks), 0);
  EXPECT_EQ(blocks, 0u);
  EXPECT_EQ(vol->StatBlocks(FileHandle{h.ino, h.generation + 1}, &blocks),
            -ESTALE);
  ExpectClean(vol.get());
}

// st_blocks counts the COW fork too (XFS's i_delayed_blks): a write to a
// shared block reserves the aligned 32-block COW window, which stat shows
// until the remap moves the written blocks into the data fork and the
// close cancels the rest.
TEST_P(VolumeTest, StatBlocksCountsTheCowFork) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  FileHandle ha = CreateFile(vol.get(), "a"), hb = CreateFile(vol.get(), "b");
  std::unique_ptr<OpenFile> a = OpenOrDie(vol.get(), ha);
  std::unique_ptr<OpenFile> b = OpenOrDie(vol.get(), hb);
  const uint64_t sectors = bs_ / 512;  // st_blocks per block
  const std::string data = Pattern(2 * bs_, 4);
  ASSERT_EQ(a->Write(0, data.data(), data.size()), 2 * bs64_);
  ASSERT_EQ(a->Fsync(), 0);
  ASSERT_EQ(b->CloneRange(a.get(), 0, 0, 2 * bs_), 2 * bs64_);
  uint64_t blocks;
  ASSERT_EQ(vol->StatBlocks(hb, &blocks), 0);
  EXPECT_EQ(blocks, 2 * sectors);
  ASSERT_EQ(b->Write(0, "x", 1), 1);  // COW: the window [0, 32) reserved
  ASSERT_EQ(vol->StatBlocks(hb, &blocks), 0);
  EXPECT_EQ(blocks, (2 + 32) * sectors);
  ASSERT_EQ(b->Fsync(), 0);  // block 0 remapped, 31 staged blocks left
  ASSERT_EQ(vol->StatBlocks(hb, &blocks), 0);
  EXPECT_EQ(blocks, (2 + 31) * sectors);
  ASSERT_EQ(b->Close(), 0);  // the close cancels the COW fork
  ASSERT_EQ(vol->StatBlocks(hb, &blocks), 0);
  EXPECT_EQ(blocks, 2 * sectors);
  ASSERT_EQ(a->Close(), 0);
  ExpectClean(vol.get());
}

// O_APPEND from several open files at once: every record lands whole at
// its own offset, none overwrites another, and the size survives the last
// close (an Open racing with a last close once built its in-core inode from
// a size read before that close persisted the final one).
TEST_P(VolumeTest, ConcurrentAppendsNeverOverlap) {
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
TEST_P(VolumeTest, WritesUpdateTimes) {
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

// fdatasync makes the data and what reading it needs (size, extents)
// durable, but not a change of the timestamps alone (XFS: no log force when
// only XFS_ILOG_TIMESTAMP is dirty); fsync makes those durable too.
TEST_P(VolumeTest, FdatasyncSkipsTimestampOnlyChanges) {
  MemDevice dev(kDevBytes);
  FileHandle h;
  InodeAttr synced;
  const std::string data = Pattern(8192, 3);
  {
    std::unique_ptr<Volume> vol = FormatAndMount(&dev);
    h = CreateFile(vol.get(), "t");
    std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
    ASSERT_EQ(f->Write(0, data.data(), data.size()), 8192);
    ASSERT_EQ(f->Fsync(), 0);
    ASSERT_EQ(vol->GetAttr(h, &synced), 0);
    ASSERT_EQ(f->Write(0, "zzzz", 4), 4);  // an overwrite: times only
    InodeAttr now;
    ASSERT_EQ(vol->GetAttr(h, &now), 0);
    ASSERT_GT(now.mtime_ns, synced.mtime_ns);
    ASSERT_EQ(f->Fdatasync(), 0);
    dev.SetFailAll(true);  // the power goes: the close journals nothing
    f->Close();
  }
  dev.SetFailAll(false);
  dev.Crash(1);
  {
    std::unique_ptr<Volume> vol = Remount(&dev);
    ASSERT_NE(vol, nullptr);
    InodeAttr got;
    ASSERT_EQ(vol->GetAttr(h, &got), 0);
    EXPECT_EQ(got.mtime_ns, synced.mtime_ns);  // the new time was not synced
    std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
    EXPECT_EQ(ReadAll(f.get(), 0, 8192), "zzzz" + data.substr(4));
    ASSERT_EQ(f->Write(8192, "tail", 4), 4);  // a size change
    ASSERT_EQ(f->Fdatasync(), 0);
    dev.SetFailAll(true);
    f->Close();
  }
  dev.SetFailAll(false);
  dev.Crash(2);
  std::unique_ptr<Volume> vol = Remount(&dev);
  ASSERT_NE(vol, nullptr);
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  EXPECT_EQ(f->size(), 8196);
  EXPECT_EQ(ReadAll(f.get(), 8192, 100), "tail");
}

// An explicit SetAttr(mtime) wins over a write whose time was taken before
// it, even when that time lands after it (the pending time is in core
// only, not ordered by a lock); a write after it wins over it.
TEST_P(VolumeTest, ExplicitMtimeBeatsOlderPendingWriteTime) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  FileHandle h = CreateFile(vol.get(), "t");
  InodeAttr want, set, got;
  want.mtime_ns = 1000000000;  // 1970: far before any write
  {
    std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
    ASSERT_EQ(f->Write(0, "a", 1), 1);
    ASSERT_EQ(vol->SetAttr(h, kSetMtime, want, &set), 0);
    EXPECT_EQ(set.mtime_ns, want.mtime_ns);
    f->inode()->TouchTimes(set.ctime_ns - 1);  // taken before, lands after
    ASSERT_EQ(f->Fsync(), 0);
    ASSERT_EQ(vol->GetAttr(h, &got), 0);
    EXPECT_EQ(got.mtime_ns, want.mtime_ns);
    EXPECT_EQ(got.ctime_ns, set.ctime_ns);
    f->inode()->TouchTimes(set.ctime_ns + 1);  // a later write
  }  // the last close journals it
  ASSERT_TRUE(vol->Unmount().ok());
  vol = Remount(&dev);
  ASSERT_EQ(vol->GetAttr(h, &got), 0);
  EXPECT_EQ(got.mtime_ns, set.ctime_ns + 1);
  EXPECT_EQ(got.ctime_ns, set.ctime_ns + 1);
}

// I/O completion journals a size update by reading the attributes and
// writing them back, all under the ilock; SetAttr takes the ilock of an open
// file, so it can never land between those two steps (where the write-back
// would undo it). A completion is simulated by holding the ilock.
TEST_P(VolumeTest, SetAttrWaitsForTheIlock) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  FileHandle h = CreateFile(vol.get(), "m");
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  std::atomic<bool> done{false};
  f->inode()->fork()->ilock.Lock();
  std::thread setter([&] {
    InodeAttr want;
    want.mode = 0600;
    EXPECT_EQ(vol->SetAttr(h, kSetMode, want, nullptr), 0);
    done.store(true);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(done.load());
  f->inode()->fork()->ilock.Unlock();
  setter.join();
  EXPECT_TRUE(done.load());
  InodeAttr got;
  ASSERT_EQ(vol->GetAttr(h, &got), 0);
  EXPECT_EQ(got.mode & 07777, 0600u);
}

TEST_P(VolumeTest, EnospcAtWriteTime) {
  MemDevice dev(std::max<uint64_t>(2ull << 20, 128ull * bs_));
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

TEST_P(VolumeTest, SeekAndFiemapThroughVolume) {
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
  EXPECT_EQ(f->Bmap(0), req.fm_extents[0].fe_physical / bs_);
  // After writeback the second extent is real (FIEMAP_FLAG_SYNC).
  req = iomap::FiemapRequest();
  req.fm_length = iomap::kFiemapMaxOffset;
  req.fm_extent_count = 10;
  req.fm_flags = iomap::kFiemapFlagSync;
  ASSERT_EQ(f->Fiemap(&req), 0);
  ASSERT_EQ(req.fm_mapped_extents, 2u);
  EXPECT_EQ(req.fm_extents[1].fe_flags & iomap::kFiemapExtentDelalloc, 0u);
  EXPECT_NE(f->Bmap((1 << 20) / bs_), 0u);
  EXPECT_EQ(f->Bmap((512 << 10) / bs_), 0u);  // a hole
}

// A ranged FIEMAP reports each mapping trimmed to the queried range, as
// XFS does (xfs_bmapi_read); a range inside a hole reports nothing.
TEST_P(VolumeTest, RangedFiemapTrimsToRange) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  std::unique_ptr<OpenFile> f =
      OpenOrDie(vol.get(), CreateFile(vol.get(), "a"));
  // Data in blocks [0, 16) and [32, 48).
  const std::string data = Pattern(16 * bs_, 4);
  ASSERT_EQ(f->Write(0, data.data(), data.size()), 16 * bs64_);
  ASSERT_EQ(f->Write(32 * bs64_, data.data(), data.size()), 16 * bs64_);
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
  const uint64_t b = bs_;
  iomap::FiemapRequest req = fiemap(b, b);
  ASSERT_EQ(req.fm_mapped_extents, 1u);
  EXPECT_EQ(req.fm_extents[0].fe_logical, b);
  EXPECT_EQ(req.fm_extents[0].fe_length, b);
  EXPECT_EQ(req.fm_extents[0].fe_physical, phys0 + b);
  // A byte range inside a block reports the whole block (XFS_B_TO_FSBT and
  // XFS_B_TO_FSB round the range out to blocks).
  req = fiemap(b + 1, 1);
  ASSERT_EQ(req.fm_mapped_extents, 1u);
  EXPECT_EQ(req.fm_extents[0].fe_logical, b);
  EXPECT_EQ(req.fm_extents[0].fe_length, b);
  req = fiemap(15 * b, 20 * b);  // the end of one, the start of the next
  ASSERT_EQ(req.fm_mapped_extents, 2u);
  EXPECT_EQ(req.fm_extents[0].fe_logical, 15 * b);
  EXPECT_EQ(req.fm_extents[0].fe_length, b);
  EXPECT_EQ(req.fm_extents[1].fe_logical, 32 * b);
  EXPECT_EQ(req.fm_extents[1].fe_length, 3 * b);
  EXPECT_EQ(fiemap(17 * b, 10 * b).fm_mapped_extents, 0u);
  // Seek is unaffected.
  EXPECT_EQ(f->SeekHole(bs64_), 16 * bs64_);
  EXPECT_EQ(f->SeekData(16 * bs64_), 32 * bs64_);
}

// FIEMAP_FLAG_XATTR maps the attribute fork, which iomapd files never
// have: no extents, as XFS reports for a file without attributes.
TEST_P(VolumeTest, FiemapXattrForkIsEmpty) {
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

TEST_P(VolumeTest, TruncateFreesBlocksAndPersists) {
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
    EXPECT_EQ(vol->FreeBlocks(), free0 - BlocksFor(10000));
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
TEST_P(VolumeTest, GrowingTruncateKeepsPreallocation) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  std::unique_ptr<OpenFile> f =
      OpenOrDie(vol.get(), CreateFile(vol.get(), "a"));
  // Data in blocks [0, 4), preallocation in [4, 16).
  const int64_t b = bs_;
  const std::string data = Pattern(4 * b, 4);
  ASSERT_EQ(f->Write(0, data.data(), data.size()), 4 * b);
  ASSERT_EQ(f->Fallocate(FALLOC_FL_KEEP_SIZE, 4 * b, 12 * b), 0);
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
  const uint64_t end = 16 * b;
  ASSERT_EQ(last_end(), end);
  ASSERT_EQ(f->Truncate(5 * b), 0);
  EXPECT_EQ(last_end(), end);
  ASSERT_EQ(f->Truncate(10 * b), 0);
  EXPECT_EQ(last_end(), end);
  EXPECT_EQ(ReadAll(f.get(), 4 * b, 6 * b), std::string(6 * b, '\0'));
  ExpectClean(vol.get());
  ASSERT_EQ(f->Truncate(2 * b), 0);
  EXPECT_EQ(last_end(), uint64_t(2 * b));
  ExpectClean(vol.get());
}

TEST_P(VolumeTest, FallocatePunchZeroThroughVolume) {
  MemDevice dev(kDevBytes);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev);
  FileHandle h = CreateFile(vol.get(), "a");
  // The file in chunks of 16 blocks: [0, c) written, [2c, 3c) preallocated
  // past EOF, [4c, 5c) allocated with the size.
  const int64_t c = 16 * bs64_;
  std::string model = Pattern(c, 6);
  {
    std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
    ASSERT_EQ(f->Write(0, model.data(), model.size()), c);
    ASSERT_EQ(f->Fsync(), 0);
    const uint64_t free0 = vol->FreeBlocks();
    ASSERT_EQ(f->Fallocate(FALLOC_FL_KEEP_SIZE, 2 * c, c), 0);
    EXPECT_EQ(f->size(), c);
    EXPECT_EQ(vol->FreeBlocks(), free0 - 16);
    ASSERT_EQ(f->Fallocate(0, 4 * c, c), 0);
    EXPECT_EQ(f->size(), 5 * c);
    model.resize(5 * c, '\0');
    EXPECT_EQ(f->SeekHole(0), c);
    EXPECT_EQ(f->SeekData(c), -ENXIO);  // unwritten, nothing cached
    EXPECT_EQ(ReadAll(f.get(), 0, 6 * c), model);
    // Now cached (uptodate zeros): the kernel reports that as data.
    EXPECT_EQ(f->SeekData(c), 2 * c);
    iomap::FiemapRequest req;
    req.fm_length = iomap::kFiemapMaxOffset;
    req.fm_extent_count = 10;
    ASSERT_EQ(f->Fiemap(&req), 0);
    ASSERT_EQ(req.fm_mapped_extents, 3u);
    EXPECT_EQ(req.fm_extents[1].fe_logical, uint64_t(2 * c));
    EXPECT_NE(req.fm_extents[1].fe_flags & iomap::kFiemapExtentUnwritten, 0u);
    // A block written into the unwritten range is data at once, written at
    // fsync.
    const std::string w = Pattern(bs_, 7);
    ASSERT_EQ(f->Write(4 * c, w.data(), w.size()), bs64_);
    model.replace(4 * c, bs_, w);
    EXPECT_EQ(f->SeekData(3 * c), 4 * c);
    ASSERT_EQ(f->Fsync(), 0);
    req = iomap::FiemapRequest();
    req.fm_length = iomap::kFiemapMaxOffset;
    req.fm_extent_count = 10;
    ASSERT_EQ(f->Fiemap(&req), 0);
    ASSERT_EQ(req.fm_mapped_extents, 4u);
    EXPECT_EQ(req.fm_extents[2].fe_logical, uint64_t(4 * c));
    EXPECT_EQ(req.fm_extents[2].fe_length, bs_);
    EXPECT_EQ(req.fm_extents[2].fe_flags & iomap::kFiemapExtentUnwritten, 0u);
    // Punch [1000, 11000): the whole blocks inside are freed, the partial
    // edges zeroed.
    const uint64_t free1 = vol->FreeBlocks();
    ASSERT_EQ(
        f->Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 10000),
        0);
    model.replace(1000, 10000, std::string(10000, '\0'));
    // Only [0, c) is allocated there: 16 blocks.
    const uint64_t first = BlocksFor(1000);
    const uint64_t last = std::min<uint64_t>(11000 / bs_, 16);
    EXPECT_EQ(vol->FreeBlocks(), free1 + (last > first ? last - first : 0));
    ASSERT_EQ(
        f->Fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 20000, 20000),
        0);
    model.replace(20000, 20000, std::string(20000, '\0'));
    EXPECT_EQ(ReadAll(f.get(), 0, 6 * c), model);
    // Collapse never goes with KEEP_SIZE (vfs_fallocate); shift_test has the
    // collapse and insert cases.
    EXPECT_EQ(
        f->Fallocate(FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_KEEP_SIZE, 0, bs_),
        -EOPNOTSUPP);
    ASSERT_EQ(f->Fsync(), 0);
    ExpectClean(vol.get());
  }
  ASSERT_TRUE(vol->Unmount().ok());
  vol.reset();
  ExpectFsckClean(&dev);
  vol = Remount(&dev);
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  EXPECT_EQ(ReadAll(f.get(), 0, 6 * c), model);
}

TEST_P(VolumeTest, UnlinkedOpenFileIsFreedAtClose) {
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

TEST_P(VolumeTest, ConcurrentWritersAndFsyncs) {
  MemDevice dev(kDevBytes);
  VolumeOptions options;
  options.flusher.writeback_interval_ms = 5;
  options.flusher.dirty_expire_ms = 1;
  ASSERT_TRUE(Volume::Format(dev, Layout(kDevBytes)).ok());
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

TEST_P(VolumeTest, SmallJournalWrapsThroughCheckpoints) {
  MemDevice dev(kDevBytes);
  LayoutOptions layout = Layout(kDevBytes);
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

// NOWAIT writers never checkpoint on their own thread; they hand it to the
// checkpoint thread. Writeback alone (no fsync, which would checkpoint
// inline) fills this journal several times over: without the background
// checkpoints it runs out of log space and writeback fails.
TEST_P(VolumeTest, NowaitWritersCheckpointInTheBackground) {
  MemDevice dev(kDevBytes);
  LayoutOptions layout = Layout(kDevBytes);
  layout.journal_blocks = 64;
  ASSERT_TRUE(Volume::Format(dev, layout).ok());
  std::unique_ptr<Volume> vol = Remount(&dev);
  FileHandle h = CreateFile(vol.get(), "a");
  std::string model;
  {
    std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
    for (int i = 0; i < 3000; ++i) {
      const int64_t slot = i % 500;
      if (slot == 0) {
        ASSERT_EQ(f->Truncate(0), 0) << i;
        model.clear();
      }
      const std::string b = Pattern(100, i);
      ASSERT_EQ(f->Write(slot * 8192, b.data(), b.size(), iomap::kNowait), 100)
          << i;
      vol->flusher()->SyncAll();
      model.resize(slot * 8192, '\0');
      model += b;
    }
    EXPECT_EQ(f->Fsync(), 0);
  }
  ASSERT_TRUE(vol->Unmount().ok());
  vol = Remount(&dev);
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  EXPECT_EQ(ReadAll(f.get(), 0, model.size() + 10), model);
}

TEST_P(VolumeTest, WritebackErrorReportedOncePerOpenFile) {
  block::SimOptions so;
  so.capacity_bytes = kDevBytes;
  so.seed = 42;
  so.background = true;
  so.direct = false;
  block::SimDevice dev(so);
  absl::StatusOr<Superblock> sb = Volume::Format(dev, Layout(kDevBytes));
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

TEST_P(VolumeTest, NowaitAndSyncWrites) {
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
TEST_P(VolumeTest, SequentialWriteStaysContiguous) {
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

INSTANTIATE_TEST_SUITE_P(BlockSizes, VolumeTest,
                         ::testing::Values(512u, 1024u, 4096u, 65536u),
                         [](const ::testing::TestParamInfo<uint32_t>& info) {
                           return "bs" + std::to_string(info.param);
                         });

}  // namespace
}  // namespace fs
