// Mount, replay and crash tests of the namespace over the journal and
// checkpoints, on the in-memory crash device, for every block size.
#include "fs/ns_volume.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "block/sim_device.h"
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
    // RENAME_EXCHANGE of a file and a directory of different parents is
    // one transaction that replays.
    InodeAttr sub;
    ASSERT_EQ(vol.ns->Mkdir({d.ino, d.generation}, "sub", 0755, &sub), 0);
    ASSERT_EQ(vol.ns->Rename(kRoot, "moved", {d.ino, d.generation}, "sub",
                             Namespace::kRenameExchange),
              0);
    ASSERT_EQ(vol.ns->Sync(f.ino), 0);
    want = State(*vol.ns);
  }
  NamespaceVolume vol = MountOk(dev);
  EXPECT_EQ(State(*vol.ns), want);
  EXPECT_GT(vol.store->mount_info().replayed_records, 0u);
  InodeAttr got;
  EXPECT_EQ(vol.ns->Lookup(kRoot, "moved", &got), 0);
  EXPECT_TRUE(got.is_dir());
  vol = NamespaceVolume();
  ExpectFsckClean(dev);
}

TEST_P(NsVolumeTest, LongRunKeepsTheLogFromFillingUp) {
  MemDevice dev(dev_bytes());
  ASSERT_TRUE(FormatNamespaceVolume(dev, Layout(bs(), dev_bytes())).ok());
  std::string want;
  {
    NamespaceVolume vol = MountOk(dev);
    InodeAttr a;
    for (int i = 0; i < 2000; ++i) {
      const std::string name = "f" + std::to_string(i % 50);
      if (vol.ns->Create(kRoot, name, 0644, true, &a) == -EEXIST) {
        ASSERT_EQ(vol.ns->Unlink(kRoot, name), 0) << i;
      }
      ASSERT_EQ(vol.ns->Sync(a.ino), 0);  // a commit (a block of log) per op
      ASSERT_TRUE(vol.MaybeCheckpoint().ok()) << i;
    }
    ASSERT_EQ(vol.store->journal()->CommitAll(), 0);
    EXPECT_GT(vol.store->journal()->head().offset,
              2 * vol.store->journal()->capacity_bytes());
    want = State(*vol.ns);
  }
  NamespaceVolume vol = MountOk(dev);
  EXPECT_EQ(State(*vol.ns), want);
}

// Ops of another layer ride in namespace transactions and replay in order.
TEST_P(NsVolumeTest, CoreOpsShareTransactionsAndReplay) {
  MemDevice dev(dev_bytes());
  ASSERT_TRUE(FormatNamespaceVolume(dev, Layout(bs(), dev_bytes())).ok());
  std::vector<std::string> applied;
  auto record = [&applied](uint16_t op, absl::string_view body) {
    applied.push_back(
        absl::StrCat(op, ":", std::string(body.data(), body.size())));
    return 0;
  };
  InodeAttr f;
  {
    NamespaceVolume vol = MountOk(dev);
    // A stand-in for the fs core: the mounted namespace has no core hook,
    // so build one over the same journal.
    NamespaceOptions o;
    o.max_inodes = 200;
    o.apply_core_op = record;
    Namespace ns(o, nullptr);
    std::string section;
    vol.ns->Serialize(&section);
    ASSERT_TRUE(ns.Load(section).ok());
    ns.SetJournal(vol.store->journal());
    ASSERT_EQ(ns.Create(kRoot, "f", 0644, true, &f), 0);
    TxnBuilder t;
    t.Raw(format::kOpFirstCoreOp, "unmap 8..16");
    f.size = 4096;
    t.InodeSet(f);
    ASSERT_EQ(ns.Transact({f.ino, f.generation}, t), 0);
    ASSERT_EQ(ns.Sync(f.ino), 0);
    EXPECT_EQ(applied, std::vector<std::string>{"32:unmap 8..16"});
    TxnBuilder stale;
    EXPECT_EQ(ns.Transact({f.ino, f.generation + 1}, stale), -ESTALE);
  }
  // Replay hands the op back, in its transaction.
  applied.clear();
  absl::StatusOr<Superblock> sb = ReadSuperblock(dev);
  ASSERT_TRUE(sb.ok());
  absl::StatusOr<LoadedCheckpoint> cp = LoadCheckpoint(dev, *sb);
  ASSERT_TRUE(cp.ok());
  NamespaceOptions o;
  o.max_inodes = 200;
  o.apply_core_op = record;
  Namespace ns(o, nullptr);
  ASSERT_TRUE(
      ns.Load(SplitSections(cp->payload)->at(format::kSectionNamespace)).ok());
  absl::StatusOr<ReplayResult> r =
      ReplayJournal(dev, *sb, cp->header.epoch, cp->header.journal,
                    [&ns](uint64_t, uint16_t, absl::string_view txn) {
                      return ns.ApplyTxn(txn);
                    });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(applied, std::vector<std::string>{"32:unmap 8..16"});
  InodeAttr got;
  ASSERT_EQ(ns.GetAttr({f.ino, f.generation}, &got), 0);
  EXPECT_EQ(got.size, 4096u);
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

// Forwards to a SimDevice and pulls its power cord just before the n-th
// write from now is submitted (that write and everything after fail; writes
// in flight may be torn; completed unflushed ones may be lost).
class CrashingDevice : public block::Device {
 public:
  CrashingDevice(block::SimDevice* sim, uint64_t crash_at_write)
      : sim_(sim), left_(crash_at_write) {}
  void Submit(block::Bio* bio) override {
    if (bio->op == block::BioOp::kWrite && left_.fetch_sub(1) == 1)
      sim_->Crash();
    sim_->Submit(bio);
  }
  const block::DeviceLimits& limits() const override { return sim_->limits(); }
  std::string name() const override { return "crashing:" + sim_->name(); }
  uint64_t inflight() const override { return sim_->inflight(); }
  void Drain() override { sim_->Drain(); }

 private:
  block::SimDevice* sim_;
  std::atomic<int64_t> left_;
};

block::SimOptions SimOpts(uint64_t bytes, uint64_t seed) {
  block::SimOptions o;
  o.capacity_bytes = bytes;
  o.seed = seed;
  o.background = true;
  o.max_latency_ticks = 4;
  return o;
}

TEST_P(NsVolumeTest, CrashesOnTheSimulatedDevice) {
  const uint64_t base_seed =
      std::getenv("IOMAPD_SEED") != nullptr ? block::SimSeedFromEnv() : 4242;
  constexpr int kRounds = 25;
  int rounds_with_replay = 0;
  for (int round = 0; round < kRounds; ++round) {
    const uint64_t seed = base_seed + round;
    SCOPED_TRACE(block::SimSeedMessage(seed) + " block size " +
                 std::to_string(bs()));
    auto sim = std::make_unique<block::SimDevice>(SimOpts(dev_bytes(), seed));
    ASSERT_TRUE(FormatNamespaceVolume(*sim, Layout(bs(), dev_bytes())).ok());
    std::mt19937_64 rng(seed);
    std::vector<std::string> states;
    size_t synced = 0;
    {
      CrashingDevice dev(sim.get(), 2 + rng() % 40);
      absl::StatusOr<NamespaceVolume> vol =
          MountNamespaceVolume(dev, MetaStoreOptions());
      if (vol.ok()) {
        std::vector<FileHandle> dirs = {kRoot};
        states.assign(1, State(*vol->ns));
        for (int i = 0; i < 60 && !sim->crashed(); ++i) {
          RandomOp(*vol->ns, rng, &dirs);
          states.push_back(State(*vol->ns));
          if (rng() % 3 == 0 && vol->store->journal()->CommitAll() == 0)
            synced = states.size() - 1;
        }
      } else {
        states.assign(1, "");  // crashed during mount: the mkfs state
      }
    }
    sim->Crash();
    std::unique_ptr<block::SimDevice> after = sim->Reboot();
    MetaStoreOptions ro;
    ro.read_only = true;
    absl::StatusOr<NamespaceVolume> vol = MountNamespaceVolume(*after, ro);
    ASSERT_TRUE(vol.ok()) << vol.status();
    const std::string got = State(*vol->ns);
    bool found =
        states[0].empty() && synced == 0;  // a mount that never finished
    for (size_t k = synced; k < states.size() && !found; ++k)
      found = states[k] == got;
    ASSERT_TRUE(found) << "recovered state is not a prefix at or after op "
                       << synced;
    rounds_with_replay += vol->store->mount_info().replayed_records > 0;
    vol = NamespaceVolume();
    ASSERT_TRUE(MountNamespaceVolume(*after, MetaStoreOptions()).ok());
    FsckResult r = Fsck(*after);
    for (const auto& p : r.problems) ADD_FAILURE() << "fsck: " << p;
  }
  EXPECT_GT(rounds_with_replay, 0);
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
