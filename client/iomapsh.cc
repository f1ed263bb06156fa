// The Shell: command table, dispatch, help, and the file-table and
// namespace commands (open, close, file, stat, statfs, ls, mkdir, rm,
// rmdir, mv, help, quit).
#include "client/iomapsh.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "base/errno.h"
#include "client/iomapsh_internal.h"

namespace iomapsh {
namespace {

using xfs_io::Output;

const std::vector<Shell::Command>& Table() {
  static const std::vector<Shell::Command>* table = [] {
    auto* t = new std::vector<Shell::Command>(FileCommands());
    for (auto& c : IoCommands()) t->push_back(c);
    for (auto& c : MapCommands()) t->push_back(c);
    for (auto& c : MmapCommands()) t->push_back(c);
    std::sort(t->begin(), t->end(),
              [](const Shell::Command& a, const Shell::Command& b) {
                return std::string(a.name) < b.name;
              });
    return t;
  }();
  return *table;
}

const Shell::Command* Find(const std::string& name) {
  for (const Shell::Command& c : Table()) {
    if (name == c.name || (c.altname && name == c.altname)) return &c;
  }
  return nullptr;
}

timeval RealClock() {
  timeval tv;
  gettimeofday(&tv, nullptr);
  return tv;
}

std::string HelpOneline(const Shell::Command& c) {
  std::string s = c.name;
  if (c.altname) s += std::string(" (or ") + c.altname + ")";
  return s + " " + c.args + " -- " + c.oneline + "\n";
}

}  // namespace

int ErrnumOf(const absl::Status& status) {
  int err = -base::ErrnoOf(status);
  return err > 0 ? err : EIO;
}

Output Fail(const std::string& what, const absl::Status& status) {
  Output out;
  out.err = xfs_io::Perror(what, ErrnumOf(status));
  out.failed = true;
  return out;
}

Output UsageOf(const Args& argv) {
  Output out;
  const Shell::Command* c = Find(argv[0]);
  if (c) out.out = xfs_io::Usage(c->name, c->args, c->oneline);
  return out;
}

xfs_io::NumUnits Units(Shell& shell) {
  xfs_io::NumUnits units;
  units.block_size = shell.BlockSize();
  return units;
}

int64_t Shell::BlockSize() {
  if (block_size_ == 0) {
    auto fs = client_->StatFs(volume_);
    block_size_ = fs.ok() && fs->bsize() > 0 ? fs->bsize() : 4096;
  }
  return block_size_;
}

Shell::Shell(client::Client* client, std::string volume)
    : client_(client), volume_(std::move(volume)), clock_(RealClock) {}

timeval Shell::Elapsed(const timeval& start) const {
  timeval now = clock_();
  timeval d{now.tv_sec - start.tv_sec, now.tv_usec - start.tv_usec};
  if (d.tv_usec < 0) {
    d.tv_usec += 1000000;
    d.tv_sec--;
  }
  return d;
}

std::vector<std::string> Shell::CommandNames() const {
  std::vector<std::string> names;
  for (const Command& c : Table()) names.push_back(c.name);
  return names;
}

Output Shell::Execute(const std::string& line) {
  const Args argv = xfs_io::BreakLine(line);
  Output out;
  if (argv.empty()) return out;
  const Command* cmd = Find(argv[0]);
  if (cmd == nullptr) {
    out.err = "command \"" + argv[0] + "\" not found\n";
    out.failed = true;
    return out;
  }
  return Dispatch(*cmd, argv);
}

Output Shell::ExecuteOnEachFile(const std::string& line) {
  const Args argv = xfs_io::BreakLine(line);
  if (argv.empty()) return Output();
  const Command* cmd = Find(argv[0]);
  if (cmd == nullptr || cmd->oneshot) return Execute(line);
  Output all;
  for (size_t i = 0; i < files_.size(); i++) {
    current_ = i;
    Output one = Dispatch(*cmd, argv);
    all.out += one.out;
    all.err += one.err;
    all.failed |= one.failed;
  }
  return all;
}

Output Shell::Dispatch(const Command& cmd, const Args& argv) {
  Output out;
  out.err = xfs_io::BadArgCount(argv[0], static_cast<int>(argv.size()) - 1,
                                cmd.argmin, cmd.argmax);
  if (!out.err.empty()) {
    out.failed = true;
    return out;
  }
  if (cmd.needs_file && current() == nullptr) {
    out.err = "no files are open, try 'help open'\n";
    out.failed = true;
    return out;
  }
  return cmd.fn(*this, argv);
}

Output Shell::OpenInitial(const std::string& path, const std::string& flags) {
  Args argv = {"open"};
  if (!flags.empty()) argv.push_back("-" + flags);
  argv.push_back(path);
  return Dispatch(*Find("open"), argv);
}

// ---------------------------------------------------------------- commands

namespace {

Output HelpCmd(Shell&, const Args& argv) {
  Output out;
  if (argv.size() == 1) {
    for (const Shell::Command& c : Table()) out.out += HelpOneline(c);
    out.out += "\nUse 'help commandname' for extended help.\n";
    return out;
  }
  const Shell::Command* c = Find(argv[1]);
  if (c == nullptr) {
    out.err = "command " + argv[1] + " not found\n";
    out.failed = true;
    return out;
  }
  out.out = HelpOneline(*c) + "\n" + c->help + "\n";
  return out;
}

Output QuitCmd(Shell& s, const Args&) {
  Commands::SetQuit(s);
  return Output();
}

uint32_t OpenFlags(bool read_only, bool sync, bool direct, bool append,
                   bool trunc) {
  uint32_t f = v1::OPEN_FLAG_READ;
  if (!read_only) f |= v1::OPEN_FLAG_WRITE;
  if (sync) f |= v1::OPEN_FLAG_SYNC;
  if (direct) f |= v1::OPEN_FLAG_DIRECT;
  if (append) f |= v1::OPEN_FLAG_APPEND;
  if (trunc) f |= v1::OPEN_FLAG_TRUNC;
  return f;
}

std::string TypeName(v1::FileType type) {
  switch (type) {
    case v1::FILE_TYPE_DIRECTORY:
      return xfs_io::FileTypeName(S_IFDIR);
    case v1::FILE_TYPE_SYMLINK:
      return xfs_io::FileTypeName(S_IFLNK);
    default:
      return xfs_io::FileTypeName(S_IFREG);
  }
}

Output StatCmd(Shell& s, const Args& argv) {
  xfs_io::ParsedOpts p;
  std::string error;
  if (!xfs_io::GetOpts(argv, "rv", &p, &error)) {
    Output out = UsageOf(argv);
    out.err = error;
    return out;
  }
  bool verbose = false;
  for (const auto& o : p.opts) verbose |= o.first == 'v';
  ShellFile* f = Commands::Current(s);
  auto attr = Commands::Client(s).Stat(f->file.handle);
  if (!attr.ok()) return Fail("stat", attr.status());
  xfs_io::StatInfo info;
  info.path = f->name;
  info.sync = f->sync;
  info.direct = f->direct;
  info.read_only = f->read_only;
  info.append = f->append;
  info.ino = attr->inode();
  info.type = TypeName(attr->type());
  info.size = attr->size();
  info.blocks = attr->blocks();
  info.atime_sec = attr->atime_ns() / 1000000000;
  info.mtime_sec = attr->mtime_ns() / 1000000000;
  info.ctime_sec = attr->ctime_ns() / 1000000000;
  Output out;
  out.out = xfs_io::FormatStat(info, verbose);
  return out;
}

Output OpenCmd(Shell& s, const Args& argv) {
  xfs_io::ParsedOpts p;
  std::string error;
  if (!xfs_io::GetOpts(argv, "adfm:rst", &p, &error) || p.operands.size() > 1) {
    Output out = UsageOf(argv);
    out.err = error;
    return out;
  }
  if (p.operands.empty()) {
    if (Commands::Current(s) == nullptr) {
      Output out;
      out.err = "no files are open, try 'help open'\n";
      out.failed = true;
      return out;
    }
    return StatCmd(s, {"stat"});
  }
  ShellFile f;
  f.name = p.operands[0];
  bool create = false, trunc = false;
  uint32_t mode = 0600;
  for (const auto& [c, value] : p.opts) {
    if (c == 'a') f.append = true;
    if (c == 'd') f.direct = true;
    if (c == 'f') create = true;
    if (c == 'm') mode = static_cast<uint32_t>(strtoul(value.c_str(), 0, 8));
    if (c == 'r') f.read_only = true;
    if (c == 's') f.sync = true;
    if (c == 't') trunc = true;
  }
  auto opened = Commands::Client(s).OpenPath(
      Commands::Volume(s), f.name,
      OpenFlags(f.read_only, f.sync, f.direct, f.append, trunc), create, mode);
  if (!opened.ok()) return Fail(f.name, opened.status());
  f.file = *opened;
  Commands::Files(s).push_back(f);
  Commands::CurrentIndex(s) = Commands::Files(s).size() - 1;
  return Output();
}

std::string FileLine(const ShellFile& f, size_t i, bool current) {
  char buf[64];
  snprintf(buf, sizeof(buf), "%c%03zu%c %-14s", current ? '[' : ' ', i,
           current ? ']' : ' ', f.name.c_str());
  // iomapd's files are not on XFS: xfs_io calls them "foreign".
  return std::string(buf) + " (foreign," + (f.sync ? "sync" : "non-sync") +
         "," + (f.direct ? "direct" : "non-direct") + "," +
         (f.read_only ? "read-only" : "read-write") +
         (f.append ? ",append-only" : "") + ")\n";
}

std::string FileList(Shell& s) {
  std::string list;
  const auto& files = Commands::Files(s);
  for (size_t i = 0; i < files.size(); i++) {
    list += FileLine(files[i], i, i == Commands::CurrentIndex(s));
  }
  return list;
}

// As xfs_io: the file after the closed one becomes current (the one before
// when the last was closed), and the remaining table is listed.
Output CloseCmd(Shell& s, const Args&) {
  auto& files = Commands::Files(s);
  size_t& cur = Commands::CurrentIndex(s);
  absl::Status st = Commands::Client(s).Close(files[cur].file);
  if (!st.ok()) return Fail("close", st);
  files.erase(files.begin() + cur);
  if (cur == files.size() && cur > 0) cur--;
  Commands::Maps(s).clear();
  Output out;
  out.out = FileList(s);
  return out;
}

Output FileCmd(Shell& s, const Args& argv) {
  auto& files = Commands::Files(s);
  Output out;
  if (argv.size() == 2) {
    char* end = nullptr;
    unsigned long n = strtoul(argv[1].c_str(), &end, 10);
    if (*end != '\0' || n >= files.size()) {
      out.out = "value " + argv[1] + " is out of range (0-" +
                std::to_string(files.empty() ? 0 : files.size() - 1) + ")\n";
      out.failed = true;
      return out;
    }
    Commands::CurrentIndex(s) = n;
  }
  out.out = FileList(s);
  return out;
}

Output StatFsCmd(Shell& s, const Args&) {
  auto fs = Commands::Client(s).StatFs(Commands::Volume(s));
  if (!fs.ok()) return Fail("statfs", fs.status());
  ShellFile* f = Commands::Current(s);
  xfs_io::StatFsInfo info{f ? f->name : "", fs->bsize(), fs->blocks(),
                          fs->bavail(),     fs->files(), fs->ffree(),
                          fs->flags()};
  Output out;
  out.out = xfs_io::FormatStatFs(info);
  return out;
}

Output LsCmd(Shell& s, const Args& argv) {
  const std::string path = argv.size() > 1 ? argv[1] : "/";
  auto& c = Commands::Client(s);
  auto dir = c.LookupPath(Commands::Volume(s), path);
  if (!dir.ok()) return Fail(path, dir.status());
  auto entries = c.ReaddirAll(dir->handle());
  if (!entries.ok()) return Fail(path, entries.status());
  Output out;
  for (const v1::DirEntry& e : *entries) {
    out.out +=
        e.name() + (e.type() == v1::FILE_TYPE_DIRECTORY ? "/" : "") + "\n";
  }
  return out;
}

Output MkdirCmd(Shell& s, const Args& argv) {
  auto& c = Commands::Client(s);
  auto parent = c.LookupParent(Commands::Volume(s), argv[1]);
  if (!parent.ok()) return Fail(argv[1], parent.status());
  auto made = c.Mkdir(parent->first, parent->second, 0755);
  if (!made.ok()) return Fail(argv[1], made.status());
  return Output();
}

Output RemoveCmd(Shell& s, const Args& argv) {
  auto& c = Commands::Client(s);
  auto parent = c.LookupParent(Commands::Volume(s), argv[1]);
  if (!parent.ok()) return Fail(argv[1], parent.status());
  absl::Status st = argv[0] == "rmdir"
                        ? c.Rmdir(parent->first, parent->second)
                        : c.Unlink(parent->first, parent->second);
  if (!st.ok()) return Fail(argv[1], st);
  return Output();
}

Output MvCmd(Shell& s, const Args& argv) {
  auto& c = Commands::Client(s);
  auto src = c.LookupParent(Commands::Volume(s), argv[1]);
  if (!src.ok()) return Fail(argv[1], src.status());
  auto dst = c.LookupParent(Commands::Volume(s), argv[2]);
  if (!dst.ok()) return Fail(argv[2], dst.status());
  absl::Status st =
      c.Rename(src->first, src->second, dst->first, dst->second, 0);
  if (!st.ok()) return Fail("rename", st);
  return Output();
}

}  // namespace

std::vector<Shell::Command> FileCommands() {
  return {
      {"close", "c", 0, 0, true, "", "close the current open file",
       " Closes the current file (and its open-file id on the server); the\n"
       " first remaining file becomes current.\n",
       CloseCmd, kOneShot},
      {"file", "f", 0, 1, true, "[N]", "set the current file",
       " Lists the open files, or makes file N current.\n", FileCmd, kOneShot},
      {"help", "?", 0, 1, false, "[command]", "help for one or all commands",
       " Shows every command, or the details of one.\n", HelpCmd, kOneShot},
      {"ls", nullptr, 0, 1, false, "[path]", "list a directory",
       " Lists the entries of a directory of the volume (default: the root),\n"
       " one per line, directories with a trailing '/'.\n",
       LsCmd, kOneShot},
      {"mkdir", nullptr, 1, 1, false, "path", "make a directory",
       " Creates a directory (mode 0755).\n", MkdirCmd, kOneShot},
      {"mv", nullptr, 2, 2, false, "from to", "rename a file or directory",
       " Renames within the volume, replacing an existing target file.\n",
       MvCmd, kOneShot},
      {"open", "o", 0, -1, false, "[-adfrst] [-m mode] [path]",
       "open the file specified by path",
       " Opens a file of the volume and makes it current. Without a path,\n"
       " shows the current file as 'stat' does.\n"
       " -a -- append mode\n"
       " -d -- direct I/O (every read and write bypasses the pagecache)\n"
       " -f -- create the file if it does not exist\n"
       " -m -- mode for a created file (octal, default 0600)\n"
       " -r -- read-only\n"
       " -s -- synchronous writes (O_SYNC)\n"
       " -t -- truncate to zero length\n",
       OpenCmd, kOneShot},
      {"quit", "q", 0, 0, false, "", "exit the program", " Leaves iomapsh.\n",
       QuitCmd, kOneShot},
      {"rm", nullptr, 1, 1, false, "path", "remove a file",
       " Unlinks a file.\n", RemoveCmd, kOneShot},
      {"rmdir", nullptr, 1, 1, false, "path", "remove an empty directory",
       " Removes an empty directory.\n", RemoveCmd, kOneShot},
      {"stat", nullptr, 0, 1, true, "[-v|-r]",
       "statistics on the currently open file",
       " Prints the open file's mode flags, inode number, type, size and\n"
       " 512-byte blocks; -v adds the access, modify and change times.\n",
       StatCmd},
      {"statfs", nullptr, 0, 0, false, "",
       "statistics on the filesystem of the currently open file",
       " Prints the volume's block size, block and inode counts and flags.\n",
       StatFsCmd},
  };
}

}  // namespace iomapsh
