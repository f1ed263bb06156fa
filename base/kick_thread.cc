#include "base/kick_thread.h"

#include <utility>

namespace base {

KickThread::KickThread(std::function<void()> work)
    : work_(std::move(work)), thread_([this] { Loop(); }) {}

KickThread::~KickThread() {
  {
    MutexLock l(&mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  thread_.join();
}

void KickThread::Kick() {
  {
    MutexLock l(&mu_);
    kicked_ = true;
  }
  cv_.Signal();
}

uint64_t KickThread::runs() const {
  MutexLock l(&mu_);
  return runs_;
}

void KickThread::Loop() {
  for (;;) {
    {
      MutexLock l(&mu_);
      while (!kicked_ && !stop_) cv_.Wait(&mu_);
      if (!kicked_) return;  // stopping with nothing pending
      kicked_ = false;
    }
    work_();
    MutexLock l(&mu_);
    ++runs_;
  }
}

}  // namespace base
