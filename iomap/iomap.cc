// Inode and the default IomapWriteOps members.
#include "iomap/iomap.h"

#include <cerrno>

#include "block/device.h"
#include "iomap/buffered_io.h"
#include "iomap/folio.h"
#include "iomap/iter.h"
#include "iomap/pagecache.h"

namespace iomap {

const char* IomapTypeName(Iomap::Type type) {
  switch (type) {
    case Iomap::Type::kHole:
      return "HOLE";
    case Iomap::Type::kDelalloc:
      return "DELALLOC";
    case Iomap::Type::kMapped:
      return "MAPPED";
    case Iomap::Type::kUnwritten:
      return "UNWRITTEN";
    case Iomap::Type::kInline:
      return "INLINE";
  }
  return "?";
}

Inode::Inode(uint64_t ino, unsigned blkbits, block::Device* bdev,
             PageCache* cache)
    : ino_(ino),
      blkbits_(blkbits),
      bdev_(bdev),
      mapping_(std::make_unique<Mapping>(
          this, cache != nullptr ? cache : PageCache::Global())) {}

Inode::~Inode() = default;

void Inode::SetLargeFolios() { mapping_->SetLargeFolios(); }

int IomapWriteOps::GetFolio(IomapIter* iter, int64_t pos, size_t len,
                            Folio** folio) {
  return IomapGetFolio(iter, pos, len, folio);
}

void IomapWriteOps::PutFolio(Inode* inode, int64_t pos, size_t copied,
                             Folio* folio) {
  (void)inode, (void)pos, (void)copied;
  folio->Unlock();
  folio->Put();
}

bool IomapWriteOps::IomapValid(Inode* inode, const Iomap& iomap) {
  (void)inode, (void)iomap;
  return true;
}

int IomapWriteOps::ReadFolioRange(const IomapIter& iter, Folio* folio,
                                  int64_t pos, size_t len) {
  return ReadFolioRangeSync(iter.inode(), iter.Srcmap(), folio, pos, len);
}

IomapWriteOps& IomapWriteOps::Default() {
  static IomapWriteOps* ops = new IomapWriteOps();
  return *ops;
}

}  // namespace iomap
