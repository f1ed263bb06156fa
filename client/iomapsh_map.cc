// iomapsh extent and sharing commands: seek, fiemap, bmap, reflink, dedupe,
// swapon/swapoff.
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "client/iomapsh_internal.h"

namespace iomapsh {
namespace {

using xfs_io::Output;

// Extents per Fiemap RPC when bmap collects the whole file.
constexpr uint32_t kBmapBatch = 1024;

bool Num(Shell& s, const std::string& word, int64_t* value) {
  *value = xfs_io::CvtNum(Units(s).block_size, Units(s).sector_size, word);
  return *value >= 0;
}

// ---------------------------------------------------------------- seek

Output SeekCmd(Shell& s, const Args& argv) {
  xfs_io::SeekArgs args;
  Output out;
  if (!xfs_io::ParseSeek(argv, Units(s), &args, &out)) return out;
  ShellFile* f = Commands::Current(s);
  return xfs_io::RunSeek(args, [&](int64_t off, xfs_io::Whence w) -> int64_t {
    auto r = Commands::Client(s).Seek(
        f->file, off,
        w == xfs_io::Whence::kData ? v1::WHENCE_DATA : v1::WHENCE_HOLE);
    return r.ok() ? *r : -ErrnumOf(r.status());
  });
}

// ---------------------------------------------------------------- fiemap

// One FS_IOC_FIEMAP call through the Fiemap RPC: 0 or -errno.
int FiemapCall(Shell& s, const ShellFile& f, uint64_t start, uint64_t length,
               uint32_t flags, uint32_t count,
               std::vector<xfs_io::FiemapExtent>* out) {
  v1::FiemapRequest req;
  *req.mutable_handle() = f.file.handle;
  req.set_open_id(f.file.open_id);
  req.set_start(static_cast<int64_t>(start));
  req.set_length(length > static_cast<uint64_t>(INT64_MAX)
                     ? -1
                     : static_cast<int64_t>(length));
  req.set_flags(flags);
  req.set_extent_count(count);
  auto resp = Commands::Client(s).FiemapRaw(req);
  if (!resp.ok()) return -ErrnumOf(resp.status());
  if (resp->errnum() != 0) return -resp->errnum();
  out->clear();
  for (const v1::FiemapExtent& e : resp->extents()) {
    out->push_back({e.logical(), e.physical(), e.length(), e.flags()});
  }
  return 0;
}

int64_t FileSize(Shell& s, const ShellFile& f) {
  auto attr = Commands::Client(s).Stat(f.file.handle);
  return attr.ok() ? attr->size() : 0;
}

Output FiemapCmd(Shell& s, const Args& argv) {
  xfs_io::FiemapArgs args;
  Output out;
  if (!xfs_io::ParseFiemap(argv, Units(s), &args, &out)) return out;
  ShellFile* f = Commands::Current(s);
  return xfs_io::RunFiemap(
      args, f->name,
      [&](uint64_t start, uint64_t len, uint32_t flags, uint32_t count,
          std::vector<xfs_io::FiemapExtent>* ex) {
        return FiemapCall(s, *f, start, len, flags, count, ex);
      },
      [&] { return FileSize(s, *f); });
}

// ---------------------------------------------------------------- bmap

// Every extent of the file; `flags` are the FIEMAP request flags.
int AllExtents(Shell& s, const ShellFile& f, uint32_t flags,
               std::vector<xfs_io::FiemapExtent>* all) {
  all->clear();
  uint64_t start = 0;
  for (;;) {
    std::vector<xfs_io::FiemapExtent> batch;
    int ret = FiemapCall(s, f, start, ~0ULL, flags, kBmapBatch, &batch);
    if (ret < 0) return ret;
    if (batch.empty()) return 0;
    all->insert(all->end(), batch.begin(), batch.end());
    const xfs_io::FiemapExtent& last = batch.back();
    if (last.flags & xfs_io::kFiemapExtentLast) return 0;
    start = last.logical + last.length;
  }
}

bool HasDelalloc(const std::vector<xfs_io::FiemapExtent>& extents) {
  for (const xfs_io::FiemapExtent& e : extents) {
    if (e.flags & xfs_io::kFiemapExtentDelalloc) return true;
  }
  return false;
}

// The map GETBMAPX would report. XFS writes dirty pages back first only
// when the inode has delayed allocations (or an in-core size past the
// on-disk size, which the protocol does not show): an unsynced FIEMAP
// first, and a synced one when it shows delalloc extents.
int BmapExtents(Shell& s, const ShellFile& f,
                std::vector<xfs_io::FiemapExtent>* extents) {
  int ret = AllExtents(s, f, 0, extents);
  if (ret < 0 || !HasDelalloc(*extents)) return ret;
  return AllExtents(s, f, xfs_io::kFiemapFlagSync, extents);
}

Output BmapCmd(Shell& s, const Args& argv) {
  xfs_io::BmapArgs args;
  Output out;
  if (!xfs_io::ParseBmap(argv, &args, &out)) return out;
  ShellFile* f = Commands::Current(s);
  std::vector<xfs_io::FiemapExtent> extents;
  int ret = BmapExtents(s, *f, &extents);
  auto attr = Commands::Client(s).Stat(f->file.handle);
  if (ret == 0 && !attr.ok()) ret = -ErrnumOf(attr.status());
  if (ret < 0) {
    out.err = "iomapsh: xfsctl(XFS_IOC_GETBMAPX) iflags=0x" +
              std::string(args.prealloc ? "1" : "0") + " [\"" + f->name +
              "\"]: " + strerror(-ret) + "\n";
    out.failed = true;
    return out;
  }
  xfs_io::BmapGeometry geometry;
  auto fs = Commands::Client(s).StatFs(Commands::Volume(s));
  if (fs.ok()) {
    geometry.ag_blocks_bb =
        static_cast<int64_t>(fs->blocks() * fs->bsize() / 512);
  }
  const int64_t block_size = attr->blksize() ? attr->blksize() : 4096;
  return xfs_io::FormatBmap(
      args, f->name,
      xfs_io::BmapFromFiemap(extents, attr->size(), args.prealloc, block_size),
      geometry);
}

// ---------------------------------------------------------------- reflink

// Opens `path` on the shell's volume (read-only) for reflink/dedupe.
absl::StatusOr<client::OpenFile> OpenSource(Shell& s, const std::string& path) {
  return Commands::Client(s).OpenPath(Commands::Volume(s), path,
                                      v1::OPEN_FLAG_READ);
}

struct RangeArgs {
  bool compact = false, quiet = false;
  std::string infile;
  int64_t src = 0, dst = 0, len = 0;
  bool whole = true;
};

bool ParseRangeArgs(Shell& s, const Args& argv, bool need_range, RangeArgs* a,
                    Output* out) {
  xfs_io::ParsedOpts p;
  std::string error;
  if (!xfs_io::GetOpts(argv, "Cq", &p, &error)) {
    *out = UsageOf(argv);
    out->err = error;
    return false;
  }
  for (const auto& o : p.opts) {
    a->compact |= o.first == 'C';
    a->quiet |= o.first == 'q';
  }
  const size_t n = p.operands.size();
  if (n != 4 && (need_range || n != 1)) {
    *out = UsageOf(argv);
    return false;
  }
  a->infile = p.operands[0];
  if (n == 1) return true;
  a->whole = false;
  const char* what[] = {"src offset", "dest offset", "length"};
  int64_t* dest[] = {&a->src, &a->dst, &a->len};
  for (int i = 0; i < 3; i++) {
    if (!Num(s, p.operands[i + 1], dest[i])) {
      out->out = std::string("non-numeric ") + what[i] + " argument -- " +
                 p.operands[i + 1] + "\n";
      return false;
    }
  }
  return true;
}

Output ReflinkCmd(Shell& s, const Args& argv) {
  RangeArgs a;
  Output out;
  if (!ParseRangeArgs(s, argv, false, &a, &out)) return out;
  auto src = OpenSource(s, a.infile);
  if (!src.ok()) return Fail(a.infile, src.status());
  ShellFile* f = Commands::Current(s);
  const timeval start = Commands::Now(s);
  auto n = Commands::Client(s).CloneRange(src->handle, a.src, f->file.handle,
                                          a.dst, a.len);
  Commands::Client(s).Close(*src).IgnoreError();
  // xfs_io uses FICLONE (XFS_IOC_CLONE) when all three numbers are 0.
  const bool whole = a.src == 0 && a.dst == 0 && a.len == 0;
  if (!n.ok()) {
    return Fail(whole ? "XFS_IOC_CLONE" : "XFS_IOC_CLONE_RANGE", n.status());
  }
  if (!a.quiet) {
    // xfs_io reports the requested length (0/0 for a whole-file clone).
    out.out = xfs_io::IoReport("linked", Commands::Elapsed(s, start), a.dst,
                               a.len, a.len, 1, a.compact);
  }
  return out;
}

Output DedupeCmd(Shell& s, const Args& argv) {
  RangeArgs a;
  Output out;
  if (!ParseRangeArgs(s, argv, true, &a, &out)) return out;
  auto src = OpenSource(s, a.infile);
  if (!src.ok()) return Fail(a.infile, src.status());
  ShellFile* f = Commands::Current(s);
  v1::DedupeRangeRequest req;
  *req.mutable_src() = src->handle;
  req.set_src_offset(a.src);
  req.set_length(a.len);
  v1::DedupeTarget* t = req.add_targets();
  *t->mutable_dst() = f->file.handle;
  t->set_dst_offset(a.dst);
  const timeval start = Commands::Now(s);
  auto resp = Commands::Client(s).DedupeRange(req);
  Commands::Client(s).Close(*src).IgnoreError();
  if (!resp.ok()) return Fail("XFS_IOC_FILE_EXTENT_SAME", resp.status());
  const v1::DedupeResult r =
      resp->results_size() ? resp->results(0) : v1::DedupeResult();
  if (r.errnum() != 0) {
    out.err = xfs_io::Perror("XFS_IOC_FILE_EXTENT_SAME", r.errnum());
    out.failed = true;
    return out;
  }
  if (r.status() == 1) {
    out.err = "XFS_IOC_FILE_EXTENT_SAME: Extents did not match.\n";
    out.failed = true;
    return out;
  }
  if (!a.quiet) {
    out.out = xfs_io::IoReport("deduped", Commands::Elapsed(s, start), a.dst,
                               a.len, r.bytes_deduped(), 1, a.compact);
  }
  return out;
}

// ---------------------------------------------------------------- swap

Output SwaponCmd(Shell& s, const Args&) {
  auto resp =
      Commands::Client(s).SwapActivate(Commands::Current(s)->file.handle);
  if (!resp.ok()) return Fail("swapon", resp.status());
  Output out;
  char buf[160];
  snprintf(buf, sizeof(buf), "%lld extents, %llu pages, span %llu pages\n",
           static_cast<long long>(resp->result()),
           static_cast<unsigned long long>(resp->pages()),
           static_cast<unsigned long long>(resp->span()));
  out.out = buf;
  for (int i = 0; i < resp->extents_size(); i++) {
    const v1::SwapExtent& e = resp->extents(i);
    snprintf(buf, sizeof(buf), "\t%d: page %llu..%llu: device page %llu\n", i,
             static_cast<unsigned long long>(e.start_page()),
             static_cast<unsigned long long>(e.start_page() + e.nr_pages() - 1),
             static_cast<unsigned long long>(e.start_block()));
    out.out += buf;
  }
  return out;
}

Output SwapoffCmd(Shell& s, const Args&) {
  absl::Status st =
      Commands::Client(s).SwapDeactivate(Commands::Current(s)->file.handle);
  if (!st.ok()) return Fail("swapoff", st);
  return Output();
}

}  // namespace

std::vector<Shell::Command> MapCommands() {
  return {
      {"bmap", nullptr, 0, -1, true, "[-adlpv] [-n nx]",
       "print block mapping for an XFS file",
       " Prints the file's extents in 512-byte units as XFS's GETBMAPX\n"
       " reports them, built from a synced FIEMAP of the whole file.\n"
       " -l -- also print each extent's length\n"
       " -n -- at most nx extents\n"
       " -p -- flag unwritten (preallocated) extents\n"
       " -v -- table with allocation-group columns (one group per volume);\n"
       "       -vv adds the flag legend\n",
       BmapCmd},
      {"dedupe", nullptr, 4, -1, true, "infile src_off dst_off len",
       "dedupes a number of bytes at a specified offset",
       " Shares infile's [src_off, src_off+len) with the open file at\n"
       " dst_off if their contents are identical (FIDEDUPERANGE).\n",
       DedupeCmd, kOneShot},
      {"fiemap", nullptr, 0, -1, true, "[-alv] [-n nx] [offset [len]]",
       "print block mapping for a file",
       " Prints the extents FS_IOC_FIEMAP reports (synced first), in 512-byte\n"
       " units, with the holes between them.\n"
       " -a -- the attribute fork (FIEMAP_FLAG_XATTR)\n"
       " -l -- also print each extent's length\n"
       " -n -- at most nx extents\n"
       " -v -- table with the extent flags\n",
       FiemapCmd},
      {"reflink", nullptr, 1, -1, true, "infile [src_off dst_off len]",
       "reflinks an entire file, or a number of bytes at a specified offset",
       " Shares infile's blocks with the open file (FICLONERANGE); without a\n"
       " range, the whole file.\n",
       ReflinkCmd, kOneShot},
      {"seek", nullptr, 2, 5, true, "-a | -d | -h [-r] off",
       "locate the next data and/or hole",
       " Prints the next data (-d), hole (-h) or both (-a) at or after off,\n"
       " with -r every one to EOF and -s the starting offsets too. There is\n"
       " a hole at EOF; past it the answer is EOF.\n",
       SeekCmd},
      {"swapoff", nullptr, 0, 0, true, "", "deactivate the file as swap",
       " Undoes swapon; the file accepts writes and truncation again.\n",
       SwapoffCmd},
      {"swapon", nullptr, 0, 0, true, "", "activate the file as swap",
       " Runs swapfile activation: prints the extents in pages, the usable\n"
       " page count and the span, as swapon(2) would set them up.\n",
       SwaponCmd},
  };
}

}  // namespace iomapsh
