#include "fs/testing/crash_workload.h"

#include <linux/falloc.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <sstream>
#include <utility>

#include "fs/testing/volume_helpers.h"
#include "gtest/gtest.h"

namespace fs {
namespace testing {
namespace {

constexpr int kNames = 4;  // f0..f3 in the root and in "d"

std::string Str(int64_t v) { return std::to_string(v); }

}  // namespace

CrashWorkload::CrashWorkload(Volume* vol, const CrashWorkloadOptions& options,
                             uint64_t seed, std::function<bool()> dead)
    : vol_(vol), opt_(options), rng_(seed), dead_(std::move(dead)) {}

CrashWorkload::~CrashWorkload() { CloseAll(); }

void CrashWorkload::Note(const std::string& what) { history_.push_back(what); }

std::string CrashWorkload::History() const {
  std::ostringstream os;
  for (size_t i = 0; i < history_.size(); ++i)
    os << "  " << i << ": " << history_[i] << "\n";
  return os.str();
}

bool CrashWorkload::Ok(int64_t r, int64_t want, const std::string& what) {
  Note(what + " = " + Str(r));
  if (r == want || dead_()) return true;
  ADD_FAILURE() << what << " returned " << r << ", want " << want;
  failed_ = true;
  return false;
}

FileHandle CrashWorkload::DirOf(const std::string& path) const {
  return path.compare(0, 2, "d/") == 0 ? sub_ : root_;
}

std::string CrashWorkload::NameOf(const std::string& path) {
  return path.compare(0, 2, "d/") == 0 ? path.substr(2) : path;
}

std::string CrashWorkload::RandomPath() {
  const int i = static_cast<int>(rng_() % (2 * kNames));
  return std::string(i < kNames ? "" : "d/") + "f" + Str(i % kNames);
}

std::string CrashWorkload::ExistingPath() {
  const NamespaceModel::State& s = ns_.current();
  if (s.empty()) return "";
  auto it = s.begin();
  std::advance(it, Below(static_cast<int64_t>(s.size())));
  return it->first;
}

int CrashWorkload::Live() const {
  int n = 0;
  for (const auto& i : inodes_) n += (i->links > 0 || i->file) ? 1 : 0;
  return n;
}

int CrashWorkload::OpenInode(int id) {
  Inode& n = *inodes_[id];
  if (n.file) return id;
  const int r = vol_->Open(n.h, &n.file);
  if (!Ok(r, 0, "open #" + Str(id))) return -1;
  return r == 0 ? id : -1;
}

int CrashWorkload::PickFile() {
  std::vector<int> live;
  for (size_t i = 0; i < inodes_.size(); ++i)
    if (inodes_[i]->links > 0 || inodes_[i]->file) live.push_back(i);
  if (live.empty()) return -1;
  return OpenInode(live[Below(static_cast<int64_t>(live.size()))]);
}

bool CrashWorkload::Setup() {
  root_ = vol_->root();
  InodeAttr a;
  if (!Ok(vol_->Mkdir(root_, "d", 0755, &a), 0, "mkdir d")) return false;
  sub_ = FileHandle{a.ino, a.generation};
  for (const char* path : {"f0", "d/f1", "f2"}) {
    if (!CreatePath(path)) return false;
  }
  const int last = static_cast<int>(inodes_.size()) - 1;
  if (OpenInode(last) < 0) return false;
  if (!Ok(inodes_[last]->file->Fsync(), 0, "fsync #" + Str(last))) return false;
  inodes_[last]->model.Sync();
  ns_.Synced(last);  // every create before it is durable too
  return !failed_;
}

bool CrashWorkload::Step() {
  if (failed_ || dead_()) return false;
  const int dice = static_cast<int>(rng_() % 100);
  if (dice < 26) {
    WriteOp();
  } else if (dice < 38) {
    Fsync();
  } else if (dice < 44) {
    TruncateOp();
  } else if (dice < 56) {
    FallocateOp();
  } else if (dice < 64) {
    Clone();
  } else if (dice < 68) {
    Dedupe();
  } else if (dice < 75) {
    Create();
  } else if (dice < 78) {
    Link();
  } else if (dice < 81) {
    Unlink();
  } else if (dice < 89) {
    Rename();
  } else if (dice < 94) {
    Close();
  } else if (dice < 96) {
    CheckpointOp();
  } else {
    Note("kick flusher");
    vol_->flusher()->Kick();
  }
  return !failed_ && !dead_();
}

void CrashWorkload::CloseAll() {
  for (auto& i : inodes_) i->file.reset();  // errors after a crash: ignored
}

bool CrashWorkload::CreatePath(const std::string& path) {
  const bool exists = ns_.current().count(path) != 0;
  InodeAttr a;
  const int r = vol_->Create(DirOf(path), NameOf(path), 0644, true, &a);
  if (exists) return Ok(r, -EEXIST, "create " + path + " (exists)");
  if (r != 0) return Ok(r, 0, "create " + path);
  const int id = static_cast<int>(inodes_.size());
  inodes_.push_back(std::make_unique<Inode>(opt_.max_file));
  inodes_.back()->h = FileHandle{a.ino, a.generation};
  NamespaceModel::State next = ns_.current();
  next[path] = id;
  ns_.Commit(std::move(next), {id});
  Note("create " + path + " -> #" + Str(id) + " ino " + Str(a.ino));
  return true;
}

bool CrashWorkload::Create() {
  const std::string path = RandomPath();
  if (ns_.current().count(path) == 0 && Live() >= opt_.max_inodes) return true;
  const size_t before = inodes_.size();
  if (!CreatePath(path)) return false;
  if (inodes_.size() > before && rng_() % 2 == 0)
    return OpenInode(static_cast<int>(before)) >= 0;
  return true;
}

uint8_t CrashWorkload::NextValue() {
  if (++next_value_ == 0) ++next_value_;
  return next_value_;
}

bool CrashWorkload::WriteOp() {
  const int id = PickFile();
  if (id < 0) return true;
  const int64_t max = opt_.max_file;
  const int64_t pos = Below(max - 1);
  const int64_t cap = rng_() % 4 == 0 ? opt_.block_size : max / 4;
  const int64_t len = 1 + Below(std::min(cap, max - pos));
  const std::string data(static_cast<size_t>(len),
                         static_cast<char>(NextValue()));
  switch (rng_() % 8) {
    case 0:
      return WriteData(id, pos, data, OpenFile::kSync);
    case 1:
      return MapWrite(id, data);
    case 2:
      if (inodes_[id]->model.size() + len <= max)
        return WriteData(id, inodes_[id]->model.size(), data,
                         OpenFile::kAppend);
      break;
  }
  return WriteData(id, pos, data);
}

bool CrashWorkload::WriteData(int id, int64_t pos, const std::string& data,
                              unsigned flags) {
  Inode& n = *inodes_[id];
  const int64_t len = static_cast<int64_t>(data.size());
  const bool before = dead_();
  const int64_t r = n.file->Write(pos, data.data(), data.size(), flags);
  const bool after = dead_();
  const bool ok =
      Ok(r, len,
         "write #" + Str(id) + " [" + Str(pos) + ", +" + Str(len) + ") value " +
             Str(data[0] & 0xff) + " flags " + Str(flags >> 20));
  if (ok) n.model.Write(pos, data);  // after a crash: a possible outcome
  if (ok && (flags & OpenFile::kSync) && r == len && !before && !after) {
    n.model.SyncRange(pos, len);
    ++durable_fsyncs_;
  }
  return ok;
}

// A store through a shared mapping (page_mkwrite), inside the size.
bool CrashWorkload::MapWrite(int id, std::string data) {
  Inode& n = *inodes_[id];
  if (n.model.size() == 0) return true;
  const int64_t pos = Below(n.model.size());
  data.resize(static_cast<size_t>(
      std::min<int64_t>(data.size(), n.model.size() - pos)));
  const int64_t len = static_cast<int64_t>(data.size());
  const int64_t r = n.file->MapWrite(pos, data.data(), data.size());
  const bool ok = Ok(r, len,
                     "mapwrite #" + Str(id) + " [" + Str(pos) + ", +" +
                         Str(len) + ") value " + Str(data[0] & 0xff));
  if (ok) n.model.Write(pos, data);
  return ok;
}

bool CrashWorkload::Fsync() {
  const int id = PickFile();
  if (id < 0) return true;
  const bool before = dead_();
  const int r = inodes_[id]->file->Fsync();
  const bool after = dead_();
  if (!Ok(r, 0, "fsync #" + Str(id))) return false;
  if (r == 0 && !before && !after) {
    inodes_[id]->model.Sync();
    ns_.Synced(id);
    ++durable_fsyncs_;
  }
  return true;
}

bool CrashWorkload::TruncateOp() {
  const int id = PickFile();
  if (id < 0) return true;
  const int64_t size = Below(opt_.max_file + 1);
  const int r = inodes_[id]->file->Truncate(size);
  if (!Ok(r, 0, "truncate #" + Str(id) + " to " + Str(size))) return false;
  inodes_[id]->model.SetSize(size);
  return true;
}

bool CrashWorkload::FallocateOp() {
  static const int kModes[] = {
      0,
      FALLOC_FL_KEEP_SIZE,
      FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
      FALLOC_FL_ZERO_RANGE,
      FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
      FALLOC_FL_UNSHARE_RANGE,
      FALLOC_FL_UNSHARE_RANGE | FALLOC_FL_KEEP_SIZE,
  };
  const int id = PickFile();
  if (id < 0) return true;
  const int mode = kModes[rng_() % (sizeof(kModes) / sizeof(kModes[0]))];
  const int64_t max = opt_.max_file;
  const int64_t off = Below(max - 1);
  const int64_t len = 1 + Below(std::min(max - off, max / 2));
  const int r = inodes_[id]->file->Fallocate(mode, off, len);
  if (!Ok(r, 0,
          "fallocate #" + Str(id) + " mode " + Str(mode) + " [" + Str(off) +
              ", +" + Str(len) + ")"))
    return false;
  FileModel& m = inodes_[id]->model;
  if (!(mode & FALLOC_FL_KEEP_SIZE)) m.Extend(off + len);
  if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) m.Zero(off, len);
  return true;
}

// Block-aligned source and destination ranges; sometimes a length to the
// source's EOF (not aligned) landing at or past the destination's EOF.
bool CrashWorkload::Clone() {
  const int s = PickFile();
  const int d = s < 0 ? -1 : PickFile();
  if (d < 0) return true;
  const int64_t bs = opt_.block_size, max = opt_.max_file;
  const FileModel& src = inodes_[s]->model;
  FileModel& dst = inodes_[d]->model;
  if (src.size() < bs) return true;
  const int64_t so = bs * Below(src.size() / bs);
  const int64_t avail = src.size() - so;
  int64_t len = bs * (1 + Below(std::min(avail / bs, max / bs / 2)));
  int64_t dof = bs * Below((max - len) / bs + 1);
  const int64_t dst_end_block = (dst.size() + bs - 1) / bs;
  if (rng_() % 4 == 0 && avail % bs != 0 && bs * dst_end_block + avail <= max) {
    len = avail;  // to src EOF, landing past dst EOF
    dof = bs * (dst_end_block + Below((max - avail) / bs - dst_end_block + 1));
  }
  if (s == d && dof < so + len && so < dof + len) return true;
  const std::string data = src.current().substr(so, len);
  const int64_t r =
      inodes_[d]->file->CloneRange(inodes_[s]->file.get(), so, dof, len);
  if (!Ok(r, len,
          "clone #" + Str(s) + " [" + Str(so) + ", +" + Str(len) + ") to #" +
              Str(d) + " at " + Str(dof)))
    return false;
  dst.Write(dof, data);
  return true;
}

bool CrashWorkload::Dedupe() {
  const int s = PickFile();
  const int d = s < 0 ? -1 : PickFile();
  if (d < 0) return true;
  const int64_t bs = opt_.block_size;
  const FileModel& src = inodes_[s]->model;
  const FileModel& dst = inodes_[d]->model;
  if (src.size() < bs || dst.size() < bs) return true;
  const int64_t so = bs * Below(src.size() / bs);
  const int64_t dof = bs * Below(dst.size() / bs);
  const int64_t len =
      bs *
      (1 + Below(std::min((src.size() - so) / bs, (dst.size() - dof) / bs)));
  if (s == d && dof < so + len && so < dof + len) return true;
  if (rng_() % 2 == 0 && !WriteData(d, dof, src.current().substr(so, len)))
    return false;
  const bool same =
      src.current().compare(so, len, dst.current(), dof, len) == 0;
  const int64_t r =
      inodes_[d]->file->DedupeRange(inodes_[s]->file.get(), so, dof, len);
  return Ok(r, same ? len : -EBADE,
            "dedupe #" + Str(s) + " [" + Str(so) + ", +" + Str(len) + ") to #" +
                Str(d) + " at " + Str(dof));
}

bool CrashWorkload::Link() {
  const std::string target = ExistingPath();
  if (target.empty()) return true;
  const std::string path = RandomPath();
  const int id = ns_.current().at(target);
  InodeAttr a;
  const int r = vol_->Link(inodes_[id]->h, DirOf(path), NameOf(path), &a);
  const std::string what = "link " + target + " " + path;
  if (ns_.current().count(path) != 0) return Ok(r, -EEXIST, what);
  if (r != 0) return Ok(r, 0, what);
  Note(what);
  NamespaceModel::State next = ns_.current();
  next[path] = id;
  ns_.Commit(std::move(next), {id});
  ++inodes_[id]->links;
  return true;
}

bool CrashWorkload::Unlink() {
  const std::string path = ExistingPath();
  if (path.empty()) return true;
  const int id = ns_.current().at(path);
  const int r = vol_->Unlink(DirOf(path), NameOf(path));
  if (r != 0) return Ok(r, 0, "unlink " + path);
  NamespaceModel::State next = ns_.current();
  next.erase(path);
  ns_.Commit(std::move(next), {id});
  --inodes_[id]->links;
  Note("unlink " + path + " (#" + Str(id) +
       (inodes_[id]->file ? ", open)" : ")"));
  return true;
}

bool CrashWorkload::Rename() {
  const std::string src = ExistingPath();
  if (src.empty()) return true;
  const std::string dst = RandomPath();
  NamespaceModel::State next = ns_.current();
  const bool target = next.count(dst) != 0 && next[dst] != next[src];
  const bool exchange = target && rng_() % 4 == 0;
  const int r = vol_->Rename(DirOf(src), NameOf(src), DirOf(dst), NameOf(dst),
                             exchange ? Namespace::kRenameExchange : 0);
  const std::string what =
      (exchange ? "exchange " : "rename ") + src + " " + dst;
  const bool same = next.count(dst) != 0 && next[dst] == next[src];
  if (!Ok(r, 0, what) || r != 0 || same) return !failed_;  // same: no-op
  const int a = next[src];
  if (exchange) {
    const int b = next[dst];
    next[src] = b;
    next[dst] = a;
    ns_.Commit(std::move(next), {a, b});
    return true;
  }
  std::vector<int> touched = {a};
  if (target) {
    touched.push_back(next[dst]);
    --inodes_[next[dst]]->links;
  }
  next[dst] = a;
  next.erase(src);
  ns_.Commit(std::move(next), touched);
  return true;
}

bool CrashWorkload::Close() {
  std::vector<int> open;
  for (size_t i = 0; i < inodes_.size(); ++i)
    if (inodes_[i]->file) open.push_back(static_cast<int>(i));
  if (open.empty()) return true;
  const int id = open[Below(static_cast<int64_t>(open.size()))];
  const int r = inodes_[id]->file->Close();
  inodes_[id]->file.reset();
  return Ok(r, 0, "close #" + Str(id));
}

bool CrashWorkload::CheckpointOp() {
  absl::Status s = vol_->Checkpoint();
  return Ok(s.ok() ? 0 : -EIO, 0, "checkpoint " + s.ToString());
}

void CrashWorkload::ReadTree(Volume* vol, NamespaceModel::State* got,
                             bool* ok) {
  InodeAttr d;
  if (vol->Lookup(vol->root(), "d", &d) != 0) {
    ADD_FAILURE() << "directory d is gone";
    *ok = false;
    return;
  }
  for (const auto& [dir, prefix] :
       {std::make_pair(vol->root(), std::string()),
        std::make_pair(FileHandle{d.ino, d.generation}, std::string("d/"))}) {
    uint64_t cookie = 0;
    bool eof = false;
    while (!eof) {
      std::vector<DirEntryInfo> entries;
      if (vol->Readdir(dir, cookie, 64, &entries, &eof) != 0 || entries.empty())
        break;
      cookie = entries.back().cookie;
      for (const DirEntryInfo& e : entries) {
        if (e.is_dir) continue;  // "d" itself
        InodeAttr a;
        EXPECT_EQ(vol->Lookup(dir, e.name, &a), 0) << prefix << e.name;
        int id = -1;
        for (size_t i = 0; i < inodes_.size(); ++i) {
          if (inodes_[i]->h.ino == a.ino &&
              inodes_[i]->h.generation == a.generation)
            id = static_cast<int>(i);
        }
        if (id < 0) {
          ADD_FAILURE() << prefix << e.name << " names unknown inode " << a.ino
                        << " gen " << a.generation;
          *ok = false;
        }
        (*got)[prefix + e.name] = id;
      }
    }
  }
}

void CrashWorkload::VerifyFile(Volume* vol, const std::string& path,
                               const Inode& ino) {
  std::unique_ptr<OpenFile> f;
  ASSERT_EQ(vol->Open(ino.h, &f), 0) << path;
  const int64_t size = f->size();
  std::string got = ReadAll(f.get(), 0, static_cast<size_t>(size) + 1);
  EXPECT_EQ(static_cast<int64_t>(got.size()), size) << path;
  const std::string err = ino.model.Check(got);
  EXPECT_EQ(err, "") << path << " (" << ino.h.ino << ")";
  EXPECT_EQ(f->Close(), 0);
}

void CrashWorkload::Verify(Volume* vol) {
  NamespaceModel::State got;
  bool ok = true;
  ReadTree(vol, &got, &ok);
  if (!ok) return;
  if (ns_.Match(got) < 0) {
    ADD_FAILURE() << "names after the crash " << NamespaceModel::Describe(got)
                  << " match no state from op " << ns_.floor() << " ("
                  << NamespaceModel::Describe(ns_.at(ns_.floor())) << ") to op "
                  << ns_.ops() - 1 << " ("
                  << NamespaceModel::Describe(ns_.current()) << ")";
    return;
  }
  std::map<int, uint32_t> links;
  for (const auto& [path, id] : got) {
    if (++links[id] == 1) VerifyFile(vol, path, *inodes_[id]);
  }
  for (const auto& [id, n] : links) {
    InodeAttr a;
    EXPECT_EQ(vol->GetAttr(inodes_[id]->h, &a), 0);
    EXPECT_EQ(a.nlink, n) << "link count of #" << id;
  }
  // Root, "d" and the named files: orphans were freed at mount.
  EXPECT_EQ(vol->InodeCount(), 2 + links.size());
  EXPECT_EQ(vol->ReservedBlocks(), 0u);
  ExpectClean(vol);
}

}  // namespace testing
}  // namespace fs
