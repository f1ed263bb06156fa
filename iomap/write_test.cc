// Buffered writes against the fake filesystem: a model-checked random
// workload per block size, read-modify-write rules, revalidation (the race
// test), short copies and delalloc release, NOWAIT, DONTCACHE and inline.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <tuple>
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

uint8_t Pattern(int64_t i) { return static_cast<uint8_t>((i * 13 + 1) % 253); }

class WriteTest : public ::testing::TestWithParam<std::tuple<unsigned, bool>> {
 protected:
  WriteTest()
      : dev_(8 << 20, /*async=*/true),
        fs_(&dev_, std::get<0>(GetParam()), std::get<1>(GetParam()), &cache_) {}

  Inode* inode() { return fs_.inode(); }
  int64_t bs() { return inode()->block_size(); }

  // Device bytes [kDevBase, kDevBase + size) hold Pattern up to `valid`
  // and zeros after it (a filesystem zeroes past EOF).
  void MapFile(int64_t size, int64_t valid) {
    for (int64_t i = 0; i < size; i++) {
      dev_.data()[kDevBase + i] = i < valid ? Pattern(i) : 0;
    }
    fs_.SetExtent(0, size, Iomap::Type::kMapped, kDevBase);
    inode()->i_size_write(valid);
  }

  int64_t Write(int64_t pos, const std::vector<uint8_t>& data,
                unsigned flags = 0, size_t fault_at = static_cast<size_t>(-1),
                IomapWriteOps* wops = nullptr) {
    BufferSource src(data.data(), data.size(), fault_at);
    base::WriterLock l(&inode()->locks().rwsem);
    return FileBufferedWrite(inode(), pos, &src, flags, fs_,
                             wops != nullptr ? wops : &fs_);
  }

  std::vector<uint8_t> Read(int64_t pos, size_t len) {
    std::vector<uint8_t> buf(len);
    base::ReaderLock l(&inode()->locks().rwsem);
    int64_t n = FileBufferedRead(inode(), pos, len, buf.data(), 0, fs_);
    EXPECT_GE(n, 0);
    buf.resize(n < 0 ? 0 : n);
    return buf;
  }

  PageCache cache_;
  MemDevice dev_;
  FakeFs fs_;
};

TEST_P(WriteTest, RandomWritesMatchModel) {
  const unsigned seed = 42 + std::get<0>(GetParam());
  std::mt19937 rng(seed);
  const int64_t mapped = 128 << 10;
  MapFile(mapped, 100000);
  std::vector<uint8_t> model(512 << 10, 0);
  for (int64_t i = 0; i < 100000; i++) model[i] = Pattern(i);
  int64_t isize = 100000;
  for (int op = 0; op < 300; op++) {
    const int64_t pos = rng() % (300 << 10);
    const size_t len = 1 + rng() % (20 << 10);
    if (rng() % 3 != 0) {
      std::vector<uint8_t> data(len, static_cast<uint8_t>(rng()));
      ASSERT_EQ(Write(pos, data), static_cast<int64_t>(len)) << "seed " << seed;
      std::memcpy(model.data() + pos, data.data(), len);
      isize = std::max<int64_t>(isize, pos + len);
      ASSERT_EQ(inode()->i_size_read(), isize);
    } else {
      std::vector<uint8_t> got = Read(pos, len);
      const int64_t want_len =
          std::max<int64_t>(0, std::min<int64_t>(isize, pos + len) - pos);
      ASSERT_EQ(static_cast<int64_t>(got.size()), want_len) << "seed " << seed;
      for (int64_t i = 0; i < want_len; i++) {
        ASSERT_EQ(got[i], model[pos + i])
            << "seed " << seed << " op " << op << " offset " << pos + i;
      }
    }
  }
  std::vector<uint8_t> all = Read(0, isize);
  ASSERT_EQ(static_cast<int64_t>(all.size()), isize);
  EXPECT_TRUE(std::equal(all.begin(), all.end(), model.begin()))
      << "seed " << seed;
}

TEST_P(WriteTest, PartialBlockWriteReadsOnlyThatBlock) {
  const int64_t size = std::max<int64_t>(64 << 10, 4 * bs());
  MapFile(size, size);
  dev_.ResetCounters();
  const int64_t pos = bs() + 10;
  ASSERT_EQ(Write(pos, std::vector<uint8_t>(bs() / 2, 0xaa)), bs() / 2);
  EXPECT_EQ(dev_.read_bios(), 1u);
  EXPECT_EQ(dev_.read_bytes(), static_cast<uint64_t>(bs()));
  std::vector<uint8_t> got = Read(bs(), bs());
  EXPECT_EQ(got[9], Pattern(bs() + 9));
  EXPECT_EQ(got[10], 0xaa);
  EXPECT_EQ(got[10 + bs() / 2], Pattern(pos + bs() / 2));
}

TEST_P(WriteTest, BlockAlignedWriteNeedsNoRead) {
  const int64_t size = std::max<int64_t>(64 << 10, 4 * bs());
  MapFile(size, size);
  dev_.ResetCounters();
  ASSERT_EQ(Write(2 * bs(), std::vector<uint8_t>(bs(), 0xbb)), bs());
  EXPECT_EQ(dev_.read_bios(), 0u);
  FolioRef f = inode()->mapping()->Lookup((2 * bs()) >> kPageShift);
  ASSERT_TRUE(f);
  const unsigned block =
      static_cast<unsigned>((2 * bs() - f->pos()) >> inode()->blkbits());
  EXPECT_TRUE(f->BlockDirty(block));
  EXPECT_TRUE(f->BlockUptodate(block));
  if (f->nr_blocks() > 1) {
    unsigned other = block == 0 ? 1 : 0;
    EXPECT_FALSE(f->BlockDirty(other));
    EXPECT_FALSE(f->BlockUptodate(other));
    // Reading the rest reads only the blocks that are not uptodate.
    std::vector<uint8_t> got = Read(f->pos(), f->size());
    EXPECT_EQ(got[2 * bs() - f->pos()], 0xbb);
    EXPECT_EQ(got[other * bs()], Pattern(f->pos() + other * bs()));
    EXPECT_EQ(dev_.read_bytes(), f->size() - bs());
  }
}

TEST_P(WriteTest, UnwrittenAndNewBlocksAreZeroedWithoutReads) {
  for (int64_t i = 0; i < (64 << 10); i++) dev_.data()[kDevBase + i] = 0xee;
  fs_.SetExtent(0, 32 << 10, Iomap::Type::kUnwritten, kDevBase);
  fs_.SetExtent(32 << 10, 32 << 10, Iomap::Type::kMapped, kDevBase + (32 << 10),
                kNew);
  inode()->i_size_write(64 << 10);
  dev_.ResetCounters();
  ASSERT_EQ(Write(100, std::vector<uint8_t>(10, 1)), 10);
  ASSERT_EQ(Write((32 << 10) + 100, std::vector<uint8_t>(10, 2)), 10);
  EXPECT_EQ(dev_.read_bios(), 0u);
  std::vector<uint8_t> a = Read(0, bs());
  std::vector<uint8_t> b = Read(32 << 10, bs());
  EXPECT_EQ(a[99], 0);
  EXPECT_EQ(a[100], 1);
  EXPECT_EQ(a[110], 0);
  EXPECT_EQ(b[99], 0);
  EXPECT_EQ(b[100], 2);
}

TEST_P(WriteTest, WritePastEofZeroesTheGap) {
  MapFile(64 << 10, 1000);
  ASSERT_EQ(Write(3000, std::vector<uint8_t>(10, 7)), 10);
  EXPECT_EQ(inode()->i_size_read(), 3010);
  auto ends = fs_.ends();
  ASSERT_FALSE(ends.empty());
  EXPECT_TRUE(ends.back().iomap_flags & kSizeChanged);
  EXPECT_EQ(ends.back().flags, kWrite);
  std::vector<uint8_t> got = Read(0, 3010);
  EXPECT_EQ(got[999], Pattern(999));
  for (int i = 1000; i < 3000; i++) ASSERT_EQ(got[i], 0) << i;
  EXPECT_EQ(got[3000], 7);
}

// The race test: the extent map changes after IomapBegin and before the
// folio is locked. The write must notice (IomapValid after the lock), remap,
// and read-modify-write from the new location.
TEST_P(WriteTest, StaleMappingIsRevalidatedAfterFolioLock) {
  const int64_t size = std::max<int64_t>(64 << 10, 4 * bs());
  for (int64_t i = 0; i < size; i++) {
    dev_.data()[kDevBase + i] = 'A';
    dev_.data()[kDevBase + (2 << 20) + i] = 'B';
  }
  fs_.SetExtent(0, size, Iomap::Type::kMapped, kDevBase);
  inode()->i_size_write(size);
  int moves = 0;
  fs_.after_get_folio = [&](int64_t) {
    if (moves++ == 0) {
      fs_.SetExtent(0, size, Iomap::Type::kMapped, kDevBase + (2 << 20));
    }
  };
  const int64_t pos = bs() + bs() / 2;
  ASSERT_EQ(Write(pos, std::vector<uint8_t>(10, 'w')), 10);
  auto begins = fs_.begins();
  ASSERT_EQ(begins.size(), 2u);
  EXPECT_EQ(begins[0].pos, pos);
  EXPECT_EQ(begins[1].pos, pos);  // remapped from the same position
  auto ends = fs_.ends();
  ASSERT_EQ(ends.size(), 2u);
  EXPECT_EQ(ends[0].written, 0);
  EXPECT_EQ(ends[1].written, 10);
  std::vector<uint8_t> got = Read(bs(), bs());
  EXPECT_EQ(got[0], 'B');  // old data came from the new mapping
  EXPECT_EQ(got[bs() / 2], 'w');
  EXPECT_EQ(got[bs() - 1], 'B');
}

TEST_P(WriteTest, ShortCopyLeavesNoReservationPastWrittenBlocks) {
  const size_t len = 10000;
  const size_t fault_at = 5000;
  std::vector<uint8_t> data(len, 0x5a);
  EXPECT_EQ(Write(0, data, 0, fault_at), static_cast<int64_t>(fault_at));
  EXPECT_EQ(inode()->i_size_read(), static_cast<int64_t>(fault_at));
  const int64_t written_blocks = (fault_at + bs() - 1) / bs();
  EXPECT_EQ(fs_.reserved_blocks(), written_blocks);
  std::vector<uint8_t> got = Read(0, len);
  ASSERT_EQ(got.size(), fault_at);
  for (size_t i = 0; i < fault_at; i++) ASSERT_EQ(got[i], 0x5a) << i;
  // No folio is left wholly past EOF.
  for (FolioRef& f : inode()->mapping()->FoliosInRange(0, 1 << 20)) {
    EXPECT_LT(f->pos(), inode()->i_size_read());
  }
}

TEST_P(WriteTest, NothingCopiedIsEfaultAndPunchesEverything) {
  std::vector<uint8_t> data(10000, 1);
  EXPECT_EQ(Write(4096, data, 0, 0), -EFAULT);
  EXPECT_EQ(fs_.reserved_blocks(), 0);
  EXPECT_EQ(inode()->i_size_read(), 0);
  EXPECT_EQ(inode()->mapping()->nr_folios(), 0u);
}

TEST_P(WriteTest, ShortCopyKeepsReservationsOnlyUnderDirtyBlocks) {
  const int64_t region = std::max<int64_t>(64 << 10, 4 * bs());
  // A far write sets i_size, so the range below is scanned in the cache.
  ASSERT_EQ(Write(3 * region, std::vector<uint8_t>(100, 9)), 100);
  const int64_t far_blocks = fs_.reserved_blocks();
  // Read the region: holes, zeroed and uptodate but clean in the cache.
  ASSERT_EQ(static_cast<int64_t>(Read(0, region).size()), region);
  // A short write into those uptodate folios is accepted as far as copied.
  std::vector<uint8_t> data(region / 2, 3);
  const size_t copied = 3 * bs() / 2;
  ASSERT_EQ(Write(0, data, 0, copied), static_cast<int64_t>(copied));
  const int64_t dirty_blocks = (copied + bs() - 1) / bs();
  EXPECT_EQ(fs_.reserved_blocks(), far_blocks + dirty_blocks);
  for (int64_t b = 0; b < region / 2 / bs(); b++) {
    EXPECT_EQ(fs_.IsDelalloc(b * bs()), b < dirty_blocks) << "block " << b;
  }
}

TEST_P(WriteTest, NowaitReturnsEagainInsteadOfReadingOrWaiting) {
  MapFile(64 << 10, 64 << 10);
  dev_.ResetCounters();
  EXPECT_EQ(Write(10, std::vector<uint8_t>(10, 1), kNowait), -EAGAIN);
  EXPECT_EQ(dev_.read_bios(), 0u);
  for (const auto& b : fs_.begins()) EXPECT_EQ(b.flags, kWrite | kNowait);
  // A locked folio: NOWAIT does not wait for it.
  Folio* f = nullptr;
  ASSERT_EQ(inode()->mapping()->GetFolio(4, kFgpWriteBegin, 0, &f), 0);
  f->MarkUptodate();
  f->HandOffLock();  // as if an I/O in flight held it
  EXPECT_EQ(Write(4 * 4096, std::vector<uint8_t>(10, 1), kNowait), -EAGAIN);
  f->Unlock();
  EXPECT_EQ(Write(4 * 4096, std::vector<uint8_t>(10, 1), kNowait), 10);
  f->Put();
}

TEST_P(WriteTest, DontcacheMarksNewFoliosDropbehind) {
  ASSERT_EQ(Write(0, std::vector<uint8_t>(8192, 1), kDontcache), 8192);
  FolioRef f = inode()->mapping()->Lookup(0);
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->Dropbehind());
  for (const auto& b : fs_.begins()) EXPECT_EQ(b.flags, kWrite | kDontcache);
}

TEST_P(WriteTest, LargeFoliosFollowWriteSize) {
  std::vector<uint8_t> data(1 << 20, 4);
  ASSERT_EQ(Write(0, data), 1 << 20);
  FolioRef f = inode()->mapping()->Lookup(0);
  ASSERT_TRUE(f);
  if (std::get<1>(GetParam())) {
    EXPECT_EQ(f->size(), 1u << 20);
  } else {
    EXPECT_EQ(f->size(), std::max<size_t>(4096, bs()));
  }
  EXPECT_TRUE(f->Dirty());
  EXPECT_EQ(inode()->mapping()->dirty_bytes(), 1u << 20);
}

TEST_P(WriteTest, InlineWriteUpdatesInodeData) {
  static char idata[4096];
  std::memset(idata, 'o', 100);
  fs_.SetExtent(0, 4096, Iomap::Type::kInline);
  inode()->i_size_write(100);
  struct InlineOps : IomapOps {
    FakeFs* fs;
    int IomapBegin(Inode* i, int64_t pos, int64_t len, unsigned flags,
                   Iomap* iomap, Iomap* srcmap) override {
      int r = fs->IomapBegin(i, pos, len, flags, iomap, srcmap);
      iomap->inline_data = idata;
      return r;
    }
  } ops;
  ops.fs = &fs_;
  std::vector<uint8_t> data(20, 'n');
  BufferSource src(data.data(), data.size());
  base::WriterLock l(&inode()->locks().rwsem);
  ASSERT_EQ(FileBufferedWrite(inode(), 90, &src, 0, ops), 20);
  EXPECT_EQ(inode()->i_size_read(), 110);
  EXPECT_EQ(idata[89], 'o');
  EXPECT_EQ(idata[90], 'n');
  EXPECT_EQ(idata[109], 'n');
}

std::string ParamName(
    const ::testing::TestParamInfo<std::tuple<unsigned, bool>>& info) {
  return "bs" + std::to_string(1u << std::get<0>(info.param)) +
         (std::get<1>(info.param) ? "_large" : "_small");
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, WriteTest,
                         ::testing::Combine(::testing::Values(9u, 10u, 11u, 12u,
                                                              16u),
                                            ::testing::Bool()),
                         ParamName);

}  // namespace
}  // namespace iomap
