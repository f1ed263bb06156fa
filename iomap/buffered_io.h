// Buffered I/O through the pagecache (fs/iomap/buffered-io.c): reads and
// readahead, buffered writes, zeroing, truncation, unshare, page_mkwrite and
// the delalloc cleanup after short writes.
//
// Every entry point documents the locks the caller holds (DESIGN.md, locking
// table) and asserts them. Errors: 0/-errno, or bytes/-errno.
//
// Thread-safety: every function is thread-safe given the documented locks.
#ifndef IOMAPD_IOMAP_BUFFERED_IO_H_
#define IOMAPD_IOMAP_BUFFERED_IO_H_

#include <cstddef>
#include <cstdint>

#include "iomap/folio.h"
#include "iomap/iomap.h"
#include "iomap/iter.h"
#include "iomap/pagecache.h"

namespace iomap {

// iomap_get_folio(): the default IomapWriteOps::GetFolio. A locked folio
// caching `pos`, created when missing, sized from `len` when the mapping
// allows large folios, waited out of writeback; with kNowait in the iterator
// flags nothing blocks (-EAGAIN), with kDontcache a new folio is dropbehind.
int IomapGetFolio(IomapIter* iter, int64_t pos, size_t len, Folio** folio);

// The default IomapWriteOps::ReadFolioRange: reads [pos, pos + len) of
// `folio` synchronously from `srcmap` (a MAPPED mapping; others are zeroed).
// REQUIRES: folio locked; the range block-aligned and inside srcmap.
int ReadFolioRangeSync(Inode* inode, const Iomap& srcmap, Folio* folio,
                       int64_t pos, size_t len);

}  // namespace iomap

#endif  // IOMAPD_IOMAP_BUFFERED_IO_H_
