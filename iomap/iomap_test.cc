#include "iomap/iomap.h"

#include "gtest/gtest.h"
#include "iomap/pagecache.h"

namespace iomap {
namespace {

TEST(IomapTest, ZeroedIomapIsAHole) {
  Iomap map;
  EXPECT_EQ(map.type, Iomap::Type::kHole);
  EXPECT_EQ(map.addr, kNullAddr);
  EXPECT_EQ(map.length, 0u);
  EXPECT_STREQ(IomapTypeName(Iomap::Type::kUnwritten), "UNWRITTEN");
}

TEST(IomapTest, TypesKeepKernelValues) {
  EXPECT_EQ(static_cast<int>(Iomap::Type::kHole), 0);
  EXPECT_EQ(static_cast<int>(Iomap::Type::kDelalloc), 1);
  EXPECT_EQ(static_cast<int>(Iomap::Type::kMapped), 2);
  EXPECT_EQ(static_cast<int>(Iomap::Type::kUnwritten), 3);
  EXPECT_EQ(static_cast<int>(Iomap::Type::kInline), 4);
}

TEST(IomapTest, SectorAndDeviceAddr) {
  Iomap map;
  map.type = Iomap::Type::kMapped;
  map.offset = 8192;
  map.length = 4096;
  map.addr = 1 << 20;
  EXPECT_EQ(map.DeviceAddr(8192 + 1024), (1u << 20) + 1024);
  EXPECT_EQ(map.Sector(8192 + 1024), ((1u << 20) + 1024) >> 9);
  EXPECT_TRUE(map.Contains(8192));
  EXPECT_FALSE(map.Contains(8192 + 4096));
}

TEST(IomapTest, FlagsAreDistinct) {
  const uint32_t f[] = {kNew,         kDirty,     kShared,    kMerged,
                        kBoundary,    kAnonWrite, kAtomicBio, kPrivate,
                        kSizeChanged, kStale};
  uint32_t all = 0;
  for (uint32_t x : f) {
    EXPECT_EQ(all & x, 0u);
    all |= x;
  }
  const unsigned o[] = {kWrite,  kZero,   kReport,        kFault,
                        kDirect, kNowait, kOverwriteOnly, kUnshare,
                        kDax,    kAtomic, kDontcache};
  unsigned ops = 0;
  for (unsigned x : o) {
    EXPECT_EQ(ops & x, 0u);
    ops |= x;
  }
}

class TestInode : public Inode {
 public:
  TestInode() : Inode(7, 10, nullptr) {}
};

TEST(IomapTest, InodeOwnsMappingAndSize) {
  TestInode inode;
  EXPECT_EQ(inode.ino(), 7u);
  EXPECT_EQ(inode.block_size(), 1024u);
  EXPECT_EQ(inode.mapping()->host(), &inode);
  EXPECT_FALSE(inode.mapping()->LargeFolios());
  inode.SetLargeFolios();
  EXPECT_TRUE(inode.mapping()->LargeFolios());
  inode.i_size_write(12345);
  EXPECT_EQ(inode.i_size_read(), 12345);
  base::WriterLock l(&inode.locks().rwsem);
  inode.locks().rwsem.AssertHeld();
}

}  // namespace
}  // namespace iomap
