// iomapsh data commands: pread, pwrite, fsync, fdatasync, truncate and the
// fallocate family.
#include <cerrno>
#include <cstdint>
#include <cstdlib>

#include "base/errno.h"
#include "client/iomapsh_internal.h"

namespace iomapsh {
namespace {

using xfs_io::Output;

// Linux fallocate modes.
constexpr uint32_t kKeepSize = 0x01, kPunchHole = 0x02, kCollapse = 0x08;
constexpr uint32_t kZeroRange = 0x10, kInsertRange = 0x20, kUnshare = 0x40;

bool ParseOpts(const Args& argv, const char* optstring, xfs_io::ParsedOpts* p,
               Output* out) {
  std::string error;
  if (xfs_io::GetOpts(argv, optstring, p, &error)) return true;
  *out = UsageOf(argv);
  out->err = error;
  return false;
}

// cvtnum or a "non-numeric <what> argument -- X" message.
bool Num(Shell& s, const std::string& word, const char* what, int64_t* value,
         Output* out) {
  *value = xfs_io::CvtNum(Units(s).block_size, Units(s).sector_size, word);
  if (*value >= 0) return true;
  out->out +=
      std::string("non-numeric ") + what + " argument -- " + word + "\n";
  out->failed = true;
  return false;
}

// The -b buffer size, with xfs_io's message for a non-number.
bool BufferSize(Shell& s, const std::string& word, int64_t* bsize,
                Output* out) {
  *bsize = xfs_io::CvtNum(Units(s).block_size, Units(s).sector_size, word);
  if (*bsize >= 0) return true;
  out->out += "non-numeric bsize -- " + word + "\n";
  out->failed = true;
  return false;
}

uint32_t FileIoFlags(const ShellFile& f) {
  return f.direct ? v1::IO_FLAG_DIRECT : 0;
}

// ---------------------------------------------------------------- pread

Output PreadCmd(Shell& s, const Args& argv) {
  xfs_io::ParsedOpts p;
  Output out;
  if (!ParseOpts(argv, "b:Cqv", &p, &out)) return out;
  int64_t bsize = Units(s).block_size, off = 0, count = 0;
  bool compact = false, quiet = false, verbose = false;
  for (const auto& [c, v] : p.opts) {
    if (c == 'b' && !BufferSize(s, v, &bsize, &out)) return out;
    compact |= c == 'C';
    quiet |= c == 'q';
    verbose |= c == 'v';
  }
  if (p.operands.size() != 2) return UsageOf(argv);
  // xfs_io 6.1's pread does not check its numbers: a non-number is -1, an
  // offset that pread(2) refuses, and a length that reads up to EOF.
  const xfs_io::NumUnits units = Units(s);
  off = xfs_io::CvtNum(units.block_size, units.sector_size, p.operands[0]);
  count = xfs_io::CvtNum(units.block_size, units.sector_size, p.operands[1]);
  if (off < 0) return Fail("pread", base::ErrnoStatus(-EINVAL, "offset"));
  ShellFile* f = Commands::Current(s);
  const timeval start = Commands::Now(s);
  int64_t total = 0, pos = off, left = count < 0 ? INT64_MAX : count;
  int ops = 0;
  while (left > 0) {
    const int64_t want = std::min(left, bsize);
    auto data = Commands::Client(s).Read(f->file, pos, want, FileIoFlags(*f));
    if (!data.ok()) return Fail("pread", data.status());
    if (data->empty()) break;
    ops++;
    if (verbose) out.out += xfs_io::DumpBuffer(pos, *data);
    total += data->size();
    if (static_cast<int64_t>(data->size()) < want) break;
    pos += data->size();
    left -= data->size();
  }
  if (count < 0) count = total;  // as xfs_io reports a read to EOF
  if (!quiet) {
    out.out += xfs_io::IoReport("read", Commands::Elapsed(s, start), off, count,
                                total, ops, compact);
  }
  return out;
}

// ---------------------------------------------------------------- pwrite

struct PwriteArgs {
  int64_t bsize = 4096;
  unsigned seed = 0xcd;
  uint32_t flags = 0;
  bool compact = false, quiet = false, fsync = false, fdatasync = false;
};

bool ParsePwriteOpts(Shell& s, const xfs_io::ParsedOpts& p, PwriteArgs* a,
                     Output* out) {
  a->bsize = Units(s).block_size;
  for (const auto& [c, v] : p.opts) {
    if (c == 'b' && !BufferSize(s, v, &a->bsize, out)) return false;
    if (c == 'S') a->seed = static_cast<unsigned>(strtoul(v.c_str(), 0, 0));
    if (c == 'A') a->flags |= v1::IO_FLAG_ATOMIC;
    if (c == 'D') a->flags |= v1::IO_FLAG_DSYNC;
    if (c == 'N') a->flags |= v1::IO_FLAG_NOWAIT;
    a->compact |= c == 'C';
    a->quiet |= c == 'q';
    a->fsync |= c == 'W';
    a->fdatasync |= c == 'w';
  }
  return true;
}

Output PwriteCmd(Shell& s, const Args& argv) {
  xfs_io::ParsedOpts p;
  Output out;
  PwriteArgs a;
  if (!ParseOpts(argv, "ACDNS:Wb:qw", &p, &out)) return out;
  if (!ParsePwriteOpts(s, p, &a, &out)) return out;
  int64_t off = 0, count = 0;
  if (p.operands.size() != 2) return UsageOf(argv);
  if (!Num(s, p.operands[0], "offset", &off, &out) ||
      !Num(s, p.operands[1], "length", &count, &out)) {
    return out;
  }
  ShellFile* f = Commands::Current(s);
  const std::string buffer(a.bsize, static_cast<char>(a.seed & 0xff));
  const timeval start = Commands::Now(s);
  int64_t total = 0;
  int ops = 0;
  for (int64_t pos = off; total < count && a.bsize > 0;) {
    const int64_t want = std::min(count - total, a.bsize);
    auto n = Commands::Client(s).Write(f->file, pos, buffer.substr(0, want),
                                       a.flags | FileIoFlags(*f));
    if (!n.ok()) return Fail("pwrite", n.status());
    ops++;
    total += *n;
    pos += *n;
    if (*n < want) break;
  }
  if (a.fsync || a.fdatasync) {
    absl::Status st = Commands::Client(s).Fsync(f->file, !a.fsync);
    if (!st.ok()) return Fail(a.fsync ? "fsync" : "fdatasync", st);
  }
  if (!a.quiet) {
    out.out += xfs_io::IoReport("wrote", Commands::Elapsed(s, start), off,
                                count, total, ops, a.compact);
  }
  return out;
}

// ---------------------------------------------------------------- sync etc

Output FsyncCmd(Shell& s, const Args& argv) {
  const bool datasync = argv[0] == "fdatasync" || argv[0] == "fd";
  absl::Status st =
      Commands::Client(s).Fsync(Commands::Current(s)->file, datasync);
  if (!st.ok()) return Fail(datasync ? "fdatasync" : "fsync", st);
  return Output();
}

Output TruncateCmd(Shell& s, const Args& argv) {
  Output out;
  int64_t size = 0;
  if (!Num(s, argv[1], "offset", &size, &out)) return out;
  absl::Status st =
      Commands::Client(s).Truncate(Commands::Current(s)->file, size);
  if (!st.ok()) return Fail("ftruncate", st);
  return out;
}

Output Fallocate(Shell& s, uint32_t mode, const std::string& off_word,
                 const std::string& len_word) {
  Output out;
  int64_t off = 0, len = 0;
  if (!Num(s, off_word, "offset", &off, &out) ||
      !Num(s, len_word, "length", &len, &out)) {
    return out;
  }
  absl::Status st =
      Commands::Client(s).Fallocate(Commands::Current(s)->file, mode, off, len);
  if (!st.ok()) return Fail("fallocate", st);
  return out;
}

Output FallocCmd(Shell& s, const Args& argv) {
  xfs_io::ParsedOpts p;
  Output out;
  if (!ParseOpts(argv, "cikpu", &p, &out)) return out;
  uint32_t mode = 0;
  for (const auto& [c, v] : p.opts) {
    if (c == 'c') mode = kCollapse;
    if (c == 'i') mode = kInsertRange;
    if (c == 'k') mode |= kKeepSize;
    if (c == 'p') mode = kPunchHole | kKeepSize;
    if (c == 'u') mode = kUnshare;
  }
  if (p.operands.size() != 2) return UsageOf(argv);
  return Fallocate(s, mode, p.operands[0], p.operands[1]);
}

Output FzeroCmd(Shell& s, const Args& argv) {
  xfs_io::ParsedOpts p;
  Output out;
  if (!ParseOpts(argv, "k", &p, &out)) return out;
  if (p.operands.size() != 2) return UsageOf(argv);
  const uint32_t mode = kZeroRange | (p.opts.empty() ? 0 : kKeepSize);
  return Fallocate(s, mode, p.operands[0], p.operands[1]);
}

Output FixedModeCmd(Shell& s, const Args& argv) {
  uint32_t mode = kPunchHole | kKeepSize;
  if (argv[0] == "fcollapse") mode = kCollapse;
  if (argv[0] == "finsert") mode = kInsertRange;
  if (argv[0] == "funshare") mode = kUnshare;
  return Fallocate(s, mode, argv[1], argv[2]);
}

}  // namespace

std::vector<Shell::Command> IoCommands() {
  return {
      {"fcollapse", nullptr, 2, 2, true, "off len",
       "de-allocates space and eliminates the hole by shifting extents",
       " fallocate(FALLOC_FL_COLLAPSE_RANGE) over [off, off+len).\n",
       FixedModeCmd},
      {"fdatasync", "fd", 0, 0, true, "",
       "calls fdatasync(2) to flush the files in-core data to disk",
       " Writes back the file's dirty data and the metadata needed to read\n"
       " it (Fsync with datasync).\n",
       FsyncCmd},
      {"finsert", nullptr, 2, 2, true, "off len",
       "creates new space for writing within file by shifting extents",
       " fallocate(FALLOC_FL_INSERT_RANGE) at off for len bytes.\n",
       FixedModeCmd},
      {"fpunch", nullptr, 2, 2, true, "off len",
       "de-allocates space associated with part of a file via fallocate",
       " fallocate(FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE).\n", FixedModeCmd},
      {"fsync", "s", 0, 0, true, "",
       "calls fsync(2) to flush all in-core file state to disk",
       " Writes back the file's dirty data and metadata and waits for it to\n"
       " be durable. Reports a writeback error once per open file.\n",
       FsyncCmd},
      {"funshare", nullptr, 2, 2, true, "off len",
       "unshares shared blocks within the range",
       " fallocate(FALLOC_FL_UNSHARE_RANGE): gives the range private copies\n"
       " of any shared (reflinked) blocks.\n",
       FixedModeCmd},
      {"falloc", nullptr, 2, -1, true, "[-c] [-k] [-p] [-u] off len",
       "allocates space associated with part of a file via fallocate",
       " Calls fallocate over [off, off+len):\n"
       " -c -- collapse the range\n"
       " -i -- insert a hole at the range\n"
       " -k -- keep the file size\n"
       " -p -- punch a hole\n"
       " -u -- unshare shared extents\n",
       FallocCmd},
      {"fzero", nullptr, 2, -1, true, "[-k] off len",
       "zeroes space and eliminates holes by preallocating",
       " fallocate(FALLOC_FL_ZERO_RANGE); -k keeps the file size.\n", FzeroCmd},
      {"pread", "r", 2, -1, true, "[-b bs] [-qv] off len",
       "reads a number of bytes at a specified offset",
       " Reads [off, off+len) in bs-sized requests (default 4096), stopping\n"
       " at EOF; -v dumps the data in hex, -q prints nothing, -C prints the\n"
       " compact timing line.\n",
       PreadCmd},
      {"pwrite", "w", 2, -1, true, "[-b bs] [-S seed] [-ADNqWw] off len",
       "writes a number of bytes at a specified offset",
       " Writes [off, off+len) in bs-sized requests (default 4096) from a\n"
       " buffer filled with the seed byte (default 0xcd).\n"
       " -A -- atomic (untorn) writes (IO_FLAG_ATOMIC)\n"
       " -D -- O_DSYNC semantics per write (IO_FLAG_DSYNC)\n"
       " -N -- do not block (IO_FLAG_NOWAIT)\n"
       " -W -- fsync at the end; -w -- fdatasync at the end\n"
       " -q -- quiet; -C -- compact timing line\n",
       PwriteCmd},
      {"truncate", "t", 1, 1, true, "off",
       "truncates the current file at the given offset",
       " Sets the file size to off.\n", TruncateCmd},
  };
}

}  // namespace iomapsh
