#include "fs/checkpoint.h"

#include <cerrno>

#include "base/errno.h"
#include "fs/format.h"
#include "fs/testing/mem_device.h"
#include "gtest/gtest.h"

namespace fs {
namespace {

struct Fixture {
  explicit Fixture(uint32_t bs) : dev(8 << 20) {
    LayoutOptions o;
    o.block_size = bs;
    o.device_bytes = 8 << 20;
    sb = *MakeLayout(o);
  }
  absl::Status Write(int slot, uint64_t gen, absl::string_view payload) {
    CheckpointHeader h;
    h.generation = gen;
    h.epoch = gen;
    h.journal = JournalPosition{gen * 4096, gen * 10};
    return WriteCheckpoint(dev, sb, slot, h, payload);
  }
  testing::MemDevice dev;
  Superblock sb;
};

class CheckpointTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(CheckpointTest, NewestValidSlotWins) {
  Fixture f(GetParam());
  EXPECT_EQ(LoadCheckpoint(f.dev, f.sb).status().code(),
            absl::StatusCode::kDataLoss);
  ASSERT_TRUE(f.Write(0, 1, "first").ok());
  ASSERT_TRUE(f.Write(1, 2, std::string(10000, 's')).ok());
  absl::StatusOr<LoadedCheckpoint> cp = LoadCheckpoint(f.dev, f.sb);
  ASSERT_TRUE(cp.ok()) << cp.status();
  EXPECT_EQ(cp->slot, 1);
  EXPECT_EQ(cp->header.generation, 2u);
  EXPECT_EQ(cp->header.epoch, 2u);
  EXPECT_EQ(cp->header.journal, (JournalPosition{8192, 20}));
  EXPECT_EQ(cp->payload, std::string(10000, 's'));
  ASSERT_TRUE(f.Write(0, 3, "third").ok());
  EXPECT_EQ(LoadCheckpoint(f.dev, f.sb)->payload, "third");
}

TEST_P(CheckpointTest, CorruptOrTornSlotFallsBackToTheOther) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.Write(0, 1, "older").ok());
  ASSERT_TRUE(f.Write(1, 2, std::string(3000, 'n')).ok());
  // Payload damage (a torn write): the older slot is used.
  f.dev.Corrupt(
      f.sb.checkpoint_slot_offset(1) + format::kCheckpointHeaderBytes + 2000,
      1);
  absl::StatusOr<LoadedCheckpoint> cp = LoadCheckpoint(f.dev, f.sb);
  ASSERT_TRUE(cp.ok());
  EXPECT_EQ(cp->payload, "older");
  std::string unused;
  EXPECT_EQ(ReadCheckpointSlot(f.dev, f.sb, 1, &unused).problem,
            "bad payload checksum");
  // Header damage in the other slot too: nothing valid, a clear error.
  f.dev.Corrupt(f.sb.checkpoint_slot_offset(0) + format::kCpGeneration, 4);
  cp = LoadCheckpoint(f.dev, f.sb);
  ASSERT_FALSE(cp.ok());
  EXPECT_EQ(cp.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(cp.status().message().find("slot A: bad header checksum"),
            std::string::npos)
      << cp.status();
  EXPECT_NE(cp.status().message().find("slot B: bad payload checksum"),
            std::string::npos);
}

TEST_P(CheckpointTest, PayloadTooLargeIsEnospc) {
  Fixture f(GetParam());
  absl::Status s =
      f.Write(0, 1, std::string(CheckpointCapacity(f.sb) + 1, 'x'));
  EXPECT_EQ(base::ErrnoOf(s), -ENOSPC);
  EXPECT_TRUE(f.Write(0, 1, std::string(CheckpointCapacity(f.sb), 'x')).ok());
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, CheckpointTest,
                         ::testing::Values(512u, 1024u, 4096u, 65536u));

TEST(SectionsTest, RoundTripAndMalformed) {
  std::string payload;
  AppendSection(&payload, 1, "names");
  AppendSection(&payload, 4, "");
  AppendSection(&payload, 2, std::string(100, 'e'));
  absl::StatusOr<std::map<uint32_t, absl::string_view>> s =
      SplitSections(payload);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->size(), 3u);
  EXPECT_EQ(s->at(1), "names");
  EXPECT_EQ(s->at(4), "");
  EXPECT_EQ(s->at(2).size(), 100u);
  EXPECT_FALSE(SplitSections(payload.substr(0, payload.size() - 1)).ok());
  AppendSection(&payload, 1, "again");
  EXPECT_FALSE(SplitSections(payload).ok());
}

}  // namespace
}  // namespace fs
