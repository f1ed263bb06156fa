// Volumes, the namespace, open and close (server/ops.h).
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/ops.h"

namespace server {

Outcome FromErrno(int neg_errno, const char* what) {
  if (neg_errno >= 0) return Outcome{};
  return Outcome{-neg_errno,
                 absl::StrCat(what, ": ", std::strerror(-neg_errno))};
}

Outcome Fail(int neg_errno, std::string message) {
  return Outcome{-neg_errno, std::move(message)};
}

Ops::Ops(VolumeSet* volumes, const OpsOptions& options)
    : volumes_(volumes), options_(options) {}

namespace {

v1::FileType TypeOf(uint32_t mode) {
  if (S_ISDIR(mode)) return v1::FILE_TYPE_DIRECTORY;
  if (S_ISLNK(mode)) return v1::FILE_TYPE_SYMLINK;
  return v1::FILE_TYPE_REGULAR;
}

// The names the namespace accepts are its business (ENAMETOOLONG, EINVAL
// for '/' or NUL); an empty name is refused here as the VFS does.
bool EmptyName(const std::string& name) { return name.empty(); }

}  // namespace

void Ops::FillAttr(const fs::InodeAttr& a, fs::Volume* vol, v1::Attr* out) {
  out->set_inode(a.ino);
  out->set_generation(a.generation);
  out->set_type(TypeOf(a.mode));
  out->set_mode(a.mode & 07777);
  out->set_nlink(a.nlink);
  out->set_uid(a.uid);
  out->set_gid(a.gid);
  out->set_size(static_cast<int64_t>(a.size));
  uint64_t blocks = 0;
  // A file freed since `a` was read has no blocks left to count.
  if (vol->StatBlocks(fs::FileHandle{a.ino, a.generation}, &blocks) < 0) {
    blocks = 0;
  }
  out->set_blocks(static_cast<int64_t>(blocks));
  out->set_blksize(vol->superblock().block_size);
  out->set_atime_ns(a.atime_ns);
  out->set_mtime_ns(a.mtime_ns);
  out->set_ctime_ns(a.ctime_ns);
}

Outcome Ops::ResolveDir(const v1::FileHandle& h, Resolved* out) {
  std::string why;
  if (int err = volumes_->Resolve(h, out, &why); err < 0) return Fail(err, why);
  return Outcome{};
}

Outcome Ops::ListVolumes(const v1::ListVolumesRequest&,
                         v1::ListVolumesResponse* r) {
  for (const std::string& name : volumes_->Names()) {
    fs::Volume* vol = volumes_->Find(name);
    fs::InodeAttr root;
    if (int err = vol->GetAttr(vol->root(), &root); err < 0) {
      return FromErrno(err, "root directory");
    }
    v1::VolumeInfo* info = r->add_volumes();
    info->set_name(name);
    *info->mutable_root() =
        volumes_->WireHandle(name, root.ino, root.generation);
    info->set_block_size(vol->superblock().block_size);
    info->set_read_only(false);
  }
  return Outcome{};
}

Outcome Ops::StatFs(const v1::StatFsRequest& q, v1::StatFsResponse* r) {
  fs::Volume* vol = volumes_->Find(q.volume());
  if (vol == nullptr) {
    return Fail(-ENOENT, absl::StrCat("no volume named '", q.volume(), "'"));
  }
  const fs::Superblock& sb = vol->superblock();
  uint64_t free = vol->FreeBlocks();
  uint64_t reserved = vol->ReservedBlocks();
  uint64_t avail = free > reserved ? free - reserved : 0;
  uint64_t files = sb.max_inodes;
  uint64_t used = vol->InodeCount();
  r->set_bsize(sb.block_size);
  r->set_frsize(sb.block_size);
  r->set_blocks(sb.block_count - sb.data_start);
  r->set_bfree(avail);
  r->set_bavail(avail);
  r->set_files(files);
  r->set_ffree(files > used ? files - used : 0);
  r->set_namelen(255);
  r->set_flags(0);
  return Outcome{};
}

Outcome Ops::Lookup(const v1::LookupRequest& q, v1::LookupResponse* r) {
  Resolved d;
  if (Outcome o = ResolveDir(q.parent(), &d); !o.ok()) return o;
  if (EmptyName(q.name())) return Fail(-ENOENT, "lookup: empty name");
  fs::InodeAttr a;
  if (int err = d.vol->Lookup(d.fh, q.name(), &a); err < 0) {
    return FromErrno(err, "lookup");
  }
  *r->mutable_handle() =
      volumes_->WireHandle(q.parent().volume(), a.ino, a.generation);
  FillAttr(a, d.vol, r->mutable_attr());
  return Outcome{};
}

Outcome Ops::Create(const v1::CreateRequest& q, v1::CreateResponse* r) {
  Resolved d;
  if (Outcome o = ResolveDir(q.parent(), &d); !o.ok()) return o;
  if (EmptyName(q.name())) return Fail(-ENOENT, "create: empty name");
  if (q.mode() & ~07777u)
    return Fail(-EINVAL, "create: mode has bits past 07777");
  // An exclusive create that succeeds made the file; a non-exclusive one
  // tries exclusive first so that `created` is exact without a race.
  fs::InodeAttr a;
  int err = d.vol->Create(d.fh, q.name(), q.mode(), true, &a);
  r->set_created(err == 0);
  if (err == -EEXIST && !q.exclusive()) {
    err = d.vol->Create(d.fh, q.name(), q.mode(), false, &a);
  }
  if (err < 0) return FromErrno(err, "create");
  *r->mutable_handle() =
      volumes_->WireHandle(q.parent().volume(), a.ino, a.generation);
  FillAttr(a, d.vol, r->mutable_attr());
  return Outcome{};
}

Outcome Ops::Mkdir(const v1::MkdirRequest& q, v1::MkdirResponse* r) {
  Resolved d;
  if (Outcome o = ResolveDir(q.parent(), &d); !o.ok()) return o;
  if (EmptyName(q.name())) return Fail(-ENOENT, "mkdir: empty name");
  if (q.mode() & ~07777u)
    return Fail(-EINVAL, "mkdir: mode has bits past 07777");
  fs::InodeAttr a;
  if (int err = d.vol->Mkdir(d.fh, q.name(), q.mode(), &a); err < 0) {
    return FromErrno(err, "mkdir");
  }
  *r->mutable_handle() =
      volumes_->WireHandle(q.parent().volume(), a.ino, a.generation);
  FillAttr(a, d.vol, r->mutable_attr());
  return Outcome{};
}

Outcome Ops::Readdir(const v1::ReaddirRequest& q, v1::ReaddirResponse* r) {
  Resolved d;
  if (Outcome o = ResolveDir(q.dir(), &d); !o.ok()) return o;
  uint32_t max =
      q.max_entries() == 0 ? options_.readdir_default_entries : q.max_entries();
  if (max > options_.readdir_max_entries) max = options_.readdir_max_entries;
  std::vector<fs::DirEntryInfo> entries;
  bool eof = false;
  if (int err = d.vol->Readdir(d.fh, q.cookie(), max, &entries, &eof);
      err < 0) {
    return FromErrno(err, "readdir");
  }
  for (const fs::DirEntryInfo& e : entries) {
    // The generation comes from a lookup; an entry removed since the
    // listing is skipped, as getdents may miss a concurrently removed name.
    fs::InodeAttr a;
    if (d.vol->Lookup(d.fh, e.name, &a) < 0 || a.ino != e.ino) continue;
    v1::DirEntry* out = r->add_entries();
    out->set_name(e.name);
    *out->mutable_handle() =
        volumes_->WireHandle(q.dir().volume(), a.ino, a.generation);
    out->set_type(TypeOf(a.mode));
    out->set_cookie(e.cookie);
  }
  r->set_eof(eof);
  return Outcome{};
}

Outcome Ops::Rename(const v1::RenameRequest& q, v1::RenameResponse*) {
  Resolved s, d;
  if (Outcome o = ResolveDir(q.src_parent(), &s); !o.ok()) return o;
  if (Outcome o = ResolveDir(q.dst_parent(), &d); !o.ok()) return o;
  if (s.vol != d.vol) return Fail(-EXDEV, "rename: across volumes");
  constexpr uint32_t kNoReplace = 1, kExchange = 2;
  if (q.flags() & ~(kNoReplace | kExchange)) {
    return Fail(-EINVAL, "rename: unknown flag bits");
  }
  if ((q.flags() & kNoReplace) && (q.flags() & kExchange)) {
    return Fail(-EINVAL, "rename: NOREPLACE and EXCHANGE together");
  }
  if (EmptyName(q.src_name()) || EmptyName(q.dst_name())) {
    return Fail(-ENOENT, "rename: empty name");
  }
  return FromErrno(
      d.vol->Rename(s.fh, q.src_name(), d.fh, q.dst_name(), q.flags()),
      "rename");
}

Outcome Ops::Unlink(const v1::UnlinkRequest& q, v1::UnlinkResponse*) {
  Resolved d;
  if (Outcome o = ResolveDir(q.parent(), &d); !o.ok()) return o;
  if (EmptyName(q.name())) return Fail(-ENOENT, "unlink: empty name");
  return FromErrno(d.vol->Unlink(d.fh, q.name()), "unlink");
}

Outcome Ops::Rmdir(const v1::RmdirRequest& q, v1::RmdirResponse*) {
  Resolved d;
  if (Outcome o = ResolveDir(q.parent(), &d); !o.ok()) return o;
  if (EmptyName(q.name())) return Fail(-ENOENT, "rmdir: empty name");
  return FromErrno(d.vol->Rmdir(d.fh, q.name()), "rmdir");
}

Outcome Ops::Stat(const v1::StatRequest& q, v1::StatResponse* r) {
  Resolved f;
  if (Outcome o = ResolveDir(q.handle(), &f); !o.ok()) return o;
  fs::InodeAttr a;
  if (int err = f.vol->GetAttr(f.fh, &a); err < 0)
    return FromErrno(err, "stat");
  FillAttr(a, f.vol, r->mutable_attr());
  return Outcome{};
}

Outcome Ops::SetAttr(const v1::SetAttrRequest& q, v1::SetAttrResponse* r) {
  Resolved f;
  if (Outcome o = ResolveDir(q.handle(), &f); !o.ok()) return o;
  constexpr uint32_t kKnown = v1::SET_ATTR_MODE | v1::SET_ATTR_UID |
                              v1::SET_ATTR_GID | v1::SET_ATTR_SIZE |
                              v1::SET_ATTR_ATIME | v1::SET_ATTR_MTIME;
  if (q.valid() & ~kKnown) return Fail(-EINVAL, "setattr: unknown mask bits");
  if ((q.valid() & v1::SET_ATTR_MODE) && (q.mode() & ~07777u)) {
    return Fail(-EINVAL, "setattr: mode has bits past 07777");
  }
  if (q.valid() & v1::SET_ATTR_SIZE) {
    if (q.size() < 0) return Fail(-EINVAL, "setattr: negative size");
    if (int err = f.vol->Truncate(f.fh, q.size()); err < 0) {
      return FromErrno(err, "setattr(size)");
    }
  }
  fs::InodeAttr values;
  values.mode = q.mode();
  values.uid = q.uid();
  values.gid = q.gid();
  values.atime_ns = q.atime_ns();
  values.mtime_ns = q.mtime_ns();
  // The proto's mask bits are fs's kSet* bits one for one.
  uint32_t mask = q.valid() & ~static_cast<uint32_t>(v1::SET_ATTR_SIZE);
  fs::InodeAttr a;
  if (int err = f.vol->SetAttr(f.fh, mask, values, &a); err < 0) {
    return FromErrno(err, "setattr");
  }
  FillAttr(a, f.vol, r->mutable_attr());
  return Outcome{};
}

Outcome Ops::Open(const v1::OpenRequest& q, v1::OpenResponse* r) {
  Resolved f;
  if (Outcome o = ResolveDir(q.handle(), &f); !o.ok()) return o;
  constexpr uint32_t kKnown = v1::OPEN_FLAG_READ | v1::OPEN_FLAG_WRITE |
                              v1::OPEN_FLAG_APPEND | v1::OPEN_FLAG_TRUNC |
                              v1::OPEN_FLAG_SYNC | v1::OPEN_FLAG_DSYNC |
                              v1::OPEN_FLAG_DIRECT;
  uint32_t flags = q.flags();
  if (flags & ~kKnown) return Fail(-EINVAL, "open: unknown flag bits");
  if (!(flags & (v1::OPEN_FLAG_READ | v1::OPEN_FLAG_WRITE))) {
    return Fail(-EINVAL, "open: flags need OPEN_FLAG_READ and/or WRITE");
  }
  if ((flags & v1::OPEN_FLAG_TRUNC) && !(flags & v1::OPEN_FLAG_WRITE)) {
    return Fail(-EINVAL, "open: OPEN_FLAG_TRUNC without OPEN_FLAG_WRITE");
  }
  auto entry = std::make_shared<OpenEntry>();
  entry->volume = q.handle().volume();
  entry->vol = f.vol;
  entry->flags = flags;
  if (int err = f.vol->Open(f.fh, &entry->file); err < 0) {
    return FromErrno(err, "open");
  }
  if (flags & v1::OPEN_FLAG_TRUNC) {
    if (int err = entry->file->Truncate(0); err < 0) {
      return FromErrno(err, "open(O_TRUNC)");
    }
  }
  fs::InodeAttr a;
  if (int err = f.vol->GetAttr(f.fh, &a); err < 0)
    return FromErrno(err, "open");
  FillAttr(a, f.vol, r->mutable_attr());
  r->set_open_id(volumes_->Publish(std::move(entry)));
  return Outcome{};
}

Outcome Ops::Close(const v1::CloseRequest& q, v1::CloseResponse*) {
  if (q.open_id() == 0) return Fail(-EBADF, "close: open_id 0");
  if (int err = volumes_->Unpublish(q.open_id(), q.handle()); err < 0) {
    return Fail(err, "close: no such open file for this handle");
  }
  return Outcome{};
}

}  // namespace server
