// WbTestFs: a fake filesystem for the writeback tests. One inode over a
// block::Device; an extent table (default: identity-mapped MAPPED blocks at
// device byte `base + offset`); IomapWritebackOps that map ranges and build
// ioends with AddToIoend; IoendCompletionOps that convert unwritten extents
// and record every completion. Tests only. Thread-safe.
#ifndef IOMAPD_IOMAP_WB_TEST_FS_H_
#define IOMAPD_IOMAP_WB_TEST_FS_H_

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <vector>

#include "base/mutex.h"
#include "block/device.h"
#include "iomap/ioend.h"
#include "iomap/iomap.h"
#include "iomap/pagecache.h"
#include "iomap/writeback.h"

namespace iomap {
namespace testing {

struct WbExtent {
  int64_t offset;
  int64_t length;
  Iomap::Type type;
  uint64_t addr;
  uint32_t flags;
};

struct FinishRecord {
  int64_t offset;
  uint64_t size;
  uint16_t flags;
  int error;
  size_t merged;
};

struct RangeCall {
  int64_t pos;
  unsigned len;
};

class WbTestFs : public IomapWritebackOps, public IoendCompletionOps {
 public:
  WbTestFs(block::Device* dev, unsigned blkbits, PageCache* cache,
           bool large_folios = false, uint64_t base = 0)
      : dev_(dev), base_(base), inode_(7, blkbits, dev, cache) {
    if (large_folios) inode_.SetLargeFolios();
  }
  ~WbTestFs() override = default;

  Inode* inode() { return &inode_; }
  Mapping* mapping() { return inode_.mapping(); }

  void SetExtent(int64_t offset, int64_t length, Iomap::Type type,
                 uint64_t addr, uint32_t flags = 0) {
    base::MutexLock l(&mu_);
    extents_[offset] = {offset, length, type, addr, flags};
  }

  // Ioends needing process context go through this queue when set.
  IoendCompletionQueue* queue = nullptr;
  // WritebackRange fails with -EIO for ranges containing this offset.
  std::atomic<int64_t> fail_pos{-1};
  // FinishIoend returns this.
  std::atomic<int> finish_error{0};
  std::atomic<int> submits{0};

  std::vector<FinishRecord> finished() {
    base::MutexLock l(&mu_);
    return finished_;
  }
  std::vector<RangeCall> ranges() {
    base::MutexLock l(&mu_);
    return ranges_;
  }

  // Puts `len` bytes of `byte` at `pos` in the cache, dirty, raising i_size
  // (what a buffered write leaves behind). Block-aligned ranges only.
  void Dirty(int64_t pos, size_t len, uint8_t byte, unsigned order = 0) {
    int64_t end = pos + static_cast<int64_t>(len);
    while (pos < end) {
      Folio* folio = nullptr;
      int ret =
          mapping()->GetFolio(pos >> kPageShift, kFgpWriteBegin, order, &folio);
      if (ret != 0) std::abort();
      size_t off = static_cast<size_t>(pos - folio->pos());
      size_t n =
          std::min<size_t>(folio->size() - off, static_cast<size_t>(end - pos));
      std::memset(folio->data() + off, byte, n);
      folio->AttachState();
      folio->SetRangeUptodate(off, n);
      folio->SetRangeDirty(off, n);
      folio->MarkDirtyFlag();
      if (pos + static_cast<int64_t>(n) > inode_.i_size_read()) {
        inode_.i_size_write(pos + static_cast<int64_t>(n));
      }
      folio->Unlock();
      folio->Put();
      pos += static_cast<int64_t>(n);
    }
  }

  // IomapWritebackOps
  int64_t WritebackRange(WritepageCtx* wpc, Folio* folio, uint64_t pos,
                         unsigned len, uint64_t end_pos) override {
    const int64_t p = static_cast<int64_t>(pos);
    {
      base::MutexLock l(&mu_);
      ranges_.push_back({p, len});
    }
    const int64_t fail = fail_pos.load();
    if (fail >= p && fail < p + static_cast<int64_t>(len)) return -EIO;
    Map(p, &wpc->iomap);
    return AddToIoend(wpc, folio, p, static_cast<int64_t>(end_pos), len);
  }
  int WritebackSubmit(WritepageCtx* wpc, int error) override {
    submits++;
    if (queue != nullptr && wpc->ioend != nullptr) queue->Attach(wpc->ioend);
    return IoendWritebackSubmit(wpc, error);
  }

  // IoendCompletionOps
  int FinishIoend(Inode* inode, Ioend* ioend) override {
    base::MutexLock l(&mu_);
    finished_.push_back({ioend->io_offset, ioend->io_size, ioend->flags,
                         ioend->error, ioend->merged.size()});
    if (ioend->error == 0 && (ioend->flags & kIoendUnwritten)) {
      ConvertLocked(ioend->io_offset, static_cast<int64_t>(ioend->io_size));
    }
    return finish_error.load();
  }

  Iomap::Type TypeAt(int64_t pos) {
    Iomap map;
    Map(pos, &map);
    return map.type;
  }

 private:
  void Map(int64_t pos, Iomap* map) {
    base::MutexLock l(&mu_);
    *map = Iomap();
    map->bdev = dev_;
    auto it = extents_.upper_bound(pos);
    if (it != extents_.begin()) {
      const WbExtent& e = std::prev(it)->second;
      if (pos < e.offset + e.length) {
        map->offset = e.offset;
        map->length = static_cast<uint64_t>(e.length);
        map->type = e.type;
        map->addr = e.addr;
        map->flags = e.flags;
        return;
      }
    }
    // Identity mapping up to the next extent.
    const int64_t next = it != extents_.end() ? it->first : (int64_t{1} << 40);
    map->offset = pos;
    map->length = static_cast<uint64_t>(next - pos);
    map->type = Iomap::Type::kMapped;
    map->addr = base_ + static_cast<uint64_t>(pos);
  }
  // Unwritten -> mapped for [off, off + len) (whole extents in the tests).
  void ConvertLocked(int64_t off, int64_t len)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (auto& [start, e] : extents_) {
      if (e.type == Iomap::Type::kUnwritten && e.offset < off + len &&
          off < e.offset + e.length) {
        e.type = Iomap::Type::kMapped;
      }
    }
  }

  block::Device* const dev_;
  const uint64_t base_;
  Inode inode_;
  base::Mutex mu_{base::LockRank::kLeaf};
  std::map<int64_t, WbExtent> extents_ ABSL_GUARDED_BY(mu_);
  std::vector<FinishRecord> finished_ ABSL_GUARDED_BY(mu_);
  std::vector<RangeCall> ranges_ ABSL_GUARDED_BY(mu_);
};

}  // namespace testing
}  // namespace iomap

#endif  // IOMAPD_IOMAP_WB_TEST_FS_H_
