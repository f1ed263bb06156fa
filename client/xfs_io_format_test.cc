#include "client/xfs_io_format.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <map>

#include "gtest/gtest.h"

namespace xfs_io {
namespace {

timeval Usec(long usec) { return timeval{usec / 1000000, usec % 1000000}; }

TEST(XfsIoFormat, NumLen) {
  EXPECT_EQ(NumLen(0, 10), 1);
  EXPECT_EQ(NumLen(9, 10), 1);
  EXPECT_EQ(NumLen(10, 10), 2);
  EXPECT_EQ(NumLen(0x800, 16), 3);
  EXPECT_EQ(NumLen(0x2001, 16), 4);
}

TEST(XfsIoFormat, CvtNum) {
  EXPECT_EQ(CvtNum(4096, 512, "0"), 0);
  EXPECT_EQ(CvtNum(4096, 512, "4096"), 4096);
  EXPECT_EQ(CvtNum(4096, 512, "0x1000"), 4096);
  EXPECT_EQ(CvtNum(4096, 512, "64k"), 65536);
  EXPECT_EQ(CvtNum(4096, 512, "64K"), 65536);
  EXPECT_EQ(CvtNum(4096, 512, "1m"), 1 << 20);
  EXPECT_EQ(CvtNum(4096, 512, "3g"), 3LL << 30);
  EXPECT_EQ(CvtNum(4096, 512, "2t"), 2LL << 40);
  EXPECT_EQ(CvtNum(4096, 512, "2b"), 8192);
  EXPECT_EQ(CvtNum(4096, 512, "3s"), 1536);
  EXPECT_EQ(CvtNum(4096, 512, "zz"), -1);
  EXPECT_EQ(CvtNum(4096, 512, ""), -1);
  EXPECT_EQ(CvtNum(4096, 512, "4kb"), -1);
  EXPECT_EQ(CvtNum(4096, 512, "4q"), -1);
}

TEST(XfsIoFormat, CvtStr) {
  EXPECT_EQ(CvtStr(65536), "64 KiB");
  EXPECT_EQ(CvtStr(10000), "10 KiB");  // whole numbers print with %.f
  EXPECT_EQ(CvtStr(32), "32.000000 bytes");
  EXPECT_EQ(CvtStr(0), "0.000000 bytes");
  EXPECT_EQ(CvtStr(1536.5), "1.500 KiB");
  EXPECT_EQ(CvtStr(3.0 * (1LL << 30)), "3.000 GiB");  // recorded: > INT_MAX
  EXPECT_EQ(CvtStr(1.0 * (1LL << 30)), "1 GiB");
  EXPECT_EQ(CvtStr(5.0 * (1LL << 40)), "5.000 TiB");  // beyond int
}

TEST(XfsIoFormat, TimeStr) {
  EXPECT_EQ(TimeStr(Usec(0), false), "0.0000 sec");
  EXPECT_EQ(TimeStr(Usec(66), false), "0.0000 sec");
  EXPECT_EQ(TimeStr(Usec(738), false), "0.0007 sec");
  EXPECT_EQ(TimeStr(Usec(1500000), false), "0:00:01.50");
  EXPECT_EQ(TimeStr(Usec(3723010000L), false), "1:02:03.01");
  EXPECT_EQ(TimeStr(Usec(66), true), "0:00:00.00");
}

// Lines xfs_io printed here; the elapsed time is recovered from the ops
// rate it printed (ops / rate).
TEST(XfsIoFormat, IoReportMatchesRecordedXfsIo) {
  EXPECT_EQ(IoReport("wrote", Usec(66), 0, 65536, 65536, 16, false),
            "wrote 65536/65536 bytes at offset 0\n"
            "64 KiB, 16 ops; 0.0000 sec (946.970 MiB/sec and 242424.2424 "
            "ops/sec)\n");
  EXPECT_EQ(IoReport("read", Usec(25), 5, 10000, 10000, 4, false),
            "read 10000/10000 bytes at offset 5\n"
            "10 KiB, 4 ops; 0.0000 sec (381 MiB/sec and 160000.0000 "
            "ops/sec)\n");
  EXPECT_EQ(IoReport("read", Usec(320), 1050000, 100000, 6768, 2, false),
            "read 6768/100000 bytes at offset 1050000\n"
            "7 KiB, 2 ops; 0.0003 sec (20 MiB/sec and 6250.0000 ops/sec)\n");
  EXPECT_EQ(IoReport("read", Usec(9), 0, 32, 32, 1, false),
            "read 32/32 bytes at offset 0\n"
            "32.000000 bytes, 1 ops; 0.0000 sec (3.391 MiB/sec and "
            "111111.1111 ops/sec)\n");
  EXPECT_EQ(IoReport("read", Usec(30), 0, 20, 20, 1, false),
            "read 20/20 bytes at offset 0\n"
            "20.000000 bytes, 1 ops; 0.0000 sec (651.042 KiB/sec and "
            "33333.3333 ops/sec)\n");
  EXPECT_EQ(IoReport("linked", Usec(738), 65536, 65536, 65536, 1, false),
            "linked 65536/65536 bytes at offset 65536\n"
            "64 KiB, 1 ops; 0.0007 sec (84.688 MiB/sec and 1355.0136 "
            "ops/sec)\n");
  EXPECT_EQ(IoReport("read", Usec(12), 9000000, 100000, 0, 0, false),
            "read 0/100000 bytes at offset 9000000\n"
            "0.000000 bytes, 0 ops; 0.0000 sec (0.000000 bytes/sec and "
            "0.0000 ops/sec)\n");
}

TEST(XfsIoFormat, IoReportCompact) {
  EXPECT_EQ(IoReport("wrote", Usec(500000), 0, 4096, 4096, 1, true),
            "4096,1,0:00:00.50,8192.000,2.000\n");
}

TEST(XfsIoFormat, DumpBufferMatchesRecordedXfsIo) {
  EXPECT_EQ(DumpBuffer(0, std::string(20, 'A')),
            "00000000:  41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41  "
            "AAAAAAAAAAAAAAAA\n"
            "00000010:  41 41 41 41  AAAA\n");
  EXPECT_EQ(DumpBuffer(0, std::string(32, '\xab')),
            "00000000:  ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab  "
            "................\n"
            "00000010:  ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab  "
            "................\n");
  EXPECT_EQ(DumpBuffer(0x1000, std::string("a b-1\0", 6)),
            "00001000:  61 20 62 2d 31 00  a.b.1.\n");
  EXPECT_EQ(DumpBuffer(0, ""), "");
}

TEST(XfsIoFormat, BreakLineSplitsOnSpacesOnly) {
  EXPECT_EQ(BreakLine("pwrite  -S 0xab 0 64k"),
            (std::vector<std::string>{"pwrite", "-S", "0xab", "0", "64k"}));
  EXPECT_EQ(BreakLine("   "), std::vector<std::string>{});
  EXPECT_EQ(BreakLine("a\tb"), std::vector<std::string>{"a\tb"});
  EXPECT_EQ(BreakLine(" x "), std::vector<std::string>{"x"});
}

TEST(XfsIoFormat, UsageAndArgCountMatchRecordedXfsIo) {
  EXPECT_EQ(Usage("seek", "-a | -d | -h [-r] off",
                  "locate the next data and/or hole"),
            "seek -a | -d | -h [-r] off -- locate the next data and/or "
            "hole\n");
  EXPECT_EQ(BadArgCount("pwrite", 0, 2, -1),
            "bad argument count 0 to pwrite, expected at least 2 arguments\n");
  EXPECT_EQ(BadArgCount("seek", 1, 2, 5),
            "bad argument count 1 to seek, expected between 2 and 5 "
            "arguments\n");
  EXPECT_EQ(BadArgCount("fsync", 1, 0, 0),
            "bad argument count 1 to fsync, expected 0 arguments\n");
  EXPECT_EQ(BadArgCount("seek", 2, 2, 5), "");
}

TEST(XfsIoFormat, StatMatchesRecordedXfsIoForeignFile) {
  setenv("TZ", "UTC", 1);
  StatInfo info;
  info.path = "/tmp/x";
  info.sync = true;
  info.read_only = true;
  info.ino = 10953028;
  info.type = FileTypeName(S_IFREG);
  info.size = 1056768;
  info.blocks = 144;
  info.atime_sec = info.mtime_sec = info.ctime_sec = 1795463891;
  const std::string base =
      "fd.path = \"/tmp/x\"\n"
      "fd.flags = sync,non-direct,read-only\n"
      "stat.ino = 10953028\n"
      "stat.type = regular file\n"
      "stat.size = 1056768\n"
      "stat.blocks = 144\n";
  EXPECT_EQ(FormatStat(info, false), base);
  EXPECT_EQ(FormatStat(info, true), base +
                                        "stat.atime = Mon Nov 23 19:58:11 "
                                        "2026\n"
                                        "stat.mtime = Mon Nov 23 19:58:11 "
                                        "2026\n"
                                        "stat.ctime = Mon Nov 23 19:58:11 "
                                        "2026\n");
  info.sync = info.read_only = false;
  info.direct = info.append = true;
  EXPECT_NE(FormatStat(info, false)
                .find("fd.flags = non-sync,direct,read-write,append-only\n"),
            std::string::npos);
}

TEST(XfsIoFormat, StatFsMatchesRecordedXfsIoForeignFile) {
  StatFsInfo info{"/tmp/x", 4096,     66053021, 20857949,
                  16777216, 16359482, 0x1020};
  EXPECT_EQ(FormatStatFs(info),
            "fd.path = \"/tmp/x\"\n"
            "statfs.f_bsize = 4096\n"
            "statfs.f_blocks = 66053021\n"
            "statfs.f_bavail = 20857949\n"
            "statfs.f_files = 16777216\n"
            "statfs.f_ffree = 16359482\n"
            "statfs.f_flags = 0x1020\n");
}

TEST(XfsIoFormat, FileTypeNames) {
  EXPECT_EQ(FileTypeName(S_IFDIR), "directory");
  EXPECT_EQ(FileTypeName(S_IFLNK), "symbolic link");
  EXPECT_EQ(FileTypeName(S_IFREG | 0644), "regular file");
}

TEST(XfsIoFormat, Perror) {
  EXPECT_EQ(Perror("pwrite", ENOSPC), "pwrite: No space left on device\n");
  EXPECT_EQ(Perror("fallocate", -EOPNOTSUPP),
            "fallocate: Operation not supported\n");
  EXPECT_EQ(Perror("", EIO), "Input/output error\n");
}

// seek's error row: "ERR\t<start>\t" on stdout, strerror on stderr.
TEST(XfsIoFormat, SeekErrorRow) {
  SeekArgs args;
  args.data = true;
  args.offset = 7;
  Output out = RunSeek(args, [](int64_t, Whence) -> int64_t { return -EIO; });
  EXPECT_EQ(out.out, "Whence\tResult\nERR\t7\t");
  EXPECT_EQ(out.err, "Input/output error\n");
}

TEST(XfsIoFormat, SeekRejectsResultBeforeStart) {
  SeekArgs args;
  args.hole = true;
  args.offset = 8192;
  Output out = RunSeek(args, [](int64_t, Whence) -> int64_t { return 4096; });
  EXPECT_EQ(out.out, "");
  EXPECT_EQ(out.err,
            "Invalid seek result: lseek(<fd>, 8192, SEEK_HOLE) = 4096\n");
}

TEST(XfsIoFormat, FiemapErrorMessage) {
  FiemapArgs args;
  Output out = RunFiemap(
      args, "f",
      [](uint64_t, uint64_t, uint32_t, uint32_t, std::vector<FiemapExtent>*) {
        return -EBADR;
      },
      [] { return int64_t{0}; });
  EXPECT_TRUE(out.failed);
  EXPECT_EQ(out.out, "f:\n");
  EXPECT_EQ(out.err,
            "iomapsh: ioctl(FS_IOC_FIEMAP) [\"f\"]: Invalid request "
            "descriptor\n");
}

// The -v column widths come from the first batch only: a wide extent in a
// later batch overflows its column, as in xfs_io.
TEST(XfsIoFormat, FiemapWidthsFromFirstBatchOnly) {
  std::vector<FiemapExtent> all;
  for (uint64_t i = 0; i < 33; i++) {
    all.push_back({i * 8192, 1 << 20, 4096, 0});
  }
  all.back().logical = 1ULL << 40;
  all.back().flags = kFiemapExtentLast;
  size_t calls = 0;
  FiemapArgs args;
  args.verbose = true;
  Output out = RunFiemap(
      args, "f",
      [&](uint64_t start, uint64_t, uint32_t, uint32_t count,
          std::vector<FiemapExtent>* ex) {
        calls++;
        ex->clear();
        for (const auto& e : all) {
          if (e.logical >= start && ex->size() < count) ex->push_back(e);
        }
        return 0;
      },
      [] { return int64_t{(1LL << 40) + 4096}; });
  EXPECT_EQ(calls, 2u);
  EXPECT_NE(out.out.find("  64: [2147483648..2147483655]: 2048..2055"),
            std::string::npos)
      << out.out;
}

TEST(XfsIoFormat, BmapFromFiemapHolesAndFlags) {
  std::vector<FiemapExtent> ex = {
      {4096, 1 << 20, 4096, 0},
      {8192, 2 << 20, 8192, kFiemapExtentUnwritten | kFiemapExtentShared}};
  auto m = BmapFromFiemap(ex, 20000, true, 4096);
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0].block, -1);  // leading hole
  EXPECT_EQ(m[0].length, 8);
  EXPECT_EQ(m[1].block, 2048);
  EXPECT_TRUE(m[2].prealloc);
  EXPECT_TRUE(m[2].shared);
  EXPECT_EQ(m[3].block, -1);  // hole to EOF rounded up to the block
  EXPECT_EQ(m[3].offset, 32);
  EXPECT_EQ(m[3].length, 8);
  EXPECT_FALSE(BmapFromFiemap(ex, 20000, false, 4096)[2].prealloc);
  EXPECT_TRUE(BmapFromFiemap({}, 1 << 20, true, 4096).empty());
}

TEST(XfsIoFormat, BmapDelallocRows) {
  std::vector<BmapEntry> m = {{0, 8, -2, false, false}};
  BmapArgs args;
  EXPECT_EQ(FormatBmap(args, "f", m, BmapGeometry()).out,
            "f:\n\t0: [0..7]: delalloc\n");
}

TEST(XfsIoFormat, BmapStripeFlags) {
  std::vector<BmapEntry> m = {{0, 8, 12, false, false}};
  BmapArgs args;
  args.verbose = 1;
  BmapGeometry g;
  g.ag_blocks_bb = 1 << 20;
  g.sunit_bb = 16;
  g.swidth_bb = 64;
  EXPECT_EQ(FormatBmap(args, "f", m, g).out,
            "f:\n"
            " EXT: FILE-OFFSET      BLOCK-RANGE      AG AG-OFFSET        "
            "TOTAL FLAGS\n"
            "   0: [0..7]:          12..19            0 (12..19)             "
            "8 001111\n");
}

}  // namespace
}  // namespace xfs_io
