// Tests of SEEK_DATA / SEEK_HOLE (seek.h) against ReportFs mappings and a
// real Mapping with folios in chosen states. Each test names the kernel rule
// it checks (docs/reporting.md).
#include "iomap/seek.h"

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <random>

#include "gtest/gtest.h"
#include "iomap/folio.h"
#include "iomap/pagecache.h"
#include "iomap/testing/report_fs.h"

namespace iomap {
namespace {

using testing::CacheFolio;
using testing::NullDevice;
using testing::ReportFs;
using T = Iomap::Type;

constexpr int64_t kKiB = 1024;
constexpr int64_t kMiB = 1024 * kKiB;

class SeekTest : public ::testing::Test {
 protected:
  void Init(unsigned blkbits, int64_t size, bool large = false) {
    inode_ = std::make_unique<Inode>(1, blkbits, &dev_, &cache_);
    if (large) inode_->SetLargeFolios();
    inode_->i_size_write(size);
    fs_ = std::make_unique<ReportFs>(blkbits, &dev_);
  }
  int64_t Data(int64_t pos) {
    base::ReaderLock l(&inode_->locks().rwsem);
    return SeekData(inode_.get(), pos, *fs_);
  }
  int64_t Hole(int64_t pos) {
    base::ReaderLock l(&inode_->locks().rwsem);
    return SeekHole(inode_.get(), pos, *fs_);
  }
  void Cache(int64_t pos, unsigned order, size_t off, size_t len,
             bool dirty = false) {
    ASSERT_EQ(CacheFolio(inode_.get(), pos, order, off, len, dirty), 0);
  }

  NullDevice dev_;
  PageCache cache_;
  std::unique_ptr<Inode> inode_;
  std::unique_ptr<ReportFs> fs_;
};

// pos < 0 -> -ENXIO (generic/448).
TEST_F(SeekTest, NegativeOffsetIsEnxio) {
  Init(12, 64 * kKiB);
  fs_->Add(0, 64 * kKiB, T::kMapped, 0);
  EXPECT_EQ(Data(-1), -ENXIO);
  EXPECT_EQ(Hole(-1), -ENXIO);
  EXPECT_EQ(Data(INT64_MIN), -ENXIO);
  EXPECT_EQ(fs_->begin_calls(), 0);
}

// pos >= i_size -> -ENXIO, even where blocks exist past EOF.
TEST_F(SeekTest, AtOrPastEofIsEnxio) {
  Init(12, 8 * kKiB);
  fs_->Add(0, 64 * kKiB, T::kMapped, 0);
  EXPECT_EQ(Data(8 * kKiB), -ENXIO);
  EXPECT_EQ(Hole(8 * kKiB), -ENXIO);
  EXPECT_EQ(Data(9 * kKiB), -ENXIO);
  EXPECT_EQ(Hole(INT64_MAX), -ENXIO);
  EXPECT_EQ(fs_->begin_calls(), 0);
}

TEST_F(SeekTest, EmptyFileIsEnxio) {
  Init(12, 0);
  EXPECT_EQ(Data(0), -ENXIO);
  EXPECT_EQ(Hole(0), -ENXIO);
}

// HOLE -> SEEK_HOLE answers pos; SEEK_DATA skips it.
TEST_F(SeekTest, HoleAnswersPosAndIsSkippedByData) {
  Init(12, 64 * kKiB);
  fs_->Add(32 * kKiB, 32 * kKiB, T::kMapped, 0);
  EXPECT_EQ(Hole(0), 0);
  EXPECT_EQ(Hole(5), 5);
  EXPECT_EQ(Data(0), 32 * kKiB);
  EXPECT_EQ(Data(100), 32 * kKiB);
}

// An all-hole file: no data (-ENXIO), the hole is at pos.
TEST_F(SeekTest, SparseFileHasNoData) {
  Init(12, 10 * kMiB);
  EXPECT_EQ(Data(0), -ENXIO);
  EXPECT_EQ(Data(5 * kMiB + 3), -ENXIO);
  EXPECT_EQ(Hole(5 * kMiB + 3), 5 * kMiB + 3);
}

// MAPPED is data; with no hole before EOF, SEEK_HOLE answers i_size.
TEST_F(SeekTest, WrittenIsDataAndEofIsVirtualHole) {
  Init(12, 64 * kKiB);
  fs_->Add(0, 64 * kKiB, T::kMapped, 0);
  EXPECT_EQ(Data(0), 0);
  EXPECT_EQ(Data(4097), 4097);
  EXPECT_EQ(Hole(0), 64 * kKiB);
  EXPECT_EQ(Hole(64 * kKiB - 1), 64 * kKiB);
}

// DELALLOC counts as data.
TEST_F(SeekTest, DelallocIsData) {
  Init(12, 16 * kKiB);
  fs_->Add(4 * kKiB, 8 * kKiB, T::kDelalloc);
  EXPECT_EQ(Data(0), 4 * kKiB);
  EXPECT_EQ(Hole(4 * kKiB), 12 * kKiB);
  EXPECT_EQ(Data(12 * kKiB), -ENXIO);
}

// INLINE counts as data.
TEST_F(SeekTest, InlineIsData) {
  Init(12, 100);
  fs_->Add(0, 4096, T::kInline);
  EXPECT_EQ(Data(0), 0);
  EXPECT_EQ(Hole(0), 100);
}

// Shared (reflinked) written blocks are data like any other.
TEST_F(SeekTest, SharedIsData) {
  Init(12, 16 * kKiB);
  fs_->Add(0, 8 * kKiB, T::kMapped, 0, kShared);
  EXPECT_EQ(Data(0), 0);
  EXPECT_EQ(Hole(0), 8 * kKiB);
}

// An extent straddling EOF: the walk stops at i_size (virtual hole there).
TEST_F(SeekTest, ExtentStraddlingEof) {
  Init(12, 10000);
  fs_->Add(0, 64 * kKiB, T::kMapped, 0);
  EXPECT_EQ(Hole(0), 10000);
  EXPECT_EQ(Hole(9999), 10000);
  EXPECT_EQ(Data(9999), 9999);
  EXPECT_EQ(Data(10000), -ENXIO);
}

// A hole straddling EOF: data before it, the hole starts where it starts.
TEST_F(SeekTest, HoleStraddlingEof) {
  Init(12, 10000);
  fs_->Add(0, 8 * kKiB, T::kMapped, 0);
  EXPECT_EQ(Hole(0), 8 * kKiB);
  EXPECT_EQ(Data(8 * kKiB), -ENXIO);
}

// generic/706: SEEK_DATA / SEEK_HOLE on a 1-byte file.
TEST_F(SeekTest, OneByteFile) {
  Init(12, 1);
  fs_->Add(0, 4096, T::kMapped, 0);
  EXPECT_EQ(Data(0), 0);
  EXPECT_EQ(Hole(0), 1);
  EXPECT_EQ(Data(1), -ENXIO);
  EXPECT_EQ(Hole(1), -ENXIO);
  // The same byte, not yet allocated.
  fs_->Clear();
  fs_->Add(0, 4096, T::kDelalloc);
  EXPECT_EQ(Data(0), 0);
  EXPECT_EQ(Hole(0), 1);
}

// generic/490: SEEK_DATA from the middle of a large hole finds the data
// after it; SEEK_HOLE from the middle answers the position itself.
TEST_F(SeekTest, SeekDataFromMiddleOfLargeHole) {
  const int64_t gib = 1024 * kMiB;
  Init(12, 2 * gib + 64 * kKiB);
  fs_->Add(0, 64 * kKiB, T::kMapped, 0);
  fs_->Add(2 * gib, 64 * kKiB, T::kMapped, 1 * kMiB);
  EXPECT_EQ(Data(gib), 2 * gib);
  EXPECT_EQ(Data(64 * kKiB), 2 * gib);
  EXPECT_EQ(Hole(gib), gib);
  EXPECT_EQ(Hole(2 * gib), 2 * gib + 64 * kKiB);
}

// UNWRITTEN with nothing cached: a hole for both.
TEST_F(SeekTest, UnwrittenUncachedIsHole) {
  Init(12, 64 * kKiB);
  fs_->Add(0, 32 * kKiB, T::kUnwritten, 0);
  fs_->Add(32 * kKiB, 32 * kKiB, T::kMapped, 32 * kKiB);
  EXPECT_EQ(Hole(0), 0);
  EXPECT_EQ(Hole(5000), 5000);
  EXPECT_EQ(Data(0), 32 * kKiB);
}

// UNWRITTEN only: no data at all.
TEST_F(SeekTest, UnwrittenOnlyHasNoData) {
  Init(12, 64 * kKiB);
  fs_->Add(0, 64 * kKiB, T::kUnwritten, 0);
  EXPECT_EQ(Data(0), -ENXIO);
  EXPECT_EQ(Hole(0), 0);
}

// UNWRITTEN with a clean, uptodate cached folio: that folio is data.
TEST_F(SeekTest, UnwrittenCachedCleanIsData) {
  Init(12, 64 * kKiB);
  fs_->Add(0, 64 * kKiB, T::kUnwritten, 0);
  Cache(8 * kKiB, 0, 0, 4096);
  EXPECT_EQ(Data(0), 8 * kKiB);
  EXPECT_EQ(Data(9 * kKiB), 9 * kKiB);
  EXPECT_EQ(Hole(8 * kKiB), 12 * kKiB);
  EXPECT_EQ(Hole(0), 0);
}

// UNWRITTEN with a dirty cached folio: data exactly as a clean one.
TEST_F(SeekTest, UnwrittenCachedDirtyIsData) {
  Init(12, 64 * kKiB);
  fs_->Add(0, 64 * kKiB, T::kUnwritten, 0);
  Cache(16 * kKiB, 0, 0, 4096, /*dirty=*/true);
  Cache(20 * kKiB, 0, 0, 4096, /*dirty=*/false);
  EXPECT_EQ(Data(0), 16 * kKiB);
  EXPECT_EQ(Hole(16 * kKiB), 24 * kKiB);
}

// A cached folio that is not uptodate (no state) holds no data.
TEST_F(SeekTest, UnwrittenCachedNotUptodateIsHole) {
  Init(12, 64 * kKiB);
  fs_->Add(0, 64 * kKiB, T::kUnwritten, 0);
  Cache(0, 0, 0, 0);
  EXPECT_EQ(Data(0), -ENXIO);
  EXPECT_EQ(Hole(0), 0);
}

// bs < ps: per-block uptodate state decides, block by block.
TEST_F(SeekTest, UnwrittenPartiallyUptodateBlocks) {
  Init(10, 16 * kKiB);  // 1 KiB blocks, 4 per page
  fs_->Add(0, 16 * kKiB, T::kUnwritten, 0);
  Cache(0, 0, 1024, 2048);  // blocks 1 and 2 uptodate
  EXPECT_EQ(Data(0), 1024);
  EXPECT_EQ(Data(1500), 1500);  // inside an uptodate block: pos itself
  EXPECT_EQ(Hole(0), 0);
  EXPECT_EQ(Hole(1024), 3072);
  EXPECT_EQ(Hole(1500), 3072);
  EXPECT_EQ(Data(3072), -ENXIO);
  EXPECT_EQ(Hole(3500), 3500);
}

// bs < ps, dirty blocks in a partially uptodate folio are data too.
TEST_F(SeekTest, UnwrittenPartiallyUptodateDirtyBlocks) {
  Init(9, 8 * kKiB);  // 512 B blocks, 8 per page
  fs_->Add(0, 8 * kKiB, T::kUnwritten, 0);
  Cache(4096, 0, 2048, 512, /*dirty=*/true);
  EXPECT_EQ(Data(0), 4096 + 2048);
  EXPECT_EQ(Hole(4096 + 2048), 4096 + 2560);
}

// Missing folios between cached ones are holes.
TEST_F(SeekTest, UnwrittenGapBetweenFoliosIsHole) {
  Init(12, 64 * kKiB);
  fs_->Add(0, 64 * kKiB, T::kUnwritten, 0);
  Cache(0, 0, 0, 4096);
  Cache(8 * kKiB, 0, 0, 4096);
  EXPECT_EQ(Hole(0), 4 * kKiB);
  EXPECT_EQ(Data(4 * kKiB), 8 * kKiB);
  EXPECT_EQ(Hole(8 * kKiB), 12 * kKiB);
}

// A large uptodate folio is data over its whole size.
TEST_F(SeekTest, UnwrittenLargeFolio) {
  Init(12, 64 * kKiB, /*large=*/true);
  fs_->Add(0, 64 * kKiB, T::kUnwritten, 0);
  Cache(16 * kKiB, 2, 0, 16 * kKiB);
  EXPECT_EQ(Data(0), 16 * kKiB);
  EXPECT_EQ(Data(20 * kKiB), 20 * kKiB);
  EXPECT_EQ(Hole(17 * kKiB), 32 * kKiB);
}

// Cached data over the whole unwritten mapping: SEEK_HOLE moves on to the
// next mapping (here data, then the EOF hole).
TEST_F(SeekTest, UnwrittenFullyCachedMovesOn) {
  Init(12, 16 * kKiB);
  fs_->Add(0, 8 * kKiB, T::kUnwritten, 0);
  fs_->Add(8 * kKiB, 4 * kKiB, T::kMapped, 8 * kKiB);
  Cache(0, 0, 0, 4096);
  Cache(4 * kKiB, 0, 0, 4096);
  EXPECT_EQ(Hole(0), 12 * kKiB);
}

// The cache is searched only within the unwritten mapping: cached data over
// a HOLE mapping does not count.
TEST_F(SeekTest, CacheOverHoleMappingIsIgnored) {
  Init(12, 16 * kKiB);
  fs_->Add(0, 4 * kKiB, T::kUnwritten, 0);
  Cache(8 * kKiB, 0, 0, 4096);  // over the hole [4k, 16k)
  EXPECT_EQ(Data(0), -ENXIO);
}

// mapping_seek_hole_data works in whole folios: SEEK_DATA that finds data
// past the mapping's end inside the folio straddling it answers the mapping
// end (the kernel's clamp), even though that block is a hole.
TEST_F(SeekTest, UnwrittenDataPastMappingEndIsClampedLikeKernel) {
  Init(10, 4 * kKiB);
  fs_->Add(0, 2 * kKiB, T::kUnwritten, 0);
  fs_->Add(3 * kKiB, 1 * kKiB, T::kUnwritten, 3 * kKiB);
  Cache(0, 0, 3072, 1024);  // only block 3 uptodate
  EXPECT_EQ(Data(0), 2 * kKiB);
  EXPECT_EQ(Data(2 * kKiB), 3 * kKiB);
}

// generic/285-like: a preallocated (unwritten) file with written pages.
TEST_F(SeekTest, PreallocWithWrittenPagesInCache) {
  Init(12, 1 * kMiB);
  fs_->Add(0, 1 * kMiB, T::kUnwritten, 0);
  Cache(256 * kKiB, 0, 0, 4096, /*dirty=*/true);
  Cache(260 * kKiB, 0, 0, 4096, /*dirty=*/true);
  Cache(512 * kKiB, 0, 0, 4096);
  EXPECT_EQ(Data(0), 256 * kKiB);
  EXPECT_EQ(Hole(256 * kKiB), 264 * kKiB);
  EXPECT_EQ(Data(264 * kKiB), 512 * kKiB);
  EXPECT_EQ(Hole(512 * kKiB), 516 * kKiB);
  EXPECT_EQ(Data(516 * kKiB), -ENXIO);
}

// Every IomapBegin of seek carries exactly kReport | kSeek.
TEST_F(SeekTest, UsesReportFlag) {
  Init(12, 64 * kKiB);
  fs_->Add(32 * kKiB, 8 * kKiB, T::kMapped, 0);
  Data(0);
  Hole(32 * kKiB);
  ASSERT_GT(fs_->begin_calls(), 2);
  for (unsigned f : fs_->begin_flags) EXPECT_EQ(f, kReport | kSeek);
}

// IomapBegin's error is returned.
TEST_F(SeekTest, IomapBeginErrorIsReturned) {
  Init(12, 64 * kKiB);
  fs_->Add(32 * kKiB, 8 * kKiB, T::kMapped, 0);
  fs_->fail_call = 1;
  fs_->fail_error = -EIO;
  EXPECT_EQ(Data(0), -EIO);
  fs_->begin_flags.clear();
  fs_->fail_call = 0;
  fs_->fail_error = -ENOMEM;
  EXPECT_EQ(Hole(0), -ENOMEM);
}

// The caller may hold the rwsem exclusive as well.
TEST_F(SeekTest, ExclusiveLockIsAccepted) {
  Init(12, 8 * kKiB);
  fs_->Add(0, 8 * kKiB, T::kMapped, 0);
  base::WriterLock l(&inode_->locks().rwsem);
  EXPECT_EQ(SeekData(inode_.get(), 0, *fs_), 0);
  EXPECT_EQ(SeekHole(inode_.get(), 0, *fs_), 8 * kKiB);
}

// Thousands of extents: alternating data and holes of random sizes; every
// answer matches a model of the extent list.
TEST_F(SeekTest, ThousandsOfExtents) {
  const uint32_t seed = 20261123;
  std::mt19937_64 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  Init(12, 0);
  struct Run {
    int64_t start, end;
    bool data;
  };
  std::vector<Run> runs;
  int64_t pos = 0;
  for (int i = 0; i < 5000; i++) {
    const int64_t len = int64_t(1 + rng() % 8) * 4096;
    const bool data = i % 2 == 1;
    if (data) {
      const T type = (rng() % 2) ? T::kMapped : T::kDelalloc;
      fs_->Add(pos, len, type, type == T::kMapped ? pos : kNullAddr);
    }
    runs.push_back({pos, pos + len, data});
    pos += len;
  }
  inode_->i_size_write(pos);
  for (int i = 0; i < 2000; i++) {
    const int64_t p = static_cast<int64_t>(rng() % pos);
    size_t r = 0;
    while (runs[r].end <= p) r++;
    int64_t want_data = -ENXIO, want_hole = pos;
    for (size_t k = r; k < runs.size(); k++) {
      if (runs[k].data && want_data < 0) want_data = std::max(p, runs[k].start);
      if (!runs[k].data && want_hole == pos) {
        want_hole = std::max(p, runs[k].start);
      }
    }
    ASSERT_EQ(Data(p), want_data) << "pos " << p;
    ASSERT_EQ(Hole(p), want_hole) << "pos " << p;
  }
}

// bs < ps, random page-aligned mappings of every type and random cached
// folios (random uptodate blocks, clean or dirty): every answer matches a
// per-block model (data = MAPPED, DELALLOC, or UNWRITTEN with the block
// uptodate in the cache). Page-aligned mappings keep the kernel's
// whole-folio clamp out of the picture.
TEST_F(SeekTest, RandomModelSmallBlocks) {
  const uint32_t seed = 4242;
  std::mt19937 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  constexpr int kPages = 256, kBlocksPerPage = 4;
  Init(10, int64_t{kPages} * 4096);
  std::vector<bool> data(kPages * kBlocksPerPage, false);
  int page = 0;
  while (page < kPages) {
    const int n = std::min<int>(kPages - page, 1 + rng() % 6);
    const T type = static_cast<T>(rng() % 4);  // hole..unwritten
    if (type != T::kHole) {
      fs_->Add(int64_t{page} * 4096, int64_t{n} * 4096, type,
               type == T::kDelalloc ? kNullAddr : uint64_t(page) * 4096);
    }
    for (int p = page; p < page + n; p++) {
      unsigned mask = 0;
      if (rng() % 2) {  // cached, with random uptodate blocks
        mask = rng() % 16;
        const int first = mask ? __builtin_ctz(mask) : 0;
        const int last = mask ? 31 - __builtin_clz(mask) : -1;
        // Uptodate runs must be contiguous for CacheFolio: use [first,last].
        mask = 0;
        for (int b = first; b <= last; b++) mask |= 1u << b;
        Cache(int64_t{p} * 4096, 0, first * 1024, (last - first + 1) * 1024,
              rng() % 2);
      }
      for (int b = 0; b < kBlocksPerPage; b++) {
        const bool up = mask & (1u << b);
        data[p * kBlocksPerPage + b] = type == T::kMapped ||
                                       type == T::kDelalloc ||
                                       (type == T::kUnwritten && up);
      }
    }
    page += n;
  }
  const int64_t size = int64_t{kPages} * 4096;
  for (int i = 0; i < 3000; i++) {
    const int64_t p = static_cast<int64_t>(rng() % size);
    int64_t want_data = -ENXIO, want_hole = size;
    for (int64_t b = p / 1024; b < kPages * kBlocksPerPage; b++) {
      if (data[b] && want_data < 0) want_data = std::max(p, b * 1024);
      if (!data[b] && want_hole == size) want_hole = std::max(p, b * 1024);
    }
    ASSERT_EQ(Data(p), want_data) << "pos " << p;
    ASSERT_EQ(Hole(p), want_hole) << "pos " << p;
  }
}

// The rwsem must be held (the kernel's lockdep assertion).
TEST(SeekDeathTest, RequiresRwsem) {
  NullDevice dev;
  PageCache cache;
  Inode inode(1, 12, &dev, &cache);
  inode.i_size_write(4096);
  ReportFs fs(12, &dev);
  EXPECT_DEATH(SeekData(&inode, 0, fs), "AssertReaderHeld");
  EXPECT_DEATH(SeekHole(&inode, 0, fs), "AssertReaderHeld");
}

// CacheSeekHoleData itself: -ENXIO for an empty range, end when no hole.
TEST_F(SeekTest, CacheSeekHoleDataEdges) {
  Init(12, 64 * kKiB);
  Cache(0, 0, 0, 4096);
  Mapping* m = inode_->mapping();
  EXPECT_EQ(CacheSeekHoleData(m, 100, 100, SEEK_DATA), -ENXIO);
  EXPECT_EQ(CacheSeekHoleData(m, 100, 100, SEEK_HOLE), -ENXIO);
  EXPECT_EQ(CacheSeekHoleData(m, 0, 2048, SEEK_HOLE), 2048);
  EXPECT_EQ(CacheSeekHoleData(m, 0, 8192, SEEK_HOLE), 4096);
  EXPECT_EQ(CacheSeekHoleData(m, 4096, 8192, SEEK_DATA), -ENXIO);
  EXPECT_EQ(CacheSeekHoleData(m, 10, 8192, SEEK_DATA), 10);
}

}  // namespace
}  // namespace iomap
