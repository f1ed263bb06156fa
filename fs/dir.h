// Namespace: the inode table and directories of one volume, kept in memory
// and made durable through the journal (docs/format.md).
//
// Every mutating operation validates, builds one transaction (TxnBuilder),
// appends it to the journal and then applies it to memory through the same
// code replay uses (ApplyTxn), so what a mount rebuilds is exactly what ran.
// If the append fails (-ENOSPC: the log needs a checkpoint; -EIO) nothing
// changes. Operations return as soon as the record is appended; durability is
// Sync(ino) (fsync), which waits for the journal commit covering the last
// change to that inode (and, the log being ordered, everything before it).
//
// Directories: names are unique per directory; readdir walks entries in
// cookie order, cookies grow per directory and are never reused. Link
// counts: a file has one link per entry; a directory has 2 + its
// subdirectories. An inode whose last link goes while it is open becomes an
// orphan: it is freed at its last Close() or by FreeOrphans() at the next
// mount. Handles are (ino, generation); generations never repeat, so a
// handle to a freed or reused inode gets -ESTALE.
//
// Thread-safety: thread-safe; one internal lock (rank kFsInode) held across
// validation, journal append and apply. Sync() blocks without it.
#ifndef IOMAPD_FS_DIR_H_
#define IOMAPD_FS_DIR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "base/mutex.h"
#include "fs/inode.h"
#include "fs/journal.h"

namespace fs {

struct DirEntryInfo {
  std::string name;
  uint64_t ino = 0;
  uint64_t cookie = 0;  // resume a readdir after this entry with it
  bool is_dir = false;
};

// Fields SetAttr changes (bits of `mask`).
enum SetAttrMask : uint32_t {
  kSetMode = 1u << 0,
  kSetUid = 1u << 1,
  kSetGid = 1u << 2,
  kSetSize = 1u << 3,
  kSetAtime = 1u << 4,
  kSetMtime = 1u << 5,
};

struct NamespaceOptions {
  uint64_t max_inodes = 1 << 20;
  // Called, under the namespace lock, when an inode is finally freed (last
  // link gone and not open): the fs adds the ops that free its blocks to the
  // same transaction. May be empty.
  std::function<void(const InodeAttr& attr, TxnBuilder* txn)> on_free;
  // Applies ops of other layers (format::kOpFirstCoreOp..kOpLastCoreOp)
  // found in a transaction, during operations and replay. Empty: such ops
  // are rejected with -EUCLEAN.
  std::function<int(uint16_t op, absl::string_view body)> apply_core_op;
};

class Namespace {
 public:
  // `journal` may be null (mkfs, fsck, tests of the in-memory rules): then
  // changes apply at once and Sync is a no-op. Not owned; must outlive this.
  Namespace(const NamespaceOptions& options, Journal* journal);
  Namespace(const Namespace&) = delete;
  Namespace& operator=(const Namespace&) = delete;

  // Attaches the journal once a mount has replayed into this namespace.
  // REQUIRES: no operation runs concurrently.
  void SetJournal(Journal* journal) { journal_ = journal; }

  // Creates the root directory of an empty namespace (mkfs).
  int InitRoot(uint32_t mode);

  // --- Lookups. 0 or -errno (-ESTALE, -ENOENT, -ENOTDIR). ---
  int GetAttr(FileHandle h, InodeAttr* out) const;
  int Lookup(FileHandle dir, absl::string_view name, InodeAttr* out) const;
  // Up to `max` entries with cookies above `cookie` (0: from the start).
  // *eof is set when no entry is left after those returned.
  int Readdir(FileHandle dir, uint64_t cookie, size_t max,
              std::vector<DirEntryInfo>* out, bool* eof) const;

  // --- Changes. 0 or -errno; *out (when not null) gets the new attributes.
  // Create: a regular file (`mode` permission bits). With `exclusive`, an
  // existing name is -EEXIST; without, an existing regular file is returned.
  int Create(FileHandle dir, absl::string_view name, uint32_t mode,
             bool exclusive, InodeAttr* out);
  int Mkdir(FileHandle dir, absl::string_view name, uint32_t mode,
            InodeAttr* out);
  int Link(FileHandle target, FileHandle dir, absl::string_view name,
           InodeAttr* out);
  int Unlink(FileHandle dir, absl::string_view name);  // -EISDIR for a dir
  int Rmdir(FileHandle dir, absl::string_view name);  // -ENOTEMPTY unless empty
  // POSIX rename: replaces a target of the same kind (an empty directory
  // for a directory); -EINVAL moving a directory under itself. `flags`
  // (renameat2): kRenameNoreplace: -EEXIST when the target exists (even
  // the same inode); kRenameExchange: both names must exist (-ENOENT) and
  // swap atomically, files and directories alike (-EINVAL when either
  // would move under itself); both or any other bit: -EINVAL. Each rename
  // is one journal transaction.
  static constexpr unsigned kRenameNoreplace = 1;  // RENAME_NOREPLACE
  static constexpr unsigned kRenameExchange = 2;   // RENAME_EXCHANGE
  int Rename(FileHandle src_dir, absl::string_view src_name, FileHandle dst_dir,
             absl::string_view dst_name, unsigned flags = 0);
  // -EFBIG for a size past format::kMaxFileSize. Size changes here touch the
  // inode record only; the fs frees blocks past a smaller size itself.
  int SetAttr(FileHandle h, uint32_t mask, const InodeAttr& values,
              InodeAttr* out);

  // Journals and applies `txn` as one transaction under the namespace lock:
  // ops of other layers (extent maps, allocator, refcounts; applied through
  // options.apply_core_op), optionally with namespace ops such as an
  // InodeSet of the new size, so a truncate or an I/O completion is atomic
  // with its inode update. Sync(h.ino) then covers it. -ESTALE for a stale
  // handle; journal errors (-ENOSPC, -EIO) change nothing.
  // REQUIRES: the ops apply cleanly (the caller validated them); an op that
  // fails to apply after it was journaled aborts the process, since memory
  // and log would disagree.
  int Transact(FileHandle h, const TxnBuilder& txn);

  // --- Open files and orphans.
  int Open(FileHandle h);
  int Close(uint64_t ino);
  // Frees every orphan that is not open (at mount). Returns how many, or
  // -errno.
  int FreeOrphans();

  // Waits until the last change to `ino` is durable. 0 or -EIO.
  int Sync(uint64_t ino);

  // --- Persistence.
  // Replays one journal transaction (and the ops of other layers in it).
  int ApplyTxn(absl::string_view txn);
  // Serializes into the checkpoint's namespace section / loads it.
  void Serialize(std::string* out) const;
  // Serialize plus the journal head, taken together under the lock: the
  // snapshot covers exactly the records before the returned position.
  JournalPosition Snapshot(std::string* out) const;
  absl::Status Load(absl::string_view bytes);
  // Invariant check for fsck: appends one line per problem.
  void Check(std::vector<std::string>* problems) const;

  uint64_t inode_count() const;
  std::vector<uint64_t> orphans() const;
  // Calls fn for every live inode, in ino order.
  void ForEachInode(const std::function<void(const InodeAttr&)>& fn) const;

 private:
  struct Directory {
    absl::btree_map<std::string, uint64_t> by_name;  // name -> cookie
    absl::btree_map<uint64_t, std::pair<std::string, uint64_t>>
        by_cookie;  // -> name, ino
    uint64_t next_cookie = 0;
  };
  struct Node {
    InodeAttr attr;
    std::unique_ptr<Directory> dir;  // for directories
    uint64_t parent = 0;             // for directories: the one entry's dir
    uint32_t open_count = 0;         // in memory only
    uint64_t last_lsn = 0;           // in memory only
  };

  // Lookups under mu_.
  int FindLocked(FileHandle h, const Node** out) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int FindDirLocked(FileHandle h, const Node** out) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const Node* ChildLocked(const Node& dir, absl::string_view name) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool IsAncestorLocked(uint64_t maybe_ancestor, uint64_t ino) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int AllocInoLocked(InodeAttr* a, uint32_t mode, int64_t now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReserveInoLocked(uint64_t ino) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds the ops that drop one link of `child` (and free or orphan it).
  void DropLinkLocked(const Node& child, bool is_dir, int64_t now,
                      TxnBuilder* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FreeLocked(const Node& node, TxnBuilder* t)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  InodeAttr TouchedDir(const Node& dir, int nlink_delta, int64_t now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int RemoveLocked(FileHandle dir, absl::string_view name, bool want_dir)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int RenameChecksLocked(const Node& sdir, const Node& child, const Node& ddir,
                         const Node* victim) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int ExchangeChecksLocked(const Node& sdir, const Node& a, const Node& ddir,
                           const Node& b) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int ExchangeLocked(const Node& sdir, absl::string_view sname, const Node& a,
                     const Node& ddir, absl::string_view dname, const Node& b)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Journals and applies `t`; sets last_lsn of `touched` inodes.
  int CommitLocked(const TxnBuilder& t, uint64_t* lsn_out = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Apply (dir_apply.cc).
  void SerializeLocked(std::string* out) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int ApplyOpLocked(uint16_t op, absl::string_view body, uint64_t lsn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int ApplyInodeSetLocked(const InodeAttr& a, uint64_t lsn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int ApplyInodeFreeLocked(uint64_t ino) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int ApplyDirentAddLocked(uint64_t dir, uint64_t cookie, uint64_t ino,
                           absl::string_view name, uint64_t lsn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int ApplyDirentRemoveLocked(uint64_t dir, absl::string_view name,
                              uint64_t lsn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int ApplyTxnLocked(absl::string_view txn, uint64_t lsn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CheckDirLocked(const Node& n, absl::btree_map<uint64_t, uint32_t>* links,
                      std::vector<std::string>* problems) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const NamespaceOptions options_;
  Journal* journal_ = nullptr;
  mutable base::Mutex mu_{base::LockRank::kFsInode};
  std::map<uint64_t, Node> nodes_ ABSL_GUARDED_BY(mu_);  // stable addresses
  absl::btree_set<uint64_t> orphans_ ABSL_GUARDED_BY(mu_);
  absl::btree_set<uint64_t> free_inos_
      ABSL_GUARDED_BY(mu_);  // below next_unused_
  uint64_t next_unused_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_generation_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace fs

#endif  // IOMAPD_FS_DIR_H_
