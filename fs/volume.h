// fs::Volume: a mounted iomapd filesystem, the "xfs_super.c + xfs_iomap.c +
// xfs_aops.c" of iomapd (docs/fs-volume.md). It joins the namespace
// (Namespace over a MetaStore) with the data side: one data-fork ExtentMap
// per inode, the Allocator over the data area, the RefcountIndex and the
// delalloc ReservationCounter, persisted as checkpoint sections 2..4 and
// changed only through journaled core ops (codes 32..37), applied the same
// way live and at replay. It implements the iomap ops (buffered read/write,
// REPORT), writeback (delalloc -> unwritten at writeback, unwritten ->
// written + on-disk size at ioend completion) and runs one Flusher and one
// IoendCompletionQueue. File operations are in fs/file.h.
//
// Thread-safety: thread-safe. Lock order (all ranked): inode rwsem ->
// invalidate -> folio -> Volume::txn_mu_ (kFsInode, shared by every
// journaled change, exclusive by checkpoints) -> FileData::ilock (kFsInode)
// -> Namespace lock (kFsInode) -> allocator/refcounts (kFsAlloc) -> journal.
#ifndef IOMAPD_FS_VOLUME_H_
#define IOMAPD_FS_VOLUME_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "base/kick_thread.h"
#include "base/mutex.h"
#include "block/device.h"
#include "fs/allocator.h"
#include "fs/dir.h"
#include "fs/extent_map.h"
#include "fs/fsck.h"
#include "fs/meta_store.h"
#include "fs/refcount.h"
#include "fs/reservation.h"
#include "fs/space_check.h"
#include "fs/superblock.h"
#include "iomap/dax.h"
#include "iomap/flusher.h"
#include "iomap/ioend.h"
#include "iomap/iomap.h"
#include "iomap/pagecache.h"
#include "iomap/swapfile.h"

namespace fs {

class Volume;
class OpenFile;
namespace internal {
class DataOps;
}

// Journal op codes of the data side (format::kOpFirstCoreOp..).
inline constexpr uint16_t kOpMapAlloc = 32;  // u64 ino, off, len, dev; u8 st
inline constexpr uint16_t kOpConvert = 33;   // u64 ino, off, len
inline constexpr uint16_t kOpUnmap = 34;     // u64 ino, off, len
inline constexpr uint16_t kOpFreeFork = 35;  // u64 ino
// Maps [off, off + len) of ino's data fork to device blocks that are
// already in use (reflink) and adds one reference to each.
inline constexpr uint16_t kOpShare = 36;  // u64 ino, off, len, dev; u16 st
// The (ino, off, len) head every op above but 35 starts with: the whole
// body of kOpConvert and kOpUnmap.
std::string RangeOpBody(uint64_t ino, uint64_t off, uint64_t len);
// Moves every extent of ino's data fork at or after file block `start` by
// `shift` blocks: down (kShiftDown, collapse range; [start - shift, start)
// must be empty) or up (kShiftUp, insert range; an extent straddling
// `start` is split first). Device blocks and refcounts are unchanged.
inline constexpr uint16_t kOpShift = 37;  // u64 ino, start, shift; u16 dir
inline constexpr uint16_t kShiftDown = 0;
inline constexpr uint16_t kShiftUp = 1;

// The data fork of one inode (exists for every inode with blocks, open or
// not). `ilock` is the XFS ILOCK: held for every read or change of `data`.
struct FileData {
  base::Mutex ilock{base::LockRank::kFsInode};
  ExtentMap data;  // guarded by ilock (ExtentMap is thread-compatible)
  // The COW fork (guarded by ilock): delalloc reservations and staging
  // blocks for writes to shared blocks. In memory only: staging blocks
  // are recorded free in checkpoints and become data-fork blocks through
  // the journaled remap at I/O completion (docs/fs-volume.md).
  ExtentMap cow;
  // The size recorded in the inode record (on-disk size); changed with
  // ilock held.
  std::atomic<int64_t> disk_size{0};
};

// The in-core inode of an open regular file.
class VolInode : public iomap::Inode {
 public:
  VolInode(const InodeAttr& attr, unsigned blkbits, block::Device* dev,
           iomap::PageCache* cache, FileData* data)
      : iomap::Inode(attr.ino, blkbits, dev, cache),
        handle_{attr.ino, attr.generation},
        data_(data) {}
  FileHandle handle() const { return handle_; }
  FileData* fork() const { return data_; }
  // IS_SWAPFILE: set while the file is an active swap file. Changed with
  // the rwsem and invalidate lock held exclusive, so a holder of either
  // sees a stable value.
  bool swapfile() const { return swapfile_.load(std::memory_order_acquire); }
  // file_update_time: a data change (write, mapped store, fallocate,
  // clone) sets mtime = ctime = `now` in core only; the next inode record
  // of this file (size update at I/O completion, truncate, fsync, last
  // close) carries it. 0: nothing pending. Thread-safe.
  // A time taken before an explicit SetAttr(mtime) but landing after it
  // is dropped: the explicit mtime wins, as it would under i_rwsem.
  void TouchTimes(int64_t now) {
    dirty_time_ns_.store(now);
    if (now <= mtime_set_ns_.load()) ClearDirtyTime(now);
  }
  // SetAttr set mtime explicitly at `at` (its ctime): a pending write time
  // taken at or before `at` is dropped, now or when it lands.
  void MtimeSetExplicitly(int64_t at) {
    mtime_set_ns_.store(at);
    int64_t t = dirty_time();
    while (t != 0 && t <= at && !dirty_time_ns_.compare_exchange_weak(t, 0)) {
    }
  }
  int64_t dirty_time() const {
    return dirty_time_ns_.load(std::memory_order_acquire);
  }
  // Applies the pending time to `attr` (an inode record being journaled);
  // returns the value to pass to ClearDirtyTime once that record is in.
  int64_t ApplyDirtyTime(InodeAttr* attr) const {
    const int64_t t = dirty_time();
    if (t != 0) {
      attr->mtime_ns = t;
      attr->ctime_ns = std::max(attr->ctime_ns, t);  // ctime never goes back
    }
    return t;
  }
  // Clears the pending time unless a newer change set it meanwhile.
  void ClearDirtyTime(int64_t t) {
    if (t != 0) dirty_time_ns_.compare_exchange_strong(t, 0);
  }

 private:
  friend class Volume;
  const FileHandle handle_;
  FileData* const data_;
  int open_count_ = 0;  // guarded by Volume::open_mu_

 public:
  // DAX volumes: device ranges stored to and not yet flushed (fsync).
  iomap::DaxDirty dax_dirty;

 private:
  std::atomic<bool> swapfile_{false};
  std::atomic<int64_t> dirty_time_ns_{0};
  std::atomic<int64_t> mtime_set_ns_{0};  // last explicit SetAttr(mtime)
};

struct VolumeOptions {
  MetaStoreOptions meta;
  iomap::FlusherOptions flusher;
  // Pagecache the inodes charge; null: iomap::PageCache::Global().
  iomap::PageCache* cache = nullptr;
  int completion_threads = 2;
  // fsdax: file data is read and written through the device's DaxMapping
  // (block::OpenDaxDevice), never the pagecache (docs/fs-volume.md "DAX").
  // Mount fails with INVALID_ARGUMENT when the device has none.
  bool dax = false;
};

class Volume {
 public:
  // mkfs: the namespace's initial checkpoint plus empty data sections.
  static absl::StatusOr<Superblock> Format(block::Device& dev,
                                           const LayoutOptions& layout);
  // Mounts read-write: load, replay, check (namespace and space
  // invariants: DATA_LOSS naming the first problem), free orphans.
  static absl::StatusOr<std::unique_ptr<Volume>> Mount(
      block::Device& dev, const VolumeOptions& options = VolumeOptions());
  // Unmounts if Unmount() was not called (errors are dropped then).
  ~Volume();
  Volume(const Volume&) = delete;
  Volume& operator=(const Volume&) = delete;

  // Writes back every open file, waits for completions, commits the
  // journal and writes a checkpoint. REQUIRES: every OpenFile closed.
  absl::Status Unmount();
  // A checkpoint of everything (frees the journal before it).
  absl::Status Checkpoint();
  absl::Status MaybeCheckpoint();

  // --- Namespace (Namespace semantics; 0 or -errno).
  FileHandle root() const;
  // For an open file, size is the in-core i_size.
  int GetAttr(FileHandle h, InodeAttr* out) const;
  int Lookup(FileHandle dir, absl::string_view name, InodeAttr* out) const;
  int Readdir(FileHandle dir, uint64_t cookie, size_t max,
              std::vector<DirEntryInfo>* out, bool* eof) const;
  int Create(FileHandle dir, absl::string_view name, uint32_t mode,
             bool exclusive, InodeAttr* out);
  int Mkdir(FileHandle dir, absl::string_view name, uint32_t mode,
            InodeAttr* out);
  int Link(FileHandle target, FileHandle dir, absl::string_view name,
           InodeAttr* out);
  int Unlink(FileHandle dir, absl::string_view name);
  int Rmdir(FileHandle dir, absl::string_view name);
  // Namespace::Rename; `flags`: Namespace::kRenameNoreplace /
  // kRenameExchange (renameat2).
  int Rename(FileHandle src_dir, absl::string_view src_name, FileHandle dst_dir,
             absl::string_view dst_name, unsigned flags = 0);
  // setattr(size): opens, truncates (OpenFile::Truncate) and closes.
  int Truncate(FileHandle h, int64_t size);
  // Mode, owner and times. kSetSize is -EINVAL here: use Truncate.
  int SetAttr(FileHandle h, uint32_t mask, const InodeAttr& values,
              InodeAttr* out);

  // st_blocks: the blocks of h's data fork (written, unwritten and
  // delalloc, as XFS counts them), in 512-byte units. Directories have
  // none. 0 or -errno (-ESTALE).
  int StatBlocks(FileHandle h, uint64_t* blocks_512);

  // Opens a regular file (-EISDIR for a directory, -ESTALE for a stale
  // handle). The OpenFile must be closed (or destroyed) before Unmount.
  int Open(FileHandle h, std::unique_ptr<OpenFile>* out);

  // --- Reflink (fs/reflink.cc): open both files, OpenFile::CloneRange /
  // DedupeRange (dst is the destination), close. Plus -ESTALE, -EISDIR,
  // -EINVAL (not regular) from the opens. Cross-volume requests are the
  // caller's -EXDEV (the handles name inodes of this volume).
  int64_t CloneRange(FileHandle src, int64_t src_off, FileHandle dst,
                     int64_t dst_off, int64_t len);
  int64_t DedupeRange(FileHandle src, int64_t src_off, FileHandle dst,
                      int64_t dst_off, int64_t len);

  // --- Swap files (swapon / swapoff; iomap/swapfile.h).
  // Fsyncs the file and activates it as a swap file under its rwsem and
  // invalidate lock (exclusive): iomap::SwapfileActivate fills *out
  // (out->bdev null means this volume's device). While active the volume
  // keeps the file open (in core), and: Write/WriteFrom/MapWrite, Fallocate
  // (every mode), Truncate to a size <= the current one, and clone/dedupe
  // touching it return -ETXTBSY; Unlink or Rename of it (or onto it) return
  // -EPERM. Returns the number of swap extents (>= 1) or -errno: -ESTALE,
  // -EISDIR, -EINVAL (not a regular file; or unusable: holes, delalloc,
  // shared blocks, ... with the reason in out->error), -ENOENT (unlinked),
  // -EBUSY (already active), the fsync's error.
  int SwapActivate(FileHandle h, iomap::SwapInfo* out);
  // swapoff: clears the state and drops the reference. 0 or -errno:
  // -ESTALE, -EINVAL (not an active swap file), the close's writeback error.
  // Unmount deactivates every active swap file first.
  int SwapDeactivate(FileHandle h);

  // --- State for tests and statfs.
  const Superblock& superblock() const { return sb_; }
  uint64_t FreeBlocks() const { return alloc_->FreeBlocks(); }
  // Live inodes (statfs's f_files - f_ffree; the limit is
  // superblock().max_inodes).
  uint64_t InodeCount() const { return ns_->inode_count(); }
  uint64_t ReservedBlocks() const { return resv_->TotalReserved(); }
  uint64_t ReservedBlocks(uint64_t ino) const { return resv_->Reserved(ino); }
  // Runs every space invariant on the live volume (fsck's block checks plus
  // reservation == delalloc blocks per inode). Appends problems.
  void CheckLive(std::vector<std::string>* problems);
  iomap::Flusher* flusher() { return flusher_.get(); }

 private:
  friend class OpenFile;
  friend class internal::DataOps;
  friend FsckResult FsckVolume(block::Device& dev);

  Volume(block::Device& dev, const VolumeOptions& options);
  absl::Status Recover(bool read_only, bool allow_damaged_log);
  absl::Status LoadPayload(absl::string_view payload);
  void SerializeData(std::string* payload);
  int ApplyCoreOp(uint16_t op, absl::string_view body);
  int ApplyMapAlloc(absl::string_view body);
  int ApplyRangeOp(uint16_t op, absl::string_view body);
  int ApplyFreeFork(absl::string_view body);
  int ApplyShare(absl::string_view body);
  int ApplyShift(absl::string_view body);
  // fs/fallocate.cc: FALLOC_FL_COLLAPSE_RANGE and FALLOC_FL_INSERT_RANGE
  // (xfs_falloc_collapse_range / xfs_falloc_insert_range): the argument
  // checks (-EINVAL, -EFBIG), then PrepareShift and one transaction
  // (JournalShift). REQUIRES: vi's rwsem and invalidate lock exclusive.
  int CollapseRange(VolInode* vi, int64_t offset, int64_t len);
  int InsertRange(VolInode* vi, int64_t offset, int64_t len);
  // xfs_prepare_shift: writes back and drops the cache from the block
  // before `offset` to EOF, drops delalloc and the COW fork there.
  int PrepareShift(VolInode* vi, int64_t offset);
  // The shift of `n` blocks at file block `first` and the new size in one
  // transaction (a collapse also unmaps [first, first + n) and whatever
  // lands past the new EOF), then the in-core sizes. Takes txn_mu_ and
  // the ilock.
  int JournalShift(VolInode* vi, uint64_t first, uint64_t n, bool up,
                   int64_t new_size);
  // Drops one owner of each allocated piece (refcount, then allocator).
  void ReleasePieces(uint64_t ino, const std::vector<Extent>& pieces);
  FileData* Fork(uint64_t ino);
  std::vector<ForkRef> ForkRefs();
  // Commits the journal when blocks freed by a journaled change could be
  // reused by data I/O before that change is durable (busy extents).
  int CommitFrees();
  int CloseInode(VolInode* vi);
  // Journals a pending write time (VolInode::TouchTimes) in an inode
  // record. 0 or -errno. REQUIRES: vi open; no ilock held.
  int PersistTimes(VolInode* vi);
  // fs/swap.cc
  int DeactivateAllSwapfiles();
  int CheckNotSwapfile(FileHandle dir, absl::string_view name) const
      ABSL_SHARED_LOCKS_REQUIRED(swap_mu_);
  int FlushDevice();
  int Transact(VolInode* vi, const TxnBuilder& txn);
  // MaybeCheckpoint from file operations (errors are logged; the journal
  // reports -ENOSPC on its own if it really fills). REQUIRES: no txn_mu_,
  // ilock or folio lock held.
  void MaybeCheckpointQuiet();
  // The same, on the checkpoint thread, for callers that may not block
  // (NOWAIT writes): wakes it only when a checkpoint is due.
  void KickCheckpoint();
  // The journal is at least half full (a checkpoint would free it).
  bool CheckpointDue();

  block::Device& dev_;
  const VolumeOptions options_;
  iomap::PageCache* const cache_;
  Superblock sb_;
  std::unique_ptr<MetaStore> store_;
  std::unique_ptr<Namespace> ns_;
  std::unique_ptr<Allocator> alloc_;
  RefcountIndex refc_;
  std::unique_ptr<ReservationCounter> resv_;
  bool replaying_ = true;
  bool unmounted_ = false;

  mutable base::SharedMutex txn_mu_{base::LockRank::kFsInode};
  base::Mutex forks_mu_{base::LockRank::kLeaf};
  absl::flat_hash_map<uint64_t, std::unique_ptr<FileData>> forks_
      ABSL_GUARDED_BY(forks_mu_);
  std::atomic<uint64_t> free_seq_{0};
  std::atomic<uint64_t> committed_free_seq_{0};
  std::atomic<bool> checkpointing_{false};

  mutable base::Mutex open_mu_{base::LockRank::kRwsem};
  absl::flat_hash_map<uint64_t, std::unique_ptr<VolInode>> incore_
      ABSL_GUARDED_BY(open_mu_);

  // Serializes swapon/swapoff (exclusive) with unlink/rename (shared).
  mutable base::SharedMutex swap_mu_{base::LockRank::kNone};
  absl::flat_hash_map<uint64_t, std::unique_ptr<OpenFile>> swap_files_
      ABSL_GUARDED_BY(swap_mu_);

  std::unique_ptr<internal::DataOps> ops_;
  std::unique_ptr<iomap::IoendCompletionQueue> queue_;
  std::unique_ptr<iomap::Flusher> flusher_;
  // Runs MaybeCheckpointQuiet for KickCheckpoint (read-write mounts).
  std::unique_ptr<base::KickThread> checkpointer_;
};

// fsck of a Volume (namespace + data sections + journal with core ops):
// read-only mount, then the namespace, extent-map, allocator, refcount and
// cross-structure block checks. Changes nothing.
FsckResult FsckVolume(block::Device& dev);

}  // namespace fs

#endif  // IOMAPD_FS_VOLUME_H_
