// server::SubmitReactor: one Submit stream, io_uring over the network
// (docs/protocol.md, "The Submit stream").
//
// The first CompletionBatch announces the StreamLimits. Each SubmitBatch is
// admitted request by request (duplicate tag, a link on the first request,
// an empty op: EINVAL; past max_bytes_per_request: EMSGSIZE; past the
// in-flight limits: EAGAIN; a request linked to a refused one: ECANCELED),
// and the admitted requests run on the executor, a chain of linked requests
// as one task in order, everything else independently. Completions are
// queued as operations finish and sent in batches, one write at a time.
//
// A request counts against the in-flight limits from admission until its
// completion goes on the wire (one CompletionBatch at a time, each under
// max_message_bytes), so a client that stops reading completions stops
// being able to submit: memory stays bounded. When the
// client half-closes, the reactor finishes the requests in flight, sends
// their completions and ends with OK. When the client vanishes (cancel, or
// a failed write), requests already running finish, their completions are
// dropped, and the reactor ends once the last one has returned.
//
// Thread-safety: gRPC calls the On* reactions from its threads; executor
// tasks call back into the reactor. State is under mu_. The reactor deletes
// itself in OnDone, which gRPC calls only after Finish, which is called only
// when no executor task refers to it any more.
#ifndef IOMAPD_SERVER_SUBMIT_H_
#define IOMAPD_SERVER_SUBMIT_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "base/mutex.h"
#include "grpcpp/grpcpp.h"
#include "proto/iomapd.pb.h"
#include "server/executor.h"
#include "server/ops.h"

namespace server {

struct StreamOptions {
  uint32_t max_in_flight_requests = 4096;
  uint64_t max_in_flight_bytes = 256ull << 20;
  // Equal to OpsOptions::max_bytes_per_request.
  uint64_t max_bytes_per_request = 64ull << 20;
  // The server's gRPC receive and send limit.
  uint64_t max_message_bytes = 80ull << 20;
};

// Messages are decoded and encoded here (gRPC's raw callback API, see
// Service): read data leaves in its own slice, without the copy gRPC's
// protobuf serializer makes (client/wire_encode.h).
class SubmitReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  SubmitReactor(Ops* ops, Executor* executor, const StreamOptions& options);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  struct Item {
    v1::SubmitRequest request;
    uint64_t bytes = 0;  // counted against max_in_flight_bytes
  };
  // Requests run in order, each only if the one before succeeded.
  using Chain = std::vector<Item>;
  struct Pending {
    v1::Completion completion;
    uint64_t bytes = 0;
    bool admitted = false;  // counts against the in-flight limits
  };

  // Admission of one received batch; returns the chains to run.
  std::vector<Chain> Admit(v1::SubmitBatch* batch);
  int AdmitOne(const v1::SubmitRequest& q, uint64_t* bytes, std::string* why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunChain(Chain* chain);
  // Runs one request; true when it succeeded in io_uring's link sense.
  bool RunOne(const v1::SubmitRequest& q, v1::Completion* c);
  // Queues a completion and starts a write when none is on the wire.
  void Complete(v1::Completion c, uint64_t bytes, bool admitted);
  // Moves queued completions into write_buf_ (encoded); false when there is
  // nothing to send or the stream can no longer be written.
  bool TakeWrite() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeFinish() ABSL_LOCKS_EXCLUDED(mu_);
  // Runs the chains on the executor (ESHUTDOWN when it has stopped), after
  // trying lone reads inline.
  void Dispatch(std::vector<Chain> chains);
  // io_uring's first attempt: a lone read or write of an open file is
  // tried right here with NOWAIT (Ops::TryReadNowait / TryWriteNowait:
  // try-locks, the cache only, never I/O). True when it completed; false
  // when it must go to the executor (it would block, or came back short).
  bool TryInline(Item* item);
  // Resumes reading when it was paused and the queue has drained; true
  // when the caller must StartRead.
  bool ResumeRead() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Ops* const ops_;
  Executor* const executor_;
  const StreamOptions options_;

  grpc::ByteBuffer read_buf_;  // owned by the outstanding read

  base::Mutex mu_{base::LockRank::kLeaf};
  // Tags admitted and not yet written back.
  absl::flat_hash_set<uint64_t> tags_ ABSL_GUARDED_BY(mu_);
  uint64_t in_flight_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Pending> queued_ ABSL_GUARDED_BY(mu_);
  // The encoded batch on the wire.
  grpc::ByteBuffer write_buf_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  int tasks_ ABSL_GUARDED_BY(mu_) = 0;  // executor tasks not yet returned
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  // A StartRead is outstanding; reads pause while too many completions
  // wait to be written (a client that does not read completions).
  bool read_outstanding_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;  // cancelled or write failed
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // A received message did not parse: the stream ends with INTERNAL, as
  // with the generated (protobuf) handler.
  bool bad_message_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace server

#endif  // IOMAPD_SERVER_SUBMIT_H_
