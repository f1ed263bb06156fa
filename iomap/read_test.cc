// Buffered reads against the fake filesystem: per-type handling, EOF,
// inline data, read errors, bio merging and readahead behaviour.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>
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

constexpr uint64_t kDevBase = 1 << 20;  // where file data lives on the device

uint8_t Pattern(int64_t i) { return static_cast<uint8_t>((i * 7 + 3) % 251); }

// (blkbits, large folios, async completions)
class ReadTest
    : public ::testing::TestWithParam<std::tuple<unsigned, bool, bool>> {
 protected:
  ReadTest()
      : dev_(kDevBase + (17 << 20), std::get<2>(GetParam())),
        fs_(&dev_, std::get<0>(GetParam()), std::get<1>(GetParam()), &cache_) {
    // Pattern() repeats every 251 bytes: fill by copying one period.
    uint8_t* d = dev_.data() + kDevBase;
    for (int64_t i = 0; i < 251; i++) d[i] = Pattern(i);
    for (int64_t i = 251; i < (17 << 20); i += 251) {
      std::memcpy(d + i, d, std::min<int64_t>(251, (17 << 20) - i));
    }
  }
  Inode* inode() { return fs_.inode(); }
  int64_t Read(int64_t pos, size_t len, uint8_t* buf, unsigned flags = 0,
               RaState* ra = nullptr) {
    base::ReaderLock l(&inode()->locks().rwsem);
    return FileBufferedRead(inode(), pos, len, buf, flags, fs_, ra);
  }

  uint64_t MinFolioBytes() {
    return kPageSize << inode()->mapping()->min_order();
  }
  // Blocks larger than a page make every folio at least a block. As in the
  // kernel (page_cache_ra_order aligns a window's start down to a folio),
  // an async window then starts inside the folio just read and the windows
  // do not grow: a sequential reader gets about one bio per folio.
  bool MinFolioPagesRampUp() { return inode()->mapping()->min_order() == 0; }

  PageCache cache_;
  MemDevice dev_;
  FakeFs fs_;
};

TEST_P(ReadTest, EachMappingTypeReadsRight) {
  // In units of u (a filesystem's mappings are block-aligned):
  // [0,4u) mapped, [4u,6u) hole, [6u,8u) unwritten over junk, [8u,10u)
  // delalloc, [10u,12u) mapped but NEW; EOF inside the last.
  const int64_t u = std::max<int64_t>(4096, inode()->block_size());
  fs_.SetExtent(0, 4 * u, Iomap::Type::kMapped, kDevBase);
  fs_.SetExtent(6 * u, 2 * u, Iomap::Type::kUnwritten, kDevBase + 6 * u);
  fs_.SetExtent(8 * u, 2 * u, Iomap::Type::kDelalloc);
  fs_.SetExtent(10 * u, 2 * u, Iomap::Type::kMapped, kDevBase + 10 * u, kNew);
  const int64_t isize = 12 * u - 100;
  inode()->i_size_write(isize);
  dev_.ResetCounters();
  std::vector<uint8_t> buf(14 * u, 0xff);
  ASSERT_EQ(Read(0, buf.size(), buf.data()), isize);
  for (int64_t i = 0; i < isize; i++) {
    uint8_t want = i < 4 * u ? Pattern(i) : 0;
    ASSERT_EQ(buf[i], want) << "offset " << i;
  }
  dev_.Drain();
  EXPECT_EQ(dev_.read_bytes(), static_cast<uint64_t>(4 * u));
  for (const auto& b : fs_.begins()) EXPECT_EQ(b.flags, 0u);
}

TEST_P(ReadTest, ReadStopsAtEofAndPastEofReadsNothing) {
  fs_.SetExtent(0, 1 << 20, Iomap::Type::kMapped, kDevBase);
  inode()->i_size_write(5000);
  std::vector<uint8_t> buf(10000);
  EXPECT_EQ(Read(4000, 10000, buf.data()), 1000);
  EXPECT_EQ(buf[999], Pattern(4999));
  EXPECT_EQ(Read(5000, 10, buf.data()), 0);
  EXPECT_EQ(Read(-1, 10, buf.data()), -EINVAL);
}

TEST_P(ReadTest, BlocksPastEofInsideMappingAreZeroed) {
  // The device has data past EOF; the cache must not expose it.
  fs_.SetExtent(0, 1 << 20, Iomap::Type::kMapped, kDevBase);
  const int64_t bs = inode()->block_size();
  inode()->i_size_write(bs + 10);
  std::vector<uint8_t> buf(bs + 10);
  ASSERT_EQ(Read(0, buf.size(), buf.data()), bs + 10);
  FolioRef f = inode()->mapping()->Lookup(0);
  ASSERT_TRUE(f);
  // Any whole block after the EOF block reads as zeros in the folio.
  const int64_t eof_block_end = 2 * bs;
  for (int64_t i = eof_block_end; i < f->end() && i < 4 * bs; i++) {
    ASSERT_EQ(f->data()[i - f->pos()], 0) << i;
  }
}

TEST_P(ReadTest, InlineDataIsCopied) {
  static char inline_buf[100];
  std::memset(inline_buf, 'i', sizeof(inline_buf));
  fs_.SetExtent(0, 4096, Iomap::Type::kInline);
  inode()->i_size_write(100);
  // FakeFs returns inline_data = null: give it through a tiny ops wrapper.
  struct InlineOps : IomapOps {
    FakeFs* fs;
    int IomapBegin(Inode* i, int64_t pos, int64_t len, unsigned flags,
                   Iomap* iomap, Iomap* srcmap) override {
      int r = fs->IomapBegin(i, pos, len, flags, iomap, srcmap);
      iomap->inline_data = inline_buf;
      return r;
    }
  } ops;
  ops.fs = &fs_;
  std::vector<uint8_t> buf(200, 0xff);
  base::ReaderLock l(&inode()->locks().rwsem);
  ASSERT_EQ(FileBufferedRead(inode(), 0, 200, buf.data(), 0, ops), 100);
  for (int i = 0; i < 100; i++) ASSERT_EQ(buf[i], 'i');
  FolioRef f = inode()->mapping()->Lookup(0);
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->Uptodate());
  EXPECT_EQ(f->data()[100], 0);
}

TEST_P(ReadTest, ReadErrorLeavesBlocksNotUptodateAndReturnsEio) {
  fs_.SetExtent(0, 1 << 20, Iomap::Type::kMapped, kDevBase);
  inode()->i_size_write(1 << 20);
  dev_.FailReads(kDevBase + 8192, 512);
  std::vector<uint8_t> buf(16384);
  EXPECT_EQ(Read(8192, 4096, buf.data()), -EIO);
  FolioRef f = inode()->mapping()->Lookup(2);
  ASSERT_TRUE(f);
  f->Lock();
  EXPECT_FALSE(f->Uptodate());
  EXPECT_FALSE(f->BlockUptodate(
      static_cast<unsigned>((8192 - f->pos()) >> inode()->blkbits())));
  f->Unlock();
  // The device recovers: the next read fetches the data again.
  dev_.FailReads(0, 0);
  ASSERT_EQ(Read(8192, 4096, buf.data()), 4096);
  EXPECT_EQ(buf[0], Pattern(8192));
}

TEST_P(ReadTest, NowaitNeverStartsIo) {
  fs_.SetExtent(0, 1 << 20, Iomap::Type::kMapped, kDevBase);
  inode()->i_size_write(1 << 20);
  std::vector<uint8_t> buf(4096);
  EXPECT_EQ(Read(0, 4096, buf.data(), kNowait), -EAGAIN);
  EXPECT_EQ(dev_.read_bios(), 0u);
  ASSERT_EQ(Read(0, 4096, buf.data()), 4096);
  dev_.Drain();
  EXPECT_EQ(Read(0, 4096, buf.data(), kNowait), 4096);
}

TEST_P(ReadTest, ContiguousBlocksMergeIntoOneBio) {
  fs_.SetExtent(0, 1 << 20, Iomap::Type::kMapped, kDevBase);
  inode()->i_size_write(1 << 20);
  Folio* f = nullptr;
  ASSERT_EQ(inode()->mapping()->GetFolio(4, kFgpLock | kFgpCreat, 2, &f), 0);
  ResetReadStats();
  ASSERT_EQ(ReadFolio(f, fs_), 0);
  f->Lock();
  EXPECT_TRUE(f->Uptodate());
  f->Unlock();
  EXPECT_EQ(GetReadStats().bios, 1u);
  EXPECT_EQ(GetReadStats().bio_bytes, f->size());
  f->Put();
}

TEST_P(ReadTest, DiscontiguousExtentsNeedSeparateBios) {
  const int64_t bs = inode()->block_size();
  // Two file-adjacent extents that are far apart on the device.
  fs_.SetExtent(0, 4 * bs, Iomap::Type::kMapped, kDevBase);
  fs_.SetExtent(4 * bs, 4 * bs, Iomap::Type::kMapped, kDevBase + (8 << 20));
  inode()->i_size_write(8 * bs);
  ResetReadStats();
  std::vector<uint8_t> buf(8 * bs);
  ASSERT_EQ(Read(0, buf.size(), buf.data()), 8 * bs);
  EXPECT_GE(GetReadStats().bios, 2u);
  EXPECT_EQ(buf[4 * bs], Pattern((8 << 20)));
}

// With a 1 MiB readahead limit (read_ahead_kb=1024; the default is the
// kernel's 128 KiB, see readahead_test.cc) the windows ramp up to 1 MiB.
TEST_P(ReadTest, SequentialReadsIssueFewLargeBios) {
  const int64_t size = 8 << 20;
  fs_.SetExtent(0, size, Iomap::Type::kMapped, kDevBase);
  inode()->i_size_write(size);
  ResetReadStats();
  RaState ra(256);
  std::vector<uint8_t> buf(4096);
  for (int64_t pos = 0; pos < size; pos += 4096) {
    ASSERT_EQ(Read(pos, 4096, buf.data(), 0, &ra), 4096);
    ASSERT_EQ(buf[17], Pattern(pos + 17)) << pos;
  }
  dev_.Drain();
  const ReadStats st = GetReadStats();
  std::printf("sequential 8 MiB in 4 KiB reads: %llu bios, %llu bytes\n",
              static_cast<unsigned long long>(st.bios),
              static_cast<unsigned long long>(st.bio_bytes));
  EXPECT_EQ(st.bio_bytes, static_cast<uint64_t>(size));  // no over-read
  if (MinFolioPagesRampUp()) {
    EXPECT_LE(st.bios, 24u) << "sequential reads should be merged";
    EXPECT_GE(st.bio_bytes / st.bios, 256u << 10);
  } else {
    EXPECT_LE(st.bios, static_cast<uint64_t>(size) / MinFolioBytes());
  }
}

// Two streams reading different halves of one file in turn, each through its
// own open file's readahead state (file->f_ra): both are sequential, so both
// get growing windows. With one state per mapping each stream's reads would
// break the other's pattern and every 4 KiB read would be a bio of its own.
// (1 MiB readahead limit, as above.)
TEST_P(ReadTest, InterleavedStreamsKeepTheirOwnReadahead) {
  const int64_t half = 4 << 20;
  fs_.SetExtent(0, 2 * half, Iomap::Type::kMapped, kDevBase);
  inode()->i_size_write(2 * half);
  RaState ra_a(256), ra_b(256);
  std::vector<uint8_t> buf(4096);
  ResetReadStats();
  for (int64_t off = 0; off < half; off += 4096) {
    base::ReaderLock l(&inode()->locks().rwsem);
    ASSERT_EQ(FileBufferedRead(inode(), off, 4096, buf.data(), 0, fs_, &ra_a),
              4096);
    ASSERT_EQ(buf[9], Pattern(off + 9)) << off;
    ASSERT_EQ(
        FileBufferedRead(inode(), half + off, 4096, buf.data(), 0, fs_, &ra_b),
        4096);
    ASSERT_EQ(buf[9], Pattern(half + off + 9)) << off;
  }
  dev_.Drain();
  const ReadStats st = GetReadStats();
  EXPECT_EQ(st.bio_bytes, static_cast<uint64_t>(2 * half));
  if (MinFolioPagesRampUp()) {
    EXPECT_LE(st.bios, 32u) << "each stream should read ahead";
    EXPECT_GE(st.bio_bytes / st.bios, 256u << 10);
  } else {
    EXPECT_LE(st.bios, static_cast<uint64_t>(2 * half) / MinFolioBytes());
  }
}

TEST_P(ReadTest, RandomReadsDoNotOverRead) {
  const int64_t size = 16 << 20;
  fs_.SetExtent(0, size, Iomap::Type::kMapped, kDevBase);
  inode()->i_size_write(size);
  const unsigned seed = 1234;
  std::mt19937 rng(seed);
  std::set<int64_t> pages;
  int64_t prev = -10;
  std::vector<uint8_t> buf(4096);
  ResetReadStats();
  const int64_t min_folio = int64_t{1} << inode()->mapping()->min_order();
  int reads = 0;
  // Few enough that the rules above leave candidates (64 KiB folios).
  const int nreads =
      static_cast<int>(std::min<int64_t>(200, size / 4096 / min_folio / 3));
  while (reads < nreads) {
    int64_t page = 1 + static_cast<int64_t>(rng() % (size / 4096 - 1));
    page &= ~(min_folio - 1);
    // No cached folio right before a read either: the kernel's context
    // readahead would take those pages for a stream's history.
    if (page == 0 || pages.count(page) || pages.count(page - min_folio) ||
        std::llabs(page - prev) <= min_folio) {
      continue;
    }
    pages.insert(page);
    prev = page;
    ASSERT_EQ(Read(page * 4096, 4096, buf.data()), 4096) << "seed " << seed;
    ASSERT_EQ(buf[5], Pattern(page * 4096 + 5));
    reads++;
  }
  dev_.Drain();
  const uint64_t folio_bytes = static_cast<uint64_t>(min_folio) * 4096;
  EXPECT_EQ(GetReadStats().bio_bytes, nreads * folio_bytes) << "seed " << seed;
  EXPECT_EQ(GetReadStats().bios, static_cast<uint64_t>(nreads));
}

// One folio read through several bios (discontiguous extents), one of
// which fails: the folio is unlocked once all complete, the failed blocks
// stay !uptodate and the others are uptodate.
TEST(ReadFolioTest, OneFailedBioOfSeveral) {
  PageCache cache;
  MemDevice dev(16 << 20, /*async=*/true);
  FakeFs fs(&dev, 10, /*large_folios=*/true, &cache);
  for (int b = 0; b < 16; b++) {
    // Block b of the file lives at a scattered device address.
    fs.SetExtent(b * 1024, 1024, Iomap::Type::kMapped,
                 kDevBase + (15 - b) * 8192);
    std::memset(dev.data() + kDevBase + (15 - b) * 8192, b + 1, 1024);
  }
  fs.inode()->i_size_write(16 * 1024);
  dev.FailReads(kDevBase + (15 - 6) * 8192, 1024);  // block 6
  Folio* f = nullptr;
  ASSERT_EQ(fs.inode()->mapping()->GetFolio(0, kFgpLock | kFgpCreat, 2, &f), 0);
  ASSERT_EQ(f->size(), 16384u);
  ResetReadStats();
  ASSERT_EQ(ReadFolio(f, fs), 0);
  f->Lock();  // waits for every bio
  EXPECT_EQ(GetReadStats().bios, 16u);
  EXPECT_FALSE(f->Uptodate());
  for (unsigned b = 0; b < 16; b++) {
    EXPECT_EQ(f->BlockUptodate(b), b != 6) << b;
    if (b != 6) EXPECT_EQ(f->data()[b * 1024 + 7], b + 1);
  }
  EXPECT_EQ(f->state()->read_bytes_pending.load(), 0);
  f->Unlock();
  f->Put();
}

std::string ParamName(
    const ::testing::TestParamInfo<std::tuple<unsigned, bool, bool>>& info) {
  return "bs" + std::to_string(1u << std::get<0>(info.param)) +
         (std::get<1>(info.param) ? "_large" : "_small") +
         (std::get<2>(info.param) ? "_async" : "_sync");
}

INSTANTIATE_TEST_SUITE_P(
    BlockSizes, ReadTest,
    ::testing::Combine(::testing::Values(9u, 10u, 11u, 12u, 16u),
                       ::testing::Bool(), ::testing::Bool()),
    ParamName);

}  // namespace
}  // namespace iomap
