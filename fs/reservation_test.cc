#include "fs/reservation.h"

#include <cerrno>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "base/errno.h"
#include "fs/extent_map.h"
#include "gtest/gtest.h"

namespace fs {
namespace {

TEST(ReservationTest, ReserveReleaseAndTotals) {
  Allocator alloc(0, 100, Allocator::Init::kAllFree);
  ReservationCounter res(&alloc);
  ASSERT_EQ(res.Reserve(7, 30), 0);
  ASSERT_EQ(res.Reserve(9, 50), 0);
  EXPECT_EQ(res.Reserve(9, 21), -ENOSPC);
  EXPECT_EQ(res.Reserved(9), 50u);
  EXPECT_EQ(res.TotalReserved(), 80u);
  EXPECT_EQ(alloc.ReservedBlocks(), 80u);
  EXPECT_EQ(res.Release(7, 31), -EINVAL);
  EXPECT_EQ(res.Release(8, 1), -EINVAL);
  ASSERT_EQ(res.Release(7, 30), 0);
  EXPECT_EQ(res.NumInodes(), 1u);
  EXPECT_EQ(res.ReleaseAll(9), 50u);
  EXPECT_EQ(res.ReleaseAll(9), 0u);
  EXPECT_EQ(alloc.ReservedBlocks(), 0u);
  EXPECT_TRUE(res.Check().ok());
}

TEST(ReservationTest, AllocReservedConsumesTheInodesReservation) {
  Allocator alloc(0, 100, Allocator::Init::kAllFree);
  ReservationCounter res(&alloc);
  ASSERT_EQ(res.Reserve(1, 10), 0);
  AllocRequest req;
  req.want_blocks = 11;
  BlockRange got;
  EXPECT_EQ(res.AllocReserved(1, req, &got), -EINVAL);
  req.want_blocks = 6;
  ASSERT_EQ(res.AllocReserved(1, req, &got), 0);
  EXPECT_EQ(got.len, 6u);
  EXPECT_EQ(res.Reserved(1), 4u);
  EXPECT_EQ(alloc.ReservedBlocks(), 4u);
  EXPECT_EQ(alloc.FreeBlocks(), 94u);
  EXPECT_TRUE(res.Check().ok());
}

TEST(ReservationTest, CheckCatchesReservationsBehindItsBack) {
  Allocator alloc(0, 100, Allocator::Init::kAllFree);
  ReservationCounter res(&alloc);
  ASSERT_EQ(res.Reserve(1, 5), 0);
  ASSERT_EQ(alloc.Reserve(3), 0);
  absl::Status st = res.Check();
  EXPECT_EQ(base::ErrnoOf(st), -EUCLEAN);
  EXPECT_NE(st.message().find("allocator holds 8"), absl::string_view::npos);
  st = res.CheckInode(1, 4);
  EXPECT_NE(st.message().find("inode 1 holds 5"), absl::string_view::npos);
}

TEST(ReservationTest, ConcurrentInodesKeepExactTotals) {
  Allocator alloc(0, 100000, Allocator::Init::kAllFree);
  ReservationCounter res(&alloc);
  auto worker = [&](uint64_t ino) {
    std::mt19937_64 rng(ino);
    for (int i = 0; i < 3000; ++i) {
      const uint64_t n = 1 + rng() % 8;
      ASSERT_EQ(res.Reserve(ino, n), 0);
      AllocRequest req;
      req.want_blocks = 1 + rng() % n;
      BlockRange got;
      ASSERT_EQ(res.AllocReserved(ino, req, &got), 0);
      ASSERT_EQ(alloc.Free(got.start, got.len), 0);
      ASSERT_EQ(res.Release(ino, n - got.len), 0);
    }
  };
  std::vector<std::thread> threads;
  for (uint64_t ino = 1; ino <= 4; ++ino) threads.emplace_back(worker, ino);
  for (auto& t : threads) t.join();
  EXPECT_EQ(res.TotalReserved(), 0u);
  EXPECT_EQ(res.NumInodes(), 0u);
  EXPECT_EQ(alloc.FreeBlocks(), 100000u);
  EXPECT_TRUE(res.Check().ok());
}

// --- delalloc life cycle over an ExtentMap: the property the counter
// exists to prove ("short writes leave no reservation behind") ---

struct Inode {
  uint64_t ino;
  ExtentMap data;
};

// A buffered write of [off, off + len) of which only `copied` blocks were
// copied: reserve and map delalloc over the holes, then punch what the
// short write did not use (iomap_write_delalloc_release).
int BufferedWrite(ReservationCounter& res, Inode& ip, uint64_t off,
                  uint64_t len, uint64_t copied) {
  std::vector<BlockRange> holes;
  for (uint64_t pos = off; pos < off + len;) {
    Extent e = ip.data.Lookup(pos);
    const uint64_t n = std::min(e.file_end(), off + len) - pos;
    if (e.state == ExtentState::kHole) holes.push_back(BlockRange{pos, n});
    pos += n;
  }
  uint64_t need = 0;
  for (const BlockRange& h : holes) need += h.len;
  if (int err = res.Reserve(ip.ino, need); err != 0) return err;
  for (const BlockRange& h : holes) {
    if (ip.data.Map(h.start, h.len, kNoDevBlock, ExtentState::kDelalloc,
                    nullptr) != 0) {
      return -EIO;
    }
  }
  // Punch only the delalloc this write created past what it copied (the
  // kernel punches IOMAP_F_NEW delalloc that is not dirty in the cache).
  const uint64_t unused = off + copied;
  for (const BlockRange& h : holes) {
    if (h.end() <= unused) continue;
    const uint64_t from = std::max(h.start, unused);
    const int64_t punched =
        ip.data.PunchDelalloc(from, h.end() - from, nullptr);
    if (punched < 0) return static_cast<int>(punched);
    if (int err = res.Release(ip.ino, static_cast<uint64_t>(punched))) {
      return err;
    }
  }
  return 0;
}

// Writeback: every delalloc extent becomes written blocks allocated from
// the inode's reservation.
int Writeback(ReservationCounter& res, Inode& ip) {
  Extent e;
  uint64_t pos = 0;
  while (ip.data.NextExtent(pos, &e)) {
    pos = e.file_end();
    if (e.state != ExtentState::kDelalloc) continue;
    AllocRequest req;
    req.want_blocks = e.len;
    BlockRange got;
    if (int err = res.AllocReserved(ip.ino, req, &got); err != 0) return err;
    std::vector<Extent> replaced;
    if (ip.data.Map(e.file_off, got.len, got.start, ExtentState::kWritten,
                    &replaced) != 0) {
      return -EIO;
    }
    pos = e.file_off + got.len;
  }
  return 0;
}

// Truncate to `size` blocks: unmap the tail, free blocks, release delalloc.
int Truncate(Allocator& alloc, ReservationCounter& res, Inode& ip,
             uint64_t size) {
  std::vector<Extent> removed;
  if (int err = ip.data.Unmap(size, kMaxFileBlocks - size, &removed)) {
    return err;
  }
  for (const Extent& e : removed) {
    int err = e.allocated() ? alloc.Free(e.dev_block, e.len)
                            : res.Release(ip.ino, e.len);
    if (err != 0) return err;
  }
  return 0;
}

TEST(ReservationTest, ShortWriteLeavesNoReservationBehind) {
  Allocator alloc(0, 1000, Allocator::Init::kAllFree);
  ReservationCounter res(&alloc);
  Inode ip{42, {}};
  ASSERT_EQ(BufferedWrite(res, ip, 10, 20, 7), 0);
  EXPECT_EQ(ip.data.BlocksInState(ExtentState::kDelalloc), 7u);
  EXPECT_TRUE(res.CheckInode(ip.ino, 7).ok());
  ASSERT_EQ(BufferedWrite(res, ip, 0, 40, 0), 0);  // copied nothing
  EXPECT_TRUE(res.CheckInode(ip.ino, 7).ok());
  ASSERT_EQ(Writeback(res, ip), 0);
  EXPECT_EQ(res.Reserved(ip.ino), 0u);
  EXPECT_EQ(alloc.ReservedBlocks(), 0u);
  EXPECT_EQ(alloc.FreeBlocks(), 993u);
  EXPECT_TRUE(res.Check().ok());
}

TEST(ReservationTest, EnospcIsReportedAtWriteTimeNotAtWriteback) {
  Allocator alloc(0, 64, Allocator::Init::kAllFree);
  ReservationCounter res(&alloc);
  Inode a{1, {}};
  Inode b{2, {}};
  ASSERT_EQ(BufferedWrite(res, a, 0, 60, 60), 0);
  EXPECT_EQ(BufferedWrite(res, b, 0, 5, 5), -ENOSPC);
  EXPECT_TRUE(b.data.empty());
  ASSERT_EQ(BufferedWrite(res, b, 0, 4, 4), 0);
  ASSERT_EQ(Writeback(res, a), 0);  // guaranteed to find its blocks
  ASSERT_EQ(Writeback(res, b), 0);
  EXPECT_EQ(alloc.FreeBlocks(), 0u);
  EXPECT_TRUE(res.Check().ok());
}

TEST(ReservationModelTest, RandomDelallocLifeCycleKeepsAccountsExact) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    Allocator alloc(0, 600, Allocator::Init::kAllFree);
    ReservationCounter res(&alloc);
    std::vector<Inode> inodes;
    for (uint64_t i = 0; i < 4; ++i) inodes.push_back(Inode{100 + i, {}});
    for (int step = 0; step < 300; ++step) {
      Inode& ip = inodes[rng() % inodes.size()];
      const uint64_t op = rng() % 5;
      int rc = 0;
      if (op <= 2) {
        const uint64_t off = rng() % 200;
        const uint64_t len = 1 + rng() % 40;
        rc = BufferedWrite(res, ip, off, len, rng() % (len + 1));
        if (rc == -ENOSPC) rc = 0;  // honest: nothing was changed
      } else if (op == 3) {
        rc = Writeback(res, ip);
      } else {
        rc = Truncate(alloc, res, ip, rng() % 200);
      }
      ASSERT_EQ(rc, 0) << "step " << step;
      uint64_t used = 0;
      for (const Inode& i : inodes) {
        ASSERT_TRUE(
            res.CheckInode(i.ino, i.data.BlocksInState(ExtentState::kDelalloc))
                .ok())
            << "seed " << seed << " step " << step;
        used += i.data.BlocksInState(ExtentState::kWritten);
      }
      ASSERT_TRUE(res.Check().ok()) << res.Check();
      ASSERT_TRUE(alloc.Check().ok());
      ASSERT_EQ(alloc.FreeBlocks() + used, 600u);
    }
  }
}

}  // namespace
}  // namespace fs
