#include "fs/volume.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errno.h"
#include "fs/checkpoint.h"
#include "fs/codec.h"
#include "fs/data_ops.h"
#include "fs/file.h"
#include "fs/format.h"
#include "fs/ns_volume.h"

namespace fs {
namespace {

void EncodeFork(uint64_t ino, const ExtentMap& map, Encoder* e) {
  uint64_t n = 0;
  map.ForEach([&](const Extent& x) { n += x.allocated() ? 1 : 0; });
  e->U64(ino);
  e->U64(n);
  map.ForEach([&](const Extent& x) {
    if (!x.allocated()) return;  // delalloc is memory-only
    e->U64(x.file_off);
    e->U64(x.len);
    e->U64(x.dev_block);
    e->U16(static_cast<uint16_t>(x.state));
  });
}

// The free space of a checkpoint: the allocator's free extents plus the
// COW staging blocks (`staged`, disjoint from them), which are not
// journaled and so must be free after a crash.
std::string FreeSpaceSection(const Allocator& a,
                             std::vector<BlockRange> staged = {}) {
  a.ForEachFree([&](const BlockRange& r) { staged.push_back(r); });
  std::sort(staged.begin(), staged.end(),
            [](const BlockRange& x, const BlockRange& y) {
              return x.start < y.start;
            });
  std::vector<BlockRange> merged;
  for (const BlockRange& r : staged) {
    if (!merged.empty() && merged.back().end() == r.start) {
      merged.back().len += r.len;
    } else {
      merged.push_back(r);
    }
  }
  std::string out;
  Encoder e(&out);
  e.U64(a.first_block());
  e.U64(a.end_block());
  e.U64(merged.size());
  for (const BlockRange& r : merged) {
    e.U64(r.start);
    e.U64(r.len);
  }
  return out;
}

std::string RefcountSection(const RefcountIndex& r) {
  std::string out;
  Encoder e(&out);
  e.U64(r.NumRecords());
  r.ForEach([&](const RefcountRecord& rec) {
    e.U64(rec.start);
    e.U64(rec.len);
    e.U64(rec.count);
  });
  return out;
}

bool ValidState(uint16_t s) {
  return s == static_cast<uint16_t>(ExtentState::kWritten) ||
         s == static_cast<uint16_t>(ExtentState::kUnwritten);
}

}  // namespace

Volume::Volume(block::Device& dev, const VolumeOptions& options)
    : dev_(dev),
      options_(options),
      cache_(options.cache != nullptr ? options.cache
                                      : iomap::PageCache::Global()) {}

absl::StatusOr<Superblock> Volume::Format(block::Device& dev,
                                          const LayoutOptions& layout) {
  absl::StatusOr<Superblock> sb = MakeLayout(layout);
  if (!sb.ok()) return sb.status();
  NamespaceOptions nso;
  nso.max_inodes = sb->max_inodes;
  Namespace ns(nso, nullptr);
  if (int err = ns.InitRoot(0755); err < 0)
    return base::ErrnoStatus(err, "mkfs: creating the root directory failed");
  Allocator alloc(sb->data_start, sb->block_count, Allocator::Init::kAllFree);
  RefcountIndex refc;
  std::string payload = NamespacePayload(ns), ext;
  Encoder(&ext).U64(0);
  AppendSection(&payload, format::kSectionExtents, ext);
  AppendSection(&payload, format::kSectionFreeSpace, FreeSpaceSection(alloc));
  AppendSection(&payload, format::kSectionRefcount, RefcountSection(refc));
  if (absl::Status s = MetaStore::Format(dev, *sb, payload); !s.ok()) return s;
  return sb;
}

FileData* Volume::Fork(uint64_t ino) {
  base::MutexLock l(&forks_mu_);
  std::unique_ptr<FileData>& fd = forks_[ino];
  if (fd == nullptr) fd = std::make_unique<FileData>();
  return fd.get();
}

std::vector<ForkRef> Volume::ForkRefs() {
  std::vector<ForkRef> refs;
  base::MutexLock l(&forks_mu_);
  for (auto& [ino, fd] : forks_) refs.push_back({ino, false, &fd->data});
  return refs;
}

absl::Status Volume::LoadPayload(absl::string_view payload) {
  absl::StatusOr<std::map<uint32_t, absl::string_view>> sections =
      SplitSections(payload);
  if (!sections.ok()) return sections.status();
  auto it = sections->find(format::kSectionNamespace);
  if (it == sections->end())
    return absl::DataLossError("checkpoint: no namespace section");
  if (absl::Status s = ns_->Load(it->second); !s.ok()) return s;
  auto fs_it = sections->find(format::kSectionFreeSpace);
  if (fs_it == sections->end()) {  // a namespace-only mkfs: all free
    alloc_ = std::make_unique<Allocator>(sb_.data_start, sb_.block_count,
                                         Allocator::Init::kAllFree);
  } else {
    Decoder d(fs_it->second);
    uint64_t first = d.U64(), end = d.U64(), n = d.U64();
    if (!d.ok() || first != sb_.data_start || end != sb_.block_count)
      return absl::DataLossError("checkpoint: free space section malformed");
    alloc_ = std::make_unique<Allocator>(first, end, Allocator::Init::kAllUsed);
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t s = d.U64(), len = d.U64();
      if (!d.ok() || alloc_->Free(s, len) != 0)
        return absl::DataLossError("checkpoint: bad free extent");
    }
  }
  if (auto r = sections->find(format::kSectionRefcount); r != sections->end()) {
    Decoder d(r->second);
    uint64_t n = d.U64();
    for (uint64_t i = 0; i < n && d.ok(); ++i) {
      RefcountRecord rec;
      rec.start = d.U64();
      rec.len = d.U64();
      rec.count = d.U64();
      if (!d.ok() || refc_.Insert(rec) != 0)
        return absl::DataLossError("checkpoint: bad refcount record");
    }
  }
  if (auto x = sections->find(format::kSectionExtents); x != sections->end()) {
    Decoder d(x->second);
    uint64_t forks = d.U64();
    for (uint64_t f = 0; f < forks && d.ok(); ++f) {
      uint64_t ino = d.U64(), n = d.U64();
      FileData* fd = Fork(ino);
      for (uint64_t i = 0; i < n; ++i) {
        Extent e;
        e.file_off = d.U64();
        e.len = d.U64();
        e.dev_block = d.U64();
        uint16_t st = d.U16();
        e.state = static_cast<ExtentState>(st);
        if (!d.ok() || !ValidState(st) || fd->data.Insert(e) != 0)
          return absl::DataLossError(
              absl::StrCat("checkpoint: bad extent of inode ", ino));
      }
    }
    if (!d.ok()) return absl::DataLossError("checkpoint: extents truncated");
  }
  return absl::OkStatus();
}

void Volume::SerializeData(std::string* payload) {
  std::string ext;
  Encoder e(&ext);
  std::vector<std::pair<uint64_t, FileData*>> forks;
  {
    base::MutexLock l(&forks_mu_);
    for (auto& [ino, fd] : forks_) forks.push_back({ino, fd.get()});
  }
  e.U64(forks.size());
  std::vector<BlockRange> staged;
  for (auto& [ino, fd] : forks) {
    base::MutexLock l(&fd->ilock);
    EncodeFork(ino, fd->data, &e);
    fd->cow.ForEach([&](const Extent& x) {
      if (x.allocated()) staged.push_back(x.dev_range());
    });
  }
  AppendSection(payload, format::kSectionExtents, ext);
  AppendSection(payload, format::kSectionFreeSpace,
                FreeSpaceSection(*alloc_, std::move(staged)));
  AppendSection(payload, format::kSectionRefcount, RefcountSection(refc_));
}

absl::Status Volume::Recover(bool read_only, bool allow_damaged_log) {
  MetaCallbacks cb;
  cb.load = [this](absl::string_view p) { return LoadPayload(p); };
  cb.replay = [this](uint64_t, absl::string_view txn) {
    return ns_->ApplyTxn(txn);
  };
  cb.snapshot = [this](std::string* payload) {
    *payload = NamespacePayload(*ns_);
    SerializeData(payload);
  };
  absl::StatusOr<Superblock> sb = ReadSuperblock(dev_, read_only);
  if (!sb.ok()) return sb.status();
  sb_ = *sb;
  NamespaceOptions nso;
  nso.max_inodes = sb_.max_inodes;
  nso.on_free = [](const InodeAttr& a, TxnBuilder* t) {
    std::string body;
    Encoder(&body).U64(a.ino);
    t->Raw(kOpFreeFork, body);
  };
  nso.apply_core_op = [this](uint16_t op, absl::string_view body) {
    return ApplyCoreOp(op, body);
  };
  ns_ = std::make_unique<Namespace>(nso, nullptr);
  MetaStoreOptions mo = options_.meta;
  mo.read_only = read_only;
  mo.allow_damaged_log = allow_damaged_log;
  absl::StatusOr<std::unique_ptr<MetaStore>> store =
      MetaStore::Mount(dev_, mo, cb);
  if (!store.ok()) return store.status();
  store_ = std::move(*store);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Volume>> Volume::Mount(
    block::Device& dev, const VolumeOptions& options) {
  if (options.dax && dev.dax() == nullptr)
    return absl::InvalidArgumentError(absl::StrCat(
        "dax: device ", dev.name(),
        " has no direct-access mapping (open it with block::OpenDaxDevice)"));
  std::unique_ptr<Volume> vol(new Volume(dev, options));
  if (absl::Status s = vol->Recover(options.meta.read_only, false); !s.ok())
    return s;
  std::vector<std::string> problems;
  vol->ns_->Check(&problems);
  SpaceView view{vol->sb_.data_start, vol->sb_.block_count, vol->alloc_.get(),
                 &vol->refc_, vol->ForkRefs()};
  CheckSpace(view, &problems, 10);
  if (!problems.empty())
    return absl::DataLossError(
        absl::StrCat("volume is inconsistent (first problem: ", problems[0],
                     "); run iomapd-fsck"));
  vol->replaying_ = false;
  vol->resv_ = std::make_unique<ReservationCounter>(vol->alloc_.get());
  vol->ops_ = std::make_unique<internal::DataOps>(vol.get());
  iomap::IoendCompletionQueueOptions qo;
  qo.threads = options.completion_threads;
  vol->queue_ =
      std::make_unique<iomap::IoendCompletionQueue>(vol->ops_.get(), qo);
  vol->flusher_ = std::make_unique<iomap::Flusher>(vol->ops_.get(), vol->cache_,
                                                   options.flusher);
  if (options.meta.read_only) return vol;
  vol->ns_->SetJournal(vol->store_->journal());
  int freed;
  {
    base::ReaderLock l(&vol->txn_mu_);
    freed = vol->ns_->FreeOrphans();
  }
  if (freed < 0)
    return base::ErrnoStatus(freed, "mount: freeing orphans failed");
  Volume* v = vol.get();
  vol->checkpointer_ =
      std::make_unique<base::KickThread>([v] { v->MaybeCheckpointQuiet(); });
  return vol;
}

Volume::~Volume() {
  if (!unmounted_) Unmount().IgnoreError();
}

absl::Status Volume::Unmount() {
  if (unmounted_) return absl::OkStatus();
  unmounted_ = true;
  checkpointer_.reset();  // runs a pending checkpoint first
  absl::Status status;
  if (ops_ != nullptr) {
    if (int r = DeactivateAllSwapfiles(); r != 0)
      status = base::ErrnoStatus(r, "unmount: closing a swap file failed");
  }
  {
    base::MutexLock l(&open_mu_);
    if (!incore_.empty())
      status = base::ErrnoStatus(-EBUSY, "unmount: files are still open");
  }
  if (flusher_ != nullptr) flusher_->SyncAll();
  if (queue_ != nullptr) queue_->Flush();
  if (status.ok() && store_ != nullptr && store_->journal() != nullptr) {
    status = Checkpoint();
  }
  flusher_.reset();
  queue_.reset();
  return status;
}

absl::Status Volume::Checkpoint() {
  if (store_->journal() == nullptr)
    return absl::FailedPreconditionError("checkpoint: read-only mount");
  std::string payload, ns_section;
  JournalPosition covered;
  {
    base::WriterLock l(&txn_mu_);
    covered = ns_->Snapshot(&ns_section);
    AppendSection(&payload, format::kSectionNamespace, ns_section);
    SerializeData(&payload);
  }
  return store_->Checkpoint(payload, covered);
}

absl::Status Volume::MaybeCheckpoint() {
  return CheckpointDue() ? Checkpoint() : absl::OkStatus();
}

bool Volume::CheckpointDue() {
  Journal* j = store_->journal();
  return j != nullptr && j->used_bytes() * 2 >= j->capacity_bytes();
}

void Volume::KickCheckpoint() {
  if (checkpointer_ != nullptr && CheckpointDue()) checkpointer_->Kick();
}

void Volume::MaybeCheckpointQuiet() {
  if (checkpointing_.exchange(true)) return;  // one at a time is enough
  absl::Status s = MaybeCheckpoint();
  checkpointing_.store(false);
  if (!s.ok())
    fprintf(stderr, "fs: checkpoint failed: %s\n", s.ToString().c_str());
}

std::string RangeOpBody(uint64_t ino, uint64_t off, uint64_t len) {
  std::string body;
  Encoder e(&body);
  e.U64(ino);
  e.U64(off);
  e.U64(len);
  return body;
}

// --- Core ops (applied under the namespace lock, live and at replay).

int Volume::ApplyCoreOp(uint16_t op, absl::string_view body) {
  switch (op) {
    case kOpMapAlloc:
      return ApplyMapAlloc(body);
    case kOpConvert:
    case kOpUnmap:
      return ApplyRangeOp(op, body);
    case kOpFreeFork:
      return ApplyFreeFork(body);
    case kOpShare:
      return ApplyShare(body);
    case kOpShift:
      return ApplyShift(body);
    default:
      return -EUCLEAN;
  }
}

void Volume::ReleasePieces(uint64_t ino, const std::vector<Extent>& pieces) {
  uint64_t delalloc = 0;
  for (const Extent& p : pieces) {
    if (p.state == ExtentState::kDelalloc) delalloc += p.len;
    if (!p.allocated()) continue;
    std::vector<BlockRange> to_free, still_shared;
    refc_.Decrement(p.dev_block, p.len, &to_free, &still_shared);
    free_seq_.fetch_add(1);
    for (const BlockRange& r : to_free) alloc_->Free(r.start, r.len);
  }
  if (delalloc > 0 && resv_ != nullptr) resv_->Release(ino, delalloc);
}

int Volume::ApplyMapAlloc(absl::string_view body) {
  Decoder d(body);
  uint64_t ino = d.U64(), off = d.U64(), len = d.U64(), dev = d.U64();
  uint16_t st = d.U16();
  if (!d.ok() || !ValidState(st) || len == 0) return -EUCLEAN;
  if (dev < sb_.data_start || dev + len > sb_.block_count || dev + len < dev)
    return -EUCLEAN;
  if (replaying_ && alloc_->MarkUsed(dev, len) != 0) return -EUCLEAN;
  FileData* fd = Fork(ino);
  std::vector<Extent> replaced;
  int r = fd->data.Map(off, len, dev, static_cast<ExtentState>(st), &replaced);
  if (r != 0) return r;
  // Live, the delalloc replaced was paid for by the allocation.
  std::vector<Extent> allocated;
  for (const Extent& p : replaced)
    if (p.allocated()) allocated.push_back(p);
  ReleasePieces(ino, allocated);
  return 0;
}

int Volume::ApplyShare(absl::string_view body) {
  Decoder d(body);
  uint64_t ino = d.U64(), off = d.U64(), len = d.U64(), dev = d.U64();
  uint16_t st = d.U16();
  if (!d.ok() || !ValidState(st) || len == 0) return -EUCLEAN;
  if (dev < sb_.data_start || dev + len > sb_.block_count || dev + len < dev)
    return -EUCLEAN;
  // The new reference first: the blocks replaced may be these very ones.
  if (refc_.Increment(dev, len) != 0) return -EUCLEAN;
  FileData* fd = Fork(ino);
  std::vector<Extent> replaced;
  int r = fd->data.Map(off, len, dev, static_cast<ExtentState>(st), &replaced);
  if (r != 0) {
    refc_.Decrement(dev, len, nullptr, nullptr);
    return r;
  }
  ReleasePieces(ino, replaced);
  return 0;
}

// Live, JournalShift checked the move; at replay a failing one means the
// log does not match the extent maps it is replayed on.
int Volume::ApplyShift(absl::string_view body) {
  Decoder d(body);
  uint64_t ino = d.U64(), start = d.U64(), n = d.U64();
  uint16_t dir = d.U16();
  if (!d.ok() || n == 0 || n >= kMaxFileBlocks ||
      (dir != kShiftDown && dir != kShiftUp))
    return -EUCLEAN;
  const int64_t delta =
      dir == kShiftUp ? static_cast<int64_t>(n) : -static_cast<int64_t>(n);
  return Fork(ino)->data.Shift(start, delta) == 0 ? 0 : -EUCLEAN;
}

int Volume::ApplyRangeOp(uint16_t op, absl::string_view body) {
  Decoder d(body);
  uint64_t ino = d.U64(), off = d.U64(), len = d.U64();
  if (!d.ok() || len == 0) return -EUCLEAN;
  FileData* fd = Fork(ino);
  if (op == kOpConvert) {
    int64_t r = fd->data.ConvertUnwritten(off, len);
    return r < 0 ? static_cast<int>(r) : 0;
  }
  std::vector<Extent> removed;
  int r = fd->data.Unmap(off, len, &removed);
  if (r != 0) return r;
  ReleasePieces(ino, removed);
  return 0;
}

int Volume::ApplyFreeFork(absl::string_view body) {
  Decoder d(body);
  uint64_t ino = d.U64();
  if (!d.ok()) return -EUCLEAN;
  std::unique_ptr<FileData> fd;
  {
    base::MutexLock l(&forks_mu_);
    auto it = forks_.find(ino);
    if (it == forks_.end()) return 0;
    fd = std::move(it->second);
    forks_.erase(it);
  }
  std::vector<Extent> removed;
  fd->data.Unmap(0, kMaxFileBlocks, &removed);
  ReleasePieces(ino, removed);
  // COW staging blocks are private and unjournaled: straight back.
  removed.clear();
  fd->cow.Unmap(0, kMaxFileBlocks, &removed);
  for (const Extent& e : removed)
    if (e.allocated()) alloc_->Free(e.dev_block, e.len);
  uint64_t delalloc = 0;
  for (const Extent& e : removed)
    if (e.state == ExtentState::kDelalloc) delalloc += e.len;
  if (delalloc > 0 && resv_ != nullptr) resv_->Release(ino, delalloc);
  return 0;
}

int Volume::CommitFrees() {
  const uint64_t want = free_seq_.load();
  if (committed_free_seq_.load() >= want) return 0;
  Journal* j = store_->journal();
  int r = j != nullptr ? j->CommitAll() : 0;
  if (r != 0) return r;
  uint64_t cur = committed_free_seq_.load();
  while (cur < want && !committed_free_seq_.compare_exchange_weak(cur, want)) {
  }
  return 0;
}

int Volume::Transact(VolInode* vi, const TxnBuilder& txn) {
  return ns_->Transact(vi->handle(), txn);
}

int Volume::FlushDevice() {
  block::Bio bio;
  bio.op = block::BioOp::kFlush;
  int64_t r = block::SubmitAndWait(dev_, &bio);
  return r < 0 ? static_cast<int>(r) : 0;
}

// --- Namespace wrappers: every change holds txn_mu_ shared so that a
// checkpoint sees either all of it or none.

FileHandle Volume::root() const {
  FileHandle h{format::kRootIno, 0};
  ns_->ForEachInode([&](const InodeAttr& x) {
    if (x.ino == format::kRootIno) h.generation = x.generation;
  });
  return h;
}

int Volume::GetAttr(FileHandle h, InodeAttr* out) const {
  int r = ns_->GetAttr(h, out);
  if (r != 0) return r;
  // An open file's size is the in-core i_size (it leads the on-disk size
  // until writeback completes).
  base::MutexLock l(&open_mu_);
  auto it = incore_.find(h.ino);
  if (it != incore_.end()) {
    out->size = static_cast<uint64_t>(it->second->i_size_read());
    it->second->ApplyDirtyTime(out);  // not yet journaled
  }
  return 0;
}

int Volume::Truncate(FileHandle h, int64_t size) {
  std::unique_ptr<OpenFile> f;
  int r = Open(h, &f);
  if (r != 0) return r;
  r = f->Truncate(size);
  int c = f->Close();
  return r != 0 ? r : c;
}
int Volume::Lookup(FileHandle dir, absl::string_view name,
                   InodeAttr* out) const {
  return ns_->Lookup(dir, name, out);
}
int Volume::Readdir(FileHandle dir, uint64_t cookie, size_t max,
                    std::vector<DirEntryInfo>* out, bool* eof) const {
  return ns_->Readdir(dir, cookie, max, out, eof);
}
int Volume::Create(FileHandle dir, absl::string_view name, uint32_t mode,
                   bool exclusive, InodeAttr* out) {
  int r;
  {
    base::ReaderLock l(&txn_mu_);
    r = ns_->Create(dir, name, mode, exclusive, out);
  }
  MaybeCheckpointQuiet();
  return r;
}
int Volume::Mkdir(FileHandle dir, absl::string_view name, uint32_t mode,
                  InodeAttr* out) {
  int r;
  {
    base::ReaderLock l(&txn_mu_);
    r = ns_->Mkdir(dir, name, mode, out);
  }
  MaybeCheckpointQuiet();
  return r;
}
int Volume::Link(FileHandle target, FileHandle dir, absl::string_view name,
                 InodeAttr* out) {
  int r;
  {
    base::ReaderLock l(&txn_mu_);
    r = ns_->Link(target, dir, name, out);
  }
  MaybeCheckpointQuiet();
  return r;
}
int Volume::Unlink(FileHandle dir, absl::string_view name) {
  int r;
  {
    base::ReaderLock swap(&swap_mu_);
    if ((r = CheckNotSwapfile(dir, name)) != 0) return r;
    base::ReaderLock l(&txn_mu_);
    r = ns_->Unlink(dir, name);
  }
  MaybeCheckpointQuiet();
  return r;
}
int Volume::Rmdir(FileHandle dir, absl::string_view name) {
  int r;
  {
    base::ReaderLock l(&txn_mu_);
    r = ns_->Rmdir(dir, name);
  }
  MaybeCheckpointQuiet();
  return r;
}
int Volume::Rename(FileHandle src_dir, absl::string_view src_name,
                   FileHandle dst_dir, absl::string_view dst_name,
                   unsigned flags) {
  int r;
  {
    base::ReaderLock swap(&swap_mu_);
    if ((r = CheckNotSwapfile(src_dir, src_name)) != 0 ||
        (r = CheckNotSwapfile(dst_dir, dst_name)) != 0)
      return r;
    base::ReaderLock l(&txn_mu_);
    r = ns_->Rename(src_dir, src_name, dst_dir, dst_name, flags);
  }
  MaybeCheckpointQuiet();
  return r;
}
int Volume::SetAttr(FileHandle h, uint32_t mask, const InodeAttr& values,
                    InodeAttr* out) {
  if (mask & kSetSize) return -EINVAL;
  int r;
  {
    // A pending write time is journaled first, and one landing meanwhile
    // is dropped, so an explicit mtime set here is not overwritten by an
    // older write's time later.
    base::MutexLock o(&open_mu_);
    auto it = incore_.find(h.ino);
    VolInode* vi = it != incore_.end() ? it->second.get() : nullptr;
    if (vi != nullptr && (r = PersistTimes(vi)) != 0) return r;
    InodeAttr set;
    {
      base::ReaderLock l(&txn_mu_);
      if (vi != nullptr) {
        // I/O completion journals size updates by reading the attributes
        // and writing them back under the ilock: holding it here keeps such
        // an older copy from undoing this change (a mode, owner or time).
        base::MutexLock il(&vi->fork()->ilock);
        r = ns_->SetAttr(h, mask, values, &set);
      } else {
        r = ns_->SetAttr(h, mask, values, &set);
      }
    }
    if (r == 0 && vi != nullptr && (mask & kSetMtime))
      vi->MtimeSetExplicitly(set.ctime_ns);
    if (r == 0 && out != nullptr) *out = set;
  }
  MaybeCheckpointQuiet();
  return r;
}

// --- Open / close.

int Volume::Open(FileHandle h, std::unique_ptr<OpenFile>* out) {
  // The attributes are read under open_mu_: a last close running before we
  // got it may have persisted a newer size and dropped the in-core inode,
  // and an in-core inode built from a size sampled before that would lose
  // what that close wrote (concurrent O_APPEND writers lost records).
  base::MutexLock l(&open_mu_);
  InodeAttr attr;
  int r = ns_->GetAttr(h, &attr);
  if (r != 0) return r;
  if (attr.is_dir()) return -EISDIR;
  if (!S_ISREG(attr.mode)) return -EINVAL;
  if (r = ns_->Open(h); r != 0) return r;
  std::unique_ptr<VolInode>& vi = incore_[h.ino];
  if (vi == nullptr) {
    FileData* fd = Fork(h.ino);
    fd->disk_size.store(static_cast<int64_t>(attr.size));
    unsigned bits = 0;
    while ((1u << bits) < sb_.block_size) ++bits;
    vi = std::make_unique<VolInode>(attr, bits, &dev_, cache_, fd);
    vi->SetLargeFolios();
    vi->i_size_write(static_cast<int64_t>(attr.size));
    flusher_->Attach(vi.get());
  }
  ++vi->open_count_;
  out->reset(new OpenFile(this, vi.get()));
  return 0;
}

int Volume::StatBlocks(FileHandle h, uint64_t* blocks_512) {
  *blocks_512 = 0;
  std::unique_ptr<OpenFile> f;
  int r = Open(h, &f);  // keeps the fork from being freed meanwhile
  if (r == -EISDIR) return 0;
  if (r != 0) return r;
  FileData* fd = f->inode()->fork();
  uint64_t blocks = 0;
  {
    // xfs_vn_getattr: i_nblocks + i_delayed_blks, and XFS counts every
    // COW-fork block (reserved or staged) in i_delayed_blks until it is
    // remapped into the data fork.
    base::MutexLock l(&fd->ilock);
    for (const ExtentMap* fork : {&fd->data, &fd->cow}) {
      blocks += fork->BlocksInState(ExtentState::kDelalloc) +
                fork->BlocksInState(ExtentState::kUnwritten) +
                fork->BlocksInState(ExtentState::kWritten);
    }
  }
  *blocks_512 = blocks * (sb_.block_size / 512);
  return f->Close();
}

int Volume::PersistTimes(VolInode* vi) {
  if (vi->dirty_time() == 0) return 0;
  FileData* fd = vi->fork();
  base::ReaderLock t(&txn_mu_);
  base::MutexLock l(&fd->ilock);
  InodeAttr attr;
  if (int r = ns_->GetAttr(vi->handle(), &attr); r != 0) return r;
  const int64_t dirty_time = vi->ApplyDirtyTime(&attr);
  if (dirty_time == 0) return 0;
  TxnBuilder txn;
  txn.InodeSet(attr);
  int r = Transact(vi, txn);
  if (r == 0) vi->ClearDirtyTime(dirty_time);
  return r;
}

int Volume::CloseInode(VolInode* vi) {
  const uint64_t ino = vi->ino();
  int err = 0;
  // open_mu_ covers the namespace close too, so that no Open of the same
  // inode can slip in between dropping the in-core inode and freeing an
  // orphan's fork.
  base::MutexLock l(&open_mu_);
  if (--vi->open_count_ == 0) {
    err = flusher_->WriteAndWaitRange(vi, 0, INT64_MAX);
    queue_->Flush();
    if (int t = PersistTimes(vi); err == 0) err = t;
    flusher_->Detach(vi);
    ops_->PunchDelalloc(vi, 0, INT64_MAX);
    ops_->CancelCow(vi, 0, kMaxFileBlocks);
    resv_->ReleaseAll(ino);
    incore_.erase(ino);
  }
  base::ReaderLock t(&txn_mu_);
  int r = ns_->Close(ino);
  return err != 0 ? err : r;
}

// Holds every inode's ilock at once, a set only known at run time, which
// clang's thread-safety analysis cannot follow; the locking is by hand here.
ABSL_NO_THREAD_SAFETY_ANALYSIS
void Volume::CheckLive(std::vector<std::string>* problems) {
  base::WriterLock l(&txn_mu_);
  std::vector<std::pair<uint64_t, FileData*>> forks;
  {
    base::MutexLock fl(&forks_mu_);
    for (auto& [ino, fd] : forks_) forks.push_back({ino, fd.get()});
  }
  // Lower inode number first, the order two-inode operations use.
  std::sort(forks.begin(), forks.end());
  for (auto& [ino, fd] : forks) fd->ilock.Lock();
  SpaceView view{sb_.data_start, sb_.block_count, alloc_.get(), &refc_,
                 ForkRefs()};
  for (auto& [ino, fd] : forks) view.forks.push_back({ino, true, &fd->cow});
  CheckSpace(view, problems);
  for (auto& [ino, fd] : forks) {
    absl::Status s = resv_->CheckInode(
        ino, fd->data.BlocksInState(ExtentState::kDelalloc) +
                 fd->cow.BlocksInState(ExtentState::kDelalloc));
    if (!s.ok()) problems->push_back(s.ToString());
  }
  absl::Status s = resv_->Check();
  if (!s.ok()) problems->push_back(s.ToString());
  for (auto& [ino, fd] : forks) fd->ilock.Unlock();
  ns_->Check(problems);
}

FsckResult FsckVolume(block::Device& dev) {
  FsckResult r;
  std::unique_ptr<Volume> vol(new Volume(dev, VolumeOptions()));
  vol->unmounted_ = true;
  absl::Status s = vol->Recover(/*read_only=*/true, /*allow_damaged=*/true);
  if (!s.ok()) {
    r.problems.push_back(s.ToString());
    return r;
  }
  const MountInfo& info = vol->store_->mount_info();
  r.notes.push_back(absl::StrCat("journal: replayed ", info.replayed_records,
                                 " records (", info.replay_stop_reason, ")"));
  absl::StatusOr<uint64_t> later =
      FindRecordPastEnd(dev, vol->sb_, info.replay_epoch, info.replay_end);
  if (!later.ok() || *later != 0)
    r.problems.push_back("journal: damaged inside the log");
  vol->ns_->Check(&r.problems);
  SpaceView view{vol->sb_.data_start, vol->sb_.block_count, vol->alloc_.get(),
                 &vol->refc_, vol->ForkRefs()};
  CheckSpace(view, &r.problems);
  return r;
}

}  // namespace fs
