#include "fs/allocator.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "base/errno.h"
#include "gtest/gtest.h"

namespace fs {
namespace {

std::vector<BlockRange> FreeList(const Allocator& a) {
  std::vector<BlockRange> out;
  a.ForEachFree([&](const BlockRange& r) { out.push_back(r); });
  return out;
}

BlockRange R(uint64_t start, uint64_t len) { return BlockRange{start, len}; }

AllocRequest Req(uint64_t want, uint64_t min = 1, uint64_t hint = kNoHint) {
  AllocRequest r;
  r.want_blocks = want;
  r.min_blocks = min;
  r.hint_block = hint;
  return r;
}

TEST(AllocatorTest, FreshDeviceIsOneFreeExtent) {
  Allocator a(16, 1016, Allocator::Init::kAllFree);
  EXPECT_EQ(a.FreeBlocks(), 1000u);
  EXPECT_EQ(FreeList(a), std::vector<BlockRange>({R(16, 1000)}));
  EXPECT_TRUE(a.Check().ok());
  Allocator used(16, 1016, Allocator::Init::kAllUsed);
  EXPECT_EQ(used.FreeBlocks(), 0u);
  BlockRange got;
  EXPECT_EQ(used.Alloc(Req(1), &got), -ENOSPC);
}

TEST(AllocatorTest, ExactHintExtendsThePreviousExtent) {
  Allocator a(0, 1000, Allocator::Init::kAllFree);
  BlockRange first;
  ASSERT_EQ(a.Alloc(Req(10), &first), 0);
  BlockRange other;
  ASSERT_EQ(a.Alloc(Req(10, 1, 500), &other), 0);  // someone else, far away
  EXPECT_EQ(other.start, 500u);
  BlockRange next;
  ASSERT_EQ(a.Alloc(Req(10, 1, first.end()), &next), 0);
  EXPECT_EQ(next.start, first.end());
  EXPECT_EQ(next.len, 10u);
  EXPECT_TRUE(a.Check().ok());
}

TEST(AllocatorTest, ExactHintMayReturnLessThanWantedButAtLeastMin) {
  Allocator a(0, 100, Allocator::Init::kAllUsed);
  ASSERT_EQ(a.Free(10, 4), 0);
  ASSERT_EQ(a.Free(50, 40), 0);
  BlockRange got;
  ASSERT_EQ(a.Alloc(Req(8, 2, 10), &got), 0);
  EXPECT_EQ(got, R(10, 4));  // exact beats a longer extent elsewhere
  ASSERT_EQ(a.Free(10, 4), 0);
  ASSERT_EQ(a.Alloc(Req(8, 8, 10), &got), 0);
  EXPECT_EQ(got.len, 8u);  // exact too short for min: go elsewhere
  EXPECT_EQ(got.start, 50u);
}

TEST(AllocatorTest, BestFitBySizeWithoutHint) {
  Allocator a(0, 1000, Allocator::Init::kAllUsed);
  ASSERT_EQ(a.Free(0, 50), 0);
  ASSERT_EQ(a.Free(100, 8), 0);
  ASSERT_EQ(a.Free(200, 12), 0);
  BlockRange got;
  ASSERT_EQ(a.Alloc(Req(10), &got), 0);
  EXPECT_EQ(got, R(200, 10));  // the shortest extent that fits
  ASSERT_EQ(a.Alloc(Req(8), &got), 0);
  EXPECT_EQ(got, R(100, 8));
}

TEST(AllocatorTest, NearHintPicksTheClosestFittingExtent) {
  Allocator a(0, 10000, Allocator::Init::kAllUsed);
  ASSERT_EQ(a.Free(100, 20), 0);
  ASSERT_EQ(a.Free(5000, 10), 0);  // best fit by size, but far away
  ASSERT_EQ(a.Free(700, 20), 0);
  BlockRange got;
  ASSERT_EQ(a.Alloc(Req(10, 10, 650), &got), 0);
  EXPECT_EQ(got, R(700, 10));  // 50 blocks right beats 530 blocks left
  ASSERT_EQ(a.Alloc(Req(10, 10, 130), &got), 0);
  EXPECT_EQ(got, R(110, 10));  // left side: the blocks nearest the hint
}

TEST(AllocatorTest, ShortAllocationFromTheLongestExtent) {
  Allocator a(0, 100, Allocator::Init::kAllUsed);
  ASSERT_EQ(a.Free(10, 3), 0);
  ASSERT_EQ(a.Free(20, 5), 0);
  BlockRange got;
  EXPECT_EQ(a.Alloc(Req(10, 6), &got), -ENOSPC);  // honest: nothing of 6
  ASSERT_EQ(a.Alloc(Req(10, 4), &got), 0);
  EXPECT_EQ(got, R(20, 5));
  EXPECT_EQ(a.FreeBlocks(), 3u);
}

TEST(AllocatorTest, FreeMergesNeighboursAndCatchesDoubleFree) {
  Allocator a(0, 100, Allocator::Init::kAllUsed);
  ASSERT_EQ(a.Free(10, 5), 0);
  ASSERT_EQ(a.Free(20, 5), 0);
  ASSERT_EQ(a.Free(15, 5), 0);
  EXPECT_EQ(FreeList(a), std::vector<BlockRange>({R(10, 15)}));
  EXPECT_EQ(a.Free(12, 1), -EUCLEAN);
  EXPECT_EQ(a.Free(5, 6), -EUCLEAN);  // overlaps the start
  EXPECT_EQ(a.Free(95, 10), -EINVAL);
  EXPECT_EQ(a.Free(0, 0), -EINVAL);
  EXPECT_TRUE(a.Check().ok());
}

TEST(AllocatorTest, MarkUsedRebuildsAndRefusesUsedBlocks) {
  Allocator a(0, 100, Allocator::Init::kAllFree);
  ASSERT_EQ(a.MarkUsed(10, 10), 0);
  ASSERT_EQ(a.MarkUsed(40, 5), 0);
  EXPECT_EQ(a.MarkUsed(15, 1), -EUCLEAN);
  EXPECT_EQ(a.MarkUsed(35, 10), -EUCLEAN);
  EXPECT_EQ(FreeList(a),
            std::vector<BlockRange>({R(0, 10), R(20, 20), R(45, 55)}));
  EXPECT_TRUE(a.IsFree(20, 20));
  EXPECT_FALSE(a.IsFree(19, 2));
  EXPECT_EQ(a.NumFreeExtents(), 3u);
  EXPECT_EQ(a.LongestFreeExtent(), 55u);
}

TEST(AllocatorTest, ReservationsHoldBlocksBackFromOrdinaryAllocations) {
  Allocator a(0, 100, Allocator::Init::kAllFree);
  ASSERT_EQ(a.Reserve(90), 0);
  EXPECT_EQ(a.Reserve(11), -ENOSPC);
  EXPECT_EQ(a.AvailableBlocks(), 10u);
  BlockRange got;
  EXPECT_EQ(a.Alloc(Req(20, 11), &got), -ENOSPC);
  ASSERT_EQ(a.Alloc(Req(20, 5), &got), 0);
  EXPECT_EQ(got.len, 10u);  // capped at what is not reserved
  AllocRequest from_res = Req(30, 30);
  from_res.from_reservation = true;
  ASSERT_EQ(a.Alloc(from_res, &got), 0);
  EXPECT_EQ(a.ReservedBlocks(), 60u);
  EXPECT_EQ(a.FreeBlocks(), 60u);
  from_res.want_blocks = from_res.min_blocks = 61;
  EXPECT_EQ(a.Alloc(from_res, &got), -EINVAL);
  EXPECT_EQ(a.MarkUsed(90, 10), -ENOSPC);  // would eat reserved blocks
  EXPECT_EQ(a.Unreserve(61), -EINVAL);
  ASSERT_EQ(a.Unreserve(60), 0);
  EXPECT_TRUE(a.Check().ok());
}

TEST(AllocatorTest, AlignedAllocationsStartOnMultiples) {
  Allocator a(0, 100, Allocator::Init::kAllUsed);
  ASSERT_EQ(a.Free(3, 6), 0);    // [3, 9): aligned run of 4 at [4, 8)
  ASSERT_EQ(a.Free(21, 12), 0);  // [21, 33): aligned 8 at 24
  AllocRequest req = Req(8, 8);
  req.align_blocks = 8;
  BlockRange got;
  ASSERT_EQ(a.Alloc(req, &got), 0);
  EXPECT_EQ(got, R(24, 8));
  req = Req(4, 4, 5);  // unaligned hint: no exact, near instead
  req.align_blocks = 4;
  ASSERT_EQ(a.Alloc(req, &got), 0);
  EXPECT_EQ(got, R(4, 4));
  req = Req(4, 2);
  req.align_blocks = 16;  // [3,4), [8,9), [21,24), [32,33): none aligned
  EXPECT_EQ(a.Alloc(req, &got), -ENOSPC);
  req.align_blocks = 1;
  ASSERT_EQ(a.Alloc(req, &got), 0);
  EXPECT_EQ(got, R(21, 3));  // longest run, shorter than wanted
  EXPECT_TRUE(a.Check().ok());
}

TEST(AllocatorTest, RejectsMalformedRequests) {
  Allocator a(0, 100, Allocator::Init::kAllFree);
  BlockRange got;
  EXPECT_EQ(a.Alloc(Req(0), &got), -EINVAL);
  EXPECT_EQ(a.Alloc(0, 0, kNoHint, &got), -EINVAL);
  ASSERT_EQ(a.Alloc(3, 1, 50, &got), 0);  // the three-argument form
  EXPECT_EQ(got, R(50, 3));
  ASSERT_EQ(a.Free(50, 3), 0);
  EXPECT_EQ(a.Alloc(Req(4, 5), &got), -EINVAL);
  EXPECT_EQ(a.FreeBlocks(), 100u);
}

TEST(AllocatorTest, ConcurrentAllocAndFreeKeepInvariants) {
  Allocator a(0, 100000, Allocator::Init::kAllFree);
  auto worker = [&a](int id) {
    std::mt19937_64 rng(id);
    std::vector<BlockRange> held;
    for (int i = 0; i < 2000; ++i) {
      BlockRange got;
      if (a.Alloc(Req(1 + rng() % 16, 1, rng() % 100000), &got) == 0) {
        held.push_back(got);
      }
      if (held.size() > 20) {
        ASSERT_EQ(a.Free(held.front().start, held.front().len), 0);
        held.erase(held.begin());
      }
    }
    for (const BlockRange& r : held) ASSERT_EQ(a.Free(r.start, r.len), 0);
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(worker, t + 1);
  for (auto& t : threads) t.join();
  EXPECT_EQ(a.FreeBlocks(), 100000u);
  EXPECT_EQ(a.NumFreeExtents(), 1u);
  EXPECT_TRUE(a.Check().ok());
}

}  // namespace

// Reaches into the allocator to corrupt it the ways a bug could.
class AllocatorTestPeer {
 public:
  static void DropFromBySize(Allocator& a, uint64_t start, uint64_t len) {
    base::MutexLock lock(&a.mu_);
    a.by_size_.erase({len, start});
    a.by_size_.insert({len + 1, start});
  }
  static void AddRaw(Allocator& a, uint64_t start, uint64_t len) {
    base::MutexLock lock(&a.mu_);
    a.by_start_[start] = len;
    a.by_size_.insert({len, start});
    a.free_blocks_ += len;
  }
  static void SetReserved(Allocator& a, uint64_t n) {
    base::MutexLock lock(&a.mu_);
    a.reserved_blocks_ = n;
  }
};

namespace {

TEST(AllocatorTest, CheckNamesEachKindOfCorruption) {
  auto error_of = [](void (*corrupt)(Allocator&)) {
    Allocator a(0, 100, Allocator::Init::kAllUsed);
    EXPECT_EQ(a.Free(10, 10), 0);
    corrupt(a);
    absl::Status st = a.Check();
    EXPECT_EQ(base::ErrnoOf(st), -EUCLEAN);
    return std::string(st.message());
  };
  EXPECT_NE(error_of([](Allocator& a) {
              AllocatorTestPeer::DropFromBySize(a, 10, 10);
            }).find("missing from the by-size index"),
            std::string::npos);
  EXPECT_NE(error_of([](Allocator& a) {
              AllocatorTestPeer::AddRaw(a, 15, 10);
            }).find("overlaps"),
            std::string::npos);
  EXPECT_NE(error_of([](Allocator& a) {
              AllocatorTestPeer::AddRaw(a, 20, 1);
            }).find("not merged"),
            std::string::npos);
  EXPECT_NE(error_of([](Allocator& a) {
              AllocatorTestPeer::AddRaw(a, 95, 10);
            }).find("outside the device"),
            std::string::npos);
  EXPECT_NE(error_of([](Allocator& a) {
              AllocatorTestPeer::SetReserved(a, 11);
            }).find("reserved 11 exceeds free 10"),
            std::string::npos);
}

// 100,000 free extents: allocations stay in microseconds.
TEST(AllocatorTest, ScalesTo100kFreeExtents) {
  constexpr uint64_t kExtents = 100000;
  Allocator a(0, kExtents * 4, Allocator::Init::kAllUsed);
  for (uint64_t i = 0; i < kExtents; ++i) {
    ASSERT_EQ(a.Free(i * 4, 1 + i % 3), 0);
  }
  ASSERT_EQ(a.NumFreeExtents(), kExtents);
  std::mt19937_64 rng(7);
  constexpr int kAllocs = 20000;
  std::vector<BlockRange> got(kAllocs);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kAllocs; ++i) {
    ASSERT_EQ(a.Alloc(Req(1 + rng() % 3, 1, rng() % (kExtents * 4)), &got[i]),
              0);
  }
  auto t1 = std::chrono::steady_clock::now();
  const double avg_us =
      std::chrono::duration<double, std::micro>(t1 - t0).count() / kAllocs;
  std::printf(
      "Allocator: %d allocations over %llu free extents: %.3f us "
      "average\n",
      kAllocs, static_cast<unsigned long long>(kExtents), avg_us);
  // The bound is for optimized builds; sanitizer builds run 10-100x slower
  // and get a 10x looser one.
#ifdef IOMAPD_SANITIZER
  EXPECT_LT(avg_us, 200.0);
#else
  EXPECT_LT(avg_us, 20.0);
#endif
  EXPECT_TRUE(a.Check().ok());
}

// --- randomized model test: a per-block free bitmap is the reference ---

class AllocModel {
 public:
  AllocModel(uint64_t first, uint64_t end) : first_(first), free_(end, false) {
    for (uint64_t b = first; b < end; ++b) free_[b] = true;
  }
  uint64_t end() const { return free_.size(); }
  bool IsFree(uint64_t b) const { return b < free_.size() && free_[b]; }
  bool AllFree(BlockRange r) const {
    for (uint64_t b = r.start; b < r.end(); ++b) {
      if (!IsFree(b)) return false;
    }
    return true;
  }
  void Set(BlockRange r, bool free) {
    for (uint64_t b = r.start; b < r.end(); ++b) free_[b] = free;
  }
  uint64_t RunFrom(uint64_t b) const {
    uint64_t n = 0;
    while (IsFree(b + n)) ++n;
    return n;
  }
  std::vector<BlockRange> Runs() const {
    std::vector<BlockRange> out;
    for (uint64_t b = first_; b < end();) {
      uint64_t n = RunFrom(b);
      if (n > 0) out.push_back(R(b, n));
      b += std::max<uint64_t>(n, 1);
    }
    return out;
  }
  uint64_t Count() const {
    uint64_t n = 0;
    for (bool f : free_) n += f;
    return n;
  }
  // The longest free run starting on a multiple of `align`.
  uint64_t LongestAligned(uint64_t align) const {
    uint64_t best = 0;
    for (uint64_t b = 0; b < end(); b += align) {
      best = std::max(best, RunFrom(b));
    }
    return best;
  }
  uint64_t Longest() const {
    uint64_t best = 0;
    for (const BlockRange& r : Runs()) best = std::max(best, r.len);
    return best;
  }

 private:
  uint64_t first_;
  std::vector<bool> free_;
};

struct ModelState {
  Allocator alloc{8, 400, Allocator::Init::kAllFree};
  AllocModel model{8, 400};
  std::vector<BlockRange> held;
  uint64_t reserved = 0;
};

void AllocStep(std::mt19937_64& rng, ModelState& s) {
  AllocRequest req = Req(1 + rng() % 24);
  req.min_blocks = 1 + rng() % req.want_blocks;
  if (rng() % 3 == 0 && !s.held.empty()) {
    req.hint_block = s.held[rng() % s.held.size()].end();
  } else if (rng() % 2) {
    req.hint_block = rng() % 420;
  }
  const uint64_t aligns[] = {1, 1, 1, 2, 4, 8};
  req.align_blocks = aligns[rng() % 6];
  req.from_reservation = s.reserved >= req.want_blocks && rng() % 2;
  const uint64_t avail = s.model.Count() - s.reserved;
  const uint64_t limit =
      req.from_reservation ? req.want_blocks : std::min(req.want_blocks, avail);
  const uint64_t longest = s.model.LongestAligned(req.align_blocks);
  BlockRange got;
  int rc = s.alloc.Alloc(req, &got);
  if (rc == -ENOSPC) {
    ASSERT_TRUE(longest < req.min_blocks ||
                (!req.from_reservation && avail < req.min_blocks));
    return;
  }
  ASSERT_EQ(rc, 0);
  ASSERT_GE(got.len, req.min_blocks);
  ASSERT_LE(got.len, limit);
  ASSERT_EQ(got.start % req.align_blocks, 0u);
  ASSERT_TRUE(s.model.AllFree(got));
  const uint64_t room = s.model.RunFrom(req.hint_block);
  if (req.hint_block != kNoHint && req.hint_block % req.align_blocks == 0 &&
      room >= req.min_blocks) {
    ASSERT_EQ(got, R(req.hint_block, std::min(room, limit)));  // exact first
  } else if (longest >= limit) {
    ASSERT_EQ(got.len, limit);  // some aligned run held all of it
  }
  s.model.Set(got, false);
  s.held.push_back(got);
  if (req.from_reservation) s.reserved -= got.len;
}

void FreeStep(std::mt19937_64& rng, ModelState& s) {
  if (s.held.empty()) return;
  const size_t i = rng() % s.held.size();
  BlockRange r = s.held[i];
  // Free a sub-range, keeping the pieces on either side.
  const uint64_t skip = rng() % r.len;
  const uint64_t len = 1 + rng() % (r.len - skip);
  BlockRange piece = R(r.start + skip, len);
  ASSERT_EQ(s.alloc.Free(piece.start, piece.len), 0);
  ASSERT_EQ(s.alloc.Free(piece.start, piece.len), -EUCLEAN);
  s.model.Set(piece, true);
  s.held.erase(s.held.begin() + i);
  if (skip > 0) s.held.push_back(R(r.start, skip));
  if (piece.end() < r.end())
    s.held.push_back(R(piece.end(), r.end() - piece.end()));
}

void MarkUsedStep(std::mt19937_64& rng, ModelState& s) {
  BlockRange r = R(8 + rng() % 380, 1 + rng() % 12);
  if (r.end() > 400) return;
  const bool ok = s.model.AllFree(r) && s.model.Count() - r.len >= s.reserved;
  const int want = ok ? 0 : (s.model.AllFree(r) ? -ENOSPC : -EUCLEAN);
  ASSERT_EQ(s.alloc.MarkUsed(r.start, r.len), want);
  if (!ok) return;
  s.model.Set(r, false);
  s.held.push_back(r);
}

void ReserveStep(std::mt19937_64& rng, ModelState& s) {
  const uint64_t n = rng() % 40;
  if (rng() % 2) {
    const bool fits = s.model.Count() - s.reserved >= n;
    ASSERT_EQ(s.alloc.Reserve(n), fits ? 0 : -ENOSPC);
    if (fits) s.reserved += n;
  } else {
    const uint64_t back = std::min(n, s.reserved);
    ASSERT_EQ(s.alloc.Unreserve(back), 0);
    s.reserved -= back;
  }
}

void ExpectMatches(const ModelState& s) {
  ASSERT_TRUE(s.alloc.Check().ok()) << s.alloc.Check();
  ASSERT_EQ(s.alloc.FreeBlocks(), s.model.Count());
  ASSERT_EQ(s.alloc.ReservedBlocks(), s.reserved);
  ASSERT_EQ(FreeList(s.alloc), s.model.Runs());
}

TEST(AllocatorModelTest, RandomOperationsMatchPerBlockModel) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    ModelState s;
    for (int step = 0; step < 500; ++step) {
      switch (rng() % 6) {
        case 0:
        case 1:
          AllocStep(rng, s);
          break;
        case 2:
        case 3:
          FreeStep(rng, s);
          break;
        case 4:
          MarkUsedStep(rng, s);
          break;
        default:
          ReserveStep(rng, s);
          break;
      }
      if (!HasFatalFailure()) ExpectMatches(s);
      if (HasFatalFailure()) {
        std::printf("AllocatorModelTest failed: seed %llu step %d\n",
                    static_cast<unsigned long long>(seed), step);
        return;
      }
    }
  }
}

}  // namespace
}  // namespace fs
