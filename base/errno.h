// errno <-> absl::Status at library boundaries (the middle error tier).
#ifndef IOMAPD_BASE_ERRNO_H_
#define IOMAPD_BASE_ERRNO_H_

#include <string_view>

#include "absl/status/status.h"

namespace base {

// A Status for the negative errno `neg_errno` (e.g. -ENOENT) with a message.
// The errno survives the round trip through ErrnoOf().
absl::Status ErrnoStatus(int neg_errno, std::string_view message);

// The negative errno a Status carries: the one ErrnoStatus put there, or the
// closest errno for a canonical code. 0 for OK.
int ErrnoOf(const absl::Status& status);

// "ENOENT" for ENOENT (positive or negative), "E<n>" when unknown.
const char* ErrnoName(int err);

}  // namespace base

#endif  // IOMAPD_BASE_ERRNO_H_
