// The write-ahead metadata journal: a circular log of checksummed logical
// records with group commit (docs/format.md, "Journal").
//
// Append() encodes a record into an in-memory commit buffer and gives it the
// next lsn; it never does I/O. Commit(lsn) blocks until that record (and so
// every earlier one) is durable. One committer thread writes whatever has
// accumulated as one commit: a device flush (so data writes that completed
// before the records were appended are durable first), then the commit's
// blocks with FUA. Committers that arrive while a commit is in flight share
// the next one: N concurrent fsyncs cost far fewer than N flushes.
//
// Replay() is the read side, used at mount and by fsck.
//
// Thread-safety: Journal is thread-safe. Append takes the journal lock (rank
// kJournal) briefly, so callers may hold fs locks of lower rank (kFsInode,
// kFsAlloc); Commit blocks and must be called without fs locks held.
#ifndef IOMAPD_FS_JOURNAL_H_
#define IOMAPD_FS_JOURNAL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/mutex.h"
#include "block/device.h"
#include "fs/superblock.h"

namespace fs {

// A place in the log: the log offset of a record and the lsn it must have.
struct JournalPosition {
  uint64_t offset = 0;
  uint64_t lsn = 1;
  bool operator==(const JournalPosition& o) const {
    return offset == o.offset && lsn == o.lsn;
  }
};

struct JournalOptions {
  // Flush the device before writing a commit (orders data before metadata).
  // Default true; tests of the journal alone may turn it off.
  bool preflush = true;
};

struct JournalStats {
  uint64_t commits = 0;  // commit writes issued
  uint64_t records = 0;  // records appended (pads excluded)
  uint64_t bytes = 0;    // bytes written to the log
};

// Called by Replay for each valid record, in lsn order. Returning non-zero
// (a negative errno) stops replay with that error.
using ReplayFn =
    std::function<int(uint64_t lsn, uint16_t type, absl::string_view payload)>;

struct ReplayResult {
  JournalPosition end;      // the first position that held no valid record
  uint64_t records = 0;     // kRecordTxn records delivered
  std::string stop_reason;  // why the record at `end` was not accepted
};

// Reads the log from `start` under `epoch`, calling `fn` per transaction
// record, until the first missing, torn or corrupt record. Read-only. Errors:
// an I/O error, or fn's error (with the lsn in the message).
absl::StatusOr<ReplayResult> ReplayJournal(block::Device& dev,
                                           const Superblock& sb, uint64_t epoch,
                                           JournalPosition start,
                                           const ReplayFn& fn);

// Looks one lap past `end` for the first record of a commit that is valid
// under `epoch` with an lsn above end.lsn. Finding one means the log was
// damaged inside, not merely torn at its end (a commit is written only after
// the previous one is durable). Returns that lsn, or 0 when there is none.
// Mount refuses such a log; fsck reports it.
absl::StatusOr<uint64_t> FindRecordPastEnd(block::Device& dev,
                                           const Superblock& sb, uint64_t epoch,
                                           JournalPosition end);

class Journal {
 public:
  // Appends at `head` under `epoch`; `tail` is the replay position of the
  // newest durable checkpoint (space before it is free). REQUIRES:
  // head.offset is a multiple of the block size and tail <= head.
  Journal(block::Device& dev, const Superblock& sb, uint64_t epoch,
          JournalPosition tail, JournalPosition head,
          const JournalOptions& options = JournalOptions());
  // Commits everything appended, then stops the committer.
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Buffers a record; returns its lsn (> 0) or -E2BIG (payload over the
  // limit), -ENOSPC (the log is full until a checkpoint moves the tail) or
  // -EIO (an earlier commit failed; the journal is shut down).
  int64_t Append(uint16_t type, absl::string_view payload);

  // Blocks until every record with lsn <= `lsn` is durable. 0 or -EIO.
  int Commit(uint64_t lsn);
  // Commits everything appended so far.
  int CommitAll();

  // The position the next record will take (a checkpoint's replay start).
  // Taken under the caller's metadata lock, it separates records the
  // snapshot covers from those it does not.
  JournalPosition head() const;
  uint64_t durable_lsn() const;
  uint64_t epoch() const { return epoch_; }
  // Frees log space before `new_tail` once a checkpoint replaying from it is
  // durable. REQUIRES: every record before new_tail is durable.
  void ReleaseTo(JournalPosition new_tail);
  // Bytes of log in use (tail to head) and the log size.
  uint64_t used_bytes() const;
  uint64_t capacity_bytes() const { return ring_bytes_; }
  JournalStats stats() const;

 private:
  void CommitterLoop();
  // Pads the commit buffer to a block boundary. REQUIRES: mu_ held.
  void PadToBlockLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SkipHeaderGapLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EncodeLocked(uint16_t type, absl::string_view payload)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int WriteCommit(uint64_t start, const std::string& bytes);

  block::Device& dev_;
  const Superblock sb_;
  const uint64_t epoch_;
  const uint32_t seed_;
  const uint64_t ring_bytes_;
  const JournalOptions options_;

  mutable base::Mutex mu_{base::LockRank::kJournal};
  base::CondVar work_cv_;  // the committer waits for work
  base::CondVar done_cv_;  // committers wait for durability
  JournalPosition tail_ ABSL_GUARDED_BY(mu_);
  uint64_t head_offset_ ABSL_GUARDED_BY(mu_);
  uint64_t next_lsn_ ABSL_GUARDED_BY(mu_);
  std::string buffer_
      ABSL_GUARDED_BY(mu_);  // not yet written, block-aligned start
  uint64_t buffer_start_ ABSL_GUARDED_BY(mu_);
  uint64_t requested_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t durable_lsn_ ABSL_GUARDED_BY(mu_);
  int error_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  JournalStats stats_ ABSL_GUARDED_BY(mu_);
  std::thread committer_;
};

}  // namespace fs

#endif  // IOMAPD_FS_JOURNAL_H_
