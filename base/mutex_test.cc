#include "base/mutex.h"

#include <thread>

#include "gtest/gtest.h"

namespace base {
namespace {

TEST(MutexTest, AssertHeldPassesForOwner) {
  Mutex mu;
  MutexLock lock(&mu);
  mu.AssertHeld();
  EXPECT_TRUE(mu.HeldByMe());
}

TEST(MutexTest, HeldByMeFalseForOtherThread) {
  Mutex mu;
  MutexLock lock(&mu);
  bool other_sees_held = true;
  std::thread t([&] { other_sees_held = mu.HeldByMe(); });
  t.join();
  EXPECT_FALSE(other_sees_held);
}

TEST(MutexDeathTest, AssertHeldAbortsWhenNotHeld) {
  Mutex mu;
  EXPECT_DEATH(mu.AssertHeld(), "AssertHeld failed");
}

TEST(MutexDeathTest, AssertReaderHeldAbortsWhenFree) {
  SharedMutex mu;
  EXPECT_DEATH(mu.AssertReaderHeld(), "AssertReaderHeld failed");
}

TEST(MutexTest, SharedHoldersCoexist) {
  SharedMutex mu(LockRank::kRwsem);
  ReaderLock a(&mu);
  EXPECT_TRUE(mu.TryLockShared());
  mu.AssertReaderHeld();
  EXPECT_FALSE(mu.TryLock());
  mu.UnlockShared();
}

TEST(LockOrderTest, IncreasingRanksAreAllowed) {
  SharedMutex rwsem(LockRank::kRwsem);
  SharedMutex invalidate(LockRank::kInvalidate);
  Mutex folio(LockRank::kFolio);
  WriterLock a(&rwsem);
  WriterLock b(&invalidate);
  MutexLock c(&folio);
  EXPECT_EQ(internal::HeldCount(), 3);
}

TEST(LockOrderTest, EqualRanksAreAllowed) {
  SharedMutex a(LockRank::kRwsem), b(LockRank::kRwsem);
  WriterLock la(&a);
  WriterLock lb(&b);
  EXPECT_EQ(internal::HeldCount(), 2);
}

TEST(LockOrderDeathTest, DecreasingRankAborts) {
  EXPECT_DEATH(
      {
        Mutex folio(LockRank::kFolio);
        SharedMutex rwsem(LockRank::kRwsem);
        MutexLock a(&folio);
        WriterLock b(&rwsem);
      },
      "lock order violation: rank decreases \\(folio then rwsem\\)");
}

TEST(LockOrderDeathTest, LockUnderLeafAborts) {
  EXPECT_DEATH(
      {
        Mutex leaf(LockRank::kLeaf);
        Mutex other(LockRank::kLeaf);
        MutexLock a(&leaf);
        MutexLock b(&other);
      },
      "under a leaf lock");
}

TEST(LockOrderTest, ReleaseOutOfOrderKeepsTheRest) {
  SharedMutex rwsem(LockRank::kRwsem);
  SharedMutex invalidate(LockRank::kInvalidate);
  rwsem.Lock();
  invalidate.Lock();
  rwsem.Unlock();
  EXPECT_EQ(internal::HeldCount(), 1);
  invalidate.Unlock();
  EXPECT_EQ(internal::HeldCount(), 0);
}

TEST(CondVarTest, WaitForTimesOutAndKeepsLock) {
  Mutex mu;
  CondVar cv;
  MutexLock lock(&mu);
  EXPECT_FALSE(cv.WaitFor(&mu, std::chrono::milliseconds(5)));
  mu.AssertHeld();
}

}  // namespace
}  // namespace base

namespace base {
namespace {

// A waiter that destroys the lock as soon as it gets it (the "wait for a bio
// on the stack" pattern) must not race with the unlocking thread.
TEST(MutexTest, WaiterMayDestroyLockRightAfterUnlock) {
  for (int i = 0; i < 200; i++) {
    auto* mu = new Mutex(LockRank::kLeaf);
    mu->Lock();
    std::thread waiter([mu] {
      mu->Lock();
      mu->Unlock();
      delete mu;
    });
    mu->Unlock();
    waiter.join();
  }
}

}  // namespace
}  // namespace base
