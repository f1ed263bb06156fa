// Writeback ioends (fs/iomap/ioend.c): an Ioend wraps the write bio built from
// contiguous dirty ranges of a file, records what completion must do
// (unwritten conversion, COW remap, ...), and ends folio writeback when the
// bio completes. Also: IoendCompletionQueue, the per-volume workqueue that
// completes ioends needing process context, sorted and merged per inode.
//
// Life cycle:
//   AddToIoend (from IomapWritebackOps::WritebackRange) adds a mapped range
//   of a folio to wpc->ioend, starting a new one (and handing the old one to
//   WritebackSubmit) when the kernel's rules say so; the filesystem's
//   WritebackSubmit calls IoendWritebackSubmit, which submits the bio.
//   The bio completes in the device's completion thread: by default the
//   ioend is finished there (FinishIoends: errors recorded on the mapping,
//   writeback ended per folio). When the filesystem attached the ioend to an
//   IoendCompletionQueue, completion is handed to its worker threads, which
//   sort the inode's ioends by offset, merge neighbours (IoendTryMerge), call
//   IoendCompletionOps::FinishIoend and then FinishIoends.
//
// Ownership: an Ioend is allocated by AddToIoend and freed by FinishIoends
// (with every ioend merged into it). It holds a reference on each folio it
// covers until writeback of that folio ends.
#ifndef IOMAPD_IOMAP_IOEND_H_
#define IOMAPD_IOMAP_IOEND_H_

#include <cstdint>
#include <deque>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "base/mutex.h"
#include "block/device.h"
#include "iomap/folio.h"
#include "iomap/iomap.h"

namespace iomap {

class IoendCompletionQueue;

// IOMAP_IOEND_* flags.
inline constexpr uint16_t kIoendShared = 1u << 0;     // COW: remap at end
inline constexpr uint16_t kIoendUnwritten = 1u << 1;  // convert at end
inline constexpr uint16_t kIoendBoundary = 1u << 2;   // no merge with prev
inline constexpr uint16_t kIoendDirect = 1u << 3;     // direct I/O ioend
inline constexpr uint16_t kIoendDontcache = 1u << 4;  // drop folios at end
// Ioends that differ in these need different completion work.
inline constexpr uint16_t kIoendNomergeFlags =
    kIoendShared | kIoendUnwritten | kIoendDirect | kIoendDontcache;

// IOEND_BATCH_SIZE: most folios in one ioend.
inline constexpr uint32_t kIoendBatchSize = 4096;

// A folio range whose writeback the ioend ends (one per bio_add_folio,
// coalesced when contiguous within one folio).
struct IoendFolio {
  Folio* folio;
  uint32_t offset;
  uint32_t len;
};

// struct iomap_ioend. Thread-compatible: built by one writeback thread,
// then owned by the completion path.
struct Ioend {
  block::Bio bio;  // io_bio: iovecs point into folio data
  Inode* inode = nullptr;
  block::Device* bdev = nullptr;
  uint16_t flags = 0;      // kIoend*
  int64_t io_offset = 0;   // file offset
  uint64_t io_size = 0;    // bytes, clamped to EOF at build time
  uint64_t io_sector = 0;  // 512-byte device sector of io_offset
  int error = 0;           // io_error: 0 or -errno, set at completion
  std::vector<IoendFolio> folios;
  // io_list: ioends merged into this one by IoendTryMerge (owned).
  std::vector<Ioend*> merged;
  void* io_private = nullptr;  // the filesystem's own
  // Set by IoendCompletionQueue::Attach.
  IoendCompletionQueue* completion_queue = nullptr;

  // bio_end_sector(): the sector after the bio's last byte.
  uint64_t BioEndSector() const { return (bio.offset + bio.len) >> 9; }
};

// The list type of SortIoends / IoendTryMerge.
using IoendList = std::deque<Ioend*>;

// iomap_init_ioend-equivalent: a new empty write ioend of `inode` at file
// offset `pos`, device byte `dev_addr` on `bdev`. Tests and filesystems that
// build ioends by hand use it; AddToIoend calls it.
Ioend* NewIoend(Inode* inode, block::Device* bdev, int64_t pos,
                uint64_t dev_addr, uint16_t flags);

// iomap_add_to_ioend(): adds [pos, pos + dirty_len) of the locked `folio`,
// mapped by wpc->iomap, to the ioend being built (see the rules in
// docs/writeback.md). HOLE: nothing is written, returns the length it
// covers. UNWRITTEN and MAPPED are written; any other type is -EIO.
// `end_pos` is where the folio's data ends (EOF); io_size is clamped to it.
// Returns bytes handled (> 0) or -errno (including an error of
// WritebackSubmit for the previous ioend).
int64_t AddToIoend(WritepageCtx* wpc, Folio* folio, int64_t pos,
                   int64_t end_pos, unsigned dirty_len);

// iomap_ioend_writeback_submit(): submits wpc->ioend (and clears it). With
// `error` != 0 (or an ANON_WRITE mapping), the ioend is completed with the
// error instead, which ends writeback and records it on the mapping. Returns
// `error` or 0. Installs the default completion (finish in the completion
// thread) unless an end_io was set (IoendCompletionQueue::Attach).
int IoendWritebackSubmit(WritepageCtx* wpc, int error);

// iomap_sort_ioends(): sorts by io_offset (stable).
void SortIoends(IoendList* list);

// iomap_ioend_can_merge(): the kernel's exact conditions: neither is a read,
// same status, `next` not BOUNDARY, same NOMERGE flags, file-contiguous and
// sector-contiguous (io_sector + io_size / 512 == next->io_sector).
bool IoendCanMerge(const Ioend& ioend, const Ioend& next);

// iomap_ioend_try_merge(): moves ioends from the head of the sorted `more`
// into ioend->merged while they can merge, growing io_size.
void IoendTryMerge(Ioend* ioend, IoendList* more);

// iomap_finish_ioends(): finishes `ioend` and every ioend merged into it:
// `error` (if any) becomes each one's error when it had none; an error is
// recorded on the mapping (WbError); writeback ends per folio
// (FinishFolioWrite); DONTCACHE folios are dropped when clean. Frees them.
// May run in the completion thread only for ioends without kIoendDontcache.
void FinishIoends(Ioend* ioend, int error);

// iomap_start_folio_write / iomap_finish_folio_write: count `len` bytes of
// writeback in flight on the folio's state; the folio's writeback ends when
// they are all finished (at once for a folio without state).
void StartFolioWrite(Folio* folio, size_t len);
void FinishFolioWrite(Folio* folio, size_t len);

// The filesystem's side of ioend completion (xfs_end_ioend).
// Thread-safety: called from the queue's worker threads, concurrently for
// different inodes, serially for one inode.
class IoendCompletionOps {
 public:
  virtual ~IoendCompletionOps() = default;
  // Whether `ioend` must complete in process context (xfs_ioend_needs_wq_
  // completion). Default: UNWRITTEN, SHARED or DONTCACHE. A filesystem adds
  // "extends the on-disk size".
  virtual bool NeedsWorkqueue(const Ioend& ioend) const;
  // Process context, after the I/O of `ioend` (possibly merged: io_offset/
  // io_size cover the merged range) completed with ioend->error. Does the
  // filesystem's work (unwritten conversion, COW remap or cancel on error,
  // on-disk size update). Returns 0 or -errno; an error is reported for the
  // ioend's data (folios end writeback with it, mapping error set).
  virtual int FinishIoend(Inode* inode, Ioend* ioend) = 0;
};

struct IoendCompletionQueueOptions {
  int threads = 2;  // worker threads
};

// The per-volume completion workqueue. Thread-safe.
class IoendCompletionQueue {
 public:
  IoendCompletionQueue(IoendCompletionOps* ops,
                       const IoendCompletionQueueOptions& options =
                           IoendCompletionQueueOptions());
  // Waits for all queued work, then stops the workers.
  ~IoendCompletionQueue();
  IoendCompletionQueue(const IoendCompletionQueue&) = delete;
  IoendCompletionQueue& operator=(const IoendCompletionQueue&) = delete;

  // If ops->NeedsWorkqueue(*ioend), routes its completion through this
  // queue (sets its bio's end_io). Call before IoendWritebackSubmit.
  // Returns whether it did.
  bool Attach(Ioend* ioend);
  // Waits until every ioend handed to the queue so far is finished.
  void Flush();

  // Ioends finished by the queue and merges it made (for tests).
  uint64_t finished() const;
  uint64_t merges() const;

 private:
  struct InodeWork {
    IoendList pending;
    bool queued = false;   // in runnable_
    bool running = false;  // a worker holds it
  };
  static void EndBio(block::Bio* bio);
  void Queue(Ioend* ioend);
  void Worker();
  void ProcessBatch(Inode* inode, IoendList list);

  IoendCompletionOps* const ops_;
  mutable base::Mutex mu_{base::LockRank::kLeaf};
  base::CondVar work_cv_;
  base::CondVar idle_cv_;
  absl::flat_hash_map<Inode*, InodeWork> inodes_ ABSL_GUARDED_BY(mu_);
  std::deque<Inode*> runnable_ ABSL_GUARDED_BY(mu_);
  uint64_t outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t finished_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t merges_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace iomap

#endif  // IOMAPD_IOMAP_IOEND_H_
