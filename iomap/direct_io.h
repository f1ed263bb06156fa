// Direct I/O (fs/iomap/direct-io.c): reads and writes that move data between
// the caller's buffer and the device with bios, bypassing the pagecache.
//
//   iomap::DioRequest req;
//   req.write = true; req.pos = pos; req.len = len; req.buf = buf;
//   int64_t r = iomap::DioRw(inode, req, ops, &dio_ops);
//
// The engine flushes (and, for writes, invalidates) the pagecache over the
// range, walks the filesystem's mappings with IomapOps (flags kDirect
// [| kWrite | kNowait | kOverwriteOnly | kAtomic]), builds bios straight from
// or into the caller's buffer, keeps them in flight together, waits for all
// of them, then calls IomapDioOps::EndIo once with the total. Completion is
// always synchronous (the kernel's IOMAP_DIO_FORCE_WAIT behaviour): DioRw
// returns after every bio has ended and EndIo has run.
//
// Thread-safety: thread-safe given the caller's locks (see DioRw).
#ifndef IOMAPD_IOMAP_DIRECT_IO_H_
#define IOMAPD_IOMAP_DIRECT_IO_H_

#include <cstddef>
#include <cstdint>

#include "iomap/iomap.h"

namespace iomap {

// IOMAP_DIO_* flags of a request (DioRequest::dio_flags).
// Wait for completion: accepted for parity; every request waits.
inline constexpr unsigned kDioForceWait = 1u << 0;
// A pure overwrite or -EAGAIN: a write at or past i_size, or ending past it,
// fails at once; IomapBegin sees kOverwriteOnly and refuses allocation and
// sub-block zeroing with -EAGAIN.
inline constexpr unsigned kDioOverwriteOnly = 1u << 1;
// A fault in the caller's buffer after progress returns the bytes done
// instead of -EFAULT; the caller retries with done_before = the bytes so far.
inline constexpr unsigned kDioPartial = 1u << 2;
// Alignment is checked against the filesystem block size instead of the
// device's logical block size.
inline constexpr unsigned kDioFsblockAligned = 1u << 3;

// One direct I/O request (the kiocb and its iov_iter).
struct DioRequest {
  bool write = false;
  int64_t pos = 0;
  size_t len = 0;
  // The caller's buffer: the source of a write, the destination of a read.
  // Must stay valid until DioRw returns. REQUIRES: aligned to the device's
  // dma_alignment (else -EINVAL).
  uint8_t* buf = nullptr;
  // IOCB flags as operation flags: kNowait (IOCB_NOWAIT) and, for writes,
  // kAtomic (IOCB_ATOMIC). Other bits are ignored.
  unsigned flags = 0;
  unsigned dio_flags = 0;  // kDio*
  // Bytes of the same request already transferred by earlier calls (after a
  // kDioPartial short return); added to a positive result.
  size_t done_before = 0;
  // Simulates a user buffer whose pages from this byte offset on are not
  // mapped: the engine transfers nothing at or past it (as
  // bio_iov_iter_get_pages faulting). SIZE_MAX: no fault.
  size_t fault_at = static_cast<size_t>(-1);
};

// Process-wide counters of the direct I/O engine, for tests and benchmarks.
struct DioStats {
  uint64_t bios = 0;          // data bios submitted
  uint64_t bio_bytes = 0;     // bytes they moved
  uint64_t zero_bios = 0;     // sub-block zeroing bios (iomap_dio_zero)
  uint64_t zeroed_bytes = 0;  // bytes of holes/unwritten zero-filled on read
  uint64_t max_inflight = 0;  // the most bios one request had in flight
};
DioStats GetDioStats();
void ResetDioStats();

// At most this many bios of one request are in flight at once.
inline constexpr int kDioMaxInflight = 64;

// __iomap_dio_rw + iomap_dio_complete, synchronously.
//
// Checks, in order: len 0 -> 0; pos < 0 -> -EINVAL; pos and len not
// multiples of the device's logical block size (the fs block size with
// kDioFsblockAligned), or buf not aligned to its dma_alignment -> -EINVAL.
// Reads at or past i_size -> 0. Reads flush dirty pagecache over the range
// first (kNowait: -EAGAIN when some is dirty or under writeback). Writes
// with kDioOverwriteOnly: -EAGAIN unless [pos, pos + len) lies within
// i_size. Writes flush and invalidate the cached folios of the range
// (kNowait: -EAGAIN when any is cached); when that fails -ENOTBLK (-EAGAIN
// for kAtomic): the filesystem falls back to buffered I/O.
//
// Per mapping: reads of HOLE and UNWRITTEN zero-fill the buffer; MAPPED is
// read with bios; writes to MAPPED and UNWRITTEN go out as bios; a HOLE or
// DELALLOC write, or a DELALLOC read, is -EIO; INLINE is copied. Writes to
// UNWRITTEN or kNew mappings zero the sub-block head and tail of the block
// around the data with separate bios, and so does a write whose end is at or
// past i_size for its tail. kShared mappings mark the request
// IomapDioOps::kDioCow, UNWRITTEN ones kDioUnwritten. kAtomic writes must be
// one mapping and one bio covering the whole request (-EINVAL otherwise);
// a mapping with kAtomicBio is submitted with kBioAtomic. Bios are at most
// the device's max_io_bytes, up to kDioMaxInflight in flight.
//
// Errors: a failed bio fails the request with its errno; an IomapBegin
// error after progress ends the walk (-ENOTBLK becomes the bytes done); a
// buffer fault is -EFAULT, or the bytes done with kDioPartial. Completion:
// EndIo(inode, pos, bytes submitted, error, kDio* flags) once; its return
// replaces the error. A successful write ending past i_size raises i_size
// (if EndIo did not) and the range's cached folios are invalidated again
// (failures ignored). Reads are clamped at the i_size sampled at the start.
//
// Returns bytes transferred + done_before, or -errno. `dops` may be null.
// REQUIRES: the inode's rwsem held (shared, or exclusive for writes that
// extend i_size or need sub-block zeroing); the invalidate lock and folio
// locks not held. Holding the rwsem for the whole I/O makes inode_dio_wait
// implicit: an exclusive holder has no direct I/O in flight.
int64_t DioRw(Inode* inode, const DioRequest& req, IomapOps& ops,
              IomapDioOps* dops);

// invalidate_inode_pages2_range(): removes the cached folios intersecting
// bytes [start, end] (inclusive) after releasing their block state. Returns
// 0, or -EBUSY when some folio is dirty or under writeback (it stays).
// REQUIRES: no folio lock held.
int InvalidateInodePages2(Inode* inode, int64_t start, int64_t end);

}  // namespace iomap

#endif  // IOMAPD_IOMAP_DIRECT_IO_H_
