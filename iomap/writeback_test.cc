#include "iomap/writeback.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "block/sim_device.h"
#include "gtest/gtest.h"
#include "iomap/wb_test_fs.h"

namespace iomap {
namespace {

using base::WriterLock;
using testing::WbTestFs;

constexpr uint64_t kBase = 1 << 20;  // device byte of file offset 0

class WritebackTest : public ::testing::Test {
 protected:
  void SetUp() override { Init(12, /*background=*/true); }
  void TearDown() override {
    if (dev_ != nullptr) dev_->Drain();
  }
  void Init(unsigned blkbits, bool background) {
    fs_.reset();
    block::SimOptions o;
    o.seed = 0;
    o.background = background;
    o.capacity_bytes = 64 << 20;
    dev_ = std::make_unique<block::SimDevice>(o);
    fs_ =
        std::make_unique<WbTestFs>(dev_.get(), blkbits, &cache_, false, kBase);
  }
  int Sync(SyncMode mode = SyncMode::kAll) {
    WritebackControl wbc;
    wbc.sync_mode = mode;
    WritepageCtx wpc;
    return Writepages(fs_->mapping(), &wbc, &wpc, fs_.get());
  }
  std::vector<uint8_t> Media(uint64_t off, size_t len) {
    std::vector<uint8_t> out(len);
    dev_->PeekMedia(kBase + off, out.data(), len);
    return out;
  }
  static bool All(const std::vector<uint8_t>& v, uint8_t byte) {
    for (uint8_t b : v) {
      if (b != byte) return false;
    }
    return true;
  }
  FolioRef Lookup(int64_t pos) {
    return fs_->mapping()->Lookup(pos >> kPageShift);
  }
  uint64_t WriteBytes() {
    return dev_->counters().bytes[static_cast<int>(block::BioOp::kWrite)];
  }

  PageCache cache_;
  std::unique_ptr<block::SimDevice> dev_;
  std::unique_ptr<WbTestFs> fs_;
};

TEST_F(WritebackTest, WritesDirtyDataAndCleansFolios) {
  SCOPED_TRACE(dev_->SeedTrace());
  fs_->Dirty(0, 64 << 10, 0xab);
  EXPECT_EQ(fs_->mapping()->dirty_bytes(), 64u << 10);
  ASSERT_EQ(Sync(), 0);
  FdatawaitRange(fs_->mapping(), 0, INT64_MAX);
  EXPECT_TRUE(All(Media(0, 64 << 10), 0xab));
  EXPECT_EQ(fs_->mapping()->dirty_bytes(), 0u);
  EXPECT_EQ(fs_->mapping()->writeback_bytes(), 0u);
  EXPECT_FALSE(Lookup(0)->Dirty());
  EXPECT_FALSE(Lookup(0)->Writeback());
  // Contiguous pages were merged into 1 MiB-or-smaller bios, not 16.
  EXPECT_LE(fs_->submits.load(), 2);
}

TEST_F(WritebackTest, FolioWhollyPastEofIsSkippedAndCleaned) {
  fs_->Dirty(0, 4096, 0x11);
  fs_->Dirty(8192, 4096, 0x22);
  fs_->inode()->i_size_write(4096);  // as if truncated before writeback
  ASSERT_EQ(Sync(), 0);
  dev_->Drain();
  EXPECT_EQ(WriteBytes(), 4096u);
  EXPECT_FALSE(Lookup(8192)->Dirty());
  EXPECT_FALSE(Lookup(8192)->Writeback());
}

TEST_F(WritebackTest, StraddlingFolioZeroedPastEofEveryTime) {
  Init(9, true);
  fs_->Dirty(0, 4096, 0xcd);
  fs_->inode()->i_size_write(1000);
  ASSERT_EQ(Sync(), 0);
  dev_->Drain();
  // Blocks up to round_up(1000, 512) were written, the rest were not.
  EXPECT_EQ(WriteBytes(), 1024u);
  std::vector<uint8_t> m = Media(0, 1024);
  EXPECT_TRUE(All(std::vector<uint8_t>(m.begin(), m.begin() + 1000), 0xcd));
  EXPECT_TRUE(All(std::vector<uint8_t>(m.begin() + 1000, m.end()), 0));
  // The cached copy was zeroed past EOF too; mmap-like scribbles past EOF
  // are zeroed again by the next writeback.
  FolioRef f = Lookup(0);
  f->Lock();
  std::memset(f->data() + 1000, 0x77, 24);
  Mapping::DirtyFolio(f.get());
  f->Unlock();
  ASSERT_EQ(Sync(), 0);
  dev_->Drain();
  m = Media(0, 1024);
  EXPECT_TRUE(All(std::vector<uint8_t>(m.begin() + 1000, m.end()), 0));
}

TEST_F(WritebackTest, SmallBlocksWithoutStateWriteWholeFolioToEof) {
  Init(10, true);
  // A dirty folio without per-block state (dirtied as a whole, e.g. mmap).
  Folio* f = nullptr;
  ASSERT_EQ(fs_->mapping()->GetFolio(0, kFgpWriteBegin, 0, &f), 0);
  std::memset(f->data(), 0x5a, 4096);
  f->MarkUptodate();
  f->MarkDirtyFlag();
  ASSERT_EQ(f->state(), nullptr);
  fs_->inode()->i_size_write(3000);
  f->Unlock();
  f->Put();
  ASSERT_EQ(Sync(), 0);
  dev_->Drain();
  ASSERT_EQ(fs_->ranges().size(), 1u);
  EXPECT_EQ(fs_->ranges()[0].pos, 0);
  EXPECT_EQ(fs_->ranges()[0].len, 3072u);  // round_up(3000, 1024)
  EXPECT_EQ(WriteBytes(), 3072u);
}

TEST_F(WritebackTest, PerBlockDirtyRunsPassedSeparately) {
  Init(9, true);
  fs_->Dirty(0, 4096, 0x01);
  ASSERT_EQ(Sync(), 0);
  dev_->Drain();
  fs_->Dirty(0, 1024, 0x02);     // blocks 0-1
  fs_->Dirty(2560, 1024, 0x03);  // blocks 5-6
  const uint64_t before = WriteBytes();
  std::vector<testing::RangeCall> old = fs_->ranges();
  ASSERT_EQ(Sync(), 0);
  dev_->Drain();
  std::vector<testing::RangeCall> calls = fs_->ranges();
  calls.erase(calls.begin(), calls.begin() + old.size());
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].pos, 0);
  EXPECT_EQ(calls[0].len, 1024u);
  EXPECT_EQ(calls[1].pos, 2560);
  EXPECT_EQ(calls[1].len, 1024u);
  EXPECT_EQ(WriteBytes() - before, 2048u);
  EXPECT_TRUE(All(Media(1024, 1536), 0x01));
  EXPECT_TRUE(All(Media(2560, 1024), 0x03));
}

TEST_F(WritebackTest, FailedRangeLeavesFolioCleanAndRecordsError) {
  Init(9, true);
  ErrSeq::Cursor h = fs_->mapping()->wb_err.seq().Sample();
  fs_->Dirty(0, 4096, 0x44);
  fs_->fail_pos = 1024;
  EXPECT_EQ(Sync(), -EIO);
  dev_->Drain();
  FolioRef f = Lookup(0);
  EXPECT_FALSE(f->Dirty());
  EXPECT_FALSE(f->Writeback());
  for (unsigned b = 0; b < f->nr_blocks(); b++) EXPECT_FALSE(f->BlockDirty(b));
  EXPECT_EQ(f->state()->write_bytes_pending.load(), 0);
  EXPECT_EQ(fs_->mapping()->dirty_bytes(), 0u);
  EXPECT_EQ(fs_->mapping()->wb_err.seq().CheckAndAdvance(&h), -EIO);
}

TEST_F(WritebackTest, HoleMappingIsSkipped) {
  fs_->SetExtent(0, 8192, Iomap::Type::kHole, kNullAddr);
  fs_->Dirty(0, 8192, 0x66);
  ASSERT_EQ(Sync(), 0);
  dev_->Drain();
  EXPECT_EQ(WriteBytes(), 0u);
  EXPECT_FALSE(Lookup(0)->Writeback());
  EXPECT_FALSE(Lookup(4096)->Dirty());
}

TEST_F(WritebackTest, DelallocMappingIsRejected) {
  fs_->SetExtent(0, 4096, Iomap::Type::kDelalloc, kNullAddr);
  ErrSeq::Cursor h = fs_->mapping()->wb_err.seq().Sample();
  fs_->Dirty(0, 8192, 0x66);
  EXPECT_EQ(Sync(), -EIO);
  dev_->Drain();
  EXPECT_EQ(fs_->mapping()->wb_err.seq().CheckAndAdvance(&h), -EIO);
  EXPECT_FALSE(Lookup(0)->Writeback());
  // Integrity mode kept going, but as in the kernel the ioend still being
  // built when the pass ends is failed with the pass's first error: its
  // folio is clean, not written, and the error is recorded.
  EXPECT_FALSE(Lookup(4096)->Dirty());
  EXPECT_FALSE(Lookup(4096)->Writeback());
  EXPECT_EQ(WriteBytes(), 0u);
}

TEST_F(WritebackTest, ErrorAfterSubmittedIoendsKeepsThem) {
  // A device discontiguity ends the first ioend (submitted at once) before
  // the delalloc block fails; the submitted one is written.
  fs_->SetExtent(0, 8192, Iomap::Type::kMapped, kBase);
  fs_->SetExtent(8192, 4096, Iomap::Type::kMapped, kBase + (1 << 20));
  fs_->SetExtent(12288, 4096, Iomap::Type::kDelalloc, kNullAddr);
  fs_->Dirty(0, 16384, 0x67);
  EXPECT_EQ(Sync(), -EIO);
  dev_->Drain();
  EXPECT_TRUE(All(Media(0, 8192), 0x67));  // submitted before the error
  EXPECT_EQ(WriteBytes(), 8192u);
}

TEST_F(WritebackTest, BackgroundModeStopsAtNrToWrite) {
  fs_->Dirty(0, 64 << 10, 0x10);
  WritebackControl wbc;
  wbc.nr_to_write = 4;
  WritepageCtx wpc;
  ASSERT_EQ(Writepages(fs_->mapping(), &wbc, &wpc, fs_.get()), 0);
  dev_->Drain();
  EXPECT_EQ(wbc.folios_written, 4);
  EXPECT_EQ(fs_->mapping()->dirty_bytes(), 12u * 4096);
}

TEST_F(WritebackTest, RangeIsHonoured) {
  fs_->Dirty(0, 64 << 10, 0x10);
  WritebackControl wbc;
  wbc.sync_mode = SyncMode::kAll;
  wbc.range_start = 8192;
  wbc.range_end = 16383;
  WritepageCtx wpc;
  ASSERT_EQ(Writepages(fs_->mapping(), &wbc, &wpc, fs_.get()), 0);
  dev_->Drain();
  EXPECT_EQ(WriteBytes(), 8192u);
  EXPECT_TRUE(Lookup(0)->Dirty());
  EXPECT_FALSE(Lookup(8192)->Dirty());
}

// Unwritten extents complete through the workqueue: converted there, then
// writeback ends (so a waiter sees the conversion done).
TEST_F(WritebackTest, UnwrittenCompletesThroughQueueAndConverts) {
  IoendCompletionQueue queue(fs_.get());
  fs_->queue = &queue;
  fs_->SetExtent(0, 32 << 10, Iomap::Type::kUnwritten, kBase);
  fs_->Dirty(0, 64 << 10, 0x21);
  ErrSeq::Cursor h = 0;
  SimpleWritepages wp(fs_.get());
  ASSERT_EQ(FileWriteAndWaitRange(&wp, fs_->inode(), &h, 0, INT64_MAX), 0);
  EXPECT_EQ(fs_->TypeAt(0), Iomap::Type::kMapped);
  uint64_t unwritten = 0;
  for (const testing::FinishRecord& r : fs_->finished()) {
    EXPECT_EQ(r.flags & kIoendNomergeFlags, kIoendUnwritten);
    unwritten += r.size;
  }
  // Only the unwritten part went through the queue; mapped ioends were
  // finished in the completion thread.
  EXPECT_EQ(unwritten, 32u << 10);
  EXPECT_TRUE(All(Media(0, 64 << 10), 0x21));
  queue.Flush();
}

TEST_F(WritebackTest, FinishIoendErrorIsReported) {
  IoendCompletionQueue queue(fs_.get());
  fs_->queue = &queue;
  fs_->SetExtent(0, 8192, Iomap::Type::kUnwritten, kBase);
  fs_->finish_error = -ENOSPC;
  fs_->Dirty(0, 8192, 0x21);
  ErrSeq::Cursor h = fs_->mapping()->wb_err.seq().Sample();
  SimpleWritepages wp(fs_.get());
  EXPECT_EQ(FileWriteAndWaitRange(&wp, fs_->inode(), &h, 0, INT64_MAX),
            -ENOSPC);
  EXPECT_FALSE(Lookup(0)->Writeback());
  queue.Flush();
}

// WB_SYNC_NONE skips a folio under writeback; WB_SYNC_ALL waits for it.
TEST_F(WritebackTest, SyncModeWaitsBackgroundSkips) {
  Init(12, /*background=*/false);
  SCOPED_TRACE(dev_->SeedTrace());
  fs_->Dirty(0, 4096, 0x31);
  ASSERT_EQ(Sync(SyncMode::kNone), 0);  // bio queued, not completed
  FolioRef f = Lookup(0);
  ASSERT_TRUE(f->Writeback());
  // Redirty while under writeback (a writer that did not wait for stable
  // pages, as mmap could before stable pages).
  f->Lock();
  std::memset(f->data(), 0x32, 4096);
  f->MarkDirtyFlag();
  f->Unlock();
  WritebackControl wbc;
  WritepageCtx wpc;
  ASSERT_EQ(Writepages(fs_->mapping(), &wbc, &wpc, fs_.get()), 0);
  EXPECT_EQ(wbc.folios_written, 0);  // skipped
  std::atomic<bool> done{false};
  std::thread t([&] {
    EXPECT_EQ(Sync(SyncMode::kAll), 0);
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(done.load());  // waiting for the first writeback
  while (!done.load()) {
    dev_->RunFor(1);
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  t.join();
  dev_->RunUntilIdle();
  EXPECT_TRUE(All(Media(0, 4096), 0x32));
  EXPECT_FALSE(f->Dirty());
  EXPECT_FALSE(f->Writeback());
}

// Truncation waits for writeback of the folios it removes.
TEST_F(WritebackTest, TruncateWaitsForWriteback) {
  Init(12, /*background=*/false);
  fs_->Dirty(0, 8192, 0x41);
  ASSERT_EQ(Sync(SyncMode::kNone), 0);
  ASSERT_TRUE(Lookup(0)->Writeback());
  std::atomic<bool> done{false};
  std::thread t([&] {
    WriterLock rw(&fs_->inode()->locks().rwsem);
    WriterLock inv(&fs_->inode()->locks().invalidate);
    fs_->inode()->i_size_write(0);
    fs_->mapping()->TruncateRange(0, INT64_MAX);
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(done.load());
  while (!done.load()) {
    dev_->RunFor(1);
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  t.join();
  EXPECT_FALSE(Lookup(0));
  EXPECT_EQ(fs_->mapping()->nr_folios(), 0u);
  EXPECT_TRUE(All(Media(0, 8192), 0x41));
}

// Writeback never takes the rwsem or the invalidate lock: it completes while
// another thread holds both exclusively.
TEST_F(WritebackTest, WritebackDoesNotTakeInodeLocks) {
  fs_->Dirty(0, 16384, 0x51);
  base::Mutex m;
  base::CondVar cv;
  bool held = false, release = false;
  std::thread holder([&] {
    WriterLock rw(&fs_->inode()->locks().rwsem);
    WriterLock inv(&fs_->inode()->locks().invalidate);
    base::MutexLock l(&m);
    held = true;
    cv.SignalAll();
    while (!release) cv.Wait(&m);
  });
  {
    base::MutexLock l(&m);
    while (!held) cv.Wait(&m);
  }
  SimpleWritepages wp(fs_.get());
  ErrSeq::Cursor h = 0;
  EXPECT_EQ(FileWriteAndWaitRange(&wp, fs_->inode(), &h, 0, INT64_MAX), 0);
  EXPECT_TRUE(All(Media(0, 16384), 0x51));
  {
    base::MutexLock l(&m);
    release = true;
    cv.SignalAll();
  }
  holder.join();
}

// DONTCACHE: dropbehind folios leave the cache once their writeback ends.
TEST_F(WritebackTest, DropbehindFoliosAreDroppedAfterWriteback) {
  // Bios complete at Drain(), after Writepages has put its folio references:
  // the drop is best effort, as folio_end_dropbehind (a folio someone else
  // holds a reference on at that moment stays cached for reclaim), and with
  // completions on the device thread Writepages itself could still hold one
  // (seen under ASAN).
  Init(12, /*background=*/false);
  IoendCompletionQueue queue(fs_.get());
  fs_->queue = &queue;
  fs_->Dirty(0, 16384, 0x61);
  for (int64_t pos = 0; pos < 8192; pos += 4096) Lookup(pos)->SetDropbehind();
  ASSERT_EQ(Sync(SyncMode::kNone), 0);
  dev_->Drain();
  queue.Flush();
  EXPECT_FALSE(Lookup(0));
  EXPECT_FALSE(Lookup(4096));
  EXPECT_TRUE(Lookup(8192));  // not dropbehind: stays cached
  EXPECT_TRUE(All(Media(0, 16384), 0x61));
  bool dontcache_seen = false;
  for (const testing::FinishRecord& r : fs_->finished()) {
    if (r.flags & kIoendDontcache) dontcache_seen = true;
  }
  EXPECT_TRUE(dontcache_seen);
}

// EIO on every writeback bio: fsync on each of three open handles reports
// -EIO once, then 0; nothing stays dirty or under writeback; the failed data
// is not durable; no hang.
TEST_F(WritebackTest, EioOnWritebackBiosReportedOncePerHandle) {
  SCOPED_TRACE(dev_->SeedTrace());
  SimpleWritepages wp(fs_.get());
  ErrSeq& seq = fs_->mapping()->wb_err.seq();
  ErrSeq::Cursor h[3] = {seq.Sample(), seq.Sample(), seq.Sample()};
  block::SimFault fault;
  fault.op_mask = block::SimOpBit(block::BioOp::kWrite);
  fault.offset = kBase;
  fault.len = 64 << 10;
  int id = dev_->AddFault(fault);
  fs_->Dirty(0, 64 << 10, 0x71);
  for (ErrSeq::Cursor& c : h) {
    EXPECT_EQ(FileWriteAndWaitRange(&wp, fs_->inode(), &c, 0, INT64_MAX), -EIO);
  }
  for (ErrSeq::Cursor& c : h) {
    EXPECT_EQ(FileWriteAndWaitRange(&wp, fs_->inode(), &c, 0, INT64_MAX), 0);
  }
  EXPECT_EQ(fs_->mapping()->dirty_bytes(), 0u);
  EXPECT_EQ(fs_->mapping()->writeback_bytes(), 0u);
  std::vector<uint8_t> durable(64 << 10);
  dev_->PeekDurable(kBase, durable.data(), durable.size());
  EXPECT_FALSE(All(durable, 0x71));
  // A handle opened after everyone saw the error does not see it.
  ErrSeq::Cursor late = seq.Sample();
  EXPECT_EQ(FileWriteAndWaitRange(&wp, fs_->inode(), &late, 0, INT64_MAX), 0);
  // Once the device recovers, rewritten data is written and reported fine.
  dev_->RemoveFault(id);
  fs_->Dirty(0, 64 << 10, 0x72);
  EXPECT_EQ(FileWriteAndWaitRange(&wp, fs_->inode(), &h[0], 0, INT64_MAX), 0);
  EXPECT_TRUE(All(Media(0, 64 << 10), 0x72));
}

// An error from background writeback that nobody has seen yet is reported
// to a handle opened afterwards.
TEST_F(WritebackTest, HandleOpenedAfterUnseenErrorSeesIt) {
  SimpleWritepages wp(fs_.get());
  block::SimFault fault;
  fault.op_mask = block::SimOpBit(block::BioOp::kWrite);
  dev_->AddFault(fault);
  fs_->Dirty(0, 8192, 0x73);
  ASSERT_EQ(Sync(SyncMode::kNone), 0);  // async failure, recorded later
  dev_->Drain();
  ErrSeq::Cursor opened_later = fs_->mapping()->wb_err.seq().Sample();
  EXPECT_EQ(
      FileWriteAndWaitRange(&wp, fs_->inode(), &opened_later, 0, INT64_MAX),
      -EIO);
  EXPECT_EQ(
      FileWriteAndWaitRange(&wp, fs_->inode(), &opened_later, 0, INT64_MAX), 0);
  // The legacy flag is reported once to filemap_write_and_wait_range users
  // that came before any errseq check cleared it.
  EXPECT_EQ(WriteAndWaitRange(&wp, fs_->inode(), 0, INT64_MAX), 0);
}

// Concurrent writers, background writeback and fsyncs: no data lost; at the
// end the device holds every block's last version and nothing is dirty.
TEST_F(WritebackTest, ConcurrentWritersAndWritebackLoseNothing) {
  Init(10, true);
  SCOPED_TRACE(dev_->SeedTrace());
  constexpr int kWriters = 4;
  constexpr int64_t kRegion = 128 << 10;  // bytes per writer
  constexpr int kSteps = 300;
  constexpr int64_t kBs = 1024;
  fs_->inode()->i_size_write(kWriters * kRegion);  // no i_size races
  std::vector<uint8_t> expect(kWriters * kRegion, 0);
  fs_->Dirty(0, expect.size(), 0);
  std::atomic<bool> stop{false};
  SimpleWritepages wp(fs_.get());
  std::thread flusher([&] {
    while (!stop.load()) {
      WritebackControl wbc;
      wbc.nr_to_write = 16;
      wp.Writepages(fs_->inode(), &wbc);
    }
  });
  std::thread syncer([&] {
    ErrSeq::Cursor c = fs_->mapping()->wb_err.seq().Sample();
    while (!stop.load()) {
      EXPECT_EQ(FileWriteAndWaitRange(&wp, fs_->inode(), &c, 0, INT64_MAX), 0);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; w++) {
    writers.emplace_back([&, w] {
      uint64_t x = 0x9e3779b97f4a7c15ull * (w + 1) + dev_->seed();
      for (int i = 0; i < kSteps; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        const int64_t block = static_cast<int64_t>(x % (kRegion / kBs));
        const int64_t pos = w * kRegion + block * kBs;
        const int64_t len = kBs * (1 + static_cast<int64_t>((x >> 20) % 3));
        const int64_t end = std::min(pos + len, (w + 1) * kRegion);
        const uint8_t byte = static_cast<uint8_t>(1 + (i % 250));
        fs_->Dirty(pos, static_cast<size_t>(end - pos), byte);
        std::memset(expect.data() + pos, byte, end - pos);
      }
    });
  }
  for (std::thread& t : writers) t.join();
  stop = true;
  flusher.join();
  syncer.join();
  ErrSeq::Cursor c = 0;
  ASSERT_EQ(FileWriteAndWaitRange(&wp, fs_->inode(), &c, 0, INT64_MAX), 0);
  EXPECT_EQ(fs_->mapping()->dirty_bytes(), 0u);
  EXPECT_EQ(fs_->mapping()->writeback_bytes(), 0u);
  std::vector<uint8_t> media = Media(0, expect.size());
  for (size_t off = 0; off < expect.size(); off += kBs) {
    ASSERT_EQ(0, std::memcmp(media.data() + off, expect.data() + off, kBs))
        << "block at " << off;
  }
}

}  // namespace
}  // namespace iomap
