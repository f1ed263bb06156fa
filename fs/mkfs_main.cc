// iomapd-mkfs: writes a new iomapd filesystem on an image file or a block
// device.
//
//   iomapd-mkfs [--block_size=4096] [--size=BYTES] [--journal_blocks=N]
//               [--max_inodes=N] PATH
//
// With --size, a regular file at PATH is created or resized to that many
// bytes first (sparse). Exits 0 on success, 1 with a message otherwise.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "block/device.h"
#include "fs/volume.h"

ABSL_FLAG(uint32_t, block_size, 4096,
          "filesystem block size: 512..65536, a power of two");
ABSL_FLAG(uint64_t, size, 0,
          "create or resize PATH (a regular file) to this many bytes");
ABSL_FLAG(uint64_t, journal_blocks, 0, "journal size in blocks (0: automatic)");
ABSL_FLAG(uint64_t, max_inodes, 0, "inode limit (0: automatic)");

namespace {

int Fail(const std::string& msg) {
  std::fprintf(stderr, "iomapd-mkfs: %s\n", msg.c_str());
  return 1;
}

// Creates or resizes a regular file to `bytes`. "" or an error message.
std::string SizeImage(const std::string& path, uint64_t bytes) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    return path + ": --size applies to regular files only";
  int fd = open(path.c_str(), O_RDWR | O_CREAT, 0644);
  if (fd < 0) return path + ": " + std::strerror(errno);
  int r = ftruncate(fd, static_cast<off_t>(bytes));
  int err = errno;
  close(fd);
  return r == 0 ? "" : path + ": " + std::strerror(err);
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("iomapd-mkfs [flags] PATH");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) return Fail("usage: iomapd-mkfs [flags] PATH");
  const std::string path = args[1];
  if (uint64_t size = absl::GetFlag(FLAGS_size); size != 0) {
    if (std::string err = SizeImage(path, size); !err.empty()) return Fail(err);
  }
  block::OpenOptions open_options;
  auto dev = block::OpenDevice(path, open_options);
  if (!dev.ok()) return Fail(dev.status().ToString());
  fs::LayoutOptions layout;
  layout.block_size = absl::GetFlag(FLAGS_block_size);
  layout.device_bytes = (*dev)->limits().capacity_bytes;
  layout.journal_blocks = absl::GetFlag(FLAGS_journal_blocks);
  layout.max_inodes = absl::GetFlag(FLAGS_max_inodes);
  absl::StatusOr<fs::Superblock> sb = fs::Volume::Format(**dev, layout);
  if (!sb.ok()) return Fail(sb.status().ToString());
  std::printf(
      "%s: %llu blocks of %u bytes; checkpoint slots 2 x %llu blocks at %llu; "
      "journal %llu blocks at %llu; data from block %llu; %llu inodes max\n",
      path.c_str(), (unsigned long long)sb->block_count, sb->block_size,
      (unsigned long long)sb->checkpoint_blocks,
      (unsigned long long)sb->checkpoint_start,
      (unsigned long long)sb->journal_blocks,
      (unsigned long long)sb->journal_start, (unsigned long long)sb->data_start,
      (unsigned long long)sb->max_inodes);
  return 0;
}
