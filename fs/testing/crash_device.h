// CrashingSimDevice: a block::Device in front of a block::SimDevice that
// crashes it (SimDevice::Crash: unflushed writes dropped or kept per run of
// blocks, in-flight writes torn) when the n-th write from Arm() is
// submitted, from a helper thread, so that the crash lands while the
// submitter and the volume's other threads (flusher, ioend completions,
// journal committer) go on with I/O in flight. The n-th write itself is
// passed on: it may be queued before the crash (and be torn) or fail.
//
// Thread-safety: thread-safe. Not owning the SimDevice.
#ifndef IOMAPD_FS_TESTING_CRASH_DEVICE_H_
#define IOMAPD_FS_TESTING_CRASH_DEVICE_H_

#include <cstdint>
#include <string>
#include <thread>

#include "base/mutex.h"
#include "block/device.h"
#include "block/sim_device.h"

namespace fs {
namespace testing {

class CrashingSimDevice : public block::Device {
 public:
  explicit CrashingSimDevice(block::SimDevice* sim) : sim_(sim) {}
  // Joins the crash thread.
  ~CrashingSimDevice() override;

  void Submit(block::Bio* bio) override;
  const block::DeviceLimits& limits() const override { return sim_->limits(); }
  std::string name() const override { return "crashing-" + sim_->name(); }
  uint64_t inflight() const override { return sim_->inflight(); }
  void Drain() override { sim_->Drain(); }

  // The write submitted after `n` more writes (n = 0: the next) triggers
  // the crash.
  void Arm(uint64_t n);
  // True once the crash was triggered (it may still be running).
  bool triggered() const;
  // Triggers the crash now unless it was, and waits until it is done.
  void CrashNow();

 private:
  block::SimDevice* const sim_;
  mutable base::Mutex mu_{base::LockRank::kLeaf};
  bool armed_ ABSL_GUARDED_BY(mu_) = false;
  bool triggered_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t writes_left_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread crasher_ ABSL_GUARDED_BY(mu_);
};

}  // namespace testing
}  // namespace fs

#endif  // IOMAPD_FS_TESTING_CRASH_DEVICE_H_
