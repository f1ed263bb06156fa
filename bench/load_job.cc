#include "bench/load_job.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <deque>
#include <future>
#include <memory>
#include <random>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "base/errno.h"
#include "base/mutex.h"

namespace bench {
namespace {

namespace v1 = ::iomapd::v1;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kLayoutChunk = 1 << 20;
constexpr uint32_t kLayoutDepth = 8;

uint64_t XorShift(uint64_t* state) {
  uint64_t x = *state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *state = x;
  return x;
}

// Incompressible bytes, so no layer can shortcut zeroes.
std::string RandomBytes(uint64_t length, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(length, '\0');
  for (uint64_t i = 0; i < length; i += 8) {
    const uint64_t v = rng();
    out.replace(i, std::min<uint64_t>(8, length - i),
                reinterpret_cast<const char*>(&v),
                std::min<uint64_t>(8, length - i));
  }
  return out;
}

// "" or "b": 0; "k", "kb", "kib" (any case): 10; m 20, g 30, t 40; else -1.
int SuffixShift(std::string suffix) {
  for (char& ch : suffix) ch = static_cast<char>(tolower(ch));
  if (suffix.empty() || suffix == "b") return 0;
  const std::string units = "kmgt";
  for (size_t j = 0; j < units.size(); j++) {
    const std::string u(1, units[j]);
    if (suffix == u || suffix == u + "b" || suffix == u + "ib") {
      return static_cast<int>(10 * (j + 1));
    }
  }
  return -1;
}

bool IsRandom(Pattern p) {
  return p == Pattern::kRandRead || p == Pattern::kRandWrite ||
         p == Pattern::kRandRW;
}

// Keeps spec.iodepth requests in flight: each completion claims and submits
// the next request from the completion callback.
class Runner {
 public:
  Runner(client::AsyncStream* stream, const client::OpenFile& file,
         const JobSpec& spec)
      : stream_(stream),
        file_(file),
        spec_(spec),
        blocks_(spec.size / spec.bs),
        limit_(spec.runtime_s > 0 ? 0 : blocks_),
        data_(std::make_shared<const std::string>(
            spec.pattern == Pattern::kRead || spec.pattern == Pattern::kRandRead
                ? std::string()
                : RandomBytes(spec.bs, spec.seed))),
        rng_(spec.seed | 1) {}

  JobResult Run();

 private:
  // The request a free slot should send next, if any.
  struct Claim {
    bool go = false;
    bool read = false;
    int64_t offset = 0;
  };

  Claim ClaimLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Send(const Claim& claim);
  void Complete(const Claim& claim, Clock::time_point start,
                const v1::Completion& c);
  void FailLocked(const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WaitForEnd(Clock::time_point t0);
  v1::SubmitRequest MakeRequest(bool read, int64_t offset) const;

  client::AsyncStream* const stream_;
  const client::OpenFile& file_;
  const JobSpec spec_;
  const uint64_t blocks_;
  const uint64_t limit_;  // requests to send; 0: until stopped
  // Every write's payload, sent from here without a copy
  // (AsyncStream::SubmitWrite).
  const std::shared_ptr<const std::string> data_;

  base::Mutex mu_;
  base::CondVar cv_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint32_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t issued_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t rng_ ABSL_GUARDED_BY(mu_);
  uint64_t cursor_ ABSL_GUARDED_BY(mu_) = 0;  // sequential patterns
  Clock::time_point last_done_ ABSL_GUARDED_BY(mu_);
  JobResult result_ ABSL_GUARDED_BY(mu_);
};

Runner::Claim Runner::ClaimLocked() {
  Claim claim;
  if (stop_ || (limit_ != 0 && issued_ >= limit_)) return claim;
  claim.go = true;
  issued_++;
  in_flight_++;
  const uint64_t draw = XorShift(&rng_);
  switch (spec_.pattern) {
    case Pattern::kRead:
    case Pattern::kRandRead:
      claim.read = true;
      break;
    case Pattern::kRandRW:
      claim.read = (draw >> 32) % 100 < spec_.rwmixread;
      break;
    default:
      break;
  }
  const uint64_t block =
      IsRandom(spec_.pattern) ? XorShift(&rng_) % blocks_ : cursor_++ % blocks_;
  claim.offset = static_cast<int64_t>(block * spec_.bs);
  return claim;
}

v1::SubmitRequest Runner::MakeRequest(bool read, int64_t offset) const {
  v1::SubmitRequest request;
  if (read) {
    v1::ReadRequest* r = request.mutable_read();
    *r->mutable_handle() = file_.handle;
    r->set_open_id(file_.open_id);
    r->set_offset(offset);
    r->set_length(static_cast<int64_t>(spec_.bs));
    r->set_flags(spec_.io_flags);
  } else {
    v1::WriteRequest* w = request.mutable_write();
    *w->mutable_handle() = file_.handle;
    w->set_open_id(file_.open_id);
    w->set_offset(offset);
    w->set_flags(spec_.io_flags);
  }
  return request;
}

void Runner::Send(const Claim& claim) {
  if (!claim.go) return;
  const Clock::time_point start = Clock::now();
  auto done = [this, claim, start](const v1::Completion& c) {
    Complete(claim, start, c);
  };
  v1::SubmitRequest request = MakeRequest(claim.read, claim.offset);
  absl::Status st =
      claim.read
          ? stream_->Submit(std::move(request), std::move(done))
          : stream_->SubmitWrite(std::move(request), data_, std::move(done));
  if (st.ok()) return;
  base::MutexLock lock(&mu_);
  FailLocked("submit: " + st.ToString());
  if (--in_flight_ == 0) cv_.SignalAll();
}

void Runner::FailLocked(const std::string& why) {
  if (result_.errors++ == 0) result_.first_error = why;
  stop_ = true;  // like fio without continue_on_error
}

void Runner::Complete(const Claim& claim, Clock::time_point start,
                      const v1::Completion& c) {
  const Clock::time_point now = Clock::now();
  Claim next;
  {
    base::MutexLock lock(&mu_);
    DirectionResult& d = claim.read ? result_.read : result_.write;
    if (c.errnum() == 0 && c.result() == static_cast<int64_t>(spec_.bs)) {
      d.ios++;
      d.bytes += spec_.bs;
      d.latency.Record(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - start)
              .count()));
    } else {
      FailLocked(std::string(claim.read ? "read" : "write") + " at offset " +
                 std::to_string(claim.offset) + ": errnum " +
                 std::to_string(c.errnum()) + ", " +
                 std::to_string(c.result()) + " of " +
                 std::to_string(spec_.bs) + " bytes" +
                 (c.message().empty() ? "" : ": " + c.message()));
    }
    last_done_ = now;
    in_flight_--;
    next = ClaimLocked();
    if (in_flight_ == 0) cv_.SignalAll();
  }
  Send(next);
}

void Runner::WaitForEnd(Clock::time_point t0) {
  const Clock::time_point deadline =
      t0 + std::chrono::duration_cast<Clock::duration>(
               std::chrono::duration<double>(spec_.runtime_s));
  base::MutexLock lock(&mu_);
  while (in_flight_ > 0) {
    if (limit_ != 0 || stop_) {
      cv_.Wait(&mu_);
      continue;
    }
    const Clock::time_point now = Clock::now();
    if (now >= deadline) {
      stop_ = true;
      continue;
    }
    cv_.WaitFor(&mu_, deadline - now);
  }
}

JobResult Runner::Run() {
  const Clock::time_point t0 = Clock::now();
  for (uint32_t i = 0; i < spec_.iodepth; i++) {
    Claim claim;
    {
      base::MutexLock lock(&mu_);
      last_done_ = t0;
      claim = ClaimLocked();
    }
    Send(claim);
  }
  WaitForEnd(t0);
  base::MutexLock lock(&mu_);
  result_.elapsed_s = std::chrono::duration<double>(last_done_ - t0).count();
  return result_;
}

// SEEK_HOLE from 0 finds no hole before `size`.
bool AlreadyLaidOut(client::Client* client, const client::OpenFile& file,
                    uint64_t size) {
  absl::StatusOr<v1::Attr> attr = client->Stat(file.handle);
  if (!attr.ok() || attr->size() < static_cast<int64_t>(size)) return false;
  absl::StatusOr<int64_t> hole = client->Seek(file, 0, v1::WHENCE_HOLE);
  return hole.ok() && *hole >= static_cast<int64_t>(size);
}

absl::Status CheckWritten(const v1::Completion& c, uint64_t want) {
  if (c.errnum() == 0 && c.result() == static_cast<int64_t>(want)) {
    return absl::OkStatus();
  }
  return base::ErrnoStatus(c.errnum() ? -c.errnum() : -EIO,
                           "layout write returned " +
                               std::to_string(c.result()) + " of " +
                               std::to_string(want) + " bytes: " + c.message());
}

}  // namespace

absl::StatusOr<Pattern> ParsePattern(const std::string& rw) {
  for (Pattern p : {Pattern::kRead, Pattern::kWrite, Pattern::kRandRead,
                    Pattern::kRandWrite, Pattern::kRandRW}) {
    if (rw == PatternName(p)) return p;
  }
  return base::ErrnoStatus(
      -EINVAL,
      "rw=" + rw + ": expected read, write, randread, randwrite or randrw");
}

const char* PatternName(Pattern pattern) {
  switch (pattern) {
    case Pattern::kRead:
      return "read";
    case Pattern::kWrite:
      return "write";
    case Pattern::kRandRead:
      return "randread";
    case Pattern::kRandWrite:
      return "randwrite";
    case Pattern::kRandRW:
      return "randrw";
  }
  return "?";
}

absl::StatusOr<uint64_t> ParseSize(const std::string& text) {
  const absl::Status bad = base::ErrnoStatus(
      -EINVAL, "bad size '" + text + "' (expected e.g. 4096, 4k, 1m, 1g)");
  size_t i = 0;
  uint64_t value = 0;
  while (i < text.size() && isdigit(static_cast<unsigned char>(text[i]))) {
    const uint64_t digit = text[i++] - '0';
    if (value > (UINT64_MAX - digit) / 10) return bad;
    value = value * 10 + digit;
  }
  if (i == 0) return bad;
  const int shift = SuffixShift(text.substr(i));
  if (shift < 0 || value > (UINT64_MAX >> shift)) return bad;
  return value << shift;
}

void JobResult::Merge(const JobResult& other) {
  for (auto [mine, theirs] : {std::make_pair(&read, &other.read),
                              std::make_pair(&write, &other.write)}) {
    mine->ios += theirs->ios;
    mine->bytes += theirs->bytes;
    mine->latency.Merge(theirs->latency);
  }
  if (errors == 0 && other.errors != 0) first_error = other.first_error;
  errors += other.errors;
  elapsed_s = std::max(elapsed_s, other.elapsed_s);
}

JobResult RunJob(client::AsyncStream* stream, const client::OpenFile& file,
                 const JobSpec& spec) {
  Runner runner(stream, file, spec);
  return runner.Run();
}

uint32_t FitDepth(const v1::StreamLimits& limits, uint64_t bs,
                  uint32_t iodepth) {
  if (limits.max_bytes_per_request() && bs > limits.max_bytes_per_request()) {
    return 0;
  }
  uint64_t depth = iodepth;
  if (limits.max_in_flight_requests()) {
    depth = std::min<uint64_t>(depth, limits.max_in_flight_requests());
  }
  if (limits.max_in_flight_bytes() && bs) {
    depth = std::min<uint64_t>(depth, limits.max_in_flight_bytes() / bs);
  }
  return static_cast<uint32_t>(depth);
}

absl::Status LayOut(client::Client* client, client::AsyncStream* stream,
                    const client::OpenFile& file, uint64_t size, bool* wrote) {
  *wrote = false;
  if (AlreadyLaidOut(client, file, size)) return absl::OkStatus();
  const v1::StreamLimits& limits = stream->limits();
  uint64_t chunk = kLayoutChunk;
  if (limits.max_bytes_per_request()) {
    chunk = std::min<uint64_t>(chunk, limits.max_bytes_per_request());
  }
  const uint32_t depth =
      std::max<uint32_t>(1, FitDepth(limits, chunk, kLayoutDepth));
  const std::string data = RandomBytes(chunk, size);
  std::deque<std::pair<uint64_t, std::future<v1::Completion>>> pending;
  for (uint64_t off = 0; off < size || !pending.empty();) {
    if (off < size && pending.size() < depth) {
      const uint64_t n = std::min(chunk, size - off);
      v1::SubmitRequest request;
      v1::WriteRequest* w = request.mutable_write();
      *w->mutable_handle() = file.handle;
      w->set_open_id(file.open_id);
      w->set_offset(static_cast<int64_t>(off));
      w->set_data(data.data(), n);
      pending.emplace_back(n, stream->SubmitFuture(std::move(request)));
      off += n;
      continue;
    }
    const v1::Completion c = pending.front().second.get();
    absl::Status st = CheckWritten(c, pending.front().first);
    if (!st.ok()) return st;
    pending.pop_front();
  }
  *wrote = true;
  return client->Fsync(file, /*datasync=*/false);
}

}  // namespace bench
