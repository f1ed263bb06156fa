// Tests of FIEMAP and FIBMAP (fiemap.h) against ReportFs mappings. Each test
// names the kernel rule it checks (docs/reporting.md).
#include "iomap/fiemap.h"

#include <cerrno>
#include <cstdint>
#include <memory>
#include <random>

#include "gtest/gtest.h"
#include "iomap/pagecache.h"
#include "iomap/testing/report_fs.h"

namespace iomap {
namespace {

using testing::CacheFolio;
using testing::HookCounter;
using testing::NullDevice;
using testing::ReportFs;
using T = Iomap::Type;

constexpr int64_t kKiB = 1024;
constexpr int64_t kMiB = 1024 * kKiB;

class FiemapTest : public ::testing::Test {
 protected:
  FiemapTest() { Init(12, 1 * kMiB); }
  void Init(unsigned blkbits, int64_t size) {
    inode_ = std::make_unique<Inode>(1, blkbits, &dev_, &cache_);
    inode_->i_size_write(size);
    fs_ = std::make_unique<ReportFs>(blkbits, &dev_);
  }
  // xfs_io "fiemap" style: [start, start + len) with room for `count`.
  int Map(uint64_t start, uint64_t len, uint32_t count, uint32_t flags = 0) {
    req_ = FiemapRequest();
    req_.fm_start = start;
    req_.fm_length = len;
    req_.fm_extent_count = count;
    req_.fm_flags = flags;
    FiemapOptions opts = options_;
    opts.write_and_wait = [this](Inode* inode) { return sync_(inode); };
    base::ReaderLock l(&inode_->locks().rwsem);
    return Fiemap(inode_.get(), &req_, *fs_, opts);
  }
  uint64_t Block(uint64_t block) {
    base::ReaderLock l(&inode_->locks().rwsem);
    return Bmap(inode_.get(), block, *fs_,
                [this](Inode* inode) { return sync_(inode); });
  }
  const FiemapExtent& Ext(size_t i) { return req_.fm_extents.at(i); }

  NullDevice dev_;
  PageCache cache_;
  std::unique_ptr<Inode> inode_;
  std::unique_ptr<ReportFs> fs_;
  FiemapOptions options_;
  HookCounter sync_;
  FiemapRequest req_;
};

// fiemap_prep: len == 0 -> -EINVAL (before anything else).
TEST_F(FiemapTest, ZeroLengthIsEinval) {
  EXPECT_EQ(Map(0, 0, 10, kFiemapFlagCache), -EINVAL);
  EXPECT_EQ(fs_->begin_calls(), 0);
}

// fiemap_prep: start >= s_maxbytes -> -EFBIG.
TEST_F(FiemapTest, StartAtOrPastMaxbytesIsEfbig) {
  options_.maxbytes = 1 * kMiB;
  EXPECT_EQ(Map(1 * kMiB, 4096, 10), -EFBIG);
  EXPECT_EQ(Map(2 * kMiB, 4096, 10), -EFBIG);
  EXPECT_EQ(Map(1 * kMiB - 1, 4096, 10), 0);
}

// fiemap_prep: the length is clamped to s_maxbytes - start.
TEST_F(FiemapTest, LengthClampedToMaxbytes) {
  options_.maxbytes = 1 * kMiB;
  fs_->Add(0, 4096, T::kMapped, 0);
  fs_->Add(1 * kMiB, 4096, T::kMapped, 8192);  // beyond maxbytes
  ASSERT_EQ(Map(0, kFiemapMaxOffset, 10), 0);
  ASSERT_EQ(req_.fm_mapped_extents, 1u);
  EXPECT_EQ(Ext(0).fe_flags, kFiemapExtentLast);
}

// ioctl_fiemap: fm_extent_count > FIEMAP_MAX_EXTENTS -> -EINVAL.
TEST_F(FiemapTest, ExtentCountTooLargeIsEinval) {
  EXPECT_EQ(Map(0, 4096, kFiemapMaxExtents + 1), -EINVAL);
  EXPECT_EQ(Map(0, 4096, kFiemapMaxExtents), 0);
}

// Flags other than SYNC -> -EBADR, fm_flags = the offending flags, no
// write-back and no walk.
TEST_F(FiemapTest, BadFlagsAreEbadrWithOffendingFlags) {
  EXPECT_EQ(Map(0, 4096, 10, kFiemapFlagSync | kFiemapFlagCache | 0x100),
            -EBADR);
  EXPECT_EQ(req_.fm_flags, kFiemapFlagCache | 0x100u);
  EXPECT_EQ(sync_.calls, 0);
  EXPECT_EQ(fs_->begin_calls(), 0);
}

// XATTR without attribute-fork ops is unsupported: -EBADR with XATTR.
TEST_F(FiemapTest, XattrWithoutXattrOpsIsEbadr) {
  EXPECT_EQ(Map(0, 4096, 10, kFiemapFlagXattr), -EBADR);
  EXPECT_EQ(req_.fm_flags, kFiemapFlagXattr);
}

// XATTR with attribute-fork ops maps them (xfs_vn_fiemap strips the flag).
TEST_F(FiemapTest, XattrMapsTheXattrOps) {
  ReportFs xattr_fs(12, &dev_);
  xattr_fs.Add(0, 4096, T::kMapped, 64 * kKiB);
  options_.xattr_ops = &xattr_fs;
  ASSERT_EQ(Map(0, kFiemapMaxOffset, 10, kFiemapFlagXattr), 0);
  EXPECT_EQ(req_.fm_flags, 0u);
  ASSERT_EQ(req_.fm_mapped_extents, 1u);
  EXPECT_EQ(Ext(0).fe_physical, uint64_t(64 * kKiB));
  EXPECT_EQ(fs_->begin_calls(), 0);
}

// FIEMAP_FLAG_SYNC writes back first; its error is returned; no SYNC, no
// write-back.
TEST_F(FiemapTest, SyncFlagWritesBackFirst) {
  fs_->Add(0, 4096, T::kMapped, 0);
  ASSERT_EQ(Map(0, 4096, 10), 0);
  EXPECT_EQ(sync_.calls, 0);
  ASSERT_EQ(Map(0, 4096, 10, kFiemapFlagSync), 0);
  EXPECT_EQ(sync_.calls, 1);
  EXPECT_EQ(req_.fm_flags, kFiemapFlagSync);
  sync_.result = -EIO;
  fs_->begin_flags.clear();
  EXPECT_EQ(Map(0, 4096, 10, kFiemapFlagSync), -EIO);
  EXPECT_EQ(fs_->begin_calls(), 0);
}

// Type mapping: MAPPED plain, UNWRITTEN, DELALLOC|UNKNOWN with physical 0,
// INLINE -> DATA_INLINE|NOT_ALIGNED, F_SHARED -> SHARED, F_MERGED -> MERGED.
TEST_F(FiemapTest, TypeAndFlagMapping) {
  fs_->Add(0, 4096, T::kMapped, 40960);
  fs_->Add(4096, 4096, T::kUnwritten, 81920);
  fs_->Add(8192, 4096, T::kDelalloc);
  fs_->Add(12288, 4096, T::kMapped, 122880, kShared);
  fs_->Add(16384, 4096, T::kMapped, 163840, kMerged);
  fs_->Add(20480, 4096, T::kInline);
  ASSERT_EQ(Map(0, kFiemapMaxOffset, 10), 0);
  ASSERT_EQ(req_.fm_mapped_extents, 6u);
  EXPECT_EQ(Ext(0).fe_flags, 0u);
  EXPECT_EQ(Ext(0).fe_physical, 40960u);
  EXPECT_EQ(Ext(1).fe_flags, kFiemapExtentUnwritten);
  EXPECT_EQ(Ext(1).fe_physical, 81920u);
  EXPECT_EQ(Ext(2).fe_flags, kFiemapExtentDelalloc | kFiemapExtentUnknown);
  EXPECT_EQ(Ext(2).fe_physical, 0u);
  EXPECT_EQ(Ext(3).fe_flags, kFiemapExtentShared);
  EXPECT_EQ(Ext(4).fe_flags, kFiemapExtentMerged);
  EXPECT_EQ(Ext(5).fe_flags, kFiemapExtentDataInline | kFiemapExtentNotAligned |
                                 kFiemapExtentLast);
  EXPECT_EQ(Ext(5).fe_physical, 0u);
  for (size_t i = 0; i < 6; i++) {
    EXPECT_EQ(Ext(i).fe_logical, i * 4096);
    EXPECT_EQ(Ext(i).fe_length, 4096u);
  }
}

// Holes are skipped.
TEST_F(FiemapTest, HolesAreSkipped) {
  fs_->Add(8192, 4096, T::kMapped, 0);
  fs_->Add(64 * kKiB, 8192, T::kMapped, 8192);
  ASSERT_EQ(Map(0, kFiemapMaxOffset, 10), 0);
  ASSERT_EQ(req_.fm_mapped_extents, 2u);
  EXPECT_EQ(Ext(0).fe_logical, 8192u);
  EXPECT_EQ(Ext(1).fe_logical, uint64_t(64 * kKiB));
  EXPECT_EQ(Ext(1).fe_length, 8192u);
  EXPECT_EQ(Ext(1).fe_flags, kFiemapExtentLast);
}

// iomap does not merge: physically contiguous adjacent mappings stay two.
TEST_F(FiemapTest, OneExtentPerMapping) {
  fs_->Add(0, 4096, T::kMapped, 0);
  fs_->Add(4096, 4096, T::kMapped, 4096);
  ASSERT_EQ(Map(0, kFiemapMaxOffset, 10), 0);
  EXPECT_EQ(req_.fm_mapped_extents, 2u);
}

// LAST goes on the last extent of the queried range, not of the file.
TEST_F(FiemapTest, LastIsLastExtentInQueriedRange) {
  fs_->Add(0, 4096, T::kMapped, 0);
  fs_->Add(8192, 4096, T::kMapped, 8192);
  fs_->Add(16384, 4096, T::kMapped, 16384);
  ASSERT_EQ(Map(0, 12288, 10), 0);
  ASSERT_EQ(req_.fm_mapped_extents, 2u);
  EXPECT_EQ(Ext(0).fe_flags, 0u);
  EXPECT_EQ(Ext(1).fe_flags, kFiemapExtentLast);
  // A range ending in a hole: LAST still on the last non-hole.
  ASSERT_EQ(Map(0, 14000, 10), 0);
  ASSERT_EQ(req_.fm_mapped_extents, 2u);
  EXPECT_EQ(Ext(1).fe_flags, kFiemapExtentLast);
}

// Mappings are reported as the filesystem returned them (XFS trims them
// to the block-rounded request).
TEST_F(FiemapTest, ReportsMappingsAsReturned) {
  fs_->Add(0, 64 * kKiB, T::kMapped, 1 * kMiB);
  ASSERT_EQ(Map(4096 + 100, 4000, 10), 0);
  ASSERT_EQ(req_.fm_mapped_extents, 1u);
  EXPECT_EQ(Ext(0).fe_logical, 4096u);
  EXPECT_EQ(Ext(0).fe_length, 8192u);
  EXPECT_EQ(Ext(0).fe_physical, uint64_t(1 * kMiB + 4096));
  fs_->trim_to_request = false;
  ASSERT_EQ(Map(4096, 4096, 10), 0);
  EXPECT_EQ(Ext(0).fe_logical, 0u);
  EXPECT_EQ(Ext(0).fe_length, uint64_t(64 * kKiB));
}

// fm_extent_count == 0 only counts.
TEST_F(FiemapTest, CountOnly) {
  for (int i = 0; i < 7; i++) fs_->Add(i * 8192, 4096, T::kMapped, i * 4096);
  ASSERT_EQ(Map(0, kFiemapMaxOffset, 0), 0);
  EXPECT_EQ(req_.fm_mapped_extents, 7u);
  EXPECT_TRUE(req_.fm_extents.empty());
}

// A full array stops the walk: the filled extents, none marked LAST, 0
// returned, and no mapping asked for past the one that found it full.
TEST_F(FiemapTest, FullArrayStopsWalk) {
  for (int i = 0; i < 5; i++) fs_->Add(i * 8192, 4096, T::kMapped, i * 4096);
  ASSERT_EQ(Map(0, kFiemapMaxOffset, 2), 0);
  ASSERT_EQ(req_.fm_mapped_extents, 2u);
  ASSERT_EQ(req_.fm_extents.size(), 2u);
  EXPECT_EQ(Ext(0).fe_flags, 0u);
  EXPECT_EQ(Ext(1).fe_flags, 0u);
  EXPECT_EQ(Ext(1).fe_logical, 8192u);
  // Mappings 0 (ext 0), hole, 1 (ext 1), hole, 2 (emits ext 1: full).
  EXPECT_EQ(fs_->begin_calls(), 5);
}

// An array exactly as long as the extents: the last one still gets LAST.
TEST_F(FiemapTest, ExactFitGetsLast) {
  fs_->Add(0, 4096, T::kMapped, 0);
  fs_->Add(8192, 4096, T::kMapped, 8192);
  ASSERT_EQ(Map(0, kFiemapMaxOffset, 2), 0);
  ASSERT_EQ(req_.fm_mapped_extents, 2u);
  EXPECT_EQ(Ext(1).fe_flags, kFiemapExtentLast);
  ASSERT_EQ(Map(0, kFiemapMaxOffset, 1), 0);
  ASSERT_EQ(req_.fm_mapped_extents, 1u);
  EXPECT_EQ(Ext(0).fe_flags, 0u);
}

// An empty range or a sparse file: no extents, success.
TEST_F(FiemapTest, NoExtents) {
  ASSERT_EQ(Map(0, kFiemapMaxOffset, 10), 0);
  EXPECT_EQ(req_.fm_mapped_extents, 0u);
}

// IomapBegin's error before any extent is pending is returned.
TEST_F(FiemapTest, ErrorBeforePendingExtentIsReturned) {
  fs_->Add(8192, 4096, T::kMapped, 0);
  fs_->fail_call = 0;
  EXPECT_EQ(Map(0, kFiemapMaxOffset, 10), -EIO);
  fs_->begin_flags.clear();
  fs_->fail_call = 1;  // the hole was seen, the mapping fails
  EXPECT_EQ(Map(0, kFiemapMaxOffset, 10), -EIO);
}

// As the kernel: an error after an extent is pending is dropped, and the
// pending extent is emitted with LAST.
TEST_F(FiemapTest, ErrorAfterPendingExtentIsDropped) {
  fs_->Add(0, 4096, T::kMapped, 0);
  fs_->Add(8192, 4096, T::kMapped, 8192);
  fs_->fail_call = 1;
  ASSERT_EQ(Map(0, kFiemapMaxOffset, 10), 0);
  ASSERT_EQ(req_.fm_mapped_extents, 1u);
  EXPECT_EQ(Ext(0).fe_flags, kFiemapExtentLast);
}

// -ENOENT (no attribute fork) means nothing mapped: success.
TEST_F(FiemapTest, EnoentIsSuccess) {
  fs_->fail_call = 0;
  fs_->fail_error = -ENOENT;
  EXPECT_EQ(Map(0, kFiemapMaxOffset, 10), 0);
  EXPECT_EQ(req_.fm_mapped_extents, 0u);
}

TEST_F(FiemapTest, UsesReportFlag) {
  fs_->Add(8192, 4096, T::kMapped, 0);
  ASSERT_EQ(Map(0, 64 * kKiB, 10), 0);
  ASSERT_GE(fs_->begin_calls(), 2);
  for (unsigned f : fs_->begin_flags) EXPECT_EQ(f, kReport);
}

// fiemap_fill_next_extent's derived flags.
TEST(FiemapFillTest, DerivedFlags) {
  std::vector<FiemapExtent> out;
  FiemapExtentInfo fi;
  fi.fi_extents_max = 10;
  fi.fi_extents = &out;
  EXPECT_EQ(FiemapFillNextExtent(&fi, 0, 0, 1, kFiemapExtentDelalloc), 0);
  EXPECT_EQ(FiemapFillNextExtent(&fi, 0, 0, 1, kFiemapExtentDataEncrypted), 0);
  EXPECT_EQ(FiemapFillNextExtent(&fi, 0, 0, 1, kFiemapExtentDataTail), 0);
  EXPECT_EQ(FiemapFillNextExtent(&fi, 0, 0, 1, kFiemapExtentLast), 1);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].fe_flags, kFiemapExtentDelalloc | kFiemapExtentUnknown);
  EXPECT_EQ(out[1].fe_flags, kFiemapExtentDataEncrypted | kFiemapExtentEncoded);
  EXPECT_EQ(out[2].fe_flags, kFiemapExtentDataTail | kFiemapExtentNotAligned);
  // Count-only: LAST still answers 1.
  FiemapExtentInfo count;
  EXPECT_EQ(FiemapFillNextExtent(&count, 0, 0, 1, 0), 0);
  EXPECT_EQ(FiemapFillNextExtent(&count, 0, 0, 1, kFiemapExtentLast), 1);
  EXPECT_EQ(count.fi_extents_mapped, 2u);
}

// Thousands of extents: every one reported in order, counted alike, and a
// short array gets exactly its prefix.
TEST_F(FiemapTest, ThousandsOfExtents) {
  const uint32_t seed = 7;
  std::mt19937 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::vector<FiemapExtent> want;
  int64_t pos = 0;
  for (int i = 0; i < 4000; i++) {
    pos += int64_t(rng() % 3) * 4096;  // maybe a hole
    const int64_t len = int64_t(1 + rng() % 4) * 4096;
    const bool unwritten = rng() % 2;
    fs_->Add(pos, len, unwritten ? T::kUnwritten : T::kMapped, 2 * pos);
    want.push_back({uint64_t(pos), uint64_t(2 * pos), uint64_t(len),
                    unwritten ? kFiemapExtentUnwritten : 0u});
    pos += len;
  }
  want.back().fe_flags |= kFiemapExtentLast;
  ASSERT_EQ(Map(0, kFiemapMaxOffset, 0), 0);
  EXPECT_EQ(req_.fm_mapped_extents, 4000u);
  ASSERT_EQ(Map(0, kFiemapMaxOffset, 5000), 0);
  ASSERT_EQ(req_.fm_mapped_extents, 4000u);
  for (size_t i = 0; i < want.size(); i++) {
    ASSERT_EQ(Ext(i).fe_logical, want[i].fe_logical) << i;
    ASSERT_EQ(Ext(i).fe_physical, want[i].fe_physical) << i;
    ASSERT_EQ(Ext(i).fe_length, want[i].fe_length) << i;
    ASSERT_EQ(Ext(i).fe_flags, want[i].fe_flags) << i;
  }
  ASSERT_EQ(Map(0, kFiemapMaxOffset, 1000), 0);
  ASSERT_EQ(req_.fm_mapped_extents, 1000u);
  EXPECT_EQ(Ext(999).fe_logical, want[999].fe_logical);
  EXPECT_EQ(Ext(999).fe_flags, want[999].fe_flags);
}

// --- FIBMAP

// MAPPED: the device block of the file block (filesystem block units).
TEST_F(FiemapTest, BmapMapped) {
  fs_->Add(0, 64 * kKiB, T::kMapped, 1 * kMiB);
  EXPECT_EQ(Block(0), uint64_t(1 * kMiB / 4096));
  EXPECT_EQ(Block(3), uint64_t(1 * kMiB / 4096 + 3));
  EXPECT_EQ(sync_.calls, 2);  // written back first, every time
  for (unsigned f : fs_->begin_flags) EXPECT_EQ(f, kReport);
  // generic/519: the answer is for the asked block, not the mapping start.
  fs_->trim_to_request = false;
  EXPECT_EQ(Block(7), uint64_t(1 * kMiB / 4096 + 7));
}

// bs < ps: blocks are filesystem blocks.
TEST_F(FiemapTest, BmapSmallBlocks) {
  Init(10, 64 * kKiB);
  fs_->Add(0, 64 * kKiB, T::kMapped, 1 * kMiB);
  EXPECT_EQ(Block(5), uint64_t(1 * kMiB / 1024 + 5));
}

// Anything but MAPPED answers 0: hole, unwritten, delalloc, inline; and
// shared MAPPED blocks are reported like any MAPPED.
TEST_F(FiemapTest, BmapNotMappedIsZero) {
  fs_->Add(4096, 4096, T::kUnwritten, 1 * kMiB);
  fs_->Add(8192, 4096, T::kDelalloc);
  fs_->Add(12288, 4096, T::kInline);
  fs_->Add(16384, 4096, T::kMapped, 1 * kMiB, kShared);
  EXPECT_EQ(Block(0), 0u);
  EXPECT_EQ(Block(1), 0u);
  EXPECT_EQ(Block(2), 0u);
  EXPECT_EQ(Block(3), 0u);
  EXPECT_EQ(Block(4), uint64_t(1 * kMiB / 4096));
  EXPECT_EQ(Block(1000), 0u);
}

// Errors answer 0: write-back failure (no mapping asked), IomapBegin.
TEST_F(FiemapTest, BmapErrorsAreZero) {
  fs_->Add(0, 64 * kKiB, T::kMapped, 1 * kMiB);
  sync_.result = -EIO;
  EXPECT_EQ(Block(1), 0u);
  EXPECT_EQ(fs_->begin_calls(), 0);
  sync_.result = 0;
  fs_->fail_call = 0;
  EXPECT_EQ(Block(1), 0u);
}

// DefaultWriteAndWait: the mapping's hooks, else 0 when clean and
// -EOPNOTSUPP with dirty data.
class CountingHooks : public MappingHooks {
 public:
  int WriteAndWaitRange(Inode*, int64_t start, int64_t end) override {
    calls++;
    EXPECT_EQ(start, 0);
    EXPECT_EQ(end, INT64_MAX);
    return 0;
  }
  int BalanceDirty(Inode*, bool) override { return 0; }
  int calls = 0;
};

TEST_F(FiemapTest, DefaultWriteAndWait) {
  EXPECT_EQ(DefaultWriteAndWait(inode_.get()), 0);
  ASSERT_EQ(CacheFolio(inode_.get(), 0, 0, 0, 4096, /*dirty=*/true), 0);
  EXPECT_EQ(DefaultWriteAndWait(inode_.get()), -EOPNOTSUPP);
  CountingHooks hooks;
  inode_->mapping()->set_hooks(&hooks);
  EXPECT_EQ(DefaultWriteAndWait(inode_.get()), 0);
  EXPECT_EQ(hooks.calls, 1);
  inode_->mapping()->set_hooks(nullptr);
}

TEST(FiemapDeathTest, RequiresRwsem) {
  NullDevice dev;
  PageCache cache;
  Inode inode(1, 12, &dev, &cache);
  ReportFs fs(12, &dev);
  FiemapRequest req;
  req.fm_length = 4096;
  EXPECT_DEATH(Fiemap(&inode, &req, fs), "AssertReaderHeld");
  EXPECT_DEATH(Bmap(&inode, 0, fs), "AssertReaderHeld");
}

}  // namespace
}  // namespace iomap
