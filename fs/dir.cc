// Namespace operations: validation and transaction building. Applying,
// serializing and checking live in dir_apply.cc.
#include "fs/dir.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "fs/format.h"

namespace fs {

constexpr uint32_t kMaxLinks = 65000;

Namespace::Namespace(const NamespaceOptions& options, Journal* journal)
    : options_(options), journal_(journal) {}

int Namespace::InitRoot(uint32_t mode) {
  base::MutexLock lock(&mu_);
  if (!nodes_.empty()) return -EEXIST;
  InodeAttr a;
  int64_t now = NowNs();
  if (int err = AllocInoLocked(&a, S_IFDIR | (mode & 07777), now); err < 0)
    return err;
  a.nlink = 2;
  TxnBuilder t;
  t.InodeSet(a);
  return CommitLocked(t);
}

int Namespace::FindLocked(FileHandle h, const Node** out) const {
  auto it = nodes_.find(h.ino);
  if (it == nodes_.end() || it->second.attr.generation != h.generation)
    return -ESTALE;
  *out = &it->second;
  return 0;
}

int Namespace::FindDirLocked(FileHandle h, const Node** out) const {
  if (int err = FindLocked(h, out); err < 0) return err;
  return (*out)->dir ? 0 : -ENOTDIR;
}

const Namespace::Node* Namespace::ChildLocked(const Node& dir,
                                              absl::string_view name) const {
  auto it = dir.dir->by_name.find(std::string(name.data(), name.size()));
  if (it == dir.dir->by_name.end()) return nullptr;
  return &nodes_.at(dir.dir->by_cookie.at(it->second).second);
}

bool Namespace::IsAncestorLocked(uint64_t maybe_ancestor, uint64_t ino) const {
  for (size_t steps = 0; ino != 0 && steps <= nodes_.size(); ++steps) {
    if (ino == maybe_ancestor) return true;
    auto it = nodes_.find(ino);
    if (it == nodes_.end()) return false;
    ino = it->second.parent;
  }
  return false;
}

int Namespace::AllocInoLocked(InodeAttr* a, uint32_t mode, int64_t now) {
  uint64_t ino = free_inos_.empty() ? next_unused_ : *free_inos_.begin();
  if (ino > options_.max_inodes) return -ENOSPC;
  a->ino = ino;
  a->generation = next_generation_;
  a->mode = mode;
  a->atime_ns = a->mtime_ns = a->ctime_ns = now;
  return 0;
}

InodeAttr Namespace::TouchedDir(const Node& dir, int nlink_delta,
                                int64_t now) const {
  InodeAttr a = dir.attr;
  a.nlink += nlink_delta;
  a.mtime_ns = a.ctime_ns = now;
  return a;
}

int Namespace::CommitLocked(const TxnBuilder& t, uint64_t* lsn_out) {
  uint64_t lsn = 0;
  if (journal_ != nullptr) {
    int64_t r = journal_->Append(format::kRecordTxn, t.bytes());
    if (r < 0) return static_cast<int>(r);
    lsn = r;
  }
  if (int err = ApplyTxnLocked(t.bytes(), lsn); err != 0) {
    // The record is validated before it is built; failing here means the
    // in-memory state is corrupt, and replay would fail the same way.
    std::fprintf(stderr, "fs: namespace transaction failed to apply: %d\n",
                 err);
    std::abort();
  }
  if (lsn_out != nullptr) *lsn_out = lsn;
  return 0;
}

int Namespace::Transact(FileHandle h, const TxnBuilder& txn) {
  base::MutexLock lock(&mu_);
  const Node* n;
  if (int err = FindLocked(h, &n); err < 0) return err;
  uint64_t lsn = 0;
  if (int err = CommitLocked(txn, &lsn); err < 0) return err;
  auto it = nodes_.find(h.ino);
  if (it != nodes_.end())
    it->second.last_lsn = std::max(it->second.last_lsn, lsn);
  return 0;
}

int Namespace::GetAttr(FileHandle h, InodeAttr* out) const {
  base::MutexLock lock(&mu_);
  const Node* n;
  if (int err = FindLocked(h, &n); err < 0) return err;
  *out = n->attr;
  return 0;
}

int Namespace::Lookup(FileHandle dir, absl::string_view name,
                      InodeAttr* out) const {
  if (int err = ValidateName(name); err < 0) return err;
  base::MutexLock lock(&mu_);
  const Node* d;
  if (int err = FindDirLocked(dir, &d); err < 0) return err;
  const Node* child = ChildLocked(*d, name);
  if (child == nullptr) return -ENOENT;
  *out = child->attr;
  return 0;
}

int Namespace::Readdir(FileHandle dir, uint64_t cookie, size_t max,
                       std::vector<DirEntryInfo>* out, bool* eof) const {
  base::MutexLock lock(&mu_);
  const Node* d;
  if (int err = FindDirLocked(dir, &d); err < 0) return err;
  out->clear();
  auto it = d->dir->by_cookie.upper_bound(cookie);
  for (; it != d->dir->by_cookie.end() && out->size() < max; ++it) {
    const auto& [name, ino] = it->second;
    out->push_back({name, ino, it->first, nodes_.at(ino).attr.is_dir()});
  }
  *eof = it == d->dir->by_cookie.end();
  return 0;
}

int Namespace::Create(FileHandle dir, absl::string_view name, uint32_t mode,
                      bool exclusive, InodeAttr* out) {
  if (int err = ValidateName(name); err < 0) return err;
  base::MutexLock lock(&mu_);
  const Node* d;
  if (int err = FindDirLocked(dir, &d); err < 0) return err;
  if (const Node* child = ChildLocked(*d, name)) {
    if (exclusive) return -EEXIST;
    if (child->attr.is_dir()) return -EISDIR;
    if (out) *out = child->attr;
    return 0;
  }
  const int64_t now = NowNs();
  InodeAttr a;
  if (int err = AllocInoLocked(&a, S_IFREG | (mode & 07777), now); err < 0)
    return err;
  a.nlink = 1;
  TxnBuilder t;
  t.InodeSet(a);
  t.DirentAdd(d->attr.ino, d->dir->next_cookie, a.ino, name);
  t.InodeSet(TouchedDir(*d, 0, now));
  if (int err = CommitLocked(t); err < 0) return err;
  if (out) *out = nodes_.at(a.ino).attr;
  return 0;
}

int Namespace::Mkdir(FileHandle dir, absl::string_view name, uint32_t mode,
                     InodeAttr* out) {
  if (int err = ValidateName(name); err < 0) return err;
  base::MutexLock lock(&mu_);
  const Node* d;
  if (int err = FindDirLocked(dir, &d); err < 0) return err;
  if (ChildLocked(*d, name) != nullptr) return -EEXIST;
  if (d->attr.nlink >= kMaxLinks) return -EMLINK;
  const int64_t now = NowNs();
  InodeAttr a;
  if (int err = AllocInoLocked(&a, S_IFDIR | (mode & 07777), now); err < 0)
    return err;
  a.nlink = 2;
  TxnBuilder t;
  t.InodeSet(a);
  t.DirentAdd(d->attr.ino, d->dir->next_cookie, a.ino, name);
  t.InodeSet(TouchedDir(*d, +1, now));
  if (int err = CommitLocked(t); err < 0) return err;
  if (out) *out = nodes_.at(a.ino).attr;
  return 0;
}

int Namespace::Link(FileHandle target, FileHandle dir, absl::string_view name,
                    InodeAttr* out) {
  if (int err = ValidateName(name); err < 0) return err;
  base::MutexLock lock(&mu_);
  const Node *n, *d;
  if (int err = FindLocked(target, &n); err < 0) return err;
  if (int err = FindDirLocked(dir, &d); err < 0) return err;
  if (n->attr.is_dir()) return -EPERM;
  if (n->attr.nlink == 0) return -ENOENT;
  if (n->attr.nlink >= kMaxLinks) return -EMLINK;
  if (ChildLocked(*d, name) != nullptr) return -EEXIST;
  const int64_t now = NowNs();
  InodeAttr a = n->attr;
  a.nlink += 1;
  a.ctime_ns = now;
  TxnBuilder t;
  t.InodeSet(a);
  t.DirentAdd(d->attr.ino, d->dir->next_cookie, a.ino, name);
  t.InodeSet(TouchedDir(*d, 0, now));
  if (int err = CommitLocked(t); err < 0) return err;
  if (out) *out = nodes_.at(a.ino).attr;
  return 0;
}

void Namespace::FreeLocked(const Node& node, TxnBuilder* t) {
  if (options_.on_free) options_.on_free(node.attr, t);
  t->InodeFree(node.attr.ino);
}

void Namespace::DropLinkLocked(const Node& child, bool is_dir, int64_t now,
                               TxnBuilder* t) {
  InodeAttr a = child.attr;
  a.nlink = is_dir ? 0 : a.nlink - 1;
  a.ctime_ns = now;
  if (a.nlink > 0) {
    t->InodeSet(a);
  } else if (child.open_count > 0) {
    t->InodeSet(a);
    t->OrphanAdd(a.ino);
  } else {
    FreeLocked(child, t);
  }
}

int Namespace::RemoveLocked(FileHandle dir, absl::string_view name,
                            bool want_dir) {
  const Node* d;
  if (int err = FindDirLocked(dir, &d); err < 0) return err;
  const Node* child = ChildLocked(*d, name);
  if (child == nullptr) return -ENOENT;
  const bool is_dir = child->attr.is_dir();
  if (want_dir && !is_dir) return -ENOTDIR;
  if (!want_dir && is_dir) return -EISDIR;
  if (is_dir && !child->dir->by_name.empty()) return -ENOTEMPTY;
  const int64_t now = NowNs();
  TxnBuilder t;
  t.DirentRemove(d->attr.ino, name);
  DropLinkLocked(*child, is_dir, now, &t);
  t.InodeSet(TouchedDir(*d, is_dir ? -1 : 0, now));
  return CommitLocked(t);
}

int Namespace::Unlink(FileHandle dir, absl::string_view name) {
  if (int err = ValidateName(name); err < 0) return err;
  base::MutexLock lock(&mu_);
  return RemoveLocked(dir, name, /*want_dir=*/false);
}

int Namespace::Rmdir(FileHandle dir, absl::string_view name) {
  if (int err = ValidateName(name); err < 0) return err;
  base::MutexLock lock(&mu_);
  return RemoveLocked(dir, name, /*want_dir=*/true);
}

int Namespace::RenameChecksLocked(const Node& sdir, const Node& child,
                                  const Node& ddir, const Node* victim) const {
  const bool child_dir = child.attr.is_dir();
  if (child_dir && IsAncestorLocked(child.attr.ino, ddir.attr.ino))
    return -EINVAL;
  if (child_dir && &sdir != &ddir && ddir.attr.nlink >= kMaxLinks)
    return -EMLINK;
  if (victim == nullptr) return 0;
  if (child_dir && !victim->attr.is_dir()) return -ENOTDIR;
  if (!child_dir && victim->attr.is_dir()) return -EISDIR;
  if (victim->dir && !victim->dir->by_name.empty()) return -ENOTEMPTY;
  return 0;
}

int Namespace::Rename(FileHandle src_dir, absl::string_view src_name,
                      FileHandle dst_dir, absl::string_view dst_name,
                      unsigned flags) {
  // renameat2: unknown bits (RENAME_WHITEOUT included: not supported) and
  // NOREPLACE with EXCHANGE are -EINVAL before any lookup.
  if (flags & ~(kRenameNoreplace | kRenameExchange)) return -EINVAL;
  if ((flags & kRenameNoreplace) && (flags & kRenameExchange)) return -EINVAL;
  if (int err = ValidateName(src_name); err < 0) return err;
  if (int err = ValidateName(dst_name); err < 0) return err;
  base::MutexLock lock(&mu_);
  const Node *sd, *dd;
  if (int err = FindDirLocked(src_dir, &sd); err < 0) return err;
  if (int err = FindDirLocked(dst_dir, &dd); err < 0) return err;
  const Node* child = ChildLocked(*sd, src_name);
  if (child == nullptr) return -ENOENT;
  const Node* victim = ChildLocked(*dd, dst_name);
  // do_renameat2 refuses an existing target before vfs_rename's "same
  // inode: nothing to do", and an exchange needs one.
  if ((flags & kRenameNoreplace) && victim != nullptr) return -EEXIST;
  if ((flags & kRenameExchange) && victim == nullptr) return -ENOENT;
  if (victim == child) return 0;  // same inode: POSIX says do nothing
  if (flags & kRenameExchange)
    return ExchangeLocked(*sd, src_name, *child, *dd, dst_name, *victim);
  if (int err = RenameChecksLocked(*sd, *child, *dd, victim); err < 0)
    return err;
  const int64_t now = NowNs();
  const bool child_dir = child->attr.is_dir();
  const bool victim_dir = victim != nullptr && victim->attr.is_dir();
  TxnBuilder t;
  if (victim != nullptr) {
    t.DirentRemove(dd->attr.ino, dst_name);
    DropLinkLocked(*victim, victim_dir, now, &t);
  }
  t.DirentRemove(sd->attr.ino, src_name);
  t.DirentAdd(dd->attr.ino, dd->dir->next_cookie, child->attr.ino, dst_name);
  InodeAttr moved = child->attr;
  moved.ctime_ns = now;
  t.InodeSet(moved);
  if (sd == dd) {
    t.InodeSet(TouchedDir(*sd, victim_dir ? -1 : 0, now));
  } else {
    t.InodeSet(TouchedDir(*sd, child_dir ? -1 : 0, now));
    t.InodeSet(
        TouchedDir(*dd, (child_dir ? 1 : 0) - (victim_dir ? 1 : 0), now));
  }
  return CommitLocked(t);
}

// vfs_rename's RENAME_EXCHANGE checks: neither may be moved under itself
// (-EINVAL), and a directory moving into a directory that gains a link
// must not push it past the link limit (-EMLINK).
int Namespace::ExchangeChecksLocked(const Node& sdir, const Node& a,
                                    const Node& ddir, const Node& b) const {
  const bool a_dir = a.attr.is_dir(), b_dir = b.attr.is_dir();
  if (a_dir && IsAncestorLocked(a.attr.ino, ddir.attr.ino)) return -EINVAL;
  if (b_dir && IsAncestorLocked(b.attr.ino, sdir.attr.ino)) return -EINVAL;
  if (&sdir == &ddir) return 0;
  if (a_dir && !b_dir && ddir.attr.nlink >= kMaxLinks) return -EMLINK;
  if (b_dir && !a_dir && sdir.attr.nlink >= kMaxLinks) return -EMLINK;
  return 0;
}

// RENAME_EXCHANGE: `a` (sdir/sname) and `b` (ddir/dname) swap names in one
// transaction; directories and files may be exchanged with each other.
int Namespace::ExchangeLocked(const Node& sdir, absl::string_view sname,
                              const Node& a, const Node& ddir,
                              absl::string_view dname, const Node& b) {
  if (int err = ExchangeChecksLocked(sdir, a, ddir, b); err < 0) return err;
  const int64_t now = NowNs();
  const int a_dir = a.attr.is_dir() ? 1 : 0, b_dir = b.attr.is_dir() ? 1 : 0;
  TxnBuilder t;
  t.DirentRemove(sdir.attr.ino, sname);
  t.DirentRemove(ddir.attr.ino, dname);
  const uint64_t cookie = ddir.dir->next_cookie;
  t.DirentAdd(ddir.attr.ino, cookie, a.attr.ino, dname);
  const uint64_t scookie = &sdir == &ddir ? cookie + 1 : sdir.dir->next_cookie;
  t.DirentAdd(sdir.attr.ino, scookie, b.attr.ino, sname);
  for (const Node* n : {&a, &b}) {
    InodeAttr moved = n->attr;
    moved.ctime_ns = now;
    t.InodeSet(moved);
  }
  if (&sdir == &ddir) {
    t.InodeSet(TouchedDir(sdir, 0, now));
  } else {
    t.InodeSet(TouchedDir(sdir, b_dir - a_dir, now));
    t.InodeSet(TouchedDir(ddir, a_dir - b_dir, now));
  }
  return CommitLocked(t);
}

int Namespace::SetAttr(FileHandle h, uint32_t mask, const InodeAttr& v,
                       InodeAttr* out) {
  base::MutexLock lock(&mu_);
  const Node* n;
  if (int err = FindLocked(h, &n); err < 0) return err;
  const int64_t now = NowNs();
  InodeAttr a = n->attr;
  if (mask & kSetSize) {
    if (a.is_dir()) return -EISDIR;
    if (v.size > format::kMaxFileSize) return -EFBIG;
    a.size = v.size;
    a.mtime_ns = now;
  }
  if (mask & kSetMode) a.mode = (a.mode & S_IFMT) | (v.mode & 07777);
  if (mask & kSetUid) a.uid = v.uid;
  if (mask & kSetGid) a.gid = v.gid;
  if (mask & kSetAtime) a.atime_ns = v.atime_ns;
  if (mask & kSetMtime) a.mtime_ns = v.mtime_ns;
  a.ctime_ns = now;
  TxnBuilder t;
  t.InodeSet(a);
  if (int err = CommitLocked(t); err < 0) return err;
  if (out) *out = nodes_.at(a.ino).attr;
  return 0;
}

int Namespace::Open(FileHandle h) {
  base::MutexLock lock(&mu_);
  const Node* n;
  if (int err = FindLocked(h, &n); err < 0) return err;
  ++nodes_.at(h.ino).open_count;
  return 0;
}

int Namespace::Close(uint64_t ino) {
  base::MutexLock lock(&mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end() || it->second.open_count == 0) return -EBADF;
  Node& n = it->second;
  if (--n.open_count > 0 || n.attr.nlink > 0) return 0;
  TxnBuilder t;
  t.OrphanRemove(ino);
  FreeLocked(n, &t);
  return CommitLocked(t);
}

int Namespace::FreeOrphans() {
  base::MutexLock lock(&mu_);
  std::vector<uint64_t> todo(orphans_.begin(), orphans_.end());
  int freed = 0;
  for (uint64_t ino : todo) {
    const Node& n = nodes_.at(ino);
    if (n.open_count > 0) continue;
    TxnBuilder t;
    t.OrphanRemove(ino);
    FreeLocked(n, &t);
    if (int err = CommitLocked(t); err < 0) return err;
    ++freed;
  }
  return freed;
}

int Namespace::Sync(uint64_t ino) {
  if (journal_ == nullptr) return 0;
  uint64_t lsn;
  {
    base::MutexLock lock(&mu_);
    auto it = nodes_.find(ino);
    lsn = it != nodes_.end() ? it->second.last_lsn : journal_->head().lsn - 1;
  }
  return journal_->Commit(lsn);
}

}  // namespace fs
