// block::Device: the one interface between iomapd and storage.
//
// A Device moves bytes between memory and a device (an image file, a block
// device, or memory in tests) in units of bios, asynchronously. The kernel's
// nouns are kept: a Bio is submitted with Device::Submit (submit_bio) and its
// completion callback `end_io` (bi_end_io) runs exactly once with the result.
//
// Implementations: UringDevice (io_uring, the default), SyncDevice (pread/
// pwrite on a small thread pool, used when io_uring is unavailable) and
// SimDevice (in memory, deterministic, with faults and crashes; tests only).
// OpenDevice() picks between the first two.
//
// Thread-safety: every method is thread-safe. Submit() never waits for I/O:
// it validates, queues and returns (it may take a short internal lock). The
// completion callback runs in the device's completion context ("interrupt
// context"): it must not block, must not wait for other I/O, and must not take
// a lock that a submitter may hold while waiting for I/O. Work that needs to
// block is handed to a workqueue by the callback.
#ifndef IOMAPD_BLOCK_DEVICE_H_
#define IOMAPD_BLOCK_DEVICE_H_

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace block {

enum class BioOp : uint8_t {
  kRead,
  kWrite,
  kFlush,        // make every completed write durable (a cache flush)
  kDiscard,      // the range may read back as anything afterwards
  kWriteZeroes,  // the range reads back as zeroes afterwards
};

const char* BioOpName(BioOp op);

// Bio flags (REQ_*).
enum BioFlag : uint32_t {
  kBioFua = 1u << 0,     // write: durable when it completes (REQ_FUA)
  kBioHipri = 1u << 1,   // poll for completion when the device can (REQ_HIPRI)
  kBioRahead = 1u << 2,  // readahead: may be failed cheaply (REQ_RAHEAD)
  kBioAtomic = 1u << 3,  // write: untorn, within the atomic unit (REQ_ATOMIC)
  kBioSync = 1u << 4,    // someone waits for this bio (REQ_SYNC)
};

struct Bio;
using BioEndIo = void (*)(Bio* bio);

// One I/O request. The submitter owns the Bio and the memory its iovecs point
// to until end_io has been called; end_io commonly frees both.
struct Bio {
  BioOp op = BioOp::kRead;
  uint32_t flags = 0;   // BioFlag bits
  uint64_t offset = 0;  // device byte offset
  // Data for kRead/kWrite (vectored). For kDiscard and kWriteZeroes `len`
  // gives the length and iov stays empty; kFlush has neither.
  absl::InlinedVector<struct iovec, 4> iov;
  uint64_t len = 0;  // bytes: sum of iov for reads/writes (see Length)
  BioEndIo end_io = nullptr;
  void* private_data = nullptr;  // bi_private: for end_io's use
  // Set before end_io runs: bytes transferred (the whole length; short
  // transfers are finished by the device) or a negative errno. kFlush gives
  // 0, kDiscard/kWriteZeroes give len. A device that ends before the range
  // does (a read or write making no progress) gives -EIO.
  int64_t result = 0;

  // Adds a segment; keeps `len` in step.
  void AddSegment(void* base, size_t bytes) {
    iov.push_back({base, bytes});
    len += bytes;
  }
  uint64_t Length() const { return len; }
};

// What a device can do. Every value is a query, never a guess left to callers.
struct DeviceLimits {
  uint64_t capacity_bytes = 0;
  uint32_t logical_block_size = 512;  // smallest addressable unit
  uint32_t physical_block_size = 4096;
  uint32_t dma_alignment = 512;        // memory alignment of each iovec base
  uint64_t max_io_bytes = 1u << 20;    // largest single bio; larger -> -EINVAL
  uint32_t max_segments = 256;         // iovecs per bio
  uint32_t atomic_write_unit_min = 0;  // 0: no untorn writes
  uint32_t atomic_write_unit_max = 0;
  bool direct = false;  // bypasses the host page cache
  bool read_only = false;
  bool volatile_cache = true;  // a flush is needed for durability
};

// Direct access to a device's bytes through memory: the kernel's dax_device
// (dax_direct_access, dax_flush) for "persistent memory". Here the medium is
// an image file mapped MAP_SHARED: loads and stores through the pointer are
// the device's contents, coherent with bios of the same device (both go
// through the host page cache), and Flush makes stores durable (msync).
//
// Thread-safety: thread-safe; the mapping lives as long as its device.
// Concurrent stores to the same bytes race as they would on real memory.
class DaxMapping {
 public:
  virtual ~DaxMapping() = default;

  // A pointer to device bytes [offset, offset + len), or nullptr when the
  // range is empty or leaves the device. Valid until the device is destroyed.
  virtual uint8_t* DirectAccess(uint64_t offset, uint64_t len) = 0;
  // Makes the stores to [offset, offset + len) durable (dax_flush plus the
  // write barrier: msync(MS_SYNC) of the pages holding them). 0, -EINVAL
  // for a range leaving the device, or the msync errno.
  virtual int Flush(uint64_t offset, uint64_t len) = 0;
  // Bytes mapped (the device's capacity).
  virtual uint64_t size() const = 0;
  // Whether stores are allowed (false on a read-only device).
  virtual bool writable() const = 0;
};

class Device {
 public:
  virtual ~Device() = default;

  // The device's direct-access mapping, or nullptr when it has none (every
  // device except those opened with OpenDaxDevice).
  virtual DaxMapping* dax() { return nullptr; }

  // Queues `bio`. Its end_io runs exactly once, possibly before Submit returns
  // (e.g. a bio rejected as invalid completes at once with -EINVAL).
  // Invalid bios (see ValidateBio) are completed with the errno and never
  // reach the device: nothing is written; the reason is printed on stderr.
  // May be called from an end_io callback (bios chained from a completion
  // are batched into one submission where the device can).
  virtual void Submit(Bio* bio) = 0;

  // Queues several bios with one submission (a plug). Same contract as Submit
  // for each.
  virtual void SubmitBatch(absl::Span<Bio* const> bios) {
    for (Bio* bio : bios) Submit(bio);
  }

  virtual const DeviceLimits& limits() const = 0;

  // A short human name ("uring:/var/default.img").
  virtual std::string name() const = 0;

  // Bios submitted whose end_io has not yet run.
  virtual uint64_t inflight() const = 0;

  // Waits until every submitted bio has completed. Blocks; never call it from
  // a completion callback.
  virtual void Drain() = 0;
};

// Checks a bio against the limits. Returns 0 or a negative errno, and writes
// a reason to *why when it is not null. Rules, checked in this order:
//   -EINVAL   shape: zero length (except kFlush, which must carry no length
//             and no iovecs), iovecs on kDiscard/kWriteZeroes, len !=
//             sum(iov), more than max_segments, over max_io_bytes (reads and
//             writes only: discard and write-zeroes may be any length)
//   -EINVAL   flags: FUA on anything but a write; ATOMIC on anything but a
//             write, or outside the atomic unit (len a power of two within
//             [atomic_write_unit_min, max], offset a multiple of len, one
//             segment), or on a device without one
//   -EROFS    a write, discard or write-zeroes on a read-only device
//   -EINVAL   alignment: offset and len must be multiples of
//             logical_block_size on every device; with limits.direct each
//             iovec base must be a multiple of dma_alignment and each iovec
//             length a multiple of logical_block_size
//   -ENOSPC   range past capacity for writes, discards and write-zeroes,
//   -EIO      and for reads (the kernel's bio_check_eod says -EIO for both)
int ValidateBio(const Bio& bio, const DeviceLimits& limits,
                std::string* why = nullptr);

// Which backends OpenDevice may choose.
enum class Backend {
  kAuto,   // io_uring if the kernel offers it, else the sync fallback
  kUring,  // io_uring or fail
  kSync,   // pread/pwrite thread pool
};

struct OpenOptions {
  Backend backend = Backend::kAuto;
  bool read_only = false;
  // O_DIRECT where the file system or block device allows it; when it does
  // not (tmpfs), the device is opened buffered and limits().direct is false.
  bool direct = true;
  // Create a regular file of create_size bytes (sparse) if `path` is missing.
  bool create = false;
  uint64_t create_size = 0;
  uint32_t queue_depth = 128;  // io_uring SQ entries
  uint32_t sync_threads = 4;   // SyncDevice worker threads
  bool hipri_poll = true;      // IOPOLL ring for kBioHipri when available
};

// Opens a regular file or a block device. Errors: NOT_FOUND for a missing path
// (unless create), PERMISSION_DENIED when the path cannot be opened as asked
// (EACCES, EPERM, or EROFS: a read-only file system or block device opened
// read-write), INVALID_ARGUMENT for something that is neither a file nor a
// block device, UNAVAILABLE for Backend::kUring when io_uring is unusable,
// each with the path in the message. Limits: logical block size from
// BLKSSZGET or statx(STATX_DIOALIGN) (512 when neither says), capacity from
// BLKGETSIZE64 or st_size rounded down to the logical block size; the
// capacity of a regular file is fixed at open.
absl::StatusOr<std::unique_ptr<Device>> OpenDevice(const std::string& path,
                                                   const OpenOptions& options);

// Opens `path` as OpenDevice does, but buffered (options.direct is ignored:
// O_DIRECT bios would not be coherent with the mapping), and maps its whole
// capacity MAP_SHARED so that dax() is non-null. Bios go to the device
// OpenDevice chose; DAX loads and stores go to the mapping. Errors as
// OpenDevice, plus INVALID_ARGUMENT for a zero capacity and the mmap errno
// (e.g. ENODEV where the file cannot be mapped), with the path.
absl::StatusOr<std::unique_ptr<Device>> OpenDaxDevice(
    const std::string& path, const OpenOptions& options);

// Submits `bio` and waits for it; returns bio->result. Blocks: never call it
// from a completion callback. Overwrites bio->end_io and private_data.
int64_t SubmitAndWait(Device& device, Bio* bio);

// Memory suitably aligned for direct I/O on any device (4 KiB).
struct AlignedFree {
  void operator()(void* p) const;
};
using AlignedBuffer = std::unique_ptr<uint8_t[], AlignedFree>;
AlignedBuffer AllocAligned(size_t bytes, size_t alignment = 4096);

}  // namespace block

#endif  // IOMAPD_BLOCK_DEVICE_H_
