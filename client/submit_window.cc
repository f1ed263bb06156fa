#include "client/submit_window.h"

namespace client {
namespace internal {
namespace {

// Tag and length prefix of one element of SubmitBatch.requests.
constexpr uint64_t kElementOverhead = 11;

// Number of requests at the front of `pending` that form one chain.
size_t ChainLength(const std::deque<iomapd::v1::SubmitRequest>& pending,
                   size_t start) {
  size_t n = 1;
  while (start + n < pending.size() && pending[start + n].link()) n++;
  return n;
}

uint64_t ChainEncoded(
    const std::deque<iomapd::v1::SubmitRequest>& pending, size_t start,
    size_t n,
    absl::FunctionRef<uint64_t(const iomapd::v1::SubmitRequest&)> encoded) {
  uint64_t total = 0;
  for (size_t i = start; i < start + n; i++) {
    total += encoded(pending[i]);
  }
  return total;
}

}  // namespace

uint64_t RequestBytes(const iomapd::v1::SubmitRequest& request) {
  switch (request.op_case()) {
    case iomapd::v1::SubmitRequest::kRead:
      return request.read().length() > 0
                 ? static_cast<uint64_t>(request.read().length())
                 : 0;
    case iomapd::v1::SubmitRequest::kWrite:
      return request.write().data().size();
    case iomapd::v1::SubmitRequest::kMapWrite:
      return request.map_write().data().size();
    default:
      return 0;
  }
}

uint64_t EncodedBytes(const iomapd::v1::SubmitRequest& request) {
  return request.ByteSizeLong() + kElementOverhead;
}

SubmitWindow::Admit SubmitWindow::Check(size_t count, uint64_t bytes,
                                        uint64_t encoded) const {
  const uint64_t per_request = limits_.max_bytes_per_request();
  const uint64_t max_bytes = limits_.max_in_flight_bytes();
  const uint64_t max_reqs = limits_.max_in_flight_requests();
  const uint64_t max_msg = limits_.max_message_bytes();
  if (per_request && count == 1 && bytes > per_request) return Admit::kTooBig;
  if (max_bytes && bytes > max_bytes) return Admit::kTooBig;
  if (max_reqs && count > max_reqs) return Admit::kTooBig;
  if (max_msg && encoded > max_msg) return Admit::kTooBig;
  if (max_reqs && in_flight_ + count > max_reqs) return Admit::kFull;
  if (max_bytes && in_flight_bytes_ + bytes > max_bytes) return Admit::kFull;
  return Admit::kOk;
}

void SubmitWindow::Acquire(size_t count, uint64_t bytes) {
  in_flight_ += count;
  in_flight_bytes_ += bytes;
}

void SubmitWindow::Release(uint64_t bytes) {
  if (in_flight_ > 0) in_flight_--;
  in_flight_bytes_ = bytes > in_flight_bytes_ ? 0 : in_flight_bytes_ - bytes;
}

iomapd::v1::SubmitBatch TakeBatch(
    std::deque<iomapd::v1::SubmitRequest>* pending, size_t max_requests,
    uint64_t max_message_bytes, uint64_t soft_bytes,
    absl::FunctionRef<uint64_t(const iomapd::v1::SubmitRequest&)> size_of) {
  iomapd::v1::SubmitBatch batch;
  uint64_t encoded = 0;
  size_t taken = 0;
  while (taken < pending->size()) {
    const size_t n = ChainLength(*pending, taken);
    const uint64_t chain_bytes = ChainEncoded(*pending, taken, n, size_of);
    const bool first = taken == 0;
    if (!first &&
        (taken + n > max_requests || (soft_bytes && encoded >= soft_bytes) ||
         (max_message_bytes && encoded + chain_bytes > max_message_bytes))) {
      break;
    }
    taken += n;
    encoded += chain_bytes;
  }
  for (size_t i = 0; i < taken; i++) {
    *batch.add_requests() = std::move(pending->front());
    pending->pop_front();
  }
  return batch;
}

}  // namespace internal
}  // namespace client
