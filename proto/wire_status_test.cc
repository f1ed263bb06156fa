#include "proto/wire_status.h"

#include <cerrno>

#include "base/errno.h"
#include "gtest/gtest.h"
#include "proto/iomapd.pb.h"

namespace wire {
namespace {

TEST(WireStatus, ZeroIsOk) {
  EXPECT_TRUE(ErrnoToGrpcStatus(0, "fine").ok());
  EXPECT_EQ(ErrnumOf(grpc::Status::OK), 0);
  EXPECT_TRUE(ToStatus(grpc::Status::OK, 0, "Read").ok());
}

TEST(WireStatus, ExactErrnoSurvivesRoundTrip) {
  // ENOENT and ENXIO share NOT_FOUND; the detail keeps them apart.
  for (int err : {ENOENT, ENXIO, ESTALE, EBADR, EAGAIN, EMSGSIZE, ENOSPC,
                  EOPNOTSUPP, EINVAL, EIO, ECANCELED, EFBIG}) {
    grpc::Status s = ErrnoToGrpcStatus(err, "because");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(ErrnumOf(s), err) << err;
    absl::Status st = ToStatus(s, 0, "Op");
    EXPECT_EQ(base::ErrnoOf(st), -err) << err;
    EXPECT_NE(st.message().find("because"), absl::string_view::npos);
  }
}

TEST(WireStatus, NegativeInputIsNormalised) {
  EXPECT_EQ(ErrnumOf(ErrnoToGrpcStatus(-ENOENT, "x")), ENOENT);
}

TEST(WireStatus, CanonicalCodes) {
  EXPECT_EQ(GrpcCodeForErrno(ENOENT), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(GrpcCodeForErrno(EEXIST), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(GrpcCodeForErrno(EINVAL), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(GrpcCodeForErrno(ENOSPC), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(GrpcCodeForErrno(EAGAIN), grpc::StatusCode::UNAVAILABLE);
}

TEST(WireStatus, ErrorDetailIsInTheStatusDetails) {
  grpc::Status s = ErrnoToGrpcStatus(ESTALE, "generation 3 != 4");
  iomapd::v1::ErrorDetail d;
  ASSERT_TRUE(d.ParseFromString(s.error_details()));
  EXPECT_EQ(d.errnum(), ESTALE);
  EXPECT_EQ(d.message(), "generation 3 != 4");
  EXPECT_EQ(s.error_message(), "generation 3 != 4");
}

TEST(WireStatus, ResponseTravelsWithTheFailure) {
  iomapd::v1::FiemapResponse resp;
  resp.set_errnum(EBADR);
  resp.set_bad_flags(0x4);
  grpc::Status s = ErrnoToGrpcStatus(EBADR, "unsupported flags 0x4", &resp);
  iomapd::v1::FiemapResponse back;
  ASSERT_TRUE(ResponseOf(s, &back));
  EXPECT_EQ(back.errnum(), EBADR);
  EXPECT_EQ(back.bad_flags(), 0x4u);
  EXPECT_FALSE(ResponseOf(ErrnoToGrpcStatus(EIO, "x"), &back));
  EXPECT_FALSE(ResponseOf(grpc::Status::OK, &back));
}

TEST(WireStatus, TransportFailuresWithoutDetail) {
  EXPECT_EQ(ErrnumOf(grpc::Status(grpc::StatusCode::UNAVAILABLE, "down")),
            ENOTCONN);
  EXPECT_EQ(ErrnumOf(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                  "message larger than max")),
            EMSGSIZE);
  EXPECT_EQ(ErrnumOf(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "")),
            ETIMEDOUT);
  EXPECT_EQ(ErrnumOf(grpc::Status(grpc::StatusCode::NOT_FOUND, "")), ENOENT);
  EXPECT_EQ(ErrnumOf(grpc::Status(grpc::StatusCode::INTERNAL, "")), EIO);
}

TEST(WireStatus, GarbageDetailFallsBackToCode) {
  grpc::Status s(grpc::StatusCode::INVALID_ARGUMENT, "m", "\xff\xff\xff");
  EXPECT_EQ(ErrnumOf(s), EINVAL);
}

TEST(WireStatus, BodyErrnumWithOkStatusIsAnError) {
  absl::Status st = ToStatus(grpc::Status::OK, ENXIO, "Seek");
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(base::ErrnoOf(st), -ENXIO);
  EXPECT_NE(st.message().find("Seek"), absl::string_view::npos);
}

}  // namespace
}  // namespace wire
