#include "iomap/iter.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>

namespace iomap {

IomapIter* IomapIter::FromIomap(Iomap* map) {
  // The member's offset is the same in every IomapIter.
  static const std::ptrdiff_t offset = [] {
    IomapIter probe(nullptr, 0, 0, 0);
    return reinterpret_cast<char*>(&probe.iomap) -
           reinterpret_cast<char*>(&probe);
  }();
  return reinterpret_cast<IomapIter*>(reinterpret_cast<char*>(map) - offset);
}

uint64_t IomapIter::LengthTrim(int64_t pos, uint64_t len) const {
  int64_t end = iomap.End();
  if (srcmap.type != Iomap::Type::kHole) end = std::min(end, srcmap.End());
  if (end <= pos) return 0;
  return std::min<uint64_t>(len, static_cast<uint64_t>(end - pos));
}

int IomapIter::Advance(uint64_t count) {
  if (count > Length()) {
    std::fprintf(stderr,
                 "iomap: advance by %llu past the mapping (length %llu)\n",
                 static_cast<unsigned long long>(count),
                 static_cast<unsigned long long>(Length()));
    return -EIO;
  }
  pos_ += static_cast<int64_t>(count);
  len_ -= count;
  return 0;
}

// iomap_iter_done(): the filesystem's mapping must make sense.
int IomapIter::CheckMapping() const {
  if (iomap.length == 0 || iomap.offset > pos_ || iomap.End() <= pos_ ||
      (iomap.flags & kStale)) {
    std::fprintf(stderr,
                 "iomap: bad mapping offset %lld length %llu for pos %lld\n",
                 static_cast<long long>(iomap.offset),
                 static_cast<unsigned long long>(iomap.length),
                 static_cast<long long>(pos_));
    return -EIO;
  }
  if (srcmap.type != Iomap::Type::kHole &&
      (srcmap.length == 0 || srcmap.offset > pos_ || srcmap.End() <= pos_)) {
    std::fprintf(stderr, "iomap: bad srcmap for pos %lld\n",
                 static_cast<long long>(pos_));
    return -EIO;
  }
  return 0;
}

int IomapIter::Next(IomapOps& ops) {
  if (iomap.length != 0) {
    const bool stale = iomap.flags & kStale;
    const int64_t advanced = pos_ - iter_start_pos_;
    const uint64_t olen = len_ + static_cast<uint64_t>(advanced);
    int ret =
        ops.IomapEnd(inode_, iter_start_pos_,
                     static_cast<int64_t>(LengthTrim(iter_start_pos_, olen)),
                     advanced, flags_, &iomap);
    if (ret < 0 && advanced == 0) return ret;
    if (status > 0) status = -EIO;  // steps return 0 or -errno only
    if (status < 0) return status;
    if (len_ == 0) return 0;
    if (advanced == 0 && !stale) return 0;
  }
  iomap = Iomap();
  srcmap = Iomap();
  status = 0;
  if (fbatch != nullptr) fbatch->Reset();
  int ret = ops.IomapBegin(inode_, pos_, static_cast<int64_t>(len_), flags_,
                           &iomap, &srcmap);
  if (ret < 0) return ret;
  ret = CheckMapping();
  if (ret < 0) return ret;
  iter_start_pos_ = pos_;
  return 1;
}

}  // namespace iomap
