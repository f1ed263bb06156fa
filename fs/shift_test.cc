// FALLOC_FL_COLLAPSE_RANGE and FALLOC_FL_INSERT_RANGE through the Volume:
// data, holes, unwritten, delalloc-then-written and shared extents move by
// whole blocks (content and FIEMAP layout), the errno cases of
// vfs_fallocate + xfs_file_fallocate, journal replay after a remount or a
// crash (the shift is one transaction: a crash leaves the file before or
// after it), and fsck. Every test runs at block sizes 512, 1024, 4096 and
// 65536.
#include <linux/falloc.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "fs/file.h"
#include "fs/format.h"
#include "fs/testing/mem_device.h"
#include "fs/testing/volume_helpers.h"
#include "fs/volume.h"
#include "gtest/gtest.h"
#include "iomap/fiemap.h"
#include "iomap/swapfile.h"

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

constexpr int kCollapse = FALLOC_FL_COLLAPSE_RANGE;
constexpr int kInsert = FALLOC_FL_INSERT_RANGE;

// One file block as FIEMAP reports it: the device block (-1: hole, -2:
// delalloc) and the unwritten/shared flags.
struct Block {
  int64_t dev = -1;
  bool unwritten = false;
  bool shared = false;
  bool operator==(const Block& o) const {
    return dev == o.dev && unwritten == o.unwritten && shared == o.shared;
  }
};

std::ostream& operator<<(std::ostream& os, const Block& b) {
  return os << "{" << b.dev << (b.unwritten ? " u" : "")
            << (b.shared ? " s" : "") << "}";
}

// The per-block FIEMAP layout of blocks [0, nblocks).
std::vector<Block> Layout(OpenFile* f, int64_t bs, int64_t nblocks) {
  iomap::FiemapRequest req;
  req.fm_length = iomap::kFiemapMaxOffset;
  req.fm_extent_count = 512;
  EXPECT_EQ(f->Fiemap(&req), 0);
  std::vector<Block> out(static_cast<size_t>(nblocks));
  for (const iomap::FiemapExtent& e : req.fm_extents) {
    const bool delalloc = e.fe_flags & iomap::kFiemapExtentDelalloc;
    for (uint64_t i = 0; i < e.fe_length / bs; ++i) {
      const uint64_t b = e.fe_logical / bs + i;
      if (b >= out.size()) break;
      out[b].dev = delalloc ? -2 : static_cast<int64_t>(e.fe_physical / bs + i);
      out[b].unwritten = e.fe_flags & iomap::kFiemapExtentUnwritten;
      out[b].shared = e.fe_flags & iomap::kFiemapExtentShared;
    }
  }
  return out;
}

// The expected layout after collapsing blocks [o, o + n) of `before`, with
// `eof` blocks left in the file (blocks past it are freed).
std::vector<Block> Collapsed(std::vector<Block> before, int64_t o, int64_t n,
                             int64_t eof) {
  before.erase(before.begin() + o, before.begin() + o + n);
  before.resize(before.size() + n);
  for (size_t b = static_cast<size_t>(eof); b < before.size(); ++b)
    before[b] = Block{};
  return before;
}

std::vector<Block> Inserted(std::vector<Block> before, int64_t o, int64_t n) {
  const size_t size = before.size();
  before.insert(before.begin() + o, static_cast<size_t>(n), Block{});
  before.resize(size);
  return before;
}

class ShiftTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  void SetUp() override {
    vol_ = FormatAndMount(&dev_, bs());
    ASSERT_NE(vol_, nullptr);
    h_ = CreateFile(vol_.get(), "f");
    f_ = OpenOrDie(vol_.get(), h_);
  }
  int64_t bs() const { return GetParam(); }
  int64_t B(int64_t blocks) const { return blocks * bs(); }

  // Blocks 0-5 data, 6-7 hole, 8-11 unwritten, 12-17 data (all fsynced),
  // then 18-23 data left dirty (delalloc) when `dirty_tail`; the size ends
  // 100 bytes into block 23. Returns the layout of the synced part.
  std::vector<Block> Build(bool dirty_tail) {
    WriteModel(0, Pattern(B(6), 1));
    EXPECT_EQ(f_->Fallocate(0, B(8), B(4)), 0);
    model_.resize(B(12), '\0');
    WriteModel(B(12), Pattern(B(6), 2));
    EXPECT_EQ(f_->Fsync(), 0);
    std::vector<Block> layout = Layout(f_.get(), bs(), kBlocks);
    const std::string tail = Pattern(B(5) + 100, 3);
    if (dirty_tail) {
      WriteModel(B(18), tail);
    } else {
      WriteModel(B(18), tail);
      EXPECT_EQ(f_->Fsync(), 0);
      layout = Layout(f_.get(), bs(), kBlocks);
    }
    return layout;
  }
  void WriteModel(int64_t pos, const std::string& data) {
    ASSERT_EQ(f_->Write(pos, data.data(), data.size()),
              static_cast<int64_t>(data.size()));
    if (model_.size() < pos + data.size()) model_.resize(pos + data.size());
    model_.replace(pos, data.size(), data);
  }
  void ExpectContent(OpenFile* f) {
    EXPECT_EQ(f->size(), static_cast<int64_t>(model_.size()));
    EXPECT_TRUE(ReadAll(f, 0, model_.size() + 100) == model_);
  }
  // Closes, unmounts (checkpoint), runs fsck, mounts again and reopens.
  void UnmountFsckRemount() {
    f_->Close();
    f_.reset();
    ASSERT_TRUE(vol_->Unmount().ok());
    vol_.reset();
    FsckResult r = FsckVolume(dev_);
    ASSERT_TRUE(r.clean()) << r.problems[0];
    vol_ = Remount(&dev_);
    ASSERT_NE(vol_, nullptr);
    f_ = OpenOrDie(vol_.get(), h_);
  }
  // A power cut: every later write is lost, the volume is dropped without
  // a checkpoint, fsck replays the journal, then it is mounted again.
  void CrashFsckRemount(uint64_t seed) {
    if (!dev_.frozen()) dev_.CrashAfterWrites(0, seed);
    f_.reset();
    vol_.reset();
    dev_.Crash(seed);
    FsckResult r = FsckVolume(dev_);
    ASSERT_TRUE(r.clean()) << r.problems[0];
    vol_ = Remount(&dev_);
    ASSERT_NE(vol_, nullptr);
    f_ = OpenOrDie(vol_.get(), h_);
  }

  static constexpr int64_t kBlocks = 40;  // layout window, past EOF
  MemDevice dev_{48ull << 20};
  std::unique_ptr<Volume> vol_;
  FileHandle h_;
  std::unique_ptr<OpenFile> f_;
  std::string model_;
};

TEST_P(ShiftTest, CollapseMovesDataHolesAndUnwritten) {
  const std::vector<Block> before = Build(/*dirty_tail=*/false);
  const uint64_t free0 = vol_->FreeBlocks();
  // [4, 10): two data blocks, the hole, two unwritten blocks.
  ASSERT_EQ(f_->Fallocate(kCollapse, B(4), B(6)), 0);
  model_.erase(B(4), B(6));
  ExpectContent(f_.get());
  EXPECT_EQ(vol_->FreeBlocks(), free0 + 4);
  std::vector<Block> want = Collapsed(before, 4, 6, 18);
  EXPECT_EQ(Layout(f_.get(), bs(), kBlocks), want);
  // The unwritten blocks left (now 4-5) still read zeros; data follows.
  EXPECT_EQ(ReadAll(f_.get(), B(4), B(2)), std::string(B(2), '\0'));
  ExpectClean(vol_.get());
  UnmountFsckRemount();
  ExpectContent(f_.get());
  EXPECT_EQ(Layout(f_.get(), bs(), kBlocks), want);
}

TEST_P(ShiftTest, InsertLeavesHoleAndSplitsExtent) {
  const std::vector<Block> before = Build(/*dirty_tail=*/false);
  const uint64_t free0 = vol_->FreeBlocks();
  // Block 14 is inside the 12-17 data extent: it is split.
  ASSERT_EQ(f_->Fallocate(kInsert, B(14), B(3)), 0);
  model_.insert(B(14), std::string(B(3), '\0'));
  ExpectContent(f_.get());
  EXPECT_EQ(vol_->FreeBlocks(), free0);
  const std::vector<Block> want = Inserted(before, 14, 3);
  EXPECT_EQ(Layout(f_.get(), bs(), kBlocks), want);
  // And at block 0: everything moves.
  ASSERT_EQ(f_->Fallocate(kInsert, 0, B(2)), 0);
  model_.insert(0, std::string(B(2), '\0'));
  ExpectContent(f_.get());
  EXPECT_EQ(Layout(f_.get(), bs(), kBlocks), Inserted(want, 0, 2));
  // The inserted hole takes writes like any hole.
  WriteModel(B(15), Pattern(B(1) + 7, 9));
  ExpectContent(f_.get());
  ExpectClean(vol_.get());
  UnmountFsckRemount();
  ExpectContent(f_.get());
}

TEST_P(ShiftTest, InsertThenCollapseRestoresTheLayout) {
  const std::vector<Block> before = Build(/*dirty_tail=*/false);
  const std::string original = model_;
  ASSERT_EQ(f_->Fallocate(kInsert, B(3), B(5)), 0);
  ASSERT_EQ(f_->Fallocate(kCollapse, B(3), B(5)), 0);
  EXPECT_EQ(ReadAll(f_.get(), 0, original.size() + 1), original);
  // Block 3's halves are contiguous again: merged back into one extent.
  EXPECT_EQ(Layout(f_.get(), bs(), kBlocks), before);
  iomap::FiemapRequest req;
  req.fm_length = B(6);
  req.fm_extent_count = 8;
  ASSERT_EQ(f_->Fiemap(&req), 0);
  EXPECT_EQ(req.fm_mapped_extents, 1u);
  ExpectClean(vol_.get());
}

TEST_P(ShiftTest, DelallocIsWrittenBackThenMoved) {
  const std::vector<Block> before = Build(/*dirty_tail=*/true);
  // Blocks 18-23 are delalloc: collapse [2, 5) writes them back first.
  EXPECT_EQ(Layout(f_.get(), bs(), kBlocks)[20].dev, -2);
  ASSERT_EQ(f_->Fallocate(kCollapse, B(2), B(3)), 0);
  model_.erase(B(2), B(3));
  ExpectContent(f_.get());
  const std::vector<Block> got = Layout(f_.get(), bs(), kBlocks);
  const std::vector<Block> want = Collapsed(before, 2, 3, 21);
  for (int64_t b = 0; b < kBlocks; ++b) {
    if (b >= 15 && b < 21) {  // the tail, written back at its new place
      EXPECT_GE(got[b].dev, 0) << b;
      EXPECT_FALSE(got[b].unwritten) << b;
    } else {
      EXPECT_EQ(got[b], want[b]) << b;
    }
  }
  EXPECT_EQ(vol_->ReservedBlocks(), 0u);
  // Dirty again, then insert inside the dirty range.
  WriteModel(B(16) + 3, Pattern(B(2), 4));
  ASSERT_EQ(f_->Fallocate(kInsert, B(17), B(2)), 0);
  model_.insert(B(17), std::string(B(2), '\0'));
  ExpectContent(f_.get());
  ExpectClean(vol_.get());
  UnmountFsckRemount();
  ExpectContent(f_.get());
}

TEST_P(ShiftTest, SharedExtentsShiftWithTheirRefcounts) {
  Build(/*dirty_tail=*/false);
  const FileHandle hc = CreateFile(vol_.get(), "clone");
  std::unique_ptr<OpenFile> c = OpenOrDie(vol_.get(), hc);
  ASSERT_EQ(c->CloneRange(f_.get(), 0, 0, 0),
            static_cast<int64_t>(model_.size()));
  const std::string source = model_;
  const std::vector<Block> src_layout = Layout(f_.get(), bs(), kBlocks);
  const std::vector<Block> before = Layout(c.get(), bs(), kBlocks);
  EXPECT_TRUE(before[0].shared);
  const uint64_t free0 = vol_->FreeBlocks();
  // Collapse shared blocks out of the clone: only references drop.
  ASSERT_EQ(c->Fallocate(kCollapse, B(1), B(2)), 0);
  EXPECT_EQ(vol_->FreeBlocks(), free0);
  std::string want = source;
  want.erase(B(1), B(2));
  EXPECT_EQ(ReadAll(c.get(), 0, want.size() + 1), want);
  std::vector<Block> want_layout = Collapsed(before, 1, 2, 22);
  // Blocks 1-2 of the source are no longer shared.
  std::vector<Block> src_want = src_layout;
  src_want[1].shared = src_want[2].shared = false;
  EXPECT_EQ(Layout(f_.get(), bs(), kBlocks), src_want);
  EXPECT_EQ(Layout(c.get(), bs(), kBlocks), want_layout);
  // Insert in the clone, then overwrite a moved shared block: copy on
  // write at its new offset, the source keeps its data.
  ASSERT_EQ(c->Fallocate(kInsert, B(4), B(1)), 0);
  want.insert(B(4), std::string(B(1), '\0'));
  const std::string patch = Pattern(B(1), 5);
  ASSERT_EQ(c->Write(B(2) + 5, patch.data(), patch.size()), B(1));
  want.replace(B(2) + 5, B(1), patch);
  ASSERT_EQ(c->Fsync(), 0);
  EXPECT_EQ(ReadAll(c.get(), 0, want.size() + 1), want);
  EXPECT_EQ(ReadAll(f_.get(), 0, source.size() + 1), source);
  ExpectClean(vol_.get());
  c->Close();
  c.reset();
  UnmountFsckRemount();
  EXPECT_EQ(ReadAll(f_.get(), 0, source.size() + 1), source);
  c = OpenOrDie(vol_.get(), hc);
  EXPECT_EQ(ReadAll(c.get(), 0, want.size() + 1), want);
}

TEST_P(ShiftTest, CollapseFreesWhatLandsPastTheNewEof) {
  Build(/*dirty_tail=*/false);
  // KEEP_SIZE preallocation past EOF (blocks 30-33) is freed by the size
  // change after the collapse, as xfs_setattr_size frees it.
  ASSERT_EQ(f_->Fallocate(FALLOC_FL_KEEP_SIZE, B(30), B(4)), 0);
  const uint64_t free0 = vol_->FreeBlocks();
  ASSERT_EQ(f_->Fallocate(kCollapse, B(12), B(2)), 0);
  model_.erase(B(12), B(2));
  ExpectContent(f_.get());
  EXPECT_EQ(vol_->FreeBlocks(), free0 + 2 + 4);
  const std::vector<Block> got = Layout(f_.get(), bs(), kBlocks);
  for (int64_t b = 22; b < kBlocks; ++b) EXPECT_EQ(got[b].dev, -1) << b;
  // Insert moves preallocation past EOF along with the data.
  ASSERT_EQ(f_->Fallocate(FALLOC_FL_KEEP_SIZE, B(30), B(2)), 0);
  ASSERT_EQ(f_->Fallocate(kInsert, B(1), B(3)), 0);
  model_.insert(B(1), std::string(B(3), '\0'));
  ExpectContent(f_.get());
  const std::vector<Block> moved = Layout(f_.get(), bs(), kBlocks);
  EXPECT_EQ(moved[32].dev, -1);
  EXPECT_TRUE(moved[33].unwritten);
  EXPECT_TRUE(moved[34].unwritten);
  ExpectClean(vol_.get());
}

TEST_P(ShiftTest, Errnos) {
  Build(/*dirty_tail=*/false);
  const int64_t size = static_cast<int64_t>(model_.size());  // 23 blocks+100
  for (int mode : {kCollapse, kInsert}) {
    SCOPED_TRACE(mode);
    // vfs_fallocate: no other flag goes with either.
    EXPECT_EQ(f_->Fallocate(mode | FALLOC_FL_KEEP_SIZE, 0, B(1)), -EOPNOTSUPP);
    EXPECT_EQ(f_->Fallocate(mode | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                            0, B(1)),
              -EOPNOTSUPP);
    EXPECT_EQ(f_->Fallocate(mode | FALLOC_FL_ZERO_RANGE, 0, B(1)), -EOPNOTSUPP);
    EXPECT_EQ(f_->Fallocate(mode | FALLOC_FL_UNSHARE_RANGE, 0, B(1)),
              -EOPNOTSUPP);
    EXPECT_EQ(f_->Fallocate(kCollapse | kInsert, 0, B(1)), -EOPNOTSUPP);
    EXPECT_EQ(f_->Fallocate(mode, -B(1), B(1)), -EINVAL);
    EXPECT_EQ(f_->Fallocate(mode, 0, 0), -EINVAL);
    EXPECT_EQ(f_->Fallocate(mode, 0, -B(1)), -EINVAL);
    // Not multiples of the block size.
    EXPECT_EQ(f_->Fallocate(mode, 100, B(1)), -EINVAL);
    EXPECT_EQ(f_->Fallocate(mode, B(1), B(1) + 1), -EINVAL);
    EXPECT_EQ(f_->Fallocate(mode, B(1), bs() / 2), -EINVAL);
    // Past the maximum file size (vfs_fallocate).
    EXPECT_EQ(
        f_->Fallocate(mode, B(1), static_cast<int64_t>(format::kMaxFileSize)),
        -EFBIG);
  }
  // Collapse reaching EOF would be a truncate.
  EXPECT_EQ(f_->Fallocate(kCollapse, B(20), B(4)), -EINVAL);
  EXPECT_EQ(f_->Fallocate(kCollapse, B(23), B(1)), -EINVAL);
  EXPECT_EQ(f_->Fallocate(kCollapse, B(30), B(1)), -EINVAL);
  EXPECT_EQ(f_->Fallocate(kCollapse, 0, B(24)), -EINVAL);
  // Insert at or past EOF; a size past the maximum.
  EXPECT_EQ(f_->Fallocate(kInsert, B(24), B(1)), -EINVAL);
  EXPECT_EQ(f_->Fallocate(kInsert, B(40), B(1)), -EINVAL);
  const int64_t huge =
      static_cast<int64_t>(format::kMaxFileSize) - B(1);  // offset 0 fits
  EXPECT_EQ(f_->Fallocate(kInsert, 0, huge), -EFBIG);
  // Nothing changed.
  ExpectContent(f_.get());
  EXPECT_EQ(f_->size(), size);
  // An empty file: nothing is inside EOF.
  std::unique_ptr<OpenFile> e =
      OpenOrDie(vol_.get(), CreateFile(vol_.get(), "e"));
  EXPECT_EQ(e->Fallocate(kCollapse, 0, B(1)), -EINVAL);
  EXPECT_EQ(e->Fallocate(kInsert, 0, B(1)), -EINVAL);
  // The last block may be collapsed while a byte remains after it.
  ASSERT_EQ(f_->Fallocate(kCollapse, B(22), B(1)), 0);
  model_.erase(B(22), B(1));
  ExpectContent(f_.get());
  ExpectClean(vol_.get());
}

TEST_P(ShiftTest, ActiveSwapfileRefusesShifts) {
  Build(/*dirty_tail=*/false);
  // A swap file needs whole pages of written blocks: fill the holes.
  ASSERT_EQ(f_->Fallocate(FALLOC_FL_UNSHARE_RANGE, 0, B(24)), 0);
  WriteModel(0, Pattern(B(24), 6));
  ASSERT_EQ(f_->Fsync(), 0);
  iomap::SwapInfo sis;
  const int swap = vol_->SwapActivate(h_, &sis);
  if (bs() == 4096) {
    ASSERT_GT(swap, 0) << sis.error;
  }
  if (swap < 0) {
    GTEST_SKIP() << "not a usable swap file at this block size: " << sis.error;
  }
  EXPECT_EQ(f_->Fallocate(kCollapse, 0, B(1)), -ETXTBSY);
  EXPECT_EQ(f_->Fallocate(kInsert, 0, B(1)), -ETXTBSY);
  ASSERT_EQ(vol_->SwapDeactivate(h_), 0);
  ASSERT_EQ(f_->Fallocate(kCollapse, 0, B(1)), 0);
  model_.erase(0, B(1));
  ExpectContent(f_.get());
}

// Shifts made durable by an fsync survive a power cut (journal replay,
// fsck replays them too).
TEST_P(ShiftTest, FsyncedShiftsSurviveACrash) {
  Build(/*dirty_tail=*/true);
  ASSERT_EQ(f_->Fallocate(kCollapse, B(6), B(2)), 0);  // the hole
  model_.erase(B(6), B(2));
  ASSERT_EQ(f_->Fallocate(kInsert, B(1), B(4)), 0);
  model_.insert(B(1), std::string(B(4), '\0'));
  ASSERT_EQ(f_->Fallocate(kCollapse, B(10), B(3)), 0);
  model_.erase(B(10), B(3));
  ASSERT_EQ(f_->Fsync(), 0);
  const std::vector<Block> layout = Layout(f_.get(), bs(), kBlocks);
  CrashFsckRemount(GetParam());
  ExpectContent(f_.get());
  EXPECT_EQ(Layout(f_.get(), bs(), kBlocks), layout);
  ExpectClean(vol_.get());
}

// Without an fsync a crash leaves the file as it was before a shift or as
// it is after it, never in between (one transaction: unmap, shift, size).
TEST_P(ShiftTest, CrashLeavesBeforeOrAfter) {
  f_.reset();
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    SCOPED_TRACE(seed);
    h_ = CreateFile(vol_.get(), "c" + std::to_string(seed));
    f_ = OpenOrDie(vol_.get(), h_);
    model_.clear();
    WriteModel(0, Pattern(B(16) + 100, static_cast<uint32_t>(seed)));
    ASSERT_EQ(f_->Fsync(), 0);
    const std::string before = model_;
    std::string middle = before, after;
    middle.erase(B(3), B(4));
    after = middle;
    after.insert(B(8), std::string(B(2), '\0'));
    // The power fails at a seeded write from here on: inside the journal
    // writes of the collapse, of the insert, or of the fsync after them.
    dev_.CrashAfterWrites(seed % 4, seed);
    ASSERT_EQ(f_->Fallocate(kCollapse, B(3), B(4)), 0);
    ASSERT_EQ(f_->Fallocate(kInsert, B(8), B(2)), 0);
    if (seed % 2 == 0) f_->Fsync();
    CrashFsckRemount(seed);
    const std::string got = ReadAll(f_.get(), 0, before.size() + B(4));
    EXPECT_TRUE(got == before || got == middle || got == after)
        << "size " << got.size();
    std::printf("seed %llu: %s\n", static_cast<unsigned long long>(seed),
                got == before   ? "before"
                : got == middle ? "middle"
                                : "after");
    ExpectClean(vol_.get());
    f_.reset();
  }
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, ShiftTest,
                         ::testing::Values(512u, 1024u, 4096u, 65536u),
                         [](const ::testing::TestParamInfo<uint32_t>& info) {
                           return "bs" + std::to_string(info.param);
                         });

}  // namespace
}  // namespace fs
