// OpenBackingFile: open a file or block device and probe its limits.
#include "block/backing_file.h"

#include <fcntl.h>
#include <liburing.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

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

// The mapping of a DaxDevice: the image's bytes mapped MAP_SHARED.
class FileDaxMapping : public DaxMapping {
 public:
  FileDaxMapping(uint8_t* base, uint64_t size, bool writable)
      : base_(base), size_(size), writable_(writable) {}
  ~FileDaxMapping() override { munmap(base_, size_); }

  uint8_t* DirectAccess(uint64_t offset, uint64_t len) override {
    if (len == 0 || offset > size_ || len > size_ - offset) return nullptr;
    return base_ + offset;
  }

  int Flush(uint64_t offset, uint64_t len) override {
    if (offset > size_ || len > size_ - offset) return -EINVAL;
    if (len == 0) return 0;
    const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    const uint64_t start = offset - offset % page;
    if (msync(base_ + start, offset + len - start, MS_SYNC) != 0) return -errno;
    return 0;
  }

  uint64_t size() const override { return size_; }
  bool writable() const override { return writable_; }

 private:
  uint8_t* const base_;
  const uint64_t size_;
  const bool writable_;
};

// A device with a DaxMapping: bios go to the wrapped device.
class DaxDevice : public Device {
 public:
  DaxDevice(std::unique_ptr<Device> inner, std::unique_ptr<DaxMapping> map)
      : inner_(std::move(inner)), map_(std::move(map)) {}
  // The bios finish before the mapping goes away.
  ~DaxDevice() override { inner_->Drain(); }

  void Submit(Bio* bio) override { inner_->Submit(bio); }
  void SubmitBatch(absl::Span<Bio* const> bios) override {
    inner_->SubmitBatch(bios);
  }
  const DeviceLimits& limits() const override { return inner_->limits(); }
  std::string name() const override { return "dax+" + inner_->name(); }
  uint64_t inflight() const override { return inner_->inflight(); }
  void Drain() override { inner_->Drain(); }
  DaxMapping* dax() override { return map_.get(); }

 private:
  std::unique_ptr<Device> inner_;
  std::unique_ptr<DaxMapping> map_;
};

// Maps the first `size` bytes of `path` MAP_SHARED.
absl::StatusOr<std::unique_ptr<DaxMapping>> MapFile(const std::string& path,
                                                    uint64_t size,
                                                    bool read_only) {
  if (size == 0)
    return base::ErrnoStatus(-EINVAL,
                             absl::StrCat(path, ": no capacity to map"));
  int fd = open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) return OpenError(errno, path, "open for mmap");
  const int prot = read_only ? PROT_READ : PROT_READ | PROT_WRITE;
  void* p = mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
  const int err = errno;
  close(fd);
  if (p == MAP_FAILED) return OpenError(err, path, "mmap MAP_SHARED");
  return std::unique_ptr<DaxMapping>(
      new FileDaxMapping(static_cast<uint8_t*>(p), size, !read_only));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Device>> OpenDaxDevice(
    const std::string& path, const OpenOptions& options) {
  OpenOptions buffered = options;
  buffered.direct = false;
  absl::StatusOr<std::unique_ptr<Device>> dev = OpenDevice(path, buffered);
  if (!dev.ok()) return dev.status();
  absl::StatusOr<std::unique_ptr<DaxMapping>> map =
      MapFile(path, (*dev)->limits().capacity_bytes, options.read_only);
  if (!map.ok()) return map.status();
  return std::unique_ptr<Device>(
      new DaxDevice(std::move(dev).value(), std::move(map).value()));
}

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
