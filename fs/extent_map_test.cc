#include "fs/extent_map.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "base/errno.h"
#include "gtest/gtest.h"

namespace fs {
namespace {

constexpr ExtentState kW = ExtentState::kWritten;
constexpr ExtentState kU = ExtentState::kUnwritten;
constexpr ExtentState kD = ExtentState::kDelalloc;
constexpr ExtentState kH = ExtentState::kHole;

std::vector<Extent> All(const ExtentMap& m) {
  std::vector<Extent> out;
  m.ForEach([&](const Extent& e) { out.push_back(e); });
  return out;
}

Extent E(uint64_t off, uint64_t len, uint64_t dev, ExtentState s) {
  return Extent{off, len, dev, s};
}

TEST(ExtentMapTest, EmptyMapIsOneBigHole) {
  ExtentMap m;
  Extent e = m.Lookup(10);
  EXPECT_EQ(e.state, kH);
  EXPECT_EQ(e.file_off, 10u);
  EXPECT_EQ(e.len, kMaxFileBlocks - 10);
  EXPECT_EQ(m.Lookup(kMaxFileBlocks).len, 0u);
  Extent next;
  EXPECT_FALSE(m.NextExtent(0, &next));
  EXPECT_TRUE(m.Check().ok());
}

TEST(ExtentMapTest, LookupReturnsContainingExtentOrHoleToNext) {
  ExtentMap m;
  ASSERT_EQ(m.Map(10, 5, 100, kW, nullptr), 0);
  EXPECT_EQ(m.Lookup(12), E(10, 5, 100, kW));
  EXPECT_EQ(m.Lookup(3), E(3, 7, kNoDevBlock, kH));
  EXPECT_EQ(m.Lookup(15).state, kH);
  EXPECT_EQ(m.Lookup(15).len, kMaxFileBlocks - 15);
  Extent next;
  ASSERT_TRUE(m.NextExtent(3, &next));
  EXPECT_EQ(next, E(10, 5, 100, kW));
  ASSERT_TRUE(m.NextExtent(14, &next));
  EXPECT_FALSE(m.NextExtent(15, &next));
}

TEST(ExtentMapTest, AdjacentCompatibleExtentsMerge) {
  ExtentMap m;
  ASSERT_EQ(m.Map(0, 4, 100, kW, nullptr), 0);
  ASSERT_EQ(m.Map(4, 4, 104, kW, nullptr), 0);  // contiguous: merge
  EXPECT_EQ(All(m), std::vector<Extent>({E(0, 8, 100, kW)}));
  ASSERT_EQ(m.Map(8, 4, 200, kW, nullptr), 0);   // device gap: no merge
  ASSERT_EQ(m.Map(12, 4, 204, kU, nullptr), 0);  // state differs
  EXPECT_EQ(m.NumExtents(), 3u);
  ASSERT_EQ(m.Map(20, 2, kNoDevBlock, kD, nullptr), 0);
  ASSERT_EQ(m.Map(22, 2, kNoDevBlock, kD, nullptr), 0);  // delalloc merges
  EXPECT_EQ(m.NumExtents(), 4u);
  EXPECT_TRUE(m.Check().ok());
}

TEST(ExtentMapTest, MapInTheMiddleSplitsAndReturnsReplaced) {
  ExtentMap m;
  ASSERT_EQ(m.Map(0, 10, 100, kW, nullptr), 0);
  std::vector<Extent> replaced;
  ASSERT_EQ(m.Map(3, 4, 500, kU, &replaced), 0);
  EXPECT_EQ(replaced, std::vector<Extent>({E(3, 4, 103, kW)}));
  EXPECT_EQ(All(m), std::vector<Extent>({E(0, 3, 100, kW), E(3, 4, 500, kU),
                                         E(7, 3, 107, kW)}));
  // Mapping the original blocks back merges everything into one extent.
  replaced.clear();
  ASSERT_EQ(m.Map(3, 4, 103, kW, &replaced), 0);
  EXPECT_EQ(replaced, std::vector<Extent>({E(3, 4, 500, kU)}));
  EXPECT_EQ(All(m), std::vector<Extent>({E(0, 10, 100, kW)}));
  EXPECT_EQ(m.BlocksInState(kW), 10u);
  EXPECT_EQ(m.BlocksInState(kU), 0u);
}

TEST(ExtentMapTest, MapAcrossSeveralExtentsAndHoles) {
  ExtentMap m;
  ASSERT_EQ(m.Map(0, 4, 100, kW, nullptr), 0);
  ASSERT_EQ(m.Map(6, 2, kNoDevBlock, kD, nullptr), 0);
  ASSERT_EQ(m.Map(10, 4, 300, kU, nullptr), 0);
  std::vector<Extent> replaced;
  ASSERT_EQ(m.Map(2, 10, 900, kW, &replaced), 0);
  EXPECT_EQ(replaced,
            std::vector<Extent>({E(2, 2, 102, kW), E(6, 2, kNoDevBlock, kD),
                                 E(10, 2, 300, kU)}));
  EXPECT_EQ(All(m), std::vector<Extent>({E(0, 2, 100, kW), E(2, 10, 900, kW),
                                         E(12, 2, 302, kU)}));
  EXPECT_TRUE(m.Check().ok());
}

TEST(ExtentMapTest, UnmapPunchesAndReturnsPieces) {
  ExtentMap m;
  ASSERT_EQ(m.Map(0, 10, 100, kW, nullptr), 0);
  std::vector<Extent> removed;
  ASSERT_EQ(m.Unmap(2, 3, &removed), 0);
  EXPECT_EQ(removed, std::vector<Extent>({E(2, 3, 102, kW)}));
  EXPECT_EQ(All(m), std::vector<Extent>({E(0, 2, 100, kW), E(5, 5, 105, kW)}));
  const uint64_t seq = m.Sequence();
  ASSERT_EQ(m.Unmap(2, 3, nullptr), 0);  // nothing there: no change
  EXPECT_EQ(m.Sequence(), seq);
}

TEST(ExtentMapTest, ConvertUnwrittenMergesWithWrittenNeighbours) {
  ExtentMap m;
  ASSERT_EQ(m.Map(0, 4, 100, kW, nullptr), 0);
  ASSERT_EQ(m.Map(4, 8, 104, kU, nullptr), 0);
  EXPECT_EQ(m.ConvertUnwritten(6, 2), 2);
  EXPECT_EQ(All(m), std::vector<Extent>({E(0, 4, 100, kW), E(4, 2, 104, kU),
                                         E(6, 2, 106, kW), E(8, 4, 108, kU)}));
  EXPECT_EQ(m.ConvertUnwritten(0, 100), 6);
  EXPECT_EQ(All(m), std::vector<Extent>({E(0, 12, 100, kW)}));
  EXPECT_EQ(m.ConvertUnwritten(0, 100), 0);
  EXPECT_EQ(m.ConvertState(0, 1, kW, kD), -EINVAL);
  EXPECT_EQ(m.ConvertState(0, 3, kW, kU), 3);  // zero range style
  EXPECT_EQ(m.Lookup(0), E(0, 3, 100, kU));
}

TEST(ExtentMapTest, PunchDelallocLeavesOtherStates) {
  ExtentMap m;
  ASSERT_EQ(m.Map(0, 10, kNoDevBlock, kD, nullptr), 0);
  ASSERT_EQ(m.Map(4, 2, 50, kW, nullptr), 0);
  std::vector<Extent> punched;
  EXPECT_EQ(m.PunchDelalloc(2, 6, &punched), 4);
  EXPECT_EQ(punched, std::vector<Extent>(
                         {E(2, 2, kNoDevBlock, kD), E(6, 2, kNoDevBlock, kD)}));
  EXPECT_EQ(All(m),
            std::vector<Extent>({E(0, 2, kNoDevBlock, kD), E(4, 2, 50, kW),
                                 E(8, 2, kNoDevBlock, kD)}));
  EXPECT_EQ(m.BlocksInState(kD), 4u);
}

TEST(ExtentMapTest, RejectsBadArguments) {
  ExtentMap m;
  EXPECT_EQ(m.Map(0, 0, 1, kW, nullptr), -EINVAL);
  EXPECT_EQ(m.Map(0, 1, 1, kH, nullptr), -EINVAL);
  EXPECT_EQ(m.Map(0, 1, 1, kD, nullptr), -EINVAL);  // delalloc has no block
  EXPECT_EQ(m.Map(0, 1, kNoDevBlock, kW, nullptr), -EINVAL);
  EXPECT_EQ(m.Map(kMaxFileBlocks - 1, 2, 1, kW, nullptr), -EINVAL);
  EXPECT_EQ(m.Unmap(5, 0, nullptr), -EINVAL);
  EXPECT_EQ(m.NumExtents(), 0u);
  EXPECT_EQ(m.Sequence(), 0u);
}

TEST(ExtentMapTest, SequenceBumpsOnEveryChange) {
  ExtentMap m;
  uint64_t s0 = m.Sequence();
  ASSERT_EQ(m.Map(0, 4, 100, kU, nullptr), 0);
  uint64_t s1 = m.Sequence();
  EXPECT_GT(s1, s0);
  EXPECT_EQ(m.ConvertUnwritten(0, 4), 4);
  uint64_t s2 = m.Sequence();
  EXPECT_GT(s2, s1);
  EXPECT_EQ(m.ConvertUnwritten(0, 4), 0);
  EXPECT_EQ(m.Sequence(), s2);
  EXPECT_EQ(m.PunchDelalloc(0, 4, nullptr), 0);
  EXPECT_EQ(m.Sequence(), s2);
  ASSERT_EQ(m.Unmap(0, 1, nullptr), 0);
  EXPECT_GT(m.Sequence(), s2);
}

TEST(ExtentMapTest, InsertRebuildsAndRefusesOverlap) {
  ExtentMap src;
  ASSERT_EQ(src.Map(0, 4, 100, kW, nullptr), 0);
  ASSERT_EQ(src.Map(8, 4, kNoDevBlock, kD, nullptr), 0);
  ASSERT_EQ(src.Map(20, 4, 300, kU, nullptr), 0);
  ExtentMap dst;
  src.ForEach([&](const Extent& e) { ASSERT_EQ(dst.Insert(e), 0); });
  EXPECT_EQ(All(dst), All(src));
  EXPECT_EQ(dst.Insert(E(3, 2, 700, kW)), -EEXIST);
  EXPECT_EQ(dst.Insert(E(4, 2, 104, kW)), 0);  // merges on insert
  EXPECT_EQ(dst.Lookup(0), E(0, 6, 100, kW));
  EXPECT_TRUE(dst.Check().ok());
}

TEST(ExtentMapTest, ForEachInRangeClips) {
  ExtentMap m;
  ASSERT_EQ(m.Map(0, 10, 100, kW, nullptr), 0);
  ASSERT_EQ(m.Map(20, 10, kNoDevBlock, kD, nullptr), 0);
  std::vector<Extent> got;
  m.ForEachInRange(5, 20, [&](const Extent& e) { got.push_back(e); });
  EXPECT_EQ(got,
            std::vector<Extent>({E(5, 5, 105, kW), E(20, 5, kNoDevBlock, kD)}));
}

TEST(ExtentMapTest, ShiftCollapsesAndInserts) {
  ExtentMap m;
  ASSERT_EQ(m.Map(0, 4, 100, kW, nullptr), 0);
  ASSERT_EQ(m.Map(8, 4, 104, kW, nullptr), 0);
  EXPECT_EQ(m.Shift(8, -5), -EINVAL);  // would land on [0, 4)
  ASSERT_EQ(m.Shift(8, -4), 0);        // collapse: merges at the seam
  EXPECT_EQ(All(m), std::vector<Extent>({E(0, 8, 100, kW)}));
  ASSERT_EQ(m.Shift(2, 3), 0);  // insert range splits at 2
  EXPECT_EQ(All(m), std::vector<Extent>({E(0, 2, 100, kW), E(5, 6, 102, kW)}));
  EXPECT_EQ(m.Shift(0, static_cast<int64_t>(kMaxFileBlocks)), -EINVAL);
  EXPECT_TRUE(m.Check().ok());
}

TEST(ExtentMapTest, ShiftMovesEveryStateAndKeepsCounters) {
  ExtentMap m;
  ASSERT_EQ(m.Map(0, 4, 100, kW, nullptr), 0);
  ASSERT_EQ(m.Map(10, 4, 200, kU, nullptr), 0);
  ASSERT_EQ(m.Map(20, 3, kNoDevBlock, kD, nullptr), 0);
  ASSERT_EQ(m.Map(30, 2, 300, kW, nullptr), 0);
  const uint64_t seq = m.Sequence();
  // Nothing at or after 40: no change, no new sequence.
  ASSERT_EQ(m.Shift(40, 5), 0);
  ASSERT_EQ(m.Shift(40, -5), 0);
  EXPECT_EQ(m.Sequence(), seq);
  ASSERT_EQ(m.Shift(12, 7), 0);  // splits the unwritten extent at 12
  EXPECT_GT(m.Sequence(), seq);
  EXPECT_EQ(All(m), std::vector<Extent>(
                        {E(0, 4, 100, kW), E(10, 2, 200, kU), E(19, 2, 202, kU),
                         E(27, 3, kNoDevBlock, kD), E(37, 2, 300, kW)}));
  // Collapse back: the two unwritten halves are contiguous again: merged.
  ASSERT_EQ(m.Shift(19, -7), 0);
  EXPECT_EQ(All(m), std::vector<Extent>({E(0, 4, 100, kW), E(10, 4, 200, kU),
                                         E(20, 3, kNoDevBlock, kD),
                                         E(30, 2, 300, kW)}));
  // Contiguous in the file but not on the device: not merged.
  ASSERT_EQ(m.Shift(10, -6), 0);
  EXPECT_EQ(All(m), std::vector<Extent>({E(0, 4, 100, kW), E(4, 4, 200, kU),
                                         E(14, 3, kNoDevBlock, kD),
                                         E(24, 2, 300, kW)}));
  EXPECT_EQ(m.BlocksInState(kW), 6u);
  EXPECT_EQ(m.BlocksInState(kU), 4u);
  EXPECT_EQ(m.BlocksInState(kD), 3u);
  EXPECT_TRUE(m.Check().ok()) << m.Check();
  // A collapse from inside an extent would split it: refused, unchanged.
  const uint64_t seq2 = m.Sequence();
  EXPECT_EQ(m.Shift(6, -2), -EINVAL);
  EXPECT_EQ(m.Shift(kMaxFileBlocks, 1), -EINVAL);
  EXPECT_EQ(m.Shift(0, static_cast<int64_t>(kMaxFileBlocks - 25)), -EINVAL);
  EXPECT_EQ(m.Sequence(), seq2);
  ASSERT_EQ(m.Shift(0, static_cast<int64_t>(kMaxFileBlocks - 26)), 0);
  EXPECT_EQ(m.Lookup(kMaxFileBlocks - 1).state, kW);
  EXPECT_TRUE(m.Check().ok()) << m.Check();
}

// 100,000 extents: a shift moving all of them is linear (measured against
// a shift moving one), and the result is exact.
TEST(ExtentMapTest, ShiftOfManyExtentsIsLinear) {
  constexpr uint64_t kN = 100000;
  ExtentMap m;
  for (uint64_t i = 0; i < kN; ++i) {
    ASSERT_EQ(m.Insert(E(2 * i, 1, 1000 + 3 * i, i % 2 ? kW : kU)), 0);
  }
  auto timed = [&](uint64_t off, int64_t delta) {
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(m.Shift(off, delta), 0);
    return std::chrono::duration<double, std::micro>(
               std::chrono::steady_clock::now() - t0)
        .count();
  };
  const double all_us = timed(0, 5);           // insert: moves all
  const double back_us = timed(5, -5);         // collapse: moves all
  const double one_us = timed(2 * kN - 2, 1);  // moves the last one
  std::printf(
      "shift of %llu extents: %.0f us insert, %.0f us collapse; "
      "of one: %.1f us\n",
      static_cast<unsigned long long>(kN), all_us, back_us, one_us);
  EXPECT_LT(all_us, 500000.0);  // generous: sanitizer builds, loaded CI
  EXPECT_EQ(m.NumExtents(), kN);
  EXPECT_EQ(m.Lookup(2 * kN - 1).dev_block, 1000 + 3 * (kN - 1));
  EXPECT_EQ(m.Lookup(2 * kN - 2).state, kH);
  EXPECT_EQ(m.Lookup(2 * 777).dev_block, 1000 + 3 * 777u);
  EXPECT_EQ(m.Lookup(2 * 777 + 1).state, kH);
  EXPECT_TRUE(m.Check().ok()) << m.Check();
}

TEST(ExtentMapTest, CheckRejectsOutOfDeviceExtents) {
  ExtentMap m;
  ASSERT_EQ(m.Map(0, 4, 100, kW, nullptr), 0);
  EXPECT_TRUE(m.Check(0, 104).ok());
  absl::Status st = m.Check(0, 103);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(base::ErrnoOf(st), -EUCLEAN);
  EXPECT_NE(st.message().find("outside device"), absl::string_view::npos);
  EXPECT_FALSE(m.Check(101, 1000).ok());
}

TEST(ExtentMapTest, MoveKeepsContentsAndSequence) {
  ExtentMap a;
  ASSERT_EQ(a.Map(0, 4, 100, kW, nullptr), 0);
  const uint64_t seq = a.Sequence();
  ExtentMap b(std::move(a));
  EXPECT_EQ(b.NumExtents(), 1u);
  EXPECT_EQ(b.Sequence(), seq);
  EXPECT_EQ(b.BlocksInState(kW), 4u);
  EXPECT_TRUE(b.Check().ok());
}

}  // namespace

// Reaches into the map to corrupt it the ways a bug could.
class ExtentMapTestPeer {
 public:
  static void Raw(ExtentMap& m, const Extent& e) {
    m.map_[e.file_off] = ExtentMap::Rec{e.len, e.dev_block, e.state};
  }
  static void Counter(ExtentMap& m, ExtentState s, uint64_t v) {
    m.blocks_[static_cast<int>(s)] = v;
  }
};

namespace {

TEST(ExtentMapTest, CheckNamesEachKindOfCorruption) {
  auto error_of = [](void (*corrupt)(ExtentMap&)) {
    ExtentMap m;
    EXPECT_EQ(m.Map(0, 4, 100, kW, nullptr), 0);
    corrupt(m);
    absl::Status st = m.Check();
    EXPECT_EQ(base::ErrnoOf(st), -EUCLEAN);
    return std::string(st.message());
  };
  EXPECT_NE(error_of([](ExtentMap& m) {
              ExtentMapTestPeer::Raw(m, E(2, 4, 500, kW));
            }).find("overlap"),
            std::string::npos);
  EXPECT_NE(error_of([](ExtentMap& m) {
              ExtentMapTestPeer::Raw(m, E(4, 4, 104, kW));
            }).find("not merged"),
            std::string::npos);
  EXPECT_NE(error_of([](ExtentMap& m) {
              ExtentMapTestPeer::Raw(m, E(9, 1, 7, kD));
            }).find("bad state"),
            std::string::npos);
  EXPECT_NE(error_of([](ExtentMap& m) {
              ExtentMapTestPeer::Raw(m, E(9, 0, 7, kW));
            }).find("bad file range"),
            std::string::npos);
  EXPECT_NE(error_of([](ExtentMap& m) {
              ExtentMapTestPeer::Counter(m, kW, 5);
            }).find("written block counter 5"),
            std::string::npos);
}

// 100,000 extents; Lookup must stay in microseconds (issue 3).
TEST(ExtentMapTest, ScalesTo100kExtents) {
  constexpr uint64_t kExtents = 100000;
  ExtentMap m;
  for (uint64_t i = 0; i < kExtents; ++i) {
    ASSERT_EQ(m.Map(i * 4, 2, 1000 + i * 8, i % 2 ? kW : kU, nullptr), 0);
  }
  ASSERT_EQ(m.NumExtents(), kExtents);
  std::mt19937_64 rng(42);
  std::vector<uint64_t> offs(kExtents);
  for (auto& o : offs) o = rng() % (kExtents * 4);
  uint64_t mapped = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (uint64_t o : offs) mapped += m.Lookup(o).state != kH;
  auto t1 = std::chrono::steady_clock::now();
  const double avg_us =
      std::chrono::duration<double, std::micro>(t1 - t0).count() / kExtents;
  std::printf("ExtentMap: %llu lookups over %llu extents: %.3f us average\n",
              static_cast<unsigned long long>(kExtents),
              static_cast<unsigned long long>(kExtents), avg_us);
  EXPECT_GT(mapped, kExtents / 3);
  EXPECT_LT(avg_us, 5.0);
  EXPECT_TRUE(m.Check().ok());
}

// --- randomized model test: a per-block array is the reference ---

struct Block {
  ExtentState state = ExtentState::kHole;
  uint64_t dev = kNoDevBlock;
  bool operator==(const Block& o) const {
    return state == o.state && dev == o.dev;
  }
};

class ExtentModel {
 public:
  explicit ExtentModel(uint64_t n) : blocks_(n) {}
  uint64_t size() const { return blocks_.size(); }
  Block at(uint64_t b) const { return blocks_[b]; }
  void Set(uint64_t b, Block v) { blocks_[b] = v; }
  // Expands pieces into per-block (offset, Block) pairs.
  static std::vector<std::pair<uint64_t, Block>> Expand(
      const std::vector<Extent>& pieces) {
    std::vector<std::pair<uint64_t, Block>> out;
    for (const Extent& e : pieces) {
      for (uint64_t i = 0; i < e.len; ++i) {
        out.push_back(
            {e.file_off + i, Block{e.state, e.DevBlockAt(e.file_off + i)}});
      }
    }
    return out;
  }
  // The non-hole blocks of [off, end) matching `pred`.
  template <typename Pred>
  std::vector<std::pair<uint64_t, Block>> Collect(uint64_t off, uint64_t end,
                                                  Pred pred) const {
    std::vector<std::pair<uint64_t, Block>> out;
    for (uint64_t b = off; b < end; ++b) {
      if (blocks_[b].state != kH && pred(blocks_[b])) {
        out.push_back({b, blocks_[b]});
      }
    }
    return out;
  }
  // Number of maximal runs the canonical map must have.
  size_t Runs() const {
    size_t runs = 0;
    for (uint64_t b = 0; b < blocks_.size(); ++b) {
      const Block& cur = blocks_[b];
      if (cur.state == kH) continue;
      bool joins = false;
      if (b > 0 && blocks_[b - 1].state == cur.state) {
        joins = cur.state == kD || blocks_[b - 1].dev + 1 == cur.dev;
      }
      runs += !joins;
    }
    return runs;
  }

 private:
  std::vector<Block> blocks_;
};

void ExpectMatchesModel(const ExtentMap& m, const ExtentModel& model) {
  ASSERT_TRUE(m.Check().ok()) << m.Check();
  for (uint64_t b = 0; b < model.size(); ++b) {
    Extent e = m.Lookup(b);
    ASSERT_LE(e.file_off, b);
    ASSERT_GT(e.file_end(), b);
    ASSERT_EQ(e.state, model.at(b).state) << "block " << b;
    ASSERT_EQ(e.DevBlockAt(b), model.at(b).dev) << "block " << b;
  }
  ASSERT_EQ(m.NumExtents(), model.Runs());
}

// Collapse (or insert) range at `off` on both the map and the model.
void ShiftStep(std::mt19937_64& rng, ExtentMap& m, ExtentModel& model,
               uint64_t off) {
  const uint64_t n = model.size();
  const uint64_t d = 1 + rng() % 8;
  if (rng() % 2) {  // collapse: legal iff [off - d, off) is a hole
    if (d > off) return;
    bool clear =
        model.Collect(off - d, off, [](const Block&) { return true; }).empty();
    ASSERT_EQ(m.Shift(off, -static_cast<int64_t>(d)), clear ? 0 : -EINVAL);
    if (!clear) return;
    for (uint64_t b = off - d; b < n; ++b) {
      model.Set(b, b + d < n ? model.at(b + d) : Block{});
    }
    return;
  }
  // insert: only when the model keeps everything (its tail is a hole)
  if (!model.Collect(n - d, n, [](const Block&) { return true; }).empty()) {
    return;
  }
  ASSERT_EQ(m.Shift(off, static_cast<int64_t>(d)), 0);
  for (uint64_t b = n; b-- > off;) {
    model.Set(b, b >= off + d ? model.at(b - d) : Block{});
  }
}

void RandomStep(std::mt19937_64& rng, ExtentMap& m, ExtentModel& model) {
  const uint64_t off = rng() % model.size();
  const uint64_t len = 1 + rng() % std::min<uint64_t>(24, model.size() - off);
  const uint64_t end = off + len;
  std::vector<Extent> pieces;
  const uint64_t seq = m.Sequence();
  switch (rng() % 6) {
    case 0:
    case 1: {  // Map: device bases chosen so neighbours often merge
      ExtentState st = rng() % 3 == 0 ? kD : (rng() % 2 ? kW : kU);
      uint64_t dev = st == kD ? kNoDevBlock : off + 1000 * (rng() % 3);
      auto want = model.Collect(off, end, [](const Block&) { return true; });
      ASSERT_EQ(m.Map(off, len, dev, st, &pieces), 0);
      ASSERT_EQ(ExtentModel::Expand(pieces), want);
      for (uint64_t b = off; b < end; ++b) {
        model.Set(b, Block{st, st == kD ? kNoDevBlock : dev + (b - off)});
      }
      ASSERT_GT(m.Sequence(), seq);
      break;
    }
    case 2: {
      auto want = model.Collect(off, end, [](const Block&) { return true; });
      ASSERT_EQ(m.Unmap(off, len, &pieces), 0);
      ASSERT_EQ(ExtentModel::Expand(pieces), want);
      for (uint64_t b = off; b < end; ++b) model.Set(b, Block{});
      ASSERT_EQ(m.Sequence() > seq, !want.empty());
      break;
    }
    case 3: {
      auto want =
          model.Collect(off, end, [](const Block& b) { return b.state == kU; });
      ASSERT_EQ(m.ConvertUnwritten(off, len),
                static_cast<int64_t>(want.size()));
      for (auto& w : want) model.Set(w.first, Block{kW, w.second.dev});
      ASSERT_EQ(m.Sequence() > seq, !want.empty());
      break;
    }
    case 4: {
      auto want =
          model.Collect(off, end, [](const Block& b) { return b.state == kD; });
      ASSERT_EQ(m.PunchDelalloc(off, len, &pieces),
                static_cast<int64_t>(want.size()));
      ASSERT_EQ(ExtentModel::Expand(pieces), want);
      for (auto& w : want) model.Set(w.first, Block{});
      break;
    }
    default:
      ShiftStep(rng, m, model, off);
      break;
  }
}

TEST(ExtentMapModelTest, RandomOperationsMatchPerBlockModel) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    ExtentMap m;
    ExtentModel model(160);
    for (int step = 0; step < 400; ++step) {
      RandomStep(rng, m, model);
      if (HasFatalFailure()) {
        std::printf("ExtentMapModelTest failed: seed %llu step %d\n",
                    static_cast<unsigned long long>(seed), step);
        return;
      }
      ExpectMatchesModel(m, model);
      if (HasFatalFailure()) return;
    }
    // Serialize and rebuild: same extents.
    ExtentMap copy;
    m.ForEach([&](const Extent& e) { ASSERT_EQ(copy.Insert(e), 0); });
    ExpectMatchesModel(copy, model);
  }
}

}  // namespace
}  // namespace fs
