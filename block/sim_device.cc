// SimDevice: the simulated device, its clock, write cache, faults and crash.
#include "block/sim_device.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/errno.h"

namespace block {
namespace {

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

bool ChangesData(BioOp op) {
  return op == BioOp::kWrite || op == BioOp::kDiscard ||
         op == BioOp::kWriteZeroes;
}

}  // namespace

uint64_t SimSeedFromEnv() {
  const char* env = getenv("IOMAPD_SEED");
  if (env != nullptr && *env != '\0') return strtoull(env, nullptr, 0);
  std::random_device rd;
  uint64_t seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return seed == 0 ? 1 : seed;
}

std::string SimSeedMessage(uint64_t seed) {
  return absl::StrCat("SimDevice seed=", seed,
                      " (replay with IOMAPD_SEED=", seed, ")");
}

// ---- SimStore ----

SimStore::SimStore(uint64_t capacity_bytes, uint64_t garbage_seed)
    : capacity_bytes_(capacity_bytes), garbage_seed_(garbage_seed) {}

void SimStore::FillGarbage(uint64_t chunk, uint8_t* dst) const {
  const uint64_t first_word = chunk * (kChunk / 8);
  for (uint64_t i = 0; i < kChunk / 8; ++i) {
    uint64_t v = Mix(garbage_seed_ ^ Mix(first_word + i));
    memcpy(dst + i * 8, &v, 8);
  }
}

void SimStore::Read(uint64_t off, uint8_t* dst, uint64_t len) const {
  std::unique_ptr<uint8_t[]> scratch;
  while (len > 0) {
    const uint64_t chunk = off / kChunk;
    const uint64_t in = off % kChunk;
    const uint64_t n = std::min(len, kChunk - in);
    auto it = chunks_.find(chunk);
    if (it != chunks_.end()) {
      memcpy(dst, it->second.get() + in, n);
    } else if (n == kChunk) {
      FillGarbage(chunk, dst);
    } else {
      if (!scratch) scratch.reset(new uint8_t[kChunk]);
      FillGarbage(chunk, scratch.get());
      memcpy(dst, scratch.get() + in, n);
    }
    off += n;
    dst += n;
    len -= n;
  }
}

void SimStore::Write(uint64_t off, const uint8_t* src, uint64_t len) {
  while (len > 0) {
    const uint64_t chunk = off / kChunk;
    const uint64_t in = off % kChunk;
    const uint64_t n = std::min(len, kChunk - in);
    std::unique_ptr<uint8_t[]>& data = chunks_[chunk];
    if (!data) {
      data.reset(new uint8_t[kChunk]);
      if (n != kChunk) FillGarbage(chunk, data.get());
    }
    memcpy(data.get() + in, src, n);
    off += n;
    src += n;
    len -= n;
  }
}

std::unique_ptr<SimStore> SimStore::Clone() const {
  auto copy = std::make_unique<SimStore>(capacity_bytes_, garbage_seed_);
  for (const auto& [chunk, data] : chunks_) {
    std::unique_ptr<uint8_t[]> d(new uint8_t[kChunk]);
    memcpy(d.get(), data.get(), kChunk);
    copy->chunks_[chunk] = std::move(d);
  }
  return copy;
}

// ---- SimDevice: setup ----

SimDevice::SimDevice(const SimOptions& options)
    : SimDevice(options, options.seed != 0 ? options.seed : SimSeedFromEnv(),
                nullptr) {}

SimDevice::SimDevice(const SimOptions& options, uint64_t seed,
                     std::unique_ptr<SimStore> image)
    : options_(options), seed_(seed) {
  limits_.logical_block_size = options.logical_block_size;
  limits_.physical_block_size =
      std::max(options.physical_block_size, options.logical_block_size);
  limits_.capacity_bytes = options.capacity_bytes -
                           options.capacity_bytes % options.logical_block_size;
  limits_.dma_alignment = options.dma_alignment;
  limits_.max_io_bytes = options.max_io_bytes;
  limits_.max_segments = options.max_segments;
  limits_.atomic_write_unit_min = options.atomic_write_unit_min;
  limits_.atomic_write_unit_max = options.atomic_write_unit_max;
  limits_.direct = options.direct;
  limits_.read_only = options.read_only;
  limits_.volatile_cache = true;
  base::MutexLock lock(&mu_);
  rng_.seed(seed);
  if (!image)
    image = std::make_unique<SimStore>(limits_.capacity_bytes, Mix(seed));
  media_ = std::move(image);
  durable_ = media_->Clone();
  if (options.background) thread_ = std::thread([this] { BackgroundLoop(); });
}

SimDevice::~SimDevice() {
  Drain();
  if (!thread_.joinable()) return;
  {
    base::MutexLock lock(&mu_);
    stopping_ = true;
    work_cv_.SignalAll();
  }
  thread_.join();
}

std::string SimDevice::name() const { return absl::StrCat("sim:seed=", seed_); }

uint64_t SimDevice::now() const {
  base::MutexLock lock(&mu_);
  return now_;
}

uint64_t SimDevice::Uniform(uint64_t n) { return n <= 1 ? 0 : rng_() % n; }

bool SimDevice::Chance(double p) {
  if (p >= 1.0) return true;
  if (p <= 0.0) return false;
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53 < p;
}

// ---- submission and completion ----

void SimDevice::Submit(Bio* bio) {
  inflight_.fetch_add(1);
  int err = ValidateBio(*bio, limits_, nullptr);
  if (err != 0) {
    std::string why;
    ValidateBio(*bio, limits_, &why);
    fprintf(stderr, "%s: rejected bio: %s (%s)\n", name().c_str(), why.c_str(),
            base::ErrnoName(err));
    {
      base::MutexLock lock(&mu_);
      counters_.rejected++;
    }
    Complete(bio, err);
    return;
  }
  {
    base::MutexLock lock(&mu_);
    if (!crashed_) {
      const uint64_t min = std::max<uint32_t>(options_.min_latency_ticks, 1);
      const uint64_t max = std::max<uint64_t>(options_.max_latency_ticks, min);
      const uint64_t at = now_ + min + Uniform(max - min + 1);
      queue_.emplace(EventKey{at, next_seq_++}, Event{bio, completed_writes_});
      work_cv_.Signal();
      return;
    }
    counters_.bios[static_cast<int>(bio->op)]++;
    counters_.failed++;
  }
  Complete(bio, -EIO);  // the device is dead after a crash
}

void SimDevice::Complete(Bio* bio, int64_t result) {
  bio->result = result;
  bio->end_io(bio);
  if (inflight_.fetch_sub(1) == 1) {
    base::MutexLock lock(&mu_);
    idle_cv_.SignalAll();
  }
}

bool SimDevice::Step(uint64_t limit) {
  Bio* bio = nullptr;
  int64_t result = 0;
  {
    base::MutexLock lock(&mu_);
    if (queue_.empty()) return false;
    auto it = queue_.begin();
    if (it->first.first > limit) return false;
    now_ = std::max(now_, it->first.first);
    const Event ev = it->second;
    queue_.erase(it);
    result = Execute(ev);
    bio = ev.bio;
  }
  Complete(bio, result);
  return true;
}

int SimDevice::RunFor(uint64_t ticks) {
  const uint64_t target = now() + ticks;
  int n = 0;
  while (Step(target)) ++n;
  base::MutexLock lock(&mu_);
  now_ = std::max(now_, target);
  return n;
}

int SimDevice::RunUntilIdle() {
  int n = 0;
  while (Step(UINT64_MAX)) ++n;
  return n;
}

void SimDevice::Drain() {
  if (!options_.background) RunUntilIdle();
  base::MutexLock lock(&mu_);
  while (inflight_.load() > 0) idle_cv_.Wait(&mu_);
}

void SimDevice::BackgroundLoop() {
  for (;;) {
    {
      base::MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) work_cv_.Wait(&mu_);
      if (queue_.empty()) return;
    }
    if (options_.background_tick_us > 0) usleep(options_.background_tick_us);
    Step(UINT64_MAX);
  }
}

// ---- executing bios ----

int64_t SimDevice::Execute(const Event& ev) {
  const Bio& bio = *ev.bio;
  const int op = static_cast<int>(bio.op);
  counters_.bios[op]++;
  if (int err = FaultFor(bio)) {
    counters_.failed++;
    return err;
  }
  int64_t res = static_cast<int64_t>(bio.len);
  if (bio.op == BioOp::kRead) {
    uint64_t pos = bio.offset;
    for (const struct iovec& v : bio.iov) {
      media_->Read(pos, static_cast<uint8_t*>(v.iov_base), v.iov_len);
      pos += v.iov_len;
    }
  } else if (bio.op == BioOp::kFlush) {
    ExecuteFlush(ev.flush_covers);
    res = 0;
  } else {
    res = ExecuteWrite(bio);
  }
  counters_.bytes[op] += bio.len;
  return res;
}

std::vector<uint8_t> SimDevice::WriteData(const Bio& bio) {
  std::vector<uint8_t> data(bio.len);
  if (bio.op == BioOp::kWrite) {
    uint64_t pos = 0;
    for (const struct iovec& v : bio.iov) {
      memcpy(data.data() + pos, v.iov_base, v.iov_len);
      pos += v.iov_len;
    }
  } else if (bio.op == BioOp::kDiscard) {
    // A discarded range may read back as anything: make it fresh garbage.
    for (uint64_t i = 0; i + 8 <= data.size(); i += 8) {
      uint64_t v = rng_();
      memcpy(data.data() + i, &v, 8);
    }
  }
  return data;
}

int64_t SimDevice::ExecuteWrite(const Bio& bio) {
  std::vector<uint8_t> data = WriteData(bio);
  media_->Write(bio.offset, data.data(), data.size());
  const uint64_t seq = ++completed_writes_;
  if (bio.flags & kBioFua) {
    counters_.fua_writes++;
    durable_->Write(bio.offset, data.data(), data.size());
    TrimVolatile(bio.offset, bio.len);
  } else {
    volatile_bytes_ += data.size();
    volatile_.push_back(
        {seq, bio.offset, std::move(data), (bio.flags & kBioAtomic) != 0});
    while (volatile_bytes_ > options_.cache_bytes) DestageOldest();
  }
  return static_cast<int64_t>(bio.len);
}

void SimDevice::ExecuteFlush(uint64_t covers) {
  while (!volatile_.empty() && volatile_.front().seq <= covers) DestageOldest();
}

void SimDevice::DestageOldest() {
  const VolatileWrite& w = volatile_.front();
  durable_->Write(w.offset, w.data.data(), w.data.size());
  volatile_bytes_ -= w.data.size();
  volatile_.pop_front();
}

// Older cached writes to a range that is now durable must never resurface.
void SimDevice::TrimVolatile(uint64_t off, uint64_t len) {
  const uint64_t end = off + len;
  std::deque<VolatileWrite> kept;
  for (VolatileWrite& w : volatile_) {
    const uint64_t w_end = w.offset + w.data.size();
    if (w_end <= off || w.offset >= end) {
      kept.push_back(std::move(w));
      continue;
    }
    if (w.offset < off)
      kept.push_back({w.seq, w.offset,
                      std::vector<uint8_t>(w.data.begin(),
                                           w.data.begin() + (off - w.offset)),
                      w.atomic});
    if (w_end > end)
      kept.push_back({w.seq, end,
                      std::vector<uint8_t>(w.data.begin() + (end - w.offset),
                                           w.data.end()),
                      w.atomic});
  }
  volatile_.swap(kept);
  volatile_bytes_ = 0;
  for (const VolatileWrite& w : volatile_) volatile_bytes_ += w.data.size();
}

int SimDevice::FaultFor(const Bio& bio) {
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    const SimFault& f = it->second;
    if (!(f.op_mask & SimOpBit(bio.op))) continue;
    if (bio.op != BioOp::kFlush) {
      const uint64_t f_end =
          f.len > UINT64_MAX - f.offset ? UINT64_MAX : f.offset + f.len;
      if (bio.offset + bio.len <= f.offset || bio.offset >= f_end) continue;
    }
    if (!Chance(f.probability)) continue;
    const int err = f.error;
    if (!f.sticky) faults_.erase(it);
    return err;
  }
  return 0;
}

// ---- faults, crash, reboot, inspection ----

int SimDevice::AddFault(const SimFault& fault) {
  base::MutexLock lock(&mu_);
  faults_[next_fault_id_] = fault;
  return next_fault_id_++;
}

void SimDevice::RemoveFault(int id) {
  base::MutexLock lock(&mu_);
  faults_.erase(id);
}

void SimDevice::ClearFaults() {
  base::MutexLock lock(&mu_);
  faults_.clear();
}

void SimDevice::PersistRuns(uint64_t off, const std::vector<uint8_t>& data,
                            double p, bool whole) {
  const uint64_t lbs = limits_.logical_block_size;
  const uint64_t nblocks = data.size() / lbs;
  if (whole || nblocks <= 1) {
    if (Chance(p)) durable_->Write(off, data.data(), data.size());
    return;
  }
  for (uint64_t b = 0; b < nblocks;) {
    const uint64_t run = 1 + Uniform(std::min<uint64_t>(nblocks - b, 8));
    if (Chance(p))
      durable_->Write(off + b * lbs, data.data() + b * lbs, run * lbs);
    b += run;
  }
}

void SimDevice::Crash() {
  std::vector<Bio*> dead;
  {
    base::MutexLock lock(&mu_);
    if (crashed_) return;
    crashed_ = true;
    for (const VolatileWrite& w : volatile_)
      PersistRuns(w.offset, w.data, options_.crash_keep_probability, w.atomic);
    volatile_.clear();
    volatile_bytes_ = 0;
    for (const auto& [key, ev] : queue_) {
      const Bio& b = *ev.bio;
      if (ChangesData(b.op))
        PersistRuns(b.offset, WriteData(b), options_.tear_keep_probability,
                    (b.flags & kBioAtomic) != 0);
      counters_.bios[static_cast<int>(b.op)]++;
      counters_.failed++;
      dead.push_back(ev.bio);
    }
    queue_.clear();
    media_ = durable_->Clone();
  }
  for (Bio* bio : dead) Complete(bio, -EIO);
}

bool SimDevice::crashed() const {
  base::MutexLock lock(&mu_);
  return crashed_;
}

std::unique_ptr<SimDevice> SimDevice::Reboot() const {
  std::unique_ptr<SimStore> image;
  {
    base::MutexLock lock(&mu_);
    if (!crashed_) {
      fprintf(stderr, "SimDevice::Reboot: the device has not crashed\n");
      abort();
    }
    image = durable_->Clone();
  }
  return std::unique_ptr<SimDevice>(
      new SimDevice(options_, seed_ + 1, std::move(image)));
}

void SimDevice::PeekDurable(uint64_t off, void* dst, uint64_t len) const {
  base::MutexLock lock(&mu_);
  durable_->Read(off, static_cast<uint8_t*>(dst), len);
}

void SimDevice::PeekMedia(uint64_t off, void* dst, uint64_t len) const {
  base::MutexLock lock(&mu_);
  media_->Read(off, static_cast<uint8_t*>(dst), len);
}

SimCounters SimDevice::counters() const {
  base::MutexLock lock(&mu_);
  return counters_;
}

}  // namespace block
