// Namespace: applying transactions (operations and replay alike),
// checkpoint serialization and the fsck invariant check.
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "fs/dir.h"
#include "fs/format.h"

namespace fs {

int Namespace::ApplyTxn(absl::string_view txn) {
  base::MutexLock lock(&mu_);
  return ApplyTxnLocked(txn, 0);
}

int Namespace::ApplyTxnLocked(absl::string_view txn, uint64_t lsn) {
  return ForEachOp(txn, [this, lsn](uint16_t op, absl::string_view body) {
    mu_.AssertHeld();
    return ApplyOpLocked(op, body, lsn);
  });
}

int Namespace::ApplyOpLocked(uint16_t op, absl::string_view body,
                             uint64_t lsn) {
  Decoder d(body);
  switch (op) {
    case format::kOpInodeSet: {
      InodeAttr a;
      if (!DecodeInodeAttr(&d, &a)) return -EUCLEAN;
      return ApplyInodeSetLocked(a, lsn);
    }
    case format::kOpInodeFree: {
      uint64_t ino = d.U64();
      return d.ok() ? ApplyInodeFreeLocked(ino) : -EUCLEAN;
    }
    case format::kOpDirentAdd: {
      uint64_t dir = d.U64(), cookie = d.U64(), ino = d.U64();
      absl::string_view name = d.Name();
      return d.ok() ? ApplyDirentAddLocked(dir, cookie, ino, name, lsn)
                    : -EUCLEAN;
    }
    case format::kOpDirentRemove: {
      uint64_t dir = d.U64();
      absl::string_view name = d.Name();
      return d.ok() ? ApplyDirentRemoveLocked(dir, name, lsn) : -EUCLEAN;
    }
    case format::kOpOrphanAdd:
    case format::kOpOrphanRemove: {
      uint64_t ino = d.U64();
      if (!d.ok()) return -EUCLEAN;
      if (op == format::kOpOrphanRemove)
        return orphans_.erase(ino) ? 0 : -EUCLEAN;
      if (nodes_.count(ino) == 0) return -EUCLEAN;
      orphans_.insert(ino);
      return 0;
    }
    default:
      if (op >= format::kOpFirstCoreOp && op <= format::kOpLastCoreOp &&
          options_.apply_core_op)
        return options_.apply_core_op(op, body);
      return -EUCLEAN;
  }
}

void Namespace::ReserveInoLocked(uint64_t ino) {
  if (ino < next_unused_) {
    free_inos_.erase(ino);
    return;
  }
  for (uint64_t i = next_unused_; i < ino; ++i) free_inos_.insert(i);
  next_unused_ = ino + 1;
}

int Namespace::ApplyInodeSetLocked(const InodeAttr& a, uint64_t lsn) {
  if (a.ino == 0 || a.ino > options_.max_inodes) return -EUCLEAN;
  auto it = nodes_.find(a.ino);
  if (it == nodes_.end()) {
    ReserveInoLocked(a.ino);
    it = nodes_.emplace(a.ino, Node()).first;
    if (a.is_dir()) {
      it->second.dir = std::make_unique<Directory>();
      it->second.dir->next_cookie = format::kFirstDirCookie;
    }
  } else if (it->second.attr.generation != a.generation ||
             it->second.attr.is_dir() != a.is_dir()) {
    return -EUCLEAN;
  }
  it->second.attr = a;
  it->second.last_lsn = lsn;
  next_generation_ = std::max(next_generation_, a.generation + 1);
  return 0;
}

int Namespace::ApplyInodeFreeLocked(uint64_t ino) {
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return -EUCLEAN;
  if (it->second.dir && !it->second.dir->by_name.empty()) return -EUCLEAN;
  nodes_.erase(it);
  orphans_.erase(ino);
  free_inos_.insert(ino);
  return 0;
}

int Namespace::ApplyDirentAddLocked(uint64_t dir, uint64_t cookie, uint64_t ino,
                                    absl::string_view name, uint64_t lsn) {
  auto d = nodes_.find(dir);
  auto c = nodes_.find(ino);
  if (d == nodes_.end() || !d->second.dir || c == nodes_.end()) return -EUCLEAN;
  Directory& dd = *d->second.dir;
  std::string key(name.data(), name.size());
  if (ValidateName(name) != 0 || dd.by_name.count(key) ||
      dd.by_cookie.count(cookie))
    return -EUCLEAN;
  dd.by_name.emplace(key, cookie);
  dd.by_cookie.emplace(cookie, std::make_pair(key, ino));
  dd.next_cookie = std::max(dd.next_cookie, cookie + 1);
  if (c->second.dir) c->second.parent = dir;
  d->second.last_lsn = lsn;
  return 0;
}

int Namespace::ApplyDirentRemoveLocked(uint64_t dir, absl::string_view name,
                                       uint64_t lsn) {
  auto d = nodes_.find(dir);
  if (d == nodes_.end() || !d->second.dir) return -EUCLEAN;
  Directory& dd = *d->second.dir;
  auto it = dd.by_name.find(std::string(name.data(), name.size()));
  if (it == dd.by_name.end()) return -EUCLEAN;
  dd.by_cookie.erase(it->second);
  dd.by_name.erase(it);
  d->second.last_lsn = lsn;
  return 0;
}

JournalPosition Namespace::Snapshot(std::string* out) const {
  base::MutexLock lock(&mu_);
  SerializeLocked(out);
  return journal_ != nullptr ? journal_->head() : JournalPosition();
}

void Namespace::Serialize(std::string* out) const {
  base::MutexLock lock(&mu_);
  SerializeLocked(out);
}

void Namespace::SerializeLocked(std::string* out) const {
  Encoder e(out);
  e.U64(next_generation_);
  e.U64(nodes_.size());
  for (const auto& [ino, n] : nodes_) EncodeInodeAttr(n.attr, &e);
  uint64_t dirs = 0;
  for (const auto& [ino, n] : nodes_) dirs += n.dir ? 1 : 0;
  e.U64(dirs);
  for (const auto& [ino, n] : nodes_) {
    if (!n.dir) continue;
    e.U64(ino);
    e.U64(n.dir->next_cookie);
    e.U64(n.dir->by_cookie.size());
    for (const auto& [cookie, entry] : n.dir->by_cookie) {
      e.U64(cookie);
      e.U64(entry.second);
      e.Name(entry.first);
    }
  }
  e.U64(orphans_.size());
  for (uint64_t ino : orphans_) e.U64(ino);
}

absl::Status Namespace::Load(absl::string_view bytes) {
  base::MutexLock lock(&mu_);
  Decoder d(bytes);
  const uint64_t next_generation = d.U64();
  for (uint64_t i = 0, n = d.U64(); i < n && d.ok(); ++i) {
    InodeAttr a;
    if (!DecodeInodeAttr(&d, &a) || ApplyInodeSetLocked(a, 0) != 0)
      return absl::DataLossError(
          absl::StrCat("namespace: bad inode record ", i));
  }
  for (uint64_t i = 0, n = d.U64(); i < n && d.ok(); ++i) {
    uint64_t dir = d.U64(), next_cookie = d.U64();
    for (uint64_t j = 0, m = d.U64(); j < m && d.ok(); ++j) {
      uint64_t cookie = d.U64(), ino = d.U64();
      absl::string_view name = d.Name();
      if (d.ok() && ApplyDirentAddLocked(dir, cookie, ino, name, 0) != 0)
        return absl::DataLossError(
            absl::StrCat("namespace: bad entry in dir ", dir));
    }
    auto it = nodes_.find(dir);
    if (it == nodes_.end() || !it->second.dir)
      return absl::DataLossError(
          absl::StrCat("namespace: entries for non-dir ", dir));
    it->second.dir->next_cookie =
        std::max(it->second.dir->next_cookie, next_cookie);
  }
  for (uint64_t i = 0, n = d.U64(); i < n && d.ok(); ++i) {
    uint64_t ino = d.U64();
    if (d.ok() && nodes_.count(ino) == 0)
      return absl::DataLossError(
          absl::StrCat("namespace: orphan ", ino, " missing"));
    orphans_.insert(ino);
  }
  if (!d.ok() || !d.done())
    return absl::DataLossError("namespace: truncated section");
  next_generation_ = std::max(next_generation_, next_generation);
  return absl::OkStatus();
}

void Namespace::CheckDirLocked(const Node& n,
                               absl::btree_map<uint64_t, uint32_t>* links,
                               std::vector<std::string>* problems) const {
  const uint64_t dir = n.attr.ino;
  uint32_t subdirs = 0;
  for (const auto& [cookie, entry] : n.dir->by_cookie) {
    const auto& [name, ino] = entry;
    auto c = nodes_.find(ino);
    if (c == nodes_.end()) {
      problems->push_back(absl::StrCat("dir ", dir, " entry '", name,
                                       "' points at missing inode ", ino));
      continue;
    }
    ++(*links)[ino];
    if (c->second.dir) ++subdirs;
    if (c->second.dir && c->second.parent != dir)
      problems->push_back(absl::StrCat("dir ", ino, " parent is ",
                                       c->second.parent,
                                       " but it is entered in dir ", dir));
    if (cookie >= n.dir->next_cookie)
      problems->push_back(absl::StrCat("dir ", dir, " cookie ", cookie,
                                       " not below next cookie ",
                                       n.dir->next_cookie));
  }
  if (n.attr.nlink != 2 + subdirs)
    problems->push_back(
        absl::StrCat("dir ", dir, " nlink ", n.attr.nlink, " but has ", subdirs,
                     " subdirectories (expected ", 2 + subdirs, ")"));
}

void Namespace::Check(std::vector<std::string>* problems) const {
  base::MutexLock lock(&mu_);
  auto root = nodes_.find(format::kRootIno);
  if (root == nodes_.end() || !root->second.dir)
    problems->push_back("root directory missing");
  absl::btree_map<uint64_t, uint32_t> links;
  for (const auto& [ino, n] : nodes_) {
    if (n.dir) CheckDirLocked(n, &links, problems);
    if (n.attr.generation >= next_generation_)
      problems->push_back(
          absl::StrCat("inode ", ino, " generation from the future"));
  }
  for (const auto& [ino, n] : nodes_) {
    const uint32_t entries = links.count(ino) ? links[ino] : 0;
    const bool orphan = orphans_.count(ino) > 0;
    if (ino == format::kRootIno) continue;
    if (n.dir && n.attr.nlink != 0 && entries != 1)
      problems->push_back(
          absl::StrCat("dir ", ino, " has ", entries, " entries"));
    if (!n.dir && n.attr.nlink != entries)
      problems->push_back(absl::StrCat("inode ", ino, " nlink ", n.attr.nlink,
                                       " but ", entries, " directory entries"));
    if (entries == 0 && !orphan)
      problems->push_back(
          absl::StrCat("inode ", ino, " is unreachable and not an orphan"));
    if (orphan && n.attr.nlink != 0)
      problems->push_back(
          absl::StrCat("orphan ", ino, " has nlink ", n.attr.nlink));
    if (n.dir && entries == 1 && !IsAncestorLocked(format::kRootIno, ino))
      problems->push_back(
          absl::StrCat("dir ", ino, " is not reachable from the root"));
  }
}

uint64_t Namespace::inode_count() const {
  base::MutexLock lock(&mu_);
  return nodes_.size();
}

std::vector<uint64_t> Namespace::orphans() const {
  base::MutexLock lock(&mu_);
  return std::vector<uint64_t>(orphans_.begin(), orphans_.end());
}

void Namespace::ForEachInode(
    const std::function<void(const InodeAttr&)>& fn) const {
  base::MutexLock lock(&mu_);
  for (const auto& [ino, n] : nodes_) fn(n.attr);
}

}  // namespace fs
