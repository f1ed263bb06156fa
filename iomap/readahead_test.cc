// The readahead heuristics against the kernel's (mm/readahead.c, 6.16+,
// default 128 KiB ra_pages): for given read sequences, exactly which pages
// get cached, which carry the readahead mark and how many bios are issued.
// The expected windows are worked out by hand from the kernel's rules.
#include <cstdint>
#include <set>
#include <string>
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
constexpr int64_t kFileBytes = 4 << 20;  // 1024 pages

// Param: large folios (the cached pages must not depend on it).
class ReadaheadTest : public ::testing::TestWithParam<bool> {
 protected:
  ReadaheadTest()
      : dev_(kDevBase + kFileBytes, /*async=*/false),
        fs_(&dev_, 12, GetParam(), &cache_) {
    fs_.SetExtent(0, kFileBytes, Iomap::Type::kMapped, kDevBase);
    fs_.inode()->i_size_write(kFileBytes);
  }
  Inode* inode() { return fs_.inode(); }
  void ReadPage(RaState* ra, int64_t page, size_t len = 4096) {
    std::vector<uint8_t> buf(len);
    base::ReaderLock l(&inode()->locks().rwsem);
    ASSERT_EQ(
        FileBufferedRead(inode(), page * 4096, len, buf.data(), 0, fs_, ra),
        static_cast<int64_t>(len));
  }
  // Pages [first, last] as a set.
  static std::set<int64_t> Range(int64_t first, int64_t last) {
    std::set<int64_t> s;
    for (int64_t i = first; i <= last; i++) s.insert(i);
    return s;
  }
  std::set<int64_t> Cached() {
    std::set<int64_t> s;
    for (int64_t i = 0; i < kFileBytes / 4096; i++) {
      if (inode()->mapping()->Lookup(i)) s.insert(i);
    }
    return s;
  }
  // First page of each folio carrying the readahead mark.
  std::set<int64_t> Marked() {
    std::set<int64_t> s;
    for (const FolioRef& f :
         inode()->mapping()->FoliosInRange(0, kFileBytes / 4096)) {
      if (f->ReadaheadMark()) s.insert(f->index());
    }
    return s;
  }
  // The frontier of the cache: pages [0, n) cached, page n not.
  int64_t CachedUpTo() { return inode()->mapping()->NextMiss(0, 1 << 20); }

  PageCache cache_;
  MemDevice dev_;
  FakeFs fs_;
};

// get_init_ra_size(): a one-page read at 0 reads 4 pages and marks page 1
// (size 4, async_size 3); a 4-page read reads 8 and marks page 4.
TEST_P(ReadaheadTest, FirstReadAtStartReadsInitialWindow) {
  RaState ra;
  ResetReadStats();
  ReadPage(&ra, 0);
  EXPECT_EQ(Cached(), Range(0, 3));
  EXPECT_EQ(Marked(), std::set<int64_t>{1});
  EXPECT_EQ(GetReadStats().bios, 1u);
  EXPECT_EQ(GetReadStats().bio_bytes, 4u * 4096);
}

TEST_P(ReadaheadTest, FirstFourPageReadAtStartReadsEightPages) {
  RaState ra;
  ReadPage(&ra, 0, 4 * 4096);
  EXPECT_EQ(Cached(), Range(0, 7));
  EXPECT_EQ(Marked(), std::set<int64_t>{4});
}

// Elsewhere, with nothing cached before it, a first read is random: the
// request only, no mark (script 074: 16 bytes at 16k, then 1 byte at 100k).
TEST_P(ReadaheadTest, FirstReadElsewhereReadsOnlyTheRequest) {
  RaState ra;
  ReadPage(&ra, 4, 16);
  EXPECT_EQ(Cached(), Range(4, 4));
  ReadPage(&ra, 25, 1);
  EXPECT_EQ(Cached(), (std::set<int64_t>{4, 25}));
  EXPECT_TRUE(Marked().empty());
}

// Context readahead (script 075): pages 0-3 cached, a fresh reader asks for
// page 4. The history reaches the start of the file, so it counts double:
// window = min(2 * 4 + 1, 32) = 9 pages (4-12), async_size 1: mark on 12.
TEST_P(ReadaheadTest, ContextReadaheadAfterCachedStartOfFile) {
  Readahead(inode(), 0, 4, fs_);
  RaState ra;
  ResetReadStats();
  ReadPage(&ra, 4, 16);
  EXPECT_EQ(Cached(), Range(0, 12));
  EXPECT_EQ(Marked(), std::set<int64_t>{12});
  EXPECT_EQ(GetReadStats().bio_bytes, 9u * 4096);
}

// History not from the start: 6 cached pages (10-15) before page 16 give
// a window of 6 + 1 = 7 pages (16-22), mark on 22.
TEST_P(ReadaheadTest, ContextReadaheadAfterCachedRun) {
  Readahead(inode(), 10, 6, fs_);
  RaState ra;
  ReadPage(&ra, 16);
  EXPECT_EQ(Cached(), Range(10, 22));
  EXPECT_EQ(Marked(), std::set<int64_t>{22});
}

// One cached page is not more than the one-page request: still random.
TEST_P(ReadaheadTest, ShortHistoryIsRandom) {
  Readahead(inode(), 10, 1, fs_);
  RaState ra;
  ReadPage(&ra, 11);
  EXPECT_EQ(Cached(), Range(10, 11));
  EXPECT_TRUE(Marked().empty());
}

// A sequential miss (the read starts where the previous one ended) gets
// the initial window again: page 40 after a read that ended in page 39.
TEST_P(ReadaheadTest, SequentialMissStartsInitialWindow) {
  RaState ra;
  ReadPage(&ra, 39, 16);  // random: page 39 only; prev_pos in page 39
  ReadPage(&ra, 40);      // index - prev_index = 1: sequential
  EXPECT_EQ(Cached(), Range(39, 43));  // window 40-43, mark on 41
  EXPECT_EQ(Marked(), std::set<int64_t>{41});
}

// 4 KiB reads from the start: each mark starts the next window
// (page_cache_async_ra). Small folios: 4, +8, +16, +32, +32... pages. Large
// folios: the folio order grows by 2 per window and each window is cut to
// end on a boundary of that order, so the frontier moves 4, 12, 16, 24, 32,
// 48, 64, 96, 128, 160.
TEST_P(ReadaheadTest, SequentialReaderRampsUpWindows) {
  RaState ra;
  std::vector<int64_t> frontier;
  int64_t last = -1;
  for (int64_t page = 0; page < 100; page++) {
    ReadPage(&ra, page);
    const int64_t f = CachedUpTo();
    if (f != last) frontier.push_back(f);
    last = f;
  }
  const std::vector<int64_t> small = {4, 12, 28, 60, 92, 124, 156};
  const std::vector<int64_t> large = {4, 12, 16, 24, 32, 48, 64, 96, 128, 160};
  EXPECT_EQ(frontier, GetParam() ? large : small);
}

// Bios of a 4 KiB sequential reader with the default 128 KiB limit: one per
// window, the windows capped at 32 pages.
TEST_P(ReadaheadTest, SequentialReaderBiosWithDefaultLimit) {
  RaState ra;
  ResetReadStats();
  for (int64_t page = 0; page < 1024; page++) ReadPage(&ra, page);
  const ReadStats st = GetReadStats();
  EXPECT_EQ(st.bio_bytes, static_cast<uint64_t>(kFileBytes));
  // Small: 4 + 8 + 16 + 32 * 31 + 28 (EOF) -> 35 bios. Large: windows of
  // 4, 8, 4, 8, 8, 16, 16, 32, 32 pages (128), then 28 of 32 -> 37 bios.
  EXPECT_EQ(st.bios, GetParam() ? 37u : 35u);
}

// A mark reached through another file's state (interleaved streams): the
// window is rebuilt from the cache: the pages cached after the mark (2-3)
// plus the request, ramped up: 8 pages from page 4, mark on 4.
TEST_P(ReadaheadTest, MarkWithoutStateRampsFromCache) {
  RaState a, b;
  ReadPage(&a, 0);  // 0-3, mark on 1
  ReadPage(&b, 1);
  EXPECT_EQ(Cached(), Range(0, 11));
  EXPECT_EQ(Marked(), std::set<int64_t>{4});
}

// ra_pages 0 (readahead off): a miss reads only its page.
TEST_P(ReadaheadTest, ZeroRaPagesReadsOnlyThePage) {
  RaState ra(0);
  ReadPage(&ra, 0);
  ReadPage(&ra, 1);
  EXPECT_EQ(Cached(), Range(0, 1));
  EXPECT_TRUE(Marked().empty());
}

// A request larger than the window may use the device's largest I/O
// (1 MiB = 256 pages): 1 MiB at 0 reads 256 pages, marks page 128 and, on
// reaching it, reads the next 256.
TEST_P(ReadaheadTest, LargeRequestUsesDeviceIoSize) {
  RaState ra;
  ReadPage(&ra, 0, 1 << 20);
  EXPECT_EQ(Cached(), Range(0, 511));
}

// Nowait: a missing page is -EAGAIN with no I/O and no state change.
TEST_P(ReadaheadTest, NowaitMissStartsNothing) {
  RaState ra;
  std::vector<uint8_t> buf(4096);
  base::ReaderLock l(&inode()->locks().rwsem);
  EXPECT_EQ(FileBufferedRead(inode(), 0, 4096, buf.data(), kNowait, fs_, &ra),
            -EAGAIN);
  EXPECT_TRUE(Cached().empty());
}

INSTANTIATE_TEST_SUITE_P(Folios, ReadaheadTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(info.param ? "large" : "small");
                         });

}  // namespace
}  // namespace iomap
