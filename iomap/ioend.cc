#include "iomap/ioend.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "iomap/pagecache.h"
#include "iomap/writeback.h"

namespace iomap {

namespace {

block::Device* MapDevice(const WritepageCtx& wpc) {
  return wpc.iomap.bdev != nullptr ? wpc.iomap.bdev : wpc.inode->bdev();
}

// iomap_max_bio_size(): the largest bio the device takes.
uint64_t MaxBioSize(const WritepageCtx& wpc) {
  block::Device* dev = MapDevice(wpc);
  return dev != nullptr ? dev->limits().max_io_bytes : uint64_t{1} << 20;
}

bool CanAddToIoend(const WritepageCtx& wpc, int64_t pos, unsigned map_len,
                   uint16_t ioend_flags) {
  const Ioend& ioend = *wpc.ioend;
  if (ioend.bio.len + map_len > MaxBioSize(wpc)) return false;
  if (ioend_flags & kIoendBoundary) return false;
  if ((ioend_flags & kIoendNomergeFlags) !=
      (ioend.flags & kIoendNomergeFlags)) {
    return false;
  }
  if (pos != ioend.io_offset + static_cast<int64_t>(ioend.io_size)) {
    return false;
  }
  if (!(wpc.iomap.flags & kAnonWrite) &&
      wpc.iomap.Sector(pos) != ioend.BioEndSector()) {
    return false;
  }
  // Bounded ioends keep completion latency (and folio loops) short.
  if (wpc.nr_folios >= kIoendBatchSize) return false;
  return true;
}

Ioend* AllocIoend(WritepageCtx* wpc, int64_t pos, uint16_t ioend_flags) {
  const bool anon = wpc->iomap.flags & kAnonWrite;
  Ioend* ioend = NewIoend(wpc->inode, MapDevice(*wpc), pos,
                          anon ? 0 : wpc->iomap.DeviceAddr(pos), ioend_flags);
  if (wpc->wbc != nullptr && wpc->wbc->sync_mode == SyncMode::kAll) {
    ioend->bio.flags |= block::kBioSync;
  }
  wpc->nr_folios = 0;
  return ioend;
}

// bio_add_folio(): appends [poff, poff + len) of the folio to the bio,
// extending the last iovec when it is the contiguous same folio. False when
// the bio has no room for another segment.
bool BioAddFolio(Ioend* ioend, Folio* folio, unsigned len, size_t poff) {
  block::Bio& bio = ioend->bio;
  uint8_t* base = folio->data() + poff;
  if (!ioend->folios.empty()) {
    IoendFolio& last = ioend->folios.back();
    struct iovec& iov = bio.iov.back();
    if (last.folio == folio && last.offset + last.len == poff &&
        static_cast<uint8_t*>(iov.iov_base) + iov.iov_len == base) {
      last.len += len;
      iov.iov_len += len;
      bio.len += len;
      return true;
    }
  }
  const block::Device* dev = ioend->bdev;
  const uint32_t max_segments =
      dev != nullptr ? dev->limits().max_segments : 256;
  if (bio.iov.size() >= max_segments) return false;
  folio->Get();  // dropped when its writeback ends
  ioend->folios.push_back({folio, static_cast<uint32_t>(poff), len});
  bio.AddSegment(base, len);
  return true;
}

uint16_t IoendFlagsFor(const WritepageCtx& wpc, Folio* folio, int64_t pos) {
  uint16_t flags = 0;
  if (wpc.iomap.type == Iomap::Type::kUnwritten) flags |= kIoendUnwritten;
  if (wpc.iomap.flags & kShared) flags |= kIoendShared;
  if (folio->Dropbehind()) flags |= kIoendDontcache;
  if (pos == wpc.iomap.offset && (wpc.iomap.flags & kBoundary)) {
    flags |= kIoendBoundary;
  }
  return flags;
}

// The default completion: finish in the device's completion thread.
void WritebackEndBio(block::Bio* bio) {
  auto* ioend = static_cast<Ioend*>(bio->private_data);
  ioend->error = bio->result < 0 ? static_cast<int>(bio->result) : 0;
  FinishIoends(ioend, 0);
}

// folio_end_dropbehind(): a DONTCACHE folio leaves the cache once clean.
void DropBehind(Folio* folio) {
  Mapping* mapping = folio->mapping();
  if (mapping == nullptr || !folio->Dropbehind() || !folio->TryLock()) return;
  if (folio->mapping() == mapping && !folio->Dirty() && !folio->Writeback()) {
    mapping->TryRemoveIdle(folio);
  }
  folio->Unlock();
}

// iomap_finish_ioend_buffered_write() for one ioend; frees it.
void FinishOneIoend(Ioend* ioend, int error) {
  if (error != 0 && ioend->error == 0) ioend->error = error;
  if (ioend->error != 0) {
    Mapping* mapping = ioend->inode->mapping();
    MappingSetError(mapping, ioend->error);
    std::fprintf(stderr,
                 "iomap: writeback error %d on inode %llu, offset %lld, "
                 "sector %llu\n",
                 ioend->error,
                 static_cast<unsigned long long>(ioend->inode->ino()),
                 static_cast<long long>(ioend->io_offset),
                 static_cast<unsigned long long>(ioend->io_sector));
  }
  const bool dontcache = ioend->flags & kIoendDontcache;
  for (const IoendFolio& f : ioend->folios) {
    FinishFolioWrite(f.folio, f.len);
    if (dontcache) DropBehind(f.folio);
    f.folio->Put();
  }
  delete ioend;
}

}  // namespace

Ioend* NewIoend(Inode* inode, block::Device* bdev, int64_t pos,
                uint64_t dev_addr, uint16_t flags) {
  auto* ioend = new Ioend;
  ioend->bio.op = block::BioOp::kWrite;
  ioend->bio.offset = dev_addr;
  ioend->bio.private_data = ioend;
  ioend->inode = inode;
  ioend->bdev = bdev;
  ioend->flags = flags;
  ioend->io_offset = pos;
  ioend->io_sector = dev_addr >> 9;
  return ioend;
}

int64_t AddToIoend(WritepageCtx* wpc, Folio* folio, int64_t pos,
                   int64_t end_pos, unsigned dirty_len) {
  const size_t poff = static_cast<size_t>(pos - folio->pos());
  const unsigned map_len = static_cast<unsigned>(
      std::min<int64_t>(dirty_len, wpc->iomap.End() - pos));
  switch (wpc->iomap.type) {
    case Iomap::Type::kUnwritten:
    case Iomap::Type::kMapped:
      break;
    case Iomap::Type::kHole:
      return map_len;
    default:
      std::fprintf(stderr, "iomap: writeback of a %s mapping\n",
                   IomapTypeName(wpc->iomap.type));
      return -EIO;
  }
  if (map_len == 0) return -EIO;  // the mapping does not cover pos
  const uint16_t flags = IoendFlagsFor(*wpc, folio, pos);
  bool need_new =
      wpc->ioend == nullptr || !CanAddToIoend(*wpc, pos, map_len, flags);
  for (;;) {
    if (need_new) {
      if (wpc->ioend != nullptr) {
        int error = wpc->ops->WritebackSubmit(wpc, 0);
        if (error != 0) return error;
      }
      wpc->ioend = AllocIoend(wpc, pos, flags);
    }
    if (BioAddFolio(wpc->ioend, folio, map_len, poff)) break;
    need_new = true;
  }
  StartFolioWrite(folio, map_len);
  Ioend* ioend = wpc->ioend;
  ioend->io_size += map_len;
  // Byte-accurate on-disk size updates at completion: clamp to EOF.
  if (ioend->io_offset + static_cast<int64_t>(ioend->io_size) > end_pos) {
    ioend->io_size = static_cast<uint64_t>(end_pos - ioend->io_offset);
  }
  return map_len;
}

int IoendWritebackSubmit(WritepageCtx* wpc, int error) {
  Ioend* ioend = wpc->ioend;
  if (ioend == nullptr) return error;
  wpc->ioend = nullptr;
  if (ioend->bio.end_io == nullptr) ioend->bio.end_io = WritebackEndBio;
  if (wpc->iomap.flags & kAnonWrite) error = -EIO;  // needs its own submit
  if (error != 0 || ioend->bdev == nullptr) {
    if (error == 0) error = -EIO;
    ioend->bio.result = error;
    ioend->bio.end_io(&ioend->bio);
    return error;
  }
  ioend->bdev->Submit(&ioend->bio);
  return 0;
}

void StartFolioWrite(Folio* folio, size_t len) {
  FolioState* ifs = folio->state();
  if (ifs != nullptr) ifs->write_bytes_pending.fetch_add(len);
}

void FinishFolioWrite(Folio* folio, size_t len) {
  FolioState* ifs = folio->state();
  if (ifs == nullptr) {
    folio->EndWriteback();
    return;
  }
  const int64_t left =
      ifs->write_bytes_pending.fetch_sub(static_cast<int64_t>(len)) -
      static_cast<int64_t>(len);
  if (left < 0) {
    std::fprintf(stderr, "iomap: write_bytes_pending underflow\n");
    std::abort();
  }
  if (left == 0) folio->EndWriteback();
}

void SortIoends(IoendList* list) {
  std::stable_sort(list->begin(), list->end(),
                   [](const Ioend* a, const Ioend* b) {
                     return a->io_offset < b->io_offset;
                   });
}

bool IoendCanMerge(const Ioend& ioend, const Ioend& next) {
  // Reads have no completion work worth batching.
  if (ioend.bio.op == block::BioOp::kRead ||
      next.bio.op == block::BioOp::kRead) {
    return false;
  }
  if (ioend.error != next.error) return false;
  if (next.flags & kIoendBoundary) return false;
  if ((ioend.flags & kIoendNomergeFlags) != (next.flags & kIoendNomergeFlags)) {
    return false;
  }
  if (ioend.io_offset + static_cast<int64_t>(ioend.io_size) != next.io_offset) {
    return false;
  }
  // Physically discontiguous ioends gain nothing from a logical merge.
  if (ioend.io_sector + (ioend.io_size >> 9) != next.io_sector) return false;
  return true;
}

void IoendTryMerge(Ioend* ioend, IoendList* more) {
  while (!more->empty() && IoendCanMerge(*ioend, *more->front())) {
    Ioend* next = more->front();
    more->pop_front();
    ioend->merged.push_back(next);
    ioend->io_size += next->io_size;
  }
}

void FinishIoends(Ioend* ioend, int error) {
  std::vector<Ioend*> merged;
  merged.swap(ioend->merged);
  FinishOneIoend(ioend, error);
  for (Ioend* next : merged) FinishOneIoend(next, error);
}

// ---------------------------------------------------------------------------
// IoendCompletionQueue

bool IoendCompletionOps::NeedsWorkqueue(const Ioend& ioend) const {
  return ioend.flags & (kIoendUnwritten | kIoendShared | kIoendDontcache);
}

IoendCompletionQueue::IoendCompletionQueue(
    IoendCompletionOps* ops, const IoendCompletionQueueOptions& options)
    : ops_(ops) {
  for (int i = 0; i < std::max(1, options.threads); i++) {
    threads_.emplace_back([this] { Worker(); });
  }
}

IoendCompletionQueue::~IoendCompletionQueue() {
  Flush();
  {
    base::MutexLock l(&mu_);
    stop_ = true;
  }
  work_cv_.SignalAll();
  for (std::thread& t : threads_) t.join();
}

bool IoendCompletionQueue::Attach(Ioend* ioend) {
  if (!ops_->NeedsWorkqueue(*ioend)) return false;
  ioend->completion_queue = this;
  ioend->bio.end_io = EndBio;
  return true;
}

void IoendCompletionQueue::EndBio(block::Bio* bio) {
  auto* ioend = static_cast<Ioend*>(bio->private_data);
  ioend->error = bio->result < 0 ? static_cast<int>(bio->result) : 0;
  ioend->completion_queue->Queue(ioend);
}

void IoendCompletionQueue::Queue(Ioend* ioend) {
  // Signal under the lock: once it is released, Flush() may return and the
  // queue may be destroyed.
  base::MutexLock l(&mu_);
  InodeWork& work = inodes_[ioend->inode];
  work.pending.push_back(ioend);
  outstanding_++;
  if (work.queued || work.running) return;
  work.queued = true;
  runnable_.push_back(ioend->inode);
  work_cv_.Signal();
}

void IoendCompletionQueue::Worker() {
  base::MutexLock l(&mu_);
  for (;;) {
    while (runnable_.empty() && !stop_) work_cv_.Wait(&mu_);
    if (runnable_.empty()) return;
    Inode* inode = runnable_.front();
    runnable_.pop_front();
    InodeWork& work = inodes_[inode];
    work.queued = false;
    work.running = true;
    IoendList list;
    list.swap(work.pending);
    const size_t n = list.size();
    mu_.Unlock();
    ProcessBatch(inode, std::move(list));
    mu_.Lock();
    InodeWork& again = inodes_[inode];
    again.running = false;
    outstanding_ -= n;
    finished_ += n;
    if (!again.pending.empty()) {
      again.queued = true;
      runnable_.push_back(inode);
      work_cv_.Signal();
    } else {
      inodes_.erase(inode);
    }
    if (outstanding_ == 0) idle_cv_.SignalAll();
  }
}

// xfs_end_io(): sort, merge, finish.
void IoendCompletionQueue::ProcessBatch(Inode* inode, IoendList list) {
  SortIoends(&list);
  while (!list.empty()) {
    Ioend* ioend = list.front();
    list.pop_front();
    IoendTryMerge(ioend, &list);
    if (!ioend->merged.empty()) {
      base::MutexLock l(&mu_);
      merges_ += ioend->merged.size();
    }
    const int fs_error = ops_->FinishIoend(inode, ioend);
    FinishIoends(ioend, ioend->error != 0 ? ioend->error : fs_error);
  }
}

void IoendCompletionQueue::Flush() {
  base::MutexLock l(&mu_);
  while (outstanding_ != 0) idle_cv_.Wait(&mu_);
}

uint64_t IoendCompletionQueue::finished() const {
  base::MutexLock l(&mu_);
  return finished_;
}

uint64_t IoendCompletionQueue::merges() const {
  base::MutexLock l(&mu_);
  return merges_;
}

}  // namespace iomap
