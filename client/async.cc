#include "client/async.h"

#include <cerrno>
#include <chrono>
#include <deque>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "base/errno.h"
#include "base/mutex.h"
#include "client/submit_window.h"
#include "client/wire_encode.h"
#include "grpcpp/client_context.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/client_callback.h"
#include "proto/wire_status.h"

namespace client {

namespace v1 = ::iomapd::v1;

class SubmitReactor;

// Everything the stream and its reactor share. Outlives the reactor (which
// deletes itself in OnDone) for as long as the AsyncStream exists.
//
// Lifetime rule: the reactor holds a gRPC hold (AddHold) from the start
// until no thread will start another operation on it; only then may
// OnDone run and delete it. Every StartWrite/StartWritesDone made outside a
// reaction happens before that hold is released.
struct AsyncStream::State {
  explicit State(const AsyncOptions& o) : options(o) {}

  const AsyncOptions options;
  std::unique_ptr<grpc::GenericStub> stub;  // set before the call starts
  SubmitReactor* reactor = nullptr;         // valid until the hold is released
  v1::StreamLimits limits;                  // written once, before Open returns

  mutable base::Mutex mu;
  base::CondVar cv;
  bool have_limits ABSL_GUARDED_BY(mu) = false;
  bool writing ABSL_GUARDED_BY(mu) = false;
  bool closing ABSL_GUARDED_BY(mu) = false;
  bool read_done ABSL_GUARDED_BY(mu) = false;    // server ended its side
  bool no_more_ops ABSL_GUARDED_BY(mu) = false;  // hold about to go
  bool done ABSL_GUARDED_BY(mu) = false;         // OnDone ran
  grpc::Status final_status ABSL_GUARDED_BY(mu);
  uint64_t next_tag ABSL_GUARDED_BY(mu) = 1;
  internal::SubmitWindow window ABSL_GUARDED_BY(mu);
  std::deque<v1::SubmitRequest> queue ABSL_GUARDED_BY(mu);
  // SubmitWrite's data of queued requests, by tag.
  std::map<uint64_t, codec::Payload> payloads ABSL_GUARDED_BY(mu);
  struct Pending {
    CompletionCallback done;
    uint64_t bytes = 0;
  };
  std::map<uint64_t, Pending> outstanding ABSL_GUARDED_BY(mu);
};

namespace {

using State = AsyncStream::State;

// Upper bound of the field headers a SubmitWrite payload adds.
constexpr uint64_t kPayloadOverhead = 16;

// Encoded size of the SubmitWrite data of the queued request `tag` (0:
// none).
uint64_t PayloadBytes(const State& s, uint64_t tag)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
  if (s.payloads.empty()) return 0;
  auto it = s.payloads.find(tag);
  return it == s.payloads.end() ? 0 : it->second->size() + kPayloadOverhead;
}

// The payloads of `batch`'s requests, in order (empty when none has one),
// which leave the queue with them.
std::vector<codec::Payload> TakePayloads(State& s, const v1::SubmitBatch& batch)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
  std::vector<codec::Payload> out;
  if (s.payloads.empty()) return out;
  out.resize(batch.requests_size());
  for (int i = 0; i < batch.requests_size(); i++) {
    auto it = s.payloads.find(batch.requests(i).tag());
    if (it == s.payloads.end()) continue;
    out[i] = std::move(it->second);
    s.payloads.erase(it);
  }
  return out;
}

// What a thread must do on the reactor once it has dropped the lock.
struct Next {
  bool write = false;         // StartWrite(&out)
  bool writes_done = false;   // StartWritesDone()
  bool release_hold = false;  // RemoveHold() (last thing it does)
};

}  // namespace

// The Submit call is made through a generic stub so that its messages are
// encoded here (client/wire_encode.h: write data is not copied) and
// decoded as the generated stub would.
class SubmitReactor
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit SubmitReactor(std::shared_ptr<State> state)
      : state_(std::move(state)) {}

  grpc::ClientContext* context() { return &ctx_; }

  void Begin(grpc::GenericStub* stub) {
    stub->PrepareBidiStreamingCall(&ctx_, "/iomapd.v1.Iomapd/Submit",
                                   grpc::StubOptions(), this);
    AddHold();
    StartRead(&in_);
    StartCall();
  }

  // Decides the next wire operation. REQUIRES: state_->mu held and the
  // hold not yet released (no_more_ops false), or a reaction running.
  Next Plan() {
    State& s = *state_;
    s.mu.AssertHeld();
    Next next;
    if (s.no_more_ops || s.writing) return next;
    if (!s.queue.empty() && !s.read_done) {
      v1::SubmitBatch batch = internal::TakeBatch(
          &s.queue, s.options.max_requests_per_batch,
          s.limits.max_message_bytes(), s.options.max_batch_bytes,
          [&s](const v1::SubmitRequest& r) {
            return internal::EncodedBytes(r) + PayloadBytes(s, r.tag());
          });
      out_ = codec::EncodeSubmitBatch(&batch, TakePayloads(s, batch));
      s.writing = true;
      next.write = true;
      return next;
    }
    if (s.closing || s.read_done) {
      next.writes_done = !s.read_done;
      next.release_hold = true;
      s.no_more_ops = true;
    }
    return next;
  }

  // Carries out `next` without the lock.
  void Run(const Next& next) {
    if (next.write) StartWrite(&out_);
    if (next.writes_done) StartWritesDone();
    if (next.release_hold) RemoveHold();
  }

  void OnWriteDone(bool ok) override {
    Next next;
    {
      base::MutexLock lock(&state_->mu);
      state_->writing = false;
      if (!ok) state_->read_done = true;  // the call is failing
      next = Plan();
    }
    Run(next);
  }

  void OnReadDone(bool ok) override {
    v1::CompletionBatch batch;
    if (ok && !codec::Decode(&in_, &batch)) {
      // As the generated stub does: a message that does not parse ends
      // the call.
      context()->TryCancel();
      ok = false;
    }
    if (!ok) {
      Next next;
      {
        base::MutexLock lock(&state_->mu);
        state_->read_done = true;
        next = Plan();
      }
      Run(next);
      return;
    }
    if (batch.has_limits()) TakeLimits(batch.limits());
    for (const v1::Completion& c : batch.completions()) Complete(c);
    StartRead(&in_);
  }

  void OnDone(const grpc::Status& status) override {
    const int err = wire::ErrnumOf(status);
    FailAll(err ? err : ECONNRESET,
            "Submit stream ended before completion: " + status.error_message());
    {
      base::MutexLock lock(&state_->mu);
      state_->final_status = status;
      state_->done = true;
      state_->reactor = nullptr;
      state_->cv.SignalAll();
    }
    delete this;
  }

 private:
  void TakeLimits(const v1::StreamLimits& limits) {
    base::MutexLock lock(&state_->mu);
    if (state_->have_limits) return;
    state_->limits = limits;
    state_->window = internal::SubmitWindow(state_->limits);
    state_->have_limits = true;
    state_->cv.SignalAll();
  }

  void Complete(const v1::Completion& completion) {
    CompletionCallback done;
    {
      base::MutexLock lock(&state_->mu);
      auto it = state_->outstanding.find(completion.tag());
      if (it == state_->outstanding.end()) return;  // not ours
      done = std::move(it->second.done);
      state_->window.Release(it->second.bytes);
      state_->outstanding.erase(it);
      state_->cv.SignalAll();
    }
    if (done) done(completion);
  }

  void FailAll(int errnum, const std::string& message) {
    std::map<uint64_t, State::Pending> failed;
    {
      base::MutexLock lock(&state_->mu);
      failed.swap(state_->outstanding);
      state_->queue.clear();
      state_->payloads.clear();
    }
    for (auto& [tag, pending] : failed) {
      v1::Completion c;
      c.set_tag(tag);
      c.set_errnum(errnum);
      c.set_message(message);
      if (pending.done) pending.done(c);
    }
  }

  std::shared_ptr<State> state_;
  grpc::ClientContext ctx_;
  grpc::ByteBuffer in_;   // owned by the read in flight
  grpc::ByteBuffer out_;  // owned by the write in flight
};

namespace {

absl::Status StreamEnded(const grpc::Status& status) {
  int err = wire::ErrnumOf(status);
  if (err == 0) err = EPIPE;
  return base::ErrnoStatus(-err,
                           "Submit stream ended: " + status.error_message());
}

}  // namespace

absl::StatusOr<std::unique_ptr<AsyncStream>> AsyncStream::Open(
    std::shared_ptr<grpc::ChannelInterface> channel,
    const AsyncOptions& options) {
  auto state = std::make_shared<State>(options);
  state->stub = std::make_unique<grpc::GenericStub>(std::move(channel));
  state->reactor = new SubmitReactor(state);
  state->reactor->Begin(state->stub.get());
  std::unique_ptr<AsyncStream> stream(new AsyncStream(state));
  {
    base::MutexLock lock(&state->mu);
    const auto timeout = std::chrono::milliseconds(options.limits_timeout_ms);
    while (!state->have_limits && !state->read_done) {
      if (!state->cv.WaitFor(&state->mu, timeout)) break;
    }
    if (state->have_limits) return stream;
    if (!state->no_more_ops) state->reactor->context()->TryCancel();
  }
  absl::Status closed = stream->Close();  // waits for OnDone
  if (!closed.ok()) return closed;
  return base::ErrnoStatus(-ETIMEDOUT, "Submit stream: no limits announced");
}

AsyncStream::AsyncStream(std::shared_ptr<State> state)
    : state_(std::move(state)) {}

AsyncStream::~AsyncStream() { Close().IgnoreError(); }

const v1::StreamLimits& AsyncStream::limits() const { return state_->limits; }

size_t AsyncStream::in_flight() const {
  base::MutexLock lock(&state_->mu);
  return state_->outstanding.size();
}

absl::Status AsyncStream::Submit(v1::SubmitRequest request,
                                 CompletionCallback done) {
  request.set_link(false);
  std::vector<v1::SubmitRequest> chain;
  chain.push_back(std::move(request));
  std::vector<CompletionCallback> callbacks;
  callbacks.push_back(std::move(done));
  return Enqueue(std::move(chain), std::move(callbacks));
}

absl::Status AsyncStream::SubmitWrite(v1::SubmitRequest request,
                                      std::shared_ptr<const std::string> data,
                                      CompletionCallback done) {
  if (!request.has_write() || !request.write().data().empty() ||
      data == nullptr) {
    return base::ErrnoStatus(
        -EINVAL, "SubmitWrite: need a write request without data, and data");
  }
  request.set_link(false);
  std::vector<v1::SubmitRequest> chain;
  chain.push_back(std::move(request));
  std::vector<CompletionCallback> callbacks;
  callbacks.push_back(std::move(done));
  return Enqueue(std::move(chain), std::move(callbacks), std::move(data));
}

std::future<v1::Completion> AsyncStream::SubmitFuture(
    v1::SubmitRequest request) {
  auto promise = std::make_shared<std::promise<v1::Completion>>();
  std::future<v1::Completion> future = promise->get_future();
  absl::Status st =
      Submit(std::move(request),
             [promise](const v1::Completion& c) { promise->set_value(c); });
  if (!st.ok()) {
    v1::Completion failed;
    failed.set_errnum(-base::ErrnoOf(st));
    failed.set_message(std::string(st.message()));
    promise->set_value(failed);
  }
  return future;
}

absl::Status AsyncStream::SubmitLinked(std::vector<v1::SubmitRequest> chain,
                                       std::vector<CompletionCallback> done) {
  if (chain.empty() || chain.size() != done.size()) {
    return base::ErrnoStatus(-EINVAL,
                             "SubmitLinked: need one callback per request");
  }
  for (size_t i = 0; i < chain.size(); i++) chain[i].set_link(i > 0);
  return Enqueue(std::move(chain), std::move(done));
}

namespace {

// Waits until the window admits the chain. REQUIRES: s.mu held.
absl::Status WaitForRoom(State& s, size_t count, uint64_t bytes,
                         uint64_t encoded) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
  for (;;) {
    if (s.done || s.read_done) return StreamEnded(s.final_status);
    if (s.closing) return base::ErrnoStatus(-EPIPE, "Submit stream closed");
    switch (s.window.Check(count, bytes, encoded)) {
      case internal::SubmitWindow::Admit::kOk:
        return absl::OkStatus();
      case internal::SubmitWindow::Admit::kTooBig:
        return base::ErrnoStatus(
            -EMSGSIZE, "request(s) of " + std::to_string(bytes) +
                           " bytes are past the server's stream limits");
      case internal::SubmitWindow::Admit::kFull:
        if (s.options.when_full == AsyncOptions::WhenFull::kFail) {
          return base::ErrnoStatus(-EAGAIN, "Submit stream is full");
        }
        s.cv.Wait(&s.mu);
        break;
    }
  }
}

// Checks each request against max_bytes_per_request; sums the chain
// (`extra`: SubmitWrite's data of a chain of one).
absl::Status Measure(const State& s,
                     const std::vector<v1::SubmitRequest>& chain,
                     uint64_t extra, uint64_t* bytes, uint64_t* encoded) {
  const uint64_t per_request = s.limits.max_bytes_per_request();
  *bytes = extra;
  *encoded = extra > 0 ? extra + kPayloadOverhead : 0;
  for (const v1::SubmitRequest& r : chain) {
    const uint64_t b = internal::RequestBytes(r) + extra;
    if (per_request && b > per_request) {
      return base::ErrnoStatus(-EMSGSIZE,
                               "request of " + std::to_string(b) +
                                   " bytes is over max_bytes_per_request " +
                                   std::to_string(per_request));
    }
    *bytes += b - extra;
    *encoded += internal::EncodedBytes(r);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status AsyncStream::Enqueue(std::vector<v1::SubmitRequest> chain,
                                  std::vector<CompletionCallback> done,
                                  std::shared_ptr<const std::string> payload) {
  State& s = *state_;
  uint64_t bytes = 0, encoded = 0;
  const uint64_t extra = payload != nullptr ? payload->size() : 0;
  absl::Status measured = Measure(s, chain, extra, &bytes, &encoded);
  if (!measured.ok()) return measured;
  Next next;
  SubmitReactor* reactor = nullptr;
  {
    base::MutexLock lock(&s.mu);
    absl::Status room = WaitForRoom(s, chain.size(), bytes, encoded);
    if (!room.ok()) return room;
    s.window.Acquire(chain.size(), bytes);
    for (size_t i = 0; i < chain.size(); i++) {
      const uint64_t tag = s.next_tag++;
      chain[i].set_tag(tag);
      s.outstanding[tag] = State::Pending{
          std::move(done[i]), internal::RequestBytes(chain[i]) + extra};
      if (payload != nullptr) s.payloads[tag] = std::move(payload);
      s.queue.push_back(std::move(chain[i]));
    }
    if (s.no_more_ops) return StreamEnded(s.final_status);
    reactor = s.reactor;
    next = reactor->Plan();
  }
  reactor->Run(next);
  return absl::OkStatus();
}

absl::Status AsyncStream::Close() {
  State& s = *state_;
  Next next;
  SubmitReactor* reactor = nullptr;
  {
    base::MutexLock lock(&s.mu);
    s.closing = true;
    if (!s.no_more_ops) {
      reactor = s.reactor;
      next = reactor->Plan();
    }
  }
  if (reactor != nullptr) reactor->Run(next);
  base::MutexLock lock(&s.mu);
  while (!s.done) s.cv.Wait(&s.mu);
  if (s.final_status.ok()) return absl::OkStatus();
  return StreamEnded(s.final_status);
}

}  // namespace client
