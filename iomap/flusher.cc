#include "iomap/flusher.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <vector>

namespace iomap {

namespace {

uint64_t OrDefault(uint64_t value, uint64_t budget, uint64_t divisor) {
  return value != 0 ? value : budget / divisor;
}

constexpr auto kThrottlePoll = std::chrono::milliseconds(2);
// A writer gives up waiting when nothing was cleaned for this long (the
// dirty data belongs to inodes no flusher serves): throttling must slow
// writers down, never wedge them.
constexpr auto kThrottleGiveUp = std::chrono::seconds(2);

}  // namespace

Flusher::Flusher(WritepagesOps* ops, PageCache* cache,
                 const FlusherOptions& options)
    : ops_(ops),
      cache_(cache),
      options_(options),
      background_bytes_(
          OrDefault(options.dirty_background_bytes, cache->budget_bytes(), 10)),
      limit_bytes_(OrDefault(options.dirty_bytes, cache->budget_bytes(), 5)) {
  thread_ = std::thread([this] { Loop(); });
}

Flusher::~Flusher() {
  {
    base::MutexLock l(&mu_);
    if (!inodes_.empty()) {
      std::fprintf(stderr, "iomap: Flusher destroyed with inodes attached\n");
      std::abort();
    }
    stop_ = true;
  }
  kick_cv_.SignalAll();
  thread_.join();
}

void Flusher::Attach(Inode* inode) {
  {
    base::MutexLock l(&mu_);
    inodes_.emplace(inode, InodeInfo());
  }
  inode->mapping()->set_hooks(this);
}

void Flusher::Detach(Inode* inode) {
  base::MutexLock l(&mu_);
  auto it = inodes_.find(inode);
  if (it == inodes_.end()) return;
  while (it->second.busy != 0) {
    progress_cv_.Wait(&mu_);
    it = inodes_.find(inode);
  }
  inodes_.erase(it);
  if (inode->mapping()->hooks() == this) inode->mapping()->set_hooks(nullptr);
}

void Flusher::MarkDirty(Inode* inode) {
  base::MutexLock l(&mu_);
  auto it = inodes_.find(inode);
  if (it != inodes_.end() && it->second.dirtied_when == Clock::time_point()) {
    it->second.dirtied_when = Clock::now();
  }
}

void Flusher::Kick() {
  base::MutexLock l(&mu_);
  kicked_ = true;
  kick_cv_.Signal();
}

uint64_t Flusher::DirtyNow() const {
  return cache_->dirty_bytes() + cache_->writeback_bytes();
}

int64_t Flusher::WriteInode(Inode* inode, bool whole) {
  WritebackControl wbc;
  wbc.sync_mode = SyncMode::kNone;
  wbc.for_background = !whole;
  if (!whole) wbc.nr_to_write = options_.chunk_pages;
  // Errors are recorded on the mapping for fsync; nothing else to do here.
  ops_->Writepages(inode, &wbc);
  return wbc.folios_written;
}

bool Flusher::Round() {
  const Clock::time_point now = Clock::now();
  const auto expire = std::chrono::milliseconds(options_.dirty_expire_ms);
  const bool background = DirtyNow() > background_bytes_;
  std::vector<std::pair<Inode*, bool>> work;  // (inode, whole)
  {
    base::MutexLock l(&mu_);
    for (auto& [inode, info] : inodes_) {
      Mapping* mapping = inode->mapping();
      if (mapping->dirty_bytes() == 0) {
        if (mapping->writeback_bytes() == 0) info.dirtied_when = {};
        continue;
      }
      if (info.dirtied_when == Clock::time_point()) info.dirtied_when = now;
      const bool expired = now - info.dirtied_when >= expire;
      if (!expired && !background) continue;
      info.busy++;
      work.emplace_back(inode, expired);
    }
  }
  int64_t written = 0;
  for (auto& [inode, whole] : work) written += WriteInode(inode, whole);
  {
    base::MutexLock l(&mu_);
    for (auto& [inode, whole] : work) {
      InodeInfo& info = inodes_[inode];
      info.busy--;
      if (whole) info.dirtied_when = {};
    }
    passes_++;
    progress_cv_.SignalAll();
  }
  return written > 0;
}

void Flusher::Loop() {
  const auto interval =
      std::chrono::milliseconds(options_.writeback_interval_ms);
  for (;;) {
    {
      base::MutexLock l(&mu_);
      if (!kicked_ && !stop_) kick_cv_.WaitFor(&mu_, interval);
      if (stop_) return;
      kicked_ = false;
    }
    // Keep going while background writeback makes progress.
    while (Round() && DirtyNow() > background_bytes_) {
      base::MutexLock l(&mu_);
      if (stop_) return;
    }
  }
}

int Flusher::BalanceDirty(Inode* inode, bool nowait) {
  MarkDirty(inode);
  uint64_t dirty = DirtyNow();
  if (dirty <= background_bytes_) return 0;
  Kick();
  if (dirty <= limit_bytes_) return 0;
  if (nowait) return -EAGAIN;
  Clock::time_point last_progress = Clock::now();
  uint64_t lowest = dirty;
  base::MutexLock l(&mu_);
  throttled_++;
  while ((dirty = DirtyNow()) > limit_bytes_ && !stop_) {
    if (dirty < lowest) {
      lowest = dirty;
      last_progress = Clock::now();
    } else if (Clock::now() - last_progress > kThrottleGiveUp) {
      break;
    }
    kicked_ = true;
    kick_cv_.Signal();
    progress_cv_.WaitFor(&mu_, kThrottlePoll);
  }
  return 0;
}

int Flusher::SyncAll() {
  std::vector<Inode*> inodes;
  {
    base::MutexLock l(&mu_);
    for (auto& [inode, info] : inodes_) {
      info.busy++;
      inodes.push_back(inode);
    }
  }
  int first = 0;
  const int64_t max = std::numeric_limits<int64_t>::max();
  for (Inode* inode : inodes) {
    int err = FdatawriteRange(ops_, inode, 0, max, SyncMode::kAll);
    if (err != 0 && first == 0) first = err;
  }
  for (Inode* inode : inodes) FdatawaitRange(inode->mapping(), 0, max);
  {
    base::MutexLock l(&mu_);
    for (Inode* inode : inodes) inodes_[inode].busy--;
    progress_cv_.SignalAll();
  }
  return first;
}

int Flusher::FileWriteAndWaitRange(Inode* inode, ErrSeq::Cursor* cursor,
                                   int64_t start, int64_t end) {
  return iomap::FileWriteAndWaitRange(ops_, inode, cursor, start, end);
}

int Flusher::WriteAndWaitRange(Inode* inode, int64_t start, int64_t end) {
  return iomap::WriteAndWaitRange(ops_, inode, start, end);
}

uint64_t Flusher::passes() const {
  base::MutexLock l(&mu_);
  return passes_;
}

uint64_t Flusher::throttled() const {
  base::MutexLock l(&mu_);
  return throttled_;
}

}  // namespace iomap
