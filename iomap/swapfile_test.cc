// Tests of swap file activation (swapfile.h) against ReportFs mappings. Each
// test names the kernel rule it checks (docs/reporting.md).
#include "iomap/swapfile.h"

#include <cerrno>
#include <cstdint>
#include <memory>

#include "gtest/gtest.h"
#include "iomap/folio.h"
#include "iomap/pagecache.h"
#include "iomap/testing/report_fs.h"

namespace iomap {
namespace {

using testing::HookCounter;
using testing::NullDevice;
using testing::ReportFs;
using T = Iomap::Type;

constexpr int64_t kPage = 4096;
constexpr int64_t kMiB = 1024 * 1024;

class SwapfileTest : public ::testing::Test {
 protected:
  SwapfileTest() { Init(12, 16 * kPage); }
  void Init(unsigned blkbits, int64_t size) {
    inode_ = std::make_unique<Inode>(1, blkbits, &dev_, &cache_);
    inode_->i_size_write(size);
    fs_ = std::make_unique<ReportFs>(blkbits, &dev_);
  }
  int Activate() {
    sis_.bdev = &dev_;
    base::WriterLock l(&inode_->locks().rwsem);
    return SwapfileActivate(inode_.get(), &sis_, *fs_,
                            [this](Inode* inode) { return fsync_(inode); });
  }
  // Expects -EINVAL with `reason`.
  void ExpectRejected(const char* reason) {
    EXPECT_EQ(Activate(), -EINVAL);
    EXPECT_EQ(sis_.error, reason);
  }

  NullDevice dev_;
  NullDevice other_dev_;
  PageCache cache_;
  std::unique_ptr<Inode> inode_;
  std::unique_ptr<ReportFs> fs_;
  HookCounter fsync_;
  SwapInfo sis_;
};

// One contiguous extent: one swap extent; the header page is in it but not
// in `pages`, and not in the lowest page of pagespan.
TEST_F(SwapfileTest, ContiguousFile) {
  fs_->Add(0, 16 * kPage, T::kMapped, 1 * kMiB);
  ASSERT_EQ(Activate(), 1);
  ASSERT_EQ(sis_.extents.size(), 1u);
  EXPECT_EQ(sis_.extents[0].start_page, 0u);
  EXPECT_EQ(sis_.extents[0].nr_pages, 16u);
  EXPECT_EQ(sis_.extents[0].start_block, uint64_t(1 * kMiB / kPage));
  EXPECT_EQ(sis_.max, 16u);
  EXPECT_EQ(sis_.pages, 15u);
  EXPECT_EQ(sis_.highest_bit, 15u);
  EXPECT_EQ(sis_.pagespan, 15u);  // 1 + (256 + 15) - (256 + 1)
  EXPECT_TRUE(sis_.error.empty());
}

// vfs_fsync comes first; its error stops activation before any mapping.
TEST_F(SwapfileTest, FsyncFirst) {
  fs_->Add(0, 16 * kPage, T::kMapped, 0);
  ASSERT_EQ(Activate(), 1);
  EXPECT_EQ(fsync_.calls, 1);
  fs_->begin_flags.clear();
  fsync_.result = -EIO;
  EXPECT_EQ(Activate(), -EIO);
  EXPECT_EQ(fs_->begin_calls(), 0);
}

TEST_F(SwapfileTest, UsesReportFlagAndReturnsBeginError) {
  fs_->Add(0, 8 * kPage, T::kMapped, 0);
  fs_->Add(8 * kPage, 8 * kPage, T::kMapped, 64 * kPage);
  ASSERT_EQ(Activate(), 2);
  for (unsigned f : fs_->begin_flags) EXPECT_EQ(f, kReport);
  fs_->begin_flags.clear();
  fs_->fail_call = 1;
  EXPECT_EQ(Activate(), -EIO);
}

TEST_F(SwapfileTest, RejectsInline) {
  fs_->Add(0, 16 * kPage, T::kInline);
  ExpectRejected("is inline");
}

TEST_F(SwapfileTest, RejectsHole) {
  fs_->Add(0, 8 * kPage, T::kMapped, 0);
  ExpectRejected("has unallocated extents");  // [8, 16) pages is a hole
}

TEST_F(SwapfileTest, RejectsDelalloc) {
  fs_->Add(0, 8 * kPage, T::kMapped, 0);
  fs_->Add(8 * kPage, 8 * kPage, T::kDelalloc);
  ExpectRejected("has unallocated extents");
}

TEST_F(SwapfileTest, RejectsUncommitted) {
  fs_->Add(0, 16 * kPage, T::kMapped, 0, kDirty);
  ExpectRejected("is not committed");
}

TEST_F(SwapfileTest, RejectsShared) {
  fs_->Add(0, 8 * kPage, T::kMapped, 0);
  fs_->Add(8 * kPage, 8 * kPage, T::kMapped, 8 * kPage, kShared);
  ExpectRejected("has shared extents");
}

TEST_F(SwapfileTest, RejectsOtherDevice) {
  fs_->Add(0, 8 * kPage, T::kMapped, 0);
  fs_->Add(8 * kPage, 8 * kPage, T::kMapped, 8 * kPage, 0, &other_dev_);
  ExpectRejected("outside the main device");
}

// The checks run in the kernel's order: type, then DIRTY, SHARED, device.
TEST_F(SwapfileTest, RejectionOrder) {
  fs_->Add(0, 16 * kPage, T::kMapped, 0, kDirty | kShared, &other_dev_);
  ExpectRejected("is not committed");
  fs_->Clear();
  fs_->Add(0, 16 * kPage, T::kMapped, 0, kShared, &other_dev_);
  ExpectRejected("has shared extents");
  fs_->Clear();
  fs_->Add(0, 16 * kPage, T::kDelalloc, kNullAddr, kDirty);
  ExpectRejected("has unallocated extents");
}

// MAPPED and UNWRITTEN are both usable, and merge when physically
// contiguous (no distinction between written and unwritten).
TEST_F(SwapfileTest, MappedAndUnwrittenMerge) {
  fs_->Add(0, 4 * kPage, T::kMapped, 100 * kPage);
  fs_->Add(4 * kPage, 12 * kPage, T::kUnwritten, 104 * kPage);
  ASSERT_EQ(Activate(), 1);
  ASSERT_EQ(sis_.extents.size(), 1u);
  EXPECT_EQ(sis_.extents[0].nr_pages, 16u);
  EXPECT_EQ(sis_.extents[0].start_block, 100u);
}

// Physically discontiguous mappings make separate swap extents, with swap
// pages numbered on from one to the next; pagespan covers the device range.
TEST_F(SwapfileTest, DiscontiguousExtents) {
  fs_->Add(0, 4 * kPage, T::kMapped, 100 * kPage);
  fs_->Add(4 * kPage, 12 * kPage, T::kMapped, 10 * kPage);
  ASSERT_EQ(Activate(), 2);
  ASSERT_EQ(sis_.extents.size(), 2u);
  EXPECT_EQ(sis_.extents[0].start_page, 0u);
  EXPECT_EQ(sis_.extents[0].nr_pages, 4u);
  EXPECT_EQ(sis_.extents[0].start_block, 100u);
  EXPECT_EQ(sis_.extents[1].start_page, 4u);
  EXPECT_EQ(sis_.extents[1].nr_pages, 12u);
  EXPECT_EQ(sis_.extents[1].start_block, 10u);
  // lowest = 10 (the header page's extent starts at 101), highest = 103.
  EXPECT_EQ(sis_.pagespan, 1u + 103 - 10);
  EXPECT_EQ(sis_.pages, 15u);
}

// bs < ps: each merged extent is rounded inward to whole device pages.
TEST_F(SwapfileTest, RoundsInwardToPages) {
  Init(10, 16 * kPage);
  // [3 KiB, 3 KiB + 16 pages) on the device: pages 1..15 are whole.
  fs_->Add(0, 16 * kPage, T::kMapped, 3 * 1024);
  ASSERT_EQ(Activate(), 1);
  EXPECT_EQ(sis_.extents[0].start_block, 1u);
  EXPECT_EQ(sis_.extents[0].nr_pages, 15u);
  EXPECT_EQ(sis_.max, 15u);
}

// A merged extent shorter than a whole device page is dropped.
TEST_F(SwapfileTest, DropsExtentsShorterThanAPage) {
  Init(10, 16 * kPage);
  fs_->Add(0, 3 * 1024, T::kMapped, 1024);  // inside device page 0
  fs_->Add(3 * 1024, 16 * kPage - 3 * 1024, T::kMapped, 40 * kPage);
  ASSERT_EQ(Activate(), 1);
  ASSERT_EQ(sis_.extents.size(), 1u);
  EXPECT_EQ(sis_.extents[0].start_block, 40u);
  EXPECT_EQ(sis_.extents[0].start_page, 0u);
  EXPECT_EQ(sis_.max, 15u);  // (16 pages - 3 KiB) rounds down to 15
  // The header-page rule follows file offset 0, which was dropped: the
  // lowest page is the extent's own first page.
  EXPECT_EQ(sis_.pagespan, 1u + (40 + 14) - 40);
}

// Only [0, ALIGN_DOWN(i_size, PAGE_SIZE)) is walked: a partial last page,
// even a hole there, is not looked at.
TEST_F(SwapfileTest, WalkStopsAtPageAlignedEof) {
  Init(12, 8 * kPage + 100);
  fs_->Add(0, 8 * kPage, T::kMapped, 0);  // the tail page is a hole
  ASSERT_EQ(Activate(), 1);
  EXPECT_EQ(sis_.max, 8u);
}

// The accumulated extent is the mapping as the filesystem returned it, not
// trimmed to the walk (XFS trims it to the request itself).
TEST_F(SwapfileTest, AccumulatesMappingsAsReturned) {
  Init(12, 8 * kPage);
  fs_->Add(0, 32 * kPage, T::kMapped, 0);
  ASSERT_EQ(Activate(), 1);
  EXPECT_EQ(sis_.max, 8u);
  fs_->trim_to_request = false;
  sis_.max = UINT64_MAX;  // max is in/out: reset the cap
  ASSERT_EQ(Activate(), 1);
  EXPECT_EQ(sis_.max, 32u);
}

// sis->max caps the pages used; the highest page still comes from the
// uncapped extent, as in the kernel.
TEST_F(SwapfileTest, CapsAtMaxPages) {
  fs_->Add(0, 16 * kPage, T::kMapped, 0);
  sis_.max = 5;
  ASSERT_EQ(Activate(), 1);
  EXPECT_EQ(sis_.extents[0].nr_pages, 5u);
  EXPECT_EQ(sis_.max, 5u);
  EXPECT_EQ(sis_.pages, 4u);
  EXPECT_EQ(sis_.pagespan, 1u + 15 - 1);
  // Once the cap is reached, later extents add nothing.
  fs_->Clear();
  fs_->Add(0, 4 * kPage, T::kMapped, 0);
  fs_->Add(4 * kPage, 12 * kPage, T::kMapped, 100 * kPage);
  sis_.max = 4;
  ASSERT_EQ(Activate(), 1);
  EXPECT_EQ(sis_.extents.size(), 1u);
  EXPECT_EQ(sis_.max, 4u);
}

// Not a single usable page: -EINVAL.
TEST_F(SwapfileTest, NoUsablePage) {
  Init(12, kPage - 1);  // nothing to walk
  ExpectRejected("Cannot find a single usable page in file.");
  EXPECT_EQ(fs_->begin_calls(), 0);
  Init(10, kPage);
  fs_->Add(0, 2048, T::kMapped, 1024);
  fs_->Add(2048, 2048, T::kMapped, 64 * kPage + 1024);
  ExpectRejected("Cannot find a single usable page in file.");
}

// add_swap_extent merges a physically contiguous extent into the last one.
TEST(AddSwapExtentTest, MergesContiguous) {
  SwapInfo sis;
  EXPECT_EQ(AddSwapExtent(&sis, 0, 4, 100), 1);
  EXPECT_EQ(AddSwapExtent(&sis, 4, 2, 104), 0);
  EXPECT_EQ(AddSwapExtent(&sis, 6, 2, 10), 1);
  ASSERT_EQ(sis.extents.size(), 2u);
  EXPECT_EQ(sis.extents[0].nr_pages, 6u);
  EXPECT_EQ(sis.extents[1].start_page, 6u);
}

// swapon holds i_rwsem exclusive.
TEST(SwapfileDeathTest, RequiresExclusiveRwsem) {
  NullDevice dev;
  PageCache cache;
  Inode inode(1, 12, &dev, &cache);
  ReportFs fs(12, &dev);
  SwapInfo sis;
  EXPECT_DEATH(SwapfileActivate(&inode, &sis, fs, nullptr), "AssertHeld");
  EXPECT_DEATH(
      {
        base::ReaderLock l(&inode.locks().rwsem);
        SwapfileActivate(&inode, &sis, fs, nullptr);
      },
      "AssertHeld");
}

}  // namespace
}  // namespace iomap
