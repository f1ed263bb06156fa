// mkfs -> fsck for every block size, and corruption of each kind of
// metadata block caught by both mount and fsck.
#include "fs/fsck.h"

#include <string>

#include "fs/format.h"
#include "fs/ns_volume.h"
#include "fs/testing/mem_device.h"
#include "gtest/gtest.h"

namespace fs {
namespace {

using testing::MemDevice;
constexpr FileHandle kRoot{format::kRootIno, 1};

Superblock Format(MemDevice& dev, uint32_t bs, uint64_t bytes) {
  LayoutOptions o;
  o.block_size = bs;
  o.device_bytes = bytes;
  absl::StatusOr<Superblock> sb = FormatNamespaceVolume(dev, o);
  EXPECT_TRUE(sb.ok()) << sb.status();
  return *sb;
}

bool HasProblem(const FsckResult& r, const std::string& what) {
  for (const auto& p : r.problems)
    if (p.find(what) != std::string::npos) return true;
  return false;
}

std::string Problems(const FsckResult& r) {
  std::string s;
  for (const auto& p : r.problems) s += p + "\n";
  return s;
}

absl::Status MountStatus(MemDevice& dev) {
  return MountNamespaceVolume(dev, MetaStoreOptions()).status();
}

class FsckBlockSizeTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(FsckBlockSizeTest, FreshFilesystemIsClean) {
  MemDevice dev(16 << 20);
  Format(dev, GetParam(), 16 << 20);
  FsckResult r = Fsck(dev);
  EXPECT_TRUE(r.clean()) << Problems(r);
  EXPECT_TRUE(MountStatus(dev).ok());
  r = Fsck(dev);  // both slots valid now
  EXPECT_TRUE(r.clean()) << Problems(r);
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, FsckBlockSizeTest,
                         ::testing::Values(512u, 1024u, 4096u, 65536u));

TEST(FsckTest, CorruptSuperblock) {
  MemDevice dev(4 << 20);
  Format(dev, 4096, 4 << 20);
  dev.Corrupt(format::kSbJournalStart, 0x40);
  EXPECT_EQ(MountStatus(dev).code(), absl::StatusCode::kDataLoss);
  FsckResult r = Fsck(dev);
  EXPECT_TRUE(HasProblem(r, "superblock: bad checksum")) << Problems(r);
}

TEST(FsckTest, CorruptOnlyCheckpoint) {
  MemDevice dev(4 << 20);
  Superblock sb = Format(dev, 4096, 4 << 20);
  dev.Corrupt(sb.checkpoint_slot_offset(0) + format::kCheckpointHeaderBytes + 3,
              0x01);
  absl::Status s = MountStatus(dev);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("no valid checkpoint"), std::string::npos) << s;
  FsckResult r = Fsck(dev);
  EXPECT_TRUE(HasProblem(r, "checkpoint slot A: bad payload checksum"))
      << Problems(r);
}

TEST(FsckTest, CorruptOlderCheckpointIsReportedMountUsesNewer) {
  MemDevice dev(4 << 20);
  Superblock sb = Format(dev, 4096, 4 << 20);
  ASSERT_TRUE(MountStatus(dev).ok());  // writes generation 2 into slot B
  dev.Corrupt(sb.checkpoint_slot_offset(0) + format::kCpJournalLsn, 0x01);
  FsckResult r = Fsck(dev);
  EXPECT_TRUE(HasProblem(r, "checkpoint slot A: bad header checksum"))
      << Problems(r);
  EXPECT_TRUE(MountStatus(dev).ok());  // and rewrites slot A
  EXPECT_TRUE(Fsck(dev).clean());
}

TEST(FsckTest, DamageInsideTheJournal) {
  MemDevice dev(4 << 20);
  Superblock sb = Format(dev, 4096, 4 << 20);
  uint64_t first_commit;
  {
    absl::StatusOr<NamespaceVolume> vol =
        MountNamespaceVolume(dev, MetaStoreOptions());
    ASSERT_TRUE(vol.ok());
    first_commit = vol->store->journal()->head().offset;
    InodeAttr a;
    for (int i = 0; i < 5; ++i) {
      ASSERT_EQ(vol->ns->Create(kRoot, "f" + std::to_string(i), 0644, true, &a),
                0);
      ASSERT_EQ(vol->ns->Sync(a.ino), 0);
    }
  }
  ASSERT_TRUE(Fsck(dev).clean());
  dev.Corrupt(
      sb.journal_offset() + first_commit + format::kRecordHeaderBytes + 4,
      0x08);
  absl::Status s = MountStatus(dev);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("later commit"), std::string::npos) << s;
  FsckResult r = Fsck(dev);
  EXPECT_TRUE(HasProblem(r, "journal: record at lsn")) << Problems(r);
}

TEST(FsckTest, TornJournalTailIsNotAProblem) {
  MemDevice dev(4 << 20);
  Superblock sb = Format(dev, 4096, 4 << 20);
  uint64_t last_commit;
  {
    absl::StatusOr<NamespaceVolume> vol =
        MountNamespaceVolume(dev, MetaStoreOptions());
    ASSERT_TRUE(vol.ok());
    InodeAttr a;
    for (int i = 0; i < 3; ++i) {
      last_commit = vol->store->journal()->head().offset;
      ASSERT_EQ(vol->ns->Create(kRoot, "f" + std::to_string(i), 0644, true, &a),
                0);
      ASSERT_EQ(vol->ns->Sync(a.ino), 0);
    }
  }
  dev.Corrupt(
      sb.journal_offset() + last_commit + format::kRecordHeaderBytes + 4, 0x08);
  FsckResult r = Fsck(dev);
  EXPECT_TRUE(r.clean()) << Problems(r);
  absl::StatusOr<NamespaceVolume> vol =
      MountNamespaceVolume(dev, MetaStoreOptions());
  ASSERT_TRUE(vol.ok()) << vol.status();
  InodeAttr a;
  EXPECT_EQ(vol->ns->Lookup(kRoot, "f1", &a), 0);
  EXPECT_EQ(vol->ns->Lookup(kRoot, "f2", &a), -ENOENT);  // the torn commit
}

TEST(FsckTest, NamespaceDamageIsNamed) {
  MemDevice dev(4 << 20);
  Format(dev, 4096, 4 << 20);
  {
    absl::StatusOr<NamespaceVolume> vol =
        MountNamespaceVolume(dev, MetaStoreOptions());
    ASSERT_TRUE(vol.ok());
    InodeAttr a;
    ASSERT_EQ(vol->ns->Create(kRoot, "f", 0644, true, &a), 0);
    // A well-formed but wrong record: the link count lies.
    a.nlink = 3;
    TxnBuilder t;
    t.InodeSet(a);
    ASSERT_GT(vol->store->journal()->Append(format::kRecordTxn, t.bytes()), 0);
    ASSERT_EQ(vol->store->journal()->CommitAll(), 0);
  }
  FsckResult r = Fsck(dev);
  EXPECT_TRUE(HasProblem(r, "nlink 3 but 1 directory entries")) << Problems(r);
  absl::Status s = MountStatus(dev);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("nlink 3 but 1 directory entries"),
            std::string::npos)
      << s;
}

}  // namespace
}  // namespace fs
