#include "proto/wire_status.h"

#include <cerrno>
#include <cstring>

#include "base/errno.h"
#include "proto/iomapd.pb.h"

namespace wire {
namespace {

// Errno for a status that came without an ErrorDetail: a transport or
// gRPC-level failure rather than a filesystem answer.
int TransportErrno(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return 0;
    case grpc::StatusCode::UNAVAILABLE:
      return ENOTCONN;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return EMSGSIZE;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return ETIMEDOUT;
    case grpc::StatusCode::CANCELLED:
      return ECANCELED;
    case grpc::StatusCode::UNIMPLEMENTED:
      return EOPNOTSUPP;
    default:
      break;
  }
  absl::Status canonical(static_cast<absl::StatusCode>(code), "");
  return -base::ErrnoOf(canonical);
}

std::string Describe(std::string_view what, int errnum,
                     std::string_view detail) {
  std::string out(what);
  out += ": ";
  out += std::strerror(errnum);
  if (!detail.empty()) {
    out += " (";
    out.append(detail.data(), detail.size());
    out += ")";
  }
  return out;
}

}  // namespace

grpc::StatusCode GrpcCodeForErrno(int errnum) {
  if (errnum == 0) return grpc::StatusCode::OK;
  absl::Status s = absl::ErrnoToStatus(errnum < 0 ? -errnum : errnum, "");
  return static_cast<grpc::StatusCode>(s.code());
}

grpc::Status ErrnoToGrpcStatus(int errnum, std::string_view message,
                               const google::protobuf::Message* response) {
  if (errnum == 0) return grpc::Status::OK;
  if (errnum < 0) errnum = -errnum;
  iomapd::v1::ErrorDetail detail;
  detail.set_errnum(errnum);
  detail.set_message(std::string(message));
  if (response != nullptr) detail.set_response(response->SerializeAsString());
  return grpc::Status(GrpcCodeForErrno(errnum), std::string(message),
                      detail.SerializeAsString());
}

bool ResponseOf(const grpc::Status& status,
                google::protobuf::Message* response) {
  iomapd::v1::ErrorDetail detail;
  if (status.ok() || status.error_details().empty() ||
      !detail.ParseFromString(status.error_details()) ||
      detail.response().empty()) {
    return false;
  }
  return response->ParseFromString(detail.response());
}

int ErrnumOf(const grpc::Status& status) {
  if (status.ok()) return 0;
  iomapd::v1::ErrorDetail detail;
  if (!status.error_details().empty() &&
      detail.ParseFromString(status.error_details()) && detail.errnum() > 0) {
    return detail.errnum();
  }
  return TransportErrno(status.error_code());
}

absl::Status ToStatus(const grpc::Status& status, int body_errnum,
                      std::string_view what) {
  if (status.ok()) {
    if (body_errnum == 0) return absl::OkStatus();
    int err = body_errnum < 0 ? -body_errnum : body_errnum;
    return base::ErrnoStatus(-err, Describe(what, err, ""));
  }
  int err = ErrnumOf(status);
  return base::ErrnoStatus(-err, Describe(what, err, status.error_message()));
}

}  // namespace wire
