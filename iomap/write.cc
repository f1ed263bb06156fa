// Buffered writes: iomap_get_folio, write_begin/write_end, the
// iomap_file_buffered_write loop, and delalloc release after short writes.
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "iomap/buffered_io.h"

namespace iomap {

namespace {

// fgf_set_order(): the folio order a write of `len` bytes asks for.
unsigned OrderForLength(size_t len) {
  unsigned order = 0;
  while (order < kMaxFolioOrder && (kPageSize << (order + 1)) <= len) order++;
  return order;
}

}  // namespace

int IomapGetFolio(IomapIter* iter, int64_t pos, size_t len, Folio** folio) {
  unsigned fgp = kFgpWriteBegin;
  if (iter->flags() & kNowait) fgp |= kFgpNowait;
  if (iter->flags() & kDontcache) fgp |= kFgpDontcache;
  Mapping* mapping = iter->inode()->mapping();
  return mapping->GetFolio(pos >> kPageShift, fgp, OrderForLength(len), folio);
}

}  // namespace iomap
