#include "fs/testing/crash_device.h"

#include <utility>

namespace fs {
namespace testing {

CrashingSimDevice::~CrashingSimDevice() {
  std::thread t;
  {
    base::MutexLock l(&mu_);
    t = std::move(crasher_);
  }
  if (t.joinable()) t.join();
}

void CrashingSimDevice::Submit(block::Bio* bio) {
  const bool write = bio->op == block::BioOp::kWrite ||
                     bio->op == block::BioOp::kWriteZeroes ||
                     bio->op == block::BioOp::kDiscard;
  if (write) {
    base::MutexLock l(&mu_);
    if (armed_ && !triggered_ && writes_left_-- == 0) {
      triggered_ = true;
      block::SimDevice* sim = sim_;
      crasher_ = std::thread([sim] { sim->Crash(); });
    }
  }
  sim_->Submit(bio);
}

void CrashingSimDevice::Arm(uint64_t n) {
  base::MutexLock l(&mu_);
  armed_ = true;
  writes_left_ = n;
}

bool CrashingSimDevice::triggered() const {
  base::MutexLock l(&mu_);
  return triggered_;
}

void CrashingSimDevice::CrashNow() {
  std::thread t;
  bool crash_here = false;
  {
    base::MutexLock l(&mu_);
    crash_here = !triggered_;
    triggered_ = true;
    t = std::move(crasher_);
  }
  if (crash_here) sim_->Crash();
  if (t.joinable()) t.join();
}

}  // namespace testing
}  // namespace fs
