#include "base/mutex.h"

#include <cstdio>
#include <cstdlib>

namespace base {
namespace {

// The ranked locks the calling thread holds, in acquisition order. Sixty-four
// is far above any real nesting depth (clone holds six at most).
constexpr int kMaxHeld = 64;
struct HeldLocks {
  LockRank rank[kMaxHeld];
  const void* lock[kMaxHeld];
  int count = 0;
};
thread_local HeldLocks held;

[[noreturn]] void Die(const char* what, LockRank a, LockRank b) {
  std::fprintf(stderr, "lock order violation: %s (%s then %s)\n", what,
               LockRankName(a), LockRankName(b));
  std::abort();
}

}  // namespace

const char* LockRankName(LockRank rank) {
  switch (rank) {
    case LockRank::kNone: return "none";
    case LockRank::kRwsem: return "rwsem";
    case LockRank::kInvalidate: return "invalidate_lock";
    case LockRank::kFolio: return "folio";
    case LockRank::kMapping: return "mapping";
    case LockRank::kFsInode: return "fs-inode";
    case LockRank::kFsAlloc: return "fs-alloc";
    case LockRank::kJournal: return "journal";
    case LockRank::kLeaf: return "leaf";
  }
  return "?";
}

namespace internal {

void NoteAcquire(LockRank rank, const void* lock) {
  if (rank == LockRank::kNone) return;
  if (held.count > 0) {
    LockRank top = held.rank[held.count - 1];
    if (top == LockRank::kLeaf) Die("lock taken under a leaf lock", top, rank);
    if (static_cast<int>(rank) < static_cast<int>(top)) {
      Die("rank decreases", top, rank);
    }
  }
  if (held.count == kMaxHeld) Die("too many locks held", rank, rank);
  held.rank[held.count] = rank;
  held.lock[held.count] = lock;
  held.count++;
}

void NoteRelease(LockRank rank, const void* lock) {
  if (rank == LockRank::kNone) return;
  // Locks are usually released in reverse order, but not always (a folio lock
  // handed from one helper to another); search from the top.
  for (int i = held.count - 1; i >= 0; i--) {
    if (held.lock[i] != lock) continue;
    for (int j = i; j + 1 < held.count; j++) {
      held.rank[j] = held.rank[j + 1];
      held.lock[j] = held.lock[j + 1];
    }
    held.count--;
    return;
  }
  // Released by a thread that did not take it (a lock handed to a completion
  // thread, as the kernel does with folio locks on reads): nothing to pop.
}

int HeldCount() { return held.count; }

}  // namespace internal

void Mutex::AssertHeld() const {
  if (!HeldByMe()) {
    std::fprintf(stderr, "Mutex::AssertHeld failed (%s)\n",
                 LockRankName(rank_));
    std::abort();
  }
}

void SharedMutex::AssertHeld() const {
  if (!HeldExclusiveByMe()) {
    std::fprintf(stderr, "SharedMutex::AssertHeld failed (%s)\n",
                 LockRankName(rank_));
    std::abort();
  }
}

void SharedMutex::AssertReaderHeld() const {
  if (!HeldExclusiveByMe() && readers_.load(std::memory_order_relaxed) == 0) {
    std::fprintf(stderr, "SharedMutex::AssertReaderHeld failed (%s)\n",
                 LockRankName(rank_));
    std::abort();
  }
}

void CondVar::Wait(Mutex* mu) {
  mu->owner_.store(std::thread::id(), std::memory_order_relaxed);
  std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
  cv_.wait(lock);
  lock.release();
  mu->owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
}

bool CondVar::WaitFor(Mutex* mu, std::chrono::nanoseconds timeout) {
  mu->owner_.store(std::thread::id(), std::memory_order_relaxed);
  std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
  bool signalled = cv_.wait_for(lock, timeout) == std::cv_status::no_timeout;
  lock.release();
  mu->owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  return signalled;
}

}  // namespace base
