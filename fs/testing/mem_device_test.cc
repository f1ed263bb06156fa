#include "fs/testing/mem_device.h"

#include "fs/disk_io.h"
#include "gtest/gtest.h"

namespace fs {
namespace testing {
namespace {

TEST(MemDeviceTest, FlushAndFuaMakeWritesDurable) {
  MemDevice dev(1 << 20);
  ASSERT_EQ(WriteDisk(dev, 0, std::string(512, 'a')), 0);
  ASSERT_EQ(WriteDisk(dev, 512, std::string(512, 'b'), block::kBioFua), 0);
  ASSERT_EQ(FlushDisk(dev), 0);
  ASSERT_EQ(WriteDisk(dev, 1024, std::string(512, 'c')), 0);
  dev.SetFailAll(false);
  // Seeds vary what happens to the unflushed 'c'; 'a' and 'b' always stay.
  dev.Crash(3);
  EXPECT_EQ(dev.Read(0, 512), std::string(512, 'a'));
  EXPECT_EQ(dev.Read(512, 512), std::string(512, 'b'));
  EXPECT_EQ(dev.flushes(), 1u);
}

TEST(MemDeviceTest, CrashAfterWritesFreezesTheDevice) {
  MemDevice dev(1 << 20);
  dev.CrashAfterWrites(2, 5);
  ASSERT_EQ(WriteDisk(dev, 0, std::string(512, 'a'), block::kBioFua), 0);
  ASSERT_EQ(WriteDisk(dev, 512, std::string(512, 'b'), block::kBioFua), 0);
  EXPECT_FALSE(dev.frozen());
  ASSERT_EQ(WriteDisk(dev, 1024, std::string(4096, 'c'), block::kBioFua), 0);
  EXPECT_TRUE(dev.frozen());
  ASSERT_EQ(WriteDisk(dev, 8192, std::string(512, 'd'), block::kBioFua), 0);
  dev.Crash(5);
  EXPECT_FALSE(dev.frozen());
  EXPECT_EQ(dev.Read(512, 512), std::string(512, 'b'));
  EXPECT_EQ(dev.Read(8192, 512), std::string(512, '\0'));  // after the crash
}

}  // namespace
}  // namespace testing
}  // namespace fs
