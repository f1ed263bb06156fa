#include "fs/superblock.h"

#include "base/crc32c.h"
#include "fs/codec.h"
#include "fs/format.h"
#include "fs/testing/mem_device.h"
#include "gtest/gtest.h"

namespace fs {
namespace {

constexpr uint64_t kDevBytes = 8 << 20;

Superblock Layout(uint32_t bs) {
  LayoutOptions o;
  o.block_size = bs;
  o.device_bytes = kDevBytes;
  absl::StatusOr<Superblock> sb = MakeLayout(o);
  EXPECT_TRUE(sb.ok()) << sb.status();
  return *sb;
}

// Rewrites a field of an encoded superblock and fixes its crc.
std::string Patch(const Superblock& sb, uint32_t off, uint64_t v, int bytes) {
  std::string s = EncodeSuperblock(sb);
  auto* p = reinterpret_cast<uint8_t*>(&s[0]);
  PutLe(p + off, v, bytes);
  Put32(p + format::kSbCrc, base::Crc32c(p, format::kSbCrc));
  return s;
}

TEST(SuperblockTest, RoundTripEveryBlockSize) {
  for (uint32_t bs : {512u, 1024u, 4096u, 65536u}) {
    Superblock sb = Layout(bs);
    testing::MemDevice dev(kDevBytes);
    ASSERT_TRUE(WriteSuperblock(dev, sb).ok());
    absl::StatusOr<Superblock> got = ReadSuperblock(dev);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->block_size, bs);
    EXPECT_EQ(got->uuid, sb.uuid);
    EXPECT_EQ(got->journal_start, sb.journal_start);
    EXPECT_EQ(got->data_start, sb.data_start);
    EXPECT_GE(got->data_start + 16, 16u);
  }
}

TEST(SuperblockTest, RejectsBadInput) {
  Superblock sb = Layout(4096);
  struct Case {
    const char* what;
    std::string bytes;
    absl::StatusCode code;
    const char* message;
  };
  std::string flipped = EncodeSuperblock(sb);
  flipped[100] ^= 1;
  std::string zero(512, '\0');
  Case cases[] = {
      {"zeroes", zero, absl::StatusCode::kDataLoss, "bad magic"},
      {"bit flip", flipped, absl::StatusCode::kDataLoss, "bad checksum"},
      {"version", Patch(sb, format::kSbVersion, 2, 4),
       absl::StatusCode::kFailedPrecondition, "unknown format version 2"},
      {"incompat", Patch(sb, format::kSbFeatIncompat, 4, 8),
       absl::StatusCode::kFailedPrecondition, "incompatible features 0x4"},
      {"ro_compat", Patch(sb, format::kSbFeatRoCompat, 1, 8),
       absl::StatusCode::kFailedPrecondition, "read-only"},
      {"bs 1000", Patch(sb, format::kSbBlockSize, 1000, 4),
       absl::StatusCode::kInvalidArgument, "bad block size 1000"},
      {"bs 128K", Patch(sb, format::kSbBlockSize, 128 << 10, 4),
       absl::StatusCode::kInvalidArgument, "bad block size"},
      {"bs 256", Patch(sb, format::kSbBlockSize, 256, 4),
       absl::StatusCode::kInvalidArgument, "bad block size"},
      {"layout", Patch(sb, format::kSbDataStart, 1, 8),
       absl::StatusCode::kInvalidArgument, "do not fit"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Superblock> got = DecodeSuperblock(c.bytes);
    ASSERT_FALSE(got.ok()) << c.what;
    EXPECT_EQ(got.status().code(), c.code) << c.what << ": " << got.status();
    EXPECT_NE(got.status().message().find(c.message), absl::string_view::npos)
        << c.what << ": " << got.status();
  }
  // Unknown compat bits are ignored; ro_compat is fine read-only.
  EXPECT_TRUE(DecodeSuperblock(Patch(sb, format::kSbFeatCompat, 8, 8)).ok());
  EXPECT_TRUE(
      DecodeSuperblock(Patch(sb, format::kSbFeatRoCompat, 1, 8), true).ok());
}

TEST(SuperblockTest, ImageSmallerThanClaimedRefusedWithoutWriting) {
  Superblock sb = Layout(4096);
  testing::MemDevice small(kDevBytes / 2);
  small.Overwrite(0, EncodeSuperblock(sb));
  uint64_t writes = small.writes();
  absl::StatusOr<Superblock> got = ReadSuperblock(small);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(got.status().message().find("smaller than"),
            absl::string_view::npos);
  EXPECT_EQ(small.writes(), writes);
}

TEST(SuperblockTest, DeviceBlockLargerThanFsBlockRefused) {
  Superblock sb = Layout(512);
  testing::MemDevice dev(kDevBytes, 4096);
  std::string bytes = EncodeSuperblock(sb);
  bytes.resize(4096, '\0');
  dev.Overwrite(0, bytes);
  absl::StatusOr<Superblock> got = ReadSuperblock(dev);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SuperblockTest, LayoutRejectsTinyDeviceAndBadBlockSize) {
  LayoutOptions o;
  o.device_bytes = 64 * 1024;
  EXPECT_EQ(MakeLayout(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.device_bytes = kDevBytes;
  o.block_size = 3000;
  EXPECT_EQ(MakeLayout(o).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fs
