// Direct I/O engine (see direct_io.h and docs/iomap.md, "Direct I/O").
#include "iomap/direct_io.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "base/mutex.h"
#include "block/device.h"
#include "iomap/buffered_io.h"
#include "iomap/folio.h"
#include "iomap/iter.h"
#include "iomap/pagecache.h"

namespace iomap {
namespace {

struct AtomicStats {
  std::atomic<uint64_t> bios{0};
  std::atomic<uint64_t> bio_bytes{0};
  std::atomic<uint64_t> zero_bios{0};
  std::atomic<uint64_t> zeroed_bytes{0};
  std::atomic<uint64_t> max_inflight{0};
};

AtomicStats& Stats() {
  static AtomicStats* stats = new AtomicStats;
  return *stats;
}

void NoteInflight(uint64_t n) {
  std::atomic<uint64_t>& m = Stats().max_inflight;
  uint64_t cur = m.load();
  while (n > cur && !m.compare_exchange_weak(cur, n)) {
  }
}

// The source of iomap_dio_zero: one read-only block of zeroes (the largest
// filesystem block, 64 KiB), aligned for any device.
constexpr size_t kZeroBytes = size_t{1} << 16;
uint8_t* ZeroBlock() {
  static uint8_t* zero = [] {
    block::AlignedBuffer b = block::AllocAligned(kZeroBytes);
    std::memset(b.get(), 0, kZeroBytes);
    return b.release();
  }();
  return zero;
}

// struct iomap_dio: the state of one request while its bios are in flight.
class Dio {
 public:
  Dio(Inode* inode, const DioRequest& req, IomapDioOps* dops)
      : inode_(inode), req_(req), dops_(dops) {}
  Dio(const Dio&) = delete;
  Dio& operator=(const Dio&) = delete;

  const DioRequest& req() const { return req_; }
  Inode* inode() const { return inode_; }
  // Bytes transferred or zero-filled so far (dio->size).
  uint64_t size = 0;
  // IomapDioOps::kDio* seen so far.
  unsigned flags = 0;

  // The bytes of the caller's buffer at `buf_off` usable before a fault.
  size_t Usable(size_t buf_off, size_t want) const {
    if (buf_off >= req_.fault_at) return 0;
    return std::min(want, req_.fault_at - buf_off);
  }

  // Submits a bio of `len` bytes at device byte `dev_addr` over `mem`
  // (throttled to kDioMaxInflight). `file_offset` is for SubmitIo.
  void Submit(const IomapIter& iter, block::Device* dev, block::BioOp op,
              uint32_t bio_flags, uint64_t dev_addr, uint8_t* mem, size_t len,
              int64_t file_offset);
  // Waits for every bio; returns the first bio error (0 if none).
  int WaitAll();

 private:
  static void EndBio(block::Bio* bio);

  Inode* const inode_;
  const DioRequest& req_;
  IomapDioOps* const dops_;
  std::vector<std::unique_ptr<block::Bio>> bios_;  // owned until WaitAll
  base::Mutex mu_{base::LockRank::kLeaf};
  base::CondVar cv_;
  int inflight_ ABSL_GUARDED_BY(mu_) = 0;
  int error_ ABSL_GUARDED_BY(mu_) = 0;
};

void Dio::EndBio(block::Bio* bio) {
  Dio* dio = static_cast<Dio*>(bio->private_data);
  base::MutexLock l(&dio->mu_);
  if (bio->result < 0 && dio->error_ == 0)
    dio->error_ = static_cast<int>(bio->result);
  dio->inflight_--;
  dio->cv_.SignalAll();
}

void Dio::Submit(const IomapIter& iter, block::Device* dev, block::BioOp op,
                 uint32_t bio_flags, uint64_t dev_addr, uint8_t* mem,
                 size_t len, int64_t file_offset) {
  auto owned = std::make_unique<block::Bio>();
  block::Bio* bio = owned.get();
  bio->op = op;
  bio->flags = bio_flags | block::kBioSync;
  bio->offset = dev_addr;
  bio->AddSegment(mem, len);
  bio->end_io = &Dio::EndBio;
  bio->private_data = this;
  bios_.push_back(std::move(owned));
  {
    base::MutexLock l(&mu_);
    while (inflight_ >= kDioMaxInflight) cv_.Wait(&mu_);
    inflight_++;
    NoteInflight(static_cast<uint64_t>(inflight_));
  }
  if (dops_ != nullptr && dops_->HasSubmitIo()) {
    dops_->SubmitIo(iter, bio, file_offset);
  } else {
    dev->Submit(bio);
  }
}

int Dio::WaitAll() {
  int error;
  {
    base::MutexLock l(&mu_);
    while (inflight_ > 0) cv_.Wait(&mu_);
    error = error_;
  }
  bios_.clear();
  return error;
}

block::Device* DeviceOf(const Iomap& map, Inode* inode) {
  return map.bdev != nullptr ? map.bdev : inode->bdev();
}

// iomap_dio_hole_iter(): a read of a hole or unwritten range zero-fills.
int HoleIter(IomapIter& iter, Dio* dio) {
  const size_t off = static_cast<size_t>(iter.pos() - dio->req().pos);
  const size_t n = dio->Usable(off, iter.Length());
  if (n == 0) return -EFAULT;
  std::memset(dio->req().buf + off, 0, n);
  Stats().zeroed_bytes += n;
  dio->size += n;
  return iter.Advance(n);
}

// iomap_dio_inline_iter(): copies to or from the inline data.
int InlineIter(IomapIter& iter, Dio* dio) {
  const Iomap& map = iter.iomap;
  if (map.inline_data == nullptr) return -EIO;
  const int64_t pos = iter.pos();
  const size_t off = static_cast<size_t>(pos - dio->req().pos);
  const size_t n = dio->Usable(off, iter.Length());
  if (n == 0) return -EFAULT;
  uint8_t* data = static_cast<uint8_t*>(map.inline_data) + (pos - map.offset);
  Inode* inode = dio->inode();
  if (dio->req().write) {
    const int64_t size = inode->i_size_read();
    if (pos > size) {
      std::memset(data - (pos - std::max(size, map.offset)), 0,
                  static_cast<size_t>(pos - std::max(size, map.offset)));
    }
    std::memcpy(data, dio->req().buf + off, n);
    if (pos + static_cast<int64_t>(n) > size)
      inode->i_size_write(pos + static_cast<int64_t>(n));
  } else {
    std::memcpy(dio->req().buf + off, data, n);
  }
  dio->size += n;
  return iter.Advance(n);
}

// iomap_dio_zero(): writes zeroes over [pos, pos + len) of the mapping.
void ZeroIter(const IomapIter& iter, Dio* dio, int64_t pos, size_t len) {
  const Iomap& map = iter.iomap;
  Stats().zero_bios++;
  dio->Submit(iter, DeviceOf(map, dio->inode()), block::BioOp::kWrite, 0,
              map.DeviceAddr(pos), ZeroBlock(), len, pos);
}

// The largest bio of this device, a multiple of its logical block size.
size_t MaxBioBytes(block::Device* dev) {
  const block::DeviceLimits& lim = dev->limits();
  const uint64_t lbs = std::max<uint32_t>(lim.logical_block_size, 1);
  return static_cast<size_t>(std::max<uint64_t>(lim.max_io_bytes / lbs, 1) *
                             lbs);
}

// Marks the request for completion work; returns whether the mapping
// needs sub-block zeroing around the data (UNWRITTEN or NEW).
bool NoteWriteMapping(const Iomap& map, Dio* dio) {
  bool zeroout = false;
  if (map.type == Iomap::Type::kUnwritten) {
    dio->flags |= IomapDioOps::kDioUnwritten;
    zeroout = true;
  }
  if (map.flags & kShared) dio->flags |= IomapDioOps::kDioCow;
  if (map.flags & kNew) zeroout = true;
  return zeroout;
}

// The bio loop of iomap_dio_bio_iter(): submits [pos, pos + length) in
// bios of at most the device's maximum. Returns the bytes submitted; *err
// is -EFAULT when the buffer faulted first.
size_t SubmitData(const IomapIter& iter, Dio* dio, block::Device* dev,
                  uint32_t bio_flags, size_t length, int* err) {
  const DioRequest& req = dio->req();
  const size_t max_bio = MaxBioBytes(dev);
  const size_t lbs = dev->limits().logical_block_size;
  const block::BioOp op =
      req.write ? block::BioOp::kWrite : block::BioOp::kRead;
  size_t copied = 0;
  while (copied < length) {
    const int64_t pos = iter.pos() + static_cast<int64_t>(copied);
    const size_t off = static_cast<size_t>(pos - req.pos);
    size_t n = dio->Usable(off, std::min(length - copied, max_bio));
    n -= n % lbs;
    if (n == 0) {
      *err = -EFAULT;
      break;
    }
    dio->Submit(iter, dev, op, bio_flags, iter.iomap.DeviceAddr(pos),
                req.buf + off, n, pos);
    Stats().bios++;
    Stats().bio_bytes += n;
    dio->size += n;
    copied += n;
  }
  return copied;
}

// kAtomic: the whole rest of the request in one mapping and one bio.
int CheckAtomic(const IomapIter& iter, Dio* dio, block::Device* dev,
                size_t length) {
  if (length != iter.len()) return -EINVAL;
  if (length > MaxBioBytes(dev)) return -EINVAL;
  const size_t off = static_cast<size_t>(iter.pos() - dio->req().pos);
  if (dio->Usable(off, length) != length) return -EINVAL;
  return 0;
}

// iomap_dio_bio_iter(): bios for a MAPPED mapping, or an UNWRITTEN one
// being written.
int BioIter(IomapIter& iter, Dio* dio) {
  const Iomap& map = iter.iomap;
  if (map.addr == kNullAddr) return -EIO;
  block::Device* dev = DeviceOf(map, dio->inode());
  if (dev == nullptr) return -EIO;
  const DioRequest& req = dio->req();
  const size_t length = iter.Length();
  const int64_t bs = dio->inode()->block_size();
  uint32_t bio_flags = 0;
  if (iter.flags() & kAtomic) {
    if (int r = CheckAtomic(iter, dio, dev, length); r != 0) return r;
    if (map.flags & kAtomicBio) bio_flags |= block::kBioAtomic;
  }
  const bool zeroout = req.write && NoteWriteMapping(map, dio);
  const int64_t pos = iter.pos();
  if (zeroout && (pos & (bs - 1)) != 0 && (pos & ~(bs - 1)) >= map.offset)
    ZeroIter(iter, dio, pos & ~(bs - 1), static_cast<size_t>(pos & (bs - 1)));
  int err = 0;
  const size_t copied = SubmitData(iter, dio, dev, bio_flags, length, &err);
  // The tail of the last block: zeroed for fresh blocks, and past EOF so
  // that mmap reads of the EOF block never see stale data.
  const int64_t end = pos + static_cast<int64_t>(copied);
  if ((zeroout || (req.write && end >= dio->inode()->i_size_read())) &&
      (end & (bs - 1)) != 0 && end < map.End()) {
    ZeroIter(iter, dio, end, static_cast<size_t>(bs - (end & (bs - 1))));
  }
  if (copied > 0) return iter.Advance(copied);
  return err;
}

// iomap_dio_iter(): one mapping.
int DioIter(IomapIter& iter, Dio* dio) {
  const bool write = dio->req().write;
  switch (iter.iomap.type) {
    case Iomap::Type::kHole:
      return write ? -EIO : HoleIter(iter, dio);
    case Iomap::Type::kUnwritten:
      return write ? BioIter(iter, dio) : HoleIter(iter, dio);
    case Iomap::Type::kMapped:
      return BioIter(iter, dio);
    case Iomap::Type::kInline:
      return InlineIter(iter, dio);
    case Iomap::Type::kDelalloc:
      // Direct I/O never sees delalloc: the range was flushed first.
      std::fprintf(stderr,
                   "iomap: direct I/O collision with buffered writes "
                   "(inode %llu)\n",
                   static_cast<unsigned long long>(iter.inode()->ino()));
      return -EIO;
  }
  return -EIO;
}

// kiocb_write_and_wait(): a read first writes back the dirty cache.
int FlushForRead(Inode* inode, const DioRequest& req) {
  const int64_t end = req.pos + static_cast<int64_t>(req.len);
  if (req.flags & kNowait)
    return inode->mapping()->RangeNeedsWriteback(req.pos, end) ? -EAGAIN : 0;
  return FilemapWriteAndWaitRange(inode, req.pos, end - 1);
}

// kiocb_invalidate_pages(): a write flushes and drops the cached range.
int InvalidateForWrite(Inode* inode, const DioRequest& req) {
  const int64_t last = req.pos + static_cast<int64_t>(req.len) - 1;
  if (req.flags & kNowait) {
    if (!inode->mapping()
             ->FoliosInRange(req.pos >> kPageShift, last >> kPageShift)
             .empty())
      return -EAGAIN;
  } else if (int r = FilemapWriteAndWaitRange(inode, req.pos, last); r != 0) {
    return r;
  }
  return InvalidateInodePages2(inode, req.pos, last);
}

// The checks and cache work before the walk. Returns 0, 1 (nothing to do:
// a read at or past EOF) or -errno; sets the IomapBegin flags.
int Prepare(Inode* inode, const DioRequest& req, int64_t isize,
            unsigned* iflags) {
  block::Device* dev = inode->bdev();
  if (req.pos < 0 || dev == nullptr) return -EINVAL;
  const uint64_t align = (req.dio_flags & kDioFsblockAligned)
                             ? inode->block_size()
                             : dev->limits().logical_block_size;
  if (((static_cast<uint64_t>(req.pos) | req.len) & (align - 1)) != 0)
    return -EINVAL;
  const uint64_t dma = std::max<uint32_t>(dev->limits().dma_alignment, 1);
  if (reinterpret_cast<uintptr_t>(req.buf) % dma != 0) return -EINVAL;
  *iflags = kDirect | (req.flags & kNowait);
  if (!req.write) {
    if (req.pos >= isize) return 1;
    return FlushForRead(inode, req);
  }
  *iflags |= kWrite | (req.flags & kAtomic);
  if (req.dio_flags & kDioOverwriteOnly) {
    if (req.pos >= isize || req.pos + static_cast<int64_t>(req.len) > isize)
      return -EAGAIN;
    *iflags |= kOverwriteOnly;
  }
  int r = InvalidateForWrite(inode, req);
  if (r != 0 && r != -EAGAIN) r = (req.flags & kAtomic) ? -EAGAIN : -ENOTBLK;
  return r;
}

// The bytes a read walks: up to EOF rounded up to the alignment unit.
uint64_t WalkLength(Inode* inode, const DioRequest& req, int64_t isize) {
  if (req.write) return req.len;
  const int64_t unit = std::max<int64_t>(
      inode->bdev()->limits().logical_block_size, inode->block_size());
  const int64_t eof = (isize + unit - 1) / unit * unit;
  return std::min<uint64_t>(req.len, static_cast<uint64_t>(eof - req.pos));
}

// iomap_dio_complete(): EndIo, the result, i_size and the cache.
int64_t Complete(Inode* inode, const DioRequest& req, IomapDioOps* dops,
                 const Dio& dio, int error, int64_t isize) {
  int r = error;
  if (dops != nullptr)
    r = dops->EndIo(inode, req.pos, static_cast<int64_t>(dio.size), error,
                    dio.flags);
  int64_t ret = r;
  if (r == 0) {
    ret = static_cast<int64_t>(dio.size);
    if (!req.write && req.pos + ret > isize) ret = isize - req.pos;
  }
  if (req.write && dio.size > 0) {
    const int64_t end = req.pos + static_cast<int64_t>(dio.size);
    if (r == 0 && end > inode->i_size_read()) inode->i_size_write(end);
    // Pages cached meanwhile (readahead, a store through a mapping) hold
    // old data: drop them again; a failure leaves them (as the kernel).
    InvalidateInodePages2(inode, req.pos, end - 1);
  }
  if (ret > 0) ret += static_cast<int64_t>(req.done_before);
  return ret;
}

}  // namespace

DioStats GetDioStats() {
  DioStats s;
  s.bios = Stats().bios.load();
  s.bio_bytes = Stats().bio_bytes.load();
  s.zero_bios = Stats().zero_bios.load();
  s.zeroed_bytes = Stats().zeroed_bytes.load();
  s.max_inflight = Stats().max_inflight.load();
  return s;
}

void ResetDioStats() {
  Stats().bios = 0;
  Stats().bio_bytes = 0;
  Stats().zero_bios = 0;
  Stats().zeroed_bytes = 0;
  Stats().max_inflight = 0;
}

int InvalidateInodePages2(Inode* inode, int64_t start, int64_t end) {
  if (end < start) return 0;
  Mapping* mapping = inode->mapping();
  int ret = 0;
  for (FolioRef& ref :
       mapping->FoliosInRange(start >> kPageShift, end >> kPageShift)) {
    Folio* folio = ref.get();
    folio->Lock();
    if (folio->mapping() == mapping) {
      folio->WaitWriteback();
      if (folio->Dirty() || !Mapping::ReleaseFolio(folio)) {
        ret = -EBUSY;
      } else {
        mapping->Remove(folio);
      }
    }
    folio->Unlock();
  }
  return ret;
}

int64_t DioRw(Inode* inode, const DioRequest& req, IomapOps& ops,
              IomapDioOps* dops) {
  if (req.len == 0) return 0;
  const int64_t isize = inode->i_size_read();
  unsigned iflags = 0;
  int r = Prepare(inode, req, isize, &iflags);
  if (r == 1) return 0;
  if (r != 0) return r;
  Dio dio(inode, req, dops);
  IomapIter iter(inode, req.pos, WalkLength(inode, req, isize), iflags);
  int ret;
  while ((ret = iter.Next(ops)) > 0) iter.status = DioIter(iter, &dio);
  // A fault after progress with kDioPartial, and -ENOTBLK from the
  // filesystem, end the request with the bytes done so far.
  if (ret == -EFAULT && dio.size > 0 && (req.dio_flags & kDioPartial)) ret = 0;
  if (ret == -ENOTBLK) ret = 0;
  const int bio_error = dio.WaitAll();
  const int error = ret < 0 ? ret : bio_error;
  return Complete(inode, req, dops, dio, error, isize);
}

}  // namespace iomap
