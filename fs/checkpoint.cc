#include "fs/checkpoint.h"

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

using format::kCheckpointHeaderBytes;

uint64_t RoundUp(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

std::string EncodeHeader(const Superblock& sb, const CheckpointHeader& h) {
  std::string out(kCheckpointHeaderBytes, '\0');
  auto* p = reinterpret_cast<uint8_t*>(&out[0]);
  Put32(p + format::kCpMagic, format::kCheckpointMagic);
  Put64(p + format::kCpGeneration, h.generation);
  Put64(p + format::kCpJournalOffset, h.journal.offset);
  Put64(p + format::kCpJournalLsn, h.journal.lsn);
  Put64(p + format::kCpPayloadBytes, h.payload_bytes);
  Put32(p + format::kCpPayloadCrc, h.payload_crc);
  Put32(p + format::kCpFormatVersion, format::kFormatVersion);
  Put64(p + format::kCpJournalEpoch, h.epoch);
  Put32(p + format::kCpHeaderCrc,
        base::Crc32cExtend(sb.crc_seed(), p + 8, kCheckpointHeaderBytes - 8));
  return out;
}

// Checks the header block; "" when good.
std::string DecodeHeader(const Superblock& sb, const uint8_t* p,
                         CheckpointHeader* h) {
  if (Get32(p + format::kCpMagic) != format::kCheckpointMagic)
    return "no checkpoint magic";
  uint32_t crc =
      base::Crc32cExtend(sb.crc_seed(), p + 8, kCheckpointHeaderBytes - 8);
  if (crc != Get32(p + format::kCpHeaderCrc)) return "bad header checksum";
  if (Get32(p + format::kCpFormatVersion) != format::kFormatVersion)
    return "unknown checkpoint version";
  h->generation = Get64(p + format::kCpGeneration);
  h->journal.offset = Get64(p + format::kCpJournalOffset);
  h->journal.lsn = Get64(p + format::kCpJournalLsn);
  h->payload_bytes = Get64(p + format::kCpPayloadBytes);
  h->payload_crc = Get32(p + format::kCpPayloadCrc);
  h->epoch = Get64(p + format::kCpJournalEpoch);
  if (h->generation == 0 || h->journal.lsn == 0)
    return "zero generation or lsn";
  if (h->payload_bytes > CheckpointCapacity(sb))
    return "payload larger than the slot";
  return "";
}

}  // namespace

uint64_t CheckpointCapacity(const Superblock& sb) {
  return sb.checkpoint_slot_bytes() - kCheckpointHeaderBytes;
}

SlotState ReadCheckpointSlot(block::Device& dev, const Superblock& sb, int slot,
                             std::string* payload) {
  SlotState st;
  std::string head;
  const uint64_t off = sb.checkpoint_slot_offset(slot);
  if (ReadDisk(dev, off, sb.block_size, &head) < 0) {
    st.problem = "read error";
    return st;
  }
  st.problem = DecodeHeader(sb, reinterpret_cast<const uint8_t*>(head.data()),
                            &st.header);
  if (!st.problem.empty()) return st;
  std::string all;
  const uint64_t len =
      RoundUp(kCheckpointHeaderBytes + st.header.payload_bytes, sb.block_size);
  if (ReadDisk(dev, off, len, &all) < 0) {
    st.problem = "read error";
    return st;
  }
  payload->assign(all, kCheckpointHeaderBytes, st.header.payload_bytes);
  if (base::Crc32cExtend(sb.crc_seed(), payload->data(), payload->size()) !=
      st.header.payload_crc) {
    st.problem = "bad payload checksum";
    return st;
  }
  st.valid = true;
  return st;
}

absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(block::Device& dev,
                                                const Superblock& sb) {
  std::string payload[2];
  SlotState st[2] = {ReadCheckpointSlot(dev, sb, 0, &payload[0]),
                     ReadCheckpointSlot(dev, sb, 1, &payload[1])};
  if (!st[0].valid && !st[1].valid)
    return absl::DataLossError(
        absl::StrCat("no valid checkpoint: slot A: ", st[0].problem,
                     "; slot B: ", st[1].problem));
  int best = !st[0].valid                                        ? 1
             : !st[1].valid                                      ? 0
             : st[1].header.generation > st[0].header.generation ? 1
                                                                 : 0;
  LoadedCheckpoint out;
  out.header = st[best].header;
  out.slot = best;
  out.payload = std::move(payload[best]);
  return out;
}

absl::Status WriteCheckpoint(block::Device& dev, const Superblock& sb, int slot,
                             const CheckpointHeader& header,
                             absl::string_view payload) {
  if (payload.size() > CheckpointCapacity(sb))
    return base::ErrnoStatus(
        -ENOSPC,
        absl::StrCat("checkpoint of ", payload.size(),
                     " bytes does not fit a slot of ", CheckpointCapacity(sb)));
  CheckpointHeader h = header;
  h.payload_bytes = payload.size();
  h.payload_crc =
      base::Crc32cExtend(sb.crc_seed(), payload.data(), payload.size());
  std::string bytes = EncodeHeader(sb, h);
  bytes.append(payload.data(), payload.size());
  bytes.resize(RoundUp(bytes.size(), sb.block_size), '\0');
  if (int err = FlushDisk(dev); err < 0)
    return base::ErrnoStatus(err, "checkpoint: flush failed");
  if (int err = WriteDisk(dev, sb.checkpoint_slot_offset(slot), bytes,
                          block::kBioFua);
      err < 0)
    return base::ErrnoStatus(err, "checkpoint: write failed");
  return absl::OkStatus();
}

void AppendSection(std::string* payload, uint32_t id, absl::string_view bytes) {
  Encoder e(payload);
  e.U32(id);
  e.U32(0);
  e.U64(bytes.size());
  e.Bytes(bytes);
}

absl::StatusOr<std::map<uint32_t, absl::string_view>> SplitSections(
    absl::string_view payload) {
  std::map<uint32_t, absl::string_view> out;
  Decoder d(payload);
  while (d.ok() && !d.done()) {
    uint32_t id = d.U32();
    d.U32();
    uint64_t len = d.U64();
    if (!d.ok() || len > d.remaining())
      return absl::DataLossError("checkpoint: truncated section");
    if (!out.emplace(id, d.Bytes(len)).second)
      return absl::DataLossError(
          absl::StrCat("checkpoint: section ", id, " repeats"));
  }
  if (!d.ok())
    return absl::DataLossError("checkpoint: truncated section header");
  return out;
}

}  // namespace fs
