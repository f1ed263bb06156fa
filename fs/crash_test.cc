// Crash tests of fs::Volume (issue 3; docs/testing.md "Crash tests"): a
// random workload (fs/testing/crash_workload.h) runs on a simulated device
// that loses power at a random instant; the volume is mounted again and
// must hold every name and byte the fsyncs made durable, nothing that was
// never written, and pass the live checks and fsck.
//
//  - MemDevice: the device freezes at a random write (that write torn at a
//    512-byte boundary, later writes and flushes silently lost), then
//    comes back with a seeded subset of the unflushed writes, each kept,
//    dropped or torn. Fully deterministic from the seed.
//  - SimDevice in background mode: bios complete out of order, unwritten
//    sectors read as garbage, and the crash (triggered at a random write,
//    run from another thread) tears the writes in flight. The workload is
//    fixed by the seed, the thread timing is not.
//
// Every block size (512, 1024, 4096, 65536) runs both. Environment:
//   IOMAPD_CRASH_SEED=S           run seed S only (printed on every failure
//                                 with the command that replays it)
//   IOMAPD_CRASH_SOAK_SECONDS=N   each test runs random seeds for N seconds
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>

#include "block/sim_device.h"
#include "fs/file.h"
#include "fs/testing/crash_device.h"
#include "fs/testing/crash_workload.h"
#include "fs/testing/mem_device.h"
#include "fs/testing/volume_helpers.h"
#include "fs/volume.h"
#include "gtest/gtest.h"

namespace fs {
namespace {

using testing::CrashingSimDevice;
using testing::CrashWorkload;
using testing::CrashWorkloadOptions;
using testing::MemDevice;

using Clock = std::chrono::steady_clock;

// Sanitizer builds run 5-10x slower: each test stops after kCapSeconds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr double kCapSeconds = 6;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr double kCapSeconds = 6;
#else
constexpr double kCapSeconds = 30;
#endif
#else
constexpr double kCapSeconds = 30;
#endif

// Sizes per block size: files of at least 8 blocks, a device with room for
// eight of them plus their COW copies and the metadata areas.
struct Geometry {
  CrashWorkloadOptions workload;
  uint64_t dev_bytes;
  int steps;             // operations per crash point
  uint64_t crash_range;  // the crash comes within this many writes
};

Geometry GeometryFor(uint32_t bs) {
  Geometry g;
  g.workload.block_size = bs;
  g.workload.max_file = std::max<int64_t>(64 << 10, 8 * int64_t{bs});
  g.dev_bytes = bs >= 65536 ? 16ull << 20 : 8ull << 20;
  g.steps = 60;
  g.crash_range = 32;
  return g;
}

struct Totals {
  int points = 0;
  double seconds = 0;
  // Of the current test: operations, durable fsyncs, crashes that came
  // before the workload's last step.
  int ops = 0, fsyncs = 0, early = 0;
};
Totals& totals() {
  static Totals t;
  return t;
}

class PrintTotals : public ::testing::Environment {
 public:
  void TearDown() override {
    std::printf("crash points in total: %d in %.1f s\n", totals().points,
                totals().seconds);
  }
};
::testing::Environment* const kTotals =
    ::testing::AddGlobalTestEnvironment(new PrintTotals);

std::string ReplayLine(uint32_t bs, uint64_t seed) {
  const ::testing::TestInfo* t =
      ::testing::UnitTest::GetInstance()->current_test_info();
  return "crash seed " + std::to_string(seed) + " (block size " +
         std::to_string(bs) +
         "); replay: bazel test //fs:crash_test "
         "--test_env=IOMAPD_CRASH_SEED=" +
         std::to_string(seed) + " --test_filter='" + t->test_suite_name() +
         "." + t->name() + "' --test_output=all";
}

void Account(const CrashWorkload& w, bool early) {
  totals().ops += w.ops();
  totals().fsyncs += w.durable_fsyncs();
  totals().early += early ? 1 : 0;
}

// Prints the operations of a crash point that failed (whichever ASSERT
// ended it).
class HistoryOnFailure {
 public:
  explicit HistoryOnFailure(const CrashWorkload* w)
      : w_(w), failed_before_(::testing::Test::HasFailure()) {}
  ~HistoryOnFailure() {
    if (!failed_before_ && ::testing::Test::HasFailure())
      std::printf("operations of the failing seed:\n%s", w_->History().c_str());
  }

 private:
  const CrashWorkload* w_;
  bool failed_before_;
};

void ExpectFsckClean(block::Device& dev) {
  FsckResult r = FsckVolume(dev);
  EXPECT_TRUE(r.clean()) << r.problems[0];
}

// A second power cut while a mount replays the journal, frees orphans and
// checkpoints (or, if it gets that far, while the volume unmounts).
void CrashDuringRecovery(MemDevice* dev, std::mt19937_64* rng) {
  dev->CrashAfterWrites((*rng)() % 8, (*rng)());
  {
    absl::StatusOr<std::unique_ptr<Volume>> vol = Volume::Mount(*dev);
    EXPECT_TRUE(vol.ok()) << "mount during which power failed: "
                          << vol.status();
  }
  if (!dev->frozen()) dev->CrashAfterWrites(0, (*rng)());
  dev->Crash((*rng)());
}

void MemCrashOnce(uint32_t bs, uint64_t seed) {
  SCOPED_TRACE(ReplayLine(bs, seed));
  const Geometry g = GeometryFor(bs);
  std::mt19937_64 rng(seed * 0x9e3779b97f4a7c15ull);
  MemDevice dev(g.dev_bytes);
  std::unique_ptr<Volume> vol = testing::FormatAndMount(&dev, bs);
  ASSERT_NE(vol, nullptr);
  CrashWorkload w(vol.get(), g.workload, seed, [&dev] { return dev.frozen(); });
  HistoryOnFailure history(&w);
  ASSERT_TRUE(w.Setup());
  dev.CrashAfterWrites(rng() % g.crash_range, rng());
  for (int i = 0; i < g.steps && w.Step(); ++i) {
  }
  Account(w, dev.frozen());
  if (!dev.frozen()) dev.CrashAfterWrites(0, rng());
  w.CloseAll();
  vol.reset();  // nothing of this reaches the device
  dev.Crash(rng());
  if (rng() % 4 == 0) CrashDuringRecovery(&dev, &rng);
  vol = testing::Remount(&dev);
  ASSERT_NE(vol, nullptr);
  w.Verify(vol.get());
  EXPECT_TRUE(vol->Unmount().ok());
  vol.reset();
  ExpectFsckClean(dev);
}

void SimCrashOnce(uint32_t bs, uint64_t seed) {
  SCOPED_TRACE(ReplayLine(bs, seed));
  const Geometry g = GeometryFor(bs);
  std::mt19937_64 rng(seed * 0x9e3779b97f4a7c15ull);
  block::SimOptions so;
  so.capacity_bytes = g.dev_bytes;
  so.seed = seed * 2 + 1;  // never 0 (that would read IOMAPD_SEED)
  so.background = true;
  so.direct = false;
  auto sim = std::make_unique<block::SimDevice>(so);
  CrashingSimDevice dev(sim.get());
  LayoutOptions layout;
  layout.block_size = bs;
  layout.device_bytes = so.capacity_bytes;
  ASSERT_TRUE(Volume::Format(dev, layout).ok());
  absl::StatusOr<std::unique_ptr<Volume>> vol = Volume::Mount(dev);
  ASSERT_TRUE(vol.ok()) << vol.status();
  CrashWorkload w(vol->get(), g.workload, seed,
                  [&dev] { return dev.triggered(); });
  HistoryOnFailure history(&w);
  ASSERT_TRUE(w.Setup());
  dev.Arm(rng() % g.crash_range);
  for (int i = 0; i < g.steps && w.Step(); ++i) {
  }
  Account(w, dev.triggered());
  dev.CrashNow();
  w.CloseAll();
  vol->reset();
  std::unique_ptr<block::SimDevice> rebooted = sim->Reboot();
  vol = Volume::Mount(*rebooted);
  ASSERT_TRUE(vol.ok()) << vol.status();
  w.Verify(vol->get());
  EXPECT_TRUE((*vol)->Unmount().ok());
  vol->reset();
  ExpectFsckClean(*rebooted);
}

uint64_t EnvU64(const char* name, bool* set) {
  const char* v = std::getenv(name);
  *set = v != nullptr && *v != '\0';
  return *set ? std::strtoull(v, nullptr, 10) : 0;
}

// Runs `once` over the seeds the environment asks for (see the top of this
// file), or `count` fixed seeds (stopping early past kCapSeconds).
template <typename Fn>
void RunSeeds(const char* kind, uint32_t bs, int count, Fn once) {
  const Clock::time_point start = Clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  bool replay = false, soak = false;
  const uint64_t seed = EnvU64("IOMAPD_CRASH_SEED", &replay);
  const uint64_t soak_seconds = EnvU64("IOMAPD_CRASH_SOAK_SECONDS", &soak);
  uint64_t base = bs * 1000003ull + (kind[0] == 'S' ? 500000 : 0);
  if (soak && !replay) base = (uint64_t{std::random_device()()} << 32) | bs;
  const double cap = soak ? static_cast<double>(soak_seconds) : kCapSeconds;
  int runs = 0;
  totals().ops = totals().fsyncs = totals().early = 0;
  for (uint64_t i = 0;; ++i) {
    once(bs, replay ? seed : base + i);
    ++runs;
    if (replay || ::testing::Test::HasFailure()) break;
    if (!soak && runs >= count) break;
    if (elapsed() > cap) break;
  }
  totals().points += runs;
  totals().seconds += elapsed();
  std::printf(
      "%s, block size %u: %d crash points in %.1f s (%d operations, %d "
      "durable fsyncs, %d crashes inside the workload)\n",
      kind, bs, runs, elapsed(), totals().ops, totals().fsyncs, totals().early);
}

class CrashTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(CrashTest, MemDevice) {
  RunSeeds("MemDevice", GetParam(), 400, MemCrashOnce);
}

TEST_P(CrashTest, SimDevice) {
  RunSeeds("SimDevice", GetParam(), 150, SimCrashOnce);
}

INSTANTIATE_TEST_SUITE_P(BlockSize, CrashTest,
                         ::testing::Values(512u, 1024u, 4096u, 65536u),
                         [](const ::testing::TestParamInfo<uint32_t>& info) {
                           return "bs" + std::to_string(info.param);
                         });

}  // namespace
}  // namespace fs
