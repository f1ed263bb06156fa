// OpenDaxDevice: the DaxMapping of an image file, coherent with bios.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "block/device.h"
#include "gtest/gtest.h"

namespace block {
namespace {

constexpr uint64_t kSize = 1 << 20;

std::string TempPath(const char* name) {
  const char* dir = getenv("TEST_TMPDIR");
  std::string path = std::string(dir ? dir : "/tmp") + "/" + name;
  unlink(path.c_str());
  return path;
}

std::unique_ptr<Device> OpenDax(const std::string& path,
                                bool read_only = false) {
  OpenOptions o;
  o.create = !read_only;
  o.create_size = kSize;
  o.read_only = read_only;
  o.backend = Backend::kSync;
  auto dev = OpenDaxDevice(path, o);
  EXPECT_TRUE(dev.ok()) << dev.status();
  return dev.ok() ? std::move(dev).value() : nullptr;
}

int64_t DoIo(Device& dev, BioOp op, uint64_t off, uint8_t* buf, size_t n) {
  Bio bio;
  bio.op = op;
  bio.offset = off;
  bio.AddSegment(buf, n);
  return SubmitAndWait(dev, &bio);
}

TEST(DaxDeviceTest, PlainDevicesHaveNoMapping) {
  OpenOptions o;
  o.create = true;
  o.create_size = kSize;
  auto dev = OpenDevice(TempPath("plain.img"), o);
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_EQ((*dev)->dax(), nullptr);
}

TEST(DaxDeviceTest, StoresAndBiosSeeEachOther) {
  auto dev = OpenDax(TempPath("coherent.img"));
  ASSERT_NE(dev, nullptr);
  DaxMapping* dax = dev->dax();
  ASSERT_NE(dax, nullptr);
  EXPECT_EQ(dax->size(), kSize);
  EXPECT_TRUE(dax->writable());
  EXPECT_FALSE(dev->limits().direct);
  memset(dax->DirectAccess(8192, 4096), 0xab, 4096);
  AlignedBuffer buf = AllocAligned(4096);
  ASSERT_EQ(DoIo(*dev, BioOp::kRead, 8192, buf.get(), 4096), 4096);
  EXPECT_EQ(buf[0], 0xab);
  EXPECT_EQ(buf[4095], 0xab);
  memset(buf.get(), 0x5c, 4096);
  ASSERT_EQ(DoIo(*dev, BioOp::kWrite, 65536, buf.get(), 4096), 4096);
  EXPECT_EQ(dax->DirectAccess(65536, 1)[0], 0x5c);
  EXPECT_EQ(dax->DirectAccess(65536 + 4095, 1)[0], 0x5c);
}

TEST(DaxDeviceTest, RangesOutsideTheDevice) {
  auto dev = OpenDax(TempPath("range.img"));
  ASSERT_NE(dev, nullptr);
  DaxMapping* dax = dev->dax();
  EXPECT_EQ(dax->DirectAccess(0, 0), nullptr);
  EXPECT_EQ(dax->DirectAccess(kSize - 1, 2), nullptr);
  EXPECT_EQ(dax->DirectAccess(kSize, 1), nullptr);
  EXPECT_NE(dax->DirectAccess(kSize - 1, 1), nullptr);
  EXPECT_EQ(dax->Flush(kSize, 1), -EINVAL);
  EXPECT_EQ(dax->Flush(0, 0), 0);
}

TEST(DaxDeviceTest, FlushedStoresAreInTheFile) {
  const std::string path = TempPath("durable.img");
  {
    auto dev = OpenDax(path);
    ASSERT_NE(dev, nullptr);
    memcpy(dev->dax()->DirectAccess(12345, 5), "hello", 5);
    EXPECT_EQ(dev->dax()->Flush(12345, 5), 0);
  }
  int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char got[5];
  ASSERT_EQ(pread(fd, got, 5, 12345), 5);
  close(fd);
  EXPECT_EQ(std::string(got, 5), "hello");
}

TEST(DaxDeviceTest, ReadOnlyMapping) {
  const std::string path = TempPath("ro.img");
  { ASSERT_NE(OpenDax(path), nullptr); }
  auto dev = OpenDax(path, /*read_only=*/true);
  ASSERT_NE(dev, nullptr);
  EXPECT_FALSE(dev->dax()->writable());
  EXPECT_EQ(dev->dax()->DirectAccess(0, 1)[0], 0);
}

TEST(DaxDeviceTest, MissingFile) {
  OpenOptions o;
  auto dev = OpenDaxDevice(TempPath("missing.img"), o);
  EXPECT_EQ(dev.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace block
