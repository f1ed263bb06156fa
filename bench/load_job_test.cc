// RunJob and LayOut against an in-process fake iomapd that keeps one file in
// memory: request counts, offsets, layout, stopping at the first failure.
// The fake is only a peer that follows docs/protocol.md for the handful of
// operations the generator uses; the real server is measured by
// bench/iomapd_vs_nbdkit.sh.
#include "bench/load_job.h"

#include <cerrno>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "base/errno.h"
#include "base/mutex.h"
#include "grpc/grpc.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "proto/wire_status.h"

namespace bench {
namespace {

namespace v1 = ::iomapd::v1;

// gRPC 1.51 must not be torn down and rebuilt inside one process.
const bool kGrpcKeptAlive = (grpc_init(), true);

// One file (inode 2) in the root (inode 1) of volume "default".
class MemFileService final : public v1::Iomapd::Service {
 public:
  base::Mutex mu;
  std::string data ABSL_GUARDED_BY(mu);
  uint64_t reads ABSL_GUARDED_BY(mu) = 0;
  uint64_t writes ABSL_GUARDED_BY(mu) = 0;
  uint64_t fsyncs ABSL_GUARDED_BY(mu) = 0;
  uint64_t misaligned ABSL_GUARDED_BY(mu) = 0;
  int64_t fail_write_at ABSL_GUARDED_BY(mu) = -1;  // EIO for this offset
  uint64_t block ABSL_GUARDED_BY(mu) = 4096;       // alignment checked

  grpc::Status ListVolumes(grpc::ServerContext*, const v1::ListVolumesRequest*,
                           v1::ListVolumesResponse* resp) override {
    v1::VolumeInfo* v = resp->add_volumes();
    v->set_name("default");
    *v->mutable_root() = Handle(1);
    return grpc::Status::OK;
  }
  grpc::Status Lookup(grpc::ServerContext*, const v1::LookupRequest* req,
                      v1::LookupResponse* resp) override {
    if (req->name() != "f") return wire::ErrnoToGrpcStatus(ENOENT, "no");
    *resp->mutable_handle() = Handle(2);
    return grpc::Status::OK;
  }
  grpc::Status Open(grpc::ServerContext*, const v1::OpenRequest*,
                    v1::OpenResponse* resp) override {
    resp->set_open_id(9);
    return grpc::Status::OK;
  }
  grpc::Status Stat(grpc::ServerContext*, const v1::StatRequest*,
                    v1::StatResponse* resp) override {
    base::MutexLock lock(&mu);
    resp->mutable_attr()->set_size(static_cast<int64_t>(data.size()));
    return grpc::Status::OK;
  }
  // No holes inside the file: the hole is at EOF.
  grpc::Status Seek(grpc::ServerContext*, const v1::SeekRequest*,
                    v1::SeekResponse* resp) override {
    base::MutexLock lock(&mu);
    resp->set_result(static_cast<int64_t>(data.size()));
    return grpc::Status::OK;
  }
  grpc::Status Fsync(grpc::ServerContext*, const v1::FsyncRequest*,
                     v1::FsyncResponse*) override {
    base::MutexLock lock(&mu);
    fsyncs++;
    return grpc::Status::OK;
  }
  grpc::Status Submit(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::CompletionBatch, v1::SubmitBatch>* stream)
      override {
    v1::CompletionBatch first;
    first.mutable_limits()->set_max_in_flight_requests(64);
    first.mutable_limits()->set_max_in_flight_bytes(16 << 20);
    first.mutable_limits()->set_max_bytes_per_request(1 << 20);
    first.mutable_limits()->set_max_message_bytes(32 << 20);
    stream->Write(first);
    v1::SubmitBatch batch;
    while (stream->Read(&batch)) {
      v1::CompletionBatch out;
      for (const v1::SubmitRequest& r : batch.requests()) {
        Answer(r, out.add_completions());
      }
      stream->Write(out);
    }
    return grpc::Status::OK;
  }

 private:
  static v1::FileHandle Handle(uint64_t ino) {
    v1::FileHandle h;
    h.set_volume("default");
    h.set_inode(ino);
    h.set_generation(1);
    return h;
  }

  void Answer(const v1::SubmitRequest& r, v1::Completion* c) {
    base::MutexLock lock(&mu);
    c->set_tag(r.tag());
    if (r.has_read()) {
      const uint64_t off = r.read().offset();
      if (off % block) misaligned++;
      reads++;
      const std::string got =
          off < data.size() ? data.substr(off, r.read().length()) : "";
      c->set_data(got);
      c->set_result(static_cast<int64_t>(got.size()));
    } else if (r.has_write()) {
      const int64_t off = r.write().offset();
      if (off % block) misaligned++;
      writes++;
      if (off == fail_write_at) {
        c->set_errnum(EIO);
        c->set_message("injected");
        return;
      }
      const std::string& d = r.write().data();
      if (data.size() < off + d.size()) data.resize(off + d.size());
      data.replace(off, d.size(), d);
      c->set_result(static_cast<int64_t>(d.size()));
    }
  }
};

class LoadJobTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (service_ != nullptr) return;
    service_ = new MemFileService;
    grpc::ServerBuilder builder;
    builder.RegisterService(service_);
    server_ = builder.BuildAndStart().release();
    client::ClientOptions options;
    client_ = new client::Client(
        server_->InProcessChannel(client::MakeChannelArguments(options)),
        options);
  }

  void SetUp() override {
    base::MutexLock lock(&service_->mu);
    service_->data.clear();
    service_->reads = service_->writes = service_->fsyncs = 0;
    service_->misaligned = 0;
    service_->fail_write_at = -1;
    service_->block = 4096;
  }

  std::unique_ptr<client::AsyncStream> Stream() {
    client::AsyncOptions o;
    o.when_full = client::AsyncOptions::WhenFull::kFail;
    auto s = client_->OpenStream(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  client::OpenFile File() {
    auto f = client_->OpenPath("", "/f", 3);
    EXPECT_TRUE(f.ok()) << f.status();
    return f.ok() ? *f : client::OpenFile();
  }

  static MemFileService* service_;
  static grpc::Server* server_;
  static client::Client* client_;
};

MemFileService* LoadJobTest::service_ = nullptr;
grpc::Server* LoadJobTest::server_ = nullptr;
client::Client* LoadJobTest::client_ = nullptr;

TEST_F(LoadJobTest, LayOutWritesTheWholeFileOnceAndFsyncs) {
  auto stream = Stream();
  const client::OpenFile file = File();
  const uint64_t size = (5 << 20) + 4096;  // not a multiple of the chunk
  bool wrote = false;
  ASSERT_TRUE(LayOut(client_, stream.get(), file, size, &wrote).ok());
  EXPECT_TRUE(wrote);
  {
    base::MutexLock lock(&service_->mu);
    EXPECT_EQ(service_->data.size(), size);
    EXPECT_EQ(service_->writes, 6u);
    EXPECT_EQ(service_->fsyncs, 1u);
    EXPECT_EQ(service_->data.find(std::string(4096, '\0')), std::string::npos)
        << "layout data must not contain zero blocks";
  }
  ASSERT_TRUE(LayOut(client_, stream.get(), file, size, &wrote).ok());
  EXPECT_FALSE(wrote) << "an already written file is not laid out again";
}

TEST_F(LoadJobTest, OnePassReadsEveryBlockCountOnce) {
  auto stream = Stream();
  const client::OpenFile file = File();
  bool wrote = false;
  ASSERT_TRUE(LayOut(client_, stream.get(), file, 1 << 20, &wrote).ok());
  JobSpec spec;
  spec.pattern = Pattern::kRead;
  spec.bs = 4096;
  spec.iodepth = 16;
  spec.size = 1 << 20;
  spec.runtime_s = 0;
  const JobResult r = RunJob(stream.get(), file, spec);
  EXPECT_EQ(r.errors, 0u) << r.first_error;
  EXPECT_EQ(r.read.ios, 256u);
  EXPECT_EQ(r.read.bytes, 1u << 20);
  EXPECT_EQ(r.read.latency.count(), 256u);
  EXPECT_EQ(r.write.ios, 0u);
  EXPECT_GT(r.elapsed_s, 0);
  EXPECT_EQ(stream->in_flight(), 0u);
}

TEST_F(LoadJobTest, TimedRandRwMixesAlignedReadsAndWrites) {
  auto stream = Stream();
  const client::OpenFile file = File();
  bool wrote = false;
  ASSERT_TRUE(LayOut(client_, stream.get(), file, 8 << 20, &wrote).ok());
  JobSpec spec;
  spec.pattern = Pattern::kRandRW;
  spec.bs = 8192;
  spec.iodepth = 8;
  spec.size = 8 << 20;
  spec.runtime_s = 0.3;
  spec.rwmixread = 70;
  spec.seed = 42;
  const JobResult r = RunJob(stream.get(), file, spec);
  EXPECT_EQ(r.errors, 0u) << r.first_error;
  const uint64_t ios = r.read.ios + r.write.ios;
  ASSERT_GT(ios, 100u) << "seed " << spec.seed;
  EXPECT_NEAR(static_cast<double>(r.read.ios) / ios, 0.7, 0.1);
  EXPECT_GE(r.elapsed_s, 0.3);
  EXPECT_LT(r.elapsed_s, 5);
  base::MutexLock lock(&service_->mu);
  EXPECT_EQ(service_->misaligned, 0u);
  EXPECT_EQ(service_->data.size(), 8u << 20) << "writes stay inside size";
}

TEST_F(LoadJobTest, StopsAtTheFirstFailure) {
  auto stream = Stream();
  const client::OpenFile file = File();
  {
    base::MutexLock lock(&service_->mu);
    service_->fail_write_at = 3 * 4096;
  }
  JobSpec spec;
  spec.pattern = Pattern::kWrite;
  spec.bs = 4096;
  spec.iodepth = 4;
  spec.size = 1 << 20;
  spec.runtime_s = 10;
  const JobResult r = RunJob(stream.get(), file, spec);
  EXPECT_EQ(r.errors, 1u);
  EXPECT_NE(r.first_error.find("write at offset 12288: errnum 5"),
            std::string::npos)
      << r.first_error;
  EXPECT_LT(r.elapsed_s, 5) << "the run must end at the failure";
  EXPECT_LT(r.write.ios, 16u);
}

TEST(LoadJobParseTest, Sizes) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("4k"), 4096u);
  EXPECT_EQ(*ParseSize("4KiB"), 4096u);
  EXPECT_EQ(*ParseSize("1m"), 1u << 20);
  EXPECT_EQ(*ParseSize("2G"), 2ull << 30);
  EXPECT_EQ(*ParseSize("1t"), 1ull << 40);
  for (const char* bad :
       {"", "k", "4x", "-1", "99999999999999999999", "17179869184g"}) {
    EXPECT_EQ(base::ErrnoOf(ParseSize(bad).status()), -EINVAL) << bad;
  }
}

TEST(LoadJobParseTest, Patterns) {
  for (Pattern p : {Pattern::kRead, Pattern::kWrite, Pattern::kRandRead,
                    Pattern::kRandWrite, Pattern::kRandRW}) {
    EXPECT_EQ(*ParsePattern(PatternName(p)), p);
  }
  EXPECT_EQ(base::ErrnoOf(ParsePattern("trim").status()), -EINVAL);
}

TEST(LoadJobParseTest, FitDepthFollowsTheLimits) {
  v1::StreamLimits limits;
  EXPECT_EQ(FitDepth(limits, 4096, 32), 32u) << "zero limits: no limit";
  limits.set_max_in_flight_requests(16);
  limits.set_max_in_flight_bytes(4 << 20);
  limits.set_max_bytes_per_request(1 << 20);
  EXPECT_EQ(FitDepth(limits, 4096, 32), 16u);
  EXPECT_EQ(FitDepth(limits, 1 << 20, 32), 4u);
  EXPECT_EQ(FitDepth(limits, (1 << 20) + 1, 32), 0u);
}

}  // namespace
}  // namespace bench
