// SEEK_DATA and SEEK_HOLE (the kernel's iomap_seek_data / iomap_seek_hole,
// fs/iomap/seek.c, and mapping_seek_hole_data, mm/filemap.c). See
// docs/reporting.md for every rule and the test that checks it.
//
// Both walk [pos, i_size) with kReport | kSeek mappings:
//   SEEK_HOLE: kHole -> pos; kUnwritten -> the first hole the pagecache
//     shows within the mapping (a missing folio or a !uptodate block), else
//     on; kMapped, kDelalloc, kInline are data. No hole before EOF -> i_size
//     (the virtual hole at EOF).
//   SEEK_DATA: kHole is skipped; kUnwritten -> the first data the pagecache
//     shows within the mapping (an uptodate folio or block; dirty or clean
//     does not matter), else on; anything else -> pos. None -> -ENXIO.
//
// Thread-safety: thread-safe for different inodes; for one inode, as the
// caller's locks allow (the filesystem's IomapBegin takes its own metadata
// locks, as XFS takes the ILOCK).
#ifndef IOMAPD_IOMAP_SEEK_H_
#define IOMAPD_IOMAP_SEEK_H_

#include <cstdint>

#include "iomap/iomap.h"

namespace iomap {

// iomap_seek_hole(): the offset of the first hole at or after `pos`.
// Returns it, -ENXIO when pos < 0 or pos >= i_size, or IomapBegin's -errno.
// REQUIRES: inode->locks().rwsem held (shared or exclusive; asserted).
int64_t SeekHole(Inode* inode, int64_t pos, IomapOps& ops);

// iomap_seek_data(): the offset of the first data at or after `pos`.
// Returns it, -ENXIO when pos < 0, pos >= i_size or no data lies in
// [pos, i_size), or IomapBegin's -errno.
// REQUIRES: inode->locks().rwsem held (shared or exclusive; asserted).
int64_t SeekData(Inode* inode, int64_t pos, IomapOps& ops);

// mapping_seek_hole_data(), exactly as the kernel answers it: the first
// data (whence SEEK_DATA) or hole (SEEK_HOLE) offset of [start, end) per the
// pagecache. An uptodate folio is data; in any other folio each block is
// data iff Mapping::IsPartiallyUptodate says so (a folio without per-block
// state has no data); a missing folio is a hole. The search works in whole
// folios, so an answer past `end` is clamped to `end` (a SEEK_DATA that finds
// data beyond `end` in the folio straddling it returns `end`, as the kernel
// does). Returns the offset, `end` when SEEK_HOLE finds none, -ENXIO when
// SEEK_DATA finds none or end <= start. Takes folio locks (never holds more
// than one); REQUIRES: no folio lock held by the caller.
//
// Mapping::SeekHoleData answers the same except in that clamp case (it
// returns -ENXIO there); seek uses this one to match the kernel exactly.
int64_t CacheSeekHoleData(Mapping* mapping, int64_t start, int64_t end,
                          int whence);

}  // namespace iomap

#endif  // IOMAPD_IOMAP_SEEK_H_
