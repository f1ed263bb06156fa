#include "server/executor.h"

#include <utility>

namespace server {

Executor::Executor(int threads) {
  if (threads < 1) threads = 1;
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Worker(); });
}

Executor::~Executor() { Shutdown(); }

bool Executor::Run(absl::AnyInvocable<void()> fn) {
  {
    base::MutexLock l(&mu_);
    if (stopping_) return false;
    queue_.push_back(std::move(fn));
  }
  work_cv_.Signal();
  return true;
}

void Executor::Shutdown() {
  {
    base::MutexLock l(&mu_);
    stopping_ = true;
  }
  work_cv_.SignalAll();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

size_t Executor::QueueDepth() const {
  base::MutexLock l(&mu_);
  return queue_.size();
}

// Runs queued work until Shutdown() and an empty queue: work queued before
// Shutdown still runs.
void Executor::Worker() {
  for (;;) {
    absl::AnyInvocable<void()> fn;
    {
      base::MutexLock l(&mu_);
      while (queue_.empty() && !stopping_) work_cv_.Wait(&mu_);
      if (queue_.empty()) return;
      fn = std::move(queue_.front());
      queue_.pop_front();
    }
    fn();
  }
}

}  // namespace server
