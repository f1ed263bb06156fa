// Tests of UringDevice: data round trips, every op, the completion loop's
// handling of short transfers, -EAGAIN and errors, a full ring, concurrency.
#include "block/uring_device.h"

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

constexpr uint64_t kImageBytes = 8 << 20;

std::string TempPath(const std::string& name) {
  const char* dir = getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

void Pattern(uint8_t* p, size_t len, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < len; ++i) p[i] = static_cast<uint8_t>(rng());
}

class UringDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!UringUsable(&why)) GTEST_SKIP() << why;
    path_ = TempPath("uring.img");
    int fd = open(path_.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    ASSERT_EQ(ftruncate(fd, kImageBytes), 0);
    close(fd);
  }

  std::unique_ptr<UringDevice> Open(UringDevice::Options uo = {},
                                    bool direct = true) {
    OpenOptions o;
    o.direct = direct;
    auto file = OpenBackingFile(path_, o);
    EXPECT_TRUE(file.ok()) << file.status();
    auto dev = UringDevice::Create(*file, uo);
    EXPECT_TRUE(dev.ok()) << dev.status();
    return std::move(dev).value();
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

TEST_F(UringDeviceTest, WritesAndReadsBackVectored) {
  auto dev = Open();
  AlignedBuffer out = AllocAligned(64 << 10), in = AllocAligned(64 << 10);
  Pattern(out.get(), 64 << 10, 1);
  Bio w;
  w.op = BioOp::kWrite;
  w.offset = 1 << 20;
  for (int i = 0; i < 4; ++i)
    w.AddSegment(out.get() + i * (16 << 10), 16 << 10);
  ASSERT_EQ(SubmitAndWait(*dev, &w), 64 << 10);
  ASSERT_EQ(Io(*dev, BioOp::kRead, 1 << 20, in.get(), 64 << 10), 64 << 10);
  EXPECT_EQ(memcmp(in.get(), out.get(), 64 << 10), 0);
}

TEST_F(UringDeviceTest, FuaFlushDiscardAndWriteZeroes) {
  auto dev = Open();
  AlignedBuffer buf = AllocAligned(1 << 20);
  memset(buf.get(), 0x5A, 1 << 20);
  EXPECT_EQ(Io(*dev, BioOp::kWrite, 0, buf.get(), 1 << 20, kBioFua), 1 << 20);
  EXPECT_EQ(Io(*dev, BioOp::kFlush, 0, nullptr, 0), 0);
  EXPECT_EQ(Io(*dev, BioOp::kDiscard, 0, nullptr, 64 << 10), 64 << 10);
  EXPECT_EQ(Io(*dev, BioOp::kWriteZeroes, 64 << 10, nullptr, 64 << 10),
            64 << 10);
  ASSERT_EQ(Io(*dev, BioOp::kRead, 0, buf.get(), 256 << 10), 256 << 10);
  // A punched hole in a file reads as zeroes, as does a zeroed range.
  for (int i = 0; i < (128 << 10); ++i) ASSERT_EQ(buf[i], 0) << i;
  for (int i = 128 << 10; i < (256 << 10); ++i) ASSERT_EQ(buf[i], 0x5A) << i;
}

TEST_F(UringDeviceTest, ShortTransfersRequeueTheRest) {
  std::atomic<int> shortened{0};
  UringDevice::Options uo;
  // Every transfer of more than one block reports only half of it done.
  uo.result_hook = [&](const Bio&, int res) {
    if (res > 4096) {
      shortened++;
      return (res / 2) & ~4095;
    }
    return res;
  };
  auto dev = Open(uo);
  AlignedBuffer out = AllocAligned(256 << 10), in = AllocAligned(256 << 10);
  Pattern(out.get(), 256 << 10, 2);
  Bio w;
  w.op = BioOp::kWrite;
  w.offset = 8192;
  w.AddSegment(out.get(), 4096);
  w.AddSegment(out.get() + 4096, (256 << 10) - 4096);
  ASSERT_EQ(SubmitAndWait(*dev, &w), 256 << 10);
  ASSERT_EQ(Io(*dev, BioOp::kRead, 8192, in.get(), 256 << 10), 256 << 10);
  EXPECT_EQ(memcmp(in.get(), out.get(), 256 << 10), 0);
  EXPECT_GT(shortened.load(), 10);
}

TEST_F(UringDeviceTest, EagainResubmits) {
  std::atomic<int> calls{0};
  UringDevice::Options uo;
  uo.result_hook = [&](const Bio&, int res) {
    return calls++ % 3 == 0 ? -EAGAIN : res;  // every third CQE: -EAGAIN
  };
  auto dev = Open(uo);
  AlignedBuffer buf = AllocAligned(4096);
  for (int i = 0; i < 30; ++i) {
    Pattern(buf.get(), 4096, i);
    ASSERT_EQ(Io(*dev, BioOp::kWrite, i * 4096, buf.get(), 4096), 4096);
  }
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(Io(*dev, BioOp::kRead, i * 4096, buf.get(), 4096), 4096);
    AlignedBuffer want = AllocAligned(4096);
    Pattern(want.get(), 4096, i);
    ASSERT_EQ(memcmp(buf.get(), want.get(), 4096), 0) << i;
  }
  EXPECT_GE(calls.load(), 80);
}

TEST_F(UringDeviceTest, ErrnoCompletesTheBio) {
  UringDevice::Options uo;
  uo.result_hook = [](const Bio& bio, int res) {
    return bio.offset == 0 ? -EIO : res;
  };
  auto dev = Open(uo);
  AlignedBuffer buf = AllocAligned(4096);
  EXPECT_EQ(Io(*dev, BioOp::kRead, 0, buf.get(), 4096), -EIO);
  EXPECT_EQ(Io(*dev, BioOp::kRead, 4096, buf.get(), 4096), 4096);
}

TEST_F(UringDeviceTest, DeviceEndingEarlyIsEio) {
  auto dev = Open();
  // Shrink the file behind the device's back: a read across the new end is
  // short, the remainder reads 0 bytes, and the bio fails with -EIO.
  ASSERT_EQ(truncate(path_.c_str(), 6144), 0);
  AlignedBuffer buf = AllocAligned(8192);
  EXPECT_EQ(Io(*dev, BioOp::kRead, 4096, buf.get(), 8192), -EIO);
}

TEST_F(UringDeviceTest, MoreBiosThanTheRingHolds) {
  UringDevice::Options uo;
  uo.queue_depth = 4;
  auto dev = Open(uo);
  constexpr int kBios = 200;
  AlignedBuffer buf = AllocAligned(kBios * 4096);
  Pattern(buf.get(), kBios * 4096, 3);
  std::vector<Bio> bios(kBios);
  std::vector<Bio*> ptrs;
  std::atomic<int> done{0};
  for (int i = 0; i < kBios; ++i) {
    bios[i].op = BioOp::kWrite;
    bios[i].offset = i * 4096;
    bios[i].AddSegment(buf.get() + i * 4096, 4096);
    bios[i].private_data = &done;
    bios[i].end_io = [](Bio* b) {
      static_cast<std::atomic<int>*>(b->private_data)->fetch_add(1);
    };
    ptrs.push_back(&bios[i]);
  }
  dev->SubmitBatch(ptrs);
  dev->Drain();
  EXPECT_EQ(done.load(), kBios);
  EXPECT_EQ(dev->inflight(), 0u);
  for (const Bio& b : bios) EXPECT_EQ(b.result, 4096);
  AlignedBuffer in = AllocAligned(kBios * 4096);
  int fd = open(path_.c_str(), O_RDONLY);
  ASSERT_EQ(pread(fd, in.get(), kBios * 4096, 0), kBios * 4096);
  close(fd);
  EXPECT_EQ(memcmp(in.get(), buf.get(), kBios * 4096), 0);
}

TEST_F(UringDeviceTest, ConcurrentSubmittersAndChainedCompletions) {
  UringDevice::Options uo;
  uo.queue_depth = 8;
  auto dev = Open(uo);
  constexpr int kThreads = 4, kPerThread = 300;
  AlignedBuffer buf = AllocAligned(kThreads * kPerThread * 4096);
  struct Chain {
    Device* dev;
    int left;
    std::atomic<int>* finished;
    Bio bio;
  };
  std::atomic<int> finished{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto* c = new Chain{dev.get(), 2, &finished, Bio()};
        c->bio.op = (i % 2) ? BioOp::kRead : BioOp::kWrite;
        c->bio.offset = (t * kPerThread + i) % 2048 * 4096;
        c->bio.AddSegment(buf.get() + (t * kPerThread + i) * 4096, 4096);
        c->bio.private_data = c;
        // end_io resubmits the bio from the completion thread twice.
        c->bio.end_io = [](Bio* b) {
          auto* ch = static_cast<Chain*>(b->private_data);
          if (b->result == 4096 && --ch->left > 0) {
            ch->dev->Submit(b);
            return;
          }
          if (b->result == 4096) ch->finished->fetch_add(1);
          delete ch;
        };
        dev->Submit(&c->bio);
      }
    });
  }
  for (auto& t : threads) t.join();
  dev->Drain();
  EXPECT_EQ(finished.load(), kThreads * kPerThread);
}

TEST_F(UringDeviceTest, HipriCompletesWithOrWithoutPolling) {
  auto dev = Open();
  AlignedBuffer buf = AllocAligned(4096);
  memset(buf.get(), 7, 4096);
  EXPECT_EQ(Io(*dev, BioOp::kWrite, 0, buf.get(), 4096, kBioHipri), 4096);
  memset(buf.get(), 0, 4096);
  EXPECT_EQ(Io(*dev, BioOp::kRead, 0, buf.get(), 4096, kBioHipri), 4096);
  EXPECT_EQ(buf[100], 7);
  RecordProperty("polling", dev->polling() ? "yes" : "no");
}

TEST_F(UringDeviceTest, BufferedWhenDirectIsOff) {
  auto dev = Open({}, /*direct=*/false);
  EXPECT_FALSE(dev->limits().direct);
  std::vector<uint8_t> buf(1024 + 1);  // unaligned memory is fine
  Pattern(buf.data(), buf.size(), 9);
  EXPECT_EQ(Io(*dev, BioOp::kWrite, 512, buf.data() + 1, 1024), 1024);
  std::vector<uint8_t> in(1024);
  EXPECT_EQ(Io(*dev, BioOp::kRead, 512, in.data(), 1024), 1024);
  EXPECT_EQ(memcmp(in.data(), buf.data() + 1, 1024), 0);
}

TEST_F(UringDeviceTest, DestructorWaitsForInflightBios) {
  std::atomic<int> done{0};
  AlignedBuffer buf = AllocAligned(64 << 10);
  std::vector<Bio> bios(32);
  {
    auto dev = Open();
    for (int i = 0; i < 32; ++i) {
      bios[i].op = BioOp::kRead;
      bios[i].offset = i * (64 << 10);
      bios[i].AddSegment(buf.get(), 64 << 10);
      bios[i].private_data = &done;
      bios[i].end_io = [](Bio* b) {
        static_cast<std::atomic<int>*>(b->private_data)->fetch_add(1);
      };
      dev->Submit(&bios[i]);
    }
  }
  EXPECT_EQ(done.load(), 32);
}

}  // namespace
}  // namespace block
