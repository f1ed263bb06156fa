// iomap::Flusher: the per-volume background writeback thread (the kernel's
// bdi_writeback flusher, wb_workfn) and dirty throttling
// (balance_dirty_pages), plus the fsync entry points a filesystem calls.
//
// - Dirty data of an inode is written back once it has been dirty for
//   dirty_expire_ms (whole inode, WB_SYNC_NONE), checked every
//   writeback_interval_ms.
// - When dirty + writeback bytes of the volume's pagecache pass
//   dirty_background_bytes, attached inodes are written back in chunks
//   (chunk_pages per inode per round) until they are below it.
// - Writers call BalanceDirty after dirtying (the buffered write loop does,
//   per step, through MappingHooks): above dirty_bytes they wait for
//   writeback to catch up (nowait: -EAGAIN), so memory stays bounded.
//
// The flusher thread holds no lock while writing back (asserted by the lock
// checker in Writepages) and never takes an inode's rwsem or invalidate lock.
//
// Thread-safety: thread-safe. Attach/Detach bracket the life of an in-core
// inode: Detach waits for the flusher to stop using it.
#ifndef IOMAPD_IOMAP_FLUSHER_H_
#define IOMAPD_IOMAP_FLUSHER_H_

#include <chrono>
#include <cstdint>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "base/mutex.h"
#include "iomap/errseq.h"
#include "iomap/iomap.h"
#include "iomap/pagecache.h"
#include "iomap/writeback.h"

namespace iomap {

struct FlusherOptions {
  // Dirty data older than this is written back (dirty_expire_centisecs).
  int64_t dirty_expire_ms = 30000;
  // How often the flusher looks for expired data (dirty_writeback_centisecs).
  int64_t writeback_interval_ms = 5000;
  // Background writeback starts above this many dirty + writeback bytes.
  // 0: a tenth of the pagecache budget.
  uint64_t dirty_background_bytes = 0;
  // Writers are throttled above this. 0: a fifth of the pagecache budget.
  uint64_t dirty_bytes = 0;
  // Pages written per inode per background round (MAX_WRITEBACK_PAGES).
  int64_t chunk_pages = 1024;
};

class Flusher : public MappingHooks {
 public:
  // `ops`: the filesystem's writepages; `cache`: the pagecache whose dirty
  // counters the thresholds apply to. Both must outlive the Flusher. Starts
  // the flusher thread.
  Flusher(WritepagesOps* ops, PageCache* cache,
          const FlusherOptions& options = FlusherOptions());
  // Stops the thread. REQUIRES: every inode detached.
  ~Flusher() override;
  Flusher(const Flusher&) = delete;
  Flusher& operator=(const Flusher&) = delete;

  // Registers an in-core inode and installs this Flusher as its mapping's
  // hooks. Detach unregisters it (waiting while the flusher writes it back)
  // and removes the hooks; it does not write anything back.
  void Attach(Inode* inode);
  void Detach(Inode* inode);

  // __mark_inode_dirty(): starts the inode's expiry clock if it was clean.
  // Cheap; BalanceDirty calls it.
  void MarkDirty(Inode* inode);
  // Wakes the flusher for a pass now.
  void Kick();

  // syncfs-style: write back and wait for every attached inode. Returns the
  // first error of the writeback passes (errors also go to each mapping).
  int SyncAll();

  // fsync / fdatasync data part: writes back [start, end] (inclusive) and
  // waits, reporting the mapping's error through the file's cursor once.
  int FileWriteAndWaitRange(Inode* inode, ErrSeq::Cursor* cursor, int64_t start,
                            int64_t end);

  // MappingHooks: filemap_write_and_wait_range / balance_dirty_pages.
  int WriteAndWaitRange(Inode* inode, int64_t start, int64_t end) override;
  int BalanceDirty(Inode* inode, bool nowait) override;

  uint64_t background_threshold() const { return background_bytes_; }
  uint64_t dirty_limit() const { return limit_bytes_; }
  // Statistics (tests).
  uint64_t passes() const;
  uint64_t throttled() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct InodeInfo {
    Clock::time_point dirtied_when{};  // epoch: clean
    int busy = 0;                      // the flusher is writing it
  };
  uint64_t DirtyNow() const;
  void Loop();
  // One round: returns whether it wrote anything.
  bool Round();
  // Returns the folios written.
  int64_t WriteInode(Inode* inode, bool whole);

  WritepagesOps* const ops_;
  PageCache* const cache_;
  const FlusherOptions options_;
  const uint64_t background_bytes_;
  const uint64_t limit_bytes_;

  mutable base::Mutex mu_{base::LockRank::kLeaf};
  base::CondVar kick_cv_;      // work for the flusher
  base::CondVar progress_cv_;  // a round finished (throttled writers, Detach)
  absl::flat_hash_map<Inode*, InodeInfo> inodes_ ABSL_GUARDED_BY(mu_);
  bool kicked_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t passes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t throttled_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace iomap

#endif  // IOMAPD_IOMAP_FLUSHER_H_
