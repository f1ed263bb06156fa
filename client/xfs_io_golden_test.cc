// Runs iomapsh's formatting of seek, fiemap and bmap against answers
// recorded from real files on XFS and compares with what xfs_io printed for
// the same files (xfs_io_golden_data.inc).
#include <cerrno>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "client/xfs_io_format.h"
#include "client/xfs_io_parse.h"
#include "gtest/gtest.h"

namespace xfs_io {
namespace {

struct GoldenFile {
  const char* name;
  int64_t size;
  std::vector<FiemapExtent> extents;  // whole file, FIEMAP_FLAG_SYNC
  std::vector<std::pair<int64_t, int64_t>> data;  // SEEK_DATA/HOLE ranges
};

struct GoldenCase {
  const GoldenFile* file;
  const char* command;
  const char* expected;
};

#include "client/xfs_io_golden_data.inc"

// FS_IOC_FIEMAP as XFS answers: extents clipped to the range, LAST on the
// final one when the range was walked to its end.
int FakeFiemap(const GoldenFile& f, uint64_t start, uint64_t length,
               uint32_t count, std::vector<FiemapExtent>* out) {
  const uint64_t end = (length > ~0ULL - start) ? ~0ULL : start + length;
  std::vector<FiemapExtent> found;
  for (const FiemapExtent& e : f.extents) {
    const uint64_t e_end = e.logical + e.length;
    if (e_end <= start || e.logical >= end) continue;
    const uint64_t lo = std::max(e.logical, start);
    const uint64_t hi = std::min(e_end, end);
    found.push_back({lo, e.physical + (lo - e.logical), hi - lo,
                     e.flags & ~kFiemapExtentLast});
  }
  if (found.size() > count) {
    found.resize(count);
  } else if (!found.empty()) {
    found.back().flags |= kFiemapExtentLast;
  }
  *out = found;
  return 0;
}

int64_t FakeLseek(const GoldenFile& f, int64_t off, Whence whence) {
  if (off < 0 || off >= f.size) return -ENXIO;
  for (const auto& [lo, hi] : f.data) {
    if (hi <= off) continue;
    if (whence == Whence::kData) return std::max(lo, off);
    return off >= lo ? hi : off;
  }
  return whence == Whence::kData ? -ENXIO : off;
}

Output RunCase(const GoldenCase& c) {
  const GoldenFile& f = *c.file;
  const std::vector<std::string> argv = BreakLine(c.command);
  Output out;
  if (argv[0] == "seek") {
    SeekArgs args;
    if (!ParseSeek(argv, NumUnits(), &args, &out)) return out;
    return RunSeek(args,
                   [&](int64_t off, Whence w) { return FakeLseek(f, off, w); });
  }
  auto fiemap = [&](uint64_t start, uint64_t len, uint32_t flags,
                    uint32_t count, std::vector<FiemapExtent>* ex) {
    EXPECT_TRUE(flags & kFiemapFlagSync);
    return FakeFiemap(f, start, len, count, ex);
  };
  if (argv[0] == "fiemap") {
    FiemapArgs args;
    if (!ParseFiemap(argv, NumUnits(), &args, &out)) return out;
    return RunFiemap(args, f.name, fiemap, [&] { return f.size; });
  }
  BmapArgs args;
  EXPECT_EQ(argv[0], "bmap");
  if (!ParseBmap(argv, &args, &out)) return out;
  std::vector<FiemapExtent> all;
  fiemap(0, ~0ULL, kFiemapFlagSync, 1u << 20, &all);
  BmapGeometry geometry;
  geometry.ag_blocks_bb = 32768LL * 4096 / 512;
  geometry.ag_count = 4;
  return FormatBmap(args, f.name,
                    BmapFromFiemap(all, f.size, args.prealloc, 4096), geometry);
}

TEST(XfsIoGolden, EveryRecordedCommandMatchesXfsIo) {
  int checked = 0;
  for (const GoldenCase& c : kCases) {
    Output out = RunCase(c);
    EXPECT_EQ(out.out + out.err, c.expected)
        << "file " << c.file->name << ", command '" << c.command << "'";
    EXPECT_FALSE(out.failed) << c.command;
    checked++;
  }
  EXPECT_GE(checked, 40);
}

}  // namespace
}  // namespace xfs_io
