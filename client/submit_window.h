// The bookkeeping behind AsyncStream, kept free of gRPC so it can be tested
// alone: how many bytes a request moves, whether the server's announced
// limits admit one more request, and how queued requests are cut into
// SubmitBatch messages.
//
// Thread-safety: SubmitWindow is not thread-safe (AsyncStream guards it
// with its mutex); the functions are pure.
#ifndef IOMAPD_CLIENT_SUBMIT_WINDOW_H_
#define IOMAPD_CLIENT_SUBMIT_WINDOW_H_

#include <cstddef>
#include <cstdint>
#include <deque>

#include "absl/functional/function_ref.h"
#include "proto/iomapd.pb.h"

namespace client {
namespace internal {

// Data bytes a request moves: the read length, or the write/map_write data.
// These count against max_bytes_per_request and max_in_flight_bytes.
uint64_t RequestBytes(const iomapd::v1::SubmitRequest& request);

// Upper bound of what `request` adds to a SubmitBatch's encoded size.
uint64_t EncodedBytes(const iomapd::v1::SubmitRequest& request);

// In-flight accounting against the server's StreamLimits. Zero limits mean
// "no limit" (a server that announces nothing).
class SubmitWindow {
 public:
  enum class Admit {
    kOk,      // fits now
    kFull,    // fits once enough in-flight requests complete
    kTooBig,  // can never fit (larger than a per-request or total limit)
  };

  SubmitWindow() = default;
  explicit SubmitWindow(const iomapd::v1::StreamLimits& limits)
      : limits_(limits) {}

  // Whether `count` requests moving `bytes` data bytes and `encoded` message
  // bytes in total (a linked chain travels in one message) may go now.
  Admit Check(size_t count, uint64_t bytes, uint64_t encoded) const;

  // Records admitted requests; Release one when its completion arrives.
  void Acquire(size_t count, uint64_t bytes);
  void Release(uint64_t bytes);

  size_t in_flight() const { return in_flight_; }
  uint64_t in_flight_bytes() const { return in_flight_bytes_; }
  const iomapd::v1::StreamLimits& limits() const { return limits_; }

 private:
  iomapd::v1::StreamLimits limits_;
  size_t in_flight_ = 0;
  uint64_t in_flight_bytes_ = 0;
};

// Moves requests from the front of `pending` into one batch: at most
// `max_requests` of them and at most `max_message_bytes` encoded, and no
// more once `soft_bytes` are in it (0: no such cap), except that a linked
// chain (requests whose `link` is set, with the request before them) is
// never split, and the first request or chain always goes so the queue
// makes progress. Empty when `pending` is.
// `size_of` sizes one request (EncodedBytes unless the caller sends more
// with it, as AsyncStream does with a write's separate payload).
iomapd::v1::SubmitBatch TakeBatch(
    std::deque<iomapd::v1::SubmitRequest>* pending, size_t max_requests,
    uint64_t max_message_bytes, uint64_t soft_bytes = 0,
    absl::FunctionRef<uint64_t(const iomapd::v1::SubmitRequest&)> size_of =
        EncodedBytes);

}  // namespace internal
}  // namespace client

#endif  // IOMAPD_CLIENT_SUBMIT_WINDOW_H_
