#include "base/errno.h"

#include <cerrno>
#include <cstdlib>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"

namespace base {
namespace {

// Debian's Abseil has its own string_view (not std::string_view).
constexpr absl::string_view kErrnoPayload = "iomapd/errno";

int CanonicalErrno(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return 0;
    case absl::StatusCode::kInvalidArgument: return -EINVAL;
    case absl::StatusCode::kNotFound: return -ENOENT;
    case absl::StatusCode::kAlreadyExists: return -EEXIST;
    case absl::StatusCode::kPermissionDenied: return -EACCES;
    case absl::StatusCode::kResourceExhausted: return -ENOSPC;
    case absl::StatusCode::kFailedPrecondition: return -EINVAL;
    case absl::StatusCode::kOutOfRange: return -ERANGE;
    case absl::StatusCode::kUnimplemented: return -EOPNOTSUPP;
    case absl::StatusCode::kUnavailable: return -EAGAIN;
    case absl::StatusCode::kDeadlineExceeded: return -ETIMEDOUT;
    case absl::StatusCode::kCancelled: return -ECANCELED;
    case absl::StatusCode::kDataLoss: return -EIO;
    default: return -EIO;
  }
}

}  // namespace

absl::Status ErrnoStatus(int neg_errno, std::string_view message) {
  int err = neg_errno < 0 ? -neg_errno : neg_errno;
  absl::Status status = absl::ErrnoToStatus(err, absl::string_view(message.data(), message.size()));
  status.SetPayload(kErrnoPayload, absl::Cord(std::to_string(err)));
  return status;
}

int ErrnoOf(const absl::Status& status) {
  if (status.ok()) return 0;
  auto payload = status.GetPayload(kErrnoPayload);
  int err = 0;
  if (payload && absl::SimpleAtoi(std::string(*payload), &err) && err > 0) {
    return -err;
  }
  return CanonicalErrno(status.code());
}

const char* ErrnoName(int err) {
  if (err < 0) err = -err;
  switch (err) {
#define IOMAPD_ERRNO_CASE(e) \
  case e: return #e;
    IOMAPD_ERRNO_CASE(EPERM) IOMAPD_ERRNO_CASE(ENOENT) IOMAPD_ERRNO_CASE(EIO)
    IOMAPD_ERRNO_CASE(ENXIO) IOMAPD_ERRNO_CASE(EBADF) IOMAPD_ERRNO_CASE(EAGAIN)
    IOMAPD_ERRNO_CASE(ENOMEM) IOMAPD_ERRNO_CASE(EACCES)
    IOMAPD_ERRNO_CASE(EFAULT) IOMAPD_ERRNO_CASE(ENOTBLK)
    IOMAPD_ERRNO_CASE(EBUSY) IOMAPD_ERRNO_CASE(EEXIST)
    IOMAPD_ERRNO_CASE(EXDEV) IOMAPD_ERRNO_CASE(ENODEV)
    IOMAPD_ERRNO_CASE(ENOTDIR) IOMAPD_ERRNO_CASE(EISDIR)
    IOMAPD_ERRNO_CASE(EINVAL) IOMAPD_ERRNO_CASE(ENFILE)
    IOMAPD_ERRNO_CASE(EMFILE) IOMAPD_ERRNO_CASE(ETXTBSY)
    IOMAPD_ERRNO_CASE(EFBIG) IOMAPD_ERRNO_CASE(ENOSPC)
    IOMAPD_ERRNO_CASE(ESPIPE) IOMAPD_ERRNO_CASE(EROFS)
    IOMAPD_ERRNO_CASE(EMLINK) IOMAPD_ERRNO_CASE(ERANGE)
    IOMAPD_ERRNO_CASE(ENAMETOOLONG) IOMAPD_ERRNO_CASE(ENOSYS)
    IOMAPD_ERRNO_CASE(ENOTEMPTY) IOMAPD_ERRNO_CASE(ENODATA)
    IOMAPD_ERRNO_CASE(EBADR) IOMAPD_ERRNO_CASE(EOVERFLOW)
    IOMAPD_ERRNO_CASE(EOPNOTSUPP) IOMAPD_ERRNO_CASE(ENOPROTOOPT)
    IOMAPD_ERRNO_CASE(ETIMEDOUT) IOMAPD_ERRNO_CASE(ESTALE)
    IOMAPD_ERRNO_CASE(ECANCELED) IOMAPD_ERRNO_CASE(EUCLEAN)
    IOMAPD_ERRNO_CASE(EMSGSIZE)
#undef IOMAPD_ERRNO_CASE
    default: return "EUNKNOWN";
  }
}

}  // namespace base
