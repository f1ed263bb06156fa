// Bio validation, OpenDevice, SubmitAndWait and AllocAligned.
#include "block/device.h"

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "block/backing_file.h"
#include "block/sync_device.h"
#include "block/uring_device.h"

namespace block {
namespace {

// Writes `msg` to *why (when wanted) and returns `err`.
int Reject(int err, std::string* why, const std::string& msg) {
  if (why != nullptr) *why = msg;
  return err;
}

bool IsDataOp(BioOp op) { return op == BioOp::kRead || op == BioOp::kWrite; }

bool ChangesData(BioOp op) {
  return op == BioOp::kWrite || op == BioOp::kDiscard ||
         op == BioOp::kWriteZeroes;
}

// Shape rules: lengths, segments, flags.
int CheckShape(const Bio& bio, const DeviceLimits& limits, std::string* why) {
  const char* name = BioOpName(bio.op);
  if (bio.op == BioOp::kFlush) {
    if (bio.len != 0 || !bio.iov.empty())
      return Reject(-EINVAL, why, "flush carries no data");
    return 0;
  }
  if (bio.len == 0)
    return Reject(-EINVAL, why, absl::StrCat(name, ": zero length"));
  if (!IsDataOp(bio.op)) {
    if (!bio.iov.empty())
      return Reject(-EINVAL, why, absl::StrCat(name, " carries no iovecs"));
    return 0;
  }
  if (bio.iov.size() > limits.max_segments)
    return Reject(-EINVAL, why,
                  absl::StrCat(name, ": ", bio.iov.size(), " segments > max ",
                               limits.max_segments));
  uint64_t sum = 0;
  for (const struct iovec& v : bio.iov) sum += v.iov_len;
  if (sum != bio.len)
    return Reject(
        -EINVAL, why,
        absl::StrCat(name, ": len ", bio.len, " != sum of iovecs ", sum));
  if (bio.len > limits.max_io_bytes)
    return Reject(-EINVAL, why,
                  absl::StrCat(name, ": ", bio.len, " bytes > max_io_bytes ",
                               limits.max_io_bytes));
  return 0;
}

int CheckFlags(const Bio& bio, const DeviceLimits& limits, std::string* why) {
  if ((bio.flags & kBioFua) && bio.op != BioOp::kWrite)
    return Reject(-EINVAL, why, "FUA on a bio that is not a write");
  if (!(bio.flags & kBioAtomic)) return 0;
  if (bio.op != BioOp::kWrite)
    return Reject(-EINVAL, why, "ATOMIC on a bio that is not a write");
  const uint64_t len = bio.len;
  if (limits.atomic_write_unit_max == 0)
    return Reject(-EINVAL, why, "ATOMIC write: device has no atomic unit");
  if (len < limits.atomic_write_unit_min ||
      len > limits.atomic_write_unit_max || (len & (len - 1)) != 0 ||
      bio.offset % len != 0 || bio.iov.size() != 1)
    return Reject(
        -EINVAL, why,
        absl::StrCat("ATOMIC write of ", len, " at ", bio.offset,
                     " outside the atomic unit [", limits.atomic_write_unit_min,
                     ", ", limits.atomic_write_unit_max,
                     "] (power of two, naturally aligned, 1 segment)"));
  return 0;
}

int CheckAlignment(const Bio& bio, const DeviceLimits& limits,
                   std::string* why) {
  const uint64_t lbs = limits.logical_block_size;
  const char* name = BioOpName(bio.op);
  if (bio.offset % lbs != 0 || bio.len % lbs != 0)
    return Reject(
        -EINVAL, why,
        absl::StrCat(name, ": offset ", bio.offset, " / len ", bio.len,
                     " not multiples of the logical block size ", lbs));
  if (!limits.direct) return 0;
  for (const struct iovec& v : bio.iov) {
    const uintptr_t base = reinterpret_cast<uintptr_t>(v.iov_base);
    if (base % limits.dma_alignment != 0 || v.iov_len % lbs != 0)
      return Reject(-EINVAL, why,
                    absl::StrCat(name, ": direct I/O iovec (", base, ", ",
                                 v.iov_len, ") needs base aligned to ",
                                 limits.dma_alignment, " and length to ", lbs));
  }
  return 0;
}

int CheckRange(const Bio& bio, const DeviceLimits& limits, std::string* why) {
  if (bio.op == BioOp::kFlush) return 0;
  const uint64_t cap = limits.capacity_bytes;
  if (bio.offset <= cap && bio.len <= cap - bio.offset) return 0;
  const int err = bio.op == BioOp::kRead ? -EIO : -ENOSPC;
  return Reject(err, why,
                absl::StrCat(BioOpName(bio.op), ": range [", bio.offset, ", +",
                             bio.len, ") past capacity ", cap));
}

// The waiter lives on the waiting thread's stack and is destroyed as soon as
// that thread sees `done`, possibly while WakeWaiter is still returning from
// the unlock. std::mutex allows that (nothing is touched after the release);
// base::Mutex::Unlock reads its rank after releasing, so it is not used here.
struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
};

void WakeWaiter(Bio* bio) {
  auto* w = static_cast<Waiter*>(bio->private_data);
  std::lock_guard<std::mutex> lock(w->mu);
  w->done = true;
  w->cv.notify_all();
}

absl::StatusOr<std::unique_ptr<Device>> MakeDevice(BackingFile file,
                                                   const OpenOptions& options) {
  std::string why;
  const bool uring_ok = options.backend != Backend::kSync && UringUsable(&why);
  if (options.backend == Backend::kUring && !uring_ok) {
    file.Close();
    return absl::UnavailableError(
        absl::StrCat(file.path, ": io_uring unavailable: ", why));
  }
  if (uring_ok) {
    UringDevice::Options uo;
    uo.queue_depth = options.queue_depth;
    uo.hipri_poll = options.hipri_poll;
    auto dev = UringDevice::Create(file, uo);
    if (dev.ok()) return std::unique_ptr<Device>(std::move(dev).value());
    if (options.backend == Backend::kUring) {
      file.Close();
      return dev.status();
    }
  }
  SyncDevice::Options so;
  so.threads = options.sync_threads;
  return std::unique_ptr<Device>(SyncDevice::Create(file, so));
}

}  // namespace

const char* BioOpName(BioOp op) {
  switch (op) {
    case BioOp::kRead:
      return "read";
    case BioOp::kWrite:
      return "write";
    case BioOp::kFlush:
      return "flush";
    case BioOp::kDiscard:
      return "discard";
    case BioOp::kWriteZeroes:
      return "write-zeroes";
  }
  return "unknown";
}

int ValidateBio(const Bio& bio, const DeviceLimits& limits, std::string* why) {
  int err = CheckShape(bio, limits, why);
  if (err == 0) err = CheckFlags(bio, limits, why);
  if (err == 0 && limits.read_only && ChangesData(bio.op))
    err = Reject(-EROFS, why,
                 absl::StrCat(BioOpName(bio.op), " on a read-only device"));
  if (err == 0 && bio.op != BioOp::kFlush)
    err = CheckAlignment(bio, limits, why);
  if (err == 0) err = CheckRange(bio, limits, why);
  return err;
}

absl::StatusOr<std::unique_ptr<Device>> OpenDevice(const std::string& path,
                                                   const OpenOptions& options) {
  absl::StatusOr<BackingFile> file = OpenBackingFile(path, options);
  if (!file.ok()) return file.status();
  return MakeDevice(std::move(file).value(), options);
}

int64_t SubmitAndWait(Device& device, Bio* bio) {
  Waiter waiter;
  bio->end_io = WakeWaiter;
  bio->private_data = &waiter;
  device.Submit(bio);
  std::unique_lock<std::mutex> lock(waiter.mu);
  waiter.cv.wait(lock, [&] { return waiter.done; });
  return bio->result;
}

void AlignedFree::operator()(void* p) const { std::free(p); }

AlignedBuffer AllocAligned(size_t bytes, size_t alignment) {
  if (alignment < sizeof(void*)) alignment = sizeof(void*);
  const size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  void* p = nullptr;
  if (posix_memalign(&p, alignment, rounded == 0 ? alignment : rounded) != 0)
    return AlignedBuffer(nullptr);
  return AlignedBuffer(static_cast<uint8_t*>(p));
}

}  // namespace block
