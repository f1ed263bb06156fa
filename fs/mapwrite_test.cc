// OpenFile::MapWrite (stores through a shared writable mapping) and the
// zeroing of post-EOF bytes they leave in the cache.
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "fs/file.h"
#include "fs/testing/mem_device.h"
#include "fs/testing/volume_helpers.h"
#include "fs/volume.h"
#include "gtest/gtest.h"
#include "iomap/folio.h"
#include "iomap/pagecache.h"

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

class MapWriteTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  uint32_t bs() const { return GetParam(); }
};

// Stores over a sparse file: holes get delalloc reservations at fault time,
// the data is visible to Read at once and durable after Fsync + remount.
TEST_P(MapWriteTest, StoresAreReadAndSurviveRemount) {
  MemDevice dev(32ull << 20);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev, bs());
  ASSERT_NE(vol, nullptr);
  FileHandle h = CreateFile(vol.get(), "m");
  const std::string head = Pattern(5000, 1), data = Pattern(20000, 2);
  {
    std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
    ASSERT_EQ(f->Write(0, head.data(), head.size()), 5000);
    ASSERT_EQ(f->Truncate(1 << 20), 0);  // the rest is a hole
    ASSERT_EQ(f->Fsync(), 0);
    EXPECT_EQ(vol->ReservedBlocks(h.ino), 0u);
    ASSERT_EQ(f->MapWrite(3000, data.data(), data.size()), 20000);
    EXPECT_EQ(f->size(), 1 << 20);  // never changes the size
    // Every page touched is dirtied whole: its hole blocks are reserved.
    const uint64_t first_hole = (5000 + bs() - 1) / bs();
    const uint64_t end_page = (23000 + 4095) / 4096 * 4096;
    const uint64_t end_block = (end_page + bs() - 1) / bs();
    EXPECT_EQ(vol->ReservedBlocks(h.ino),
              end_block > first_hole ? end_block - first_hole : 0);
    ExpectClean(vol.get());
    std::string want = head + std::string((1 << 20) - 5000, '\0');
    want.replace(3000, data.size(), data);
    EXPECT_EQ(ReadAll(f.get(), 0, 1 << 20), want);
    ASSERT_EQ(f->Fsync(), 0);
    EXPECT_EQ(vol->ReservedBlocks(), 0u);
    ExpectClean(vol.get());
  }
  ASSERT_TRUE(vol->Unmount().ok());
  vol.reset();
  absl::StatusOr<std::unique_ptr<Volume>> again = Volume::Mount(dev);
  ASSERT_TRUE(again.ok()) << again.status();
  std::unique_ptr<OpenFile> f = OpenOrDie(again->get(), h);
  EXPECT_EQ(ReadAll(f.get(), 3000, data.size()), data);
  EXPECT_EQ(ReadAll(f.get(), 0, 3000), head.substr(0, 3000));
  f->Close();
  ExpectClean(again->get());
  EXPECT_TRUE(FsckVolume(dev).clean());
}

// A page starting at or past EOF is not mapped (SIGBUS: -EFAULT); the bytes
// of the EOF page past EOF are stored but never read back, even after the
// size grows by truncate, write or fallocate, or after writeback.
TEST_P(MapWriteTest, PastEofFaultsAndTailStaysHidden) {
  MemDevice dev(32ull << 20);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev, bs());
  ASSERT_NE(vol, nullptr);
  FileHandle h = CreateFile(vol.get(), "e");
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  const std::string x = Pattern(9000, 3);
  EXPECT_EQ(f->MapWrite(0, x.data(), 10), -EFAULT);  // empty file
  EXPECT_EQ(f->MapWrite(-1, x.data(), 10), -EINVAL);
  ASSERT_EQ(f->Write(0, x.data(), 5000), 5000);
  EXPECT_EQ(f->MapWrite(8192, x.data(), 10), -EFAULT);
  // Page 1 starts below EOF (4096 < 5000): the whole store succeeds.
  ASSERT_EQ(f->MapWrite(4000, x.data(), 2000), 2000);
  // Page 2 lies past EOF: a store running into it is short.
  EXPECT_EQ(f->MapWrite(6000, x.data(), 4000), 8192 - 6000);
  EXPECT_EQ(f->size(), 5000);
  std::string want = x.substr(0, 5000);
  want.replace(4000, 1000, x.substr(0, 1000));
  EXPECT_EQ(ReadAll(f.get(), 0, 9000), want);
  // Truncate up: the stored tail reads as zeros.
  ASSERT_EQ(f->Truncate(7000), 0);
  EXPECT_EQ(ReadAll(f.get(), 5000, 2000), std::string(2000, '\0'));
  // Again with a write past EOF and with fallocate.
  ASSERT_EQ(f->MapWrite(6500, x.data(), 1000), 1000);
  ASSERT_EQ(f->Write(7500, x.data(), 10), 10);
  EXPECT_EQ(ReadAll(f.get(), 7000, 500), std::string(500, '\0'));
  ASSERT_EQ(f->MapWrite(7000, x.data(), 1000), 1000);
  ASSERT_EQ(f->Fallocate(0, 7510, 100), 0);
  EXPECT_EQ(ReadAll(f.get(), 7510, 100), std::string(100, '\0'));
  // Writeback zeroes what is past EOF: after a remount it is still hidden.
  ASSERT_EQ(f->MapWrite(7600, x.data(), 500), 500);
  ASSERT_EQ(f->Fsync(), 0);
  f->Close();
  ExpectClean(vol.get());
  ASSERT_TRUE(vol->Unmount().ok());
  vol.reset();
  absl::StatusOr<std::unique_ptr<Volume>> again = Volume::Mount(dev);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ((*again)->Truncate(h, 8192), 0);
  f = OpenOrDie(again->get(), h);
  EXPECT_EQ(ReadAll(f.get(), 7610, 8192 - 7610),
            std::string(8192 - 7610, '\0'));
  f->Close();
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, MapWriteTest,
                         ::testing::Values(512u, 1024u, 4096u, 65536u));

// Faulting a hole in on a full volume cannot reserve: -ENOSPC, and nothing
// is left reserved or dirty for it.
bool EofFolioWriteMapped(OpenFile* f) {
  iomap::Folio* folio = nullptr;
  if (f->inode()->mapping()->GetFolio(0, iomap::kFgpLock, 0, &folio) < 0)
    return false;
  const bool mapped = folio->WriteMapped();
  folio->Unlock();
  folio->Put();
  return mapped;
}

// fallocate growing i_size (not a write or truncate) write-protects the
// EOF page again (pagecache_isize_extended): with 1 KiB blocks the page
// holding the old EOF now covers holes inside the file, so the next store
// there must fault and reserve.
TEST(MapWriteSizeTest, FallocateExtendWriteProtectsEofPage) {
  MemDevice dev(32ull << 20);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev, 1024);
  ASSERT_NE(vol, nullptr);
  std::unique_ptr<OpenFile> f =
      OpenOrDie(vol.get(), CreateFile(vol.get(), "m"));
  const std::string data = Pattern(1000, 3);
  ASSERT_EQ(f->Write(0, data.data(), data.size()), 1000);
  ASSERT_EQ(f->MapWrite(0, "xy", 2), 2);
  ASSERT_TRUE(EofFolioWriteMapped(f.get()));
  ASSERT_EQ(f->Fallocate(0, 3072, 1024), 0);  // blocks 1 and 2 stay holes
  EXPECT_EQ(f->size(), 4096);
  EXPECT_FALSE(EofFolioWriteMapped(f.get()));
  EXPECT_EQ(ReadAll(f.get(), 1000, 3096), std::string(3096, '\0'));
  ASSERT_EQ(f->MapWrite(1024, "z", 1), 1);
  ExpectClean(vol.get());
}

TEST(MapWriteEnospcTest, FaultOnFullVolume) {
  MemDevice dev(2ull << 20);
  std::unique_ptr<Volume> vol = FormatAndMount(&dev, 4096);
  ASSERT_NE(vol, nullptr);
  FileHandle h = CreateFile(vol.get(), "a");
  std::unique_ptr<OpenFile> f = OpenOrDie(vol.get(), h);
  ASSERT_EQ(f->Truncate(64 << 20), 0);
  const std::string page = Pattern(4096, 4);
  int64_t pos = 0, r = 0;
  while ((r = f->MapWrite(pos, page.data(), page.size())) == 4096) pos += r;
  EXPECT_EQ(r, -ENOSPC);
  EXPECT_GT(pos, 0);
  ExpectClean(vol.get());
  ASSERT_EQ(f->Fsync(), 0);
  EXPECT_EQ(vol->ReservedBlocks(), 0u);
  EXPECT_EQ(ReadAll(f.get(), pos - 4096, 4096), page);
  EXPECT_EQ(ReadAll(f.get(), pos, 4096), std::string(4096, '\0'));
  ExpectClean(vol.get());
}

}  // namespace
}  // namespace fs
