#include "iomap/flusher.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <thread>

#include "block/sim_device.h"
#include "gtest/gtest.h"
#include "iomap/buffered_io.h"
#include "iomap/wb_test_fs.h"

namespace iomap {
namespace {

using testing::WbTestFs;
using Clock = std::chrono::steady_clock;

class FlusherTest : public ::testing::Test {
 protected:
  void Init(const FlusherOptions& options, bool background_dev = true,
            uint32_t tick_us = 0) {
    block::SimOptions o;
    o.seed = 0;
    o.background = background_dev;
    o.background_tick_us = tick_us;
    dev_ = std::make_unique<block::SimDevice>(o);
    fs_ = std::make_unique<WbTestFs>(dev_.get(), 12, &cache_);
    wp_ = std::make_unique<SimpleWritepages>(fs_.get());
    flusher_ = std::make_unique<Flusher>(wp_.get(), &cache_, options);
    flusher_->Attach(fs_->inode());
  }
  void TearDown() override {
    if (flusher_ != nullptr) flusher_->Detach(fs_->inode());
    flusher_.reset();
    if (dev_ != nullptr) dev_->Drain();
  }
  // Waits up to 5 s for `pred`.
  template <typename Pred>
  bool WaitFor(Pred pred) {
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return pred();
  }
  uint64_t CacheDirty() {
    return cache_.dirty_bytes() + cache_.writeback_bytes();
  }

  PageCache cache_;
  std::unique_ptr<block::SimDevice> dev_;
  std::unique_ptr<WbTestFs> fs_;
  std::unique_ptr<SimpleWritepages> wp_;
  std::unique_ptr<Flusher> flusher_;
};

TEST_F(FlusherTest, DefaultThresholdsFollowTheBudget) {
  Init(FlusherOptions());
  EXPECT_EQ(flusher_->background_threshold(), cache_.budget_bytes() / 10);
  EXPECT_EQ(flusher_->dirty_limit(), cache_.budget_bytes() / 5);
  EXPECT_EQ(fs_->mapping()->hooks(), flusher_.get());
}

TEST_F(FlusherTest, ExpiredDataIsWrittenWithoutAnyCall) {
  FlusherOptions o;
  o.dirty_expire_ms = 300;
  o.writeback_interval_ms = 10;
  Init(o);
  const auto start = Clock::now();
  fs_->Dirty(0, 64 << 10, 0x81);
  flusher_->MarkDirty(fs_->inode());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_GT(fs_->mapping()->dirty_bytes(), 0u);  // not yet expired
  ASSERT_TRUE(WaitFor([&] {
    return fs_->mapping()->dirty_bytes() == 0 &&
           fs_->mapping()->writeback_bytes() == 0;
  }));
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(300));
}

TEST_F(FlusherTest, BackgroundThresholdStartsWriteback) {
  FlusherOptions o;
  o.dirty_expire_ms = 3600 * 1000;
  o.writeback_interval_ms = 3600 * 1000;
  o.dirty_background_bytes = 64 << 10;
  o.dirty_bytes = 64 << 20;
  o.chunk_pages = 8;
  Init(o);
  fs_->Dirty(0, 512 << 10, 0x82);
  EXPECT_EQ(flusher_->BalanceDirty(fs_->inode(), false), 0);
  ASSERT_TRUE(WaitFor([&] { return CacheDirty() <= (64u << 10); }));
}

TEST_F(FlusherTest, WritersAreThrottledAboveDirtyLimit) {
  FlusherOptions o;
  o.dirty_expire_ms = 3600 * 1000;
  o.writeback_interval_ms = 3600 * 1000;
  o.dirty_background_bytes = 64 << 10;
  o.dirty_bytes = 128 << 10;
  o.chunk_pages = 16;
  Init(o, true, /*tick_us=*/20);
  uint64_t worst = 0;
  for (int64_t pos = 0; pos < (2 << 20); pos += 4096) {
    ASSERT_EQ(flusher_->BalanceDirty(fs_->inode(), false), 0);
    worst = std::max(worst, CacheDirty());
    fs_->Dirty(pos, 4096, 0x83);
  }
  EXPECT_LE(worst, 128u << 10);
  EXPECT_GT(flusher_->throttled(), 0u);
  EXPECT_EQ(flusher_->SyncAll(), 0);
}

TEST_F(FlusherTest, NowaitWriterGetsEagainAboveLimit) {
  FlusherOptions o;
  o.dirty_background_bytes = 16 << 10;
  o.dirty_bytes = 32 << 10;
  Init(o, /*background_dev=*/false);  // writes never complete on their own
  fs_->Dirty(0, 128 << 10, 0x84);
  EXPECT_EQ(flusher_->BalanceDirty(fs_->inode(), true), -EAGAIN);
  flusher_->Detach(fs_->inode());
  flusher_.reset();
  dev_->RunUntilIdle();
  FdatawaitRange(fs_->mapping(), 0, INT64_MAX);
  WritebackControl wbc;
  wbc.sync_mode = SyncMode::kAll;
  WritepageCtx wpc;
  Writepages(fs_->mapping(), &wbc, &wpc, fs_.get());
  dev_->RunUntilIdle();
  EXPECT_EQ(fs_->mapping()->dirty_bytes(), 0u);
}

TEST_F(FlusherTest, HooksServeFilemapWriteAndWaitAndFsync) {
  FlusherOptions o;
  Init(o);
  fs_->Dirty(0, 32 << 10, 0x85);
  EXPECT_EQ(FilemapWriteAndWaitRange(fs_->inode(), 0, INT64_MAX), 0);
  EXPECT_EQ(fs_->mapping()->dirty_bytes(), 0u);
  block::SimFault fault;
  fault.op_mask = block::SimOpBit(block::BioOp::kWrite);
  dev_->AddFault(fault);
  ErrSeq::Cursor a = fs_->mapping()->wb_err.seq().Sample();
  fs_->Dirty(0, 8192, 0x86);
  EXPECT_EQ(flusher_->FileWriteAndWaitRange(fs_->inode(), &a, 0, INT64_MAX),
            -EIO);
  EXPECT_EQ(flusher_->FileWriteAndWaitRange(fs_->inode(), &a, 0, INT64_MAX), 0);
  dev_->ClearFaults();
}

TEST_F(FlusherTest, SyncAllWritesEveryAttachedInode) {
  FlusherOptions o;
  Init(o);
  WbTestFs other(dev_.get(), 12, &cache_, false, 8 << 20);
  flusher_->Attach(other.inode());
  fs_->Dirty(0, 16 << 10, 0x87);
  other.Dirty(0, 16 << 10, 0x88);
  EXPECT_EQ(flusher_->SyncAll(), 0);
  EXPECT_EQ(fs_->mapping()->dirty_bytes() + other.mapping()->dirty_bytes(), 0u);
  EXPECT_EQ(fs_->mapping()->writeback_bytes(), 0u);
  EXPECT_EQ(other.mapping()->writeback_bytes(), 0u);
  flusher_->Detach(other.inode());
  EXPECT_EQ(other.mapping()->hooks(), nullptr);
}

}  // namespace
}  // namespace iomap
