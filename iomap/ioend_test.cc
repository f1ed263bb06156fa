#include "iomap/ioend.h"

#include <cerrno>
#include <functional>
#include <memory>
#include <vector>

#include "block/sim_device.h"
#include "gtest/gtest.h"
#include "iomap/pagecache.h"
#include "iomap/writeback.h"

namespace iomap {
namespace {

// ---------------------------------------------------------------------------
// Merge rules (iomap_ioend_can_merge): each condition that must prevent a
// merge has a test that fails when the condition is dropped.

class MergeTest : public ::testing::Test {
 protected:
  // A write ioend of `size` bytes at file `off`, device sector `sector`.
  Ioend* Make(int64_t off, uint64_t size, uint64_t sector, uint16_t flags = 0) {
    Ioend* e = NewIoend(nullptr, nullptr, off, sector << 9, flags);
    e->io_size = size;
    owned_.emplace_back(e);
    return e;
  }
  std::vector<std::unique_ptr<Ioend>> owned_;
};

TEST_F(MergeTest, ContiguousIoendsMerge) {
  Ioend* a = Make(0, 4096, 100);
  Ioend* b = Make(4096, 8192, 108);
  EXPECT_TRUE(IoendCanMerge(*a, *b));
}

TEST_F(MergeTest, ReadNeverMerges) {
  Ioend* a = Make(0, 4096, 100);
  Ioend* b = Make(4096, 4096, 108);
  b->bio.op = block::BioOp::kRead;
  EXPECT_FALSE(IoendCanMerge(*a, *b));
  EXPECT_FALSE(IoendCanMerge(*b, *a));
  a->bio.op = block::BioOp::kRead;
  b->bio.op = block::BioOp::kWrite;
  EXPECT_FALSE(IoendCanMerge(*a, *b));
}

TEST_F(MergeTest, DifferentStatusDoesNotMerge) {
  Ioend* a = Make(0, 4096, 100);
  Ioend* b = Make(4096, 4096, 108);
  b->error = -EIO;
  EXPECT_FALSE(IoendCanMerge(*a, *b));
  a->error = -EIO;
  EXPECT_TRUE(IoendCanMerge(*a, *b));  // same failure: one completion
}

TEST_F(MergeTest, NextBoundaryDoesNotMerge) {
  Ioend* a = Make(0, 4096, 100, kIoendBoundary);
  Ioend* b = Make(4096, 4096, 108, kIoendBoundary);
  EXPECT_FALSE(IoendCanMerge(*a, *b));
  b->flags = 0;
  EXPECT_TRUE(IoendCanMerge(*a, *b));  // only the next one's boundary counts
}

TEST_F(MergeTest, EachNomergeFlagDifferenceDoesNotMerge) {
  for (uint16_t flag :
       {kIoendShared, kIoendUnwritten, kIoendDirect, kIoendDontcache}) {
    SCOPED_TRACE(flag);
    Ioend* a = Make(0, 4096, 100);
    Ioend* b = Make(4096, 4096, 108, flag);
    EXPECT_FALSE(IoendCanMerge(*a, *b));
    EXPECT_FALSE(IoendCanMerge(*b, *a));
    a->flags = flag;
    EXPECT_TRUE(IoendCanMerge(*a, *b));
  }
}

TEST_F(MergeTest, FileDiscontiguousDoesNotMerge) {
  Ioend* a = Make(0, 4096, 100);
  Ioend* b = Make(8192, 4096, 108);  // sectors contiguous, file offsets not
  EXPECT_FALSE(IoendCanMerge(*a, *b));
}

TEST_F(MergeTest, SectorDiscontiguousDoesNotMerge) {
  Ioend* a = Make(0, 4096, 100);
  Ioend* b = Make(4096, 4096, 200);
  EXPECT_FALSE(IoendCanMerge(*a, *b));
  Ioend* c = Make(4096, 4096, 107);  // overlapping by one sector
  EXPECT_FALSE(IoendCanMerge(*a, *c));
}

TEST_F(MergeTest, SectorContiguityUsesClampedIoSize) {
  // io_size clamped at EOF (1000 bytes): the next sector is 100 + 1.
  Ioend* a = Make(0, 1000, 100);
  Ioend* b = Make(1000, 4096, 101);
  EXPECT_TRUE(IoendCanMerge(*a, *b));
}

TEST_F(MergeTest, TryMergeTakesRunFromHeadAndStops) {
  Ioend* a = Make(0, 4096, 100);
  IoendList more = {Make(4096, 4096, 108), Make(8192, 4096, 116),
                    Make(12288, 4096, 500), Make(16384, 4096, 508)};
  IoendTryMerge(a, &more);
  EXPECT_EQ(a->merged.size(), 2u);
  EXPECT_EQ(a->io_size, 12288u);
  ASSERT_EQ(more.size(), 2u);
  EXPECT_EQ(more.front()->io_offset, 12288);
}

TEST_F(MergeTest, SortByOffsetIsStable) {
  Ioend* x = Make(8192, 4096, 0);
  Ioend* y = Make(0, 4096, 0);
  Ioend* z1 = Make(4096, 4096, 0);
  Ioend* z2 = Make(4096, 4096, 1);
  IoendList list = {x, z1, y, z2};
  SortIoends(&list);
  EXPECT_EQ(list, (IoendList{y, z1, z2, x}));
}

// ---------------------------------------------------------------------------
// Construction (iomap_add_to_ioend): each condition that must start a new
// ioend.

// Records ioends handed to WritebackSubmit instead of submitting them.
class RecordingOps : public IomapWritebackOps {
 public:
  int64_t WritebackRange(WritepageCtx*, Folio*, uint64_t, unsigned,
                         uint64_t) override {
    return -EIO;
  }
  int WritebackSubmit(WritepageCtx* wpc, int error) override {
    submitted.push_back(wpc->ioend);
    wpc->ioend = nullptr;
    return error;
  }
  std::vector<Ioend*> submitted;
};

class AddTest : public ::testing::Test {
 protected:
  AddTest() {
    block::SimOptions o;
    o.seed = 1;
    o.max_io_bytes = 64 << 10;
    o.max_segments = 8;
    dev_ = std::make_unique<block::SimDevice>(o);
    inode_ = std::make_unique<Inode>(1, 9, dev_.get(), &cache_);
    inode_->i_size_write(1 << 20);
    wpc_.inode = inode_.get();
    wpc_.ops = &ops_;
    wpc_.wbc = &wbc_;
    Map(0, 1 << 20, Iomap::Type::kMapped, 1 << 20);
  }
  ~AddTest() override {
    if (wpc_.ioend != nullptr) ops_.WritebackSubmit(&wpc_, 0);
    for (Ioend* e : ops_.submitted) FinishIoends(e, 0);
    for (Folio* f : folios_) {
      f->Unlock();
      f->Put();
    }
  }
  void Map(int64_t off, uint64_t len, Iomap::Type type, uint64_t addr,
           uint32_t flags = 0) {
    wpc_.iomap = Iomap();
    wpc_.iomap.offset = off;
    wpc_.iomap.length = len;
    wpc_.iomap.type = type;
    wpc_.iomap.addr = addr;
    wpc_.iomap.flags = flags;
    wpc_.iomap.bdev = dev_.get();
  }
  // A locked folio under writeback at page `index`.
  Folio* F(int64_t index) {
    Folio* f = nullptr;
    EXPECT_EQ(inode_->mapping()->GetFolio(index, kFgpWriteBegin, 0, &f), 0);
    f->AttachState();
    f->StartWriteback();
    folios_.push_back(f);
    return f;
  }
  int64_t Add(Folio* f, int64_t pos, unsigned len,
              int64_t end_pos = int64_t{1} << 40) {
    return AddToIoend(&wpc_, f, pos, end_pos, len);
  }
  size_t Ioends() {
    return ops_.submitted.size() + (wpc_.ioend != nullptr ? 1 : 0);
  }

  PageCache cache_;
  std::unique_ptr<block::SimDevice> dev_;
  std::unique_ptr<Inode> inode_;
  RecordingOps ops_;
  WritebackControl wbc_;
  WritepageCtx wpc_;
  std::vector<Folio*> folios_;
};

TEST_F(AddTest, FirstRangeStartsAnIoendContiguousOnesJoinIt) {
  EXPECT_EQ(Add(F(0), 0, 4096), 4096);
  EXPECT_EQ(Ioends(), 1u);
  EXPECT_EQ(Add(F(1), 4096, 4096), 4096);
  EXPECT_EQ(Ioends(), 1u);
  EXPECT_EQ(wpc_.ioend->io_size, 8192u);
  EXPECT_EQ(wpc_.ioend->bio.offset, uint64_t{1} << 20);
  EXPECT_EQ(wpc_.ioend->bio.iov.size(), 2u);
}

TEST_F(AddTest, SegmentLimitStartsNewIoend) {
  // Contiguous single-page folios: each is a segment; 8 fit in a bio.
  for (int i = 0; i < 17; i++) Add(F(i), i * 4096, 4096);
  EXPECT_EQ(Ioends(), 3u);
  for (Ioend* e : ops_.submitted) EXPECT_EQ(e->bio.iov.size(), 8u);
}

TEST_F(AddTest, MaxBioBytesStartsNewIoend) {
  Folio* f = nullptr;
  // One large folio: one segment, so only the byte limit applies.
  inode_->SetLargeFolios();
  ASSERT_EQ(inode_->mapping()->GetFolio(32, kFgpWriteBegin, 5, &f), 0);
  ASSERT_EQ(f->size(), 128u << 10);
  f->AttachState();
  f->StartWriteback();
  folios_.push_back(f);
  Add(f, f->pos(), 64 << 10);
  EXPECT_EQ(Ioends(), 1u);
  Add(f, f->pos() + (64 << 10), 4096);
  EXPECT_EQ(Ioends(), 2u);
}

TEST_F(AddTest, BoundaryAtMappingStartStartsNewIoend) {
  Add(F(0), 0, 4096);
  Map(4096, 8192, Iomap::Type::kMapped, (1 << 20) + 4096, kBoundary);
  Add(F(1), 4096, 4096);
  EXPECT_EQ(Ioends(), 2u);
  EXPECT_TRUE(wpc_.ioend->flags & kIoendBoundary);
  Add(F(2), 8192, 4096);  // inside the mapping: not a boundary
  EXPECT_EQ(Ioends(), 2u);
}

TEST_F(AddTest, UnwrittenStartsNewIoendWithFlag) {
  Add(F(0), 0, 4096);
  Map(4096, 4096, Iomap::Type::kUnwritten, (1 << 20) + 4096);
  Add(F(1), 4096, 4096);
  EXPECT_EQ(Ioends(), 2u);
  EXPECT_EQ(wpc_.ioend->flags & kIoendNomergeFlags, kIoendUnwritten);
}

TEST_F(AddTest, SharedStartsNewIoendWithFlag) {
  Add(F(0), 0, 4096);
  Map(4096, 4096, Iomap::Type::kMapped, (1 << 20) + 4096, kShared);
  Add(F(1), 4096, 4096);
  EXPECT_EQ(Ioends(), 2u);
  EXPECT_EQ(wpc_.ioend->flags & kIoendNomergeFlags, kIoendShared);
}

TEST_F(AddTest, DropbehindFolioStartsNewIoendWithFlag) {
  Add(F(0), 0, 4096);
  Folio* f = F(1);
  f->SetDropbehind();
  Add(f, 4096, 4096);
  EXPECT_EQ(Ioends(), 2u);
  EXPECT_EQ(wpc_.ioend->flags & kIoendNomergeFlags, kIoendDontcache);
}

TEST_F(AddTest, FileDiscontiguousStartsNewIoend) {
  Add(F(0), 0, 4096);
  // Device-contiguous (identity map shifted), but file offset jumps.
  Map(8192, 4096, Iomap::Type::kMapped, (1 << 20) + 4096);
  Add(F(2), 8192, 4096);
  EXPECT_EQ(Ioends(), 2u);
}

TEST_F(AddTest, SectorDiscontiguousStartsNewIoend) {
  Add(F(0), 0, 4096);
  Map(4096, 4096, Iomap::Type::kMapped, 8 << 20);
  Add(F(1), 4096, 4096);
  EXPECT_EQ(Ioends(), 2u);
  EXPECT_EQ(wpc_.ioend->bio.offset, uint64_t{8} << 20);
}

TEST_F(AddTest, AnonWriteIgnoresSectorContiguity) {
  Map(0, 4096, Iomap::Type::kMapped, 0, kAnonWrite);
  Add(F(0), 0, 4096);
  Map(4096, 4096, Iomap::Type::kMapped, 8 << 20, kAnonWrite);
  Add(F(1), 4096, 4096);
  EXPECT_EQ(Ioends(), 1u);
}

TEST_F(AddTest, BatchSizeStartsNewIoend) {
  Add(F(0), 0, 4096);
  wpc_.nr_folios = kIoendBatchSize;
  Add(F(1), 4096, 4096);
  EXPECT_EQ(Ioends(), 2u);
  EXPECT_EQ(wpc_.nr_folios, 0u);
  Add(F(2), 8192, 4096);
  EXPECT_EQ(Ioends(), 2u);
}

TEST_F(AddTest, IoSizeClampedToEof) {
  Add(F(0), 0, 4096, /*end_pos=*/1000);
  EXPECT_EQ(wpc_.ioend->io_size, 1000u);
  EXPECT_EQ(wpc_.ioend->bio.len, 4096u);  // whole blocks still written
}

TEST_F(AddTest, HoleIsSkipped) {
  Map(0, 8192, Iomap::Type::kHole, kNullAddr);
  EXPECT_EQ(Add(F(0), 0, 4096), 4096);
  EXPECT_EQ(Ioends(), 0u);
}

TEST_F(AddTest, MapLenTrimmedToMapping) {
  Map(0, 1024, Iomap::Type::kMapped, 1 << 20);
  EXPECT_EQ(Add(F(0), 0, 4096), 1024);
}

TEST_F(AddTest, DelallocAndInlineAreEio) {
  Map(0, 8192, Iomap::Type::kDelalloc, kNullAddr);
  EXPECT_EQ(Add(F(0), 0, 4096), -EIO);
  Map(0, 8192, Iomap::Type::kInline, kNullAddr);
  EXPECT_EQ(Add(F(1), 4096, 4096), -EIO);
  EXPECT_EQ(Ioends(), 0u);
}

TEST_F(AddTest, SameFolioContiguousRangesShareOneSegment) {
  Folio* f = F(0);
  Add(f, 0, 1024);
  Add(f, 1024, 1024);
  EXPECT_EQ(wpc_.ioend->bio.iov.size(), 1u);
  EXPECT_EQ(wpc_.ioend->folios.size(), 1u);
  EXPECT_EQ(f->state()->write_bytes_pending.load(), 2048);
}

// ---------------------------------------------------------------------------
// The completion queue: per-inode batches, sorted and merged.

class LatchOps : public IoendCompletionOps {
 public:
  int FinishIoend(Inode*, Ioend* ioend) override {
    base::MutexLock l(&mu);
    calls.push_back(
        {ioend->io_offset, ioend->io_size, ioend->merged.size(), ioend->error});
    cv.SignalAll();
    while (hold) cv.Wait(&mu);
    return fs_error;
  }
  struct Call {
    int64_t offset;
    uint64_t size;
    size_t merged;
    int error;
  };
  base::Mutex mu;
  base::CondVar cv;
  bool hold ABSL_GUARDED_BY(mu) = true;
  std::vector<Call> calls ABSL_GUARDED_BY(mu);
  int fs_error = 0;
};

class QueueTest : public ::testing::Test {
 protected:
  QueueTest() : inode_(3, 12, nullptr, &cache_) {
    inode_.i_size_write(1 << 20);
  }
  // A completed-by-hand unwritten ioend over a new folio at page `index`.
  Ioend* Make(int64_t index, uint64_t sector) {
    Folio* f = nullptr;
    EXPECT_EQ(inode_.mapping()->GetFolio(index, kFgpWriteBegin, 0, &f), 0);
    f->StartWriteback();
    f->Unlock();
    Ioend* e =
        NewIoend(&inode_, nullptr, index * 4096, sector << 9, kIoendUnwritten);
    e->folios.push_back({f, 0, 4096});  // takes over our reference
    e->bio.AddSegment(f->data(), 4096);
    e->io_size = 4096;
    folios_.push_back(f);
    return e;
  }
  void Complete(IoendCompletionQueue* q, Ioend* e, int64_t result) {
    ASSERT_TRUE(q->Attach(e));
    e->bio.result = result;
    e->bio.end_io(&e->bio);
  }
  void WaitCalls(LatchOps* ops, size_t n) {
    base::MutexLock l(&ops->mu);
    while (ops->calls.size() < n) ops->cv.Wait(&ops->mu);
  }
  void Release(LatchOps* ops) {
    base::MutexLock l(&ops->mu);
    ops->hold = false;
    ops->cv.SignalAll();
  }

  PageCache cache_;
  Inode inode_;
  std::vector<Folio*> folios_;
};

TEST_F(QueueTest, BatchIsSortedMergedAndFinishedOnce) {
  LatchOps ops;
  IoendCompletionQueue q(&ops, {1});
  Complete(&q, Make(0, 1000), 4096);
  WaitCalls(&ops, 1);  // the worker is busy with the first ioend
  // Four contiguous ioends arrive out of order while it is busy.
  Complete(&q, Make(4, 1032), 4096);
  Complete(&q, Make(2, 1016), 4096);
  Complete(&q, Make(1, 1008), 4096);
  Complete(&q, Make(3, 1024), 4096);
  Release(&ops);
  q.Flush();
  base::MutexLock l(&ops.mu);
  ASSERT_EQ(ops.calls.size(), 2u);
  EXPECT_EQ(ops.calls[1].offset, 4096);
  EXPECT_EQ(ops.calls[1].size, 4u * 4096);
  EXPECT_EQ(ops.calls[1].merged, 3u);
  EXPECT_EQ(q.merges(), 3u);
  EXPECT_EQ(q.finished(), 5u);
  for (Folio* f : folios_) EXPECT_FALSE(f->Writeback());
}

TEST_F(QueueTest, FailedIoendIsNotMergedAndErrorIsRecorded) {
  LatchOps ops;
  IoendCompletionQueue q(&ops, {1});
  ErrSeq::Cursor h = inode_.mapping()->wb_err.seq().Sample();
  Complete(&q, Make(0, 1000), 4096);
  WaitCalls(&ops, 1);
  Complete(&q, Make(1, 1008), 4096);
  Complete(&q, Make(2, 1016), -EIO);
  Complete(&q, Make(3, 1024), 4096);
  Release(&ops);
  q.Flush();
  {
    base::MutexLock l(&ops.mu);
    ASSERT_EQ(ops.calls.size(), 4u);  // 0 | 1 | 2 (failed) | 3
    EXPECT_EQ(ops.calls[2].error, -EIO);
  }
  EXPECT_EQ(inode_.mapping()->wb_err.seq().CheckAndAdvance(&h), -EIO);
  for (Folio* f : folios_) EXPECT_FALSE(f->Writeback());
}

TEST_F(QueueTest, FilesystemErrorIsReportedForTheIoend) {
  LatchOps ops;
  ops.fs_error = -ENOSPC;
  {
    base::MutexLock l(&ops.mu);
    ops.hold = false;
  }
  IoendCompletionQueue q(&ops, {2});
  ErrSeq::Cursor h = inode_.mapping()->wb_err.seq().Sample();
  Complete(&q, Make(0, 1000), 4096);
  q.Flush();
  EXPECT_EQ(inode_.mapping()->wb_err.seq().CheckAndAdvance(&h), -ENOSPC);
}

TEST_F(QueueTest, MappedIoendsDoNotNeedTheQueue) {
  LatchOps ops;
  IoendCompletionQueue q(&ops, {1});
  Ioend* e = Make(0, 1000);
  e->flags = 0;
  EXPECT_FALSE(q.Attach(e));
  e->flags = kIoendShared;
  EXPECT_TRUE(q.Attach(e));
  e->bio.result = 4096;
  {
    base::MutexLock l(&ops.mu);
    ops.hold = false;
  }
  e->bio.end_io(&e->bio);
  q.Flush();
}

}  // namespace
}  // namespace iomap
