// iomapsh memory-mapping commands: mmap, mwrite, mread, msync, munmap.
// There is no local mapping: a "mapping" is a file range, stores go through
// the MapWrite RPC (the page_mkwrite fault path on the server) and loads
// through Read. Offsets are file offsets inside the current mapping, as in
// xfs_io.
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "client/iomapsh_internal.h"

namespace iomapsh {
namespace {

using xfs_io::Output;

bool ParseOpts(const Args& argv, const char* optstring, xfs_io::ParsedOpts* p,
               Output* out) {
  std::string error;
  if (xfs_io::GetOpts(argv, optstring, p, &error)) return true;
  *out = UsageOf(argv);
  out->err = error;
  return false;
}

Mapping* CurrentMap(Shell& s) {
  auto& maps = Commands::Maps(s);
  size_t i = Commands::CurrentMap(s);
  return i < maps.size() ? &maps[i] : nullptr;
}

Output NoMapping() {
  Output out;
  out.err = "no mapped regions, try 'help mmap'\n";
  out.failed = true;
  return out;
}

std::string MapLine(const Mapping& m, size_t i, bool current) {
  char buf[256];
  snprintf(buf, sizeof(buf),
           "%c%03zu%c 0x%llx - 0x%llx %c%c%c %-16s (%lld : %lld)\n",
           current ? '[' : ' ', i, current ? ']' : ' ',
           static_cast<unsigned long long>(m.offset),
           static_cast<unsigned long long>(m.offset + m.length),
           m.read ? 'r' : '-', m.write ? 'w' : '-', '-', m.name.c_str(),
           static_cast<long long>(m.offset), static_cast<long long>(m.length));
  return buf;
}

Output MmapCmd(Shell& s, const Args& argv) {
  xfs_io::ParsedOpts p;
  Output out;
  if (!ParseOpts(argv, "rwxS", &p, &out)) return out;
  auto& maps = Commands::Maps(s);
  if (p.operands.empty() && p.opts.empty()) {
    if (maps.empty()) return NoMapping();
    for (size_t i = 0; i < maps.size(); i++) {
      out.out += MapLine(maps[i], i, i == Commands::CurrentMap(s));
    }
    return out;
  }
  if (p.operands.size() != 2) return UsageOf(argv);
  Mapping m;
  m.name = Commands::Current(s)->name;
  m.file = Commands::Current(s)->file;
  m.offset = xfs_io::CvtNum(4096, 512, p.operands[0]);
  m.length = xfs_io::CvtNum(4096, 512, p.operands[1]);
  if (m.offset < 0 || m.length < 0) return UsageOf(argv);
  if (!p.opts.empty()) {
    m.read = m.write = false;
    for (const auto& o : p.opts) {
      m.read |= o.first == 'r';
      m.write |= o.first == 'w';
    }
  }
  maps.push_back(m);
  Commands::CurrentMap(s) = maps.size() - 1;
  return out;
}

// The range [off, off+len) of the current mapping named by operands (the
// whole mapping without them); false with xfs_io's message otherwise.
bool MapRange(const Mapping& m, const std::vector<std::string>& operands,
              int64_t* off, int64_t* len, Output* out) {
  *off = m.offset;
  *len = m.length;
  if (operands.size() >= 1) *off = xfs_io::CvtNum(4096, 512, operands[0]);
  if (operands.size() >= 2) *len = xfs_io::CvtNum(4096, 512, operands[1]);
  if (operands.size() == 1) *len = m.offset + m.length - *off;
  char buf[160];
  if (*off < m.offset) {
    snprintf(buf, sizeof(buf),
             "offset (%lld) is before start of mapping (%lld)\n",
             static_cast<long long>(*off), static_cast<long long>(m.offset));
    out->out = buf;
    return false;
  }
  if (*off + *len > m.offset + m.length) {
    snprintf(
        buf, sizeof(buf), "range (%lld:%lld) is beyond mapping (%lld:%lld)\n",
        static_cast<long long>(*off), static_cast<long long>(*len),
        static_cast<long long>(m.offset), static_cast<long long>(m.length));
    out->out = buf;
    return false;
  }
  return true;
}

Output MwriteCmd(Shell& s, const Args& argv) {
  xfs_io::ParsedOpts p;
  Output out;
  if (!ParseOpts(argv, "rS:", &p, &out)) return out;
  Mapping* m = CurrentMap(s);
  if (m == nullptr) return NoMapping();
  char seed = 'X';
  for (const auto& [c, v] : p.opts) {
    if (c == 'S') seed = static_cast<char>(strtoul(v.c_str(), 0, 0));
  }
  int64_t off = 0, len = 0;
  if (p.operands.size() > 2) return UsageOf(argv);
  if (!MapRange(*m, p.operands, &off, &len, &out)) return out;
  if (!m->write) {
    out.err = "mwrite: mapping is not writable (Bad address)\n";
    out.failed = true;
    return out;
  }
  auto n = Commands::Client(s).MapWrite(m->file, off, std::string(len, seed));
  if (!n.ok()) return Fail("mwrite", n.status());
  return out;
}

Output MreadCmd(Shell& s, const Args& argv) {
  xfs_io::ParsedOpts p;
  Output out;
  if (!ParseOpts(argv, "frv", &p, &out)) return out;
  Mapping* m = CurrentMap(s);
  if (m == nullptr) return NoMapping();
  bool verbose = false;
  for (const auto& o : p.opts) verbose |= o.first == 'v';
  int64_t off = 0, len = 0;
  if (p.operands.size() > 2) return UsageOf(argv);
  if (!MapRange(*m, p.operands, &off, &len, &out)) return out;
  auto data = Commands::Client(s).Read(m->file, off, len);
  if (!data.ok()) return Fail("mread", data.status());
  if (verbose) out.out = xfs_io::DumpBuffer(off, *data);
  return out;
}

Output MsyncCmd(Shell& s, const Args& argv) {
  xfs_io::ParsedOpts p;
  Output out;
  if (!ParseOpts(argv, "ais", &p, &out)) return out;
  Mapping* m = CurrentMap(s);
  if (m == nullptr) return NoMapping();
  int64_t off = 0, len = 0;
  if (!MapRange(*m, p.operands, &off, &len, &out)) return out;
  absl::Status st = Commands::Client(s).Fsync(m->file, false, off, len);
  if (!st.ok()) return Fail("msync", st);
  return out;
}

Output MunmapCmd(Shell& s, const Args&) {
  auto& maps = Commands::Maps(s);
  if (CurrentMap(s) == nullptr) return NoMapping();
  maps.erase(maps.begin() + Commands::CurrentMap(s));
  Commands::CurrentMap(s) = 0;
  return Output();
}

}  // namespace

std::vector<Shell::Command> MmapCommands() {
  return {
      {"mmap", "mm", 0, -1, true, "[N] | [-rwxS] [off len]",
       "mmap a range in the current file, show mappings",
       " Records a mapping of [off, off+len) of the current file for mwrite,\n"
       " mread and msync (-r, -w: protection; default both). Without\n"
       " arguments, lists the mappings.\n",
       MmapCmd, kOneShot},
      {"mread", "mr", 0, -1, true, "[-frv] [off len]",
       "reads data from a region in the current memory mapping",
       " Loads the range (default: the whole mapping); -v dumps it.\n",
       MreadCmd},
      {"msync", "ms", 0, -1, true, "[-ais] [off len]",
       "flush a region in the current memory mapping",
       " Writes back the range and waits (a ranged fsync).\n", MsyncCmd},
      {"munmap", "mu", 0, 0, true, "", "unmaps the current memory mapping",
       " Forgets the current mapping.\n", MunmapCmd},
      {"mwrite", "mw", 0, -1, true, "[-r] [-S seed] [off len]",
       "writes data into a region in the current memory mapping",
       " Stores the seed byte (default 'X') over the range (default: the\n"
       " whole mapping) through the page_mkwrite path (MapWrite RPC). A\n"
       " store past EOF fails with EFAULT, where a real mapping would get\n"
       " SIGBUS.\n",
       MwriteCmd},
  };
}

}  // namespace iomapsh
