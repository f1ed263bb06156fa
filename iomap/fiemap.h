// FS_IOC_FIEMAP and FIBMAP (the kernel's iomap_fiemap / iomap_bmap,
// fs/iomap/fiemap.c, with fiemap_prep / fiemap_fill_next_extent /
// ioctl_fiemap from fs/ioctl.c). See docs/reporting.md for every rule and
// the test that checks it.
//
// Fiemap answers a struct fiemap request: one extent per kReport mapping
// (holes skipped, nothing merged), each emitted when the next non-hole
// mapping is seen, the last one with kFiemapExtentLast; a full extent array
// stops the walk; fm_extent_count == 0 only counts.
//
// Thread-safety: thread-safe for different inodes; the caller holds the
// inode's rwsem shared (asserted).
#ifndef IOMAPD_IOMAP_FIEMAP_H_
#define IOMAPD_IOMAP_FIEMAP_H_

#include <climits>
#include <cstdint>
#include <functional>
#include <vector>

#include "iomap/iomap.h"

namespace iomap {

// Request flags (fm_flags), Linux's FIEMAP_FLAG_* values.
inline constexpr uint32_t kFiemapFlagSync = 0x0001;   // write back first
inline constexpr uint32_t kFiemapFlagXattr = 0x0002;  // map the xattr fork
inline constexpr uint32_t kFiemapFlagCache = 0x0004;  // ext4 only
inline constexpr uint32_t kFiemapFlagsCompat =
    kFiemapFlagSync | kFiemapFlagXattr;

// Extent flags (fe_flags), Linux's FIEMAP_EXTENT_* values.
inline constexpr uint32_t kFiemapExtentLast = 0x0001;
inline constexpr uint32_t kFiemapExtentUnknown = 0x0002;
inline constexpr uint32_t kFiemapExtentDelalloc = 0x0004;
inline constexpr uint32_t kFiemapExtentEncoded = 0x0008;
inline constexpr uint32_t kFiemapExtentDataEncrypted = 0x0080;
inline constexpr uint32_t kFiemapExtentNotAligned = 0x0100;
inline constexpr uint32_t kFiemapExtentDataInline = 0x0200;
inline constexpr uint32_t kFiemapExtentDataTail = 0x0400;
inline constexpr uint32_t kFiemapExtentUnwritten = 0x0800;
inline constexpr uint32_t kFiemapExtentMerged = 0x1000;
inline constexpr uint32_t kFiemapExtentShared = 0x2000;

inline constexpr uint64_t kFiemapMaxOffset = ~uint64_t{0};
// FIEMAP_MAX_EXTENTS: UINT_MAX / sizeof(struct fiemap_extent) (56 bytes).
inline constexpr uint32_t kFiemapMaxExtents = UINT_MAX / 56;

// struct fiemap_extent.
struct FiemapExtent {
  uint64_t fe_logical = 0;   // file byte offset
  uint64_t fe_physical = 0;  // device byte offset (0 when unknown)
  uint64_t fe_length = 0;    // bytes
  uint32_t fe_flags = 0;     // kFiemapExtent*
};

// struct fiemap: the request and its answer.
struct FiemapRequest {
  uint64_t fm_start = 0;   // in: first byte
  uint64_t fm_length = 0;  // in: bytes (kFiemapMaxOffset: to the end)
  // in: kFiemapFlag*; out: unchanged on success, the unsupported flags on
  // -EBADR (kFiemapFlagXattr is consumed when xattr ops are given).
  uint32_t fm_flags = 0;
  uint32_t fm_mapped_extents = 0;  // out: extents filled (or counted)
  uint32_t fm_extent_count = 0;    // in: room in fm_extents; 0 = count only
  // out: the first fm_mapped_extents extents (empty when counting only).
  std::vector<FiemapExtent> fm_extents;
};

// filemap_write_and_wait(): writes back every dirty folio of the inode and
// waits for it. 0 or -errno.
using WriteAndWaitFn = std::function<int(Inode* inode)>;

// The default write-and-wait: the mapping's hooks
// (MappingHooks::WriteAndWaitRange over the whole file). Without hooks it
// succeeds when nothing is dirty or under writeback and fails -EOPNOTSUPP
// otherwise.
int DefaultWriteAndWait(Inode* inode);

struct FiemapOptions {
  // s_maxbytes: the largest file offset (XFS: MAX_LFS_FILESIZE).
  int64_t maxbytes = INT64_MAX;
  // For kFiemapFlagSync; null means DefaultWriteAndWait.
  WriteAndWaitFn write_and_wait;
  // The attribute-fork ops for kFiemapFlagXattr (as xfs_vn_fiemap strips the
  // flag and maps the xattr fork). Null: the flag is unsupported (-EBADR).
  IomapOps* xattr_ops = nullptr;
};

// ioctl_fiemap() + the filesystem's ->fiemap (xfs_vn_fiemap) +
// iomap_fiemap(). Returns 0 or -errno:
//   -EINVAL  fm_extent_count > kFiemapMaxExtents, or fm_length == 0;
//   -EFBIG   fm_start >= maxbytes;
//   -EBADR   flags other than kFiemapFlagsCompat's supported ones (fm_flags
//            set to the offending flags);
//   the write-and-wait's error under kFiemapFlagSync; IomapBegin's error,
//   except that, as in the kernel, an error after a pending extent is
//   dropped (the pending extent is still emitted) and -ENOENT means
//   "nothing mapped" (0).
// REQUIRES: inode->locks().rwsem held shared or exclusive (asserted).
int Fiemap(Inode* inode, FiemapRequest* req, IomapOps& ops,
           const FiemapOptions& options = FiemapOptions());

// --- The kernel's pieces, for filesystems that need them separately.

// struct fiemap_extent_info.
struct FiemapExtentInfo {
  uint32_t fi_flags = 0;
  uint32_t fi_extents_mapped = 0;
  uint32_t fi_extents_max = 0;
  // The extents filled so far (size() == fi_extents_mapped unless counting
  // only); the kernel's fi_extents_start array. Not owned.
  std::vector<FiemapExtent>* fi_extents = nullptr;
};

// fiemap_prep(): checks len/start against maxbytes (clamping *len), rejects
// flags outside (supported_flags | kFiemapFlagSync) & kFiemapFlagsCompat
// with -EBADR (fi_flags = the offending ones), and honours kFiemapFlagSync
// with `write_and_wait` (null: DefaultWriteAndWait). 0 or -errno.
int FiemapPrep(Inode* inode, FiemapExtentInfo* fi, uint64_t start,
               uint64_t* len, uint32_t supported_flags, int64_t maxbytes,
               const WriteAndWaitFn& write_and_wait);

// fiemap_fill_next_extent(): stores one extent (adding UNKNOWN to DELALLOC,
// ENCODED to DATA_ENCRYPTED, NOT_ALIGNED to DATA_TAIL/DATA_INLINE). Returns
// 1 when the array is (now) full or the extent was LAST, else 0; with
// fi_extents_max == 0 only counts (1 for LAST).
int FiemapFillNextExtent(FiemapExtentInfo* fi, uint64_t logical, uint64_t phys,
                         uint64_t len, uint32_t flags);

// iomap_fiemap(): the walk over [start, start + len) after FiemapPrep.
// REQUIRES: len > 0. Returns 0 or -errno (see Fiemap).
int IomapFiemap(Inode* inode, FiemapExtentInfo* fi, uint64_t start,
                uint64_t len, IomapOps& ops);

// iomap_bmap() (FIBMAP): the device block (in filesystem blocks) holding
// file block `block`, after writing back the whole file (null hook:
// DefaultWriteAndWait). 0 for anything but kMapped (hole, delalloc,
// unwritten, inline) and on any error, as the kernel ("0 is the error
// return"). REQUIRES: inode->locks().rwsem held shared or exclusive
// (asserted).
uint64_t Bmap(Inode* inode, uint64_t block, IomapOps& ops,
              const WriteAndWaitFn& write_and_wait = nullptr);

}  // namespace iomap

#endif  // IOMAPD_IOMAP_FIEMAP_H_
