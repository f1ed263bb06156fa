// server::Executor: the engine executor, a fixed pool of threads that run
// file-system operations on behalf of gRPC reactors (DESIGN.md, Threads).
// Reactors never block: they hand an operation to Run() and finish the RPC
// from inside it. Operations may block (folio locks, I/O, journal commits),
// which is why they run here and not on gRPC's threads.
//
// Thread-safety: thread-safe. Run() may be called from any thread, including
// from an operation running on the pool.
#ifndef IOMAPD_SERVER_EXECUTOR_H_
#define IOMAPD_SERVER_EXECUTOR_H_

#include <deque>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "base/mutex.h"

namespace server {

class Executor {
 public:
  // Starts `threads` workers (at least 1).
  explicit Executor(int threads);
  // Shutdown(), then joins.
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Queues `fn`. Returns false (and drops fn unrun) after Shutdown().
  bool Run(absl::AnyInvocable<void()> fn);
  // Stops accepting work, runs everything already queued, joins the
  // workers. Idempotent. REQUIRES: not called from a worker.
  void Shutdown();

  // Operations queued and not yet started (for tests and statistics).
  size_t QueueDepth() const;

 private:
  void Worker();

  mutable base::Mutex mu_{base::LockRank::kLeaf};
  base::CondVar work_cv_;
  std::deque<absl::AnyInvocable<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace server

#endif  // IOMAPD_SERVER_EXECUTOR_H_
