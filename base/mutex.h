// Locks with clang thread-safety annotations, "held" assertions (the kernel's
// lockdep_assert_held) and a lock-order checker.
//
// Why not absl::Mutex: Debian's Abseil is not built with ThreadSanitizer
// annotations, so TSAN cannot see its happens-before edges. These wrappers sit
// on std::mutex / std::shared_mutex, which TSAN intercepts.
//
// Lock order. Every lock may carry a LockRank. While a thread holds a lock of
// rank r it may only acquire locks of rank >= r (equal ranks are allowed for
// locks of one class, e.g. the rwsems of two inodes in a clone, which the
// caller takes in a stable order). A violation aborts with both ranks named.
// The checker is on in every build: it costs a thread-local array push/pop.
//
// Thread-safety: all members are thread-safe, as locks must be.
#ifndef IOMAPD_BASE_MUTEX_H_
#define IOMAPD_BASE_MUTEX_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "absl/base/thread_annotations.h"

namespace base {

// Ranks follow DESIGN.md: rwsem -> invalidate_lock -> folio -> fs metadata.
enum class LockRank : int {
  kNone = 0,          // not checked
  kRwsem = 10,        // InodeLocks::rwsem (i_rwsem / IOLOCK)
  kInvalidate = 20,   // InodeLocks::invalidate (invalidate_lock / MMAPLOCK)
  kFolio = 30,        // Folio::Lock()
  kMapping = 40,      // a Mapping's folio index
  kFsInode = 50,      // fs per-inode metadata (ILOCK)
  kFsAlloc = 60,      // fs allocator, refcount index
  kJournal = 70,      // journal
  kLeaf = 100,        // leaf locks: never acquire anything while holding them
};

const char* LockRankName(LockRank rank);

namespace internal {
// Records that the calling thread acquires / releases a lock of `rank`.
// Acquire aborts when the order rule above is broken.
void NoteAcquire(LockRank rank, const void* lock);
void NoteRelease(LockRank rank, const void* lock);
// Number of locks of any rank the calling thread holds (for tests).
int HeldCount();
}  // namespace internal

// An exclusive lock.
class ABSL_LOCKABLE Mutex {
 public:
  explicit Mutex(LockRank rank = LockRank::kNone) : rank_(rank) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    internal::NoteAcquire(rank_, this);
    mu_.lock();
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    if (!mu_.try_lock()) return false;
    internal::NoteAcquire(rank_, this);
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    return true;
  }
  // The release is recorded before the unlock: once unlocked, a waiter may
  // destroy the lock, so nothing of *this may be touched afterwards.
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    owner_.store(std::thread::id(), std::memory_order_relaxed);
    internal::NoteRelease(rank_, this);
    mu_.unlock();
  }
  // Aborts unless the calling thread holds the lock.
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK();
  bool HeldByMe() const {
    return owner_.load(std::memory_order_relaxed) == std::this_thread::get_id();
  }

 private:
  friend class CondVar;
  std::mutex mu_;
  std::atomic<std::thread::id> owner_{};
  const LockRank rank_;
};

// A reader/writer lock (the kernel's rw_semaphore).
class ABSL_LOCKABLE SharedMutex {
 public:
  explicit SharedMutex(LockRank rank = LockRank::kNone) : rank_(rank) {}
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    internal::NoteAcquire(rank_, this);
    mu_.lock();
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    if (!mu_.try_lock()) return false;
    internal::NoteAcquire(rank_, this);
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    return true;
  }
  // The release is recorded before the unlock: once unlocked, a waiter may
  // destroy the lock, so nothing of *this may be touched afterwards.
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    owner_.store(std::thread::id(), std::memory_order_relaxed);
    internal::NoteRelease(rank_, this);
    mu_.unlock();
  }
  void LockShared() ABSL_SHARED_LOCK_FUNCTION() {
    internal::NoteAcquire(rank_, this);
    mu_.lock_shared();
    readers_.fetch_add(1, std::memory_order_relaxed);
  }
  bool TryLockShared() ABSL_SHARED_TRYLOCK_FUNCTION(true) {
    if (!mu_.try_lock_shared()) return false;
    internal::NoteAcquire(rank_, this);
    readers_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  void UnlockShared() ABSL_UNLOCK_FUNCTION() {
    readers_.fetch_sub(1, std::memory_order_relaxed);
    internal::NoteRelease(rank_, this);
    mu_.unlock_shared();
  }
  // Aborts unless the calling thread holds the lock exclusively.
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK();
  // Aborts unless the lock is held shared (by someone: readers are not
  // tracked per thread) or exclusively by the calling thread.
  void AssertReaderHeld() const ABSL_ASSERT_SHARED_LOCK();
  bool HeldExclusiveByMe() const {
    return owner_.load(std::memory_order_relaxed) == std::this_thread::get_id();
  }

 private:
  std::shared_mutex mu_;
  std::atomic<std::thread::id> owner_{};
  std::atomic<int> readers_{0};
  const LockRank rank_;
};

// RAII holders.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

class ABSL_SCOPED_LOCKABLE WriterLock {
 public:
  explicit WriterLock(SharedMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu)
      : mu_(mu) {
    mu_->Lock();
  }
  ~WriterLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex* const mu_;
};

class ABSL_SCOPED_LOCKABLE ReaderLock {
 public:
  explicit ReaderLock(SharedMutex* mu) ABSL_SHARED_LOCK_FUNCTION(mu)
      : mu_(mu) {
    mu_->LockShared();
  }
  ~ReaderLock() ABSL_UNLOCK_FUNCTION() { mu_->UnlockShared(); }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  SharedMutex* const mu_;
};

// A condition variable bound to a base::Mutex.
class CondVar {
 public:
  // REQUIRES: mu held. Releases it while waiting, holds it again on return.
  void Wait(Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // As Wait, with a timeout. Returns false on timeout.
  bool WaitFor(Mutex* mu, std::chrono::nanoseconds timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace base

#endif  // IOMAPD_BASE_MUTEX_H_
