// The asynchronous client API: one Submit stream (io_uring over the
// network). Requests are queued, packed into SubmitBatch messages while the
// previous message is on the wire, and complete out of order through a
// callback or a std::future.
//
// Flow control follows the server's StreamLimits (the first message of the
// stream): a request that can never fit (more data bytes than
// max_bytes_per_request or max_in_flight_bytes, a chain longer than
// max_in_flight_requests, a message over max_message_bytes) fails at once
// with -EMSGSIZE; a request that does not fit *now* either waits for
// completions (WhenFull::kBlock, the default) or fails with -EAGAIN
// (WhenFull::kFail). Either way the client never sends past a limit, so the
// server's EAGAIN is not seen in normal operation.
//
// Tags: the stream assigns each request's tag (any tag the caller set is
// replaced); completions carry it back.
//
// Thread-safety: Submit* may be called from any number of threads.
// Callbacks run on gRPC's threads, one at a time per stream, and must not
// block or call Submit with WhenFull::kBlock (use futures for that).
#ifndef IOMAPD_CLIENT_ASYNC_H_
#define IOMAPD_CLIENT_ASYNC_H_

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "proto/iomapd.grpc.pb.h"
#include "proto/iomapd.pb.h"

namespace client {

struct AsyncOptions {
  enum class WhenFull {
    kBlock,  // Submit waits until the in-flight limits admit the request
    kFail,   // Submit returns -EAGAIN at once
  };
  WhenFull when_full = WhenFull::kBlock;
  // At most this many requests per SubmitBatch message.
  size_t max_requests_per_batch = 256;
  // A SubmitBatch closes once it holds this many encoded bytes (0: only the
  // server's max_message_bytes bounds it). The server starts a message's
  // requests only once all of it has arrived, so 32 queued 1 MiB writes in
  // one 32 MiB message would move in lock step.
  uint64_t max_batch_bytes = 1 << 20;
  // How long Open waits for the server's first message (the limits).
  int limits_timeout_ms = 10000;
};

// Called with the completion of one request.
using CompletionCallback =
    std::function<void(const iomapd::v1::Completion& completion)>;

class AsyncStream {
 public:
  // Starts a Submit call on `channel` and waits for the server's limits.
  // -ENOTCONN / -ETIMEDOUT when the server does not answer.
  static absl::StatusOr<std::unique_ptr<AsyncStream>> Open(
      std::shared_ptr<grpc::ChannelInterface> channel,
      const AsyncOptions& options);

  // Closes the stream (see Close) and waits for gRPC to finish with it.
  ~AsyncStream();

  AsyncStream(const AsyncStream&) = delete;
  AsyncStream& operator=(const AsyncStream&) = delete;

  // Queues one request; `done` runs once with its completion. Errors (the
  // request was not queued, `done` will not run): -EMSGSIZE never fits,
  // -EAGAIN full under WhenFull::kFail, -EPIPE after Close, the stream's
  // errno after it failed.
  absl::Status Submit(iomapd::v1::SubmitRequest request,
                      CompletionCallback done);

  // As Submit, for a write whose data is `data` (request.write().data()
  // must be empty; -EINVAL otherwise, or when the request is no write):
  // the bytes go on the wire straight from `data`, without a copy, so one
  // buffer can be the payload of many writes in flight. They must not
  // change until `done` has run.
  absl::Status SubmitWrite(iomapd::v1::SubmitRequest request,
                           std::shared_ptr<const std::string> data,
                           CompletionCallback done);

  // As Submit, with a future. A request that was not queued yields a
  // completion with that errno (and tag 0) instead of an error status.
  std::future<iomapd::v1::Completion> SubmitFuture(
      iomapd::v1::SubmitRequest request);

  // Queues a chain: request i+1 runs only after request i succeeded (the
  // `link` flags are set here). One callback per request; all or none are
  // queued.
  absl::Status SubmitLinked(std::vector<iomapd::v1::SubmitRequest> chain,
                            std::vector<CompletionCallback> done);

  // Half-closes the stream after everything queued has been sent, waits
  // for every completion, and returns the stream's final status. Requests
  // still outstanding when the stream fails complete with its errno.
  absl::Status Close();

  // The server's limits (fixed once Open returned).
  const iomapd::v1::StreamLimits& limits() const;

  // Requests submitted and not yet completed.
  size_t in_flight() const;

  struct State;  // shared with the gRPC reactor (async.cc)

 private:
  explicit AsyncStream(std::shared_ptr<State> state);
  // `payload`: SubmitWrite's data, for a chain of one.
  absl::Status Enqueue(std::vector<iomapd::v1::SubmitRequest> chain,
                       std::vector<CompletionCallback> done,
                       std::shared_ptr<const std::string> payload = nullptr);

  std::shared_ptr<State> state_;
};

}  // namespace client

#endif  // IOMAPD_CLIENT_ASYNC_H_
