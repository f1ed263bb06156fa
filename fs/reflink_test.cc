// Reflink through the Volume: FICLONERANGE / FIDEDUPERANGE semantics and
// errnos, SHARED reporting, copy-on-write through the COW fork with the
// remap at I/O completion, refcounts (CheckLive / fsck), and crashes.
#include <linux/falloc.h>

#include <algorithm>
#include <bitset>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "block/sim_device.h"
#include "fs/file.h"
#include "fs/testing/mem_device.h"
#include "fs/testing/volume_helpers.h"
#include "fs/volume.h"
#include "gtest/gtest.h"
#include "iomap/fiemap.h"
#include "iomap/swapfile.h"

namespace fs {
namespace {

using testing::CreateFile;
using testing::ExpectClean;
using testing::FormatAndMount;
using testing::MemDevice;
using testing::OpenOrDie;
using testing::Pattern;
using testing::ReadAll;
using testing::Remount;

// Sanitizer builds run 10-100x slower: the loops below scale down there.
#ifdef IOMAPD_SANITIZER
constexpr int kSlow = 4;
#else
constexpr int kSlow = 1;
#endif

// XFS_DEFAULT_COWEXTSZ_HINT: COW-fork reservations are rounded out to
// aligned windows of this many blocks.
constexpr uint64_t kCowWindow = 32;

// (logical, length, shared) of every FIEMAP extent.
struct Ext {
  uint64_t logical, length;
  bool shared;
};
std::vector<Ext> Extents(OpenFile* f) {
  iomap::FiemapRequest req;
  req.fm_length = iomap::kFiemapMaxOffset;
  req.fm_extent_count = 64;
  EXPECT_EQ(f->Fiemap(&req), 0);
  std::vector<Ext> out;
  for (const auto& e : req.fm_extents)
    out.push_back(Ext{e.fe_logical, e.fe_length,
                      (e.fe_flags & iomap::kFiemapExtentShared) != 0});
  return out;
}

class ReflinkTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  void SetUp() override {
    vol_ = FormatAndMount(&dev_, bs());
    ASSERT_NE(vol_, nullptr);
  }
  uint32_t bs() const { return GetParam(); }
  // 64 KiB blocks: room for the 32-block (2 MiB) COW windows.
  MemDevice dev_{GetParam() > 4096 ? 64ull << 20 : 32ull << 20};
  std::unique_ptr<Volume> vol_;
};

TEST_P(ReflinkTest, CloneSharesBlocksAndWritesCopyOnWrite) {
  FileHandle ha = CreateFile(vol_.get(), "a"), hb = CreateFile(vol_.get(), "b");
  const std::string data = Pattern(300000, 1);
  std::unique_ptr<OpenFile> a = OpenOrDie(vol_.get(), ha);
  std::unique_ptr<OpenFile> b = OpenOrDie(vol_.get(), hb);
  ASSERT_EQ(a->Write(0, data.data(), data.size()), 300000);
  // Not written back yet: the clone writes the source range back first.
  const uint64_t free0 = vol_->FreeBlocks() - (300000 + bs() - 1) / bs();
  // len 0: to the source's EOF (unaligned: the partial EOF block too).
  ASSERT_EQ(b->CloneRange(a.get(), 0, 0, 0), 300000);
  EXPECT_EQ(b->size(), 300000);
  EXPECT_EQ(vol_->FreeBlocks(), free0);  // shared, no new blocks
  EXPECT_EQ(ReadAll(b.get(), 0, 300000), data);
  for (OpenFile* f : {a.get(), b.get()}) {
    std::vector<Ext> x = Extents(f);
    ASSERT_EQ(x.size(), 1u);
    EXPECT_TRUE(x[0].shared);
  }
  ExpectClean(vol_.get());
  // A write into b (partial blocks) goes to new blocks; a keeps its data.
  const std::string patch = Pattern(5000, 2);
  ASSERT_EQ(b->Write(100000, patch.data(), patch.size()), 5000);
  ExpectClean(vol_.get());
  ASSERT_EQ(b->Fsync(), 0);
  ExpectClean(vol_.get());
  std::string want = data;
  want.replace(100000, patch.size(), patch);
  EXPECT_EQ(ReadAll(b.get(), 0, 300000), want);
  EXPECT_EQ(ReadAll(a.get(), 0, 300000), data);
  // The COW reservation covered the whole aligned 32-block window around
  // the written blocks (the COW extent size hint); writeback allocated all
  // of it, and what the write did not use stays in b's COW fork until b is
  // closed.
  EXPECT_EQ(vol_->FreeBlocks(), free0 - kCowWindow);
  std::vector<Ext> xb = Extents(b.get());
  ASSERT_EQ(xb.size(), 3u);
  EXPECT_TRUE(xb[0].shared);
  EXPECT_FALSE(xb[1].shared);
  EXPECT_TRUE(xb[2].shared);
  // A mapped store into a's shared blocks copies on write too.
  ASSERT_EQ(a->MapWrite(4096, patch.data(), 100), 100);
  ASSERT_EQ(a->Fsync(), 0);
  ExpectClean(vol_.get());
  EXPECT_EQ(ReadAll(b.get(), 4096, 100), data.substr(4096, 100));
  a->Close();
  b->Close();
  ASSERT_TRUE(vol_->Unmount().ok());
  vol_.reset();
  EXPECT_TRUE(FsckVolume(dev_).clean());
  vol_ = Remount(&dev_);
  ASSERT_NE(vol_, nullptr);
  b = OpenOrDie(vol_.get(), hb);
  EXPECT_EQ(ReadAll(b.get(), 0, 300000), want);
  a = OpenOrDie(vol_.get(), ha);
  std::string want_a = data;
  want_a.replace(4096, 100, patch.substr(0, 100));
  EXPECT_EQ(ReadAll(a.get(), 0, 300000), want_a);
  ExpectClean(vol_.get());
}

TEST_P(ReflinkTest, DroppingOneOwnerKeepsTheOther) {
  FileHandle ha = CreateFile(vol_.get(), "a"), hb = CreateFile(vol_.get(), "b");
  const uint64_t free0 = vol_->FreeBlocks();
  const int64_t bsz = bs();
  const std::string data = Pattern(16 * bsz, 3);
  {
    std::unique_ptr<OpenFile> a = OpenOrDie(vol_.get(), ha);
    std::unique_ptr<OpenFile> b = OpenOrDie(vol_.get(), hb);
    ASSERT_EQ(a->Write(0, data.data(), data.size()), 16 * bsz);
    ASSERT_EQ(a->Fsync(), 0);
    ASSERT_EQ(b->CloneRange(a.get(), 0, 2 * bsz, 8 * bsz), 8 * bsz);
    EXPECT_EQ(b->size(), 10 * bsz);
    EXPECT_EQ(ReadAll(b.get(), 0, 2 * bsz), std::string(2 * bsz, '\0'));
    ASSERT_EQ(b->Fsync(), 0);
    // Punch in a: b keeps the blocks (their count drops to 1).
    ASSERT_EQ(a->Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                           4 * bsz),
              0);
    ExpectClean(vol_.get());
  }
  ASSERT_EQ(vol_->Unlink(vol_->root(), "a"), 0);
  ExpectClean(vol_.get());
  {
    std::unique_ptr<OpenFile> b = OpenOrDie(vol_.get(), hb);
    EXPECT_EQ(ReadAll(b.get(), 2 * bsz, 8 * bsz), data.substr(0, 8 * bsz));
    ASSERT_EQ(b->Truncate(0), 0);
  }
  ExpectClean(vol_.get());
  EXPECT_EQ(vol_->FreeBlocks(), free0);
}

TEST_P(ReflinkTest, CloneErrnos) {
  FileHandle ha = CreateFile(vol_.get(), "a"), hb = CreateFile(vol_.get(), "b");
  std::unique_ptr<OpenFile> a = OpenOrDie(vol_.get(), ha);
  std::unique_ptr<OpenFile> b = OpenOrDie(vol_.get(), hb);
  const int64_t bsz = bs();
  const std::string data = Pattern(10000 + 16 * bsz, 4);
  ASSERT_EQ(a->Write(0, data.data(), data.size()),
            static_cast<int64_t>(data.size()));
  const int64_t size = a->size();
  EXPECT_EQ(b->CloneRange(a.get(), -bsz, 0, bsz), -EINVAL);
  EXPECT_EQ(b->CloneRange(a.get(), 0, 0, -1), -EINVAL);
  EXPECT_EQ(b->CloneRange(a.get(), INT64_MAX - 10, 0, 100), -EINVAL);
  EXPECT_EQ(b->CloneRange(a.get(), 100, 0, bsz), -EINVAL);  // unaligned
  EXPECT_EQ(b->CloneRange(a.get(), 0, 100, bsz), -EINVAL);
  EXPECT_EQ(b->CloneRange(a.get(), 0, 0, bsz + 1), -EINVAL);  // not to EOF
  EXPECT_EQ(b->CloneRange(a.get(), size / bsz * bsz + bsz, 0, bsz), -EINVAL);
  EXPECT_EQ(b->CloneRange(a.get(), size, 0, 0), 0);  // at EOF: nothing
  // Past the source's EOF: shortened, which FICLONERANGE refuses.
  EXPECT_EQ(b->CloneRange(a.get(), 0, 0, size + bsz), -EINVAL);
  // One file: overlapping ranges are refused, disjoint ones work.
  EXPECT_EQ(a->CloneRange(a.get(), 0, bsz, 2 * bsz), -EINVAL);
  EXPECT_EQ(a->CloneRange(a.get(), 0, 8 * bsz, 2 * bsz), 2 * bsz);
  EXPECT_EQ(ReadAll(a.get(), 8 * bsz, 2 * bsz), data.substr(0, 2 * bsz));
  // A partial EOF block may not land inside the destination.
  ASSERT_EQ(b->Write(0, data.data(), data.size()),
            static_cast<int64_t>(data.size()));
  EXPECT_EQ(b->CloneRange(a.get(), size / bsz * bsz - bsz, 0, 0), -EINVAL);
  // Directories, stale handles, other volumes, swap files.
  EXPECT_EQ(vol_->CloneRange(ha, 0, vol_->root(), 0, 0), -EISDIR);
  EXPECT_EQ(
      vol_->CloneRange(FileHandle{ha.ino, ha.generation + 1}, 0, hb, 0, 0),
      -ESTALE);
  MemDevice other_dev(8ull << 20);
  std::unique_ptr<Volume> other = FormatAndMount(&other_dev, bs());
  FileHandle hc = CreateFile(other.get(), "c");
  std::unique_ptr<OpenFile> c = OpenOrDie(other.get(), hc);
  EXPECT_EQ(c->CloneRange(a.get(), 0, 0, 0), -EXDEV);
  c->Close();
  ASSERT_EQ(b->Fsync(), 0);
  iomap::SwapInfo sis;
  ASSERT_GT(vol_->SwapActivate(hb, &sis), 0);
  EXPECT_EQ(b->CloneRange(a.get(), 0, 0, 0), -ETXTBSY);
  EXPECT_EQ(a->CloneRange(b.get(), 0, 0, 0), -ETXTBSY);
  EXPECT_EQ(b->DedupeRange(a.get(), 0, 0, bsz), -ETXTBSY);
  // A swap file with shared blocks is refused, as the kernel does.
  ASSERT_EQ(vol_->SwapDeactivate(hb), 0);
  ASSERT_EQ(b->CloneRange(a.get(), 0, 0, 16 * bsz), 16 * bsz);
  ASSERT_EQ(b->Fsync(), 0);
  iomap::SwapInfo shared;
  EXPECT_EQ(vol_->SwapActivate(hb, &shared), -EINVAL);
  EXPECT_EQ(shared.error, "has shared extents");
  b->Close();
  EXPECT_EQ(b->CloneRange(a.get(), 0, 0, 0), -EBADF);
  ExpectClean(vol_.get());
}

TEST_P(ReflinkTest, DedupeComparesAndShares) {
  FileHandle ha = CreateFile(vol_.get(), "a"), hb = CreateFile(vol_.get(), "b");
  std::unique_ptr<OpenFile> a = OpenOrDie(vol_.get(), ha);
  std::unique_ptr<OpenFile> b = OpenOrDie(vol_.get(), hb);
  const std::string data = Pattern(128 << 10, 5);
  ASSERT_EQ(a->Write(0, data.data(), data.size()), 128 << 10);
  ASSERT_EQ(b->Write(0, data.data(), data.size()), 128 << 10);
  const char x = 'x';
  ASSERT_EQ(b->Write(70000, &x, 1), 1);
  ASSERT_EQ(a->Fsync(), 0);
  ASSERT_EQ(b->Fsync(), 0);
  const uint64_t free0 = vol_->FreeBlocks();
  EXPECT_EQ(b->DedupeRange(a.get(), 0, 0, 128 << 10), -EBADE);
  EXPECT_EQ(b->DedupeRange(a.get(), 0, 0, 0), 0);
  EXPECT_EQ(b->DedupeRange(a.get(), 0, 0, (128 << 10) + 1), -EINVAL);
  EXPECT_EQ(b->DedupeRange(a.get(), 100, 0, 4096), -EINVAL);
  EXPECT_EQ(vol_->FreeBlocks(), free0);
  // Equal bytes: b's blocks are freed, a's shared.
  EXPECT_EQ(b->DedupeRange(a.get(), 0, 0, 65536), 65536);
  EXPECT_EQ(vol_->FreeBlocks(), free0 + 65536 / bs());
  EXPECT_EQ(ReadAll(b.get(), 0, 65536), data.substr(0, 65536));
  std::vector<Ext> xb = Extents(b.get());
  ASSERT_GE(xb.size(), 2u);
  EXPECT_TRUE(xb[0].shared);
  EXPECT_EQ(xb[0].length, 65536u);
  ExpectClean(vol_.get());
  a->Close();
  b->Close();
  ASSERT_TRUE(vol_->Unmount().ok());
  EXPECT_TRUE(FsckVolume(dev_).clean());
}

TEST_P(ReflinkTest, UnshareMakesBlocksPrivate) {
  FileHandle ha = CreateFile(vol_.get(), "a"), hb = CreateFile(vol_.get(), "b");
  std::unique_ptr<OpenFile> a = OpenOrDie(vol_.get(), ha);
  std::unique_ptr<OpenFile> b = OpenOrDie(vol_.get(), hb);
  const int64_t bsz = bs();
  const int64_t n = 100000 + 16 * bsz;  // blocks [4, 12) lie inside
  const std::string data = Pattern(n, 6);
  ASSERT_EQ(a->Write(0, data.data(), data.size()), n);
  ASSERT_EQ(b->CloneRange(a.get(), 0, 0, 0), n);
  ASSERT_EQ(b->Fsync(), 0);
  const uint64_t free0 = vol_->FreeBlocks();
  const int unshare = FALLOC_FL_UNSHARE_RANGE;
  // Two mode bits: -EOPNOTSUPP (vfs_fallocate since Linux 6.13).
  EXPECT_EQ(b->Fallocate(unshare | FALLOC_FL_PUNCH_HOLE, 0, 4096), -EOPNOTSUPP);
  EXPECT_EQ(b->Fallocate(unshare | FALLOC_FL_ZERO_RANGE, 0, 4096), -EOPNOTSUPP);
  // Unshare the middle: those blocks are copied, both files keep the data.
  ASSERT_EQ(b->Fallocate(unshare | FALLOC_FL_KEEP_SIZE, 4 * bsz, 8 * bsz), 0);
  // 8 blocks copied; the other 24 of the COW window stay staged in b's
  // COW fork (the COW extent size hint) until b is closed.
  EXPECT_EQ(vol_->FreeBlocks(), free0 - kCowWindow);
  std::vector<Ext> xb = Extents(b.get());
  ASSERT_EQ(xb.size(), 3u);
  EXPECT_TRUE(xb[0].shared);
  EXPECT_FALSE(xb[1].shared);
  EXPECT_EQ(xb[1].length, 8u * bsz);
  EXPECT_TRUE(xb[2].shared);
  ExpectClean(vol_.get());
  // The rest, plus allocation past EOF (mode 0 semantics: size grows).
  ASSERT_EQ(b->Fallocate(unshare, 0, 2 * n), 0);
  EXPECT_EQ(b->size(), 2 * n);
  for (OpenFile* f : {a.get(), b.get()})
    for (const Ext& x : Extents(f)) EXPECT_FALSE(x.shared);
  EXPECT_EQ(ReadAll(b.get(), 0, n), data);
  EXPECT_EQ(ReadAll(b.get(), n, n), std::string(n, '\0'));
  EXPECT_EQ(ReadAll(a.get(), 0, n), data);
  ExpectClean(vol_.get());
  a->Close();
  b->Close();
  ASSERT_TRUE(vol_->Unmount().ok());
  EXPECT_TRUE(FsckVolume(dev_).clean());
}

// An unshare whose read of the shared blocks fails stops at once, with the
// new COW reservation it made unused: IomapEnd punches it under the
// invalidate lock that fallocate already holds (taking it again was a
// self-deadlock: std::system_error, EDEADLK).
TEST_P(ReflinkTest, FailedUnshareReleasesItsCowReservation) {
  FileHandle ha = CreateFile(vol_.get(), "a"), hb = CreateFile(vol_.get(), "b");
  const int64_t bsz = bs();
  const std::string data = Pattern(16 * bsz, 8);
  {
    std::unique_ptr<OpenFile> a = OpenOrDie(vol_.get(), ha);
    ASSERT_EQ(a->Write(0, data.data(), data.size()), 16 * bsz);
    ASSERT_EQ(a->Fsync(), 0);
    std::unique_ptr<OpenFile> b = OpenOrDie(vol_.get(), hb);
    ASSERT_EQ(b->CloneRange(a.get(), 0, 0, 0), 16 * bsz);
    ASSERT_EQ(b->Fsync(), 0);
  }  // b's cache is dropped with its last close: the unshare must read
  std::unique_ptr<OpenFile> b = OpenOrDie(vol_.get(), hb);
  const uint64_t free0 = vol_->FreeBlocks();
  dev_.SetFailAll(true);
  EXPECT_EQ(b->Fallocate(FALLOC_FL_UNSHARE_RANGE | FALLOC_FL_KEEP_SIZE, 0,
                         16 * bsz),
            -EIO);
  dev_.SetFailAll(false);
  // The range's part of the 32-block COW window is punched; the rest stays
  // in the COW fork (as after any COW write) until b is closed.
  EXPECT_EQ(vol_->ReservedBlocks(hb.ino), kCowWindow - 16);
  EXPECT_EQ(vol_->FreeBlocks(), free0);
  ExpectClean(vol_.get());
  // Once the device is back the unshare works.
  ASSERT_EQ(b->Fallocate(FALLOC_FL_UNSHARE_RANGE | FALLOC_FL_KEEP_SIZE, 0,
                         16 * bsz),
            0);
  for (const Ext& x : Extents(b.get())) EXPECT_FALSE(x.shared);
  EXPECT_EQ(ReadAll(b.get(), 0, 16 * bsz), data);
  ASSERT_EQ(b->Close(), 0);
  EXPECT_EQ(vol_->ReservedBlocks(), 0u);
  ExpectClean(vol_.get());
}

// Writers, mapped stores, clones in both directions, unshares and fsyncs
// from four threads with a 5 ms flusher; afterwards the live checks and
// fsck are clean (and TSAN finds no race: --config=tsan).
TEST_P(ReflinkTest, ConcurrentClonesAndCopyOnWrite) {
  vol_.reset();  // remount with a busy flusher
  VolumeOptions options;
  options.flusher.writeback_interval_ms = 5;
  options.flusher.dirty_expire_ms = 1;
  absl::StatusOr<std::unique_ptr<Volume>> mounted =
      Volume::Mount(dev_, options);
  ASSERT_TRUE(mounted.ok()) << mounted.status();
  vol_ = std::move(*mounted);
  FileHandle h[2] = {CreateFile(vol_.get(), "a"), CreateFile(vol_.get(), "b")};
  std::unique_ptr<OpenFile> f[2] = {OpenOrDie(vol_.get(), h[0]),
                                    OpenOrDie(vol_.get(), h[1])};
  const int64_t bsz = bs();
  // 64 blocks (at least 256 KiB): clones of 16 blocks at block 0, 4, ...,
  // 44 stay inside.
  const std::string data = Pattern(std::max<int64_t>(256 << 10, 64 * bsz), 7);
  for (auto& x : f)
    ASSERT_EQ(x->Write(0, data.data(), data.size()),
              static_cast<int64_t>(data.size()));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t + 1);
      for (int i = 0; i < 60; ++i) {
        OpenFile* a = f[rng() % 2].get();
        OpenFile* b = f[rng() % 2].get();
        const int64_t off = static_cast<int64_t>(rng() % 48) * 4096;
        switch ((t + i) % 4) {
          case 0:
            EXPECT_EQ(a->Write(off + 100, data.data(), 9000), 9000);
            break;
          case 1: {
            const int64_t so = static_cast<int64_t>(rng() % 12) * bsz * 4;
            const int64_t r = b->CloneRange(a, so, so, 16 * bsz);
            EXPECT_TRUE(r == 16 * bsz || (a == b && r == -EINVAL)) << r;
            break;
          }
          case 2:
            EXPECT_EQ(a->MapWrite(off, data.data(), 5000), 5000);
            break;
          default:
            EXPECT_EQ(rng() % 2 ? a->Fsync()
                                : a->Fallocate(FALLOC_FL_UNSHARE_RANGE |
                                                   FALLOC_FL_KEEP_SIZE,
                                               off, 64 << 10),
                      0);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (auto& x : f) ASSERT_EQ(x->Fsync(), 0);
  ExpectClean(vol_.get());
  for (auto& x : f) x->Close();
  ASSERT_TRUE(vol_->Unmount().ok());
  FsckResult r = FsckVolume(dev_);
  EXPECT_TRUE(r.clean()) << r.problems[0];
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, ReflinkTest,
                         ::testing::Values(512u, 1024u, 4096u, 65536u));

// Crash test: random writes (over shared blocks: copy-on-write), mapped
// stores, clones between three files (and within one), unshares,
// truncates, punches and fsyncs; a power cut after a random number of device
// writes; then every byte a completed fsync covered reads as it was, every
// other byte as a value written or cloned to it since, or zero; CheckLive and
// fsck clean (refcounts == references).
struct ModelFile {
  FileHandle h;
  int64_t size = 0, synced_size = 0, max_size = 0, floor = 0;
  std::vector<uint8_t> synced, current;
  std::vector<std::bitset<256>> since_sync;
};

constexpr int64_t kMaxFile = 96 << 10;

void Set(ModelFile* m, int64_t b, uint8_t v) {
  m->current[b] = v;
  m->since_sync[b].set(v);
}

// A clone of a random block-aligned range of file j into file i, checked
// against the VFS rules; the model follows when it succeeds.
void RandomClone(std::mt19937_64& rng, int64_t bs, std::vector<ModelFile>& fs,
                 std::vector<std::unique_ptr<OpenFile>>& open, int i, int j) {
  ModelFile& src = fs[j];
  ModelFile& dst = fs[i];
  if (src.size == 0) return;
  const int64_t so =
      static_cast<int64_t>(rng() % ((src.size + bs - 1) / bs)) * bs;
  const int64_t to_eof = src.size - so;
  int64_t len = 0;  // to EOF
  if (rng() % 2) len = static_cast<int64_t>(rng() % (to_eof / bs + 1)) * bs;
  const int64_t count = len == 0 ? to_eof : len;
  if (count == 0) return;
  const int64_t dpos =
      static_cast<int64_t>(rng() % ((kMaxFile - count) / bs + 1)) * bs;
  const int64_t bcount = (count + bs - 1) / bs * bs;
  int64_t want = count;
  if (i == j && dpos + bcount > so && dpos < so + bcount) want = -EINVAL;
  if (count % bs != 0 && dpos + count < dst.size) want = -EINVAL;
  ASSERT_EQ(open[i]->CloneRange(open[j].get(), so, dpos, len), want);
  if (want < 0) return;
  const std::vector<uint8_t> bytes(src.current.begin() + so,
                                   src.current.begin() + so + count);
  for (int64_t b = 0; b < count; ++b) Set(&dst, dpos + b, bytes[b]);
  dst.size = std::max(dst.size, dpos + count);
  dst.max_size = std::max(dst.max_size, dst.size);
}

// `frozen`: whether the device already lost power (then an fsync that
// returns 0 proves nothing).
void RandomStep(std::mt19937_64& rng, int step, int64_t bs,
                const std::function<bool()>& frozen, std::vector<ModelFile>& fs,
                std::vector<std::unique_ptr<OpenFile>>& open) {
  const int i = static_cast<int>(rng() % fs.size());
  ModelFile& m = fs[i];
  const int kind = static_cast<int>(rng() % 16);
  if (kind < 3) {
    const bool before = frozen();
    if (open[i]->Fsync() == 0 && !before && !frozen()) {
      m.synced = m.current;
      m.synced_size = m.floor = m.size;
      m.since_sync.assign(kMaxFile, {});
    }
  } else if (kind < 7) {
    RandomClone(rng, bs, fs, open, i, static_cast<int>(rng() % fs.size()));
  } else if (kind == 7) {
    const int64_t t = static_cast<int64_t>(rng() % (m.size + 1));
    ASSERT_EQ(open[i]->Truncate(t), 0);
    for (int64_t b = t; b < kMaxFile; ++b) Set(&m, b, 0);
    m.size = t;
    m.floor = std::min(m.floor, t);
  } else if (kind == 8 && m.size > 0) {
    const int64_t p = static_cast<int64_t>(rng() % m.size);
    const int64_t l = 1 + static_cast<int64_t>(rng() % (m.size - p));
    ASSERT_EQ(
        open[i]->Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, p, l),
        0);
    for (int64_t b = p; b < p + l; ++b) Set(&m, b, 0);
  } else if (kind == 10 && m.size > 0) {
    const int64_t p = static_cast<int64_t>(rng() % m.size);
    const int64_t l = 1 + static_cast<int64_t>(rng() % (m.size - p));
    ASSERT_EQ(
        open[i]->Fallocate(FALLOC_FL_UNSHARE_RANGE | FALLOC_FL_KEEP_SIZE, p, l),
        0);
  } else if (kind == 9 && m.size > 0) {
    const int64_t p = static_cast<int64_t>(rng() % m.size);
    const int64_t l =
        1 + static_cast<int64_t>(rng() % std::min<int64_t>(9000, m.size - p));
    const uint8_t v = static_cast<uint8_t>(1 + step + 60 * i);
    const std::string buf(static_cast<size_t>(l), static_cast<char>(v));
    ASSERT_EQ(open[i]->MapWrite(p, buf.data(), buf.size()), l);
    for (int64_t b = p; b < p + l; ++b) Set(&m, b, v);
  } else {
    const int64_t pos = static_cast<int64_t>(rng() % (kMaxFile - 1));
    const int64_t len =
        1 +
        static_cast<int64_t>(rng() % std::min<int64_t>(20000, kMaxFile - pos));
    const uint8_t v = static_cast<uint8_t>(1 + step + 60 * i);
    const std::string buf(static_cast<size_t>(len), static_cast<char>(v));
    ASSERT_EQ(open[i]->Write(pos, buf.data(), buf.size()), len);
    for (int64_t b = pos; b < pos + len; ++b) Set(&m, b, v);
    m.size = std::max(m.size, pos + len);
    m.max_size = std::max(m.max_size, m.size);
  }
}

void CheckFiles(Volume* vol, std::vector<ModelFile>& fs) {
  for (size_t i = 0; i < fs.size(); ++i) {
    ModelFile& m = fs[i];
    std::unique_ptr<OpenFile> f = OpenOrDie(vol, m.h);
    ASSERT_NE(f, nullptr);
    EXPECT_GE(f->size(), m.floor) << "file " << i;
    EXPECT_LE(f->size(), m.max_size) << "file " << i;
    const std::string got = ReadAll(f.get(), 0, kMaxFile);
    for (int64_t b = 0; b < static_cast<int64_t>(got.size()); ++b) {
      const uint8_t g = static_cast<uint8_t>(got[b]);
      if (g == m.synced[b] || m.since_sync[b].test(g) ||
          (g == 0 && b >= m.synced_size))
        continue;
      ADD_FAILURE() << "file " << i << " byte " << b << " reads " << int(g)
                    << ", synced " << int(m.synced[b]);
      break;
    }
  }
}

void ReflinkCrashOnce(uint64_t seed) {
  SCOPED_TRACE(seed);
  std::mt19937_64 rng(seed);
  MemDevice dev(16ull << 20);
  std::vector<ModelFile> files(3);
  const int64_t bs = rng() % 2 ? 4096 : 1024;
  {
    std::unique_ptr<Volume> vol =
        FormatAndMount(&dev, static_cast<uint32_t>(bs));
    ASSERT_NE(vol, nullptr);
    std::vector<std::unique_ptr<OpenFile>> open;
    for (int i = 0; i < 3; ++i) {
      files[i].h = CreateFile(vol.get(), "f" + std::to_string(i));
      files[i].synced.assign(kMaxFile, 0);
      files[i].current.assign(kMaxFile, 0);
      files[i].since_sync.assign(kMaxFile, {});
      open.push_back(OpenOrDie(vol.get(), files[i].h));
    }
    ASSERT_EQ(open[0]->Fsync(), 0);
    dev.CrashAfterWrites(rng() % 150, rng());
    for (int step = 0; step < 40; ++step) {
      RandomStep(
          rng, step, bs, [&dev] { return dev.frozen(); }, files, open);
      if (::testing::Test::HasFatalFailure()) return;
    }
    if (!dev.frozen()) dev.CrashAfterWrites(0, rng());
    open.clear();
  }
  dev.Crash(rng());
  std::unique_ptr<Volume> vol = Remount(&dev);
  ASSERT_NE(vol, nullptr);
  CheckFiles(vol.get(), files);
  ExpectClean(vol.get());
  ASSERT_TRUE(vol->Unmount().ok());
  vol.reset();
  FsckResult r = FsckVolume(dev);
  EXPECT_TRUE(r.clean()) << r.problems[0];
}

TEST(ReflinkCrashTest, FsyncedDataSurvivesCrashes) {
  const auto start = std::chrono::steady_clock::now();
  int runs = 0;
  for (uint64_t seed = 1; seed <= 1500; ++seed) {
    ReflinkCrashOnce(seed * 104729);
    ++runs;
    if (::testing::Test::HasFailure()) break;
    if (std::chrono::steady_clock::now() - start >
        std::chrono::seconds(15 / kSlow))
      break;
  }
  printf("reflink crash points run: %d\n", runs);
}

// The same workload on block::SimDevice in background mode: completions
// out of order on the device thread, never-written sectors read as
// garbage (a remap journaled before its data would show it), and the
// crash while I/O is in flight.
void SimReflinkCrashOnce(uint64_t seed) {
  SCOPED_TRACE(seed);
  std::mt19937_64 rng(seed);
  block::SimOptions so;
  so.capacity_bytes = 16ull << 20;
  so.seed = seed;
  so.background = true;
  so.direct = false;
  auto dev = std::make_unique<block::SimDevice>(so);
  const int64_t bs = rng() % 2 ? 4096 : 1024;
  LayoutOptions layout;
  layout.block_size = static_cast<uint32_t>(bs);
  layout.device_bytes = so.capacity_bytes;
  ASSERT_TRUE(Volume::Format(*dev, layout).ok());
  std::vector<ModelFile> files(3);
  {
    VolumeOptions options;
    options.flusher.writeback_interval_ms = 2;
    options.flusher.dirty_expire_ms = 1;
    absl::StatusOr<std::unique_ptr<Volume>> vol = Volume::Mount(*dev, options);
    ASSERT_TRUE(vol.ok()) << vol.status();
    std::vector<std::unique_ptr<OpenFile>> open;
    for (int i = 0; i < 3; ++i) {
      files[i].h = CreateFile(vol->get(), "f" + std::to_string(i));
      files[i].synced.assign(kMaxFile, 0);
      files[i].current.assign(kMaxFile, 0);
      files[i].since_sync.assign(kMaxFile, {});
      open.push_back(OpenOrDie(vol->get(), files[i].h));
    }
    ASSERT_EQ(open[0]->Fsync(), 0);
    const int crash_step = static_cast<int>(rng() % 40);
    for (int step = 0; step < crash_step; ++step) {
      RandomStep(
          rng, step, bs, [] { return false; }, files, open);
      if (::testing::Test::HasFatalFailure()) return;
    }
    dev->Crash();
    open.clear();
  }
  std::unique_ptr<block::SimDevice> rebooted = dev->Reboot();
  absl::StatusOr<std::unique_ptr<Volume>> vol = Volume::Mount(*rebooted);
  ASSERT_TRUE(vol.ok()) << vol.status();
  CheckFiles(vol->get(), files);
  ExpectClean(vol->get());
  ASSERT_TRUE((*vol)->Unmount().ok());
  vol->reset();
  FsckResult r = FsckVolume(*rebooted);
  EXPECT_TRUE(r.clean()) << r.problems[0];
}

TEST(ReflinkCrashTest, SimDeviceInFlightCrashes) {
  const auto start = std::chrono::steady_clock::now();
  int runs = 0;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    SimReflinkCrashOnce(seed * 7919);
    ++runs;
    if (::testing::Test::HasFailure()) break;
    if (std::chrono::steady_clock::now() - start >
        std::chrono::seconds(8 / kSlow))
      break;
  }
  printf("reflink sim crash points run: %d\n", runs);
}

// Without crashes, the same workload leaves every byte as the model says.
TEST(ReflinkCrashTest, ModelHoldsWithoutCrash) {
  for (uint64_t seed = 1; seed <= 20 / kSlow; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937_64 rng(seed);
    MemDevice dev(16ull << 20);
    const int64_t bs = rng() % 2 ? 4096 : 1024;
    std::unique_ptr<Volume> vol =
        FormatAndMount(&dev, static_cast<uint32_t>(bs));
    std::vector<ModelFile> files(3);
    std::vector<std::unique_ptr<OpenFile>> open;
    for (int i = 0; i < 3; ++i) {
      files[i].h = CreateFile(vol.get(), "f" + std::to_string(i));
      files[i].synced.assign(kMaxFile, 0);
      files[i].current.assign(kMaxFile, 0);
      files[i].since_sync.assign(kMaxFile, {});
      open.push_back(OpenOrDie(vol.get(), files[i].h));
    }
    for (int step = 0; step < 60; ++step) {
      RandomStep(
          rng, step, bs, [&dev] { return dev.frozen(); }, files, open);
      if (::testing::Test::HasFatalFailure()) return;
    }
    ExpectClean(vol.get());
    for (ModelFile& m : files) {
      m.synced = m.current;
      m.synced_size = m.floor = m.max_size = m.size;
      m.since_sync.assign(kMaxFile, {});
    }
    CheckFiles(vol.get(), files);
    open.clear();
    ASSERT_TRUE(vol->Unmount().ok());
    vol.reset();
    FsckResult r = FsckVolume(dev);
    EXPECT_TRUE(r.clean()) << r.problems[0];
    vol = Remount(&dev);
    CheckFiles(vol.get(), files);
    if (::testing::Test::HasFailure()) return;
  }
}

// --- The COW extent size hint and seek over COW-fork extents (4 KiB blocks,
// one block per page).

class CowHintTest : public ::testing::Test {
 protected:
  static constexpr int64_t kBs = 4096;
  void SetUp() override {
    vol_ = FormatAndMount(&dev_, kBs);
    ASSERT_NE(vol_, nullptr);
  }
  // Writes `blocks` blocks of pattern `seed` at block `at` of f.
  void WriteBlocks(OpenFile* f, int64_t at, int64_t blocks, uint32_t seed) {
    const std::string d = Pattern(static_cast<size_t>(blocks * kBs), seed);
    ASSERT_EQ(f->Write(at * kBs, d.data(), d.size()),
              static_cast<int64_t>(d.size()));
  }
  // A 2-block file "a" and a file "b" sharing them at blocks 0-1, 8 blocks
  // long (blocks 2-7 a hole), both written back.
  void MakeSharedPair() {
    ha_ = CreateFile(vol_.get(), "a");
    hb_ = CreateFile(vol_.get(), "b");
    a_ = OpenOrDie(vol_.get(), ha_);
    b_ = OpenOrDie(vol_.get(), hb_);
    WriteBlocks(a_.get(), 0, 2, 11);
    ASSERT_EQ(a_->Fsync(), 0);
    ASSERT_EQ(b_->CloneRange(a_.get(), 0, 0, 2 * kBs), 2 * kBs);
    ASSERT_EQ(b_->Truncate(8 * kBs), 0);
    ASSERT_EQ(b_->Fsync(), 0);
  }
  uint64_t Reserved(FileHandle h) const { return vol_->ReservedBlocks(h.ino); }

  MemDevice dev_{32ull << 20};
  std::unique_ptr<Volume> vol_;
  FileHandle ha_, hb_;
  std::unique_ptr<OpenFile> a_, b_;
};

// generic/284's layout (differential script 091): a write over an unshared
// block and the shared block after it. The COW reservation for the shared
// block covers the aligned 32-block window, so writeback sends the
// unshared block through the COW fork too: it moves to a new block, as on
// XFS. The rest of the window is allocated at writeback and stays in the
// COW fork until close.
TEST_F(CowHintTest, WindowSendsUnsharedNeighbourThroughCowFork) {
  FileHandle hs = CreateFile(vol_.get(), "src"),
             hd = CreateFile(vol_.get(), "dst");
  std::unique_ptr<OpenFile> src = OpenOrDie(vol_.get(), hs);
  std::unique_ptr<OpenFile> dst = OpenOrDie(vol_.get(), hd);
  WriteBlocks(src.get(), 0, 16, 21);
  WriteBlocks(dst.get(), 0, 32, 22);
  ASSERT_EQ(src->Fsync(), 0);
  ASSERT_EQ(dst->Fsync(), 0);
  ASSERT_EQ(dst->CloneRange(src.get(), 0, 16 * kBs, 16 * kBs), 16 * kBs);
  const uint64_t old15 = dst->Bmap(15), old16 = dst->Bmap(16);
  ASSERT_NE(old15, 0u);
  const uint64_t free0 = vol_->FreeBlocks();
  std::string want = ReadAll(dst.get(), 0, 32 * kBs);
  const std::string patch = Pattern(2 * kBs, 23);
  ASSERT_EQ(dst->Write(15 * kBs, patch.data(), patch.size()), 2 * kBs);
  want.replace(15 * kBs, patch.size(), patch);
  // Block 15 was overwritten in place in the cache; block 16 reserved the
  // whole window [0, 32) in the COW fork, nothing in the data fork.
  EXPECT_EQ(Reserved(hd), kCowWindow);
  // st_blocks counts the COW fork too (as XFS: 512 sectors here).
  uint64_t sectors = 0;
  ASSERT_EQ(vol_->StatBlocks(hd, &sectors), 0);
  EXPECT_EQ(sectors, (32 + kCowWindow) * (kBs / 512));
  ExpectClean(vol_.get());
  ASSERT_EQ(dst->Fsync(), 0);
  EXPECT_EQ(Reserved(hd), 0u);
  ASSERT_EQ(vol_->StatBlocks(hd, &sectors), 0);
  EXPECT_EQ(sectors, (32 + kCowWindow - 2) * (kBs / 512));
  EXPECT_NE(dst->Bmap(15), old15);
  EXPECT_NE(dst->Bmap(16), old16);
  EXPECT_EQ(dst->Bmap(16), dst->Bmap(15) + 1);
  // 32 staging blocks allocated, the old block 15 freed (16 is src's).
  EXPECT_EQ(vol_->FreeBlocks(), free0 - kCowWindow + 1);
  std::vector<Ext> x = Extents(dst.get());
  ASSERT_EQ(x.size(), 3u);
  EXPECT_EQ(x[0].logical, 0u);
  EXPECT_EQ(x[0].length, 15u * kBs);
  EXPECT_FALSE(x[0].shared);
  EXPECT_EQ(x[1].logical, 15u * kBs);
  EXPECT_EQ(x[1].length, 2u * kBs);
  EXPECT_FALSE(x[1].shared);
  EXPECT_EQ(x[2].logical, 17u * kBs);
  EXPECT_TRUE(x[2].shared);
  EXPECT_EQ(ReadAll(dst.get(), 0, 32 * kBs), want);
  EXPECT_EQ(ReadAll(src.get(), 0, 16 * kBs), Pattern(16 * kBs, 21));
  ExpectClean(vol_.get());
  // A second write inside the window uses the staged blocks: no new
  // reservation, no new allocation.
  const uint64_t free1 = vol_->FreeBlocks();
  ASSERT_EQ(dst->Write(20 * kBs, patch.data(), kBs), kBs);
  want.replace(20 * kBs, kBs, patch.substr(0, kBs));
  EXPECT_EQ(Reserved(hd), 0u);
  ASSERT_EQ(dst->Fsync(), 0);
  EXPECT_EQ(vol_->FreeBlocks(), free1);
  EXPECT_EQ(dst->Bmap(20), dst->Bmap(15) + 5);
  ExpectClean(vol_.get());
  // Close cancels the COW fork: its staging blocks go back.
  dst->Close();
  EXPECT_EQ(vol_->FreeBlocks(), free0 - 3 + 1);  // blocks 15, 16, 20 new
  dst = OpenOrDie(vol_.get(), hd);
  EXPECT_EQ(ReadAll(dst.get(), 0, 32 * kBs), want);
  ExpectClean(vol_.get());
  src->Close();
  dst->Close();
  ASSERT_TRUE(vol_->Unmount().ok());
  vol_.reset();
  EXPECT_TRUE(FsckVolume(dev_).clean());
}

// A write into a data-fork hole that a COW window covers goes to the COW
// fork (no data-fork delalloc) and lands in the data fork at writeback.
// Data-fork delalloc that a later window covers is replaced at the remap
// and its reservation returned.
TEST_F(CowHintTest, WritesOverHolesInsideTheWindowGoThroughCowFork) {
  MakeSharedPair();
  WriteBlocks(b_.get(), 5, 1, 31);  // hole, no COW yet: data-fork delalloc
  EXPECT_EQ(Reserved(hb_), 1u);
  WriteBlocks(b_.get(), 0, 1, 32);  // shared: window [0, 32)
  EXPECT_EQ(Reserved(hb_), 1 + kCowWindow);
  WriteBlocks(b_.get(), 3, 1, 33);  // hole under the window: COW fork
  EXPECT_EQ(Reserved(hb_), 1 + kCowWindow);
  WriteBlocks(b_.get(), 40, 1, 34);  // hole past the window: data fork
  EXPECT_EQ(Reserved(hb_), 2 + kCowWindow);
  ExpectClean(vol_.get());
  ASSERT_EQ(b_->Fsync(), 0);
  EXPECT_EQ(Reserved(hb_), 0u);
  ExpectClean(vol_.get());
  EXPECT_EQ(ReadAll(b_.get(), 0, kBs), Pattern(kBs, 32));
  EXPECT_EQ(ReadAll(b_.get(), kBs, kBs), Pattern(2 * kBs, 11).substr(kBs));
  EXPECT_EQ(ReadAll(b_.get(), 3 * kBs, kBs), Pattern(kBs, 33));
  EXPECT_EQ(ReadAll(b_.get(), 5 * kBs, kBs), Pattern(kBs, 31));
  EXPECT_EQ(ReadAll(b_.get(), 40 * kBs, kBs), Pattern(kBs, 34));
  EXPECT_EQ(ReadAll(b_.get(), 4 * kBs, kBs), std::string(kBs, '\0'));
  // Blocks 0, 3 and 5 came from the one staging extent of the window.
  EXPECT_EQ(b_->Bmap(3), b_->Bmap(0) + 3);
  EXPECT_EQ(b_->Bmap(5), b_->Bmap(0) + 5);
  a_->Close();
  b_->Close();
  ExpectClean(vol_.get());
  ASSERT_TRUE(vol_->Unmount().ok());
  vol_.reset();
  EXPECT_TRUE(FsckVolume(dev_).clean());
}

// A short write into a new COW reservation (the source faults) punches
// the unused part of it in the COW fork, as xfs_buffered_write_iomap_end
// does for IOMAP_F_NEW | IOMAP_F_SHARED; the window outside the write
// range stays reserved.
TEST_F(CowHintTest, ShortWriteReleasesUnusedCowReservation) {
  FileHandle ha = CreateFile(vol_.get(), "a"), hb = CreateFile(vol_.get(), "b");
  std::unique_ptr<OpenFile> a = OpenOrDie(vol_.get(), ha);
  std::unique_ptr<OpenFile> b = OpenOrDie(vol_.get(), hb);
  WriteBlocks(a.get(), 0, 64, 61);
  ASSERT_EQ(a->Fsync(), 0);
  ASSERT_EQ(b->CloneRange(a.get(), 0, 0, 64 * kBs), 64 * kBs);
  // 20 blocks from block 4: the window is [0, 32), the source faults
  // after 10000 bytes.
  const std::string more = Pattern(20 * kBs, 62);
  iomap::BufferSource src(more.data(), more.size(), 10000);
  const int64_t r = b->WriteFrom(4 * kBs, &src);
  ASSERT_GT(r, 0);
  ASSERT_LT(r, 20 * kBs);
  const uint64_t used = (static_cast<uint64_t>(r) + kBs - 1) / kBs;
  // Kept: [0, 4) before the write, the blocks written, [24, 32) after it.
  EXPECT_EQ(Reserved(hb), 4 + used + 8);
  ExpectClean(vol_.get());
  // Writeback allocates the COW extent holding dirty data ([0, 4 + used));
  // the reservation after the hole the short write punched stays, with no
  // dirty data over it, until close (XFS: until cancelled or the cowblocks
  // scan).
  ASSERT_EQ(b->Fsync(), 0);
  EXPECT_EQ(Reserved(hb), 8u);
  std::string want = Pattern(64 * kBs, 61);
  want.replace(4 * kBs, static_cast<size_t>(r), more.substr(0, r));
  EXPECT_EQ(ReadAll(b.get(), 0, 64 * kBs), want);
  EXPECT_EQ(ReadAll(a.get(), 0, 64 * kBs), Pattern(64 * kBs, 61));
  ExpectClean(vol_.get());
  b->Close();
  EXPECT_EQ(Reserved(hb), 0u);
  ExpectClean(vol_.get());
}

// xfs_bmap_extsize_align: a window that would overlap the COW extent
// before it starts where that extent ends, keeping its length.
TEST_F(CowHintTest, WindowStartsAfterThePreviousCowExtent) {
  MakeSharedPair();
  WriteBlocks(b_.get(), 0, 1, 41);      // window [0, 32)
  ASSERT_EQ(b_->Truncate(6 * kBs), 0);  // cancels [6, 32)
  EXPECT_EQ(Reserved(hb_), 6u);
  // Sharing a block at 12 writes b back (COW fork [1, 6) stays staged).
  ASSERT_EQ(b_->CloneRange(a_.get(), 0, 12 * kBs, kBs), kBs);
  EXPECT_EQ(Reserved(hb_), 0u);
  WriteBlocks(b_.get(), 12, 1, 42);  // window [6, 38), not [0, 32)
  EXPECT_EQ(Reserved(hb_), kCowWindow);
  ExpectClean(vol_.get());
  ASSERT_EQ(b_->Fsync(), 0);
  EXPECT_EQ(ReadAll(b_.get(), 12 * kBs, kBs), Pattern(kBs, 42));
  EXPECT_EQ(ReadAll(a_.get(), 0, kBs), Pattern(2 * kBs, 11).substr(0, kBs));
  ExpectClean(vol_.get());
}

// xfs_seek_iomap_begin: over a data-fork hole, a COW-fork extent is
// reported UNWRITTEN, so the pagecache answers: dirty cached data is data,
// clean cached (zero) pages are data too, uncached blocks are holes. FIEMAP
// (xfs_read_iomap_begin) sees the data fork only.
TEST_F(CowHintTest, SeekReportsCowForkExtentsOverHolesAsUnwritten) {
  MakeSharedPair();
  WriteBlocks(b_.get(), 0, 1, 51);  // window [0, 32) over the hole 2..7
  WriteBlocks(b_.get(), 3, 1, 52);  // dirty, in the COW fork only
  std::vector<uint8_t> buf(kBs);
  ASSERT_EQ(b_->Read(7 * kBs, kBs, buf.data()), kBs);  // clean, cached
  EXPECT_EQ(b_->SeekData(0), 0);
  EXPECT_EQ(b_->SeekHole(0), 2 * kBs);        // block 2: uncached
  EXPECT_EQ(b_->SeekData(2 * kBs), 3 * kBs);  // dirty
  EXPECT_EQ(b_->SeekHole(3 * kBs), 4 * kBs);
  EXPECT_EQ(b_->SeekHole(5 * kBs), 5 * kBs);
  EXPECT_EQ(b_->SeekData(4 * kBs), 7 * kBs);  // clean cached
  EXPECT_EQ(b_->SeekHole(7 * kBs), 8 * kBs);  // EOF
  EXPECT_EQ(b_->SeekData(7 * kBs + 100), 7 * kBs + 100);
  std::vector<Ext> x = Extents(b_.get());
  ASSERT_EQ(x.size(), 1u);
  EXPECT_EQ(x[0].logical, 0u);
  EXPECT_EQ(x[0].length, 2u * kBs);
  EXPECT_TRUE(x[0].shared);
  // After writeback block 3 is data-fork data; the rest of the window is
  // staged in the COW fork, still answered from the cache.
  ASSERT_EQ(b_->Fsync(), 0);
  EXPECT_EQ(b_->SeekData(2 * kBs), 3 * kBs);
  EXPECT_EQ(b_->SeekHole(3 * kBs), 4 * kBs);
  EXPECT_EQ(b_->SeekData(4 * kBs), 7 * kBs);
  x = Extents(b_.get());
  ASSERT_EQ(x.size(), 3u);
  EXPECT_EQ(x[2].logical, 3u * kBs);
  EXPECT_EQ(x[2].length, 1u * kBs);
  // Without a COW fork (cancelled at close) the clean page over the hole
  // is a hole again.
  b_->Close();
  b_ = OpenOrDie(vol_.get(), hb_);
  ASSERT_EQ(b_->Read(7 * kBs, kBs, buf.data()), kBs);
  EXPECT_EQ(b_->SeekData(4 * kBs), -ENXIO);
  EXPECT_EQ(b_->SeekHole(4 * kBs), 4 * kBs);
  ExpectClean(vol_.get());
}

}  // namespace
}  // namespace fs
