// Helpers shared by the fs::Volume tests (volume_test, reflink_test,
// mapwrite_test): format and mount a MemDevice, create and open files,
// patterned data, and the live invariant check. Failures are gtest
// expectations at the caller's test.
#ifndef IOMAPD_FS_TESTING_VOLUME_HELPERS_H_
#define IOMAPD_FS_TESTING_VOLUME_HELPERS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "fs/file.h"
#include "fs/testing/mem_device.h"
#include "fs/volume.h"

namespace fs {
namespace testing {

// Formats `dev` with block size `bs` and mounts it (null on failure).
std::unique_ptr<Volume> FormatAndMount(MemDevice* dev, uint32_t bs = 4096);
// Mounts `dev` again (null on failure).
std::unique_ptr<Volume> Remount(MemDevice* dev);
// An exclusive create of `name` in the root, mode 0644.
FileHandle CreateFile(Volume* vol, const std::string& name);
std::unique_ptr<OpenFile> OpenOrDie(Volume* vol, FileHandle h);
// `n` seeded bytes, none zero.
std::string Pattern(size_t n, uint32_t seed);
// Up to `len` bytes at `pos` (short at EOF).
std::string ReadAll(OpenFile* f, int64_t pos, size_t len);
// Volume::CheckLive finds nothing.
void ExpectClean(Volume* vol);

}  // namespace testing
}  // namespace fs

#endif  // IOMAPD_FS_TESTING_VOLUME_HELPERS_H_
