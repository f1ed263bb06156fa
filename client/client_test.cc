// The client library against an in-process fake iomapd service: errno
// mapping through real gRPC, path walking, and the Submit stream's limits,
// batching and failure handling. The fake answers from a tiny in-memory
// namespace; it is not the server (server/ is), only a peer that follows
// docs/protocol.md.
#include "client/client.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "base/errno.h"
#include "client/async.h"
#include "grpc/grpc.h"
#include "grpc/support/log.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "proto/wire_status.h"

namespace client {
namespace {

// gRPC 1.51 tears its library down when the last object goes away and
// builds it again for the next; a test binary that repeats suites
// (--gtest_repeat) hit a refcount assertion ("prior > 0") in that cycle.
// One grpc_init() for the whole process keeps the library up, as in any
// long-lived client.
const bool kGrpcKeptAlive = (grpc_init(), true);

v1::FileHandle Handle(uint64_t ino) {
  v1::FileHandle h;
  h.set_volume("default");
  h.set_inode(ino);
  h.set_generation(1);
  return h;
}

// Root (1) holds "a" (2, a directory) which holds "b" (3, a file).
class FakeIomapd final : public v1::Iomapd::Service {
 public:
  v1::StreamLimits limits;
  std::atomic<int> batches{0};
  std::atomic<int> max_in_flight_seen{0};
  bool reply_in_reverse = false;  // complete each batch out of order
  bool end_stream_early = false;  // fail the stream after the first batch

  grpc::Status ListVolumes(grpc::ServerContext*, const v1::ListVolumesRequest*,
                           v1::ListVolumesResponse* resp) override {
    v1::VolumeInfo* v = resp->add_volumes();
    v->set_name("default");
    *v->mutable_root() = Handle(1);
    v->set_block_size(4096);
    return grpc::Status::OK;
  }

  grpc::Status Lookup(grpc::ServerContext*, const v1::LookupRequest* req,
                      v1::LookupResponse* resp) override {
    const uint64_t parent = req->parent().inode();
    uint64_t ino = 0;
    if (parent == 1 && req->name() == "a") ino = 2;
    if (parent == 2 && req->name() == "b") ino = 3;
    if (parent == 3) return wire::ErrnoToGrpcStatus(ENOTDIR, "not a dir");
    if (ino == 0) return wire::ErrnoToGrpcStatus(ENOENT, req->name());
    *resp->mutable_handle() = Handle(ino);
    resp->mutable_attr()->set_inode(ino);
    return grpc::Status::OK;
  }

  grpc::Status Stat(grpc::ServerContext*, const v1::StatRequest* req,
                    v1::StatResponse* resp) override {
    if (req->handle().generation() != 1) {
      return wire::ErrnoToGrpcStatus(ESTALE, "generation mismatch");
    }
    resp->mutable_attr()->set_inode(req->handle().inode());
    resp->mutable_attr()->set_size(12345);
    return grpc::Status::OK;
  }

  grpc::Status Open(grpc::ServerContext*, const v1::OpenRequest* req,
                    v1::OpenResponse* resp) override {
    resp->set_open_id(77);
    resp->mutable_attr()->set_inode(req->handle().inode());
    return grpc::Status::OK;
  }

  grpc::Status Seek(grpc::ServerContext*, const v1::SeekRequest* req,
                    v1::SeekResponse* resp) override {
    if (req->offset() >= 12345) return wire::ErrnoToGrpcStatus(ENXIO, "eof");
    resp->set_result(req->offset());
    return grpc::Status::OK;
  }

  grpc::Status Fiemap(grpc::ServerContext*, const v1::FiemapRequest* req,
                      v1::FiemapResponse* resp) override {
    if (req->flags() & ~1u) {
      resp->set_errnum(EBADR);
      resp->set_bad_flags(req->flags() & ~1u);
      return wire::ErrnoToGrpcStatus(EBADR, "unsupported fiemap flags", resp);
    }
    resp->set_mapped_extents(0);
    return grpc::Status::OK;
  }

  grpc::Status Read(grpc::ServerContext*, const v1::ReadRequest* req,
                    v1::ReadResponse* resp) override {
    resp->set_data(std::string(req->length(), 'd'));
    resp->set_result(req->length());
    return grpc::Status::OK;
  }

  // Answers with errnum in an OK response (a server may do this too).
  grpc::Status Bmap(grpc::ServerContext*, const v1::BmapRequest*,
                    v1::BmapResponse* resp) override {
    resp->set_errnum(EINVAL);
    return grpc::Status::OK;
  }

  grpc::Status Submit(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::CompletionBatch, v1::SubmitBatch>* stream)
      override {
    v1::CompletionBatch first;
    *first.mutable_limits() = limits;
    stream->Write(first);
    v1::SubmitBatch batch;
    while (stream->Read(&batch)) {
      batches++;
      v1::CompletionBatch out = Answer(batch);
      if (end_stream_early) {
        return grpc::Status(grpc::StatusCode::INTERNAL, "fake server quit");
      }
      stream->Write(out);
    }
    return grpc::Status::OK;
  }

 private:
  // Completes a batch, honouring links: a failed request cancels the rest
  // of its chain.
  v1::CompletionBatch Answer(const v1::SubmitBatch& batch) {
    int n = batch.requests_size();
    if (n > max_in_flight_seen) max_in_flight_seen = n;
    v1::CompletionBatch out;
    bool prev_failed = false;
    for (const v1::SubmitRequest& r : batch.requests()) {
      v1::Completion* c = out.add_completions();
      c->set_tag(r.tag());
      if (r.link() && prev_failed) {
        c->set_errnum(ECANCELED);
      } else if (r.has_write()) {
        c->set_result(r.write().data().size());
      } else if (r.has_read()) {
        c->set_data(std::string(r.read().length(), 'r'));
        c->set_result(r.read().length());
      } else if (r.has_fsync()) {
        c->set_errnum(EIO);
        c->set_message("injected");
      }
      prev_failed = c->errnum() != 0;
    }
    if (reply_in_reverse) {
      std::reverse(out.mutable_completions()->begin(),
                   out.mutable_completions()->end());
    }
    return out;
  }
};

class ClientTest : public ::testing::Test {
 protected:
  // Created once per process and never torn down: gRPC 1.51 asserted
  // ("prior > 0") when a channel was created while a torn-down in-process
  // server and its channel were still being cleaned up (seen with
  // --gtest_repeat). A real client keeps one channel for its lifetime.
  static void SetUpTestSuite() {
    if (service_ != nullptr) return;
    service_ = new FakeIomapd;
    grpc::ServerBuilder builder;
    builder.RegisterService(service_);
    server_ = builder.BuildAndStart().release();
    ClientOptions options;
    client_ = new Client(
        server_->InProcessChannel(MakeChannelArguments(options)), options);
  }

  void SetUp() override {
    service_->limits.set_max_in_flight_requests(8);
    service_->limits.set_max_in_flight_bytes(1 << 20);
    service_->limits.set_max_bytes_per_request(256 << 10);
    service_->limits.set_max_message_bytes(4 << 20);
    service_->reply_in_reverse = false;
    service_->end_stream_early = false;
    service_->max_in_flight_seen = 0;
  }

  static FakeIomapd* service_;
  static grpc::Server* server_;
  static Client* client_;
};

FakeIomapd* ClientTest::service_ = nullptr;
grpc::Server* ClientTest::server_ = nullptr;
Client* ClientTest::client_ = nullptr;

TEST(SplitPath, Components) {
  EXPECT_EQ(*SplitPath("/a/b/c"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(*SplitPath("a//b/./c/"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(*SplitPath("/a/../b"), std::vector<std::string>{"b"});
  EXPECT_TRUE(SplitPath("/")->empty());
  EXPECT_TRUE(SplitPath("")->empty());
  EXPECT_EQ(base::ErrnoOf(SplitPath("/..").status()), -ENOENT);
  EXPECT_EQ(base::ErrnoOf(SplitPath("/" + std::string(256, 'x')).status()),
            -ENAMETOOLONG);
  EXPECT_TRUE(SplitPath("/" + std::string(255, 'x')).ok());
  EXPECT_EQ(base::ErrnoOf(SplitPath(std::string("a\0b", 3)).status()), -EINVAL);
}

TEST(MakeChannelArguments, CarriesTheTunedHttp2Settings) {
  ClientOptions o;
  grpc::ChannelArguments args = MakeChannelArguments(o);
  grpc_channel_args raw = args.c_channel_args();
  std::map<std::string, int> ints;
  for (size_t i = 0; i < raw.num_args; i++) {
    if (raw.args[i].type == GRPC_ARG_INTEGER) {
      ints[raw.args[i].key] = raw.args[i].value.integer;
    }
  }
  EXPECT_EQ(ints[GRPC_ARG_HTTP2_MAX_FRAME_SIZE], 16777215);
  EXPECT_EQ(ints[GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES], 64 << 20);
  EXPECT_EQ(ints[GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH], 80 << 20);
  EXPECT_EQ(ints[GRPC_ARG_MAX_SEND_MESSAGE_LENGTH], 80 << 20);
}

TEST(Connect, UnreachableServerIsENOTCONN) {
  ClientOptions o;
  o.target = "127.0.0.1:1";  // nothing listens on port 1
  o.connect_timeout_ms = 200;
  auto c = Client::Connect(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(base::ErrnoOf(c.status()), -ENOTCONN);
  EXPECT_NE(c.status().message().find("127.0.0.1:1"), absl::string_view::npos);
}

std::vector<std::string>* g_grpc_logs = nullptr;

// Installed for the rest of the process (1.51 has no way to restore the
// default): collects while a test listens, prints otherwise.
void CaptureLog(gpr_log_func_args* args) {
  if (g_grpc_logs != nullptr) {
    g_grpc_logs->push_back(args->message);
  } else {
    fprintf(stderr, "grpc: %s\n", args->message);
  }
}

// The tuned HTTP/2 settings over real TCP: gRPC 1.51 accepts them (an
// out-of-range channel argument is logged and ignored) and large messages
// flow. Prints loopback throughput for information; asserts none.
TEST(Transport, TunedSettingsAcceptedOverTcp) {
  std::vector<std::string> logs;
  g_grpc_logs = &logs;
  gpr_set_log_function(CaptureLog);
  ClientOptions options;
  FakeIomapd service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_FRAME_SIZE,
                             options.http2_max_frame_size);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES,
                             options.http2_lookahead_bytes);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_GT(port, 0);
  options.target = "127.0.0.1:" + std::to_string(port);
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  OpenFile f{Handle(3), 1, {}};
  auto big = (*client)->Read(f, 0, 32 << 20);
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(big->size(), 32u << 20);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 64; i++) ASSERT_TRUE((*client)->Read(f, 0, 1 << 20).ok());
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  printf("loopback: 64 x 1 MiB unary reads, %.0f MB/s\n", 64 * 1.048576 / secs);
  client->reset();
  server->Shutdown();
  g_grpc_logs = nullptr;
  for (const std::string& line : logs) {
    EXPECT_EQ(line.find("max_frame_size"), std::string::npos) << line;
    EXPECT_EQ(line.find("lookahead"), std::string::npos) << line;
  }
}

TEST_F(ClientTest, PathWalk) {
  auto b = client_->LookupPath("", "/a/b");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->handle().inode(), 3u);
  auto root = client_->LookupPath("", "/");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->attr().size(), 12345);
  auto parent = client_->LookupParent("", "/a/new");
  ASSERT_TRUE(parent.ok());
  EXPECT_EQ(parent->first.inode(), 2u);
  EXPECT_EQ(parent->second, "new");
  EXPECT_EQ(base::ErrnoOf(client_->LookupPath("", "/a/zz").status()), -ENOENT);
  EXPECT_EQ(base::ErrnoOf(client_->LookupPath("", "/a/b/c").status()),
            -ENOTDIR);
  EXPECT_EQ(base::ErrnoOf(client_->LookupPath("nope", "/a").status()), -ENOENT);
  auto f = client_->OpenPath("", "/a/b", v1::OPEN_FLAG_READ);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->open_id, 77u);
}

TEST_F(ClientTest, ExactErrnoThroughGrpc) {
  OpenFile f{Handle(3), 77, {}};
  EXPECT_EQ(*client_->Seek(f, 5, v1::WHENCE_DATA), 5);
  auto eof = client_->Seek(f, 20000, v1::WHENCE_DATA);
  EXPECT_EQ(base::ErrnoOf(eof.status()), -ENXIO);  // not ENOENT
  v1::FileHandle stale = Handle(3);
  stale.set_generation(9);
  EXPECT_EQ(base::ErrnoOf(client_->Stat(stale).status()), -ESTALE);
  // errnum in an OK response is an error too.
  EXPECT_EQ(base::ErrnoOf(client_->Bmap(Handle(3), 0).status()), -EINVAL);
  // Unimplemented RPCs surface as EOPNOTSUPP.
  EXPECT_EQ(base::ErrnoOf(client_->Truncate(f, 0)), -EOPNOTSUPP);
}

TEST_F(ClientTest, FiemapRawCarriesBadFlags) {
  v1::FiemapRequest req;
  *req.mutable_handle() = Handle(3);
  req.set_flags(0x1 | 0x4);
  EXPECT_EQ(base::ErrnoOf(client_->Fiemap(req).status()), -EBADR);
  auto raw = client_->FiemapRaw(req);
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->errnum(), EBADR);
  EXPECT_EQ(raw->bad_flags(), 0x4u);
  req.set_flags(1);
  EXPECT_TRUE(client_->Fiemap(req).ok());
}

v1::SubmitRequest WriteReq(size_t bytes) {
  v1::SubmitRequest r;
  r.mutable_write()->set_data(std::string(bytes, 'w'));
  return r;
}

TEST_F(ClientTest, StreamLimitsAndFutures) {
  auto s = client_->OpenStream(AsyncOptions());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->limits().max_in_flight_requests(), 8u);
  std::vector<std::future<v1::Completion>> futures;
  for (int i = 0; i < 100; i++) {
    futures.push_back((*s)->SubmitFuture(WriteReq(1000 + i)));
  }
  for (int i = 0; i < 100; i++) {
    v1::Completion c = futures[i].get();
    EXPECT_EQ(c.errnum(), 0);
    EXPECT_EQ(c.result(), 1000 + i);
  }
  EXPECT_LE(service_->max_in_flight_seen, 8);  // never past the limit
  EXPECT_TRUE((*s)->Close().ok());
}

TEST_F(ClientTest, StreamRejectsOversizeAndFullWindow) {
  AsyncOptions o;
  o.when_full = AsyncOptions::WhenFull::kFail;
  auto s = client_->OpenStream(o);
  ASSERT_TRUE(s.ok());
  auto too_big = (*s)->Submit(WriteReq((256 << 10) + 1), nullptr);
  EXPECT_EQ(base::ErrnoOf(too_big), -EMSGSIZE);
  // Fill the window faster than the fake answers: some get EAGAIN, none
  // are lost.
  std::atomic<int> completed{0};
  int accepted = 0, rejected = 0;
  for (int i = 0; i < 200; i++) {
    absl::Status st = (*s)->Submit(WriteReq(200 << 10),
                                   [&](const v1::Completion&) { completed++; });
    if (st.ok()) accepted++;
    if (!st.ok()) {
      EXPECT_EQ(base::ErrnoOf(st), -EAGAIN);
      rejected++;
    }
  }
  EXPECT_TRUE((*s)->Close().ok());
  EXPECT_EQ(completed, accepted);
  EXPECT_GT(rejected, 0);  // 1 MiB in flight admits at most 5 of 200 KiB
}

TEST_F(ClientTest, StreamSubmitWriteSendsSharedData) {
  AsyncOptions o;
  o.when_full = AsyncOptions::WhenFull::kFail;
  auto s = client_->OpenStream(o);
  ASSERT_TRUE(s.ok());
  auto data = std::make_shared<const std::string>(200 << 10, 'd');
  v1::SubmitRequest bare;
  bare.mutable_write();
  // The window counts the payload: 1 MiB in flight admits 5 of 200 KiB.
  std::atomic<int> completed{0};
  std::atomic<int> bad{0};
  int accepted = 0, rejected = 0;
  for (int i = 0; i < 50; i++) {
    absl::Status st =
        (*s)->SubmitWrite(bare, data, [&](const v1::Completion& c) {
          if (c.errnum() != 0 || c.result() != (200 << 10)) bad++;
          completed++;
        });
    if (st.ok()) accepted++;
    if (!st.ok()) {
      EXPECT_EQ(base::ErrnoOf(st), -EAGAIN);
      rejected++;
    }
  }
  auto too_big = std::make_shared<const std::string>((256 << 10) + 1, 'x');
  EXPECT_EQ(base::ErrnoOf((*s)->SubmitWrite(bare, too_big, nullptr)),
            -EMSGSIZE);
  EXPECT_EQ(base::ErrnoOf((*s)->SubmitWrite(WriteReq(1), data, nullptr)),
            -EINVAL);  // data in the request too
  v1::SubmitRequest read;
  read.mutable_read()->set_length(1);
  EXPECT_EQ(base::ErrnoOf((*s)->SubmitWrite(read, data, nullptr)), -EINVAL);
  EXPECT_TRUE((*s)->Close().ok());
  EXPECT_EQ(completed, accepted);
  EXPECT_EQ(bad, 0);
  EXPECT_GT(rejected, 0);
}

TEST_F(ClientTest, StreamOutOfOrderAndLinks) {
  service_->reply_in_reverse = true;
  auto s = client_->OpenStream(AsyncOptions());
  ASSERT_TRUE(s.ok());
  std::vector<v1::SubmitRequest> chain(3);
  chain[0] = WriteReq(10);
  chain[1].mutable_fsync();  // fails with EIO in the fake
  chain[2] = WriteReq(20);
  std::vector<v1::Completion> got(3);
  std::vector<CompletionCallback> cbs;
  for (int i = 0; i < 3; i++) {
    cbs.push_back([&got, i](const v1::Completion& c) { got[i] = c; });
  }
  ASSERT_TRUE((*s)->SubmitLinked(chain, cbs).ok());
  ASSERT_TRUE((*s)->Close().ok());
  EXPECT_EQ(got[0].result(), 10);
  EXPECT_EQ(got[1].errnum(), EIO);
  EXPECT_EQ(got[2].errnum(), ECANCELED);
  EXPECT_EQ(base::ErrnoOf((*s)->Submit(WriteReq(1), nullptr)), -EPIPE);
}

TEST_F(ClientTest, StreamFailureCompletesEverythingOutstanding) {
  service_->end_stream_early = true;
  auto s = client_->OpenStream(AsyncOptions());
  ASSERT_TRUE(s.ok());
  std::vector<std::future<v1::Completion>> futures;
  for (int i = 0; i < 8; i++)
    futures.push_back((*s)->SubmitFuture(WriteReq(1)));
  for (auto& f : futures) {
    v1::Completion c = f.get();
    EXPECT_NE(c.errnum(), 0);
  }
  absl::Status closed = (*s)->Close();
  EXPECT_EQ(base::ErrnoOf(closed), -EIO);  // INTERNAL without detail
}

}  // namespace
}  // namespace client
