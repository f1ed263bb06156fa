// Tests of ValidateBio, OpenDevice, SubmitAndWait and AllocAligned.
#include "block/device.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "base/errno.h"
#include "block/sim_device.h"
#include "gtest/gtest.h"

namespace block {
namespace {

std::string TempPath(const std::string& name) {
  const char* dir = getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

DeviceLimits DirectLimits() {
  DeviceLimits l;
  l.capacity_bytes = 1 << 20;
  l.logical_block_size = 512;
  l.dma_alignment = 512;
  l.max_io_bytes = 64 << 10;
  l.max_segments = 4;
  l.direct = true;
  return l;
}

class ValidateTest : public ::testing::Test {
 protected:
  int Check(const Bio& bio) {
    why_.clear();
    int err = ValidateBio(bio, limits_, &why_);
    if (err != 0) {
      EXPECT_FALSE(why_.empty()) << "no message for " << err;
    }
    return err;
  }
  Bio Read(uint64_t off, size_t len) {
    Bio b;
    b.op = BioOp::kRead;
    b.offset = off;
    b.AddSegment(buf_.get(), len);
    return b;
  }
  DeviceLimits limits_ = DirectLimits();
  AlignedBuffer buf_ = AllocAligned(128 << 10);
  std::string why_;
};

TEST_F(ValidateTest, AcceptsAWellFormedBio) {
  EXPECT_EQ(Check(Read(4096, 4096)), 0);
  Bio flush;
  flush.op = BioOp::kFlush;
  EXPECT_EQ(Check(flush), 0);
}

TEST_F(ValidateTest, ZeroLength) {
  Bio b;
  b.op = BioOp::kWrite;
  EXPECT_EQ(Check(b), -EINVAL);
  b.op = BioOp::kDiscard;
  EXPECT_EQ(Check(b), -EINVAL);
  EXPECT_NE(why_.find("zero length"), std::string::npos) << why_;
}

TEST_F(ValidateTest, LenMustMatchIovecs) {
  Bio b = Read(0, 4096);
  b.len = 8192;
  EXPECT_EQ(Check(b), -EINVAL);
}

TEST_F(ValidateTest, TooManySegments) {
  Bio b;
  b.op = BioOp::kRead;
  for (int i = 0; i < 5; ++i) b.AddSegment(buf_.get() + i * 512, 512);
  EXPECT_EQ(Check(b), -EINVAL);
  EXPECT_NE(why_.find("segments"), std::string::npos) << why_;
}

TEST_F(ValidateTest, OverMaxIoBytes) {
  EXPECT_EQ(Check(Read(0, 128 << 10)), -EINVAL);
  EXPECT_NE(why_.find("max_io_bytes"), std::string::npos) << why_;
}

TEST_F(ValidateTest, MisalignedOffsetLengthAndMemory) {
  EXPECT_EQ(Check(Read(100, 512)), -EINVAL);
  EXPECT_EQ(Check(Read(0, 100)), -EINVAL);
  Bio b;
  b.op = BioOp::kRead;
  b.AddSegment(buf_.get() + 8, 512);
  EXPECT_EQ(Check(b), -EINVAL);
  EXPECT_NE(why_.find("aligned"), std::string::npos) << why_;
  limits_.direct = false;  // buffered: memory alignment is free
  EXPECT_EQ(Check(b), 0);
}

TEST_F(ValidateTest, PastCapacity) {
  EXPECT_EQ(Check(Read(limits_.capacity_bytes, 512)), -EIO);
  Bio w = Read(limits_.capacity_bytes - 512, 1024);
  w.op = BioOp::kWrite;
  EXPECT_EQ(Check(w), -ENOSPC);
  Bio huge = Read(UINT64_MAX - 511, 512);  // offset + len overflows
  EXPECT_EQ(Check(huge), -EIO);
}

TEST_F(ValidateTest, ReadOnlyRejectsEveryChange) {
  limits_.read_only = true;
  Bio w = Read(0, 512);
  EXPECT_EQ(Check(w), 0);
  w.op = BioOp::kWrite;
  EXPECT_EQ(Check(w), -EROFS);
  Bio d;
  d.op = BioOp::kDiscard;
  d.len = 4096;
  EXPECT_EQ(Check(d), -EROFS);
  d.op = BioOp::kWriteZeroes;
  EXPECT_EQ(Check(d), -EROFS);
}

TEST_F(ValidateTest, FlagsOnTheWrongOp) {
  Bio r = Read(0, 512);
  r.flags = kBioFua;
  EXPECT_EQ(Check(r), -EINVAL);
  r.flags = kBioAtomic;
  EXPECT_EQ(Check(r), -EINVAL);
  Bio flush;
  flush.op = BioOp::kFlush;
  flush.len = 512;
  EXPECT_EQ(Check(flush), -EINVAL);
  Bio d;
  d.op = BioOp::kDiscard;
  d.len = 512;
  d.AddSegment(buf_.get(), 512);
  EXPECT_EQ(Check(d), -EINVAL);
}

TEST_F(ValidateTest, AtomicWritesStayInTheUnit) {
  Bio w = Read(4096, 4096);
  w.op = BioOp::kWrite;
  w.flags = kBioAtomic;
  EXPECT_EQ(Check(w), -EINVAL);  // no atomic unit at all
  limits_.atomic_write_unit_min = 512;
  limits_.atomic_write_unit_max = 8192;
  EXPECT_EQ(Check(w), 0);
  w.offset = 512;  // not naturally aligned
  EXPECT_EQ(Check(w), -EINVAL);
  Bio big = Read(0, 16384);
  big.op = BioOp::kWrite;
  big.flags = kBioAtomic;
  EXPECT_EQ(Check(big), -EINVAL);
}

TEST(AllocAlignedTest, Aligns) {
  for (size_t align : {512, 4096, 65536}) {
    AlignedBuffer b = AllocAligned(1000, align);
    ASSERT_NE(b.get(), nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.get()) % align, 0u);
  }
}

TEST(BioOpNameTest, Names) {
  EXPECT_STREQ(BioOpName(BioOp::kWriteZeroes), "write-zeroes");
  EXPECT_STREQ(BioOpName(BioOp::kFlush), "flush");
}

TEST(SubmitAndWaitTest, WaitsForTheResult) {
  SimOptions o;
  o.background = true;
  SimDevice dev(o);
  SCOPED_TRACE(dev.SeedTrace());
  AlignedBuffer buf = AllocAligned(4096);
  Bio b;
  b.op = BioOp::kRead;
  b.AddSegment(buf.get(), 4096);
  EXPECT_EQ(SubmitAndWait(dev, &b), 4096);
  Bio bad;
  bad.op = BioOp::kRead;
  bad.AddSegment(buf.get(), 100);
  EXPECT_EQ(SubmitAndWait(dev, &bad), -EINVAL);
}

TEST(OpenDeviceTest, MissingPathIsNotFound) {
  auto dev = OpenDevice(TempPath("does-not-exist.img"), OpenOptions());
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(dev.status().message().find("does-not-exist.img"),
            absl::string_view::npos);
}

TEST(OpenDeviceTest, CreatesWhenAsked) {
  const std::string path = TempPath("created.img");
  unlink(path.c_str());
  OpenOptions o;
  o.create = true;
  o.create_size = 1 << 20;
  auto dev = OpenDevice(path, o);
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_EQ((*dev)->limits().capacity_bytes, 1u << 20);
  EXPECT_FALSE((*dev)->limits().read_only);
}

TEST(OpenDeviceTest, NeitherFileNorBlockDeviceIsInvalid) {
  auto dir = OpenDevice(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp",
                        OpenOptions());
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kInvalidArgument);
  auto chr = OpenDevice("/dev/null", OpenOptions());
  ASSERT_FALSE(chr.ok());
  EXPECT_EQ(chr.status().code(), absl::StatusCode::kInvalidArgument);
}

// A path the caller may read but not write: a 0444 file for an ordinary user;
// root ignores modes, so for root a read-only sysfs attribute.
std::string ReadOnlyPath() {
  if (geteuid() != 0) {
    std::string path = TempPath("readonly.img");
    int fd = open(path.c_str(), O_CREAT | O_WRONLY, 0644);
    EXPECT_EQ(ftruncate(fd, 1 << 20), 0);
    close(fd);
    chmod(path.c_str(), 0444);
    return path;
  }
  const char* sys = "/sys/kernel/mm/transparent_hugepage/hpage_pmd_size";
  return access(sys, R_OK) == 0 ? sys : "";
}

TEST(OpenDeviceTest, ReadOnlyPathIsPermissionDenied) {
  const std::string path = ReadOnlyPath();
  if (path.empty()) GTEST_SKIP() << "no read-only file available";
  auto dev = OpenDevice(path, OpenOptions());
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), absl::StatusCode::kPermissionDenied)
      << dev.status();
  EXPECT_NE(dev.status().message().find(path), absl::string_view::npos);
}

std::string MakeImage(const std::string& name, uint64_t size, uint8_t fill) {
  const std::string path = TempPath(name);
  int fd = open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  std::string data(size, static_cast<char>(fill));
  EXPECT_EQ(write(fd, data.data(), size), static_cast<ssize_t>(size));
  close(fd);
  return path;
}

class BackendTest : public ::testing::TestWithParam<Backend> {};

// io_uring may be disabled on the machine running the tests.
#define SKIP_IF_NO_URING(dev)                                                 \
  if (!(dev).ok() && (dev).status().code() == absl::StatusCode::kUnavailable) \
  GTEST_SKIP() << (dev).status()

TEST_P(BackendTest, ReadOnlyOpenRejectsWritesAndWritesNothing) {
  const std::string path = MakeImage("ro-open.img", 1 << 20, 0xAB);
  OpenOptions o;
  o.backend = GetParam();
  o.read_only = true;
  auto dev = OpenDevice(path, o);
  SKIP_IF_NO_URING(dev);
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_TRUE((*dev)->limits().read_only);
  AlignedBuffer buf = AllocAligned(4096);
  memset(buf.get(), 0, 4096);
  Bio w;
  w.op = BioOp::kWrite;
  w.AddSegment(buf.get(), 4096);
  EXPECT_EQ(SubmitAndWait(**dev, &w), -EROFS);
  Bio r;
  r.op = BioOp::kRead;
  r.AddSegment(buf.get(), 4096);
  EXPECT_EQ(SubmitAndWait(**dev, &r), 4096);
  EXPECT_EQ(buf[0], 0xAB);
  EXPECT_EQ(buf[4095], 0xAB);
}

TEST_P(BackendTest, InvalidBiosWriteNothing) {
  const std::string path = MakeImage("invalid.img", 1 << 20, 0x11);
  OpenOptions o;
  o.backend = GetParam();
  auto dev = OpenDevice(path, o);
  SKIP_IF_NO_URING(dev);
  ASSERT_TRUE(dev.ok()) << dev.status();
  const DeviceLimits& l = (*dev)->limits();
  AlignedBuffer buf = AllocAligned(l.max_io_bytes + 4096);
  memset(buf.get(), 0x22, l.max_io_bytes + 4096);
  auto write = [&](uint64_t off, uint8_t* p, size_t len) {
    Bio b;
    b.op = BioOp::kWrite;
    b.offset = off;
    b.AddSegment(p, len);
    return SubmitAndWait(**dev, &b);
  };
  EXPECT_EQ(write(l.capacity_bytes - 512, buf.get(), 1024), -ENOSPC);
  EXPECT_EQ(write(1, buf.get(), 512), -EINVAL);
  EXPECT_EQ(write(0, buf.get(), l.max_io_bytes + 4096), -EINVAL);
  if (l.direct) {
    EXPECT_EQ(write(0, buf.get() + 1, 4096), -EINVAL);
  }
  (*dev).reset();
  int fd = open(path.c_str(), O_RDONLY);
  std::string back(1 << 20, '\0');
  ASSERT_EQ(pread(fd, back.data(), back.size(), 0), 1 << 20);
  close(fd);
  EXPECT_EQ(back, std::string(1 << 20, '\x11'));
}

TEST_P(BackendTest, ChoosesTheBackend) {
  const std::string path = MakeImage("backend.img", 1 << 20, 0);
  OpenOptions o;
  o.backend = GetParam();
  auto dev = OpenDevice(path, o);
  SKIP_IF_NO_URING(dev);
  ASSERT_TRUE(dev.ok()) << dev.status();
  const std::string name = (*dev)->name();
  if (GetParam() == Backend::kSync) {
    EXPECT_EQ(name.rfind("sync:", 0), 0u) << name;
  } else {
    EXPECT_EQ(name.rfind("uring:", 0), 0u) << name;
  }
  EXPECT_NE(name.find(path), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendTest,
                         ::testing::Values(Backend::kUring, Backend::kSync));

}  // namespace
}  // namespace block
