#include "iomap/seek.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "iomap/folio.h"
#include "iomap/iter.h"
#include "iomap/pagecache.h"

namespace iomap {
namespace {

// folio_seek_hole_data(): searches `folio` from `start` (within it) for data
// or a hole. Returns the offset found, or the end of the folio (or beyond)
// when there is none. A folio truncated meanwhile answers `start`.
int64_t FolioSeekHoleData(Mapping* mapping, Folio* folio, int64_t start,
                          bool seek_data) {
  if (folio->Uptodate()) return seek_data ? start : folio->end();
  const int64_t bsz = int64_t{1} << mapping->host()->blkbits();
  folio->Lock();
  if (folio->mapping() == mapping) {
    size_t offset = static_cast<size_t>(start - folio->pos()) &
                    ~static_cast<size_t>(bsz - 1);
    do {
      if (Mapping::IsPartiallyUptodate(*folio, offset, bsz) == seek_data) {
        break;
      }
      start = (start + bsz) & ~(bsz - 1);
      offset += bsz;
    } while (offset < folio->size());
  }
  folio->Unlock();
  return start;
}

}  // namespace

int64_t CacheSeekHoleData(Mapping* mapping, int64_t start, int64_t end,
                          int whence) {
  const bool seek_data = whence == SEEK_DATA;
  if (end <= start) return -ENXIO;
  bool found = false;
  for (FolioRef& folio :
       mapping->FoliosInRange(start >> kPageShift, (end - 1) >> kPageShift)) {
    if (start < folio->pos()) {
      if (!seek_data) {
        found = true;  // the gap before this folio is a hole
        break;
      }
      start = folio->pos();
    }
    start = FolioSeekHoleData(mapping, folio.get(), start, seek_data);
    if (start < folio->end()) {
      found = true;
      break;
    }
    if (start >= end) break;
  }
  if (!found && seek_data) return -ENXIO;
  return std::min(start, end);
}

namespace {

// One mapping of SEEK_HOLE (iomap_seek_hole_iter). Sets *hole_pos and
// returns 0 without advancing to stop the walk.
int SeekHoleStep(IomapIter& iter, int64_t* hole_pos) {
  const uint64_t length = iter.Length();
  const int64_t end = iter.pos() + static_cast<int64_t>(length);
  switch (iter.iomap.type) {
    case Iomap::Type::kUnwritten:
      *hole_pos = CacheSeekHoleData(iter.inode()->mapping(), iter.pos(), end,
                                    SEEK_HOLE);
      if (*hole_pos == end) return iter.Advance(length);
      return 0;
    case Iomap::Type::kHole:
      *hole_pos = iter.pos();
      return 0;
    default:
      return iter.Advance(length);
  }
}

// One mapping of SEEK_DATA (iomap_seek_data_iter).
int SeekDataStep(IomapIter& iter, int64_t* data_pos) {
  const uint64_t length = iter.Length();
  const int64_t end = iter.pos() + static_cast<int64_t>(length);
  switch (iter.iomap.type) {
    case Iomap::Type::kHole:
      return iter.Advance(length);
    case Iomap::Type::kUnwritten:
      *data_pos = CacheSeekHoleData(iter.inode()->mapping(), iter.pos(), end,
                                    SEEK_DATA);
      if (*data_pos < 0) return iter.Advance(length);
      return 0;
    default:
      *data_pos = iter.pos();
      return 0;
  }
}

}  // namespace

int64_t SeekHole(Inode* inode, int64_t pos, IomapOps& ops) {
  inode->locks().rwsem.AssertReaderHeld();
  const int64_t size = inode->i_size_read();
  if (pos < 0 || pos >= size) return -ENXIO;
  IomapIter iter(inode, pos, static_cast<uint64_t>(size - pos),
                 kReport | kSeek);
  int ret;
  while ((ret = iter.Next(ops)) > 0) iter.status = SeekHoleStep(iter, &pos);
  if (ret < 0) return ret;
  if (iter.len() != 0) return pos;  // a hole before EOF
  return size;                      // the virtual hole at EOF
}

int64_t SeekData(Inode* inode, int64_t pos, IomapOps& ops) {
  inode->locks().rwsem.AssertReaderHeld();
  const int64_t size = inode->i_size_read();
  if (pos < 0 || pos >= size) return -ENXIO;
  IomapIter iter(inode, pos, static_cast<uint64_t>(size - pos),
                 kReport | kSeek);
  int ret;
  while ((ret = iter.Next(ops)) > 0) iter.status = SeekDataStep(iter, &pos);
  if (ret < 0) return ret;
  if (iter.len() != 0) return pos;  // data before EOF
  return -ENXIO;
}

}  // namespace iomap
