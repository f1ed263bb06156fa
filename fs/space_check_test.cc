#include "fs/space_check.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace fs {
namespace {

constexpr uint64_t kDataStart = 100, kEnd = 1000;

class SpaceCheckTest : public ::testing::Test {
 protected:
  SpaceCheckTest() : alloc_(kDataStart, kEnd, Allocator::Init::kAllFree) {}

  void MapBlocks(ExtentMap* m, uint64_t off, uint64_t len, uint64_t dev,
                 bool mark = true) {
    ASSERT_EQ(m->Map(off, len, dev, ExtentState::kWritten, nullptr), 0);
    if (mark) ASSERT_EQ(alloc_.MarkUsed(dev, len), 0);
  }
  std::vector<std::string> Check() {
    SpaceView v;
    v.data_start = kDataStart;
    v.block_count = kEnd;
    v.allocator = &alloc_;
    v.refcounts = &refs_;
    v.forks = {{1, false, &a_}, {2, false, &b_}, {2, true, &b_cow_}};
    std::vector<std::string> problems;
    CheckSpace(v, &problems);
    return problems;
  }
  static bool Has(const std::vector<std::string>& ps, const std::string& what) {
    for (const auto& p : ps)
      if (p.find(what) != std::string::npos) return true;
    return false;
  }
  static std::string Join(const std::vector<std::string>& ps) {
    std::string s;
    for (const auto& p : ps) s += p + "\n";
    return s;
  }

  Allocator alloc_;
  RefcountIndex refs_;
  ExtentMap a_, b_, b_cow_;
};

TEST_F(SpaceCheckTest, ConsistentStateIsClean) {
  MapBlocks(&a_, 0, 10, 200);
  MapBlocks(&b_, 0, 5, 300);
  // b shares a's blocks 200..203 (a reflink) and stages a COW copy.
  MapBlocks(&b_, 10, 4, 200, /*mark=*/false);
  ASSERT_EQ(refs_.Increment(200, 4), 0);
  MapBlocks(&b_cow_, 10, 4, 500);
  std::vector<std::string> ps = Check();
  EXPECT_TRUE(ps.empty()) << Join(ps);
}

TEST_F(SpaceCheckTest, BlockBothFreeAndUsed) {
  MapBlocks(&a_, 0, 10, 200);
  ASSERT_EQ(alloc_.Free(205, 2), 0);
  EXPECT_TRUE(Has(Check(), "blocks 205..206: both free and used"));
}

TEST_F(SpaceCheckTest, LeakedBlocks) {
  ASSERT_EQ(alloc_.MarkUsed(400, 3), 0);
  EXPECT_TRUE(Has(Check(), "blocks 400..402: neither free nor used"));
}

TEST_F(SpaceCheckTest, RefcountMismatch) {
  MapBlocks(&a_, 0, 4, 200);
  MapBlocks(&b_, 0, 4, 200, /*mark=*/false);  // shared without a refcount
  EXPECT_TRUE(Has(Check(), "refcount 1 but 2 referencing extents"));
  ASSERT_EQ(refs_.Increment(200, 4), 0);
  EXPECT_TRUE(Check().empty());
  ASSERT_EQ(refs_.Increment(202, 1), 0);  // one count too many
  EXPECT_TRUE(Has(Check(), "blocks 202..202: refcount 3 but 2 referencing"));
}

TEST_F(SpaceCheckTest, ExtentOutsideTheDataArea) {
  ASSERT_EQ(a_.Map(0, 4, 50, ExtentState::kWritten, nullptr), 0);
  std::vector<std::string> ps = Check();
  EXPECT_TRUE(Has(ps, "inode 1 data fork")) << Join(ps);
  EXPECT_TRUE(Has(ps, "blocks 50..53: mapped outside the data area"))
      << Join(ps);
}

TEST_F(SpaceCheckTest, CowBlocksMappedTwice) {
  MapBlocks(&a_, 0, 4, 200);
  MapBlocks(&b_cow_, 0, 4, 200, /*mark=*/false);
  EXPECT_TRUE(Has(Check(), "COW staging blocks also mapped elsewhere"));
}

}  // namespace
}  // namespace fs
