// fsdax: DaxRw, DaxZeroRange, DaxTruncatePage, DaxMapStore, DaxWriteback
// (fs/dax.c: dax_iomap_rw, dax_iomap_iter, dax_iomap_copy_around,
// dax_zero_iter, dax_iomap_pte_fault, dax_writeback_mapping_range).
#include "iomap/dax.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "iomap/iter.h"

namespace iomap {

// --- DaxDirty

void DaxDirty::Add(block::DaxMapping* dax, uint64_t offset, uint64_t len) {
  if (len == 0) return;
  uint64_t start = offset, end = offset + len;
  base::MutexLock l(&mu_);
  auto it = ranges_.lower_bound({dax, start});
  if (it != ranges_.begin()) {
    auto prev = std::prev(it);
    if (prev->first.first == dax && prev->second >= start) {
      start = prev->first.second;
      end = std::max(end, prev->second);
      it = ranges_.erase(prev);
    }
  }
  while (it != ranges_.end() && it->first.first == dax &&
         it->first.second <= end) {
    end = std::max(end, it->second);
    it = ranges_.erase(it);
  }
  ranges_.emplace(std::make_pair(dax, start), end);
}

std::vector<DaxDirty::Range> DaxDirty::Take() {
  std::vector<Range> out;
  base::MutexLock l(&mu_);
  out.reserve(ranges_.size());
  for (const auto& [key, end] : ranges_)
    out.push_back({key.first, key.second, end - key.second});
  ranges_.clear();
  return out;
}

uint64_t DaxDirty::bytes() const {
  base::MutexLock l(&mu_);
  uint64_t n = 0;
  for (const auto& [key, end] : ranges_) n += end - key.second;
  return n;
}

bool DaxDirty::empty() const {
  base::MutexLock l(&mu_);
  return ranges_.empty();
}

int DaxWriteback(DaxDirty* dirty) {
  std::vector<DaxDirty::Range> ranges = dirty->Take();
  for (size_t i = 0; i < ranges.size(); ++i) {
    const int r = ranges[i].dax->Flush(ranges[i].offset, ranges[i].len);
    if (r == 0) continue;
    for (size_t j = i; j < ranges.size(); ++j)
      dirty->Add(ranges[j].dax, ranges[j].offset, ranges[j].len);
    return r;
  }
  return 0;
}

namespace {

// What one DAX step needs besides the iterator.
struct DaxStep {
  uint8_t* buf = nullptr;  // read destination / write source (advancing)
  DaxDirty* dirty = nullptr;
  bool* did_zero = nullptr;
};

bool ReadsAsZero(Iomap::Type type) {
  return type == Iomap::Type::kHole || type == Iomap::Type::kUnwritten ||
         type == Iomap::Type::kDelalloc;
}

// The DaxMapping behind `map` (its bdev, else the inode's device).
block::DaxMapping* DaxOf(const Iomap& map, const Inode* inode) {
  block::Device* dev = map.bdev != nullptr ? map.bdev : inode->bdev();
  return dev != nullptr ? dev->dax() : nullptr;
}

// dax_iomap_direct_access(): the memory of file bytes [pos, pos + len) of
// `map`, or nullptr (no address, or outside the device).
uint8_t* DirectAccess(block::DaxMapping* dax, const Iomap& map, int64_t pos,
                      uint64_t len) {
  if (map.addr == kNullAddr || !map.Contains(pos)) return nullptr;
  return dax->DirectAccess(map.DeviceAddr(pos), len);
}

// Fills file bytes [off, off + n) of the destination mapping from srcmap,
// or with zeroes where srcmap has no written data there.
int FillFromSrcmap(const IomapIter& it, block::DaxMapping* dax, int64_t off,
                   int64_t n, DaxDirty* dirty) {
  if (n <= 0) return 0;
  uint8_t* dst = DirectAccess(dax, it.iomap, off, n);
  if (dst == nullptr) return -EIO;
  const Iomap& src = it.srcmap;
  if (src.type == Iomap::Type::kMapped && src.Contains(off) &&
      off + n <= src.End()) {
    block::DaxMapping* sdax = DaxOf(src, it.inode());
    const uint8_t* from =
        sdax != nullptr ? DirectAccess(sdax, src, off, n) : nullptr;
    if (from == nullptr) return -EIO;
    memcpy(dst, from, n);
  } else {
    memset(dst, 0, n);
  }
  dirty->Add(dax, it.iomap.DeviceAddr(off), n);
  return 0;
}

// dax_iomap_copy_around(): before a COW store to [pos, end), the rest of
// the blocks it touches comes from the old data.
int CopyAround(const IomapIter& it, block::DaxMapping* dax, int64_t pos,
               int64_t end, DaxDirty* dirty) {
  const int64_t bs = it.inode()->block_size();
  const int64_t head = std::max(pos - pos % bs, it.iomap.offset);
  const int64_t tail = std::min((end + bs - 1) / bs * bs, it.iomap.End());
  if (int r = FillFromSrcmap(it, dax, head, pos - head, dirty); r != 0)
    return r;
  return FillFromSrcmap(it, dax, end, tail - end, dirty);
}

// A writable DaxMapping for a store into it.iomap, or -errno in *err.
block::DaxMapping* StoreTarget(const IomapIter& it, int* err) {
  const Iomap& m = it.iomap;
  if (m.type != Iomap::Type::kMapped && !(m.flags & kShared)) {
    *err = -EIO;  // the filesystem must allocate written blocks for DAX
    return nullptr;
  }
  block::DaxMapping* dax = DaxOf(m, it.inode());
  if (dax == nullptr || !dax->writable()) {
    *err = -EOPNOTSUPP;
    return nullptr;
  }
  return dax;
}

int ReadStep(IomapIter& it, DaxStep* s) {
  const uint64_t n = it.Length();
  const Iomap& m = it.iomap;
  if (ReadsAsZero(m.type)) {
    memset(s->buf, 0, n);
  } else if (m.type == Iomap::Type::kMapped) {
    block::DaxMapping* dax = DaxOf(m, it.inode());
    if (dax == nullptr) return -EOPNOTSUPP;
    const uint8_t* from = DirectAccess(dax, m, it.pos(), n);
    if (from == nullptr) return -EIO;
    memcpy(s->buf, from, n);
  } else {
    return -EIO;  // inline data has no place under DAX
  }
  s->buf += n;
  return it.Advance(n);
}

// dax_iomap_iter() for writes (and for the stores of write faults).
// The mapped bytes a store of the current step's n bytes goes to (in
// *dax), after copying a shared (COW) extent's bytes around them from
// srcmap. Null with *err set on failure. The caller records the store dirty
// once it is done, so an fsync meanwhile cannot consume the record early.
uint8_t* PrepareStore(IomapIter& it, DaxStep* s, uint64_t n,
                      block::DaxMapping** dax_out, int* err) {
  block::DaxMapping* dax = StoreTarget(it, err);
  if (dax == nullptr) return nullptr;
  const int64_t pos = it.pos();
  if (it.iomap.flags & kShared) {
    *err = CopyAround(it, dax, pos, pos + n, s->dirty);
    if (*err != 0) return nullptr;
  }
  uint8_t* dst = DirectAccess(dax, it.iomap, pos, n);
  if (dst == nullptr) {
    *err = -EIO;
    return nullptr;
  }
  *dax_out = dax;
  return dst;
}

int WriteStep(IomapIter& it, DaxStep* s) {
  const uint64_t n = it.Length();
  int err = 0;
  block::DaxMapping* dax = nullptr;
  uint8_t* dst = PrepareStore(it, s, n, &dax, &err);
  if (dst == nullptr) return err;
  memcpy(dst, s->buf, n);
  s->dirty->Add(dax, it.iomap.DeviceAddr(it.pos()), n);
  s->buf += n;
  return it.Advance(n);
}

// dax_zero_iter()
int ZeroStep(IomapIter& it, DaxStep* s) {
  const uint64_t n = it.Length();
  const Iomap& src = it.Srcmap();
  if (ReadsAsZero(src.type)) return it.Advance(n);
  if (src.type == Iomap::Type::kInline) return -EIO;
  int err = 0;
  block::DaxMapping* dax = nullptr;
  uint8_t* dst = PrepareStore(it, s, n, &dax, &err);
  if (dst == nullptr) return err;
  memset(dst, 0, n);
  s->dirty->Add(dax, it.iomap.DeviceAddr(it.pos()), n);
  if (s->did_zero != nullptr) *s->did_zero = true;
  return it.Advance(n);
}

// The iomap_iter loop: bytes done, or the error when nothing was done.
// *err (may be null) gets the loop's final error either way.
template <typename Step>
int64_t Iterate(Inode* inode, int64_t pos, uint64_t len, unsigned flags,
                IomapOps& ops, DaxStep* s, Step step, int* err = nullptr) {
  IomapIter it(inode, pos, len, flags);
  int ret;
  while ((ret = it.Next(ops)) > 0) it.status = step(it, s);
  if (err != nullptr) *err = ret;
  const int64_t done = it.pos() - pos;
  return done > 0 ? done : ret;
}

}  // namespace

int64_t DaxRw(Inode* inode, const DaxRequest& req, IomapOps& ops,
              DaxDirty* dirty) {
  if (req.pos < 0) return -EINVAL;
  if (req.len == 0) return 0;
  DaxStep s;
  s.buf = req.buf;
  s.dirty = dirty;
  const unsigned flags = kDax | (req.flags & kNowait);
  if (req.write)
    return Iterate(inode, req.pos, req.len, flags | kWrite, ops, &s, WriteStep);
  const int64_t size = inode->i_size_read();
  if (req.pos >= size) return 0;
  const uint64_t len =
      std::min<uint64_t>(req.len, static_cast<uint64_t>(size - req.pos));
  return Iterate(inode, req.pos, len, flags, ops, &s, ReadStep);
}

int DaxZeroRange(Inode* inode, int64_t pos, int64_t len, bool* did_zero,
                 IomapOps& ops, DaxDirty* dirty) {
  if (pos < 0 || len < 0) return -EINVAL;
  if (len == 0) return 0;
  DaxStep s;
  s.dirty = dirty;
  s.did_zero = did_zero;
  int err = 0;
  const int64_t r =
      Iterate(inode, pos, len, kDax | kZero, ops, &s, ZeroStep, &err);
  if (r == len) return 0;
  return err < 0 ? err : -EIO;
}

int DaxTruncatePage(Inode* inode, int64_t pos, bool* did_zero, IomapOps& ops,
                    DaxDirty* dirty) {
  const int64_t bs = inode->block_size();
  const int64_t off = pos % bs;
  if (off == 0) return 0;
  return DaxZeroRange(inode, pos, bs - off, did_zero, ops, dirty);
}

int64_t DaxMapStore(Inode* inode, int64_t pos, const void* data, size_t len,
                    IomapOps& ops, DaxDirty* dirty) {
  if (pos < 0) return -EINVAL;
  const uint8_t* src = static_cast<const uint8_t*>(data);
  size_t done = 0;
  while (done < len) {
    const int64_t at = pos + static_cast<int64_t>(done);
    const int64_t page = at - at % kDaxPageSize;
    int64_t r = -EFAULT;  // SIGBUS: the page starts at or past EOF
    const size_t n = std::min<size_t>(len - done, page + kDaxPageSize - at);
    if (page < inode->i_size_read()) {
      DaxStep s;
      s.buf = const_cast<uint8_t*>(src + done);
      s.dirty = dirty;
      r = Iterate(inode, at, n, kDax | kFault | kWrite, ops, &s, WriteStep);
    }
    if (r <= 0) return done > 0 ? static_cast<int64_t>(done) : r;
    done += static_cast<size_t>(r);
    if (static_cast<size_t>(r) < n) break;
  }
  return static_cast<int64_t>(done);
}

}  // namespace iomap
