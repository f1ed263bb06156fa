#include "iomap/testing/report_fs.h"

#include <algorithm>
#include <cerrno>

#include "iomap/folio.h"
#include "iomap/pagecache.h"

namespace iomap {
namespace testing {

void NullDevice::Submit(block::Bio* bio) {
  bio->result = -EIO;
  if (bio->end_io != nullptr) bio->end_io(bio);
}

void ReportFs::Add(int64_t offset, int64_t length, Iomap::Type type,
                   uint64_t addr, uint32_t flags, block::Device* bdev) {
  ReportExtent e;
  e.offset = offset;
  e.length = length;
  e.type = type;
  e.addr = addr;
  e.flags = flags;
  e.bdev = bdev;
  extents_[offset] = e;
}

ReportExtent ReportFs::Lookup(int64_t pos) const {
  auto it = extents_.upper_bound(pos);
  if (it != extents_.begin()) {
    auto prev = std::prev(it);
    if (pos < prev->second.offset + prev->second.length) return prev->second;
  }
  ReportExtent hole;
  hole.offset = pos;
  hole.length = it == extents_.end() ? INT64_MAX - pos : it->first - pos;
  return hole;
}

int ReportFs::IomapBegin(Inode* inode, int64_t pos, int64_t len, unsigned flags,
                         Iomap* iomap, Iomap* srcmap) {
  (void)inode, (void)srcmap;
  const int call = begin_calls();
  begin_flags.push_back(flags);
  if (call == fail_call) return fail_error;
  ReportExtent e = Lookup(pos);
  int64_t start = e.offset;
  int64_t end = e.offset + e.length;
  if (trim_to_request) {
    const int64_t mask = (int64_t{1} << blkbits_) - 1;
    const int64_t req_start = pos & ~mask;
    const int64_t req_end =
        len > INT64_MAX - pos - mask ? INT64_MAX : (pos + len + mask) & ~mask;
    start = std::max(start, req_start);
    end = std::min(end, req_end);
  }
  iomap->offset = start;
  iomap->length = static_cast<uint64_t>(end - start);
  iomap->type = e.type;
  iomap->flags = e.flags;
  iomap->addr = e.addr == kNullAddr ? kNullAddr : e.addr + (start - e.offset);
  iomap->bdev = e.bdev != nullptr ? e.bdev : bdev_;
  return 0;
}

int CacheFolio(Inode* inode, int64_t pos, unsigned order, size_t up_off,
               size_t up_len, bool dirty) {
  Folio* folio = nullptr;
  int ret =
      inode->mapping()->AddNewFolio(pos >> kPageShift, order, kFgpLock, &folio);
  if (ret < 0) return ret;
  if (up_len != 0) {
    folio->AttachState();
    folio->SetRangeUptodate(up_off, up_len);
    if (dirty) {
      folio->SetRangeDirty(up_off, up_len);
      folio->MarkDirtyFlag();
    }
  }
  folio->Unlock();
  folio->Put();
  return 0;
}

}  // namespace testing
}  // namespace iomap
