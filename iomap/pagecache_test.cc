#include "iomap/pagecache.h"

#include <unistd.h>

#include <cerrno>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "iomap/iomap.h"

namespace iomap {
namespace {

class TestInode : public Inode {
 public:
  TestInode(unsigned blkbits, PageCache* cache)
      : Inode(1, blkbits, nullptr, cache) {}
};

TEST(MappingTest, GetFolioCreatesLocksAndFinds) {
  PageCache cache;
  TestInode inode(12, &cache);
  Mapping* m = inode.mapping();
  Folio* f = nullptr;
  EXPECT_EQ(m->GetFolio(5, kFgpLock, 0, &f), -ENOENT);
  ASSERT_EQ(m->GetFolio(5, kFgpWriteBegin, 0, &f), 0);
  EXPECT_TRUE(f->Locked());
  EXPECT_EQ(f->index(), 5);
  EXPECT_EQ(cache.cached_bytes(), 4096u);
  Folio* g = nullptr;
  EXPECT_EQ(m->GetFolio(5, kFgpLock | kFgpNowait, 0, &g), -EAGAIN);
  f->Unlock();
  ASSERT_EQ(m->GetFolio(5, kFgpLock | kFgpNowait, 0, &g), 0);
  EXPECT_EQ(g, f);
  g->Unlock();
  g->Put();
  f->Put();
  EXPECT_EQ(m->nr_folios(), 1u);
}

TEST(MappingTest, LargeFolioOrderFollowsAlignmentAndNeighbours) {
  PageCache cache;
  TestInode inode(12, &cache);
  Mapping* m = inode.mapping();
  Folio* f = nullptr;
  // Without large folios: order 0 whatever is asked.
  ASSERT_EQ(m->GetFolio(0, kFgpCreat, 9, &f), 0);
  EXPECT_EQ(f->order(), 0u);
  f->Put();
  inode.SetLargeFolios();
  ASSERT_EQ(m->GetFolio(512, kFgpCreat, 9, &f), 0);
  EXPECT_EQ(f->order(), 9u);
  f->Put();
  // Index 6 is aligned to order 1 only.
  ASSERT_EQ(m->GetFolio(6, kFgpCreat, 9, &f), 0);
  EXPECT_EQ(f->order(), 1u);
  f->Put();
  // Index 8, order 3 would overlap nothing: [8, 16).
  ASSERT_EQ(m->GetFolio(8, kFgpCreat, 3, &f), 0);
  EXPECT_EQ(f->order(), 3u);
  f->Put();
  // Index 4 order 2 would be [4, 8), which overlaps [6, 8): order drops.
  ASSERT_EQ(m->GetFolio(4, kFgpCreat, 2, &f), 0);
  EXPECT_EQ(f->order(), 1u);
  f->Put();
  // Lookup of a page inside a large folio finds it.
  FolioRef r = m->Lookup(700);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->index(), 512);
}

TEST(MappingTest, BlockLargerThanPageUsesMinOrder) {
  PageCache cache;
  TestInode inode(16, &cache);  // 64 KiB blocks
  Mapping* m = inode.mapping();
  EXPECT_EQ(m->min_order(), 4u);
  Folio* f = nullptr;
  ASSERT_EQ(m->GetFolio(21, kFgpCreat, 0, &f), 0);
  EXPECT_EQ(f->index(), 16);
  EXPECT_EQ(f->size(), 65536u);
  EXPECT_EQ(f->nr_blocks(), 1u);
  f->Put();
}

TEST(MappingTest, DirtyAccountingAndDirtyIteration) {
  PageCache cache;
  TestInode inode(10, &cache);
  Mapping* m = inode.mapping();
  for (int64_t i = 0; i < 4; i++) {
    Folio* f = nullptr;
    ASSERT_EQ(m->GetFolio(i, kFgpWriteBegin, 0, &f), 0);
    if (i % 2 == 1) {
      EXPECT_TRUE(Mapping::DirtyFolio(f));
    }
    f->Unlock();
    f->Put();
  }
  EXPECT_EQ(m->dirty_bytes(), 8192u);
  EXPECT_EQ(cache.dirty_bytes(), 8192u);
  auto dirty = m->DirtyFolios(0, 100, 10);
  ASSERT_EQ(dirty.size(), 2u);
  EXPECT_EQ(dirty[0]->index(), 1);
  EXPECT_EQ(dirty[1]->index(), 3);
  // DirtyFolio marked every block dirty.
  EXPECT_TRUE(dirty[0]->BlockDirty(0));
  EXPECT_TRUE(dirty[0]->BlockDirty(3));
  // Writeback handover clears the flag (and the tag), not the block bits.
  Folio* f = dirty[0].get();
  f->Lock();
  EXPECT_FALSE(Mapping::ReleaseFolio(f));
  EXPECT_TRUE(f->ClearDirtyForIo());
  f->StartWriteback();
  EXPECT_FALSE(Mapping::ReleaseFolio(f));  // under writeback
  f->Unlock();
  EXPECT_EQ(m->dirty_bytes(), 4096u);
  EXPECT_EQ(m->writeback_bytes(), 4096u);
  EXPECT_TRUE(m->RangeNeedsWriteback(4096, 8192));
  f->EndWriteback();
  EXPECT_FALSE(m->RangeNeedsWriteback(4096, 8192));
  EXPECT_TRUE(m->RangeNeedsWriteback(0, 16384));
  EXPECT_EQ(m->DirtyFolios(0, 100, 10).size(), 1u);
}

TEST(MappingTest, InvalidateOnlyWholeFolioAndPartialUptodate) {
  PageCache cache;
  TestInode inode(9, &cache);
  Mapping* m = inode.mapping();
  Folio* f = nullptr;
  ASSERT_EQ(m->GetFolio(0, kFgpWriteBegin, 0, &f), 0);
  EXPECT_FALSE(Mapping::IsPartiallyUptodate(*f, 0, 512));  // no state yet
  f->AttachState();
  f->SetRangeUptodate(512, 1024);
  EXPECT_TRUE(Mapping::IsPartiallyUptodate(*f, 600, 900));
  EXPECT_FALSE(Mapping::IsPartiallyUptodate(*f, 0, 600));
  Mapping::DirtyFolio(f);
  Mapping::InvalidateFolio(f, 0, 2048);  // partial: nothing
  EXPECT_TRUE(f->Dirty());
  Mapping::InvalidateFolio(f, 0, 4096);
  EXPECT_FALSE(f->Dirty());
  EXPECT_EQ(f->state(), nullptr);
  EXPECT_TRUE(Mapping::ReleaseFolio(f));
  f->Unlock();
  f->Put();
  EXPECT_EQ(m->dirty_bytes(), 0u);
}

TEST(MappingTest, SeekHoleDataFollowsUptodateBlocks) {
  PageCache cache;
  TestInode inode(10, &cache);
  Mapping* m = inode.mapping();
  Folio* f = nullptr;
  ASSERT_EQ(m->GetFolio(1, kFgpWriteBegin, 0, &f), 0);  // [4096, 8192)
  f->AttachState();
  f->SetRangeUptodate(2048, 1024);  // block [6144, 7168)
  f->Unlock();
  f->Put();
  ASSERT_EQ(m->GetFolio(3, kFgpWriteBegin, 0, &f), 0);  // [12288, 16384)
  f->MarkUptodate();
  f->Unlock();
  f->Put();
  EXPECT_EQ(m->SeekHoleData(0, 20000, SEEK_DATA), 6144);
  EXPECT_EQ(m->SeekHoleData(6144, 20000, SEEK_HOLE), 7168);
  EXPECT_EQ(m->SeekHoleData(7168, 20000, SEEK_DATA), 12288);
  EXPECT_EQ(m->SeekHoleData(12288, 20000, SEEK_HOLE), 16384);
  EXPECT_EQ(m->SeekHoleData(16384, 20000, SEEK_DATA), -ENXIO);
  EXPECT_EQ(m->SeekHoleData(13000, 14000, SEEK_HOLE), 14000);
  EXPECT_EQ(m->SeekHoleData(0, 20000, SEEK_HOLE), 0);
}

TEST(MappingTest, TruncateRangeRemovesWholeZeroesPartial) {
  PageCache cache;
  TestInode inode(12, &cache);
  Mapping* m = inode.mapping();
  for (int64_t i = 0; i < 3; i++) {
    Folio* f = nullptr;
    ASSERT_EQ(m->GetFolio(i, kFgpWriteBegin, 0, &f), 0);
    memset(f->data(), 0xab, f->size());
    f->MarkUptodate();
    Mapping::DirtyFolio(f);
    f->Unlock();
    f->Put();
  }
  m->TruncateRange(6000, 3 * 4096);
  EXPECT_EQ(m->nr_folios(), 2u);
  EXPECT_EQ(m->dirty_bytes(), 8192u);
  FolioRef f = m->Lookup(1);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->data()[6000 - 4096 - 1], 0xab);
  EXPECT_EQ(f->data()[6000 - 4096], 0);
  EXPECT_EQ(cache.cached_bytes(), 8192u);
}

TEST(PageCacheTest, ReclaimsCleanLruFoliosOverBudget) {
  PageCacheOptions opts;
  opts.budget_bytes = 16 * 4096;
  PageCache cache(opts);
  TestInode inode(12, &cache);
  Mapping* m = inode.mapping();
  for (int64_t i = 0; i < 64; i++) {
    Folio* f = nullptr;
    ASSERT_EQ(m->GetFolio(i, kFgpWriteBegin, 0, &f), 0);
    f->MarkUptodate();
    if (i < 4) Mapping::DirtyFolio(f);  // dirty ones are never reclaimed
    f->Unlock();
    f->Put();
  }
  EXPECT_LE(cache.cached_bytes(), opts.budget_bytes);
  EXPECT_GT(cache.reclaimed_bytes(), 0u);
  for (int64_t i = 0; i < 4; i++) EXPECT_TRUE(m->Lookup(i)) << i;
  EXPECT_TRUE(m->Lookup(63));  // most recent stays
  // A referenced folio is not reclaimed.
  FolioRef held = m->Lookup(63);
  cache.Reclaim(64 * 4096);
  EXPECT_TRUE(m->Lookup(63));
  EXPECT_EQ(m->nr_folios(), 5u);
}

TEST(MappingTest, InvalidateCleanSkipsDirtyAndLocked) {
  PageCache cache;
  TestInode inode(12, &cache);
  Mapping* m = inode.mapping();
  for (int64_t i = 0; i < 3; i++) {
    Folio* f = nullptr;
    ASSERT_EQ(m->GetFolio(i, kFgpWriteBegin, 0, &f), 0);
    f->MarkUptodate();
    if (i == 1) Mapping::DirtyFolio(f);
    f->Unlock();
    f->Put();
  }
  EXPECT_EQ(m->InvalidateClean(0, 3 * 4096), 2u);
  EXPECT_EQ(m->nr_folios(), 1u);
}

// Many threads create, lock and dirty the same folios: each index ends up
// with exactly one folio, and every thread saw the same one.
TEST(MappingTest, ConcurrentGetFolioCreatesOneFolioPerIndex) {
  PageCache cache;
  TestInode inode(12, &cache);
  inode.SetLargeFolios();
  Mapping* m = inode.mapping();
  constexpr int kThreads = 4;
  constexpr int64_t kPages = 64;
  std::vector<std::vector<Folio*>> seen(kThreads,
                                        std::vector<Folio*>(kPages, nullptr));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([m, t, &seen] {
      for (int64_t i = 0; i < kPages; i++) {
        const int64_t index = (i * 7 + t) % kPages;
        Folio* f = nullptr;
        ASSERT_EQ(m->GetFolio(index, kFgpWriteBegin, (i + t) % 3, &f), 0);
        Mapping::DirtyFolio(f);
        seen[t][index] = f;
        f->Unlock();
        f->Put();
      }
    });
  }
  for (auto& th : threads) th.join();
  uint64_t bytes = 0;
  int64_t next = 0;
  for (FolioRef& f : m->FoliosInRange(0, kPages)) {
    EXPECT_EQ(f->index(), next);  // no overlap, no gap
    next = f->index() + (int64_t{1} << f->order());
    bytes += f->size();
  }
  EXPECT_EQ(next, kPages);
  EXPECT_EQ(m->dirty_bytes(), bytes);
  for (int64_t i = 0; i < kPages; i++) {
    for (int t = 1; t < kThreads; t++) EXPECT_EQ(seen[t][i], seen[0][i]);
  }
}

}  // namespace
}  // namespace iomap
