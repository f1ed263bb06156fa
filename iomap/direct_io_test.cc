// Direct I/O against the fake filesystem: reads of every mapping type and
// EOF, writes to mapped, unwritten, new and shared mappings (sub-block
// zeroing, completion flags), alignment, cache flush and invalidation,
// NOWAIT, OVERWRITE_ONLY, PARTIAL/done_before, ATOMIC, -ENOTBLK, errors
// and bios kept in flight together.
#include "iomap/direct_io.h"

#include <cerrno>
#include <cstring>
#include <deque>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "block/device.h"
#include "gtest/gtest.h"
#include "iomap/buffered_io.h"
#include "iomap/testing/fake_fs.h"
#include "iomap/testing/mem_device.h"

namespace iomap {
namespace {

using testing::FakeFs;
using testing::MemDevice;

constexpr uint64_t kDev = 1 << 20;  // device byte of file offset 0
constexpr int64_t kBs = 4096;

uint8_t Pat(int64_t i, int seed) {
  return static_cast<uint8_t>((i * 7 + seed) % 251 + 1);
}

// Records EndIo calls.
class RecordingDioOps : public IomapDioOps {
 public:
  struct Call {
    int64_t pos, size;
    int error;
    unsigned flags;
  };
  int EndIo(Inode*, int64_t pos, int64_t size, int error,
            unsigned flags) override {
    calls.push_back({pos, size, error, flags});
    return error;
  }
  std::vector<Call> calls;
};

// Wraps the fake fs: adds flags to every mapping, or fails after N calls.
class WrapOps : public IomapOps {
 public:
  explicit WrapOps(FakeFs* fs) : fs_(fs) {}
  int IomapBegin(Inode* inode, int64_t pos, int64_t len, unsigned flags,
                 Iomap* iomap, Iomap* srcmap) override {
    if (fail_after >= 0 && calls++ >= fail_after) return fail_error;
    int r = fs_->IomapBegin(inode, pos, len, flags, iomap, srcmap);
    iomap->flags |= add_flags;
    return r;
  }
  uint32_t add_flags = 0;
  int fail_after = -1;
  int fail_error = -ENOTBLK;
  int calls = 0;

 private:
  FakeFs* fs_;
};

class DirectIoTest : public ::testing::Test {
 protected:
  DirectIoTest()
      : dev_(16 << 20, /*async=*/true), fs_(&dev_, 12, true, &cache_) {
    ResetDioStats();
  }

  Inode* inode() { return fs_.inode(); }

  block::AlignedBuffer Buf(size_t len, int seed) {
    block::AlignedBuffer b = block::AllocAligned(len);
    for (size_t i = 0; i < len; i++) b[i] = Pat(static_cast<int64_t>(i), seed);
    return b;
  }

  int64_t Dio(bool write, int64_t pos, size_t len, uint8_t* buf,
              unsigned flags = 0, unsigned dio_flags = 0,
              IomapOps* ops = nullptr, size_t fault_at = SIZE_MAX,
              size_t done_before = 0) {
    DioRequest req;
    req.write = write;
    req.pos = pos;
    req.len = len;
    req.buf = buf;
    req.flags = flags;
    req.dio_flags = dio_flags;
    req.fault_at = fault_at;
    req.done_before = done_before;
    base::ReaderLock l(&inode()->locks().rwsem);
    return DioRw(inode(), req, ops != nullptr ? *ops : fs_, &dops_);
  }

  std::vector<uint8_t> BufferedRead(int64_t pos, size_t len) {
    std::vector<uint8_t> out(len);
    base::ReaderLock l(&inode()->locks().rwsem);
    int64_t n = FileBufferedRead(inode(), pos, len, out.data(), 0, fs_);
    out.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return out;
  }

  PageCache cache_;
  MemDevice dev_;
  FakeFs fs_;
  RecordingDioOps dops_;
};

TEST_F(DirectIoTest, ReadsMappedHoleAndUnwritten) {
  dev_.Fill(kDev, 3 * kBs, 0xAB);
  dev_.Fill(kDev + 2 * kBs, kBs, 0xCD);  // stale bytes under unwritten
  fs_.SetExtent(0, kBs, Iomap::Type::kMapped, kDev);
  fs_.SetExtent(2 * kBs, kBs, Iomap::Type::kUnwritten, kDev + 2 * kBs);
  inode()->i_size_write(3 * kBs);
  block::AlignedBuffer buf = Buf(3 * kBs, 1);
  ASSERT_EQ(Dio(false, 0, 3 * kBs, buf.get()), 3 * kBs);
  for (int64_t i = 0; i < 3 * kBs; i++)
    ASSERT_EQ(buf[i], i < kBs ? 0xAB : 0) << i;
  EXPECT_EQ(GetDioStats().zeroed_bytes, static_cast<uint64_t>(2 * kBs));
  ASSERT_EQ(dops_.calls.size(), 1u);
  EXPECT_EQ(dops_.calls[0].size, 3 * kBs);
  EXPECT_EQ(dops_.calls[0].flags, 0u);
  for (const auto& b : fs_.begins()) EXPECT_EQ(b.flags, kDirect);
}

TEST_F(DirectIoTest, ReadStopsAtEof) {
  fs_.SetExtent(0, 4 * kBs, Iomap::Type::kMapped, kDev);
  dev_.Fill(kDev, 4 * kBs, 0x11);
  inode()->i_size_write(5000);
  block::AlignedBuffer buf = Buf(4 * kBs, 1);
  EXPECT_EQ(Dio(false, 0, 4 * kBs, buf.get()), 5000);
  EXPECT_EQ(buf[4999], 0x11);
  EXPECT_EQ(Dio(false, 8192, kBs, buf.get()), 0);  // at/after EOF
  EXPECT_EQ(Dio(false, 0, 0, buf.get()), 0);
}

TEST_F(DirectIoTest, MisalignedIsEinval) {
  fs_.SetExtent(0, 4 * kBs, Iomap::Type::kMapped, kDev);
  inode()->i_size_write(4 * kBs);
  block::AlignedBuffer buf = Buf(2 * kBs, 1);
  EXPECT_EQ(Dio(false, 100, 512, buf.get()), -EINVAL);
  EXPECT_EQ(Dio(true, 0, 100, buf.get()), -EINVAL);
  EXPECT_EQ(Dio(true, 0, 512, buf.get() + 8), -EINVAL);  // DMA alignment
  EXPECT_EQ(Dio(true, 512, 512, buf.get(), 0, kDioFsblockAligned), -EINVAL);
  EXPECT_EQ(Dio(true, 512, 512, buf.get()), 512);  // sector-aligned is fine
  EXPECT_TRUE(fs_.begins().size() == 1u);
}

TEST_F(DirectIoTest, WriteMappedInPlace) {
  fs_.SetExtent(0, 4 * kBs, Iomap::Type::kMapped, kDev);
  inode()->i_size_write(4 * kBs);
  block::AlignedBuffer buf = Buf(2 * kBs, 5);
  ASSERT_EQ(Dio(true, kBs, 2 * kBs, buf.get()), 2 * kBs);
  EXPECT_EQ(std::memcmp(dev_.data() + kDev + kBs, buf.get(), 2 * kBs), 0);
  ASSERT_EQ(dops_.calls.size(), 1u);
  EXPECT_EQ(dops_.calls[0].pos, kBs);
  EXPECT_EQ(dops_.calls[0].size, 2 * kBs);
  EXPECT_EQ(dops_.calls[0].flags, 0u);
  EXPECT_EQ(GetDioStats().zero_bios, 0u);
  for (const auto& b : fs_.begins()) EXPECT_EQ(b.flags, kDirect | kWrite);
}

TEST_F(DirectIoTest, UnwrittenWriteZeroesSubBlockEdges) {
  dev_.Fill(kDev, 2 * kBs, 0xEE);  // stale data
  fs_.SetExtent(0, 2 * kBs, Iomap::Type::kUnwritten, kDev);
  inode()->i_size_write(2 * kBs);
  block::AlignedBuffer buf = Buf(1024, 9);
  ASSERT_EQ(Dio(true, 1024, 1024, buf.get()), 1024);
  const uint8_t* d = dev_.data() + kDev;
  for (int64_t i = 0; i < kBs; i++) {
    if (i >= 1024 && i < 2048)
      ASSERT_EQ(d[i], buf[i - 1024]) << i;
    else
      ASSERT_EQ(d[i], 0) << i;
  }
  EXPECT_EQ(d[kBs], 0xEE);  // the next block is not touched
  EXPECT_EQ(GetDioStats().zero_bios, 2u);
  ASSERT_EQ(dops_.calls.size(), 1u);
  EXPECT_EQ(dops_.calls[0].flags, IomapDioOps::kDioUnwritten);
}

TEST_F(DirectIoTest, NewMappingZeroesEdgesAndSharedMarksCow) {
  dev_.Fill(kDev, kBs, 0xEE);
  fs_.SetExtent(0, kBs, Iomap::Type::kMapped, kDev);
  inode()->i_size_write(kBs);
  WrapOps ops(&fs_);
  ops.add_flags = kNew | kShared;
  block::AlignedBuffer buf = Buf(512, 3);
  ASSERT_EQ(Dio(true, 512, 512, buf.get(), 0, 0, &ops), 512);
  EXPECT_EQ(dev_.data()[kDev], 0);
  EXPECT_EQ(dev_.data()[kDev + 1024], 0);
  EXPECT_EQ(dev_.data()[kDev + 512], buf[0]);
  ASSERT_EQ(dops_.calls.size(), 1u);
  EXPECT_EQ(dops_.calls[0].flags, IomapDioOps::kDioCow);
}

TEST_F(DirectIoTest, ExtendingWriteGrowsSizeAndZeroesTail) {
  dev_.Fill(kDev, 4 * kBs, 0xEE);
  fs_.SetExtent(0, 4 * kBs, Iomap::Type::kMapped, kDev);
  inode()->i_size_write(kBs);
  block::AlignedBuffer buf = Buf(kBs + 512, 4);
  ASSERT_EQ(Dio(true, kBs, kBs + 512, buf.get()), kBs + 512);
  EXPECT_EQ(inode()->i_size_read(), 2 * kBs + 512);
  // The tail of the new EOF block is zeroed (mapped, but past EOF).
  EXPECT_EQ(dev_.data()[kDev + 2 * kBs + 512], 0);
  EXPECT_EQ(dev_.data()[kDev + 3 * kBs - 1], 0);
  EXPECT_EQ(dev_.data()[kDev + 3 * kBs], 0xEE);
}

TEST_F(DirectIoTest, HoleAndDelallocWritesAreEio) {
  inode()->i_size_write(4 * kBs);
  fs_.delalloc_on_write = false;
  block::AlignedBuffer buf = Buf(kBs, 1);
  EXPECT_EQ(Dio(true, 0, kBs, buf.get()), -EIO);
  fs_.SetExtent(0, kBs, Iomap::Type::kDelalloc);
  EXPECT_EQ(Dio(false, 0, kBs, buf.get()), -EIO);
  ASSERT_EQ(dops_.calls.size(), 2u);
  EXPECT_EQ(dops_.calls[1].error, -EIO);
}

TEST_F(DirectIoTest, WriteInvalidatesCachedFoliosBeforeAndAfter) {
  dev_.Fill(kDev, 4 * kBs, 0x22);
  fs_.SetExtent(0, 4 * kBs, Iomap::Type::kMapped, kDev);
  inode()->i_size_write(4 * kBs);
  ASSERT_EQ(BufferedRead(0, 4 * kBs)[0], 0x22);  // cached now
  ASSERT_GT(inode()->mapping()->nr_folios(), 0u);
  block::AlignedBuffer buf = Buf(4 * kBs, 6);
  // NOWAIT must not block on cached pages.
  EXPECT_EQ(Dio(true, 0, kBs, buf.get(), kNowait), -EAGAIN);
  ASSERT_EQ(Dio(true, 0, 4 * kBs, buf.get()), 4 * kBs);
  EXPECT_EQ(inode()->mapping()->nr_folios(), 0u);
  std::vector<uint8_t> again = BufferedRead(0, 4 * kBs);
  ASSERT_EQ(again.size(), static_cast<size_t>(4 * kBs));
  EXPECT_EQ(std::memcmp(again.data(), buf.get(), 4 * kBs), 0);
}

TEST_F(DirectIoTest, DirtyCacheThatCannotBeFlushedFallsBack) {
  fs_.SetExtent(0, 4 * kBs, Iomap::Type::kMapped, kDev);
  inode()->i_size_write(4 * kBs);
  std::vector<uint8_t> data(kBs, 0x5A);
  {
    BufferSource src(data.data(), data.size());
    base::WriterLock l(&inode()->locks().rwsem);
    ASSERT_EQ(FileBufferedWrite(inode(), 0, &src, 0, fs_, &fs_), kBs);
  }
  block::AlignedBuffer buf = Buf(kBs, 1);
  // No writeback engine installed: the flush fails, so the write asks for
  // the buffered fallback; a NOWAIT read refuses dirty cache.
  EXPECT_EQ(Dio(true, 0, kBs, buf.get()), -ENOTBLK);
  EXPECT_EQ(Dio(true, 0, kBs, buf.get(), kAtomic), -EAGAIN);
  EXPECT_EQ(Dio(false, 0, kBs, buf.get(), kNowait), -EAGAIN);
  EXPECT_EQ(Dio(false, 0, kBs, buf.get()), -EOPNOTSUPP);
  EXPECT_TRUE(fs_.begins().size() == 1u);  // the buffered write's only
  // Clean the folio by hand (as writeback would) and retry.
  FolioRef f = inode()->mapping()->Lookup(0);
  ASSERT_TRUE(f);
  f->Lock();
  Mapping::InvalidateFolio(f.get(), 0, f->size());
  f->Unlock();
  EXPECT_EQ(Dio(true, 0, kBs, buf.get()), kBs);
}

TEST_F(DirectIoTest, OverwriteOnlyRefusesEofAndPassesFlag) {
  fs_.SetExtent(0, 4 * kBs, Iomap::Type::kMapped, kDev);
  inode()->i_size_write(2 * kBs);
  block::AlignedBuffer buf = Buf(2 * kBs, 1);
  EXPECT_EQ(Dio(true, kBs, 2 * kBs, buf.get(), 0, kDioOverwriteOnly), -EAGAIN);
  EXPECT_EQ(Dio(true, 2 * kBs, kBs, buf.get(), 0, kDioOverwriteOnly), -EAGAIN);
  EXPECT_TRUE(fs_.begins().empty());
  EXPECT_EQ(Dio(true, 0, 2 * kBs, buf.get(), 0, kDioOverwriteOnly), 2 * kBs);
  ASSERT_FALSE(fs_.begins().empty());
  EXPECT_EQ(fs_.begins()[0].flags, kDirect | kWrite | kOverwriteOnly);
}

TEST_F(DirectIoTest, PartialFaultReturnsProgressAndDoneBefore) {
  fs_.SetExtent(0, 4 * kBs, Iomap::Type::kMapped, kDev);
  inode()->i_size_write(4 * kBs);
  block::AlignedBuffer buf = Buf(4 * kBs, 2);
  EXPECT_EQ(Dio(true, 0, 4 * kBs, buf.get(), 0, 0, nullptr, 3 * kBs), -EFAULT);
  EXPECT_EQ(
      Dio(true, 0, 4 * kBs, buf.get(), 0, kDioPartial, nullptr, 3 * kBs + 100),
      3 * kBs);
  EXPECT_EQ(Dio(true, 3 * kBs, kBs, buf.get(), 0, kDioPartial, nullptr,
                SIZE_MAX, 3 * kBs),
            4 * kBs);
  EXPECT_EQ(Dio(false, 0, 4 * kBs, buf.get(), 0, kDioPartial, nullptr, 0),
            -EFAULT);  // nothing done: the fault itself
}

TEST_F(DirectIoTest, AtomicNeedsOneMappingAndOneBio) {
  fs_.SetExtent(0, kBs, Iomap::Type::kMapped, kDev);
  fs_.SetExtent(kBs, kBs, Iomap::Type::kMapped, kDev + 8 * kBs);
  inode()->i_size_write(4 * kBs);
  block::AlignedBuffer buf = Buf(2 * kBs, 7);
  EXPECT_EQ(Dio(true, 0, 2 * kBs, buf.get(), kAtomic), -EINVAL);
  EXPECT_EQ(dev_.write_bios(), 0u);  // nothing was written
  for (const auto& b : fs_.begins())
    EXPECT_EQ(b.flags, kDirect | kWrite | kAtomic);
  // A hardware-atomic mapping gets REQ_ATOMIC (the device must allow it).
  fs_.SetExtent(0, 2 * kBs, Iomap::Type::kMapped, kDev);
  WrapOps ops(&fs_);
  ops.add_flags = kAtomicBio;
  EXPECT_EQ(Dio(true, 0, 2 * kBs, buf.get(), kAtomic, 0, &ops), -EINVAL);
  dev_.mutable_limits().atomic_write_unit_min = 4096;
  dev_.mutable_limits().atomic_write_unit_max = 65536;
  EXPECT_EQ(Dio(true, 0, 2 * kBs, buf.get(), kAtomic, 0, &ops), 2 * kBs);
  // Larger than one bio: refused rather than split.
  dev_.mutable_limits().max_io_bytes = 4096;
  EXPECT_EQ(Dio(true, 0, 2 * kBs, buf.get(), kAtomic, 0, &ops), -EINVAL);
}

TEST_F(DirectIoTest, NotblkMidwayReturnsBytesDone) {
  fs_.SetExtent(0, kBs, Iomap::Type::kMapped, kDev);
  fs_.SetExtent(kBs, kBs, Iomap::Type::kMapped, kDev + 8 * kBs);
  inode()->i_size_write(2 * kBs);
  WrapOps ops(&fs_);
  ops.fail_after = 1;
  block::AlignedBuffer buf = Buf(2 * kBs, 7);
  EXPECT_EQ(Dio(true, 0, 2 * kBs, buf.get(), 0, 0, &ops), kBs);
  ops.calls = 0;
  ops.fail_after = 0;
  ops.fail_error = -ENOTBLK;
  EXPECT_EQ(Dio(true, 0, 2 * kBs, buf.get(), 0, 0, &ops), 0);
  ops.calls = 0;
  ops.fail_error = -ENOSPC;
  EXPECT_EQ(Dio(true, 0, 2 * kBs, buf.get(), 0, 0, &ops), -ENOSPC);
}

TEST_F(DirectIoTest, BioErrorFailsRequestAndReachesEndIo) {
  fs_.SetExtent(0, 4 * kBs, Iomap::Type::kMapped, kDev);
  inode()->i_size_write(4 * kBs);
  dev_.FailReads(kDev + 2 * kBs, 512);
  dev_.mutable_limits().max_io_bytes = kBs;
  block::AlignedBuffer buf = Buf(4 * kBs, 1);
  EXPECT_EQ(Dio(false, 0, 4 * kBs, buf.get()), -EIO);
  ASSERT_EQ(dops_.calls.size(), 1u);
  EXPECT_EQ(dops_.calls[0].error, -EIO);
  EXPECT_EQ(dops_.calls[0].size, 4 * kBs);
}

// Holds bios until eight are queued (or 20 ms pass), then runs them: a
// request whose bios all wait for each other would never finish.
class BatchingDevice : public block::Device {
 public:
  explicit BatchingDevice(MemDevice* inner) : inner_(inner) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~BatchingDevice() override {
    {
      base::MutexLock l(&mu_);
      stop_ = true;
    }
    cv_.SignalAll();
    thread_.join();
  }
  void Submit(block::Bio* bio) override {
    base::MutexLock l(&mu_);
    queue_.push_back(bio);
    cv_.SignalAll();
  }
  const block::DeviceLimits& limits() const override {
    return inner_->limits();
  }
  std::string name() const override { return "batching"; }
  uint64_t inflight() const override { return 0; }
  void Drain() override {}

 private:
  void Loop() {
    base::MutexLock l(&mu_);
    while (!stop_) {
      while (queue_.size() < 8 && !stop_) {
        if (!cv_.WaitFor(&mu_, std::chrono::milliseconds(20))) break;
      }
      std::deque<block::Bio*> run;
      run.swap(queue_);
      mu_.Unlock();
      for (block::Bio* b : run) inner_->Submit(b);
      mu_.Lock();
    }
  }
  MemDevice* inner_;
  base::Mutex mu_{base::LockRank::kLeaf};
  base::CondVar cv_;
  std::deque<block::Bio*> queue_;
  bool stop_ = false;
  std::thread thread_;
};

TEST(DirectIoInflightTest, LargeRequestKeepsBiosInFlight) {
  MemDevice mem(32 << 20, /*async=*/false);
  mem.mutable_limits().max_io_bytes = 64 << 10;
  BatchingDevice dev(&mem);
  PageCache cache;
  FakeFs fs(&dev, 12, true, &cache);
  fs.SetExtent(0, 4 << 20, Iomap::Type::kMapped, kDev);
  fs.inode()->i_size_write(4 << 20);
  block::AlignedBuffer buf = block::AllocAligned(4 << 20);
  for (size_t i = 0; i < (4u << 20); i++) buf[i] = Pat(i, 11);
  ResetDioStats();
  DioRequest req;
  req.write = true;
  req.len = 4 << 20;
  req.buf = buf.get();
  base::ReaderLock l(&fs.inode()->locks().rwsem);
  ASSERT_EQ(DioRw(fs.inode(), req, fs, nullptr), 4 << 20);
  DioStats st = GetDioStats();
  EXPECT_EQ(st.bios, 64u);
  EXPECT_GE(st.max_inflight, 8u);
  EXPECT_LE(st.max_inflight, static_cast<uint64_t>(kDioMaxInflight));
  EXPECT_EQ(std::memcmp(mem.data() + kDev, buf.get(), 4 << 20), 0);
}

}  // namespace
}  // namespace iomap
