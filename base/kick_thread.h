// base::KickThread: a background thread that runs one piece of work each
// time it is kicked. Kicks that arrive while the work runs, or before the
// thread wakes, fold into a single further run. It is how a caller that may
// not block (an io_uring-style NOWAIT request) hands off work it would
// otherwise have done inline, as the kernel hands log-tail pushing to
// xfsaild.
//
// Thread-safety: thread-safe. Kick() never blocks on the work. The
// destructor runs a pending kick (if any), then joins the thread.
#ifndef IOMAPD_BASE_KICK_THREAD_H_
#define IOMAPD_BASE_KICK_THREAD_H_

#include <functional>
#include <thread>

#include "base/mutex.h"

namespace base {

class KickThread {
 public:
  // `work` runs on the thread, never concurrently with itself.
  explicit KickThread(std::function<void()> work);
  ~KickThread();
  KickThread(const KickThread&) = delete;
  KickThread& operator=(const KickThread&) = delete;

  // Asks for one run of the work after this call.
  void Kick();
  // Runs completed since construction (for tests).
  uint64_t runs() const;

 private:
  void Loop();

  const std::function<void()> work_;
  mutable Mutex mu_{LockRank::kLeaf};
  CondVar cv_;
  bool kicked_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t runs_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace base

#endif  // IOMAPD_BASE_KICK_THREAD_H_
