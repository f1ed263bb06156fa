#include "client/wire_encode.h"

#include <memory>
#include <string>
#include <vector>

#include "grpcpp/support/proto_buffer_reader.h"
#include "gtest/gtest.h"

namespace client {
namespace codec {
namespace {

namespace v1 = ::iomapd::v1;

std::string Bytes(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i++) s[i] = static_cast<char>(seed + i * 7);
  return s;
}

// The bytes of a buffer, in one string.
std::string Flatten(const grpc::ByteBuffer& b) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(b.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

size_t SliceCount(const grpc::ByteBuffer& b) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(b.Dump(&slices).ok());
  return slices.size();
}

v1::SubmitBatch SampleSubmit() {
  v1::SubmitBatch b;
  v1::SubmitRequest* w = b.add_requests();
  w->set_tag(1);
  w->mutable_write()->set_offset(1 << 20);
  w->mutable_write()->set_open_id(7);
  w->mutable_write()->set_data(Bytes(kAliasMinBytes, 'a'));
  v1::SubmitRequest* r = b.add_requests();
  r->set_tag(2);
  r->set_link(true);
  r->mutable_read()->set_length(4096);
  v1::SubmitRequest* small = b.add_requests();
  small->set_tag(3);
  small->mutable_write()->set_data(Bytes(kAliasMinBytes - 1, 'b'));
  v1::SubmitRequest* big = b.add_requests();
  big->set_tag(4);
  big->mutable_write()->set_flags(v1::IO_FLAG_DSYNC);
  big->mutable_write()->set_data(Bytes(3 << 20, 'c'));
  return b;
}

TEST(WireEncode, SubmitBatchParsesAsTheOriginal) {
  const v1::SubmitBatch want = SampleSubmit();
  v1::SubmitBatch batch = want;
  grpc::ByteBuffer buf = EncodeSubmitBatch(&batch);
  // Small bytes, big write, small bytes (read + small write + header), big.
  EXPECT_EQ(SliceCount(buf), 4u);
  v1::SubmitBatch got;
  ASSERT_TRUE(got.ParseFromString(Flatten(buf)));
  EXPECT_EQ(got.SerializeAsString(), want.SerializeAsString());
  ASSERT_TRUE(Decode(&buf, &got));
  EXPECT_EQ(got.SerializeAsString(), want.SerializeAsString());
}

TEST(WireEncode, PayloadsTravelAsWriteData) {
  v1::SubmitBatch batch;
  v1::SubmitRequest* r = batch.add_requests();
  r->set_tag(1);
  r->mutable_read()->set_length(4096);
  v1::SubmitRequest* w = batch.add_requests();
  w->set_tag(2);
  w->mutable_write()->set_offset(8192);
  v1::SubmitRequest* tiny = batch.add_requests();
  tiny->set_tag(3);
  tiny->mutable_write();
  auto big = std::make_shared<const std::string>(Bytes(1 << 20, 'p'));
  auto small = std::make_shared<const std::string>("xyz");
  v1::SubmitBatch want = batch;
  want.mutable_requests(1)->mutable_write()->set_data(*big);
  want.mutable_requests(2)->mutable_write()->set_data(*small);
  {
    grpc::ByteBuffer buf = EncodeSubmitBatch(&batch, {nullptr, big, small});
    EXPECT_GT(big.use_count(), 1);  // referenced, not copied
    v1::SubmitBatch got;
    ASSERT_TRUE(Decode(&buf, &got));
    EXPECT_EQ(got.SerializeAsString(), want.SerializeAsString());
  }
  EXPECT_EQ(big.use_count(), 1);  // released with the last slice
  EXPECT_EQ(small.use_count(), 1);
}

TEST(WireEncode, CompletionBatchParsesAsTheOriginal) {
  v1::CompletionBatch want;
  want.mutable_limits()->set_max_in_flight_requests(32);
  v1::Completion* c = want.add_completions();
  c->set_tag(9);
  c->set_result(1 << 20);
  c->set_data(Bytes(1 << 20, 'd'));
  v1::Completion* e = want.add_completions();
  e->set_tag(10);
  e->set_errnum(5);
  e->set_message("EIO");
  v1::Completion* s = want.add_completions();
  s->set_tag(11);
  s->set_data("tiny");
  s->mutable_attr()->set_size(3);
  v1::CompletionBatch batch = want;
  grpc::ByteBuffer buf = EncodeCompletionBatch(&batch);
  EXPECT_EQ(SliceCount(buf), 3u);
  v1::CompletionBatch got;
  ASSERT_TRUE(Decode(&buf, &got));
  EXPECT_EQ(got.SerializeAsString(), want.SerializeAsString());
}

TEST(WireEncode, EmptyBatches) {
  v1::SubmitBatch sb;
  grpc::ByteBuffer a = EncodeSubmitBatch(&sb);
  EXPECT_EQ(a.Length(), 0u);
  v1::SubmitBatch got_sb;
  EXPECT_TRUE(Decode(&a, &got_sb));
  v1::CompletionBatch cb;
  grpc::ByteBuffer b = EncodeCompletionBatch(&cb);
  v1::CompletionBatch got_cb;
  EXPECT_TRUE(Decode(&b, &got_cb));
  EXPECT_EQ(got_cb.completions_size(), 0);
}

TEST(WireEncode, DataOutlivesTheMessage) {
  grpc::ByteBuffer buf;
  {
    v1::SubmitBatch b = SampleSubmit();
    buf = EncodeSubmitBatch(&b);
  }  // the batch is gone; the slices own the data
  v1::SubmitBatch got;
  ASSERT_TRUE(Decode(&buf, &got));
  ASSERT_EQ(got.requests_size(), 4);
  EXPECT_EQ(got.requests(3).write().data(), Bytes(3 << 20, 'c'));
}

TEST(WireEncode, GarbageDoesNotDecode) {
  grpc::Slice junk(
      std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11));
  grpc::ByteBuffer buf(&junk, 1);
  v1::SubmitBatch got;
  EXPECT_FALSE(Decode(&buf, &got));
}

}  // namespace
}  // namespace codec
}  // namespace client
