#include "client/submit_window.h"

#include <string>

#include "gtest/gtest.h"

namespace client {
namespace internal {
namespace {

using iomapd::v1::SubmitRequest;

SubmitRequest Write(uint64_t tag, size_t bytes, bool link = false) {
  SubmitRequest r;
  r.set_tag(tag);
  r.set_link(link);
  r.mutable_write()->set_data(std::string(bytes, 'x'));
  return r;
}

SubmitRequest Read(uint64_t tag, int64_t len) {
  SubmitRequest r;
  r.set_tag(tag);
  r.mutable_read()->set_length(len);
  return r;
}

iomapd::v1::StreamLimits Limits(uint32_t reqs, uint64_t bytes, uint64_t per_req,
                                uint64_t msg) {
  iomapd::v1::StreamLimits l;
  l.set_max_in_flight_requests(reqs);
  l.set_max_in_flight_bytes(bytes);
  l.set_max_bytes_per_request(per_req);
  l.set_max_message_bytes(msg);
  return l;
}

TEST(RequestBytes, CountsDataBothWays) {
  EXPECT_EQ(RequestBytes(Write(1, 4096)), 4096u);
  EXPECT_EQ(RequestBytes(Read(1, 8192)), 8192u);
  EXPECT_EQ(RequestBytes(Read(1, -5)), 0u);
  SubmitRequest fsync;
  fsync.mutable_fsync();
  EXPECT_EQ(RequestBytes(fsync), 0u);
  SubmitRequest mw;
  mw.mutable_map_write()->set_data("abc");
  EXPECT_EQ(RequestBytes(mw), 3u);
}

TEST(SubmitWindow, RequestLimit) {
  SubmitWindow w(Limits(2, 0, 0, 0));
  EXPECT_EQ(w.Check(1, 0, 10), SubmitWindow::Admit::kOk);
  w.Acquire(1, 0);
  w.Acquire(1, 0);
  EXPECT_EQ(w.Check(1, 0, 10), SubmitWindow::Admit::kFull);
  EXPECT_EQ(w.Check(3, 0, 10), SubmitWindow::Admit::kTooBig);
  w.Release(0);
  EXPECT_EQ(w.Check(1, 0, 10), SubmitWindow::Admit::kOk);
  EXPECT_EQ(w.in_flight(), 1u);
}

TEST(SubmitWindow, ByteLimits) {
  SubmitWindow w(Limits(100, 1 << 20, 256 << 10, 2 << 20));
  EXPECT_EQ(w.Check(1, (256 << 10) + 1, 0), SubmitWindow::Admit::kTooBig);
  w.Acquire(1, 900 << 10);
  EXPECT_EQ(w.Check(1, 200 << 10, 0), SubmitWindow::Admit::kFull);
  EXPECT_EQ(w.Check(1, 100 << 10, 0), SubmitWindow::Admit::kOk);
  w.Release(900 << 10);
  EXPECT_EQ(w.in_flight_bytes(), 0u);
  EXPECT_EQ(w.Check(1, 0, (2 << 20) + 1), SubmitWindow::Admit::kTooBig);
}

TEST(SubmitWindow, ZeroLimitsMeanUnlimited) {
  SubmitWindow w;
  w.Acquire(1000000, 1ULL << 40);
  EXPECT_EQ(w.Check(1, 1ULL << 40, 1ULL << 40), SubmitWindow::Admit::kOk);
}

TEST(SubmitWindow, ReleaseNeverUnderflows) {
  SubmitWindow w(Limits(4, 100, 0, 0));
  w.Release(50);
  EXPECT_EQ(w.in_flight(), 0u);
  EXPECT_EQ(w.in_flight_bytes(), 0u);
}

std::deque<SubmitRequest> Queue(std::initializer_list<SubmitRequest> reqs) {
  return std::deque<SubmitRequest>(reqs);
}

TEST(TakeBatch, RespectsRequestCount) {
  auto q = Queue({Write(1, 1), Write(2, 1), Write(3, 1)});
  auto b = TakeBatch(&q, 2, 0);
  ASSERT_EQ(b.requests_size(), 2);
  EXPECT_EQ(b.requests(0).tag(), 1u);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(TakeBatch(&q, 2, 0).requests_size(), 1);
  EXPECT_EQ(TakeBatch(&q, 2, 0).requests_size(), 0);
}

TEST(TakeBatch, RespectsMessageBytes) {
  auto q = Queue({Write(1, 1000), Write(2, 1000), Write(3, 1000)});
  auto b = TakeBatch(&q, 100, 2100);
  EXPECT_EQ(b.requests_size(), 2);
  EXPECT_LE(b.ByteSizeLong(), 2100u);
}

TEST(TakeBatch, ClosesAtSoftBytes) {
  auto q =
      Queue({Write(1, 1000), Write(2, 1000), Write(3, 1000), Write(4, 1000)});
  // The batch closes once it holds 1500 bytes: the second write passes it.
  EXPECT_EQ(TakeBatch(&q, 100, 0, 1500).requests_size(), 2);
  EXPECT_EQ(TakeBatch(&q, 100, 0, 0).requests_size(), 2);
}

TEST(TakeBatch, FirstRequestAlwaysGoes) {
  auto q = Queue({Write(1, 5000)});
  EXPECT_EQ(TakeBatch(&q, 1, 100).requests_size(), 1);
}

TEST(TakeBatch, NeverSplitsAChain) {
  // 1 alone, then 2 <- 3 <- 4 linked.
  auto q =
      Queue({Write(1, 1), Write(2, 1), Write(3, 1, true), Write(4, 1, true)});
  auto b = TakeBatch(&q, 2, 0);
  ASSERT_EQ(b.requests_size(), 1);  // the chain of 3 does not fit beside 1
  b = TakeBatch(&q, 2, 0);
  ASSERT_EQ(b.requests_size(), 3);  // a chain goes whole even past the count
  EXPECT_FALSE(b.requests(0).link());
  EXPECT_TRUE(b.requests(2).link());
  EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace internal
}  // namespace client
