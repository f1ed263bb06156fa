// fsdax engine tests: DaxRw, DaxZeroRange, DaxTruncatePage, DaxMapStore and
// DaxWriteback against FakeFs on an in-memory device with a DaxMapping.
#include "iomap/dax.h"

#include <cerrno>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "iomap/testing/fake_fs.h"
#include "iomap/testing/mem_device.h"

namespace iomap {
namespace {

using testing::FakeFs;
using testing::MemDevice;
using Type = Iomap::Type;

constexpr unsigned kBits = 12;
constexpr int64_t kBs = 1 << kBits;
constexpr uint64_t kCap = 1 << 22;
constexpr uint64_t kCowArea = 1 << 21;  // where CowOps puts COW blocks

// A DaxMapping over MemDevice's memory that counts (and can fail) flushes.
class MemDax : public block::DaxMapping {
 public:
  MemDax(uint8_t* base, uint64_t size) : base_(base), size_(size) {}
  uint8_t* DirectAccess(uint64_t off, uint64_t len) override {
    if (len == 0 || off > size_ || len > size_ - off) return nullptr;
    return base_ + off;
  }
  int Flush(uint64_t off, uint64_t len) override {
    if (flush_error != 0) return flush_error;
    flushes.push_back({off, len});
    return 0;
  }
  uint64_t size() const override { return size_; }
  bool writable() const override { return true; }

  std::vector<std::pair<uint64_t, uint64_t>> flushes;
  int flush_error = 0;

 private:
  uint8_t* const base_;
  const uint64_t size_;
};

class DaxMemDevice : public MemDevice {
 public:
  explicit DaxMemDevice(uint64_t cap)
      : MemDevice(cap, /*async=*/false), map_(data(), cap) {}
  block::DaxMapping* dax() override { return &map_; }
  MemDax& map() { return map_; }

 private:
  MemDax map_;
};

// FakeFs, but its COW destinations get real blocks (as XFS allocates
// written COW staging blocks for DAX) at kCowArea + file offset.
class CowOps : public IomapOps {
 public:
  explicit CowOps(FakeFs* fs) : fs_(fs) {}
  int IomapBegin(Inode* inode, int64_t pos, int64_t len, unsigned flags,
                 Iomap* iomap, Iomap* srcmap) override {
    flags_seen.push_back(flags);
    int r = fs_->IomapBegin(inode, pos, len, flags, iomap, srcmap);
    if (r == 0 && (iomap->flags & kShared)) {
      iomap->type = Type::kMapped;
      iomap->addr = kCowArea + static_cast<uint64_t>(iomap->offset);
    }
    return r;
  }
  std::vector<unsigned> flags_seen;

 private:
  FakeFs* fs_;
};

class DaxTest : public ::testing::Test {
 protected:
  DaxTest() : dev_(kCap), fs_(&dev_, kBits, false), ops_(&fs_) {
    fs_.delalloc_on_write = false;
  }
  Inode* inode() { return fs_.inode(); }
  uint8_t* Dev(uint64_t off) { return dev_.data() + off; }
  int64_t Rw(bool write, int64_t pos, size_t len, uint8_t* buf) {
    DaxRequest req;
    req.write = write;
    req.pos = pos;
    req.len = len;
    req.buf = buf;
    return DaxRw(inode(), req, ops_, &dirty_);
  }

  DaxMemDevice dev_;
  FakeFs fs_;
  CowOps ops_;
  DaxDirty dirty_;
};

TEST_F(DaxTest, ReadZeroFillsHolesAndUnwrittenAndStopsAtEof) {
  dev_.Fill(0, kBs, 0x11);
  dev_.Fill(kBs, kBs, 0x22);
  fs_.SetExtent(0, kBs, Type::kMapped, 0);
  fs_.SetExtent(kBs, kBs, Type::kUnwritten, kBs);
  inode()->i_size_write(3 * kBs + 100);
  std::vector<uint8_t> buf(4 * kBs, 0xff);
  EXPECT_EQ(Rw(false, 0, buf.size(), buf.data()), 3 * kBs + 100);
  EXPECT_EQ(buf[0], 0x11);
  EXPECT_EQ(buf[kBs - 1], 0x11);
  EXPECT_EQ(buf[kBs], 0);
  EXPECT_EQ(buf[3 * kBs + 99], 0);
  EXPECT_EQ(buf[3 * kBs + 100], 0xff);  // past EOF: untouched
  EXPECT_EQ(Rw(false, 3 * kBs + 100, 10, buf.data()), 0);
  for (unsigned f : ops_.flags_seen) EXPECT_EQ(f, kDax);
}

TEST_F(DaxTest, WriteStoresIntoTheMappingAndRecordsDirtyRanges) {
  fs_.SetExtent(0, 2 * kBs, Type::kMapped, 8 * kBs);
  const char msg[] = "dax store";
  EXPECT_EQ(Rw(true, kBs - 3, sizeof(msg), (uint8_t*)msg), sizeof(msg));
  EXPECT_EQ(memcmp(Dev(9 * kBs - 3), msg, sizeof(msg)), 0);
  EXPECT_EQ(dirty_.bytes(), sizeof(msg));
  EXPECT_EQ(inode()->i_size_read(), 0);  // the filesystem's job
  ASSERT_EQ(DaxWriteback(&dirty_), 0);
  ASSERT_EQ(dev_.map().flushes.size(), 1u);
  EXPECT_EQ(dev_.map().flushes[0].first, 9 * kBs - 3);
  EXPECT_EQ(dev_.map().flushes[0].second, sizeof(msg));
  EXPECT_TRUE(dirty_.empty());
  EXPECT_EQ(ops_.flags_seen[0], kDax | kWrite);
}

TEST_F(DaxTest, WriteNeedsAllocatedBlocks) {
  fs_.SetExtent(0, kBs, Type::kMapped, 0);
  std::vector<uint8_t> buf(2 * kBs, 7);
  // Into a hole: nothing the engine can store to.
  EXPECT_EQ(Rw(true, kBs, 10, buf.data()), -EIO);
  // Progress first: the bytes done.
  EXPECT_EQ(Rw(true, 0, buf.size(), buf.data()), kBs);
  fs_.SetExtent(kBs, kBs, Type::kUnwritten, kBs);
  EXPECT_EQ(Rw(true, kBs, 10, buf.data()), -EIO);
}

TEST_F(DaxTest, SharedBlocksAreCopiedAroundTheWrite) {
  dev_.Fill(0, 2 * kBs, 0xaa);
  fs_.SetExtent(0, 2 * kBs, Type::kMapped, 0, kShared);
  std::vector<uint8_t> data(100, 0x55);
  EXPECT_EQ(Rw(true, kBs + 10, data.size(), data.data()), 100);
  const uint8_t* cow = Dev(kCowArea + kBs);
  EXPECT_EQ(cow[0], 0xaa);
  EXPECT_EQ(cow[9], 0xaa);
  EXPECT_EQ(cow[10], 0x55);
  EXPECT_EQ(cow[109], 0x55);
  EXPECT_EQ(cow[110], 0xaa);
  EXPECT_EQ(cow[kBs - 1], 0xaa);
  EXPECT_EQ(*Dev(kBs + 10), 0xaa);  // the shared blocks are unchanged
  EXPECT_EQ(dirty_.bytes(), static_cast<uint64_t>(kBs));
}

TEST_F(DaxTest, ZeroRangeSkipsHolesAndUnwritten) {
  dev_.Fill(0, 3 * kBs, 0x33);
  fs_.SetExtent(0, kBs, Type::kMapped, 0);
  fs_.SetExtent(kBs, kBs, Type::kUnwritten, kBs);
  bool did_zero = false;
  EXPECT_EQ(DaxZeroRange(inode(), 100, 3 * kBs, &did_zero, ops_, &dirty_), 0);
  EXPECT_TRUE(did_zero);
  EXPECT_EQ(*Dev(99), 0x33);
  EXPECT_EQ(*Dev(100), 0);
  EXPECT_EQ(*Dev(kBs - 1), 0);
  EXPECT_EQ(*Dev(kBs), 0x33);  // unwritten: reads as zero already
  EXPECT_EQ(dirty_.bytes(), static_cast<uint64_t>(kBs - 100));
  for (unsigned f : ops_.flags_seen) EXPECT_EQ(f, kDax | kZero);
  did_zero = false;
  EXPECT_EQ(DaxZeroRange(inode(), kBs, kBs, &did_zero, ops_, &dirty_), 0);
  EXPECT_FALSE(did_zero);
}

TEST_F(DaxTest, TruncatePageZeroesTheBlockTail) {
  dev_.Fill(0, 2 * kBs, 0x44);
  fs_.SetExtent(0, 2 * kBs, Type::kMapped, 0);
  bool did_zero = false;
  EXPECT_EQ(DaxTruncatePage(inode(), kBs, &did_zero, ops_, &dirty_), 0);
  EXPECT_FALSE(did_zero);
  EXPECT_EQ(DaxTruncatePage(inode(), 1000, &did_zero, ops_, &dirty_), 0);
  EXPECT_TRUE(did_zero);
  EXPECT_EQ(*Dev(999), 0x44);
  EXPECT_EQ(*Dev(1000), 0);
  EXPECT_EQ(*Dev(kBs - 1), 0);
  EXPECT_EQ(*Dev(kBs), 0x44);
}

TEST_F(DaxTest, MapStoreFaultsPastEofAndStoresWithin) {
  fs_.SetExtent(0, 4 * kBs, Type::kMapped, 0);
  inode()->i_size_write(kBs + 10);
  std::vector<uint8_t> data(3 * kBs, 0x66);
  EXPECT_EQ(DaxMapStore(inode(), 2 * kBs, data.data(), 10, ops_, &dirty_),
            -EFAULT);
  // The EOF page is stored whole; the next page faults: short.
  EXPECT_EQ(DaxMapStore(inode(), 100, data.data(), data.size(), ops_, &dirty_),
            2 * kBs - 100);
  EXPECT_EQ(*Dev(100), 0x66);
  EXPECT_EQ(*Dev(2 * kBs - 1), 0x66);
  EXPECT_EQ(*Dev(2 * kBs), 0);
  EXPECT_EQ(ops_.flags_seen[0], kDax | kFault | kWrite);
  EXPECT_EQ(inode()->i_size_read(), kBs + 10);
}

TEST_F(DaxTest, DeviceWithoutMappingIsNotSupported) {
  MemDevice plain(kCap, false);
  FakeFs fs(&plain, kBits, false);
  fs.SetExtent(0, kBs, Type::kMapped, 0);
  fs.inode()->i_size_write(kBs);
  uint8_t buf[16];
  DaxRequest req;
  req.len = sizeof(buf);
  req.buf = buf;
  EXPECT_EQ(DaxRw(fs.inode(), req, fs, &dirty_), -EOPNOTSUPP);
  req.write = true;
  EXPECT_EQ(DaxRw(fs.inode(), req, fs, &dirty_), -EOPNOTSUPP);
}

TEST_F(DaxTest, WritebackErrorKeepsTheRanges) {
  fs_.SetExtent(0, kBs, Type::kMapped, 0);
  uint8_t b[8] = {1};
  ASSERT_EQ(Rw(true, 0, 8, b), 8);
  dev_.map().flush_error = -EIO;
  EXPECT_EQ(DaxWriteback(&dirty_), -EIO);
  EXPECT_EQ(dirty_.bytes(), 8u);
  dev_.map().flush_error = 0;
  EXPECT_EQ(DaxWriteback(&dirty_), 0);
  EXPECT_TRUE(dirty_.empty());
}

TEST(DaxDirtyTest, MergesTouchingRangesPerMapping) {
  MemDax a(nullptr, 1 << 20), b(nullptr, 1 << 20);
  DaxDirty d;
  d.Add(&a, 100, 10);
  d.Add(&a, 200, 10);
  d.Add(&a, 110, 90);  // joins both
  d.Add(&b, 100, 5);
  d.Add(&a, 150, 10);  // inside
  std::vector<DaxDirty::Range> r = d.Take();
  ASSERT_EQ(r.size(), 2u);
  bool a_first = r[0].dax == &a;
  const DaxDirty::Range& ra = a_first ? r[0] : r[1];
  const DaxDirty::Range& rb = a_first ? r[1] : r[0];
  EXPECT_EQ(ra.offset, 100u);
  EXPECT_EQ(ra.len, 110u);
  EXPECT_EQ(rb.offset, 100u);
  EXPECT_EQ(rb.len, 5u);
  EXPECT_TRUE(d.empty());
}

}  // namespace
}  // namespace iomap
