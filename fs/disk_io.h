// Synchronous metadata I/O helpers over block::Device, for mount, mkfs,
// fsck, checkpoints and the journal's committer.
//
// Each call allocates an aligned bounce buffer sized to the request, submits
// one bio and waits. Returns 0 or a negative errno (bio results).
// REQUIRES: offset and length are multiples of the device's logical block
// size. Blocking: never call from a completion callback.
// Thread-safety: thread-safe (the device is).
#ifndef IOMAPD_FS_DISK_IO_H_
#define IOMAPD_FS_DISK_IO_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "block/device.h"

namespace fs {

// Reads `len` bytes at `offset` into *out (resized).
int ReadDisk(block::Device& dev, uint64_t offset, uint64_t len,
             std::string* out);

// Writes `bytes` at `offset`; `bio_flags` are block::BioFlag bits (kBioFua).
// Splits requests larger than the device's max_io_bytes.
int WriteDisk(block::Device& dev, uint64_t offset, absl::string_view bytes,
              uint32_t bio_flags = 0);

// A cache flush: every completed write is durable on return.
int FlushDisk(block::Device& dev);

}  // namespace fs

#endif  // IOMAPD_FS_DISK_IO_H_
