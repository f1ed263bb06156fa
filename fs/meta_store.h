// MetaStore: mount, checkpoint and format for a volume's metadata. It owns
// the journal and ties the superblock, the checkpoint slots and replay
// together; what the metadata *is* stays with its owner, reached through
// callbacks (docs/format.md describes the sequence).
//
// Mount: read and check the superblock; load the newest valid checkpoint and
// hand its payload to `load`; replay the journal from the checkpoint's
// position through `replay`; then (read-write) write a new checkpoint from
// `snapshot` whose generation becomes the journal epoch, and start the
// journal after it. A failure at any step returns an error and writes
// nothing. Read-only mounts (fsck) stop after replay.
//
// Thread-safety: thread-safe. Checkpoint() serializes checkpoints with an
// internal lock; the caller provides a consistent snapshot (see Checkpoint).
#ifndef IOMAPD_FS_META_STORE_H_
#define IOMAPD_FS_META_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "block/device.h"
#include "fs/checkpoint.h"
#include "fs/journal.h"
#include "fs/superblock.h"

namespace fs {

struct MetaCallbacks {
  // Loads a checkpoint payload into empty in-memory structures.
  std::function<absl::Status(absl::string_view payload)> load;
  // Applies one replayed transaction record. 0 or -errno.
  std::function<int(uint64_t lsn, absl::string_view txn)> replay;
  // Serializes the whole metadata state (a checkpoint payload).
  std::function<void(std::string* payload)> snapshot;
};

struct MetaStoreOptions {
  bool read_only = false;
  // Mount even when the journal is damaged inside (replay stops at the
  // damage). For fsck, which reports it; a normal mount refuses.
  bool allow_damaged_log = false;
  JournalOptions journal;
};

struct MountInfo {
  uint64_t checkpoint_generation = 0;  // loaded
  int checkpoint_slot = 0;
  uint64_t replayed_records = 0;
  std::string replay_stop_reason;
  uint64_t replay_epoch = 0;   // epoch the replayed records were under
  JournalPosition replay_end;  // where replay stopped
};

class MetaStore {
 public:
  // Writes a new filesystem's metadata: slot B cleared, slot A holding
  // `initial_payload` as generation 1 (epoch 1, journal empty), then the
  // superblock last, with FUA.
  static absl::Status Format(block::Device& dev, const Superblock& sb,
                             absl::string_view initial_payload);

  static absl::StatusOr<std::unique_ptr<MetaStore>> Mount(
      block::Device& dev, const MetaStoreOptions& options,
      const MetaCallbacks& callbacks);
  ~MetaStore();

  const Superblock& superblock() const { return sb_; }
  const MountInfo& mount_info() const { return info_; }
  // The journal; null for a read-only mount.
  Journal* journal() { return journal_.get(); }

  // Writes a checkpoint of `payload`, which must reflect exactly the
  // records before `covered`. The caller takes both under its metadata lock
  // (payload = serialize; covered = journal()->head()) and may drop the lock
  // before calling. Frees the log space before `covered` on success.
  absl::Status Checkpoint(absl::string_view payload, JournalPosition covered);

 private:
  MetaStore(block::Device& dev, const Superblock& sb) : dev_(dev), sb_(sb) {}
  absl::Status Recover(const MetaStoreOptions& options,
                       const MetaCallbacks& cb);

  block::Device& dev_;
  const Superblock sb_;
  MountInfo info_;
  std::unique_ptr<Journal> journal_;
  base::Mutex cp_mu_{base::LockRank::kFsInode};
  uint64_t generation_ ABSL_GUARDED_BY(cp_mu_) = 0;  // newest durable
  int slot_ ABSL_GUARDED_BY(cp_mu_) = 0;             // where it is
  uint64_t epoch_ = 0;
};

}  // namespace fs

#endif  // IOMAPD_FS_META_STORE_H_
