// Mount, replay and crash tests of the namespace over the journal and
// checkpoints, on the in-memory crash device, for every block size.
#include "fs/ns_volume.h"

#include <cerrno>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fs/format.h"
#include "fs/fsck.h"
#include "fs/testing/mem_device.h"
#include "gtest/gtest.h"

namespace fs {
namespace {

using testing::MemDevice;
constexpr FileHandle kRoot{format::kRootIno, 1};

LayoutOptions Layout(uint32_t bs, uint64_t dev_bytes) {
  LayoutOptions o;
  o.block_size = bs;
  o.device_bytes = dev_bytes;
  o.journal_blocks = bs == 65536 ? 16 : 64;
  o.max_inodes = 200;
  return o;
}

std::string State(const Namespace& ns) {
  std::string s;
  ns.Serialize(&s);
  return s;
}

NamespaceVolume MountOk(MemDevice& dev, bool read_only = false) {
  MetaStoreOptions o;
  o.read_only = read_only;
  absl::StatusOr<NamespaceVolume> vol = MountNamespaceVolume(dev, o);
  EXPECT_TRUE(vol.ok()) << vol.status();
  return std::move(*vol);
}

void ExpectFsckClean(MemDevice& dev) {
  FsckResult r = Fsck(dev);
  for (const auto& p : r.problems) ADD_FAILURE() << "fsck: " << p;
}

class NsVolumeTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  uint32_t bs() const { return GetParam(); }
  uint64_t dev_bytes() const { return bs() == 65536 ? (4u << 20) : (1u << 20); }
};

TEST_P(NsVolumeTest, ChangesSurviveRemount) {
  MemDevice dev(dev_bytes());
  ASSERT_TRUE(FormatNamespaceVolume(dev, Layout(bs(), dev_bytes())).ok());
  std::string want;
  {
    NamespaceVolume vol = MountOk(dev);
    InodeAttr d, f;
    ASSERT_EQ(vol.ns->Mkdir(kRoot, "dir", 0755, &d), 0);
    ASSERT_EQ(vol.ns->Create({d.ino, d.generation}, "file", 0644, true, &f), 0);
    ASSERT_EQ(vol.ns->Rename({d.ino, d.generation}, "file", kRoot, "moved"), 0);
    ASSERT_EQ(vol.ns->Sync(f.ino), 0);
    want = State(*vol.ns);
  }
  NamespaceVolume vol = MountOk(dev);
  EXPECT_EQ(State(*vol.ns), want);
  EXPECT_GT(vol.store->mount_info().replayed_records, 0u);
  InodeAttr got;
  EXPECT_EQ(vol.ns->Lookup(kRoot, "moved", &got), 0);
  vol = NamespaceVolume();
  ExpectFsckClean(dev);
}

TEST_P(NsVolumeTest, OrphanIsFreedAtNextMountAfterCrash) {
  MemDevice dev(dev_bytes());
  ASSERT_TRUE(FormatNamespaceVolume(dev, Layout(bs(), dev_bytes())).ok());
  InodeAttr f;
  {
    NamespaceVolume vol = MountOk(dev);
    ASSERT_EQ(vol.ns->Create(kRoot, "open", 0644, true, &f), 0);
    ASSERT_EQ(vol.ns->Open({f.ino, f.generation}), 0);
    ASSERT_EQ(vol.ns->Unlink(kRoot, "open"), 0);
    ASSERT_EQ(vol.ns->Sync(f.ino), 0);
    dev.Crash(1);
    dev.SetFailAll(true);  // the dead machine writes nothing more
  }
  dev.SetFailAll(false);
  {
    NamespaceVolume ro = MountOk(dev, /*read_only=*/true);
    EXPECT_EQ(ro.ns->orphans(), std::vector<uint64_t>{f.ino});
  }
  NamespaceVolume vol = MountOk(dev);
  EXPECT_TRUE(vol.ns->orphans().empty());
  InodeAttr x;
  EXPECT_EQ(vol.ns->GetAttr({f.ino, f.generation}, &x), -ESTALE);
  vol = NamespaceVolume();
  ExpectFsckClean(dev);
}

// One random namespace operation; errors (EEXIST, ENOENT...) are fine.
void RandomOp(Namespace& ns, std::mt19937_64& rng,
              std::vector<FileHandle>* dirs) {
  const FileHandle dir = (*dirs)[rng() % dirs->size()];
  const std::string name = absl::StrCat("n", rng() % 12);
  const std::string other = absl::StrCat("n", rng() % 12);
  InodeAttr a;
  switch (rng() % 8) {
    case 0:
    case 1:
      ns.Create(dir, name, 0644, rng() % 2, &a);
      break;
    case 2:
      if (ns.Mkdir(dir, name, 0755, &a) == 0)
        dirs->push_back({a.ino, a.generation});
      break;
    case 3:
      ns.Unlink(dir, name);
      break;
    case 4:
      ns.Rmdir(dir, name);
      break;
    case 5:
      ns.Rename(dir, name, (*dirs)[rng() % dirs->size()], other);
      break;
    case 6:
      if (ns.Lookup(dir, name, &a) == 0)
        ns.Link({a.ino, a.generation}, (*dirs)[rng() % dirs->size()], other,
                &a);
      break;
    case 7:
      if (ns.Lookup(dir, name, &a) == 0) {
        InodeAttr v;
        v.size = rng() % 100000;
        ns.SetAttr({a.ino, a.generation}, kSetSize, v, &a);
      }
      break;
  }
}

// Runs ops until the device freezes; returns the states after each op and
// the index of the last one a completed sync made durable.
void RunUntilCrash(NamespaceVolume& vol, MemDevice& dev, std::mt19937_64& rng,
                   std::vector<std::string>* states, size_t* synced) {
  std::vector<FileHandle> dirs = {kRoot};
  states->assign(1, State(*vol.ns));
  *synced = 0;
  for (int i = 0; i < 60 && !dev.frozen(); ++i) {
    RandomOp(*vol.ns, rng, &dirs);
    states->push_back(State(*vol.ns));
    const uint64_t dice = rng() % 10;
    if (dice < 3 && vol.store->journal()->CommitAll() == 0 && !dev.frozen())
      *synced = states->size() - 1;
    if ((dice == 9 && rng() % 4 == 0) ||
        vol.store->journal()->used_bytes() * 2 >
            vol.store->journal()->capacity_bytes()) {
      if (vol.Checkpoint().ok() && !dev.frozen()) *synced = states->size() - 1;
    }
  }
}

TEST_P(NsVolumeTest, CrashAtRandomInstantsKeepsSyncedPrefix) {
  const uint64_t base_seed = 20261123 + bs();
  MemDevice dev(dev_bytes());
  ASSERT_TRUE(FormatNamespaceVolume(dev, Layout(bs(), dev_bytes())).ok());
  constexpr int kCrashes = 250;  // x 4 block sizes: 1,000 crash points
  int rounds_with_sync = 0, rounds_with_replay = 0, rounds_past_sync = 0;
  for (int round = 0; round < kCrashes; ++round) {
    const uint64_t seed = base_seed * 1000 + round;
    SCOPED_TRACE(absl::StrCat("seed ", seed, " block size ", bs()));
    std::mt19937_64 rng(seed);
    // A fresh filesystem now and then keeps the namespace small enough
    // that most operations succeed.
    if (round % 25 == 24) {
      ExpectFsckClean(dev);
      ASSERT_TRUE(FormatNamespaceVolume(dev, Layout(bs(), dev_bytes())).ok());
    }
    std::vector<std::string> states;
    size_t synced = 0;
    {
      NamespaceVolume vol = MountOk(dev);
      ASSERT_TRUE(vol.ns) << "mount failed";
      dev.CrashAfterWrites(rng() % 40, seed);
      RunUntilCrash(vol, dev, rng, &states, &synced);
      dev.SetFailAll(true);
    }
    dev.SetFailAll(false);
    dev.Crash(seed);
    // The recovered state is the state after some op at or past the last
    // synced one (the log is a prefix).
    NamespaceVolume ro = MountOk(dev, /*read_only=*/true);
    ASSERT_TRUE(ro.ns);
    const std::string got = State(*ro.ns);
    bool found = false;
    for (size_t k = synced; k < states.size() && !found; ++k)
      found = states[k] == got;
    ASSERT_TRUE(found) << "recovered state is not a prefix at or after op "
                       << synced << " of " << states.size();
    rounds_with_sync += synced > 0;
    rounds_with_replay += ro.store->mount_info().replayed_records > 0;
    rounds_past_sync += got != states[synced];
    std::vector<std::string> problems;
    ro.ns->Check(&problems);
    for (const auto& p : problems) ADD_FAILURE() << p;
  }
  ExpectFsckClean(dev);
  std::printf(
      "bs %u: %d crashes, %d after a sync, %d replayed records, %d kept "
      "unsynced ops\n",
      bs(), kCrashes, rounds_with_sync, rounds_with_replay, rounds_past_sync);
  EXPECT_GT(rounds_with_sync, kCrashes / 4);
  EXPECT_GT(rounds_with_replay, kCrashes / 4);
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, NsVolumeTest,
                         ::testing::Values(512u, 1024u, 4096u, 65536u));

TEST(NsVolumeMountTest, CorruptSuperblockRefusedAndNothingWritten) {
  MemDevice dev(1 << 20);
  ASSERT_TRUE(FormatNamespaceVolume(dev, Layout(4096, 1 << 20)).ok());
  dev.Corrupt(format::kSbBlockCount, 0x10);
  const uint64_t writes = dev.writes(), flushes = dev.flushes();
  absl::StatusOr<NamespaceVolume> vol =
      MountNamespaceVolume(dev, MetaStoreOptions());
  ASSERT_FALSE(vol.ok());
  EXPECT_NE(vol.status().message().find("bad checksum"), std::string::npos)
      << vol.status();
  EXPECT_EQ(dev.writes(), writes);
  EXPECT_EQ(dev.flushes(), flushes);
}

}  // namespace
}  // namespace fs
