// Tests of SimDevice: reordering, garbage, faults, counters, the crash model
// (what survives with and without flush/FUA, tearing only at block
// granularity, determinism), reboot, and background mode.
#include "block/sim_device.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace block {
namespace {

constexpr uint32_t kLbs = 512;

// A bio with its own aligned buffer; records its completion order.
struct TestBio {
  Bio bio;
  AlignedBuffer buf;
  int order = -1;
};

std::vector<int>* g_order = nullptr;

void RecordOrder(Bio* bio) {
  auto* tb = static_cast<TestBio*>(bio->private_data);
  tb->order = static_cast<int>(g_order->size());
  g_order->push_back(static_cast<int>(bio->offset / kLbs));
}

class SimDeviceTest : public ::testing::Test {
 protected:
  SimOptions Options(uint64_t seed = 0) {
    SimOptions o;
    o.capacity_bytes = 4 << 20;
    o.seed = seed;
    return o;
  }
  std::unique_ptr<TestBio> Make(BioOp op, uint64_t off, size_t len,
                                uint8_t fill = 0, uint32_t flags = 0) {
    auto tb = std::make_unique<TestBio>();
    tb->bio.op = op;
    tb->bio.offset = off;
    tb->bio.flags = flags;
    if (op == BioOp::kRead || op == BioOp::kWrite) {
      tb->buf = AllocAligned(len);
      memset(tb->buf.get(), fill, len);
      tb->bio.AddSegment(tb->buf.get(), len);
    } else if (op != BioOp::kFlush) {
      tb->bio.len = len;
    }
    tb->bio.private_data = tb.get();
    tb->bio.end_io = RecordOrder;
    return tb;
  }
  std::vector<int> order_;
  void SetUp() override { g_order = &order_; }
};

TEST_F(SimDeviceTest, CompletionsReorderAndAreDeterministic) {
  auto run = [&](uint64_t seed) {
    order_.clear();
    SimDevice dev(Options(seed));
    std::vector<std::unique_ptr<TestBio>> bios;
    for (int i = 0; i < 32; ++i) {
      bios.push_back(Make(BioOp::kRead, i * kLbs, kLbs));
      dev.Submit(&bios.back()->bio);
    }
    EXPECT_EQ(dev.inflight(), 32u);
    EXPECT_EQ(dev.RunFor(0), 0);  // nothing completes before time moves
    dev.RunUntilIdle();
    EXPECT_EQ(dev.inflight(), 0u);
    return order_;
  };
  std::vector<int> a = run(42), b = run(42), c = run(43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::vector<int> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_NE(a, sorted) << "32 bios with random latency completed in order";
}

TEST_F(SimDeviceTest, RunForCompletesOnlyWhatIsDue) {
  SimOptions o = Options(7);
  o.min_latency_ticks = 5;
  o.max_latency_ticks = 5;
  SimDevice dev(o);
  auto r = Make(BioOp::kRead, 0, kLbs);
  dev.Submit(&r->bio);
  EXPECT_EQ(dev.RunFor(4), 0);
  EXPECT_EQ(dev.RunFor(1), 1);
  EXPECT_EQ(r->bio.result, kLbs);
  EXPECT_EQ(dev.now(), 5u);
}

TEST_F(SimDeviceTest, UnwrittenSectorsReadAsSeededGarbage) {
  auto read = [&](uint64_t seed) {
    SimDevice dev(Options(seed));
    auto r = Make(BioOp::kRead, 8192, 4096);
    dev.Submit(&r->bio);
    dev.Drain();
    return std::string(reinterpret_cast<char*>(r->buf.get()), 4096);
  };
  const std::string a = read(5), b = read(5), c = read(6);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, std::string(4096, '\0'));
}

TEST_F(SimDeviceTest, WritesAreReadBack) {
  SimDevice dev(Options());
  SCOPED_TRACE(dev.SeedTrace());
  auto w = Make(BioOp::kWrite, 4096, 8192, 0x3C);
  dev.Submit(&w->bio);
  dev.Drain();
  auto r = Make(BioOp::kRead, 4096, 8192);
  dev.Submit(&r->bio);
  auto z = Make(BioOp::kWriteZeroes, 0, 4096);
  dev.Submit(&z->bio);
  dev.Drain();
  EXPECT_EQ(r->bio.result, 8192);
  for (int i = 0; i < 8192; ++i) ASSERT_EQ(r->buf[i], 0x3C) << i;
  uint8_t zero[4096];
  dev.PeekMedia(0, zero, sizeof(zero));
  for (uint8_t v : zero) ASSERT_EQ(v, 0);
}

TEST_F(SimDeviceTest, FaultsByRangeProbabilityOneShotAndSticky) {
  SimDevice dev(Options());
  SCOPED_TRACE(dev.SeedTrace());
  SimFault f;
  f.op_mask = SimOpBit(BioOp::kRead);
  f.offset = 8192;
  f.len = 4096;
  f.sticky = false;
  dev.AddFault(f);
  auto outside = Make(BioOp::kRead, 0, 4096);
  auto inside = Make(BioOp::kRead, 4096, 8192);  // overlaps the range
  auto again = Make(BioOp::kRead, 8192, 512);
  dev.Submit(&outside->bio);
  dev.Submit(&inside->bio);
  dev.Drain();
  dev.Submit(&again->bio);
  dev.Drain();
  EXPECT_EQ(outside->bio.result, 4096);
  EXPECT_EQ(inside->bio.result, -EIO);
  EXPECT_EQ(again->bio.result, 512) << "a one-shot fault fired twice";

  SimFault w;
  w.op_mask = SimOpBit(BioOp::kWrite);
  w.error = -ENOSPC;
  const int id = dev.AddFault(w);
  uint8_t before[512], after[512];
  dev.PeekMedia(0, before, 512);
  for (int i = 0; i < 3; ++i) {
    auto wr = Make(BioOp::kWrite, 0, 512, 0xEE);
    dev.Submit(&wr->bio);
    dev.Drain();
    EXPECT_EQ(wr->bio.result, -ENOSPC);
  }
  dev.PeekMedia(0, after, 512);
  EXPECT_EQ(memcmp(before, after, 512), 0) << "a failed write changed data";
  dev.RemoveFault(id);

  SimFault p;
  p.op_mask = SimOpBit(BioOp::kRead);
  p.probability = 0.5;
  dev.AddFault(p);
  int failed = 0;
  for (int i = 0; i < 200; ++i) {
    auto rd = Make(BioOp::kRead, 0, 512);
    dev.Submit(&rd->bio);
    dev.Drain();
    failed += rd->bio.result < 0;
  }
  EXPECT_GT(failed, 50);
  EXPECT_LT(failed, 150);
  EXPECT_EQ(dev.counters().failed, static_cast<uint64_t>(failed) + 4);
}

TEST_F(SimDeviceTest, CountersCountBiosAndBytes) {
  SimDevice dev(Options());
  auto w = Make(BioOp::kWrite, 0, 4096, 1, kBioFua);
  auto r = Make(BioOp::kRead, 0, 1024);
  auto f = Make(BioOp::kFlush, 0, 0);
  auto bad = Make(BioOp::kRead, 1, 512);
  dev.Submit(&w->bio);
  dev.Submit(&r->bio);
  dev.Submit(&f->bio);
  dev.Submit(&bad->bio);
  dev.Drain();
  SimCounters c = dev.counters();
  EXPECT_EQ(c.bios[static_cast<int>(BioOp::kWrite)], 1u);
  EXPECT_EQ(c.bios[static_cast<int>(BioOp::kRead)], 1u);
  EXPECT_EQ(c.bios[static_cast<int>(BioOp::kFlush)], 1u);
  EXPECT_EQ(c.bytes[static_cast<int>(BioOp::kWrite)], 4096u);
  EXPECT_EQ(c.bytes[static_cast<int>(BioOp::kRead)], 1024u);
  EXPECT_EQ(c.fua_writes, 1u);
  EXPECT_EQ(c.rejected, 1u);
  EXPECT_EQ(bad->bio.result, -EINVAL);
}

// ---- the crash model ----

// Writes `nblocks` blocks of `fill` at block `first` and runs them to
// completion.
void WriteAndComplete(SimDevice& dev, uint64_t first, int nblocks, uint8_t fill,
                      uint32_t flags = 0) {
  AlignedBuffer buf = AllocAligned(nblocks * kLbs);
  memset(buf.get(), fill, nblocks * kLbs);
  Bio b;
  b.op = BioOp::kWrite;
  b.flags = flags;
  b.offset = first * kLbs;
  b.AddSegment(buf.get(), nblocks * kLbs);
  b.end_io = [](Bio*) {};
  dev.Submit(&b);
  dev.Drain();
  ASSERT_EQ(b.result, nblocks * kLbs);
}

void Flush(SimDevice& dev) {
  Bio f;
  f.op = BioOp::kFlush;
  f.end_io = [](Bio*) {};
  dev.Submit(&f);
  dev.Drain();
  ASSERT_EQ(f.result, 0);
}

// Which of `nblocks` blocks from `first` on the durable image hold `fill`;
// fails the test if a block holds a mix (a torn block).
std::vector<bool> Survivors(const SimDevice& dev, uint64_t first, int nblocks,
                            uint8_t fill) {
  std::vector<bool> out;
  std::vector<uint8_t> blk(kLbs);
  for (int i = 0; i < nblocks; ++i) {
    dev.PeekDurable((first + i) * kLbs, blk.data(), kLbs);
    int same = 0;
    for (uint8_t v : blk) same += v == fill;
    EXPECT_TRUE(same == 0 || same == static_cast<int>(kLbs) || same < 16)
        << "block " << first + i << " is torn inside (" << same << " bytes)";
    out.push_back(same == static_cast<int>(kLbs));
  }
  return out;
}

int Count(const std::vector<bool>& v) {
  return static_cast<int>(std::count(v.begin(), v.end(), true));
}

TEST_F(SimDeviceTest, FlushedAndFuaWritesSurviveACrash) {
  SimOptions o = Options();
  o.crash_keep_probability = 0.0;  // the cache loses everything it can
  SimDevice dev(o);
  SCOPED_TRACE(dev.SeedTrace());
  WriteAndComplete(dev, 0, 64, 0xA1);
  Flush(dev);
  WriteAndComplete(dev, 64, 64, 0xB2, kBioFua);
  WriteAndComplete(dev, 128, 64, 0xC3);  // neither flushed nor FUA
  dev.Crash();
  EXPECT_EQ(Count(Survivors(dev, 0, 64, 0xA1)), 64);
  EXPECT_EQ(Count(Survivors(dev, 64, 64, 0xB2)), 64);
  EXPECT_EQ(Count(Survivors(dev, 128, 64, 0xC3)), 0);
  auto rebooted = dev.Reboot();
  auto r = Make(BioOp::kRead, 64 * kLbs, 4096);
  rebooted->Submit(&r->bio);
  rebooted->Drain();
  EXPECT_EQ(r->bio.result, 4096);
  EXPECT_EQ(r->buf[0], 0xB2);
}

TEST_F(SimDeviceTest, UnflushedWritesMayEachBeLost) {
  SimDevice dev(Options());
  SCOPED_TRACE(dev.SeedTrace());
  WriteAndComplete(dev, 0, 512, 0x44);
  dev.Crash();
  const int kept = Count(Survivors(dev, 0, 512, 0x44));
  EXPECT_GT(kept, 0);
  EXPECT_LT(kept, 512);
}

TEST_F(SimDeviceTest, FlushCoversOnlyWritesCompletedBeforeIt) {
  SimOptions o = Options();
  o.crash_keep_probability = 0.0;
  o.min_latency_ticks = 10;
  o.max_latency_ticks = 10;
  SimDevice dev(o);
  SCOPED_TRACE(dev.SeedTrace());
  WriteAndComplete(dev, 0, 8, 0x11);
  auto inflight = Make(BioOp::kWrite, 8 * kLbs, 8 * kLbs, 0x22);
  dev.Submit(&inflight->bio);
  dev.RunFor(5);
  auto flush = Make(BioOp::kFlush, 0, 0);
  dev.Submit(&flush->bio);  // the write completes first, but after submission
  dev.RunUntilIdle();
  EXPECT_EQ(flush->bio.result, 0);
  dev.Crash();
  EXPECT_EQ(Count(Survivors(dev, 0, 8, 0x11)), 8);
  EXPECT_EQ(Count(Survivors(dev, 8, 8, 0x22)), 0);
}

TEST_F(SimDeviceTest, AFullCacheDestagesItsOldestWrites) {
  SimOptions o = Options();
  o.crash_keep_probability = 0.0;
  o.cache_bytes = 16 * kLbs;
  SimDevice dev(o);
  SCOPED_TRACE(dev.SeedTrace());
  WriteAndComplete(dev, 0, 16, 0x0A);   // fills the cache
  WriteAndComplete(dev, 16, 16, 0x0B);  // pushes the first write out
  dev.Crash();
  EXPECT_EQ(Count(Survivors(dev, 0, 16, 0x0A)), 16);
  EXPECT_EQ(Count(Survivors(dev, 16, 16, 0x0B)), 0);
}

TEST_F(SimDeviceTest, OverwritingAFuaWriteNeverResurrectsOlderData) {
  SimOptions o = Options();
  o.crash_keep_probability = 1.0;  // the cache keeps everything it can
  SimDevice dev(o);
  WriteAndComplete(dev, 0, 8, 0x01);           // volatile
  WriteAndComplete(dev, 0, 8, 0x02, kBioFua);  // durable, newer
  dev.Crash();
  EXPECT_EQ(Count(Survivors(dev, 0, 8, 0x02)), 8);
}

TEST_F(SimDeviceTest, InflightWritesTearOnlyAtBlockGranularity) {
  SimOptions o = Options();
  o.min_latency_ticks = 100;
  o.max_latency_ticks = 100;
  SimDevice dev(o);
  SCOPED_TRACE(dev.SeedTrace());
  std::vector<std::unique_ptr<TestBio>> bios;
  for (int i = 0; i < 16; ++i) {
    bios.push_back(Make(BioOp::kWrite, i * 64 * kLbs, 64 * kLbs, 0x77));
    dev.Submit(&bios.back()->bio);
  }
  dev.Crash();
  for (auto& b : bios) EXPECT_EQ(b->bio.result, -EIO);
  const int kept = Count(Survivors(dev, 0, 16 * 64, 0x77));
  EXPECT_GT(kept, 0);
  EXPECT_LT(kept, 16 * 64);
  auto late = Make(BioOp::kRead, 0, kLbs);
  dev.Submit(&late->bio);
  EXPECT_EQ(late->bio.result, -EIO) << "a crashed device accepted a bio";
}

TEST_F(SimDeviceTest, AtomicWritesAreNeverTorn) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SimOptions o = Options(seed);
    o.atomic_write_unit_min = kLbs;
    o.atomic_write_unit_max = 16384;
    SimDevice dev(o);
    SCOPED_TRACE(dev.SeedTrace());
    auto done = Make(BioOp::kWrite, 0, 16384, 0x5E, kBioAtomic);
    dev.Submit(&done->bio);
    dev.Drain();
    auto flying = Make(BioOp::kWrite, 16384, 16384, 0x6F, kBioAtomic);
    dev.Submit(&flying->bio);
    dev.Crash();
    const int a = Count(Survivors(dev, 0, 32, 0x5E));
    const int b = Count(Survivors(dev, 32, 32, 0x6F));
    EXPECT_TRUE(a == 0 || a == 32) << a;
    EXPECT_TRUE(b == 0 || b == 32) << b;
  }
}

TEST_F(SimDeviceTest, SameSeedSameCrash) {
  auto outcome = [&](uint64_t seed) {
    SimDevice dev(Options(seed));
    WriteAndComplete(dev, 0, 256, 0x99);
    auto flying = Make(BioOp::kWrite, 256 * kLbs, 256 * kLbs, 0x98);
    dev.Submit(&flying->bio);
    dev.Crash();
    std::vector<bool> v = Survivors(dev, 0, 256, 0x99);
    std::vector<bool> t = Survivors(dev, 256, 256, 0x98);
    v.insert(v.end(), t.begin(), t.end());
    return v;
  };
  EXPECT_EQ(outcome(1234), outcome(1234));
  EXPECT_NE(outcome(1234), outcome(4321));
}

TEST_F(SimDeviceTest, FlushFaultMakesNothingDurable) {
  SimOptions o = Options();
  o.crash_keep_probability = 0.0;
  SimDevice dev(o);
  SCOPED_TRACE(dev.SeedTrace());
  SimFault f;
  f.op_mask = SimOpBit(BioOp::kFlush);
  f.sticky = false;
  dev.AddFault(f);
  WriteAndComplete(dev, 0, 8, 0x31);
  auto flush = Make(BioOp::kFlush, 0, 0);
  dev.Submit(&flush->bio);
  dev.Drain();
  EXPECT_EQ(flush->bio.result, -EIO);
  dev.Crash();
  EXPECT_EQ(Count(Survivors(dev, 0, 8, 0x31)), 0);
}

TEST_F(SimDeviceTest, BackgroundModeServesBlockingCallers) {
  SimOptions o = Options();
  o.background = true;
  SimDevice dev(o);
  SCOPED_TRACE(dev.SeedTrace());
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      AlignedBuffer buf = AllocAligned(4096);
      for (int i = 0; i < 100; ++i) {
        memset(buf.get(), t, 4096);
        Bio w;
        w.op = BioOp::kWrite;
        w.offset = (t * 100 + i) * 4096ull;
        w.AddSegment(buf.get(), 4096);
        Bio r = w;
        r.op = BioOp::kRead;
        if (SubmitAndWait(dev, &w) == 4096 && SubmitAndWait(dev, &r) == 4096 &&
            buf[4095] == t)
          ok++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 400);
}

TEST_F(SimDeviceTest, CrashWakesBlockedSubmittersWithEio) {
  SimOptions o = Options();
  o.background = true;
  o.background_tick_us = 200;  // slow enough that bios are queued at crash
  o.min_latency_ticks = 50;
  o.max_latency_ticks = 100;
  SimDevice dev(o);
  SCOPED_TRACE(dev.SeedTrace());
  std::atomic<int> eio{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      AlignedBuffer buf = AllocAligned(4096);
      memset(buf.get(), t, 4096);
      for (int i = 0;; ++i) {  // until the crash fails a write
        Bio w;
        w.op = BioOp::kWrite;
        w.offset = (t * 1000 + i) % 1024 * 4096ull;
        w.AddSegment(buf.get(), 4096);
        if (SubmitAndWait(dev, &w) == -EIO) {
          eio++;
          return;
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  dev.Crash();
  for (auto& t : threads) t.join();
  EXPECT_EQ(eio.load(), 3);
  auto rebooted = dev.Reboot();
  EXPECT_EQ(rebooted->seed(), dev.seed() + 1);
  EXPECT_FALSE(rebooted->crashed());
}

TEST(SimSeedTest, MessageNamesTheEnvironmentVariable) {
  EXPECT_EQ(SimSeedMessage(17),
            "SimDevice seed=17 (replay with IOMAPD_SEED=17)");
  setenv("IOMAPD_SEED", "99", 1);
  EXPECT_EQ(SimSeedFromEnv(), 99u);
  SimDevice dev{SimOptions()};
  EXPECT_EQ(dev.seed(), 99u);
  unsetenv("IOMAPD_SEED");
}

}  // namespace
}  // namespace block
