// OpenBackingFile: open a file or block device and probe its limits.
#include "block/backing_file.h"

#include <fcntl.h>
#include <liburing.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/errno.h"

namespace block {
namespace {

absl::Status OpenError(int err, const std::string& path, const char* what) {
  std::string msg = absl::StrCat(path, ": ", what, ": ", strerror(err));
  if (err == EACCES || err == EPERM || err == EROFS)
    return absl::PermissionDeniedError(msg);
  return base::ErrnoStatus(-err, msg);
}

// open() with O_DIRECT when wanted; retries buffered when the file system
// refuses O_DIRECT (EINVAL, e.g. tmpfs). Sets *direct to what was used.
int OpenFd(const std::string& path, int flags, bool* direct) {
  if (*direct) {
    int fd = open(path.c_str(), flags | O_DIRECT);
    if (fd >= 0 || errno != EINVAL) return fd;
    *direct = false;
  }
  return open(path.c_str(), flags);
}

absl::Status CreateFile(const std::string& path, uint64_t size) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return absl::OkStatus();
    return OpenError(errno, path, "create");
  }
  int rc = ftruncate(fd, static_cast<off_t>(size));
  int err = errno;
  close(fd);
  if (rc != 0) return OpenError(err, path, "ftruncate");
  return absl::OkStatus();
}

void ProbeBlockDevice(int fd, DeviceLimits* l) {
  int lbs = 0, ro = 0;
  unsigned int pbs = 0;
  uint64_t bytes = 0;
  if (ioctl(fd, BLKSSZGET, &lbs) == 0 && lbs > 0) l->logical_block_size = lbs;
  if (ioctl(fd, BLKPBSZGET, &pbs) == 0 && pbs > 0) l->physical_block_size = pbs;
  if (ioctl(fd, BLKGETSIZE64, &bytes) == 0) l->capacity_bytes = bytes;
  if (ioctl(fd, BLKROGET, &ro) == 0 && ro) l->read_only = true;
  l->dma_alignment = l->logical_block_size;
}

// Direct I/O alignment from statx (Linux 6.1+); 0 when not reported.
void ProbeDioAlign(int fd, DeviceLimits* l) {
  struct statx stx;
  memset(&stx, 0, sizeof(stx));
  if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) != 0) return;
  if (!(stx.stx_mask & STATX_DIOALIGN) || stx.stx_dio_offset_align == 0) return;
  l->logical_block_size = stx.stx_dio_offset_align;
  // Memory alignment below 512 is allowed by the kernel; we still ask for at
  // least 512 so buffers stay valid on any device.
  l->dma_alignment = stx.stx_dio_mem_align < 512 ? 512 : stx.stx_dio_mem_align;
}

void ProbeLimits(int fd, const struct stat& st, BackingFile* f) {
  DeviceLimits* l = &f->limits;
  if (f->is_block_device) {
    ProbeBlockDevice(fd, l);
  } else {
    l->capacity_bytes = static_cast<uint64_t>(st.st_size);
    l->physical_block_size = st.st_blksize > 0 ? st.st_blksize : 4096;
  }
  if (l->direct) ProbeDioAlign(fd, l);
  if (l->physical_block_size < l->logical_block_size)
    l->physical_block_size = l->logical_block_size;
  l->capacity_bytes -= l->capacity_bytes % l->logical_block_size;
}

}  // namespace

void BackingFile::Close() {
  if (fd >= 0) close(fd);
  fd = -1;
}

absl::StatusOr<BackingFile> OpenBackingFile(const std::string& path,
                                            const OpenOptions& options) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT || !options.create)
      return OpenError(errno, path, "stat");
    absl::Status s = CreateFile(path, options.create_size);
    if (!s.ok()) return s;
    if (stat(path.c_str(), &st) != 0) return OpenError(errno, path, "stat");
  }
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
    return base::ErrnoStatus(
        -EINVAL,
        absl::StrCat(path, ": neither a regular file nor a block device"));
  BackingFile f;
  f.path = path;
  f.is_block_device = S_ISBLK(st.st_mode);
  f.limits.direct = options.direct;
  const int flags = (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  f.fd = OpenFd(path, flags, &f.limits.direct);
  if (f.fd < 0)
    return OpenError(errno, path,
                     options.read_only ? "open read-only" : "open read-write");
  f.limits.read_only = options.read_only;
  ProbeLimits(f.fd, st, &f);
  return f;
}

bool UringUsable(std::string* why) {
  struct io_uring_probe* probe = io_uring_get_probe();
  if (probe == nullptr) {
    *why = "io_uring_setup failed (kernel without io_uring, or disabled)";
    return false;
  }
  const int ops[] = {IORING_OP_NOP,      IORING_OP_READV, IORING_OP_WRITEV,
                     IORING_OP_READ,     IORING_OP_WRITE, IORING_OP_FSYNC,
                     IORING_OP_FALLOCATE};
  bool ok = true;
  for (int op : ops) {
    if (!io_uring_opcode_supported(probe, op)) {
      *why = absl::StrCat("io_uring lacks opcode ", op);
      ok = false;
      break;
    }
  }
  io_uring_free_probe(probe);
  return ok;
}

}  // namespace block
