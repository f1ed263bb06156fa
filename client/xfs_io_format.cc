#include "client/xfs_io_format.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace xfs_io {
namespace {

// printf into a std::string.
__attribute__((format(printf, 1, 2))) std::string Fmt(const char* fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof(small), fmt, ap);
  va_end(ap);
  if (n < 0) return std::string();
  if (n < static_cast<int>(sizeof(small))) return std::string(small, n);
  std::string big(n + 1, '\0');
  va_start(ap, fmt);
  vsnprintf(&big[0], big.size(), fmt, ap);
  va_end(ap);
  big.resize(n);
  return big;
}

constexpr long long kKiB = 1LL << 10;
constexpr long long kMiB = 1LL << 20;
constexpr long long kGiB = 1LL << 30;
constexpr long long kTiB = 1LL << 40;
constexpr long long kPiB = 1LL << 50;
constexpr long long kEiB = 1LL << 60;

double TimevalSeconds(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) +
         static_cast<double>(tv.tv_usec) / 1000000.0;
}

// xfs_io's `(double)(int)value` test, with the x86 result for values that
// do not fit an int (INT_MIN), so huge or infinite values are "imprecise".
bool IsWhole(double value) {
  if (!std::isfinite(value) || value >= 2147483648.0 || value < -2147483648.0) {
    return false;
  }
  return value * 1000 == static_cast<double>(static_cast<int>(value)) * 1000;
}

// BTOBBT: bytes to 512-byte basic blocks, truncating.
uint64_t ToBB(uint64_t bytes) { return bytes >> 9; }

}  // namespace

// ------------------------------------------------------------ numbers

int NumLen(uint64_t value, int base) {
  int len = 0;
  for (uint64_t v = value; v > 0; v /= base) len++;
  return len == 0 ? 1 : len;
}

int64_t CvtNum(int64_t block_size, int64_t sector_size, const std::string& s) {
  const char* str = s.c_str();
  char* end = nullptr;
  long long value = strtoll(str, &end, 0);
  if (value == 0 && end == str) return -1;
  if (*end == '\0') return value;
  if (end[1] != '\0') return -1;
  switch (tolower(static_cast<unsigned char>(*end))) {
    case 'b':
      return value * block_size;
    case 's':
      return value * sector_size;
    case 'k':
      return value * kKiB;
    case 'm':
      return value * kMiB;
    case 'g':
      return value * kGiB;
    case 't':
      return value * kTiB;
    case 'p':
      return value * kPiB;
    case 'e':
      return value * kEiB;
    default:
      return -1;
  }
}

std::string CvtStr(double value) {
  struct Unit {
    long long size;
    const char* name;
  };
  static const Unit kUnits[] = {{kEiB, "EiB"}, {kPiB, "PiB"}, {kTiB, "TiB"},
                                {kGiB, "GiB"}, {kMiB, "MiB"}, {kKiB, "KiB"}};
  const bool precise = IsWhole(value);
  for (const Unit& unit : kUnits) {
    if (value >= static_cast<double>(unit.size)) {
      double scaled = value / unit.size;
      return precise ? Fmt("%.f %s", scaled, unit.name)
                     : Fmt("%.3f %s", scaled, unit.name);
    }
  }
  return Fmt("%f bytes", value);
}

std::string TimeStr(const timeval& elapsed, bool fixed) {
  unsigned secs = static_cast<unsigned>(elapsed.tv_sec);
  unsigned usecs = static_cast<unsigned>(elapsed.tv_usec);
  if (fixed || elapsed.tv_sec) {
    return Fmt("%u:%02u:%02u.%02u", secs / 3600, (secs % 3600) / 60, secs % 60,
               usecs / 1000 / 10);
  }
  return Fmt("0.%04u sec", usecs / 100);
}

std::string IoReport(const std::string& verb, const timeval& elapsed,
                     int64_t offset, int64_t count, int64_t total, int ops,
                     bool compact) {
  const double secs = TimevalSeconds(elapsed);
  const double bytes_rate = static_cast<double>(total) / secs;
  const double ops_rate = static_cast<double>(ops) / secs;
  const std::string ts = TimeStr(elapsed, compact);
  if (compact) {
    return Fmt("%lld,%d,%s,%.3f,%.3f\n", static_cast<long long>(total), ops,
               ts.c_str(), bytes_rate, ops_rate);
  }
  std::string out =
      Fmt("%s %lld/%lld bytes at offset %lld\n", verb.c_str(),
          static_cast<long long>(total), static_cast<long long>(count),
          static_cast<long long>(offset));
  out += Fmt("%s, %d ops; %s (%s/sec and %.4f ops/sec)\n",
             CvtStr(static_cast<double>(total)).c_str(), ops, ts.c_str(),
             CvtStr(bytes_rate).c_str(), ops_rate);
  return out;
}

std::string DumpBuffer(int64_t offset, const std::string& data) {
  std::string out;
  const size_t len = data.size();
  for (size_t i = 0; i < len; i += 16) {
    out += Fmt("%08llx:  ", static_cast<unsigned long long>(offset + i));
    size_t n = std::min<size_t>(16, len - i);
    for (size_t j = 0; j < n; j++) {
      out += Fmt("%02x ", static_cast<unsigned char>(data[i + j]));
    }
    out += ' ';
    for (size_t j = 0; j < n; j++) {
      unsigned char c = static_cast<unsigned char>(data[i + j]);
      out += isalnum(c) ? static_cast<char>(c) : '.';
    }
    out += '\n';
  }
  return out;
}

std::vector<std::string> BreakLine(const std::string& line) {
  std::vector<std::string> words;
  size_t pos = 0;
  while (pos <= line.size()) {
    size_t space = line.find(' ', pos);
    if (space == std::string::npos) space = line.size();
    if (space > pos) words.push_back(line.substr(pos, space - pos));
    pos = space + 1;
  }
  return words;
}

std::string Usage(const std::string& name, const std::string& args,
                  const std::string& oneline) {
  return name + " " + args + " -- " + oneline + "\n";
}

std::string BadArgCount(const std::string& cmd, int count, int argmin,
                        int argmax) {
  if (count >= argmin && (argmax == -1 || count <= argmax)) return "";
  if (argmax == -1) {
    return Fmt("bad argument count %d to %s, expected at least %d arguments\n",
               count, cmd.c_str(), argmin);
  }
  if (argmin == argmax) {
    return Fmt("bad argument count %d to %s, expected %d arguments\n", count,
               cmd.c_str(), argmin);
  }
  return Fmt(
      "bad argument count %d to %s, expected between %d and %d arguments\n",
      count, cmd.c_str(), argmin, argmax);
}

std::string Perror(const std::string& what, int errnum) {
  if (errnum < 0) errnum = -errnum;
  if (what.empty()) return std::string(strerror(errnum)) + "\n";
  return what + ": " + strerror(errnum) + "\n";
}

std::string FileTypeName(unsigned mode_type) {
  switch (mode_type & S_IFMT) {
    case S_IFSOCK:
      return "socket";
    case S_IFDIR:
      return "directory";
    case S_IFCHR:
      return "char device";
    case S_IFBLK:
      return "block device";
    case S_IFREG:
      return "regular file";
    case S_IFLNK:
      return "symbolic link";
    case S_IFIFO:
      return "fifo";
    default:
      return "unknown";
  }
}

// ------------------------------------------------------------ stat

namespace {

std::string CtimeString(int64_t secs) {
  time_t t = static_cast<time_t>(secs);
  char buf[64];
  if (ctime_r(&t, buf) == nullptr) return "?";
  std::string s(buf);
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace

std::string FormatStat(const StatInfo& info, bool verbose) {
  std::string out = Fmt("fd.path = \"%s\"\n", info.path.c_str());
  out += Fmt("fd.flags = %s,%s,%s%s\n", info.sync ? "sync" : "non-sync",
             info.direct ? "direct" : "non-direct",
             info.read_only ? "read-only" : "read-write",
             info.append ? ",append-only" : "");
  out += Fmt("stat.ino = %llu\n", static_cast<unsigned long long>(info.ino));
  out += Fmt("stat.type = %s\n", info.type.c_str());
  out += Fmt("stat.size = %lld\n", static_cast<long long>(info.size));
  out += Fmt("stat.blocks = %lld\n", static_cast<long long>(info.blocks));
  if (verbose) {
    out += "stat.atime = " + CtimeString(info.atime_sec) + "\n";
    out += "stat.mtime = " + CtimeString(info.mtime_sec) + "\n";
    out += "stat.ctime = " + CtimeString(info.ctime_sec) + "\n";
  }
  return out;
}

std::string FormatStatFs(const StatFsInfo& info) {
  std::string out = Fmt("fd.path = \"%s\"\n", info.path.c_str());
  out += Fmt("statfs.f_bsize = %llu\n",
             static_cast<unsigned long long>(info.bsize));
  out += Fmt("statfs.f_blocks = %llu\n",
             static_cast<unsigned long long>(info.blocks));
  out += Fmt("statfs.f_bavail = %llu\n",
             static_cast<unsigned long long>(info.bavail));
  out += Fmt("statfs.f_files = %llu\n",
             static_cast<unsigned long long>(info.files));
  out += Fmt("statfs.f_ffree = %llu\n",
             static_cast<unsigned long long>(info.ffree));
  out += Fmt("statfs.f_flags = 0x%llx\n",
             static_cast<unsigned long long>(info.flags));
  return out;
}

// ------------------------------------------------------------ seek

namespace {

const char* WhenceName(int current) { return current == 0 ? "DATA" : "HOLE"; }

// One table row; `result` is an offset or -errno.
void SeekLine(const SeekArgs& args, int current, int64_t start, int64_t result,
              Output* out) {
  const char* type = WhenceName(current);
  const long long s = static_cast<long long>(start);
  if (result >= 0) {
    out->out +=
        args.show_start
            ? Fmt("%s\t%lld\t%lld\n", type, s, static_cast<long long>(result))
            : Fmt("%s\t%lld\n", type, static_cast<long long>(result));
  } else if (result == -ENXIO) {
    out->out += args.show_start ? Fmt("%s\t%lld\tEOF\n", type, s)
                                : Fmt("%s\tEOF\n", type);
  } else {
    out->out += Fmt("ERR\t%lld\t", s);
    out->err += Perror("", static_cast<int>(-result));
  }
}

void BadSeekResult(int current, int64_t start, int64_t result, Output* out) {
  out->err += Fmt("Invalid seek result: lseek(<fd>, %lld, SEEK_%s) = %lld\n",
                  static_cast<long long>(start), WhenceName(current),
                  static_cast<long long>(result));
}

}  // namespace

Output RunSeek(const SeekArgs& args, const SeekFn& lseek) {
  constexpr int kData = 0, kHole = 1;
  constexpr unsigned kDFlag = 1, kHFlag = 2, kRFlag = 4;
  const unsigned masks[2] = {kDFlag, kHFlag};
  const Whence whences[2] = {Whence::kData, Whence::kHole};
  unsigned flag = (args.data ? kDFlag : 0) | (args.hole ? kHFlag : 0) |
                  (args.repeat ? kRFlag : 0);
  Output out;
  int64_t start = args.offset;
  int64_t result = 0;
  int current = kData;
  bool found = false;
  if (flag & kHFlag) {
    current = kHole;
    result = lseek(start, Whence::kHole);
    if (result >= 0 && result < start) {
      BadSeekResult(current, start, result, &out);
      return out;
    }
    found = (start == result) || !(flag & kDFlag);
  }
  if (!found) {
    current = kData;
    result = lseek(start, Whence::kData);
    if (result >= 0 && result < start) {
      BadSeekResult(current, start, result, &out);
      return out;
    }
  }
  out.out += args.show_start ? "Whence\tStart\tResult\n" : "Whence\tResult\n";
  for (int c = 0; flag; c++) {
    if (result < 0) {
      if (result != -ENXIO || c == 0) {
        SeekLine(args, current, start, result, &out);
      }
      return out;
    }
    if (flag & masks[current]) SeekLine(args, current, start, result, &out);
    if (!(flag & kRFlag)) flag &= ~masks[current];
    current ^= 1;
    start = result;
    result = lseek(start, whences[current]);
    if (result >= 0 && result <= start) {
      BadSeekResult(current, start, result, &out);
      return out;
    }
  }
  return out;
}

// ------------------------------------------------------------ fiemap

namespace {

struct FiemapWidths {
  int foff = 16;
  int boff = 16;
  int tot = 5;
  int flg = 5;
};

void CalcFiemapWidths(const std::vector<FiemapExtent>& batch, FiemapWidths* w) {
  for (const FiemapExtent& e : batch) {
    uint64_t logical = ToBB(e.logical), len = ToBB(e.length);
    uint64_t block = ToBB(e.physical);
    std::string lbuf = Fmt("[%llu..%llu]", (unsigned long long)logical,
                           (unsigned long long)(logical + len - 1));
    std::string bbuf = Fmt("%llu..%llu", (unsigned long long)block,
                           (unsigned long long)(block + len - 1));
    w->foff = std::max<int>(w->foff, lbuf.size());
    w->boff = std::max<int>(w->boff, bbuf.size());
    w->tot = std::max(w->tot, NumLen(len, 10));
    w->flg = std::max(w->flg, NumLen(e.flags, 16));
    if (e.flags & kFiemapExtentLast) break;
  }
}

// A hole [llast, lstart) in basic blocks.
std::string FiemapHole(const FiemapWidths& w, int cur, bool lengths, bool plain,
                       uint64_t llast, uint64_t lstart) {
  if (plain) {
    std::string s =
        Fmt("\t%d: [%llu..%llu]: hole", cur, (unsigned long long)llast,
            (unsigned long long)(lstart - 1));
    return s + (lengths ? Fmt(" %llu blocks\n",
                              (unsigned long long)(lstart - llast))
                        : "\n");
  }
  std::string lbuf = Fmt("[%llu..%llu]:", (unsigned long long)llast,
                         (unsigned long long)(lstart - 1));
  return Fmt("%4d: %-*s %-*s %*llu\n", cur, w.foff, lbuf.c_str(), w.boff,
             "hole", w.tot, (unsigned long long)(lstart - llast));
}

// Prints one extent (and the hole before it); returns the lines printed.
int FiemapExtentLines(const FiemapArgs& args, const FiemapWidths& w,
                      const FiemapExtent& e, int cur, uint64_t last_logical,
                      std::string* out) {
  const uint64_t llast = ToBB(last_logical), lstart = ToBB(e.logical);
  const uint64_t len = ToBB(e.length), block = ToBB(e.physical);
  int printed = 0;
  if (args.verbose && cur == 0) {
    *out += Fmt("%4s: %-*s %-*s %*s %*s\n", "EXT", w.foff, "FILE-OFFSET",
                w.boff, "BLOCK-RANGE", w.tot, "TOTAL", w.flg, "FLAGS");
  }
  if (lstart > llast) {
    *out += FiemapHole(w, cur, args.lengths && !args.verbose, !args.verbose,
                       llast, lstart);
    cur++;
    printed++;
  }
  if (cur == args.max_extents) return printed;
  if (args.verbose) {
    std::string lbuf = Fmt("[%llu..%llu]:", (unsigned long long)lstart,
                           (unsigned long long)(lstart + len - 1));
    std::string bbuf = Fmt("%llu..%llu", (unsigned long long)block,
                           (unsigned long long)(block + len - 1));
    std::string flg = Fmt("0x%x", e.flags);
    *out +=
        Fmt("%4d: %-*s %-*s %*llu %*s\n", cur, w.foff, lbuf.c_str(), w.boff,
            bbuf.c_str(), w.tot, (unsigned long long)len, w.flg, flg.c_str());
  } else {
    *out +=
        Fmt("\t%d: [%llu..%llu]: %llu..%llu", cur, (unsigned long long)lstart,
            (unsigned long long)(lstart + len - 1), (unsigned long long)block,
            (unsigned long long)(block + len - 1));
    *out +=
        args.lengths ? Fmt(" %llu blocks\n", (unsigned long long)len) : "\n";
  }
  return printed + 1;
}

}  // namespace

Output RunFiemap(const FiemapArgs& args, const std::string& name,
                 const FiemapFn& fiemap,
                 const std::function<int64_t()>& file_size) {
  Output out;
  FiemapWidths w;
  int cur = 0;
  uint64_t last_logical = static_cast<uint64_t>(args.offset);
  uint64_t range_end = args.length < 0
                           ? ~0ULL
                           : static_cast<uint64_t>(args.offset + args.length);
  out.out += name + ":\n";
  bool done = false;
  while (!done) {
    std::vector<FiemapExtent> batch;
    const uint32_t flags =
        kFiemapFlagSync | (args.xattr ? kFiemapFlagXattr : 0);
    int ret = fiemap(last_logical, range_end - last_logical, flags,
                     kFiemapBatch, &batch);
    if (ret < 0) {
      out.err += Fmt("iomapsh: ioctl(FS_IOC_FIEMAP) [\"%s\"]: %s\n",
                     name.c_str(), strerror(-ret));
      out.failed = true;
      return out;
    }
    if (batch.empty()) break;
    for (const FiemapExtent& e : batch) {
      if (args.verbose && cur == 0) CalcFiemapWidths(batch, &w);
      cur += FiemapExtentLines(args, w, e, cur, last_logical, &out.out);
      last_logical = e.logical + e.length;
      if ((e.flags & kFiemapExtentLast) || last_logical >= range_end ||
          cur == args.max_extents) {
        done = true;
        break;
      }
    }
  }
  if (cur == args.max_extents) return out;
  uint64_t size = static_cast<uint64_t>(file_size());
  range_end = std::min(range_end, size);
  if (cur && last_logical < range_end) {
    out.out += FiemapHole(w, cur, args.lengths, !args.verbose,
                          ToBB(last_logical), ToBB(range_end));
  }
  return out;
}

// ------------------------------------------------------------ bmap

std::vector<BmapEntry> BmapFromFiemap(const std::vector<FiemapExtent>& extents,
                                      int64_t file_size, bool report_prealloc,
                                      int64_t block_size) {
  std::vector<BmapEntry> entries;
  // XFS reports nothing, not even a hole, for a file without extents.
  if (extents.empty()) return entries;
  int64_t pos = 0;  // bytes
  for (const FiemapExtent& e : extents) {
    const int64_t logical = static_cast<int64_t>(e.logical);
    if (logical > pos) {
      entries.push_back({pos >> 9, (logical - pos) >> 9, -1, false, false});
    }
    BmapEntry entry;
    entry.offset = logical >> 9;
    entry.length = static_cast<int64_t>(e.length) >> 9;
    entry.block = (e.flags & kFiemapExtentDelalloc)
                      ? -2
                      : static_cast<int64_t>(e.physical >> 9);
    entry.prealloc = report_prealloc && (e.flags & kFiemapExtentUnwritten);
    entry.shared = (e.flags & kFiemapExtentShared) != 0;
    entries.push_back(entry);
    pos = std::max(pos, logical + static_cast<int64_t>(e.length));
  }
  if (block_size <= 0) block_size = 512;
  const int64_t eof = (file_size + block_size - 1) / block_size * block_size;
  if (pos < eof) {
    entries.push_back({pos >> 9, (eof - pos) >> 9, -1, false, false});
  }
  return entries;
}

namespace {

constexpr int kFlagShared = 0100000;
constexpr int kFlagPre = 0010000;
constexpr int kFlagBsu = 0001000;
constexpr int kFlagEsu = 0000100;
constexpr int kFlagBsw = 0000010;
constexpr int kFlagEsw = 0000001;
constexpr int kNumFlags = 6;

std::string RangeBuf(int64_t start, int64_t len, bool colon) {
  return Fmt(colon ? "[%lld..%lld]:" : "%lld..%lld", (long long)start,
             (long long)(start + len - 1));
}

std::string BmapPlain(const BmapArgs& args, const std::vector<BmapEntry>& m,
                      size_t count) {
  std::string out;
  for (size_t i = 0; i < count; i++) {
    const BmapEntry& e = m[i];
    out += Fmt("\t%d: [%lld..%lld]: ", static_cast<int>(i), (long long)e.offset,
               (long long)(e.offset + e.length - 1));
    if (e.block == -1) {
      out += "hole";
    } else if (e.block == -2) {
      out += "delalloc";
    } else {
      out += RangeBuf(e.block, e.length, false);
    }
    out += args.lengths ? Fmt(" %lld blocks\n", (long long)e.length) : "\n";
  }
  return out;
}

struct BmapWidths {
  int foff = 16, boff = 16, aoff = 16, tot = 5, agno = 2;
};

int BmapRowFlags(const BmapEntry& e, const BmapGeometry& g) {
  int flg = 0;
  if (e.prealloc) flg |= kFlagPre;
  if (e.shared) flg |= kFlagShared;
  const int64_t block = e.block;
  if (g.sunit_bb) {
    if (block % g.sunit_bb != 0) flg |= kFlagBsu;
    if ((block + e.length) % g.sunit_bb != 0) flg |= kFlagEsu;
    if (block % g.swidth_bb != 0) flg |= kFlagBsw;
    if ((block + e.length) % g.swidth_bb != 0) flg |= kFlagEsw;
  }
  return flg;
}

std::string AgOffsetBuf(const BmapEntry& e, const BmapGeometry& g, int* agno) {
  *agno = static_cast<int>(e.block / g.ag_blocks_bb);
  int64_t agoff = e.block - (*agno * g.ag_blocks_bb);
  return Fmt("(%lld..%lld)", (long long)agoff,
             (long long)(agoff + e.length - 1));
}

BmapWidths CalcBmapWidths(const std::vector<BmapEntry>& m, size_t count,
                          const BmapGeometry& g) {
  BmapWidths w;
  for (size_t i = 0; i < count; i++) {
    const BmapEntry& e = m[i];
    w.foff = std::max<int>(w.foff, RangeBuf(e.offset, e.length, true).size());
    w.tot = std::max(w.tot, NumLen(e.length, 10));
    if (e.block == -1) continue;
    w.boff = std::max<int>(w.boff, RangeBuf(e.block, e.length, false).size());
    int agno = 0;
    w.aoff = std::max<int>(w.aoff, AgOffsetBuf(e, g, &agno).size());
  }
  w.agno = std::max(2, NumLen(g.ag_count, 10));
  return w;
}

std::string BmapVerboseRow(const BmapArgs& args, const BmapWidths& w,
                           const BmapEntry& e, int i, int flg,
                           const BmapGeometry& g) {
  const std::string rbuf = RangeBuf(e.offset, e.length, true);
  if (e.block == -1 || e.block == -2) {
    return Fmt("%4d: %-*s %-*s %*s %-*s %*lld\n", i, w.foff, rbuf.c_str(),
               w.boff, e.block == -1 ? "hole" : "delalloc", w.agno, "", w.aoff,
               "", w.tot, (long long)e.length);
  }
  std::string out = Fmt("%4d: %-*s %-*s", i, w.foff, rbuf.c_str(), w.boff,
                        RangeBuf(e.block, e.length, false).c_str());
  int agno = 0;
  std::string abuf = AgOffsetBuf(e, g, &agno);
  out += Fmt(" %*d %-*s", w.agno, agno, w.aoff, abuf.c_str());
  out += Fmt(" %*lld", w.tot, (long long)e.length);
  if (flg == 0 && !args.prealloc) return out + "\n";
  return out + Fmt(" %-*.*o\n", kNumFlags, kNumFlags, flg);
}

std::string BmapLegend() {
  const int n = kNumFlags + 1;
  std::string out = " FLAG Values:\n";
  out += Fmt("    %*.*o Shared extent\n", n, n, kFlagShared);
  out += Fmt("    %*.*o Unwritten preallocated extent\n", n, n, kFlagPre);
  out += Fmt("    %*.*o Doesn't begin on stripe unit\n", n, n, kFlagBsu);
  out += Fmt("    %*.*o Doesn't end   on stripe unit\n", n, n, kFlagEsu);
  out += Fmt("    %*.*o Doesn't begin on stripe width\n", n, n, kFlagBsw);
  out += Fmt("    %*.*o Doesn't end   on stripe width\n", n, n, kFlagEsw);
  return out;
}

std::string BmapVerbose(const BmapArgs& args, const std::vector<BmapEntry>& m,
                        size_t count, const BmapGeometry& g) {
  const BmapWidths w = CalcBmapWidths(m, count, g);
  bool any_pre = false;
  for (size_t i = 0; i < count; i++) any_pre |= m[i].prealloc;
  const bool header_flags = g.sunit_bb || args.prealloc || any_pre;
  std::string out =
      Fmt("%4s: %-*s %-*s %*s %-*s %*s%s\n", "EXT", w.foff, "FILE-OFFSET",
          w.boff, "BLOCK-RANGE", w.agno, "AG", w.aoff, "AG-OFFSET", w.tot,
          "TOTAL", header_flags ? " FLAGS" : "");
  int flg = 0;
  for (size_t i = 0; i < count; i++) {
    flg = BmapRowFlags(m[i], g);
    out += BmapVerboseRow(args, w, m[i], static_cast<int>(i), flg, g);
  }
  if ((flg || args.prealloc) && args.verbose > 1) out += BmapLegend();
  return out;
}

}  // namespace

Output FormatBmap(const BmapArgs& args, const std::string& name,
                  const std::vector<BmapEntry>& entries,
                  const BmapGeometry& geometry) {
  Output out;
  if (!args.max_extents && entries.empty()) {
    out.out = name + ": no extents\n";
    return out;
  }
  size_t count = entries.size();
  if (args.max_extents) {
    count = std::min<size_t>(count, static_cast<size_t>(args.max_extents));
  }
  out.out = name + ":\n";
  if (!args.verbose) {
    out.out += BmapPlain(args, entries, count);
  } else {
    BmapGeometry g = geometry;
    if (g.ag_blocks_bb <= 0) g.ag_blocks_bb = 1LL << 62;
    out.out += BmapVerbose(args, entries, count, g);
  }
  return out;
}

}  // namespace xfs_io
