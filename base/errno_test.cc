#include "base/errno.h"

#include <cerrno>

#include "gtest/gtest.h"

namespace base {
namespace {

TEST(ErrnoTest, RoundTripsTheExactErrno) {
  // ENOENT and ENXIO share a canonical code; the errno must survive anyway.
  EXPECT_EQ(ErrnoOf(ErrnoStatus(-ENXIO, "past EOF")), -ENXIO);
  EXPECT_EQ(ErrnoOf(ErrnoStatus(-ENOENT, "no such file")), -ENOENT);
  EXPECT_EQ(ErrnoOf(ErrnoStatus(ESTALE, "positive accepted")), -ESTALE);
}

TEST(ErrnoTest, CanonicalCodesMapToAnErrno) {
  EXPECT_EQ(ErrnoOf(absl::OkStatus()), 0);
  EXPECT_EQ(ErrnoOf(absl::InvalidArgumentError("x")), -EINVAL);
  EXPECT_EQ(ErrnoOf(absl::InternalError("x")), -EIO);
}

TEST(ErrnoTest, NamesErrnos) {
  EXPECT_STREQ(ErrnoName(-EBADR), "EBADR");
  EXPECT_STREQ(ErrnoName(ENOSPC), "ENOSPC");
  EXPECT_STREQ(ErrnoName(9999), "EUNKNOWN");
}

}  // namespace
}  // namespace base
