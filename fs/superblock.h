// The superblock: the static description of a filesystem, written once by
// mkfs in block 0 and never rewritten (all changing state lives in
// checkpoints and the journal). docs/format.md describes the layout.
//
// Thread-safety: Superblock is a plain value; the functions are thread-safe.
#ifndef IOMAPD_FS_SUPERBLOCK_H_
#define IOMAPD_FS_SUPERBLOCK_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "block/device.h"

namespace fs {

struct Superblock {
  uint32_t version = 0;
  uint32_t block_size = 0;
  std::array<uint8_t, 16> uuid{};
  uint64_t block_count = 0;  // blocks in the filesystem
  uint64_t feat_compat = 0;
  uint64_t feat_ro_compat = 0;
  uint64_t feat_incompat = 0;
  uint64_t checkpoint_start = 0;   // block of slot A
  uint64_t checkpoint_blocks = 0;  // blocks per slot
  uint64_t journal_start = 0;      // block
  uint64_t journal_blocks = 0;
  uint64_t data_start = 0;  // first block the allocator may hand out
  uint64_t max_inodes = 0;
  uint64_t root_ino = 0;
  uint64_t mkfs_time_ns = 0;

  uint64_t bytes() const { return block_count * block_size; }
  uint64_t checkpoint_slot_offset(int slot) const {
    return (checkpoint_start + slot * checkpoint_blocks) * block_size;
  }
  uint64_t checkpoint_slot_bytes() const {
    return checkpoint_blocks * block_size;
  }
  uint64_t journal_offset() const { return journal_start * block_size; }
  uint64_t journal_bytes() const { return journal_blocks * block_size; }
  // The seed of every journal and checkpoint crc: Crc32c(uuid).
  uint32_t crc_seed() const;
};

// What mkfs lays out. Zero fields are chosen automatically (docs/format.md).
struct LayoutOptions {
  uint32_t block_size = 4096;
  uint64_t device_bytes = 0;       // required; rounded down to blocks
  uint64_t journal_blocks = 0;     // auto: block_count/16 in [64, 16384]
  uint64_t checkpoint_blocks = 0;  // auto: 1/32 of the device, >= 64 KiB
  uint64_t max_inodes = 0;         // auto: block_count/4 in [64, 1<<24]
  std::array<uint8_t, 16> uuid{};  // all-zero: random
};

// Computes a superblock for a new filesystem. INVALID_ARGUMENT for a bad
// block size or a device too small for the metadata areas plus 16 data
// blocks.
absl::StatusOr<Superblock> MakeLayout(const LayoutOptions& options);

// kSuperblockBytes bytes, crc included.
std::string EncodeSuperblock(const Superblock& sb);

// Parses and checks magic, crc, version, feature bits, block size and that
// the areas fit in block_count. DATA_LOSS for a bad magic or crc,
// FAILED_PRECONDITION for an unknown version or unsupported features,
// INVALID_ARGUMENT for impossible geometry. `read_only` allows unknown
// ro_compat features.
absl::StatusOr<Superblock> DecodeSuperblock(absl::string_view bytes,
                                            bool read_only = false);

// Checks that the device can hold the filesystem: capacity >= bytes() and
// logical block size <= block size. OUT_OF_RANGE / INVALID_ARGUMENT.
absl::Status CheckDeviceFits(const Superblock& sb,
                             const block::DeviceLimits& limits);

// Reads block 0, decodes it and checks the device. Reads only.
absl::StatusOr<Superblock> ReadSuperblock(block::Device& dev,
                                          bool read_only = false);

// Writes the superblock (FUA). Used by mkfs only.
absl::Status WriteSuperblock(block::Device& dev, const Superblock& sb);

}  // namespace fs

#endif  // IOMAPD_FS_SUPERBLOCK_H_
