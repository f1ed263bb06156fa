// Buffered reads: read_folio, readahead, filemap_read, and the synchronous
// range read used by read-modify-write.
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "block/device.h"
#include "iomap/buffered_io.h"

namespace iomap {

namespace {

block::Device* DeviceOf(Inode* inode, const Iomap& map) {
  return map.bdev != nullptr ? map.bdev : inode->bdev();
}

}  // namespace

int ReadFolioRangeSync(Inode* inode, const Iomap& srcmap, Folio* folio,
                       int64_t pos, size_t len) {
  folio->AssertLocked();
  uint8_t* dst = folio->data() + (pos - folio->pos());
  if (srcmap.type != Iomap::Type::kMapped) {
    std::memset(dst, 0, len);
    return 0;
  }
  block::Device* dev = DeviceOf(inode, srcmap);
  if (dev == nullptr) return -EIO;
  block::Bio bio;
  bio.op = block::BioOp::kRead;
  bio.flags = block::kBioSync;
  bio.offset = srcmap.DeviceAddr(pos);
  bio.AddSegment(dst, len);
  int64_t ret = block::SubmitAndWait(*dev, &bio);
  return ret < 0 ? static_cast<int>(ret) : 0;
}

}  // namespace iomap
