#include "fs/refcount.h"

#include <cerrno>
#include <cstdio>
#include <random>
#include <vector>

#include "base/errno.h"
#include "gtest/gtest.h"

namespace fs {
namespace {

std::vector<RefcountRecord> Records(const RefcountIndex& idx) {
  std::vector<RefcountRecord> out;
  idx.ForEach([&](const RefcountRecord& r) { out.push_back(r); });
  return out;
}

RefcountRecord Rc(uint64_t start, uint64_t len, uint32_t count) {
  return RefcountRecord{start, len, count};
}

BlockRange R(uint64_t start, uint64_t len) { return BlockRange{start, len}; }

TEST(RefcountTest, IncrementStoresOnlySharedRanges) {
  RefcountIndex idx;
  EXPECT_EQ(idx.Count(5), 1u);
  ASSERT_EQ(idx.Increment(10, 10), 0);
  EXPECT_EQ(Records(idx), std::vector<RefcountRecord>({Rc(10, 10, 2)}));
  ASSERT_EQ(idx.Increment(15, 10), 0);
  EXPECT_EQ(Records(idx), std::vector<RefcountRecord>(
                              {Rc(10, 5, 2), Rc(15, 5, 3), Rc(20, 5, 2)}));
  EXPECT_EQ(idx.Count(16), 3u);
  EXPECT_EQ(idx.SharedBlocks(), 15u);
  EXPECT_TRUE(idx.Check().ok());
}

TEST(RefcountTest, DecrementSplitsResultsIntoFreeAndStillShared) {
  RefcountIndex idx;
  ASSERT_EQ(idx.Increment(10, 10), 0);  // [10,20) x2
  ASSERT_EQ(idx.Increment(15, 2), 0);   // [15,17) x3
  std::vector<BlockRange> to_free, shared;
  ASSERT_EQ(idx.Decrement(5, 20, &to_free, &shared), 0);
  // [5,10) and [20,25) had one owner: free. [15,17) stays shared (x2).
  EXPECT_EQ(to_free, std::vector<BlockRange>({R(5, 5), R(20, 5)}));
  EXPECT_EQ(shared, std::vector<BlockRange>({R(15, 2)}));
  EXPECT_EQ(Records(idx), std::vector<RefcountRecord>({Rc(15, 2, 2)}));
  EXPECT_TRUE(idx.Check().ok());
}

TEST(RefcountTest, IncrementThenDecrementMergesBack) {
  RefcountIndex idx;
  ASSERT_EQ(idx.Increment(0, 30), 0);
  ASSERT_EQ(idx.Increment(10, 10), 0);
  EXPECT_EQ(idx.NumRecords(), 3u);
  ASSERT_EQ(idx.Decrement(10, 10, nullptr, nullptr), 0);
  EXPECT_EQ(Records(idx), std::vector<RefcountRecord>({Rc(0, 30, 2)}));
}

TEST(RefcountTest, FindSharedReturnsFirstRunClipped) {
  RefcountIndex idx;
  ASSERT_EQ(idx.Increment(10, 5), 0);
  ASSERT_EQ(idx.Increment(15, 5), 0);
  ASSERT_EQ(idx.Increment(15, 5), 0);  // [10,15)x2 touches [15,20)x3
  ASSERT_EQ(idx.Increment(30, 5), 0);
  BlockRange r;
  ASSERT_TRUE(idx.FindShared(0, 100, &r));
  EXPECT_EQ(r, R(10, 10));  // one run across both counts
  ASSERT_TRUE(idx.FindShared(12, 5, &r));
  EXPECT_EQ(r, R(12, 5));
  ASSERT_TRUE(idx.FindShared(20, 100, &r));
  EXPECT_EQ(r, R(30, 5));
  EXPECT_FALSE(idx.FindShared(20, 10, &r));
  EXPECT_TRUE(idx.IsShared(0, 11));
  EXPECT_FALSE(idx.IsShared(0, 10));
  EXPECT_FALSE(idx.IsShared(35, 1));
}

TEST(RefcountTest, InsertRebuildsAndRejectsBadRecords) {
  RefcountIndex src;
  ASSERT_EQ(src.Increment(0, 8), 0);
  ASSERT_EQ(src.Increment(4, 8), 0);
  RefcountIndex dst;
  src.ForEach([&](const RefcountRecord& r) { ASSERT_EQ(dst.Insert(r), 0); });
  EXPECT_EQ(Records(dst), Records(src));
  EXPECT_EQ(dst.Insert(Rc(100, 1, 1)), -EINVAL);
  EXPECT_EQ(dst.Insert(Rc(100, 0, 2)), -EINVAL);
  EXPECT_EQ(dst.Insert(Rc(10, 4, 2)), -EEXIST);
  EXPECT_EQ(dst.Insert(Rc(12, 4, 2)), 0);  // touches [8,12)x2: merges
  EXPECT_EQ(dst.NumRecords(), 3u);
  EXPECT_TRUE(dst.Check().ok());
}

TEST(RefcountTest, IncrementRefusesOverflowWithoutChange) {
  RefcountIndex idx;
  ASSERT_EQ(idx.Insert(Rc(10, 2, kMaxRefcount)), 0);
  EXPECT_EQ(idx.Increment(0, 11), -EOVERFLOW);
  EXPECT_EQ(Records(idx),
            std::vector<RefcountRecord>({Rc(10, 2, kMaxRefcount)}));
  EXPECT_EQ(idx.Increment(0, 0), -EINVAL);
  EXPECT_EQ(idx.Decrement(kMaxDevBlocks, 1, nullptr, nullptr), -EINVAL);
}

// --- randomized model test: a per-block count array is the reference ---

constexpr uint64_t kBlocks = 200;

std::vector<BlockRange> ModelRuns(const std::vector<uint32_t>& model,
                                  uint64_t start, uint64_t end,
                                  bool (*pred)(uint32_t)) {
  std::vector<BlockRange> out;
  for (uint64_t b = start; b < end; ++b) {
    if (!pred(model[b])) continue;
    if (!out.empty() && out.back().end() == b) {
      out.back().len++;
    } else {
      out.push_back(R(b, 1));
    }
  }
  return out;
}

void ExpectMatchesModel(const RefcountIndex& idx,
                        const std::vector<uint32_t>& model) {
  ASSERT_TRUE(idx.Check().ok()) << idx.Check();
  uint64_t shared = 0;
  size_t runs = 0;
  for (uint64_t b = 0; b < kBlocks; ++b) {
    ASSERT_EQ(idx.Count(b), model[b]) << "block " << b;
    shared += model[b] >= 2;
    runs += model[b] >= 2 && (b == 0 || model[b - 1] != model[b]);
  }
  ASSERT_EQ(idx.SharedBlocks(), shared);
  ASSERT_EQ(idx.NumRecords(), runs);  // canonical
}

void RandomStep(std::mt19937_64& rng, RefcountIndex& idx,
                std::vector<uint32_t>& model) {
  const uint64_t start = rng() % kBlocks;
  const uint64_t len = 1 + rng() % std::min<uint64_t>(30, kBlocks - start);
  const uint64_t end = start + len;
  switch (rng() % 3) {
    case 0: {
      ASSERT_EQ(idx.Increment(start, len), 0);
      for (uint64_t b = start; b < end; ++b) model[b]++;
      break;
    }
    case 1: {
      std::vector<BlockRange> to_free, shared;
      ASSERT_EQ(idx.Decrement(start, len, &to_free, &shared), 0);
      ASSERT_EQ(to_free, ModelRuns(model, start, end,
                                   [](uint32_t c) { return c == 1; }));
      ASSERT_EQ(shared,
                ModelRuns(model, start, end, [](uint32_t c) { return c > 2; }));
      // A freed block gets reused by a new single owner: count 1 again.
      for (uint64_t b = start; b < end; ++b) {
        model[b] = model[b] == 1 ? 1 : model[b] - 1;
      }
      break;
    }
    default: {
      auto want =
          ModelRuns(model, start, end, [](uint32_t c) { return c >= 2; });
      BlockRange got;
      const bool found = idx.FindShared(start, len, &got);
      ASSERT_EQ(found, !want.empty());
      if (found) {
        ASSERT_EQ(got, want.front());
      }
      ASSERT_EQ(idx.IsShared(start, len), found);
      break;
    }
  }
}

TEST(RefcountModelTest, RandomOperationsMatchPerBlockModel) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    RefcountIndex idx;
    std::vector<uint32_t> model(kBlocks, 1);
    for (int step = 0; step < 500; ++step) {
      RandomStep(rng, idx, model);
      if (!HasFatalFailure()) ExpectMatchesModel(idx, model);
      if (HasFatalFailure()) {
        std::printf("RefcountModelTest failed: seed %llu step %d\n",
                    static_cast<unsigned long long>(seed), step);
        return;
      }
    }
    RefcountIndex copy;
    idx.ForEach([&](const RefcountRecord& r) { ASSERT_EQ(copy.Insert(r), 0); });
    ExpectMatchesModel(copy, model);
  }
}

}  // namespace
}  // namespace fs
