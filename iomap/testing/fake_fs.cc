#include "iomap/testing/fake_fs.h"

#include <algorithm>
#include <cerrno>
#include <iterator>

namespace iomap {
namespace testing {

FakeFs::FakeFs(block::Device* dev, unsigned blkbits, bool large_folios,
               PageCache* cache)
    : dev_(dev), inode_(blkbits, dev, cache) {
  if (large_folios) inode_.SetLargeFolios();
}

void FakeFs::RemoveRangeLocked(int64_t offset, int64_t length) {
  const int64_t end = offset + length;
  std::vector<FakeExtent> keep;
  auto it = extents_.upper_bound(offset);
  if (it != extents_.begin()) --it;
  while (it != extents_.end() && it->first < end) {
    FakeExtent e = it->second;
    const int64_t e_end = e.offset + e.length;
    if (e_end <= offset) {
      ++it;
      continue;
    }
    it = extents_.erase(it);
    if (e.offset < offset) {
      FakeExtent left = e;
      left.length = offset - e.offset;
      keep.push_back(left);
    }
    if (e_end > end) {
      FakeExtent right = e;
      right.offset = end;
      right.length = e_end - end;
      if (e.addr != kNullAddr) right.addr = e.addr + (end - e.offset);
      keep.push_back(right);
    }
  }
  for (const FakeExtent& e : keep) extents_[e.offset] = e;
}

void FakeFs::SetExtent(int64_t offset, int64_t length, Iomap::Type type,
                       uint64_t addr, uint32_t flags) {
  base::MutexLock l(&mu_);
  RemoveRangeLocked(offset, length);
  if (type != Iomap::Type::kHole) {
    extents_[offset] = FakeExtent{offset, length, type, addr, flags};
  }
  seq_++;
}

std::vector<FakeExtent> FakeFs::Extents() {
  base::MutexLock l(&mu_);
  std::vector<FakeExtent> out;
  for (auto& e : extents_) out.push_back(e.second);
  return out;
}

int64_t FakeFs::reserved_blocks() {
  base::MutexLock l(&mu_);
  int64_t bytes = 0;
  for (auto& e : extents_) {
    if (e.second.type == Iomap::Type::kDelalloc) bytes += e.second.length;
  }
  return bytes >> inode_.blkbits();
}

bool FakeFs::IsDelalloc(int64_t pos) {
  base::MutexLock l(&mu_);
  auto it = extents_.upper_bound(pos);
  if (it == extents_.begin()) return false;
  const FakeExtent& x = std::prev(it)->second;
  return pos < x.offset + x.length && x.type == Iomap::Type::kDelalloc;
}

uint64_t FakeFs::seq() {
  base::MutexLock l(&mu_);
  return seq_;
}

std::vector<BeginCall> FakeFs::begins() {
  base::MutexLock l(&mu_);
  return begins_;
}

std::vector<EndCall> FakeFs::ends() {
  base::MutexLock l(&mu_);
  return ends_;
}

void FakeFs::ClearCalls() {
  base::MutexLock l(&mu_);
  begins_.clear();
  ends_.clear();
}

int64_t FakeFs::NextExtentStartLocked(int64_t pos) {
  auto it = extents_.upper_bound(pos);
  return it == extents_.end() ? INT64_MAX : it->first;
}

void FakeFs::FillFromExtent(const FakeExtent& e, Iomap* map) {
  map->offset = e.offset;
  map->length = static_cast<uint64_t>(e.length);
  map->type = e.type;
  map->addr = e.addr;
  map->flags = e.flags;
  map->bdev = dev_;
  map->validity_cookie = seq_;
  if (e.type == Iomap::Type::kInline) map->inline_data = nullptr;
}

int FakeFs::IomapBegin(Inode* inode, int64_t pos, int64_t len, unsigned flags,
                       Iomap* iomap, Iomap* srcmap) {
  (void)inode;
  base::MutexLock l(&mu_);
  begins_.push_back({pos, len, flags});
  if (begin_error != 0) return begin_error;
  const int64_t bs = inode_.block_size();
  auto it = extents_.upper_bound(pos);
  if (it != extents_.begin()) {
    const FakeExtent& e = std::prev(it)->second;
    if (pos < e.offset + e.length) {
      if ((e.flags & kShared) && (flags & kWrite)) {
        // COW: new (delalloc) blocks over the old data.
        FillFromExtent(e, srcmap);
        srcmap->flags &= ~kShared;
        FillFromExtent(e, iomap);
        iomap->type = Iomap::Type::kDelalloc;
        iomap->addr = kNullAddr;
        iomap->flags = kShared;
        return 0;
      }
      FillFromExtent(e, iomap);
      return 0;
    }
  }
  // A hole up to the next extent.
  const int64_t next = NextExtentStartLocked(pos);
  const int64_t start = pos & ~(bs - 1);
  if ((flags & kWrite) && !(flags & kZero) && delalloc_on_write) {
    int64_t end = std::min(next, (pos + len + bs - 1) & ~(bs - 1));
    FakeExtent d{start, end - start, Iomap::Type::kDelalloc, kNullAddr, 0};
    extents_[start] = d;
    seq_++;
    FillFromExtent(d, iomap);
    iomap->flags |= kNew;
    return 0;
  }
  iomap->offset = start;
  iomap->length = static_cast<uint64_t>(
      std::min<int64_t>(next, start + (int64_t{1} << 40)) - start);
  iomap->type = Iomap::Type::kHole;
  iomap->addr = kNullAddr;
  iomap->bdev = dev_;
  iomap->validity_cookie = seq_;
  return 0;
}

int FakeFs::IomapEnd(Inode* inode, int64_t pos, int64_t len, int64_t written,
                     unsigned flags, Iomap* iomap) {
  {
    base::MutexLock l(&mu_);
    ends_.push_back({pos, len, written, flags, iomap->flags, iomap->type});
  }
  if (!(flags & kWrite) || (flags & kFault) ||
      iomap->type != Iomap::Type::kDelalloc || !(iomap->flags & kNew)) {
    return 0;
  }
  const int64_t bs = inode->block_size();
  // xfs_buffered_write_iomap_end: from the last block written.
  const int64_t start =
      written == 0 ? pos & ~(bs - 1) : (pos + written + bs - 1) & ~(bs - 1);
  const int64_t end = (pos + len + bs - 1) & ~(bs - 1);
  if (start >= end) return 0;
  base::WriterLock inval(&inode->locks().invalidate);
  WriteDelallocRelease(
      inode, start, end, flags, iomap,
      [this](Inode*, int64_t off, int64_t n, Iomap*) { Punch(off, n); });
  return 0;
}

void FakeFs::Punch(int64_t offset, int64_t length) {
  base::MutexLock l(&mu_);
  // Remove only delalloc pieces of the range.
  std::vector<FakeExtent> delalloc;
  const int64_t end = offset + length;
  for (auto& entry : extents_) {
    const FakeExtent& e = entry.second;
    if (e.type != Iomap::Type::kDelalloc) continue;
    const int64_t s = std::max(e.offset, offset);
    const int64_t t = std::min(e.offset + e.length, end);
    if (s < t) delalloc.push_back({s, t - s, e.type, kNullAddr, 0});
  }
  for (const FakeExtent& d : delalloc) RemoveRangeLocked(d.offset, d.length);
  if (!delalloc.empty()) seq_++;
}

int FakeFs::GetFolio(IomapIter* iter, int64_t pos, size_t len, Folio** folio) {
  int ret = IomapGetFolio(iter, pos, len, folio);
  if (ret == 0 && after_get_folio) after_get_folio(pos);
  return ret;
}

bool FakeFs::IomapValid(Inode* inode, const Iomap& iomap) {
  (void)inode;
  base::MutexLock l(&mu_);
  return iomap.validity_cookie == seq_;
}

}  // namespace testing
}  // namespace iomap
