#include "iomap/iter.h"

#include <cerrno>
#include <vector>

#include "gtest/gtest.h"

namespace iomap {
namespace {

class NullInode : public Inode {
 public:
  NullInode() : Inode(1, 12, nullptr) {}
};

// Ops with a fixed extent list: [offset, offset+length) per extent; pos is
// mapped by the extent containing it, trimmed to len.
struct EndCall {
  int64_t pos;
  int64_t len;
  int64_t written;
};

class ScriptedOps : public IomapOps {
 public:
  int IomapBegin(Inode*, int64_t pos, int64_t len, unsigned flags, Iomap* iomap,
                 Iomap* srcmap) override {
    begins.push_back(pos);
    last_flags = flags;
    if (begin_error != 0) return begin_error;
    for (const Iomap& m : extents) {
      if (m.Contains(pos)) {
        *iomap = m;
        (void)len;
        if (!src.empty()) *srcmap = src[0];
        return 0;
      }
    }
    return -EIO;
  }
  int IomapEnd(Inode*, int64_t pos, int64_t len, int64_t written, unsigned,
               Iomap*) override {
    ends.push_back({pos, len, written});
    return end_error;
  }

  std::vector<Iomap> extents;
  std::vector<Iomap> src;
  std::vector<int64_t> begins;
  std::vector<EndCall> ends;
  unsigned last_flags = 0;
  int begin_error = 0;
  int end_error = 0;
};

Iomap Extent(int64_t off, uint64_t len, Iomap::Type type) {
  Iomap m;
  m.offset = off;
  m.length = len;
  m.type = type;
  if (type == Iomap::Type::kMapped) m.addr = 1 << 20;
  return m;
}

TEST(IomapIterTest, WalksEveryMappingAndCallsEndWithTrimmedLength) {
  NullInode inode;
  ScriptedOps ops;
  ops.extents = {Extent(0, 4096, Iomap::Type::kHole),
                 Extent(4096, 8192, Iomap::Type::kMapped)};
  IomapIter iter(&inode, 1000, 10000, kReport);
  int ret;
  std::vector<uint64_t> lengths;
  while ((ret = iter.Next(ops)) > 0) {
    lengths.push_back(iter.Length());
    iter.status = iter.Advance(iter.Length());
  }
  EXPECT_EQ(ret, 0);
  EXPECT_EQ(ops.last_flags, kReport);
  ASSERT_EQ(lengths.size(), 2u);
  EXPECT_EQ(lengths[0], 3096u);
  EXPECT_EQ(lengths[1], 10000u - 3096u);
  ASSERT_EQ(ops.ends.size(), 2u);
  EXPECT_EQ(ops.ends[0].pos, 1000);
  EXPECT_EQ(ops.ends[0].len, 3096);
  EXPECT_EQ(ops.ends[0].written, 3096);
  EXPECT_EQ(ops.ends[1].pos, 4096);
  EXPECT_EQ(ops.ends[1].len, 10000 - 3096);
  EXPECT_EQ(ops.ends[1].written, 10000 - 3096);
  EXPECT_EQ(iter.pos(), 11000);
  EXPECT_EQ(iter.len(), 0u);
}

TEST(IomapIterTest, PartialAdvanceRemapsFromCurrentPosition) {
  NullInode inode;
  ScriptedOps ops;
  ops.extents = {Extent(0, 1 << 20, Iomap::Type::kMapped)};
  IomapIter iter(&inode, 0, 8192, 0);
  int ret;
  while ((ret = iter.Next(ops)) > 0) iter.status = iter.Advance(4096);
  EXPECT_EQ(ret, 0);
  ASSERT_EQ(ops.begins.size(), 2u);
  EXPECT_EQ(ops.begins[1], 4096);
  // iomap_end gets the trimmed length of the mapping, not the bytes done.
  EXPECT_EQ(ops.ends[0].len, 8192);
  EXPECT_EQ(ops.ends[0].written, 4096);
  EXPECT_EQ(ops.ends[1].pos, 4096);
  EXPECT_EQ(ops.ends[1].len, 4096);
}

TEST(IomapIterTest, StalledStepEndsLoopQuietly) {
  NullInode inode;
  ScriptedOps ops;
  ops.extents = {Extent(0, 1 << 20, Iomap::Type::kMapped)};
  IomapIter iter(&inode, 0, 8192, 0);
  int ret;
  int steps = 0;
  while ((ret = iter.Next(ops)) > 0) {
    steps++;
    iter.status = 0;  // no progress, no STALE
  }
  EXPECT_EQ(ret, 0);
  EXPECT_EQ(steps, 1);
  ASSERT_EQ(ops.ends.size(), 1u);
  EXPECT_EQ(ops.ends[0].written, 0);
}

TEST(IomapIterTest, StaleWithoutProgressRemapsSamePosition) {
  NullInode inode;
  ScriptedOps ops;
  ops.extents = {Extent(0, 1 << 20, Iomap::Type::kMapped)};
  IomapIter iter(&inode, 512, 8192, kWrite);
  int ret;
  int steps = 0;
  while ((ret = iter.Next(ops)) > 0) {
    if (steps++ == 0) {
      iter.iomap.flags |= kStale;
      iter.status = 0;
    } else {
      iter.status = iter.Advance(iter.Length());
    }
  }
  EXPECT_EQ(ret, 0);
  ASSERT_EQ(ops.begins.size(), 2u);
  EXPECT_EQ(ops.begins[0], 512);
  EXPECT_EQ(ops.begins[1], 512);
  EXPECT_EQ(iter.pos(), 512 + 8192);
}

TEST(IomapIterTest, StepErrorIsReturned) {
  NullInode inode;
  ScriptedOps ops;
  ops.extents = {Extent(0, 4096, Iomap::Type::kMapped),
                 Extent(4096, 4096, Iomap::Type::kMapped)};
  IomapIter iter(&inode, 0, 8192, 0);
  int ret;
  while ((ret = iter.Next(ops)) > 0) {
    iter.Advance(100);
    iter.status = -ENOSPC;
  }
  EXPECT_EQ(ret, -ENOSPC);
  EXPECT_EQ(ops.ends.size(), 1u);
}

TEST(IomapIterTest, EndErrorDroppedAfterProgressReturnedWithout) {
  NullInode inode;
  ScriptedOps ops;
  ops.extents = {Extent(0, 1 << 20, Iomap::Type::kMapped)};
  ops.end_error = -ENOSPC;
  {
    IomapIter iter(&inode, 0, 8192, 0);
    int ret;
    while ((ret = iter.Next(ops)) > 0) iter.status = iter.Advance(4096);
    // Progress was made on each mapping: the iomap_end errors are dropped.
    EXPECT_EQ(ret, 0);
    EXPECT_EQ(iter.pos(), 8192);
  }
  {
    IomapIter iter(&inode, 0, 8192, 0);
    int ret;
    while ((ret = iter.Next(ops)) > 0) iter.status = 0;
    EXPECT_EQ(ret, -ENOSPC);
  }
}

TEST(IomapIterTest, BeginErrorIsReturned) {
  NullInode inode;
  ScriptedOps ops;
  ops.begin_error = -EAGAIN;
  IomapIter iter(&inode, 0, 8192, kNowait);
  EXPECT_EQ(iter.Next(ops), -EAGAIN);
  EXPECT_TRUE(ops.ends.empty());
}

TEST(IomapIterTest, AdvancePastMappingIsEio) {
  NullInode inode;
  ScriptedOps ops;
  ops.extents = {Extent(0, 4096, Iomap::Type::kMapped)};
  IomapIter iter(&inode, 0, 8192, 0);
  ASSERT_EQ(iter.Next(ops), 1);
  EXPECT_EQ(iter.Length(), 4096u);
  EXPECT_EQ(iter.Advance(4097), -EIO);
  EXPECT_EQ(iter.pos(), 0);
  EXPECT_EQ(iter.Advance(4096), 0);
  EXPECT_EQ(iter.pos(), 4096);
}

TEST(IomapIterTest, LengthHonoursSrcmapAndSrcmapHelper) {
  NullInode inode;
  ScriptedOps ops;
  Iomap cow = Extent(0, 16384, Iomap::Type::kDelalloc);
  cow.flags = kShared;
  ops.extents = {cow};
  ops.src = {Extent(0, 4096, Iomap::Type::kMapped)};
  IomapIter iter(&inode, 0, 16384, kWrite);
  ASSERT_EQ(iter.Next(ops), 1);
  EXPECT_EQ(iter.Length(), 4096u);
  EXPECT_EQ(&iter.Srcmap(), &iter.srcmap);
  ops.src.clear();
  IomapIter iter2(&inode, 0, 16384, kWrite);
  ASSERT_EQ(iter2.Next(ops), 1);
  EXPECT_EQ(iter2.Length(), 16384u);
  EXPECT_EQ(&iter2.Srcmap(), &iter2.iomap);
}

TEST(IomapIterTest, MappingNotContainingPosIsEio) {
  NullInode inode;
  ScriptedOps ops;
  ops.extents = {Extent(0, 4096, Iomap::Type::kMapped)};
  IomapIter iter(&inode, 4096, 100, 0);
  EXPECT_EQ(iter.Next(ops), -EIO);  // no extent contains 4096
}

TEST(IomapIterTest, PositiveStatusIsTreatedAsEio) {
  NullInode inode;
  ScriptedOps ops;
  ops.extents = {Extent(0, 1 << 20, Iomap::Type::kMapped)};
  IomapIter iter(&inode, 0, 8192, 0);
  ASSERT_EQ(iter.Next(ops), 1);
  iter.Advance(10);
  iter.status = 10;  // the pre-6.15 "processed" convention is refused
  EXPECT_EQ(iter.Next(ops), -EIO);
}

}  // namespace
}  // namespace iomap
