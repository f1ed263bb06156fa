// The text xfs_io(8) prints, reproduced byte for byte, so iomapsh output can
// be diffed against xfs_io's (Debian xfsprogs 6.1). Pure formatting and the
// small loops whose output depends on the answers (seek, fiemap): the syscall
// is a callback, so tests drive them with fakes and compare with text
// recorded from the real xfs_io.
//
// Units follow xfs_io: fiemap/bmap tables are in 512-byte basic blocks
// ("BB"), offsets elsewhere in bytes.
//
// Thread-safety: functions are pure or touch only their arguments.
#ifndef IOMAPD_CLIENT_XFS_IO_FORMAT_H_
#define IOMAPD_CLIENT_XFS_IO_FORMAT_H_

#include <sys/time.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace xfs_io {

// Output of one command: what goes to stdout and to stderr, and whether
// xfs_io would set its exit code to 1.
struct Output {
  std::string out;
  std::string err;
  bool failed = false;
};

// ------------------------------------------------------------ numbers

// Digits of `value` in `base` (at least 1).
int NumLen(uint64_t value, int base);

// xfs_io's cvtnum(): "4096", "0x1000", "64k", "1m", "2b" (blocks), "1s"
// (sectors); -1 when not a number.
int64_t CvtNum(int64_t block_size, int64_t sector_size, const std::string& s);

// "64 KiB", "9.766 KiB", "32.000000 bytes" (cvtstr()).
std::string CvtStr(double value);

// "0.0001 sec", or "0:00:01.50" once a second has passed (timestr()).
// `fixed` selects the H:MM:SS.hh form always (compact reports).
std::string TimeStr(const timeval& elapsed, bool fixed);

// The two lines after pread/pwrite/reflink/dedupe:
//   "wrote 65536/65536 bytes at offset 0"
//   "64 KiB, 16 ops; 0.0000 sec (946.970 MiB/sec and 242424.2424 ops/sec)"
// or with `compact` (-C) one line "total,ops,time,bytes/sec,ops/sec".
std::string IoReport(const std::string& verb, const timeval& elapsed,
                     int64_t offset, int64_t count, int64_t total, int ops,
                     bool compact);

// pread -v hex dump of `data` read at `offset`.
std::string DumpBuffer(int64_t offset, const std::string& data);

// Splits a command line at spaces, dropping empty words (breakline()).
std::vector<std::string> BreakLine(const std::string& line);

// "name args -- oneline" (command_usage()).
std::string Usage(const std::string& name, const std::string& args,
                  const std::string& oneline);

// "bad argument count N to CMD, expected ..." for a command taking
// [argmin, argmax] arguments (argmax -1: unbounded); "" when count fits.
std::string BadArgCount(const std::string& cmd, int count, int argmin,
                        int argmax);

// ------------------------------------------------------------ seek

enum class Whence { kData, kHole };

// lseek(fd, offset, SEEK_DATA/SEEK_HOLE): the offset, or -errno.
using SeekFn = std::function<int64_t(int64_t offset, Whence whence)>;

struct SeekArgs {
  bool data = false;        // -d (or -a)
  bool hole = false;        // -h (or -a)
  bool repeat = false;      // -r
  bool show_start = false;  // -s
  int64_t offset = 0;
};

// Runs xfs_io's `seek` against `lseek` and returns its output.
Output RunSeek(const SeekArgs& args, const SeekFn& lseek);

// ------------------------------------------------------------ fiemap

// Linux FIEMAP_EXTENT_* values.
constexpr uint32_t kFiemapExtentLast = 0x1;
constexpr uint32_t kFiemapExtentDelalloc = 0x4;
constexpr uint32_t kFiemapExtentUnwritten = 0x800;
constexpr uint32_t kFiemapExtentShared = 0x2000;
constexpr uint32_t kFiemapFlagSync = 0x1;
constexpr uint32_t kFiemapFlagXattr = 0x2;

struct FiemapExtent {
  uint64_t logical = 0;  // bytes
  uint64_t physical = 0;
  uint64_t length = 0;
  uint32_t flags = 0;
};

// One FS_IOC_FIEMAP call: fills `out` with at most `count` extents of
// [start, start + length) (length may be ~0 for "to the end"); returns 0 or
// -errno.
using FiemapFn =
    std::function<int(uint64_t start, uint64_t length, uint32_t flags,
                      uint32_t count, std::vector<FiemapExtent>* out)>;

struct FiemapArgs {
  bool xattr = false;    // -a: FIEMAP_FLAG_XATTR
  bool verbose = false;  // -v
  bool lengths = false;  // -l
  int max_extents = -1;  // -n
  int64_t offset = 0;    // optional offset argument
  int64_t length = -1;   // optional length argument; -1: to the end
};

// xfs_io fetches 32 extents per call and sizes the -v columns from the
// first batch.
constexpr uint32_t kFiemapBatch = 32;

// Runs xfs_io's `fiemap` for the file named `name` whose size is
// `file_size` (fstat after the walk), with "iomapsh" as progname in errors.
Output RunFiemap(const FiemapArgs& args, const std::string& name,
                 const FiemapFn& fiemap,
                 const std::function<int64_t()>& file_size);

// ------------------------------------------------------------ bmap

// One XFS_IOC_GETBMAPX record, in basic blocks.
struct BmapEntry {
  int64_t offset = 0;
  int64_t length = 0;
  int64_t block = -1;     // -1 hole, -2 delalloc
  bool prealloc = false;  // BMV_OF_PREALLOC (unwritten, with -p)
  bool shared = false;    // BMV_OF_SHARED
};

// The filesystem geometry bmap -v needs. iomapd volumes are one
// allocation group spanning the device.
struct BmapGeometry {
  int64_t ag_blocks_bb = 0;  // basic blocks per allocation group
  int64_t ag_count = 1;
  int64_t sunit_bb = 0;  // stripe unit / width in basic blocks
  int64_t swidth_bb = 0;
};

struct BmapArgs {
  int verbose = 0;        // -v count
  bool prealloc = false;  // -p
  bool lengths = false;   // -l
  int max_extents = 0;    // -n (0: all)
};

// GETBMAPX's view of the extents FIEMAP returned (sync'ed, whole file): a
// record per extent, holes between them and up to EOF rounded up to
// `block_size`; nothing at all for a file without extents. Unwritten extents
// carry `prealloc` only when `report_prealloc` (-p), as XFS does.
std::vector<BmapEntry> BmapFromFiemap(const std::vector<FiemapExtent>& extents,
                                      int64_t file_size, bool report_prealloc,
                                      int64_t block_size);

// Prints xfs_io's `bmap` table for `entries`.
Output FormatBmap(const BmapArgs& args, const std::string& name,
                  const std::vector<BmapEntry>& entries,
                  const BmapGeometry& geometry);

// ------------------------------------------------------------ stat

struct StatInfo {
  std::string path;
  bool sync = false;
  bool direct = false;
  bool read_only = false;
  bool append = false;
  uint64_t ino = 0;
  std::string type;  // "regular file", "directory", ...
  int64_t size = 0;
  int64_t blocks = 0;
  int64_t atime_sec = 0;
  int64_t mtime_sec = 0;
  int64_t ctime_sec = 0;
};

// `stat [-v]` for a file on a non-XFS ("foreign") filesystem: the fd and
// stat lines, with -v the three times in ctime(3) form (local time zone).
std::string FormatStat(const StatInfo& info, bool verbose);

struct StatFsInfo {
  std::string path;
  uint64_t bsize = 0;
  uint64_t blocks = 0;
  uint64_t bavail = 0;
  uint64_t files = 0;
  uint64_t ffree = 0;
  uint64_t flags = 0;
};

// `statfs` for a foreign file: fd.path and the statfs.* lines.
std::string FormatStatFs(const StatFsInfo& info);

// perror(): "<what>: <strerror(errnum)>\n".
std::string Perror(const std::string& what, int errnum);

// xfs_io's type word for st_mode's S_IFMT bits ("regular file", ...).
std::string FileTypeName(unsigned mode_type);

}  // namespace xfs_io

#endif  // IOMAPD_CLIENT_XFS_IO_FORMAT_H_
