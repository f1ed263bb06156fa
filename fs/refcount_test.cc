#include "fs/refcount.h"

#include <cerrno>
#include <chrono>
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

}  // namespace

// Reaches into the index to corrupt it the ways a bug could.
class RefcountIndexTestPeer {
 public:
  static void Raw(RefcountIndex& idx, const RefcountRecord& r) {
    base::MutexLock lock(&idx.mu_);
    idx.map_[r.start] = RefcountIndex::Rec{r.len, r.count};
    idx.shared_blocks_ += r.len;
  }
  static void Counter(RefcountIndex& idx, uint64_t v) {
    base::MutexLock lock(&idx.mu_);
    idx.shared_blocks_ = v;
  }
};

namespace {

TEST(RefcountTest, CheckNamesEachKindOfCorruption) {
  auto error_of = [](void (*corrupt)(RefcountIndex&)) {
    RefcountIndex idx;
    EXPECT_EQ(idx.Increment(10, 10), 0);
    corrupt(idx);
    absl::Status st = idx.Check();
    EXPECT_EQ(base::ErrnoOf(st), -EUCLEAN);
    return std::string(st.message());
  };
  EXPECT_NE(error_of([](RefcountIndex& idx) {
              RefcountIndexTestPeer::Raw(idx, Rc(15, 10, 3));
            }).find("overlaps"),
            std::string::npos);
  EXPECT_NE(error_of([](RefcountIndex& idx) {
              RefcountIndexTestPeer::Raw(idx, Rc(20, 5, 2));
            }).find("not merged"),
            std::string::npos);
  EXPECT_NE(error_of([](RefcountIndex& idx) {
              RefcountIndexTestPeer::Raw(idx, Rc(30, 5, 1));
            }).find("count out of"),
            std::string::npos);
  EXPECT_NE(error_of([](RefcountIndex& idx) {
              RefcountIndexTestPeer::Counter(idx, 3);
            }).find("shared block counter 3"),
            std::string::npos);
}

// 100,000 shared ranges: FindShared (the iomap SHARED decision) stays in
// microseconds.
TEST(RefcountTest, ScalesTo100kRecords) {
  constexpr uint64_t kRecords = 100000;
  RefcountIndex idx;
  for (uint64_t i = 0; i < kRecords; ++i) {
    ASSERT_EQ(idx.Insert(Rc(i * 4, 2, 2 + i % 5)), 0);
  }
  ASSERT_EQ(idx.NumRecords(), kRecords);
  std::mt19937_64 rng(3);
  uint64_t hits = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < kRecords; ++i) {
    BlockRange r;
    hits += idx.FindShared(rng() % (kRecords * 4), 2, &r);
  }
  auto t1 = std::chrono::steady_clock::now();
  const double avg_us =
      std::chrono::duration<double, std::micro>(t1 - t0).count() / kRecords;
  std::printf("RefcountIndex: FindShared over %llu records: %.3f us average\n",
              static_cast<unsigned long long>(kRecords), avg_us);
  EXPECT_GT(hits, kRecords / 3);
  EXPECT_LT(avg_us, 5.0);
  EXPECT_TRUE(idx.Check().ok());
}

// --- fsck cross-check of allocator, refcounts and fork extents ---

class CrossCheckTest : public testing::Test {
 protected:
  // A consistent volume: metadata at [0, 4), file A at [10, 20), file B a
  // clone of A's [10, 15) plus its own [30, 32).
  void SetUp() override {
    owned_ = {R(0, 4), R(10, 10), R(10, 5), R(30, 2)};
    for (const BlockRange& r : {R(0, 4), R(10, 10), R(30, 2)}) {
      ASSERT_EQ(alloc_.MarkUsed(r.start, r.len), 0);
    }
    ASSERT_EQ(refs_.Increment(10, 5), 0);
  }
  std::string Error() {
    absl::Status st = CrossCheckBlocks(alloc_, refs_, owned_);
    EXPECT_EQ(base::ErrnoOf(st), -EUCLEAN);
    return std::string(st.message());
  }

  Allocator alloc_{0, 100, Allocator::Init::kAllFree};
  RefcountIndex refs_;
  std::vector<BlockRange> owned_;
};

TEST_F(CrossCheckTest, ConsistentVolumePasses) {
  EXPECT_TRUE(CrossCheckBlocks(alloc_, refs_, owned_).ok());
}

TEST_F(CrossCheckTest, BlockBothFreeAndUsed) {
  ASSERT_EQ(alloc_.Free(31, 1), 0);
  EXPECT_NE(Error().find("blocks [31, 32) are free and referenced 1"),
            std::string::npos);
}

TEST_F(CrossCheckTest, LeakedBlock) {
  ASSERT_EQ(alloc_.MarkUsed(50, 3), 0);
  EXPECT_NE(Error().find("blocks [50, 53) are neither free nor referenced"),
            std::string::npos);
}

TEST_F(CrossCheckTest, RefcountTooLowOrTooHigh) {
  owned_.push_back(R(12, 1));  // a third owner the index does not know
  EXPECT_NE(Error().find("blocks [12, 13) are referenced 3 times but the "
                         "refcount record says 2"),
            std::string::npos);
  owned_.pop_back();
  ASSERT_EQ(refs_.Increment(30, 2), 0);  // shared, but one owner
  EXPECT_NE(Error().find("blocks [30, 32) are referenced 1 times"),
            std::string::npos);
}

TEST_F(CrossCheckTest, OwnedRangeOutsideTheDevice) {
  owned_.push_back(R(99, 2));
  EXPECT_NE(Error().find("outside the device"), std::string::npos);
}

// --- a reflink volume in miniature: forks, allocator and refcounts kept in
// step by write (COW), clone and punch, cross-checked after every step ---

struct Volume {
  Allocator alloc{0, 2000, Allocator::Init::kAllFree};
  RefcountIndex refs;
  ExtentMap forks[3];

  // Drops one reference to each allocated piece; frees what reaches 0.
  void Release(const std::vector<Extent>& pieces) {
    for (const Extent& e : pieces) {
      if (!e.allocated()) continue;
      std::vector<BlockRange> to_free;
      ASSERT_EQ(refs.Decrement(e.dev_block, e.len, &to_free, nullptr), 0);
      for (const BlockRange& r : to_free) {
        ASSERT_EQ(alloc.Free(r.start, r.len), 0);
      }
    }
  }
  // Writes [off, off + len) of fork f out of place (COW of shared blocks).
  void Write(int f, uint64_t off, uint64_t len) {
    for (uint64_t pos = off; pos < off + len;) {
      AllocRequest req;
      req.want_blocks = off + len - pos;
      BlockRange got;
      if (alloc.Alloc(req, &got) != 0) return;  // ENOSPC: stop short
      std::vector<Extent> replaced;
      ASSERT_EQ(forks[f].Map(pos, got.len, got.start, ExtentState::kWritten,
                             &replaced),
                0);
      Release(replaced);
      pos += got.len;
    }
  }
  // Clones [soff, soff + len) of fork s to doff in fork d (FICLONERANGE).
  void Clone(int s, uint64_t soff, int d, uint64_t doff, uint64_t len) {
    std::vector<Extent> src;
    forks[s].ForEachInRange(soff, len,
                            [&](const Extent& e) { src.push_back(e); });
    for (const Extent& e : src) {
      if (e.allocated()) {
        ASSERT_EQ(refs.Increment(e.dev_block, e.len), 0);
      }
    }
    std::vector<Extent> replaced;
    ASSERT_EQ(forks[d].Unmap(doff, len, &replaced), 0);
    for (const Extent& e : src) {
      if (!e.allocated()) continue;
      ASSERT_EQ(forks[d].Map(doff + (e.file_off - soff), e.len, e.dev_block,
                             e.state, nullptr),
                0);
    }
    Release(replaced);
  }
  std::vector<BlockRange> Owned() const {
    std::vector<BlockRange> owned;
    for (const ExtentMap& m : forks) {
      m.ForEach([&](const Extent& e) { owned.push_back(e.dev_range()); });
    }
    return owned;
  }
};

TEST(ReflinkVolumeTest, RandomWriteClonePunchStaysCrossConsistent) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    Volume v;
    for (int step = 0; step < 200; ++step) {
      const int f = static_cast<int>(rng() % 3);
      const uint64_t off = rng() % 300;
      const uint64_t len = 1 + rng() % 40;
      switch (rng() % 3) {
        case 0:
          v.Write(f, off, len);
          break;
        case 1:
          v.Clone(static_cast<int>(rng() % 3), rng() % 300, f, off, len);
          break;
        default: {
          std::vector<Extent> removed;
          ASSERT_EQ(v.forks[f].Unmap(off, len, &removed), 0);
          v.Release(removed);
          break;
        }
      }
      ASSERT_FALSE(HasFatalFailure()) << "step " << step;
      absl::Status st = CrossCheckBlocks(v.alloc, v.refs, v.Owned());
      ASSERT_TRUE(st.ok()) << "seed " << seed << " step " << step << ": " << st;
      ASSERT_TRUE(v.refs.Check().ok());
    }
    // Corrupting any one structure is caught.
    std::vector<BlockRange> owned = v.Owned();
    if (owned.empty()) continue;
    ASSERT_EQ(v.refs.Increment(owned[0].start, 1), 0);
    EXPECT_FALSE(CrossCheckBlocks(v.alloc, v.refs, owned).ok());
  }
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
