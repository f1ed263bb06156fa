// The Submit stream of a real in-process iomapd: limits, admission errors,
// links, out-of-order completions, and clients that vanish mid-stream.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/async.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/test_server.h"

namespace server {
namespace {

namespace v1 = ::iomapd::v1;

using Stream =
    grpc::ClientReaderWriterInterface<v1::SubmitBatch, v1::CompletionBatch>;

class SubmitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ts_ = TestServer::Get();
    auto f = ts_->client->OpenPath(
        "",
        std::string("/submit_") +
            ::testing::UnitTest::GetInstance()->current_test_info()->name(),
        v1::OPEN_FLAG_READ | v1::OPEN_FLAG_WRITE, /*create=*/true);
    ASSERT_TRUE(f.ok()) << f.status();
    file_ = *f;
  }

  // Opens a raw stream and reads the limits message.
  std::unique_ptr<Stream> OpenRaw(grpc::ClientContext* ctx) {
    auto s = ts_->client->stub()->Submit(ctx);
    v1::CompletionBatch first;
    EXPECT_TRUE(s->Read(&first));
    limits_ = first.limits();
    return s;
  }
  // Reads completions until `n` have arrived; by tag.
  std::map<uint64_t, v1::Completion> ReadN(Stream* s, size_t n) {
    std::map<uint64_t, v1::Completion> out;
    v1::CompletionBatch b;
    while (out.size() < n && s->Read(&b)) {
      EXPECT_FALSE(b.has_limits());
      for (const v1::Completion& c : b.completions()) {
        EXPECT_EQ(out.count(c.tag()), 0u) << "tag " << c.tag() << " twice";
        out[c.tag()] = c;
      }
    }
    EXPECT_EQ(out.size(), n);
    return out;
  }
  v1::SubmitRequest Write(uint64_t tag, int64_t off, std::string data) {
    v1::SubmitRequest q;
    q.set_tag(tag);
    *q.mutable_write()->mutable_handle() = file_.handle;
    q.mutable_write()->set_open_id(file_.open_id);
    q.mutable_write()->set_offset(off);
    q.mutable_write()->set_data(std::move(data));
    return q;
  }
  v1::SubmitRequest Read(uint64_t tag, int64_t off, int64_t len) {
    v1::SubmitRequest q;
    q.set_tag(tag);
    *q.mutable_read()->mutable_handle() = file_.handle;
    q.mutable_read()->set_open_id(file_.open_id);
    q.mutable_read()->set_offset(off);
    q.mutable_read()->set_length(len);
    return q;
  }
  v1::SubmitRequest Nop(uint64_t tag) {
    v1::SubmitRequest q;
    q.set_tag(tag);
    q.mutable_nop();
    return q;
  }

  TestServer* ts_;
  client::OpenFile file_;
  v1::StreamLimits limits_;
};

TEST_F(SubmitTest, LimitsComeFirst) {
  grpc::ClientContext ctx;
  auto s = OpenRaw(&ctx);
  EXPECT_EQ(limits_.max_in_flight_requests(), 64u);
  EXPECT_EQ(limits_.max_in_flight_bytes(), 4u << 20);
  EXPECT_EQ(limits_.max_bytes_per_request(), 1u << 20);
  EXPECT_EQ(limits_.max_message_bytes(), 8u << 20);
  s->WritesDone();
  EXPECT_TRUE(s->Finish().ok());
}

TEST_F(SubmitTest, WritesThenLinkedReadInOneBatch) {
  grpc::ClientContext ctx;
  auto s = OpenRaw(&ctx);
  v1::SubmitBatch b;
  *b.add_requests() = Write(1, 0, std::string(4096, 'a'));
  v1::SubmitRequest fs;
  fs.set_tag(2);
  fs.set_link(true);
  *fs.mutable_fsync()->mutable_handle() = file_.handle;
  fs.mutable_fsync()->set_open_id(file_.open_id);
  *b.add_requests() = fs;
  v1::SubmitRequest rd = Read(3, 0, 4096);
  rd.set_link(true);
  *b.add_requests() = rd;
  *b.add_requests() = Nop(4);
  ASSERT_TRUE(s->Write(b));
  auto got = ReadN(s.get(), 4);
  EXPECT_EQ(got[1].errnum(), 0);
  EXPECT_EQ(got[1].result(), 4096);
  EXPECT_EQ(got[2].errnum(), 0);
  EXPECT_EQ(got[3].data(), std::string(4096, 'a'));
  EXPECT_EQ(got[4].errnum(), 0);
  s->WritesDone();
  EXPECT_TRUE(s->Finish().ok());
}

TEST_F(SubmitTest, AdmissionErrors) {
  grpc::ClientContext ctx;
  auto s = OpenRaw(&ctx);
  v1::SubmitBatch b;
  v1::SubmitRequest first = Nop(1);
  first.set_link(true);  // link on the first request: EINVAL
  *b.add_requests() = first;
  v1::SubmitRequest empty;  // no op: EINVAL
  empty.set_tag(2);
  *b.add_requests() = empty;
  v1::SubmitRequest after = Nop(3);  // linked to a refused one
  after.set_link(true);
  *b.add_requests() = after;
  *b.add_requests() = Write(4, 0, std::string((1 << 20) + 1, 'x'));
  *b.add_requests() = Nop(5);
  *b.add_requests() = Nop(5);  // duplicate of an in-flight tag
  ASSERT_TRUE(s->Write(b));
  std::vector<v1::Completion> all;
  v1::CompletionBatch cb;
  while (all.size() < 6 && s->Read(&cb)) {
    for (const auto& c : cb.completions()) all.push_back(c);
  }
  ASSERT_EQ(all.size(), 6u);
  std::multimap<uint64_t, int> errs;
  for (const auto& c : all) {
    errs.emplace(c.tag(), c.errnum());
    if (c.errnum() != 0) EXPECT_FALSE(c.message().empty()) << c.tag();
  }
  EXPECT_EQ(errs.find(1)->second, EINVAL);
  EXPECT_EQ(errs.find(2)->second, EINVAL);
  EXPECT_EQ(errs.find(3)->second, ECANCELED);
  EXPECT_EQ(errs.find(4)->second, EMSGSIZE);
  auto five = errs.equal_range(5);
  std::multiset<int> five_errs;
  for (auto it = five.first; it != five.second; ++it)
    five_errs.insert(it->second);
  EXPECT_EQ(five_errs, (std::multiset<int>{0, EINVAL}));
  s->WritesDone();
  EXPECT_TRUE(s->Finish().ok());
}

TEST_F(SubmitTest, InFlightLimitsGiveEagain) {
  grpc::ClientContext ctx;
  auto s = OpenRaw(&ctx);
  // One batch is admitted before any of it runs: exactly 64 get in.
  v1::SubmitBatch b;
  for (uint64_t t = 1; t <= 100; ++t) *b.add_requests() = Nop(t);
  ASSERT_TRUE(s->Write(b));
  auto got = ReadN(s.get(), 100);
  int ok = 0, eagain = 0;
  for (const auto& [tag, c] : got) {
    if (c.errnum() == 0) ++ok;
    if (c.errnum() == EAGAIN) ++eagain;
  }
  EXPECT_EQ(ok, 64);
  EXPECT_EQ(eagain, 36);
  // Bytes: five 1 MiB reads against a 4 MiB window.
  v1::SubmitBatch r;
  for (uint64_t t = 200; t < 205; ++t) *r.add_requests() = Read(t, 0, 1 << 20);
  ASSERT_TRUE(s->Write(r));
  got = ReadN(s.get(), 5);
  EXPECT_EQ(got[204].errnum(), EAGAIN);
  for (uint64_t t = 200; t < 204; ++t) EXPECT_EQ(got[t].errnum(), 0) << t;
  s->WritesDone();
  EXPECT_TRUE(s->Finish().ok());
}

TEST_F(SubmitTest, ShortReadBreaksTheChain) {
  grpc::ClientContext ctx;
  auto s = OpenRaw(&ctx);
  v1::SubmitBatch b;
  *b.add_requests() = Write(1, 0, "abc");
  v1::SubmitRequest rd = Read(2, 0, 100);  // short: the file has 3 bytes
  rd.set_link(true);
  *b.add_requests() = rd;
  v1::SubmitRequest w = Write(3, 0, "never");
  w.set_link(true);
  *b.add_requests() = w;
  ASSERT_TRUE(s->Write(b));
  auto got = ReadN(s.get(), 3);
  EXPECT_EQ(got[2].errnum(), 0);
  EXPECT_EQ(got[2].data(), "abc");
  EXPECT_EQ(got[3].errnum(), ECANCELED);
  EXPECT_EQ(*ts_->client->Read(file_, 0, 100), "abc");
  s->WritesDone();
  EXPECT_TRUE(s->Finish().ok());
}

TEST_F(SubmitTest, AsyncStreamManyOutOfOrder) {
  auto stream = ts_->client->OpenStream(client::AsyncOptions());
  ASSERT_TRUE(stream.ok()) << stream.status();
  constexpr int kN = 2000;
  std::vector<std::future<v1::Completion>> futures;
  for (int i = 0; i < kN; ++i) {
    v1::SubmitRequest q =
        Write(0, int64_t{i} * 4096, std::string(4096, static_cast<char>(i)));
    futures.push_back((*stream)->SubmitFuture(std::move(q)));
  }
  for (auto& f : futures) {
    v1::Completion c = f.get();
    ASSERT_EQ(c.errnum(), 0) << c.message();
    ASSERT_EQ(c.result(), 4096);
  }
  futures.clear();
  for (int i = 0; i < kN; i += 97) {
    futures.push_back(
        (*stream)->SubmitFuture(Read(0, int64_t{i} * 4096, 4096)));
  }
  for (size_t k = 0; k < futures.size(); ++k) {
    v1::Completion c = futures[k].get();
    ASSERT_EQ(c.errnum(), 0);
    EXPECT_EQ(c.data(), std::string(4096, static_cast<char>(k * 97)));
  }
}

// A client that vanishes with requests in flight and completions unread:
// the server cancels or finishes them, frees them, and keeps serving. The
// requests mix buffered and direct (bounce-buffered) I/O, 4 KiB and 64 KiB
// (data of 32 KiB or more travels as its own slice, wire_encode.h), and
// fsyncs.
TEST_F(SubmitTest, ClientVanishesMidStream) {
  for (int round = 0; round < 5; ++round) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    auto s = OpenRaw(ctx.get());
    for (int batch = 0; batch < 8; ++batch) {
      v1::SubmitBatch b;
      for (int i = 0; i < 60; ++i) {
        const uint64_t tag = batch * 100 + i;
        const int64_t len = i % 3 == 2 ? 65536 : 4096;
        const uint32_t flags = i % 4 >= 2 ? v1::IO_FLAG_DIRECT : 0;
        v1::SubmitRequest q = i % 2 ? Write(tag, tag * 65536,
                                            std::string(len, 'v'))
                                    : Read(tag, tag * 65536, len);
        if (q.has_write()) q.mutable_write()->set_flags(flags);
        if (q.has_read()) q.mutable_read()->set_flags(flags);
        if (i % 20 == 19) {
          q.clear_write();
          *q.mutable_fsync()->mutable_handle() = file_.handle;
          q.mutable_fsync()->set_open_id(file_.open_id);
        }
        *b.add_requests() = std::move(q);
      }
      if (!s->Write(b)) break;
    }
    ctx->TryCancel();
    s->Finish().IgnoreError();
  }
  // Still serving, and the file is usable.
  EXPECT_EQ(*ts_->client->Write(file_, 0, "alive"), 5);
  EXPECT_EQ(*ts_->client->Read(file_, 0, 5), "alive");
  EXPECT_TRUE(ts_->client->Fsync(file_, false).ok());
}

// Last: after all those vanished streams the server still stops cleanly
// (exit 0; in an ASAN build, LeakSanitizer found no leaked request).
TEST_F(SubmitTest, ZzSigtermAfterVanishedClients) { EXPECT_EQ(ts_->Stop(), 0); }

}  // namespace
}  // namespace server
