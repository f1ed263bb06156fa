// ZeroRange, TruncatePage, FileUnshare and PageMkwrite against the fake
// filesystem, and the lock assertions of the entry points.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "iomap/buffered_io.h"
#include "iomap/testing/fake_fs.h"
#include "iomap/testing/mem_device.h"

namespace iomap {
namespace {

using testing::FakeFs;
using testing::MemDevice;

constexpr uint64_t kDevBase = 1 << 20;

uint8_t Pattern(int64_t i) { return static_cast<uint8_t>((i * 5 + 11) % 241); }

// A stand-in for the writeback engine: "writes back" by cleaning the dirty
// folios in range and converting the filesystem's unwritten extent there.
class FlushHooks : public MappingHooks {
 public:
  explicit FlushHooks(FakeFs* fs) : fs_(fs) {}
  int WriteAndWaitRange(Inode* inode, int64_t start, int64_t end) override {
    flushes++;
    for (FolioRef& f : inode->mapping()->FoliosInRange(start >> kPageShift,
                                                       end >> kPageShift)) {
      f->Lock();
      f->ClearDirtyForIo();
      f->ClearRangeDirty(0, f->size());
      f->Unlock();
    }
    for (const auto& e : fs_->Extents()) {
      if (e.type == Iomap::Type::kUnwritten) {
        fs_->SetExtent(e.offset, e.length, Iomap::Type::kMapped, e.addr);
      }
    }
    return 0;
  }
  int BalanceDirty(Inode*, bool) override {
    balances++;
    return 0;
  }
  int flushes = 0;
  int balances = 0;

 private:
  FakeFs* fs_;
};

class OpsTest : public ::testing::TestWithParam<unsigned> {
 protected:
  OpsTest() : dev_(8 << 20, true), fs_(&dev_, GetParam(), true, &cache_) {
    for (int64_t i = 0; i < (1 << 20); i++) {
      dev_.data()[kDevBase + i] = Pattern(i);
    }
  }
  Inode* inode() { return fs_.inode(); }
  int64_t bs() { return inode()->block_size(); }
  int64_t unit() { return std::max<int64_t>(64 << 10, 4 * bs()); }

  std::vector<uint8_t> Cached(int64_t pos, size_t len) {
    std::vector<uint8_t> buf(len);
    base::ReaderLock l(&inode()->locks().rwsem);
    EXPECT_EQ(FileBufferedRead(inode(), pos, len, buf.data(), 0, fs_),
              static_cast<int64_t>(len));
    return buf;
  }
  int64_t Write(int64_t pos, size_t len, uint8_t byte) {
    std::vector<uint8_t> data(len, byte);
    BufferSource src(data.data(), len);
    base::WriterLock l(&inode()->locks().rwsem);
    return FileBufferedWrite(inode(), pos, &src, 0, fs_, &fs_);
  }
  int Zero(int64_t pos, int64_t len, bool* did_zero) {
    base::WriterLock l(&inode()->locks().rwsem);
    base::WriterLock m(&inode()->locks().invalidate);
    return ZeroRange(inode(), pos, len, did_zero, fs_, &fs_);
  }

  PageCache cache_;
  MemDevice dev_;
  FakeFs fs_;
};

TEST_P(OpsTest, ZeroRangeOverMappedZeroesInCache) {
  fs_.SetExtent(0, unit(), Iomap::Type::kMapped, kDevBase);
  inode()->i_size_write(unit());
  bool did_zero = false;
  ASSERT_EQ(Zero(100, 5000, &did_zero), 0);
  EXPECT_TRUE(did_zero);
  for (const auto& b : fs_.begins()) EXPECT_EQ(b.flags, kZero);
  std::vector<uint8_t> got = Cached(0, 8192);
  EXPECT_EQ(got[99], Pattern(99));
  for (int i = 100; i < 5100; i++) ASSERT_EQ(got[i], 0) << i;
  EXPECT_EQ(got[5100], Pattern(5100));
  EXPECT_GT(inode()->mapping()->dirty_bytes(), 0u);
}

TEST_P(OpsTest, ZeroRangeSkipsHolesAndCleanUnwritten) {
  fs_.SetExtent(unit(), unit(), Iomap::Type::kUnwritten, kDevBase);
  inode()->i_size_write(2 * unit());
  bool did_zero = false;
  ASSERT_EQ(Zero(10, 2 * unit() - 20, &did_zero), 0);
  EXPECT_FALSE(did_zero);
  EXPECT_EQ(inode()->mapping()->nr_folios(), 0u);
}

TEST_P(OpsTest, ZeroRangeOverDirtyUnwrittenFlushesAndRemaps) {
  fs_.SetExtent(0, unit(), Iomap::Type::kUnwritten, kDevBase);
  inode()->i_size_write(unit());
  ASSERT_EQ(Write(1000, 100, 0x77), 100);
  // Without a writeback engine the required flush cannot happen.
  EXPECT_EQ(Zero(0, bs(), nullptr), -EOPNOTSUPP);
  FlushHooks hooks(&fs_);
  inode()->mapping()->set_hooks(&hooks);
  bool did_zero = false;
  ASSERT_EQ(Zero(0, 2 * bs(), &did_zero), 0);
  EXPECT_EQ(hooks.flushes, 1);
  EXPECT_TRUE(did_zero);
  std::vector<uint8_t> got = Cached(0, 2 * bs());
  for (int64_t i = 0; i < 2 * bs(); i++) ASSERT_EQ(got[i], 0) << i;
  inode()->mapping()->set_hooks(nullptr);
}

// A filesystem that, like XFS in the newest kernels, hands ZeroRange the
// dirty folios over an unwritten extent (iomap_fill_dirty_folios) and ends
// the mapping where the batch ends.
class BatchingFs : public IomapOps {
 public:
  explicit BatchingFs(FakeFs* fs) : fs_(fs) {}
  int IomapBegin(Inode* inode, int64_t pos, int64_t len, unsigned flags,
                 Iomap* iomap, Iomap* srcmap) override {
    int ret = fs_->IomapBegin(inode, pos, len, flags, iomap, srcmap);
    if (ret < 0 || !(flags & kZero) || iomap->type != Iomap::Type::kUnwritten) {
      return ret;
    }
    int64_t start = pos;
    const int64_t end = std::min(iomap->End(), pos + len);
    batched += FillDirtyFolios(IomapIter::FromIomap(iomap), &start, end,
                               &iomap->flags);
    iomap->length =
        static_cast<uint64_t>(std::min(start, iomap->End()) - iomap->offset);
    return 0;
  }
  int IomapEnd(Inode* inode, int64_t pos, int64_t len, int64_t written,
               unsigned flags, Iomap* iomap) override {
    return fs_->IomapEnd(inode, pos, len, written, flags, iomap);
  }
  unsigned batched = 0;

 private:
  FakeFs* fs_;
};

// Zeroing over an unwritten extent with a folio batch zeroes the dirty
// folios in place: no flush, no conversion, no new folios, clean folios
// left alone.
TEST_P(OpsTest, ZeroRangeWithFolioBatchZeroesOnlyDirtyFolios) {
  const int64_t u = unit();
  fs_.SetExtent(0, 4 * u, Iomap::Type::kUnwritten, kDevBase);
  inode()->i_size_write(4 * u);
  ASSERT_EQ(Write(u + 100, 300, 0x77), 300);
  ASSERT_EQ(Write(3 * u, 5000, 0x78), 5000);
  std::vector<uint8_t> clean = Cached(2 * u, 4096);  // a clean folio
  const uint64_t folios = inode()->mapping()->nr_folios();
  FlushHooks hooks(&fs_);
  inode()->mapping()->set_hooks(&hooks);
  BatchingFs batching(&fs_);
  bool did_zero = false;
  {
    base::WriterLock l(&inode()->locks().rwsem);
    base::WriterLock m(&inode()->locks().invalidate);
    ASSERT_EQ(ZeroRange(inode(), 50, 4 * u - 60, &did_zero, batching, &fs_), 0);
  }
  inode()->mapping()->set_hooks(nullptr);
  EXPECT_EQ(hooks.flushes, 0);
  EXPECT_TRUE(did_zero);
  EXPECT_GE(batching.batched, 2u);
  EXPECT_EQ(inode()->mapping()->nr_folios(), folios);
  EXPECT_EQ(fs_.Extents()[0].type, Iomap::Type::kUnwritten);
  EXPECT_FALSE(inode()->mapping()->Lookup((2 * u) >> kPageShift)->Dirty());
  std::vector<uint8_t> got = Cached(0, 4 * u);
  for (int64_t i = 0; i < 4 * u; i++) ASSERT_EQ(got[i], 0) << i;
}

// More dirty folios than one batch holds: the filesystem's mapping ends
// where the batch ends and the next IomapBegin collects the rest.
TEST_P(OpsTest, ZeroRangeRefillsFolioBatchAcrossMappings) {
  const int64_t stride = std::max<int64_t>(8192, 2 * bs());
  const int n = 40;
  fs_.SetExtent(0, n * stride, Iomap::Type::kUnwritten, kDevBase);
  inode()->i_size_write(n * stride);
  for (int i = 0; i < n; i++) ASSERT_EQ(Write(i * stride, 100, 0x55), 100);
  BatchingFs batching(&fs_);
  fs_.ClearCalls();
  {
    base::WriterLock l(&inode()->locks().rwsem);
    base::WriterLock m(&inode()->locks().invalidate);
    ASSERT_EQ(ZeroRange(inode(), 0, n * stride, nullptr, batching, &fs_), 0);
  }
  EXPECT_EQ(batching.batched, static_cast<unsigned>(n));
  EXPECT_GE(fs_.begins().size(), 2u);
  std::vector<uint8_t> got = Cached(0, n * stride);
  for (int64_t i = 0; i < n * stride; i++) ASSERT_EQ(got[i], 0) << i;
}

// Outside ZeroRange there is no batch: nothing is collected, the whole
// range is reported done and the mapping is not flagged.
TEST_P(OpsTest, FillDirtyFoliosWithoutBatchCollectsNothing) {
  inode()->i_size_write(0);
  ASSERT_EQ(Write(0, 100, 0x33), 100);
  IomapIter iter(inode(), 0, 8192, kZero);
  int64_t start = 0;
  uint32_t flags = 0;
  EXPECT_EQ(FillDirtyFolios(&iter, &start, 8192, &flags), 0u);
  EXPECT_EQ(start, 8192);
  EXPECT_EQ(flags, 0u);
}

TEST_P(OpsTest, ZeroRangeOverDelallocZeroes) {
  inode()->i_size_write(0);
  ASSERT_EQ(Write(0, 100, 0x33), 100);
  bool did_zero = false;
  ASSERT_EQ(Zero(50, 20, &did_zero), 0);
  EXPECT_TRUE(did_zero);
  std::vector<uint8_t> got = Cached(0, 100);
  EXPECT_EQ(got[49], 0x33);
  EXPECT_EQ(got[50], 0);
  EXPECT_EQ(got[69], 0);
  EXPECT_EQ(got[70], 0x33);
}

TEST_P(OpsTest, TruncatePageZeroesToBlockEnd) {
  fs_.SetExtent(0, unit(), Iomap::Type::kMapped, kDevBase);
  inode()->i_size_write(unit());
  {
    base::WriterLock l(&inode()->locks().rwsem);
    base::WriterLock m(&inode()->locks().invalidate);
    bool did_zero = false;
    EXPECT_EQ(TruncatePage(inode(), 2 * bs(), &did_zero, fs_, &fs_), 0);
    EXPECT_FALSE(did_zero);
    EXPECT_TRUE(fs_.begins().empty());
    ASSERT_EQ(TruncatePage(inode(), bs() + 100, &did_zero, fs_, &fs_), 0);
    EXPECT_TRUE(did_zero);
  }
  std::vector<uint8_t> got = Cached(0, 3 * bs());
  EXPECT_EQ(got[bs() + 99], Pattern(bs() + 99));
  for (int64_t i = bs() + 100; i < 2 * bs(); i++) ASSERT_EQ(got[i], 0) << i;
  EXPECT_EQ(got[2 * bs()], Pattern(2 * bs()));
}

TEST_P(OpsTest, TruncateSetsizeDropsCacheBeyondEof) {
  fs_.SetExtent(0, unit(), Iomap::Type::kMapped, kDevBase);
  inode()->i_size_write(unit());
  ASSERT_EQ(Cached(0, unit()).size(), static_cast<size_t>(unit()));
  const int64_t newsize = bs() + 100;
  {
    base::WriterLock l(&inode()->locks().rwsem);
    base::WriterLock m(&inode()->locks().invalidate);
    ASSERT_EQ(TruncatePage(inode(), newsize, nullptr, fs_, &fs_), 0);
    TruncateSetsize(inode(), newsize);
  }
  EXPECT_EQ(inode()->i_size_read(), newsize);
  for (FolioRef& f : inode()->mapping()->FoliosInRange(0, 1 << 20)) {
    EXPECT_LT(f->pos(), newsize);
    for (int64_t i = std::max(newsize, f->pos()); i < f->end(); i++) {
      ASSERT_EQ(f->data()[i - f->pos()], 0) << i;
    }
  }
  std::vector<uint8_t> got = Cached(0, newsize);
  EXPECT_EQ(got[newsize - 1], Pattern(newsize - 1));
}

// Truncation under both locks, as a filesystem's setattr does.
void SetSize(Inode* inode, int64_t size) {
  base::WriterLock l(&inode->locks().rwsem);
  base::WriterLock m(&inode->locks().invalidate);
  TruncateSetsize(inode, size);
}

int64_t RoundUp(int64_t v, int64_t unit) {
  return (v + unit - 1) / unit * unit;
}

// truncate_inode_partial_folio(): a 2 MiB dirty folio straddling the new
// EOF is split, the pieces past EOF leave the cache (memory and dirty
// accounting follow), the data below EOF and its dirty state stay.
TEST_P(OpsTest, TruncateSplitsLargeFolioStraddlingEof) {
  const int64_t fsz = int64_t{2} << 20;
  inode()->i_size_write(0);
  ASSERT_EQ(Write(0, fsz, 0x5a), fsz);
  ASSERT_EQ(Write(5, 10, 0x11), 10);  // attaches per-block state
  ASSERT_EQ(inode()->mapping()->nr_folios(), 1u);
  const int64_t newsize = 300007;
  SetSize(inode(), newsize);
  const int64_t kept = RoundUp(newsize, std::max<int64_t>(4096, bs()));
  for (FolioRef& f : inode()->mapping()->FoliosInRange(0, 1 << 20)) {
    EXPECT_LE(f->end(), kept);
    EXPECT_TRUE(f->Dirty());
  }
  EXPECT_LE(inode()->mapping()->nr_folios(), 20u);  // large pieces kept
  EXPECT_EQ(cache_.cached_bytes(), static_cast<uint64_t>(kept));
  EXPECT_EQ(inode()->mapping()->dirty_bytes(), static_cast<uint64_t>(kept));
  EXPECT_EQ(cache_.dirty_bytes(), static_cast<uint64_t>(kept));
  std::vector<uint8_t> got = Cached(0, newsize);
  for (int64_t i = 0; i < newsize; i++) {
    ASSERT_EQ(got[i], i >= 5 && i < 15 ? 0x11 : 0x5a) << i;
  }
}

// A punch (truncate_pagecache_range) inside a large folio: the pieces
// wholly inside the range leave the cache, both sides keep their data.
TEST_P(OpsTest, TruncateRangeInsideLargeFolioDropsItsPieces) {
  const int64_t fsz = int64_t{2} << 20;
  inode()->i_size_write(0);
  ASSERT_EQ(Write(0, fsz, 0x5a), fsz);
  const int64_t start = 100000, end = 700000;
  {
    base::WriterLock l(&inode()->locks().rwsem);
    base::WriterLock m(&inode()->locks().invalidate);
    inode()->mapping()->TruncateRange(start, end);
  }
  const int64_t unit = std::max<int64_t>(4096, bs());
  const int64_t removed = end / unit * unit - RoundUp(start, unit);
  EXPECT_EQ(cache_.cached_bytes(), static_cast<uint64_t>(fsz - removed));
  EXPECT_EQ(inode()->mapping()->dirty_bytes(),
            static_cast<uint64_t>(fsz - removed));
  std::vector<uint8_t> got = Cached(0, fsz);
  for (int64_t i = 0; i < fsz; i++) {
    ASSERT_EQ(got[i], i >= start && i < end ? 0 : 0x5a) << i;
  }
}

// A large folio someone else holds cannot be split: a dirty one stays in
// the cache whole (zeroed past EOF), a clean one leaves it whole and is
// read again.
TEST_P(OpsTest, TruncateKeepsOrDropsFolioItCannotSplit) {
  const int64_t fsz = int64_t{2} << 20;
  const int64_t newsize = 300007;
  inode()->i_size_write(0);
  ASSERT_EQ(Write(0, fsz, 0x5a), fsz);
  {
    FolioRef held = inode()->mapping()->Lookup(0);
    SetSize(inode(), newsize);
    EXPECT_EQ(held->mapping(), inode()->mapping());
    EXPECT_TRUE(held->Dirty());
    EXPECT_EQ(held->size(), static_cast<size_t>(fsz));
    EXPECT_EQ(held->data()[newsize], 0);
    EXPECT_EQ(held->data()[newsize - 1], 0x5a);
  }
  SetSize(inode(), 0);
  // Clean, from the device (Readahead builds large folios; a read's own
  // first window, as the kernel's, uses small ones).
  fs_.SetExtent(0, fsz, Iomap::Type::kMapped, kDevBase);
  inode()->i_size_write(1 << 20);
  Readahead(inode(), 0, (1 << 20) >> kPageShift, fs_);
  ASSERT_EQ(Cached(0, 1 << 20)[7], Pattern(7));
  FolioRef held = inode()->mapping()->Lookup(0);
  ASSERT_GT(held->order(), inode()->mapping()->min_order());
  ASSERT_FALSE(held->Dirty());
  SetSize(inode(), newsize);
  EXPECT_EQ(held->mapping(), nullptr);
  std::vector<uint8_t> got = Cached(0, newsize);
  for (int64_t i = 0; i < newsize; i++) ASSERT_EQ(got[i], Pattern(i)) << i;
}

TEST_P(OpsTest, UnshareReadsSharedDataAndDirtiesIt) {
  fs_.SetExtent(0, unit(), Iomap::Type::kMapped, kDevBase, kShared);
  inode()->i_size_write(2 * unit());  // [unit, 2 unit) is a hole
  dev_.ResetCounters();
  {
    base::WriterLock l(&inode()->locks().rwsem);
    base::WriterLock m(&inode()->locks().invalidate);
    EXPECT_EQ(FileUnshare(inode(), 2 * unit(), 100, fs_, &fs_), 0);
    EXPECT_TRUE(fs_.begins().empty());
    ASSERT_EQ(FileUnshare(inode(), 0, 4 * unit(), fs_, &fs_), 0);
  }
  for (const auto& b : fs_.begins()) EXPECT_EQ(b.flags, kWrite | kUnshare);
  // Every shared byte was read, even though whole folios were covered.
  EXPECT_EQ(dev_.read_bytes(), static_cast<uint64_t>(unit()));
  EXPECT_EQ(inode()->mapping()->dirty_bytes(), static_cast<uint64_t>(unit()));
  for (FolioRef& f : inode()->mapping()->FoliosInRange(0, 1 << 20)) {
    EXPECT_LT(f->pos(), unit());  // the hole got no folios
    EXPECT_TRUE(f->Dirty());
    EXPECT_EQ(f->data()[7], Pattern(f->pos() + 7));
  }
}

TEST_P(OpsTest, UnshareSkipsUnsharedMappings) {
  fs_.SetExtent(0, unit(), Iomap::Type::kMapped, kDevBase);
  inode()->i_size_write(unit());
  base::WriterLock l(&inode()->locks().rwsem);
  base::WriterLock m(&inode()->locks().invalidate);
  ASSERT_EQ(FileUnshare(inode(), 0, unit(), fs_, &fs_), 0);
  EXPECT_EQ(inode()->mapping()->nr_folios(), 0u);
}

TEST_P(OpsTest, PageMkwriteDirtiesWholeFolioWithinEof) {
  const int64_t fsize = std::max<int64_t>(4096, bs());
  inode()->i_size_write(fsize + 100);
  Mapping* m = inode()->mapping();
  std::vector<Folio*> folios;
  for (int64_t idx : {int64_t{0}, fsize / 4096, 2 * fsize / 4096}) {
    Folio* f = nullptr;
    ASSERT_EQ(m->GetFolio(idx, kFgpWriteBegin, 0, &f), 0);
    f->MarkUptodate();
    f->Unlock();
    folios.push_back(f);
  }
  base::ReaderLock inval(&inode()->locks().invalidate);
  ASSERT_EQ(PageMkwrite(inode(), folios[0], fs_), 0);
  EXPECT_TRUE(folios[0]->Locked());
  EXPECT_TRUE(folios[0]->Dirty());
  EXPECT_TRUE(folios[0]->BlockDirty(folios[0]->nr_blocks() - 1));
  folios[0]->Unlock();
  auto begins = fs_.begins();
  ASSERT_FALSE(begins.empty());
  EXPECT_EQ(begins[0].flags, kWrite | kFault);
  EXPECT_EQ(begins[0].len, fsize);
  // The EOF folio maps only the part within EOF.
  fs_.ClearCalls();
  ASSERT_EQ(PageMkwrite(inode(), folios[1], fs_), 0);
  folios[1]->Unlock();
  EXPECT_EQ(fs_.begins()[0].len, 100);
  // A folio wholly past EOF was truncated away: -EFAULT, unlocked.
  EXPECT_EQ(PageMkwrite(inode(), folios[2], fs_), -EFAULT);
  EXPECT_FALSE(folios[2]->Locked());
  // Mapped-write faults allocate (delalloc) but never punch it.
  EXPECT_TRUE(fs_.IsDelalloc(0));
  for (Folio* f : folios) f->Put();
}

// The EOF folio as a mapped writer leaves it: uptodate (the fault read it),
// dirty and write-mapped through PageMkwrite, with `junk` stored past EOF.
// Returns it referenced.
Folio* MappedEofFolio(Inode* inode, FakeFs* fs, uint8_t junk) {
  Folio* f = inode->mapping()->Lookup(0).Release();
  f->Lock();
  EXPECT_EQ(ReadFolio(f, *fs), 0);  // filemap_fault reads before mapping
  f->Lock();
  EXPECT_TRUE(f->Uptodate());
  f->Unlock();
  {
    base::ReaderLock inval(&inode->locks().invalidate);
    EXPECT_EQ(PageMkwrite(inode, f, *fs), 0);
  }
  EXPECT_TRUE(f->WriteMapped());
  const int64_t eof = inode->i_size_read();
  std::memset(f->data() + eof, junk, f->size() - eof);  // a store past EOF
  f->Unlock();
  return f;
}

// pagecache_isize_extended() on truncate up: what a mapped store left past
// the old EOF reads as zeros once inside the file, and the folio is
// write-protected so the next store faults (and allocates the new blocks).
TEST_P(OpsTest, SizeExtensionZeroesStoresPastOldEofAndRefaults) {
  if (bs() >= 4096) GTEST_SKIP() << "only blocks smaller than a page";
  ASSERT_EQ(Write(0, 1000, 0x11), 1000);
  Folio* f = MappedEofFolio(inode(), &fs_, 0xab);
  {
    base::WriterLock l(&inode()->locks().rwsem);
    base::WriterLock m(&inode()->locks().invalidate);
    TruncateSetsize(inode(), 3000);
  }
  EXPECT_FALSE(f->WriteMapped());
  EXPECT_TRUE(f->Dirty());
  std::vector<uint8_t> got = Cached(0, 3000);
  for (int i = 0; i < 1000; i++) ASSERT_EQ(got[i], 0x11) << i;
  for (int i = 1000; i < 3000; i++) ASSERT_EQ(got[i], 0) << i;
  f->Put();
}

// The same for a buffered write that starts past EOF (iomap_write_iter), in
// the EOF folio itself and in a later one.
TEST_P(OpsTest, WritePastEofZeroesStoresBetweenOldEofAndWrite) {
  if (bs() >= 4096) GTEST_SKIP() << "only blocks smaller than a page";
  for (int64_t wpos : {int64_t{3500}, int64_t{3 * 4096}}) {
    SCOPED_TRACE(wpos);
    {
      base::WriterLock l(&inode()->locks().rwsem);
      base::WriterLock m(&inode()->locks().invalidate);
      TruncateSetsize(inode(), 0);
    }
    ASSERT_EQ(Write(0, 1000, 0x11), 1000);
    Folio* f = MappedEofFolio(inode(), &fs_, 0xab);
    ASSERT_EQ(Write(wpos, 10, 0x22), 10);
    EXPECT_FALSE(f->WriteMapped());
    std::vector<uint8_t> got = Cached(0, wpos + 10);
    for (int i = 1000; i < wpos; i++) ASSERT_EQ(got[i], 0) << i;
    EXPECT_EQ(got[wpos + 9], 0x22);
    f->Put();
  }
}

// No new block inside the EOF page (the old EOF's block ends at the page
// end): the page keeps its write mapping. Writeback write-protects it.
TEST_P(OpsTest, SizeExtensionLeavesPageWithoutNewBlockMapped) {
  if (bs() >= 4096) GTEST_SKIP() << "only blocks smaller than a page";
  ASSERT_EQ(Write(0, 4096 - 100, 0x11), 4096 - 100);
  Folio* f = MappedEofFolio(inode(), &fs_, 0);
  {
    base::WriterLock l(&inode()->locks().rwsem);
    base::WriterLock m(&inode()->locks().invalidate);
    TruncateSetsize(inode(), 3 * 4096);
  }
  EXPECT_TRUE(f->WriteMapped());
  f->Lock();
  f->ClearDirtyForIo();  // writeback's handover is folio_mkclean too
  EXPECT_FALSE(f->WriteMapped());
  f->Unlock();
  f->Put();
}

TEST_P(OpsTest, EntryPointsAssertTheirLocks) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  fs_.SetExtent(0, unit(), Iomap::Type::kMapped, kDevBase);
  inode()->i_size_write(unit());
  EXPECT_DEATH(ZeroRange(inode(), 0, 10, nullptr, fs_), "AssertHeld");
  EXPECT_DEATH(FileUnshare(inode(), 0, 10, fs_), "AssertHeld");
  std::vector<uint8_t> buf(10);
  EXPECT_DEATH(FileBufferedRead(inode(), 0, 10, buf.data(), 0, fs_),
               "AssertReaderHeld");
  BufferSource src(buf.data(), buf.size());
  EXPECT_DEATH(FileBufferedWrite(inode(), 0, &src, 0, fs_), "AssertReaderHeld");
  Iomap map;
  EXPECT_DEATH(WriteDelallocRelease(inode(), 0, 10, 0, &map,
                                    [](Inode*, int64_t, int64_t, Iomap*) {}),
               "AssertHeld");
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, OpsTest,
                         ::testing::Values(9u, 10u, 11u, 12u, 16u),
                         [](const ::testing::TestParamInfo<unsigned>& info) {
                           return "bs" + std::to_string(1u << info.param);
                         });

}  // namespace
}  // namespace iomap
