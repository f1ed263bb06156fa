// fsdax (fs/dax.c): file I/O by loads and stores straight into a device that
// can be addressed as memory (block::DaxMapping), with no pagecache.
//
//   iomap::DaxRequest req;             // write 4 KiB at 8192
//   req.write = true; req.pos = 8192; req.len = 4096; req.buf = data;
//   int64_t n = iomap::DaxRw(inode, req, ops, &dirty);
//   ...
//   iomap::DaxWriteback(&dirty);       // fsync: make the stores durable
//
// The filesystem's IomapOps see kDax [| kWrite | kNowait] for read/write,
// kDax | kZero for zeroing and kDax | kFault | kWrite for stores through a
// shared mapping. Write mappings must be MAPPED (the filesystem allocates
// written, zeroed blocks: XFS_BMAPI_ZERO) or carry kShared (copy-on-write:
// the destination as iomap, the old data as srcmap).
//
// Durability: every store is recorded in a DaxDirty (the kernel's dirty DAX
// entries of i_pages); DaxWriteback flushes the recorded device ranges
// (dax_writeback_mapping_range + dax_flush). The engine never changes
// i_size: the filesystem raises it after a write (xfs_file_dax_write).
//
// Thread-safety: DaxDirty is thread-safe; the operations are thread-safe
// given the caller's locks (named on each).
#ifndef IOMAPD_IOMAP_DAX_H_
#define IOMAPD_IOMAP_DAX_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "block/device.h"
#include "iomap/iomap.h"

namespace iomap {

// Device byte ranges stored to through DAX and not yet flushed, per inode.
// Ranges are kept per DaxMapping and merged when they touch. Thread-safe.
class DaxDirty {
 public:
  struct Range {
    block::DaxMapping* dax;
    uint64_t offset;
    uint64_t len;
  };

  void Add(block::DaxMapping* dax, uint64_t offset, uint64_t len);
  // Removes and returns every range (ordered by mapping, then offset).
  std::vector<Range> Take();
  // Bytes recorded (for tests and statistics).
  uint64_t bytes() const;
  bool empty() const;

 private:
  mutable base::Mutex mu_{base::LockRank::kLeaf};
  // (mapping, start) -> end.
  std::map<std::pair<block::DaxMapping*, uint64_t>, uint64_t> ranges_
      ABSL_GUARDED_BY(mu_);
};

// One DAX read or write (the kiocb and its iov_iter).
struct DaxRequest {
  bool write = false;
  int64_t pos = 0;
  size_t len = 0;
  // The destination of a read, the source of a write. Any alignment.
  uint8_t* buf = nullptr;
  // kNowait (IOCB_NOWAIT) is passed to IomapBegin; other bits are ignored.
  unsigned flags = 0;
};

// dax_iomap_rw(). Reads are clamped at i_size (0 at or past it) and zero-fill
// HOLE, UNWRITTEN and DELALLOC mappings; MAPPED data is copied out of the
// device mapping. Writes need MAPPED mappings or kShared ones (-EIO for
// anything else); for kShared, the partial blocks at the edges of the
// written range are first filled from srcmap (zeroes when srcmap is a hole
// or unwritten: dax_iomap_copy_around). Every stored range is added to
// `dirty`. Errors: pos < 0 -> -EINVAL; a device without a DaxMapping (or a
// read-only one for writes) -> -EOPNOTSUPP; an address outside it -> -EIO;
// IomapBegin's error (after progress: the bytes done). Returns the bytes
// transferred or -errno. REQUIRES: the inode's rwsem, shared for reads,
// exclusive for writes (xfs_file_dax_read/_write).
int64_t DaxRw(Inode* inode, const DaxRequest& req, IomapOps& ops,
              DaxDirty* dirty);

// dax_zero_range(): zeroes [pos, pos + len) where it holds data, with
// flags kDax | kZero; HOLE, UNWRITTEN and DELALLOC ranges (judged by the
// srcmap when there is one) are skipped; kShared mappings are COWed as
// writes are. *did_zero (may be null) is set when something was zeroed.
// 0 or -errno. REQUIRES: rwsem and invalidate lock held exclusive.
int DaxZeroRange(Inode* inode, int64_t pos, int64_t len, bool* did_zero,
                 IomapOps& ops, DaxDirty* dirty);

// dax_truncate_page(): zeroes from pos to the end of its block; nothing
// when pos is block-aligned. REQUIRES: as DaxZeroRange.
int DaxTruncatePage(Inode* inode, int64_t pos, bool* did_zero, IomapOps& ops,
                    DaxDirty* dirty);

// dax_iomap_fault() for write faults, at PTE size, done as the store the
// faulting instruction makes: stores `len` bytes of `data` at `pos` through
// the mapping with flags kDax | kFault | kWrite. A fault at or past i_size
// rounded up to the page is -EFAULT (SIGBUS); bytes past i_size in the EOF
// page are stored but never read back (reads clamp at i_size). Mappings as
// for writes; for kShared the whole of each touched page is first copied
// from srcmap (COW of the page). Returns the bytes stored or -errno.
// REQUIRES: the invalidate lock held shared (XFS MMAPLOCK_SHARED).
int64_t DaxMapStore(Inode* inode, int64_t pos, const void* data, size_t len,
                    IomapOps& ops, DaxDirty* dirty);

// The page size of DAX faults (PTE faults only).
inline constexpr int64_t kDaxPageSize = 4096;

// dax_writeback_mapping_range() for WB_SYNC_ALL: flushes every range in
// `dirty` and clears it. On a flush error the remaining ranges stay
// recorded and the errno is returned; else 0. Takes no inode lock.
int DaxWriteback(DaxDirty* dirty);

}  // namespace iomap

#endif  // IOMAPD_IOMAP_DAX_H_
