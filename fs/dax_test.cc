// fs::Volume mounted with VolumeOptions::dax on an image file opened with
// block::OpenDaxDevice: reads, writes, mapped stores, truncate zeroing,
// fsync durability and copy-on-write all go through the device mapping.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "block/device.h"
#include "fs/file.h"
#include "fs/testing/volume_helpers.h"
#include "fs/volume.h"
#include "gtest/gtest.h"

namespace fs {
namespace {

using testing::CreateFile;
using testing::ExpectClean;
using testing::OpenOrDie;
using testing::Pattern;
using testing::ReadAll;

constexpr uint64_t kImageBytes = 64 << 20;
constexpr uint32_t kBs = 4096;

std::string TempPath(const std::string& name) {
  const char* dir = getenv("TEST_TMPDIR");
  std::string path = std::string(dir ? dir : "/tmp") + "/" + name;
  unlink(path.c_str());
  return path;
}

std::unique_ptr<block::Device> OpenDax(const std::string& path) {
  block::OpenOptions o;
  o.create = true;
  o.create_size = kImageBytes;
  o.backend = block::Backend::kSync;
  auto dev = block::OpenDaxDevice(path, o);
  EXPECT_TRUE(dev.ok()) << dev.status();
  return dev.ok() ? std::move(dev).value() : nullptr;
}

std::unique_ptr<Volume> MountDax(block::Device* dev) {
  VolumeOptions options;
  options.dax = true;
  auto vol = Volume::Mount(*dev, options);
  EXPECT_TRUE(vol.ok()) << vol.status();
  return vol.ok() ? std::move(vol).value() : nullptr;
}

// Copies the image as it is now: what a crash would leave on the medium
// (the mapping and the bios share the host page cache with the file).
void CopyImage(const std::string& from, const std::string& to) {
  int in = open(from.c_str(), O_RDONLY);
  int out = open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(in, 0);
  ASSERT_GE(out, 0);
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = read(in, &buf[0], buf.size());
    ASSERT_GE(n, 0);
    if (n == 0) break;
    ASSERT_EQ(write(out, buf.data(), n), n);
  }
  close(in);
  close(out);
}

class DaxVolumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = TempPath("dax.img");
    dev_ = OpenDax(path_);
    ASSERT_NE(dev_, nullptr);
    LayoutOptions layout;
    layout.block_size = kBs;
    layout.device_bytes = dev_->limits().capacity_bytes;
    ASSERT_TRUE(Volume::Format(*dev_, layout).ok());
    vol_ = MountDax(dev_.get());
    ASSERT_NE(vol_, nullptr);
  }
  void TearDown() override {
    if (vol_ != nullptr) {
      ExpectClean(vol_.get());
      EXPECT_TRUE(vol_->Unmount().ok());
    }
  }
  std::unique_ptr<OpenFile> NewFile(const std::string& name) {
    return OpenOrDie(vol_.get(), CreateFile(vol_.get(), name));
  }
  int64_t Put(OpenFile* f, int64_t pos, const std::string& s) {
    return f->Write(pos, s.data(), s.size());
  }
  // The bytes of file block `block` on the medium, through the mapping.
  std::string OnMedium(OpenFile* f, uint64_t block, size_t off, size_t n) {
    const uint64_t dev_block = f->Bmap(block);
    EXPECT_NE(dev_block, 0u);
    const uint8_t* p = dev_->dax()->DirectAccess(dev_block * kBs + off, n);
    return p ? std::string(reinterpret_cast<const char*>(p), n) : "";
  }

  std::string path_;
  std::unique_ptr<block::Device> dev_;
  std::unique_ptr<Volume> vol_;
};

TEST(DaxMountTest, NeedsADaxDevice) {
  block::OpenOptions o;
  o.create = true;
  o.create_size = kImageBytes;
  auto dev = block::OpenDevice(TempPath("plain.img"), o);
  ASSERT_TRUE(dev.ok());
  LayoutOptions layout;
  layout.device_bytes = (*dev)->limits().capacity_bytes;
  ASSERT_TRUE(Volume::Format(**dev, layout).ok());
  VolumeOptions options;
  options.dax = true;
  auto vol = Volume::Mount(**dev, options);
  EXPECT_EQ(vol.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DaxVolumeTest, WriteOverHoleLandsOnTheMediumAndReadsBack) {
  auto f = NewFile("a");
  const std::string data = Pattern(10000, 1);
  ASSERT_EQ(Put(f.get(), 5000, data), 10000);
  EXPECT_EQ(f->size(), 15000);
  EXPECT_EQ(ReadAll(f.get(), 5000, 10000), data);
  EXPECT_EQ(ReadAll(f.get(), 0, 5000), std::string(5000, '\0'));
  EXPECT_EQ(ReadAll(f.get(), 14000, 4096).size(), 1000u);  // short at EOF
  EXPECT_EQ(ReadAll(f.get(), 15000, 10), "");
  // Straight in the device, not in a cache; the block's head was zeroed.
  EXPECT_EQ(OnMedium(f.get(), 1, 5000 - kBs, 100), data.substr(0, 100));
  EXPECT_EQ(OnMedium(f.get(), 1, 0, 5000 - kBs), std::string(5000 - kBs, '\0'));
  EXPECT_EQ(f->inode()->mapping()->nr_folios(), 0u);
}

TEST_F(DaxVolumeTest, UnwrittenBlocksAreZeroedAndConverted) {
  auto f = NewFile("u");
  ASSERT_EQ(f->Fallocate(0, 0, 16 * kBs), 0);
  EXPECT_EQ(ReadAll(f.get(), 0, 16 * kBs), std::string(16 * kBs, '\0'));
  const std::string data = Pattern(100, 2);
  ASSERT_EQ(Put(f.get(), kBs + 1000, data), 100);
  std::string want(3 * kBs, '\0');
  want.replace(kBs + 1000, 100, data);
  EXPECT_EQ(ReadAll(f.get(), 0, 3 * kBs), want);
  // Only the written block was converted: SEEK_DATA skips the unwritten
  // block before it (no cache holds data there).
  EXPECT_EQ(f->SeekData(0), kBs);
}

TEST_F(DaxVolumeTest, OverwriteInPlace) {
  auto f = NewFile("o");
  ASSERT_EQ(Put(f.get(), 0, Pattern(3 * kBs, 3)), 3 * kBs);
  const uint64_t before = f->Bmap(1);
  const std::string data = Pattern(500, 4);
  ASSERT_EQ(Put(f.get(), kBs + 7, data), 500);
  EXPECT_EQ(f->Bmap(1), before);
  EXPECT_EQ(OnMedium(f.get(), 1, 7, 500), data);
}

TEST_F(DaxVolumeTest, WritePastEofZeroesTheGap) {
  auto f = NewFile("g");
  ASSERT_EQ(Put(f.get(), 0, Pattern(kBs, 5)), kBs);
  ASSERT_EQ(f->Truncate(100), 0);
  // Bytes past the new EOF are zeroed; a write further on sees zeroes.
  ASSERT_EQ(Put(f.get(), 2 * kBs, "x"), 1);
  const std::string got = ReadAll(f.get(), 0, 2 * kBs + 1);
  EXPECT_EQ(got.substr(100, 2 * kBs - 100), std::string(2 * kBs - 100, '\0'));
  EXPECT_EQ(got.back(), 'x');
}

TEST_F(DaxVolumeTest, PunchHoleZeroingReachesTheMapping) {
  auto f = NewFile("p");
  const std::string data = Pattern(3 * kBs, 10);
  ASSERT_EQ(Put(f.get(), 0, data), 3 * kBs);
  // PUNCH_HOLE | KEEP_SIZE: the partial blocks are zeroed through the
  // pagecache (fs/fallocate.cc); DAX must see those zeroes.
  ASSERT_EQ(f->Fallocate(0x02 | 0x01, 100, 2 * kBs), 0);
  std::string want = data;
  want.replace(100, 2 * kBs, std::string(2 * kBs, '\0'));
  EXPECT_EQ(ReadAll(f.get(), 0, 3 * kBs), want);
  EXPECT_EQ(f->inode()->mapping()->nr_folios(), 0u);
  EXPECT_EQ(OnMedium(f.get(), 0, 100, 10), std::string(10, '\0'));
  ASSERT_EQ(Put(f.get(), 2 * kBs + 50, "new"), 3);
  want.replace(2 * kBs + 50, 3, "new");
  ASSERT_EQ(f->Fsync(), 0);
  EXPECT_EQ(ReadAll(f.get(), 0, 3 * kBs), want);
}

TEST_F(DaxVolumeTest, TruncateDownAndUpZeroes) {
  auto f = NewFile("t");
  const std::string data = Pattern(2 * kBs, 6);
  ASSERT_EQ(Put(f.get(), 0, data), 2 * kBs);
  ASSERT_EQ(f->Truncate(5000), 0);
  EXPECT_EQ(ReadAll(f.get(), 0, 2 * kBs), data.substr(0, 5000));
  EXPECT_EQ(OnMedium(f.get(), 1, 5000 - kBs, 10), std::string(10, '\0'));
  ASSERT_EQ(f->Truncate(2 * kBs), 0);
  std::string want = data.substr(0, 5000) + std::string(2 * kBs - 5000, '\0');
  EXPECT_EQ(ReadAll(f.get(), 0, 2 * kBs), want);
}

TEST_F(DaxVolumeTest, MapWriteStoresThroughTheMapping) {
  auto f = NewFile("m");
  ASSERT_EQ(Put(f.get(), 0, std::string(kBs + 100, 'a')), kBs + 100);
  EXPECT_EQ(f->MapWrite(10, "hello", 5), 5);
  EXPECT_EQ(OnMedium(f.get(), 0, 10, 5), "hello");
  // The EOF page takes stores past EOF, which never show...
  EXPECT_EQ(f->MapWrite(kBs + 200, "zz", 2), 2);
  EXPECT_EQ(f->size(), kBs + 100);
  // ...not even when the size grows.
  ASSERT_EQ(f->Truncate(kBs + 300), 0);
  EXPECT_EQ(ReadAll(f.get(), kBs + 100, 200), std::string(200, '\0'));
  // A page starting past EOF: SIGBUS.
  EXPECT_EQ(f->MapWrite(2 * kBs, "q", 1), -EFAULT);
  // A store into a hole inside EOF allocates.
  ASSERT_EQ(f->Truncate(8 * kBs), 0);
  EXPECT_EQ(f->MapWrite(6 * kBs + 1, "hole", 4), 4);
  EXPECT_EQ(ReadAll(f.get(), 6 * kBs, 5), std::string("\0hole", 5));
}

TEST_F(DaxVolumeTest, FsyncIsDurableAcrossACrash) {
  auto f = NewFile("d");
  const std::string data = Pattern(3 * kBs + 17, 7);
  ASSERT_EQ(Put(f.get(), 0, data), static_cast<int64_t>(data.size()));
  ASSERT_EQ(f->MapWrite(kBs, "mapped", 6), 6);
  ASSERT_EQ(f->Fsync(), 0);
  EXPECT_TRUE(f->inode()->dax_dirty.empty());
  const FileHandle h = f->handle();
  // Crash now: the medium as it is, the volume never unmounted.
  const std::string copy = TempPath("dax-crash.img");
  CopyImage(path_, copy);
  auto dev2 = OpenDax(copy);
  ASSERT_NE(dev2, nullptr);
  auto vol2 = MountDax(dev2.get());
  ASSERT_NE(vol2, nullptr);
  auto g = OpenOrDie(vol2.get(), h);
  std::string want = data;
  want.replace(kBs, 6, "mapped");
  EXPECT_EQ(g->size(), static_cast<int64_t>(data.size()));
  EXPECT_EQ(ReadAll(g.get(), 0, data.size()), want);
  g->Close();
  EXPECT_TRUE(vol2->Unmount().ok());
}

TEST_F(DaxVolumeTest, SharedBlocksAreCopiedOnWrite) {
  auto a = NewFile("src");
  auto b = NewFile("dst");
  const std::string data = Pattern(4 * kBs, 8);
  ASSERT_EQ(Put(a.get(), 0, data), 4 * kBs);
  ASSERT_EQ(b->CloneRange(a.get(), 0, 0, 4 * kBs), 4 * kBs);
  ASSERT_EQ(b->Bmap(1), a->Bmap(1));
  const std::string patch = Pattern(50, 9);
  ASSERT_EQ(Put(b.get(), kBs + 100, patch), 50);
  EXPECT_NE(b->Bmap(1), a->Bmap(1));
  EXPECT_EQ(b->Bmap(2), a->Bmap(2));
  ASSERT_EQ(b->MapWrite(2 * kBs + 5, "cow", 3), 3);
  EXPECT_NE(b->Bmap(2), a->Bmap(2));
  std::string want = data;
  want.replace(kBs + 100, 50, patch);
  want.replace(2 * kBs + 5, 3, "cow");
  EXPECT_EQ(ReadAll(a.get(), 0, 4 * kBs), data);
  EXPECT_EQ(ReadAll(b.get(), 0, 4 * kBs), want);
  ASSERT_EQ(b->Truncate(3 * kBs + 10), 0);  // zeroes a shared block's tail
  EXPECT_EQ(ReadAll(a.get(), 0, 4 * kBs), data);
  ASSERT_EQ(b->Fsync(), 0);
  const FileHandle hb = b->handle();
  a->Close();
  b->Close();
  ASSERT_TRUE(vol_->Unmount().ok());
  vol_ = MountDax(dev_.get());
  ASSERT_NE(vol_, nullptr);
  auto c = OpenOrDie(vol_.get(), hb);
  EXPECT_EQ(ReadAll(c.get(), 0, 4 * kBs), want.substr(0, 3 * kBs + 10));
}

}  // namespace
}  // namespace fs
