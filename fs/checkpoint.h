// Checkpoints: full serializations of the metadata, written alternately into
// two slots with a generation number and crc32c (docs/format.md,
// "Checkpoint slots"). The payload is opaque here; it is a sequence of
// sections (AppendSection / SplitSections) that each metadata structure
// fills and reads.
//
// Thread-safety: the functions are thread-safe; writing two checkpoints at
// once into the same slot is the caller's bug (MetaStore serializes them).
#ifndef IOMAPD_FS_CHECKPOINT_H_
#define IOMAPD_FS_CHECKPOINT_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "block/device.h"
#include "fs/journal.h"
#include "fs/superblock.h"

namespace fs {

struct CheckpointHeader {
  uint64_t generation = 0;  // >= 1; the newest valid slot wins
  uint64_t epoch = 0;       // journal epoch of the records to replay
  JournalPosition journal;  // where replay starts
  uint64_t payload_bytes = 0;
  uint32_t payload_crc = 0;
};

struct LoadedCheckpoint {
  CheckpointHeader header;
  int slot = 0;
  std::string payload;
};

// What one slot holds, for fsck and error messages.
struct SlotState {
  bool valid = false;
  std::string problem;  // empty when valid
  CheckpointHeader header;
};

// Largest payload a slot holds.
uint64_t CheckpointCapacity(const Superblock& sb);

// Reads and checks slot `slot` (0 or 1).
SlotState ReadCheckpointSlot(block::Device& dev, const Superblock& sb, int slot,
                             std::string* payload);

// Loads the valid slot with the highest generation. DATA_LOSS, naming each
// slot's problem, when neither is valid; an errno status on an I/O error.
absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(block::Device& dev,
                                                const Superblock& sb);

// Writes `payload` into `slot` under `header` (its payload fields are
// computed here): a device flush first, so data the metadata points at is
// durable, then header + payload with FUA. -ENOSPC status when the payload
// does not fit the slot.
absl::Status WriteCheckpoint(block::Device& dev, const Superblock& sb, int slot,
                             const CheckpointHeader& header,
                             absl::string_view payload);

// Sections of a payload.
void AppendSection(std::string* payload, uint32_t id, absl::string_view bytes);
// Splits a payload by section id. DATA_LOSS when malformed or an id repeats.
absl::StatusOr<std::map<uint32_t, absl::string_view>> SplitSections(
    absl::string_view payload);

}  // namespace fs

#endif  // IOMAPD_FS_CHECKPOINT_H_
