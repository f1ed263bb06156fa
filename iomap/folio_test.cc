#include "iomap/folio.h"

#include <thread>

#include "gtest/gtest.h"

namespace iomap {
namespace {

TEST(FolioStateTest, BitsAndRuns) {
  FolioState s(8, false, false);
  EXPECT_FALSE(s.AllUptodate());
  EXPECT_FALSE(s.SetRangeUptodate(0, 4));
  EXPECT_TRUE(s.RangeUptodate(0, 4));
  EXPECT_FALSE(s.RangeUptodate(3, 2));
  EXPECT_TRUE(s.SetRangeUptodate(4, 4));
  s.SetRangeDirty(2, 2);
  s.SetRangeDirty(6, 1);
  EXPECT_TRUE(s.AnyDirty());
  unsigned first = 0;
  EXPECT_EQ(s.NextDirtyRun(&first, 8), 2u);
  EXPECT_EQ(first, 2u);
  first = 4;
  EXPECT_EQ(s.NextDirtyRun(&first, 8), 1u);
  EXPECT_EQ(first, 6u);
  first = 7;
  EXPECT_EQ(s.NextDirtyRun(&first, 8), 0u);
  s.ClearRangeDirty(0, 8);
  EXPECT_FALSE(s.AnyDirty());
}

TEST(FolioStateTest, CopiesFolioFlagsAtAllocation) {
  FolioState s(4096, true, true);  // 2 MiB of 512-byte blocks
  EXPECT_TRUE(s.AllUptodate());
  EXPECT_TRUE(s.BlockDirty(4095));
}

TEST(FolioTest, GeometryAndAlignment) {
  Folio f(nullptr, 512, 9, 12);
  EXPECT_EQ(f.size(), 2u << 20);
  EXPECT_EQ(f.pos(), 512 * 4096);
  EXPECT_EQ(f.nr_blocks(), 512u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f.data()) % 4096, 0u);
  EXPECT_EQ(f.data()[12345], 0);
}

TEST(FolioTest, SingleBlockFolioHasNoState) {
  Folio f(nullptr, 0, 0, 12);
  f.Lock();
  EXPECT_EQ(f.AttachState(), nullptr);
  f.SetRangeUptodate(0, 4096);
  EXPECT_TRUE(f.Uptodate());
  f.Unlock();
}

TEST(FolioTest, PerBlockUptodateMakesFolioUptodate) {
  Folio f(nullptr, 0, 0, 10);
  f.Lock();
  ASSERT_NE(f.AttachState(), nullptr);
  f.SetRangeUptodate(0, 2048);
  EXPECT_FALSE(f.Uptodate());
  EXPECT_TRUE(f.RangeUptodate(1024, 1024));
  EXPECT_FALSE(f.RangeUptodate(1024, 2048));
  f.SetRangeUptodate(2048, 2048);
  EXPECT_TRUE(f.Uptodate());
  f.Unlock();
}

TEST(FolioTest, LockReleasedByAnotherThread) {
  Folio f(nullptr, 0, 0, 12);
  f.Lock();
  f.HandOffLock();
  EXPECT_FALSE(f.TryLock());
  std::thread t([&f] { f.Unlock(); });
  f.Lock();  // waits for the other thread's unlock
  t.join();
  EXPECT_TRUE(f.Locked());
  f.Unlock();
  EXPECT_FALSE(f.Locked());
}

TEST(FolioTest, WritebackWaitAndRefs) {
  auto* f = new Folio(nullptr, 0, 0, 12);
  f->Lock();
  f->StartWriteback();
  f->Unlock();
  EXPECT_TRUE(f->Writeback());
  std::thread t([f] { f->EndWriteback(); });
  f->WaitWriteback();
  t.join();
  EXPECT_FALSE(f->Writeback());
  f->Get();
  EXPECT_EQ(f->RefCount(), 2);
  f->Put();
  f->Put();  // frees
}

}  // namespace
}  // namespace iomap
