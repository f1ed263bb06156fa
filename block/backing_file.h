// Opening the file behind a device: the part of OpenDevice() shared by
// UringDevice and SyncDevice (internal to block/, public only for tests).
//
// OpenBackingFile opens a regular file or a block device, with O_DIRECT when
// asked and allowed, and probes its limits (logical block size, DMA alignment,
// capacity, read-only). Thread-safe (no shared state).
#ifndef IOMAPD_BLOCK_BACKING_FILE_H_
#define IOMAPD_BLOCK_BACKING_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "block/device.h"

namespace block {

// An open descriptor and what the device can do. Owns fd: Close() it, or hand
// it to a device that takes ownership.
struct BackingFile {
  int fd = -1;
  std::string path;
  bool is_block_device = false;
  DeviceLimits limits;

  void Close();
};

// Errors as OpenDevice documents them.
absl::StatusOr<BackingFile> OpenBackingFile(const std::string& path,
                                            const OpenOptions& options);

// True when io_uring works here and offers every opcode UringDevice uses
// (read, write, readv, writev, fsync, fallocate, nop); otherwise false with the
// reason in *why.
bool UringUsable(std::string* why);

}  // namespace block

#endif  // IOMAPD_BLOCK_BACKING_FILE_H_
