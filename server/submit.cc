#include "server/submit.h"

#include <cerrno>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/wire_encode.h"

namespace server {

namespace {

// Completions waiting to be written past which reading pauses.
constexpr size_t kQueuedPauseFactor = 2;
// Room kept in a CompletionBatch for framing beyond the completions.
constexpr uint64_t kBatchSlack = 4096;
// A CompletionBatch closes once it holds this much: the client handles a
// message only when all of it has arrived, so one huge batch of read data
// would turn a deep queue into lock-step rounds (docs/server.md).
constexpr uint64_t kBatchSoftBytes = 1 << 20;

v1::Completion Refused(uint64_t tag, int neg_errno, std::string why) {
  v1::Completion c;
  c.set_tag(tag);
  c.set_errnum(-neg_errno);
  c.set_message(std::move(why));
  return c;
}

// Data bytes a request moves (read length, write payload).
uint64_t DataBytes(const v1::SubmitRequest& q) {
  switch (q.op_case()) {
    case v1::SubmitRequest::kRead:
      return q.read().length() > 0 ? static_cast<uint64_t>(q.read().length())
                                   : 0;
    case v1::SubmitRequest::kWrite:
      return q.write().data().size();
    case v1::SubmitRequest::kMapWrite:
      return q.map_write().data().size();
    default:
      return 0;
  }
}

void SetOutcome(const Outcome& o, v1::Completion* c) {
  c->set_errnum(o.errnum);
  if (!o.ok()) c->set_message(o.message);
}

}  // namespace

SubmitReactor::SubmitReactor(Ops* ops, Executor* executor,
                             const StreamOptions& options)
    : ops_(ops), executor_(executor), options_(options) {
  grpc::ByteBuffer* first;
  {
    base::MutexLock l(&mu_);
    v1::CompletionBatch batch;
    v1::StreamLimits* limits = batch.mutable_limits();
    limits->set_max_in_flight_requests(options_.max_in_flight_requests);
    limits->set_max_in_flight_bytes(options_.max_in_flight_bytes);
    limits->set_max_bytes_per_request(options_.max_bytes_per_request);
    limits->set_max_message_bytes(options_.max_message_bytes);
    write_buf_ = client::codec::EncodeCompletionBatch(&batch);
    writing_ = true;
    read_outstanding_ = true;
    first = &write_buf_;
  }
  StartWrite(first);
  StartRead(&read_buf_);
}

void SubmitReactor::OnReadDone(bool ok) {
  v1::SubmitBatch batch;
  const bool parsed = ok && client::codec::Decode(&read_buf_, &batch);
  if (!parsed) {  // half-close, cancellation, a broken stream or bad bytes
    {
      base::MutexLock l(&mu_);
      read_outstanding_ = false;
      reads_done_ = true;
      if (ok) bad_message_ = broken_ = true;
    }
    MaybeFinish();
    return;
  }
  Dispatch(Admit(&batch));
  bool read = false;
  {
    base::MutexLock l(&mu_);
    read_outstanding_ = false;
    if (broken_) {
      reads_done_ = true;
    } else if (queued_.size() >
               kQueuedPauseFactor * options_.max_in_flight_requests) {
      read_paused_ = true;
    } else {
      read_outstanding_ = read = true;
    }
  }
  if (read) StartRead(&read_buf_);
  MaybeFinish();
}

std::vector<SubmitReactor::Chain> SubmitReactor::Admit(v1::SubmitBatch* batch) {
  std::vector<Chain> chains;
  std::vector<v1::Completion> refused;
  {
    base::MutexLock l(&mu_);
    bool prev_refused = false;
    auto* requests = batch->mutable_requests();
    for (int i = 0; i < requests->size(); ++i) {
      v1::SubmitRequest& q = (*requests)[i];
      uint64_t bytes = 0;
      std::string why;
      int err = 0;
      if (q.link() && i == 0) {
        err = -EINVAL;
        why = "link on the first request of a batch";
      } else if (q.link() && prev_refused) {
        err = -ECANCELED;
        why = "not run: the request it is linked to was refused";
      } else {
        err = AdmitOne(q, &bytes, &why);
      }
      prev_refused = err < 0;
      if (err < 0) {
        refused.push_back(Refused(q.tag(), err, std::move(why)));
        continue;
      }
      tags_.insert(q.tag());
      in_flight_bytes_ += bytes;
      if (!q.link()) chains.emplace_back();
      chains.back().push_back(Item{std::move(q), bytes});
    }
  }
  for (v1::Completion& c : refused) Complete(std::move(c), 0, false);
  return chains;
}

int SubmitReactor::AdmitOne(const v1::SubmitRequest& q, uint64_t* bytes,
                            std::string* why) {
  if (q.op_case() == v1::SubmitRequest::OP_NOT_SET) {
    *why = "request without an operation";
    return -EINVAL;
  }
  if (tags_.count(q.tag()) != 0) {
    *why = absl::StrCat("tag ", q.tag(), " is already in flight");
    return -EINVAL;
  }
  *bytes = DataBytes(q);
  if (*bytes > options_.max_bytes_per_request) {
    *why = absl::StrCat(*bytes,
                        " data bytes is more than "
                        "max_bytes_per_request (",
                        options_.max_bytes_per_request, ")");
    return -EMSGSIZE;
  }
  if (tags_.size() >= options_.max_in_flight_requests) {
    *why = absl::StrCat("max_in_flight_requests (",
                        options_.max_in_flight_requests, ") reached");
    return -EAGAIN;
  }
  if (in_flight_bytes_ + *bytes > options_.max_in_flight_bytes) {
    *why = absl::StrCat("max_in_flight_bytes (", options_.max_in_flight_bytes,
                        ") reached");
    return -EAGAIN;
  }
  return 0;
}

bool SubmitReactor::TryInline(Item* item) {
  const v1::SubmitRequest& q = item->request;
  v1::Completion c;
  c.set_tag(q.tag());
  Outcome o;
  if (q.op_case() == v1::SubmitRequest::kRead) {
    v1::ReadResponse r;
    if (!ops_->TryReadNowait(q.read(), &r, &o)) return false;
    c.set_result(r.result());
    c.set_data(std::move(*r.mutable_data()));
  } else if (q.op_case() == v1::SubmitRequest::kWrite) {
    v1::WriteResponse r;
    if (!ops_->TryWriteNowait(q.write(), &r, &o)) return false;
    c.set_result(r.result());
  } else {
    return false;
  }
  SetOutcome(o, &c);
  Complete(std::move(c), item->bytes, true);
  return true;
}

void SubmitReactor::Dispatch(std::vector<Chain> chains) {
  for (Chain& chain : chains) {
    if (chain.size() == 1 && TryInline(&chain[0])) continue;
    auto shared = std::make_shared<Chain>(std::move(chain));
    {
      base::MutexLock l(&mu_);
      ++tasks_;
    }
    if (executor_->Run([this, shared] { RunChain(shared.get()); })) continue;
    for (Item& item : *shared) {
      Complete(
          Refused(item.request.tag(), -ESHUTDOWN, "iomapd is shutting down"),
          item.bytes, true);
    }
    base::MutexLock l(&mu_);
    --tasks_;
  }
}

void SubmitReactor::RunChain(Chain* chain) {
  bool prev_ok = true;
  for (Item& item : *chain) {
    bool broken;
    {
      base::MutexLock l(&mu_);
      broken = broken_;
    }
    v1::Completion c;
    c.set_tag(item.request.tag());
    if (broken) {
      c = Refused(item.request.tag(), -ECANCELED, "stream ended");
      prev_ok = false;
    } else if (!prev_ok) {
      c = Refused(item.request.tag(), -ECANCELED,
                  "not run: the linked request before it failed");
    } else {
      prev_ok = RunOne(item.request, &c);
    }
    Complete(std::move(c), item.bytes, true);
  }
  {
    base::MutexLock l(&mu_);
    --tasks_;
  }
  MaybeFinish();
}

bool SubmitReactor::RunOne(const v1::SubmitRequest& q, v1::Completion* c) {
  switch (q.op_case()) {
    case v1::SubmitRequest::kNop:
      return true;
    case v1::SubmitRequest::kRead: {
      v1::ReadResponse r;
      SetOutcome(ops_->Read(q.read(), &r), c);
      c->set_result(r.result());
      c->set_data(std::move(*r.mutable_data()));
      return c->errnum() == 0 && r.result() == q.read().length();
    }
    case v1::SubmitRequest::kWrite: {
      v1::WriteResponse r;
      SetOutcome(ops_->Write(q.write(), &r), c);
      c->set_result(r.result());
      return c->errnum() == 0 &&
             r.result() == static_cast<int64_t>(q.write().data().size());
    }
    case v1::SubmitRequest::kFsync: {
      v1::FsyncResponse r;
      SetOutcome(ops_->Fsync(q.fsync(), &r), c);
      break;
    }
    case v1::SubmitRequest::kFallocate: {
      v1::FallocateResponse r;
      SetOutcome(ops_->Fallocate(q.fallocate(), &r), c);
      break;
    }
    case v1::SubmitRequest::kSeek: {
      v1::SeekResponse r;
      SetOutcome(ops_->Seek(q.seek(), &r), c);
      c->set_result(r.result());
      break;
    }
    case v1::SubmitRequest::kTruncate: {
      v1::TruncateResponse r;
      SetOutcome(ops_->Truncate(q.truncate(), &r), c);
      break;
    }
    case v1::SubmitRequest::kUnshare: {
      v1::UnshareResponse r;
      SetOutcome(ops_->Unshare(q.unshare(), &r), c);
      break;
    }
    case v1::SubmitRequest::kFiemap: {
      v1::FiemapResponse* r = c->mutable_fiemap();
      Outcome o = ops_->Fiemap(q.fiemap(), r);
      r->set_errnum(o.errnum);
      SetOutcome(o, c);
      break;
    }
    case v1::SubmitRequest::kStat: {
      v1::StatResponse r;
      SetOutcome(ops_->Stat(q.stat(), &r), c);
      if (c->errnum() == 0) *c->mutable_attr() = r.attr();
      break;
    }
    case v1::SubmitRequest::kCloneRange: {
      v1::CloneRangeResponse r;
      SetOutcome(ops_->CloneRange(q.clone_range(), &r), c);
      c->set_result(r.result());
      break;
    }
    case v1::SubmitRequest::kDedupeRange: {
      v1::DedupeRangeResponse* r = c->mutable_dedupe();
      Outcome o = ops_->DedupeRange(q.dedupe_range(), r);
      r->set_errnum(o.errnum);
      SetOutcome(o, c);
      break;
    }
    case v1::SubmitRequest::kMapWrite: {
      v1::MapWriteResponse r;
      SetOutcome(ops_->MapWrite(q.map_write(), &r), c);
      c->set_result(r.result());
      return c->errnum() == 0 &&
             r.result() == static_cast<int64_t>(q.map_write().data().size());
    }
    case v1::SubmitRequest::OP_NOT_SET:
      SetOutcome(Fail(-EINVAL, "request without an operation"), c);
      break;
  }
  return c->errnum() == 0;
}

void SubmitReactor::Complete(v1::Completion c, uint64_t bytes, bool admitted) {
  grpc::ByteBuffer* start = nullptr;
  {
    base::MutexLock l(&mu_);
    if (broken_) {  // nobody to tell: release the request's accounting
      if (admitted) {
        tags_.erase(c.tag());
        in_flight_bytes_ -= bytes;
      }
      return;
    }
    queued_.push_back(Pending{std::move(c), bytes, admitted});
    if (!writing_ && TakeWrite()) start = &write_buf_;
  }
  if (start != nullptr) StartWrite(start);
}

bool SubmitReactor::TakeWrite() {
  if (queued_.empty() || broken_) return false;
  v1::CompletionBatch batch;
  uint64_t size = 0;
  while (!queued_.empty()) {
    Pending& p = queued_.front();
    uint64_t n = p.completion.ByteSizeLong() + 16;
    if (batch.completions_size() > 0 &&
        (size >= kBatchSoftBytes ||
         size + n + kBatchSlack > options_.max_message_bytes)) {
      break;
    }
    size += n;
    // Released as it goes on the wire: the client may reuse the tag and
    // the window as soon as it sees the completion.
    if (p.admitted) {
      tags_.erase(p.completion.tag());
      in_flight_bytes_ -= p.bytes;
    }
    *batch.add_completions() = std::move(p.completion);
    queued_.pop_front();
  }
  write_buf_ = client::codec::EncodeCompletionBatch(&batch);
  writing_ = true;
  return true;
}

void SubmitReactor::OnWriteDone(bool ok) {
  grpc::ByteBuffer* start = nullptr;
  bool read = false;
  {
    base::MutexLock l(&mu_);
    writing_ = false;
    if (!ok) broken_ = true;
    if (broken_) {
      for (const Pending& p : queued_) {
        if (!p.admitted) continue;
        tags_.erase(p.completion.tag());
        in_flight_bytes_ -= p.bytes;
      }
      queued_.clear();
      if (!read_outstanding_) reads_done_ = true;
    } else if (TakeWrite()) {
      start = &write_buf_;
    }
    read = ResumeRead();
  }
  if (start != nullptr) StartWrite(start);
  if (read) StartRead(&read_buf_);
  MaybeFinish();
}

bool SubmitReactor::ResumeRead() {
  if (!read_paused_ || broken_ ||
      queued_.size() > options_.max_in_flight_requests) {
    return false;
  }
  read_paused_ = false;
  read_outstanding_ = true;
  return true;
}

void SubmitReactor::OnCancel() {
  {
    base::MutexLock l(&mu_);
    broken_ = true;
    for (const Pending& p : queued_) {
      if (!p.admitted) continue;
      tags_.erase(p.completion.tag());
      in_flight_bytes_ -= p.bytes;
    }
    queued_.clear();
    // A paused stream has no read to fail; nothing more will arrive.
    if (!read_outstanding_) reads_done_ = true;
  }
  MaybeFinish();
}

void SubmitReactor::MaybeFinish() {
  grpc::Status status;
  {
    base::MutexLock l(&mu_);
    if (finished_ || !reads_done_ || tasks_ != 0 || writing_) return;
    if (!queued_.empty() && !broken_) return;
    finished_ = true;
    if (bad_message_) {
      status = grpc::Status(grpc::StatusCode::INTERNAL,
                            "a SubmitBatch message did not parse");
    } else if (broken_) {
      status = grpc::Status(grpc::StatusCode::CANCELLED, "stream ended");
    }
  }
  Finish(status);
}

void SubmitReactor::OnDone() { delete this; }

}  // namespace server
