#include "fs/journal.h"

#include <cerrno>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fs/format.h"
#include "fs/testing/mem_device.h"
#include "gtest/gtest.h"

namespace fs {
namespace {

using testing::MemDevice;

struct Fixture {
  explicit Fixture(uint32_t bs, uint64_t journal_blocks = 0,
                   uint64_t dev_bytes = 16 << 20)
      : dev(dev_bytes) {
    LayoutOptions o;
    o.block_size = bs;
    o.device_bytes = dev_bytes;
    o.journal_blocks = journal_blocks;
    sb = *MakeLayout(o);
  }
  std::vector<std::string> Replay(uint64_t epoch, JournalPosition start,
                                  ReplayResult* out = nullptr) {
    std::vector<std::string> got;
    absl::StatusOr<ReplayResult> r =
        ReplayJournal(dev, sb, epoch, start,
                      [&](uint64_t, uint16_t type, absl::string_view p) {
                        EXPECT_EQ(type, format::kRecordTxn);
                        got.emplace_back(p.data(), p.size());
                        return 0;
                      });
    EXPECT_TRUE(r.ok()) << r.status();
    if (out != nullptr && r.ok()) *out = *r;
    return got;
  }
  MemDevice dev;
  Superblock sb;
};

std::string Payload(int i, std::mt19937& rng) {
  std::string s = absl::StrCat("record-", i, "-");
  s.append(rng() % 3000, static_cast<char>('a' + i % 26));
  return s;
}

class JournalBlockSizeTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(JournalBlockSizeTest, CommittedRecordsSurviveACrash) {
  Fixture f(GetParam());
  std::mt19937 rng(GetParam());
  std::vector<std::string> want;
  Journal j(f.dev, f.sb, 1, {}, {});
  for (int i = 0; i < 60; ++i) {
    want.push_back(Payload(i, rng));
    int64_t lsn = j.Append(format::kRecordTxn, want.back());
    ASSERT_GT(lsn, 0);
    if (i % 7 == 0) {
      ASSERT_EQ(j.Commit(lsn), 0);
    }
  }
  ASSERT_EQ(j.CommitAll(), 0);
  f.dev.Crash(GetParam());
  ReplayResult r;
  EXPECT_EQ(f.Replay(1, {}, &r), want);
  EXPECT_EQ(r.records, 60u);
  EXPECT_EQ(r.end.offset % GetParam(), 0u);
  EXPECT_EQ(r.end, j.head());
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, JournalBlockSizeTest,
                         ::testing::Values(512u, 1024u, 4096u, 65536u));

TEST(JournalTest, UncommittedRecordsMayVanishCommittedStay) {
  Fixture f(4096);
  Journal j(f.dev, f.sb, 1, {}, {});
  ASSERT_EQ(j.Commit(j.Append(format::kRecordTxn, "one")), 0);
  j.Append(format::kRecordTxn, "two");  // never committed
  f.dev.Crash(7);
  EXPECT_EQ(f.Replay(1, {}), std::vector<std::string>{"one"});
}

TEST(JournalTest, TornTailIsIgnored) {
  Fixture f(512);
  Journal j(f.dev, f.sb, 1, {}, {});
  std::vector<std::string> want;
  for (int i = 0; i < 5; ++i) {
    want.push_back(std::string(300 + i, 'x'));
    ASSERT_EQ(j.Commit(j.Append(format::kRecordTxn, want.back())), 0);
  }
  JournalPosition before_last = j.head();
  ASSERT_EQ(j.Commit(j.Append(format::kRecordTxn, std::string(900, 'y'))), 0);
  // Tear the last commit: its second sector never reached the medium.
  f.dev.Overwrite(f.sb.journal_offset() + before_last.offset + 512,
                  std::string(512, '\x5a'));
  ReplayResult r;
  EXPECT_EQ(f.Replay(1, {}, &r), want);
  EXPECT_EQ(r.end, before_last);
  EXPECT_EQ(r.stop_reason, "bad record crc");
  // A flipped bit in an earlier record stops replay there.
  f.dev.Corrupt(f.sb.journal_offset() + 512 + 40, 0x01);
  EXPECT_EQ(f.Replay(1, {}).size(), 1u);
}

TEST(JournalTest, RecordsOfAnotherEpochOrFilesystemAreRejected) {
  Fixture f(4096);
  {
    Journal j(f.dev, f.sb, 3, {}, {});
    ASSERT_EQ(j.Commit(j.Append(format::kRecordTxn, "epoch3")), 0);
  }
  EXPECT_EQ(f.Replay(3, {}).size(), 1u);
  EXPECT_TRUE(f.Replay(4, {}).empty());
  f.sb.uuid[0] ^= 1;  // a new mkfs over the same device
  EXPECT_TRUE(f.Replay(3, {}).empty());
}

TEST(JournalTest, WrapsAroundAndReclaimsSpaceAfterCheckpoint) {
  Fixture f(512, 64);  // a 32 KiB log
  Journal j(f.dev, f.sb, 1, {}, {});
  JournalPosition tail;
  std::vector<std::string> since_tail;
  std::mt19937 rng(99);
  for (int i = 0; i < 400; ++i) {
    std::string p = Payload(i, rng).substr(0, 100 + rng() % 900);
    int64_t lsn = j.Append(format::kRecordTxn, p);
    if (lsn == -ENOSPC) {  // "checkpoint": everything so far is covered
      ASSERT_EQ(j.CommitAll(), 0);
      tail = j.head();
      j.ReleaseTo(tail);
      since_tail.clear();
      lsn = j.Append(format::kRecordTxn, p);
    }
    ASSERT_GT(lsn, 0) << i;
    since_tail.push_back(p);
    if (rng() % 3 == 0) {
      ASSERT_EQ(j.Commit(lsn), 0);
    }
  }
  ASSERT_EQ(j.CommitAll(), 0);
  EXPECT_GT(j.head().offset, 3 * j.capacity_bytes());
  EXPECT_EQ(f.Replay(1, tail), since_tail);
}

TEST(JournalTest, FullLogSaysEnospcAndOversizeSaysE2big) {
  Fixture f(512, 64);
  Journal j(f.dev, f.sb, 1, {}, {});
  int64_t r = 0;
  for (int i = 0; i < 1000 && r >= 0; ++i)
    r = j.Append(format::kRecordTxn, std::string(500, 'z'));
  EXPECT_EQ(r, -ENOSPC);
  EXPECT_LE(j.used_bytes(), j.capacity_bytes());
  EXPECT_EQ(j.Append(format::kRecordTxn,
                     std::string(format::kMaxRecordPayload + 1, 'z')),
            -E2BIG);
  EXPECT_EQ(j.CommitAll(), 0);
}

TEST(JournalTest, DeviceFailureFailsCommitsAndLaterAppends) {
  Fixture f(4096);
  Journal j(f.dev, f.sb, 1, {}, {});
  f.dev.SetFailAll(true);
  EXPECT_EQ(j.Commit(j.Append(format::kRecordTxn, "x")), -EIO);
  EXPECT_EQ(j.Append(format::kRecordTxn, "y"), -EIO);
}

TEST(JournalTest, GroupCommitSharesFlushes) {
  Fixture f(4096);
  f.dev.SetFlushDelay(std::chrono::milliseconds(2));
  Journal j(f.dev, f.sb, 1, {}, {});
  constexpr int kThreads = 16, kPerThread = 10;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&j, t] {
      for (int i = 0; i < kPerThread; ++i) {
        int64_t lsn =
            j.Append(format::kRecordTxn, absl::StrCat("t", t, "i", i));
        ASSERT_GT(lsn, 0);
        ASSERT_EQ(j.Commit(lsn), 0);
        ASSERT_GE(j.durable_lsn(), static_cast<uint64_t>(lsn));
      }
    });
  }
  for (auto& t : threads) t.join();
  const uint64_t fsyncs = kThreads * kPerThread;
  EXPECT_EQ(f.dev.flushes(), j.stats().commits);
  EXPECT_LT(f.dev.flushes(), fsyncs / 2) << "commits did not batch";
  std::printf("%llu fsyncs, %llu flushes\n", (unsigned long long)fsyncs,
              (unsigned long long)f.dev.flushes());
  EXPECT_EQ(f.Replay(1, {}).size(), fsyncs);
}

}  // namespace
}  // namespace fs
