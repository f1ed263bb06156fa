// Helpers shared by the engine's buffered I/O files. Not part of the public
// API.
#ifndef IOMAPD_IOMAP_INTERNAL_H_
#define IOMAPD_IOMAP_INTERNAL_H_

#include <cstddef>
#include <cstdint>

#include "iomap/buffered_io.h"

namespace block {
class Device;
}

namespace iomap {
namespace internal {

// Readahead (readahead.cc, mm/readahead.c). page_cache_sync_ra(): a read
// missed page `index` wanting `req_pages` pages from there; reads a window
// sized by the access pattern (or just the request). page_cache_async_ra():
// the reader reached `folio`, which carries the readahead mark; clears it
// and reads the next window. Both take the invalidate lock shared
// (REQUIRES: not held) and do not wait for the reads.
void SyncReadahead(Inode* inode, RaState* ra, int64_t index, int64_t req_pages,
                   IomapOps& ops);
void AsyncReadahead(Inode* inode, RaState* ra, Folio* folio, int64_t req_pages,
                    IomapOps& ops);
// page_cache_ra_order(): reads the missing pages of [start, start +
// nr_pages) (clipped at EOF) in folios of `order` (smaller where unaligned
// or at the end; min-order ones once a cached page is met), flagging the
// new folio covering page `mark` (-1: none) with the readahead mark.
void ReadaheadWindow(Inode* inode, int64_t start, int64_t nr_pages,
                     int64_t mark, unsigned order, IomapOps& ops);

// The device a mapping refers to: its own bdev, else the inode's.
block::Device* DeviceOf(Inode* inode, const Iomap& map);

// iomap_block_needs_zeroing(): the block at `pos` reads as zeros (srcmap not
// MAPPED, srcmap NEW, or at/after i_size).
bool BlockNeedsZeroing(const IomapIter& iter, int64_t pos);

// iomap_adjust_read_range(): of [*pos, *pos + length) within `folio`, the
// first run of blocks that still needs reading: skips leading uptodate
// blocks (moving *pos), stops before the next uptodate block, and splits at
// the block holding i_size. Outputs the run as folio offset/length (plen 0:
// nothing to read).
void AdjustReadRange(Inode* inode, Folio* folio, int64_t* pos, int64_t length,
                     size_t* poff, size_t* plen);

// iomap_read_inline_data(): copies the inline data of the iterator's srcmap
// into `folio` and zeroes the rest of it; marks it uptodate. 0 or -EIO.
int ReadInlineData(const IomapIter& iter, Folio* folio);

// write_begin / write_end / put_folio of the write-like paths (write, zero,
// unshare). WriteBegin returns with *folio locked (or null with kStale set
// on the iterator's iomap when the mapping went stale), *offset the offset
// of iter.pos() in it and *bytes trimmed to the folio. With kFolioBatch the
// folio is the batch's next one (the iterator first advances to it when it
// starts further on), and a null *folio without kStale means the batch is
// used up.
int WriteBegin(IomapIter* iter, IomapWriteOps* wops, Folio** folio,
               size_t* offset, uint64_t* bytes);
// The next folio of iter->fbatch, locked, referenced and out of writeback;
// null at the end of the batch, or with kStale set when it was truncated.
// -EIO when the iterator has no batch.
int BatchNextFolio(IomapIter* iter, Folio** folio);
bool WriteEnd(IomapIter* iter, size_t len, size_t copied, Folio* folio);
void PutFolio(IomapIter* iter, IomapWriteOps* wops, size_t written,
              Folio* folio);

}  // namespace internal
}  // namespace iomap

#endif  // IOMAPD_IOMAP_INTERNAL_H_
