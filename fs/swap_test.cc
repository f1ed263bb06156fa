// Volume::SwapActivate / SwapDeactivate and what an active swap file
// refuses, with the kernel's errnos.
#include <linux/falloc.h>

#include <memory>
#include <string>
#include <vector>

#include "fs/file.h"
#include "fs/testing/mem_device.h"
#include "fs/volume.h"
#include "gtest/gtest.h"
#include "iomap/swapfile.h"

namespace fs {
namespace {

using testing::MemDevice;

class SwapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LayoutOptions layout;
    layout.block_size = 4096;
    layout.device_bytes = dev_.limits().capacity_bytes;
    ASSERT_TRUE(Volume::Format(dev_, layout).ok());
    absl::StatusOr<std::unique_ptr<Volume>> vol = Volume::Mount(dev_);
    ASSERT_TRUE(vol.ok()) << vol.status();
    vol_ = std::move(*vol);
    h_ = Create("swap");
    std::unique_ptr<OpenFile> f = Open(h_);
    const std::string data(kSize, 'x');
    ASSERT_EQ(f->Write(0, data.data(), data.size()), kSize);
    // No fsync: activation writes back (delalloc would be refused).
  }

  FileHandle Create(const std::string& name) {
    InodeAttr a;
    EXPECT_EQ(vol_->Create(vol_->root(), name, 0600, true, &a), 0);
    return FileHandle{a.ino, a.generation};
  }
  std::unique_ptr<OpenFile> Open(FileHandle h) {
    std::unique_ptr<OpenFile> f;
    EXPECT_EQ(vol_->Open(h, &f), 0);
    return f;
  }

  static constexpr int64_t kSize = 64 << 10;
  MemDevice dev_{32ull << 20};
  std::unique_ptr<Volume> vol_;
  FileHandle h_;
};

TEST_F(SwapTest, ActivateReportsExtentsAndKeepsFileInCore) {
  iomap::SwapInfo sis;
  ASSERT_EQ(vol_->SwapActivate(h_, &sis), 1);
  EXPECT_EQ(sis.max, 16u);
  EXPECT_EQ(sis.pages, 15u);
  ASSERT_EQ(sis.extents.size(), 1u);
  EXPECT_EQ(sis.extents[0].nr_pages, 16u);
  EXPECT_EQ(vol_->ReservedBlocks(), 0u);
  // Still open: a second opener shares the in-core inode and sees the flag.
  std::unique_ptr<OpenFile> f = Open(h_);
  EXPECT_TRUE(f->inode()->swapfile());
  EXPECT_EQ(vol_->SwapActivate(h_, &sis), -EBUSY);
  f->Close();
  EXPECT_EQ(vol_->SwapDeactivate(h_), 0);
  EXPECT_EQ(vol_->SwapDeactivate(h_), -EINVAL);
  // Activation state is not persistent; a remount starts with none.
  ASSERT_EQ(vol_->SwapActivate(h_, &sis), 1);
  ASSERT_TRUE(vol_->Unmount().ok());  // deactivates, closes, checkpoints
  EXPECT_TRUE(FsckVolume(dev_).clean());
}

TEST_F(SwapTest, ActiveSwapfileRefusesChanges) {
  iomap::SwapInfo sis;
  ASSERT_EQ(vol_->SwapActivate(h_, &sis), 1);
  std::unique_ptr<OpenFile> f = Open(h_);
  const char b[16] = {};
  EXPECT_EQ(f->Write(0, b, sizeof(b)), -ETXTBSY);
  EXPECT_EQ(f->Write(0, b, 0), -ETXTBSY);
  EXPECT_EQ(f->MapWrite(0, b, sizeof(b)), -ETXTBSY);
  EXPECT_EQ(f->Truncate(4096), -ETXTBSY);
  EXPECT_EQ(f->Truncate(kSize), -ETXTBSY);
  EXPECT_EQ(vol_->Truncate(h_, 0), -ETXTBSY);
  EXPECT_EQ(f->Fallocate(0, 0, 4096), -ETXTBSY);
  EXPECT_EQ(f->Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096),
            -ETXTBSY);
  EXPECT_EQ(vol_->Unlink(vol_->root(), "swap"), -EPERM);
  EXPECT_EQ(vol_->Rename(vol_->root(), "swap", vol_->root(), "other"), -EPERM);
  Create("victim");
  EXPECT_EQ(vol_->Rename(vol_->root(), "victim", vol_->root(), "swap"), -EPERM);
  // Reads still work; growing the size is allowed (inode_newsize_ok).
  char r[4];
  EXPECT_EQ(f->Read(0, sizeof(r), reinterpret_cast<uint8_t*>(r)), 4);
  EXPECT_EQ(r[0], 'x');
  EXPECT_EQ(f->Truncate(kSize + 4096), 0);
  // After swapoff everything works again.
  EXPECT_EQ(vol_->SwapDeactivate(h_), 0);
  EXPECT_FALSE(f->inode()->swapfile());
  EXPECT_EQ(f->Write(0, b, sizeof(b)), 16);
  EXPECT_EQ(f->MapWrite(100, b, sizeof(b)), 16);
  EXPECT_EQ(f->Truncate(4096 * 4), 0);
  f->Close();
  EXPECT_EQ(vol_->Rename(vol_->root(), "swap", vol_->root(), "other"), 0);
  EXPECT_EQ(vol_->Unlink(vol_->root(), "other"), 0);
  std::vector<std::string> problems;
  vol_->CheckLive(&problems);
  EXPECT_TRUE(problems.empty()) << problems[0];
}

TEST_F(SwapTest, UnusableFilesAreRefused) {
  iomap::SwapInfo sis;
  // A hole: -EINVAL with the kernel's reason; nothing stays active.
  FileHandle sparse = Create("sparse");
  ASSERT_EQ(vol_->Truncate(sparse, kSize), 0);
  EXPECT_EQ(vol_->SwapActivate(sparse, &sis), -EINVAL);
  EXPECT_EQ(sis.error, "has unallocated extents");
  EXPECT_EQ(vol_->SwapDeactivate(sparse), -EINVAL);
  EXPECT_EQ(vol_->Unlink(vol_->root(), "sparse"), 0);
  // Stale handles, directories, unlinked files.
  EXPECT_EQ(vol_->SwapActivate(sparse, &sis), -ESTALE);
  EXPECT_EQ(vol_->SwapDeactivate(sparse), -ESTALE);
  EXPECT_EQ(vol_->SwapActivate(vol_->root(), &sis), -EISDIR);
  std::unique_ptr<OpenFile> f = Open(h_);
  ASSERT_EQ(vol_->Unlink(vol_->root(), "swap"), 0);
  iomap::SwapInfo again;
  EXPECT_EQ(vol_->SwapActivate(h_, &again), -ENOENT);
  f->Close();
}

}  // namespace
}  // namespace fs
