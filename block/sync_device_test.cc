// Tests of SyncDevice: round trips, short transfers, EINTR/EAGAIN retries,
// errors, and many submitters.
#include "block/sync_device.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "block/backing_file.h"
#include "gtest/gtest.h"

namespace block {
namespace {

std::string TempPath(const std::string& name) {
  const char* dir = getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

void Pattern(uint8_t* p, size_t len, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < len; ++i) p[i] = static_cast<uint8_t>(rng());
}

class SyncDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = TempPath("sync.img");
    int fd = open(path_.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    ASSERT_EQ(ftruncate(fd, 8 << 20), 0);
    close(fd);
  }
  std::unique_ptr<SyncDevice> Open(SyncDevice::Options so = {}) {
    auto file = OpenBackingFile(path_, OpenOptions());
    EXPECT_TRUE(file.ok()) << file.status();
    return SyncDevice::Create(*file, so);
  }
  int64_t Io(Device& dev, BioOp op, uint64_t off, uint8_t* p, size_t len,
             uint32_t flags = 0) {
    Bio b;
    b.op = op;
    b.flags = flags;
    b.offset = off;
    if (p != nullptr) {
      b.AddSegment(p, len);
    } else {
      b.len = len;
    }
    return SubmitAndWait(dev, &b);
  }
  std::string path_;
};

TEST_F(SyncDeviceTest, RoundTripEveryOp) {
  auto dev = Open();
  EXPECT_EQ(dev->name().rfind("sync:", 0), 0u);
  AlignedBuffer out = AllocAligned(128 << 10), in = AllocAligned(128 << 10);
  Pattern(out.get(), 128 << 10, 1);
  Bio w;
  w.op = BioOp::kWrite;
  w.flags = kBioFua;
  w.offset = 4096;
  w.AddSegment(out.get(), 4096);
  w.AddSegment(out.get() + 4096, (128 << 10) - 4096);
  ASSERT_EQ(SubmitAndWait(*dev, &w), 128 << 10);
  EXPECT_EQ(Io(*dev, BioOp::kFlush, 0, nullptr, 0), 0);
  ASSERT_EQ(Io(*dev, BioOp::kRead, 4096, in.get(), 128 << 10), 128 << 10);
  EXPECT_EQ(memcmp(in.get(), out.get(), 128 << 10), 0);
  EXPECT_EQ(Io(*dev, BioOp::kDiscard, 4096, nullptr, 4096), 4096);
  EXPECT_EQ(Io(*dev, BioOp::kWriteZeroes, 8192, nullptr, 4096), 4096);
  ASSERT_EQ(Io(*dev, BioOp::kRead, 4096, in.get(), 12288), 12288);
  for (int i = 0; i < 8192; ++i) ASSERT_EQ(in[i], 0) << i;
  EXPECT_EQ(memcmp(in.get() + 8192, out.get() + 8192, 4096), 0);
}

TEST_F(SyncDeviceTest, ShortTransfersContinue) {
  std::atomic<int> calls{0};
  SyncDevice::Options so;
  so.result_hook = [&](const Bio&, ssize_t res) -> ssize_t {
    calls++;
    return res > 512 ? 512 : res;  // one block per call at most
  };
  auto dev = Open(so);
  AlignedBuffer out = AllocAligned(64 << 10), in = AllocAligned(64 << 10);
  Pattern(out.get(), 64 << 10, 2);
  Bio w;
  w.op = BioOp::kWrite;
  for (int i = 0; i < 8; ++i) w.AddSegment(out.get() + i * 8192, 8192);
  ASSERT_EQ(SubmitAndWait(*dev, &w), 64 << 10);
  ASSERT_EQ(Io(*dev, BioOp::kRead, 0, in.get(), 64 << 10), 64 << 10);
  EXPECT_EQ(memcmp(in.get(), out.get(), 64 << 10), 0);
  EXPECT_EQ(calls.load(), 2 * 128);
}

TEST_F(SyncDeviceTest, EintrAndEagainRetry) {
  std::atomic<int> calls{0};
  SyncDevice::Options so;
  so.result_hook = [&](const Bio&, ssize_t res) -> ssize_t {
    int n = calls++;
    if (n % 3 == 0) return -EINTR;
    if (n % 3 == 1) return -EAGAIN;
    return res;
  };
  auto dev = Open(so);
  AlignedBuffer buf = AllocAligned(4096);
  Pattern(buf.get(), 4096, 3);
  EXPECT_EQ(Io(*dev, BioOp::kWrite, 0, buf.get(), 4096), 4096);
  EXPECT_EQ(Io(*dev, BioOp::kRead, 0, buf.get(), 4096), 4096);
  EXPECT_EQ(calls.load(), 6);
}

TEST_F(SyncDeviceTest, ErrorsAndEarlyEnd) {
  SyncDevice::Options so;
  so.result_hook = [](const Bio& bio, ssize_t res) -> ssize_t {
    return bio.offset == 0 ? -EIO : res;
  };
  auto dev = Open(so);
  AlignedBuffer buf = AllocAligned(8192);
  EXPECT_EQ(Io(*dev, BioOp::kRead, 0, buf.get(), 4096), -EIO);
  ASSERT_EQ(truncate(path_.c_str(), 6144), 0);
  EXPECT_EQ(Io(*dev, BioOp::kRead, 4096, buf.get(), 8192), -EIO);
}

TEST_F(SyncDeviceTest, ManySubmitters) {
  SyncDevice::Options so;
  so.threads = 3;
  auto dev = Open(so);
  constexpr int kThreads = 4, kPerThread = 250;
  AlignedBuffer buf = AllocAligned(kThreads * kPerThread * 4096);
  struct Tally {
    std::atomic<int> done{0};
    std::atomic<int>* ok;
  };
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Tally tally;
      tally.ok = &ok;
      std::vector<Bio> bios(kPerThread);
      for (int i = 0; i < kPerThread; ++i) {
        bios[i].op = i % 2 ? BioOp::kRead : BioOp::kWrite;
        bios[i].offset = (t * kPerThread + i) * 4096ull % (8 << 20);
        bios[i].AddSegment(buf.get() + (t * kPerThread + i) * 4096, 4096);
        bios[i].private_data = &tally;
        bios[i].end_io = [](Bio* b) {
          auto* tl = static_cast<Tally*>(b->private_data);
          if (b->result == 4096) tl->ok->fetch_add(1);
          tl->done.fetch_add(1);
        };
        dev->Submit(&bios[i]);
      }
      // Wait for this thread's bios before freeing them.
      while (tally.done.load() < kPerThread) std::this_thread::yield();
    });
  }
  for (auto& t : threads) t.join();
  dev->Drain();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
}

}  // namespace
}  // namespace block
