#include "fs/journal.h"

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/crc32c.h"
#include "base/errno.h"
#include "fs/codec.h"
#include "fs/disk_io.h"
#include "fs/format.h"

namespace fs {
namespace {

using format::kRecordHeaderBytes;

uint64_t Round8(uint64_t v) { return (v + 7) & ~uint64_t{7}; }

uint32_t EpochSeed(const Superblock& sb, uint64_t epoch) {
  uint8_t b[8];
  Put64(b, epoch);
  return base::Crc32cExtend(sb.crc_seed(), b, 8);
}

void FillHeader(uint8_t* h, uint64_t lsn, uint64_t offset, uint32_t len,
                uint16_t type) {
  Put32(h + format::kRecMagic, format::kRecordMagic);
  Put64(h + format::kRecLsn, lsn);
  Put64(h + format::kRecLogOffset, offset);
  Put32(h + format::kRecLength, len);
  Put16(h + format::kRecType, type);
  Put16(h + format::kRecFlags, 0);
}

uint32_t RecordCrc(uint32_t seed, const uint8_t* header,
                   absl::string_view payload) {
  uint32_t crc = base::Crc32cExtend(seed, header + 8, kRecordHeaderBytes - 8);
  return base::Crc32cExtend(crc, payload.data(), payload.size());
}

// Sets kRecFlagCommitStart on the first record of a commit (which starts at
// the beginning of `batch`) and fixes its crc.
void MarkCommitStart(uint32_t seed, std::string* batch) {
  auto* h = reinterpret_cast<uint8_t*>(&(*batch)[0]);
  Put16(h + format::kRecFlags, format::kRecFlagCommitStart);
  absl::string_view payload(batch->data() + kRecordHeaderBytes,
                            Get32(h + format::kRecLength));
  Put32(h + format::kRecCrc, RecordCrc(seed, h, payload));
}

// Reads the circular log through a cached window of up to 1 MiB.
class RingReader {
 public:
  RingReader(block::Device& dev, const Superblock& sb) : dev_(dev), sb_(sb) {}

  // Appends `n` bytes at log offset `off` to *out. 0 or -errno.
  int Read(uint64_t off, uint64_t n, std::string* out) {
    while (n > 0) {
      uint64_t phys = off % sb_.journal_bytes();
      if (int err = Load(phys); err < 0) return err;
      uint64_t k = std::min(n, win_start_ + win_.size() - phys);
      out->append(win_, phys - win_start_, k);
      off += k;
      n -= k;
    }
    return 0;
  }

 private:
  static constexpr uint64_t kWindow = 1 << 20;
  int Load(uint64_t phys) {
    if (!win_.empty() && phys >= win_start_ && phys < win_start_ + win_.size())
      return 0;
    win_start_ = phys / kWindow * kWindow;
    uint64_t len = std::min(kWindow, sb_.journal_bytes() - win_start_);
    return ReadDisk(dev_, sb_.journal_offset() + win_start_, len, &win_);
  }
  block::Device& dev_;
  const Superblock& sb_;
  std::string win_;
  uint64_t win_start_ = 0;
};

// Checks one record at `pos`. Returns "" and fills *type / *payload when it
// is valid, else why not.
std::string ParseRecord(RingReader& ring, uint32_t seed, JournalPosition pos,
                        int* io_err, uint16_t* type, std::string* payload) {
  std::string h;
  if ((*io_err = ring.Read(pos.offset, kRecordHeaderBytes, &h)) < 0)
    return "read error";
  const auto* p = reinterpret_cast<const uint8_t*>(h.data());
  if (Get32(p + format::kRecMagic) != format::kRecordMagic)
    return "no record magic";
  uint32_t len = Get32(p + format::kRecLength);
  if (Get64(p + format::kRecLsn) != pos.lsn) return "lsn out of sequence";
  if (Get64(p + format::kRecLogOffset) != pos.offset)
    return "log offset mismatch";
  if (len > format::kMaxRecordPayload) return "record length too large";
  payload->clear();
  if ((*io_err = ring.Read(pos.offset + kRecordHeaderBytes, len, payload)) < 0)
    return "read error";
  if (RecordCrc(seed, p, *payload) != Get32(p + format::kRecCrc))
    return "bad record crc";
  *type = Get16(p + format::kRecType);
  return "";
}

}  // namespace

absl::StatusOr<ReplayResult> ReplayJournal(block::Device& dev,
                                           const Superblock& sb, uint64_t epoch,
                                           JournalPosition start,
                                           const ReplayFn& fn) {
  RingReader ring(dev, sb);
  const uint32_t seed = EpochSeed(sb, epoch);
  const uint64_t bs = sb.block_size;
  ReplayResult result;
  JournalPosition pos = start;
  std::string payload;
  while (true) {
    if (bs - pos.offset % bs < kRecordHeaderBytes)
      pos.offset += bs - pos.offset % bs;
    if (pos.offset - start.offset + kRecordHeaderBytes > sb.journal_bytes()) {
      result.stop_reason = "log wrapped around";
      break;
    }
    int io_err = 0;
    uint16_t type = 0;
    std::string why = ParseRecord(ring, seed, pos, &io_err, &type, &payload);
    if (io_err < 0)
      return base::ErrnoStatus(io_err, "journal: read failed during replay");
    if (!why.empty()) {
      result.stop_reason = why;
      break;
    }
    if (type == format::kRecordTxn) {
      if (int err = fn(pos.lsn, type, payload); err != 0)
        return base::ErrnoStatus(
            err,
            absl::StrCat("journal: replay of record lsn ", pos.lsn, " failed"));
      ++result.records;
    } else if (type != format::kRecordPad) {
      return absl::DataLossError(absl::StrCat("journal: record lsn ", pos.lsn,
                                              " has unknown type ", type));
    }
    pos.offset += kRecordHeaderBytes + Round8(payload.size());
    ++pos.lsn;
  }
  result.end = pos;
  return result;
}

absl::StatusOr<uint64_t> FindRecordPastEnd(block::Device& dev,
                                           const Superblock& sb, uint64_t epoch,
                                           JournalPosition end) {
  RingReader ring(dev, sb);
  const uint32_t seed = EpochSeed(sb, epoch);
  const uint64_t bs = sb.block_size;
  std::string payload;
  for (uint64_t b = (end.offset / bs + 1) * bs;
       b < end.offset + sb.journal_bytes(); b += bs) {
    std::string h;
    if (int err = ring.Read(b, kRecordHeaderBytes, &h); err < 0)
      return base::ErrnoStatus(err, "journal: read failed");
    const auto* p = reinterpret_cast<const uint8_t*>(h.data());
    const uint64_t lsn = Get64(p + format::kRecLsn);
    if (Get32(p + format::kRecMagic) != format::kRecordMagic ||
        Get64(p + format::kRecLogOffset) != b || lsn <= end.lsn ||
        !(Get16(p + format::kRecFlags) & format::kRecFlagCommitStart))
      continue;
    int io_err = 0;
    uint16_t type;
    if (ParseRecord(ring, seed, JournalPosition{b, lsn}, &io_err, &type,
                    &payload)
            .empty())
      return lsn;
    if (io_err < 0) return base::ErrnoStatus(io_err, "journal: read failed");
  }
  return 0;
}

Journal::Journal(block::Device& dev, const Superblock& sb, uint64_t epoch,
                 JournalPosition tail, JournalPosition head,
                 const JournalOptions& options)
    : dev_(dev),
      sb_(sb),
      epoch_(epoch),
      seed_(EpochSeed(sb, epoch)),
      ring_bytes_(sb.journal_bytes()),
      options_(options) {
  base::MutexLock lock(&mu_);
  tail_ = tail;
  head_offset_ = head.offset;
  buffer_start_ = head.offset;
  next_lsn_ = head.lsn;
  durable_lsn_ = head.lsn - 1;
  committer_ = std::thread([this] { CommitterLoop(); });
}

Journal::~Journal() {
  {
    base::MutexLock lock(&mu_);
    stop_ = true;
    work_cv_.Signal();
  }
  committer_.join();
}

void Journal::EncodeLocked(uint16_t type, absl::string_view payload) {
  const size_t at = buffer_.size();
  buffer_.resize(at + kRecordHeaderBytes);
  auto* h = reinterpret_cast<uint8_t*>(&buffer_[at]);
  FillHeader(h, next_lsn_, head_offset_, payload.size(), type);
  Put32(h + format::kRecCrc, RecordCrc(seed_, h, payload));
  buffer_.append(payload.data(), payload.size());
  buffer_.resize(at + kRecordHeaderBytes + Round8(payload.size()), '\0');
  head_offset_ += buffer_.size() - at;
  ++next_lsn_;
}

void Journal::SkipHeaderGapLocked() {
  const uint64_t rem = sb_.block_size - head_offset_ % sb_.block_size;
  if (rem >= kRecordHeaderBytes) return;
  buffer_.append(rem, '\0');
  head_offset_ += rem;
}

void Journal::PadToBlockLocked() {
  const uint64_t rem = sb_.block_size - head_offset_ % sb_.block_size;
  if (rem == sb_.block_size) return;
  if (rem < kRecordHeaderBytes) {
    SkipHeaderGapLocked();
    return;
  }
  EncodeLocked(format::kRecordPad, std::string(rem - kRecordHeaderBytes, '\0'));
}

int64_t Journal::Append(uint16_t type, absl::string_view payload) {
  if (payload.size() > format::kMaxRecordPayload) return -E2BIG;
  base::MutexLock lock(&mu_);
  if (error_ != 0) return -EIO;
  // Worst case: a header gap, the record, and the pad that ends its commit.
  const uint64_t need =
      2 * kRecordHeaderBytes + Round8(payload.size()) + sb_.block_size;
  if (head_offset_ - tail_.offset + need > ring_bytes_) return -ENOSPC;
  SkipHeaderGapLocked();
  const int64_t lsn = next_lsn_;
  EncodeLocked(type, payload);
  ++stats_.records;
  return lsn;
}

int Journal::Commit(uint64_t lsn) {
  base::MutexLock lock(&mu_);
  lsn = std::min(lsn, next_lsn_ - 1);
  while (durable_lsn_ < lsn && error_ == 0) {
    requested_lsn_ = std::max(requested_lsn_, lsn);
    work_cv_.Signal();
    done_cv_.Wait(&mu_);
  }
  return durable_lsn_ >= lsn ? 0 : -EIO;
}

int Journal::CommitAll() {
  uint64_t last;
  {
    base::MutexLock lock(&mu_);
    last = next_lsn_ - 1;
  }
  return Commit(last);
}

void Journal::CommitterLoop() {
  base::MutexLock lock(&mu_);
  while (true) {
    while (!(next_lsn_ - 1 > durable_lsn_ &&
             (requested_lsn_ > durable_lsn_ || stop_)) &&
           !stop_)
      work_cv_.Wait(&mu_);
    if (next_lsn_ - 1 == durable_lsn_ && stop_) return;
    PadToBlockLocked();
    std::string batch;
    batch.swap(buffer_);
    MarkCommitStart(seed_, &batch);
    const uint64_t start = buffer_start_;
    const uint64_t last = next_lsn_ - 1;
    buffer_start_ = head_offset_;
    mu_.Unlock();
    const int err = WriteCommit(start, batch);
    mu_.Lock();
    if (err < 0) {
      error_ = err;
      done_cv_.SignalAll();
      return;
    }
    durable_lsn_ = last;
    ++stats_.commits;
    stats_.bytes += batch.size();
    done_cv_.SignalAll();
  }
}

int Journal::WriteCommit(uint64_t start, const std::string& bytes) {
  if (options_.preflush) {
    if (int err = FlushDisk(dev_); err < 0) return err;
  }
  const uint64_t phys = start % ring_bytes_;
  const uint64_t first = std::min<uint64_t>(bytes.size(), ring_bytes_ - phys);
  absl::string_view all(bytes);
  int err = WriteDisk(dev_, sb_.journal_offset() + phys, all.substr(0, first),
                      block::kBioFua);
  if (err == 0 && first < bytes.size())
    err = WriteDisk(dev_, sb_.journal_offset(), all.substr(first),
                    block::kBioFua);
  return err;
}

JournalPosition Journal::head() const {
  base::MutexLock lock(&mu_);
  return JournalPosition{head_offset_, next_lsn_};
}

uint64_t Journal::durable_lsn() const {
  base::MutexLock lock(&mu_);
  return durable_lsn_;
}

void Journal::ReleaseTo(JournalPosition new_tail) {
  base::MutexLock lock(&mu_);
  if (new_tail.offset > tail_.offset) tail_ = new_tail;
}

uint64_t Journal::used_bytes() const {
  base::MutexLock lock(&mu_);
  return head_offset_ - tail_.offset;
}

JournalStats Journal::stats() const {
  base::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace fs
