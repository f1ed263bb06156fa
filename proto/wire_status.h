// errno <-> grpc::Status for the iomapd wire: the one mapping both sides use.
//
// The server ends a failed unary RPC with ErrnoToGrpcStatus(errnum, message):
// the canonical code is absl::ErrnoToStatus's for that errno, and the exact
// errno travels in the status' error_details as a serialised
// iomapd.v1.ErrorDetail (gRPC sends no response body with a non-OK status,
// so this is how "the errno is always in the body" survives). The client
// turns a (grpc::Status, response errnum) pair back into an absl::Status
// whose errno base::ErrnoOf() returns exactly.
//
// Thread-safety: pure functions, safe from any thread.
#ifndef IOMAPD_PROTO_WIRE_STATUS_H_
#define IOMAPD_PROTO_WIRE_STATUS_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/status.h"

namespace wire {

// The gRPC canonical code for a positive errno (0 -> OK).
grpc::StatusCode GrpcCodeForErrno(int errnum);

// A non-OK status for positive `errnum` carrying ErrorDetail{errnum,
// message, response}; grpc::Status::OK for errnum 0. Pass the RPC's
// response (its errnum set) when it holds results that accompany the
// failure, e.g. FiemapResponse.bad_flags with EBADR.
grpc::Status ErrnoToGrpcStatus(
    int errnum, std::string_view message,
    const google::protobuf::Message* response = nullptr);

// The response message a failed status carries (ErrorDetail.response):
// parses it into *response and returns true, false when there is none.
bool ResponseOf(const grpc::Status& status,
                google::protobuf::Message* response);

// The positive errno a status carries: the ErrorDetail's when present,
// otherwise the closest errno for the code (transport failures: UNAVAILABLE
// -> ENOTCONN, RESOURCE_EXHAUSTED -> EMSGSIZE, DEADLINE_EXCEEDED ->
// ETIMEDOUT, CANCELLED -> ECANCELED). 0 for OK.
int ErrnumOf(const grpc::Status& status);

// The library-boundary status for an RPC named `what` that ended with
// `status` and, when OK, a response whose errnum field is `body_errnum`.
// OK only when both say success. The errno survives: base::ErrnoOf(result)
// is -errnum.
absl::Status ToStatus(const grpc::Status& status, int body_errnum,
                      std::string_view what);

}  // namespace wire

#endif  // IOMAPD_PROTO_WIRE_STATUS_H_
