#include "base/kick_thread.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "gtest/gtest.h"

namespace base {
namespace {

void WaitForRuns(const KickThread& t, uint64_t n) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (t.runs() < n && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

TEST(KickThreadTest, RunsOncePerKick) {
  std::atomic<int> n{0};
  KickThread t([&] { n.fetch_add(1); });
  t.Kick();
  WaitForRuns(t, 1);
  EXPECT_EQ(n.load(), 1);
  t.Kick();
  WaitForRuns(t, 2);
  EXPECT_EQ(n.load(), 2);
}

TEST(KickThreadTest, KicksDuringARunFoldIntoOne) {
  std::atomic<bool> release{false};
  std::atomic<int> n{0};
  KickThread t([&] {
    n.fetch_add(1);
    while (!release.load()) std::this_thread::yield();
  });
  t.Kick();
  while (n.load() == 0) std::this_thread::yield();
  for (int i = 0; i < 100; ++i) t.Kick();  // all while the first run blocks
  release.store(true);
  WaitForRuns(t, 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(n.load(), 2);
  EXPECT_EQ(t.runs(), 2u);
}

TEST(KickThreadTest, DestructorRunsAPendingKick) {
  std::atomic<int> n{0};
  {
    KickThread t([&] { n.fetch_add(1); });
    t.Kick();
  }
  EXPECT_EQ(n.load(), 1);
}

TEST(KickThreadTest, NoKickNoRun) {
  std::atomic<int> n{0};
  {
    KickThread t([&] { n.fetch_add(1); });
  }
  EXPECT_EQ(n.load(), 0);
}

}  // namespace
}  // namespace base
