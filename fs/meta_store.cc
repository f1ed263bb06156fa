#include "fs/meta_store.h"

#include "absl/strings/str_cat.h"
#include "base/errno.h"
#include "fs/disk_io.h"
#include "fs/format.h"

namespace fs {

absl::Status MetaStore::Format(block::Device& dev, const Superblock& sb,
                               absl::string_view initial_payload) {
  if (absl::Status s = CheckDeviceFits(sb, dev.limits()); !s.ok()) return s;
  // Clear slot B's header and the first journal block.
  const std::string zero(sb.block_size, '\0');
  if (int err = WriteDisk(dev, sb.checkpoint_slot_offset(1), zero); err < 0)
    return base::ErrnoStatus(err, "mkfs: clearing checkpoint slot B failed");
  if (int err = WriteDisk(dev, sb.journal_offset(), zero); err < 0)
    return base::ErrnoStatus(err, "mkfs: clearing the journal failed");
  CheckpointHeader h;
  h.generation = 1;
  h.epoch = 1;
  h.journal = JournalPosition{0, 1};
  if (absl::Status s = WriteCheckpoint(dev, sb, 0, h, initial_payload); !s.ok())
    return s;
  return WriteSuperblock(dev, sb);
}

absl::StatusOr<std::unique_ptr<MetaStore>> MetaStore::Mount(
    block::Device& dev, const MetaStoreOptions& options,
    const MetaCallbacks& cb) {
  absl::StatusOr<Superblock> sb = ReadSuperblock(dev, options.read_only);
  if (!sb.ok()) return sb.status();
  std::unique_ptr<MetaStore> store(new MetaStore(dev, *sb));
  if (absl::Status s = store->Recover(options, cb); !s.ok()) return s;
  return store;
}

absl::Status MetaStore::Recover(const MetaStoreOptions& options,
                                const MetaCallbacks& cb) {
  absl::StatusOr<LoadedCheckpoint> cp = LoadCheckpoint(dev_, sb_);
  if (!cp.ok()) return cp.status();
  if (absl::Status s = cb.load(cp->payload); !s.ok()) return s;
  info_.checkpoint_generation = cp->header.generation;
  info_.checkpoint_slot = cp->slot;
  absl::StatusOr<ReplayResult> replay =
      ReplayJournal(dev_, sb_, cp->header.epoch, cp->header.journal,
                    [&cb](uint64_t lsn, uint16_t, absl::string_view txn) {
                      return cb.replay(lsn, txn);
                    });
  if (!replay.ok()) return replay.status();
  absl::StatusOr<uint64_t> later =
      FindRecordPastEnd(dev_, sb_, cp->header.epoch, replay->end);
  if (!later.ok()) return later.status();
  if (*later != 0 && !options.allow_damaged_log)
    return absl::DataLossError(
        absl::StrCat("journal: record lsn ", replay->end.lsn, " is damaged (",
                     replay->stop_reason, ") but a later commit at lsn ",
                     *later, " is valid; refusing to mount"));
  info_.replayed_records = replay->records;
  info_.replay_stop_reason = replay->stop_reason;
  info_.replay_epoch = cp->header.epoch;
  info_.replay_end = replay->end;
  base::MutexLock lock(&cp_mu_);
  generation_ = cp->header.generation;
  slot_ = cp->slot;
  if (options.read_only) return absl::OkStatus();
  // A new epoch for this mount, starting at the next block boundary.
  const uint64_t bs = sb_.block_size;
  JournalPosition head{(replay->end.offset + bs - 1) / bs * bs,
                       replay->end.lsn};
  CheckpointHeader h;
  h.generation = generation_ + 1;
  h.epoch = h.generation;
  h.journal = head;
  std::string payload;
  cb.snapshot(&payload);
  if (absl::Status s = WriteCheckpoint(dev_, sb_, 1 - slot_, h, payload);
      !s.ok())
    return s;
  generation_ = h.generation;
  slot_ = 1 - slot_;
  epoch_ = h.epoch;
  journal_ =
      std::make_unique<Journal>(dev_, sb_, epoch_, head, head, options.journal);
  return absl::OkStatus();
}

MetaStore::~MetaStore() = default;

absl::Status MetaStore::Checkpoint(absl::string_view payload,
                                   JournalPosition covered) {
  if (journal_ == nullptr)
    return base::ErrnoStatus(-EROFS,
                             "checkpoint: the volume is mounted read-only");
  base::MutexLock lock(&cp_mu_);
  // The log below `covered` is reused only once those records are durable.
  if (int err = journal_->Commit(covered.lsn - 1); err < 0)
    return base::ErrnoStatus(err, "checkpoint: journal commit failed");
  CheckpointHeader h;
  h.generation = generation_ + 1;
  h.epoch = epoch_;
  h.journal = covered;
  if (absl::Status s = WriteCheckpoint(dev_, sb_, 1 - slot_, h, payload);
      !s.ok())
    return s;
  generation_ = h.generation;
  slot_ = 1 - slot_;
  journal_->ReleaseTo(covered);
  return absl::OkStatus();
}

}  // namespace fs
