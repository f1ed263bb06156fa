// The stress run through the real iomapd binary and the client library:
// eight clients, each with its own channel, on three shared files. Then the
// durability check: fsync everything, SIGKILL the server, restart it on the
// same image and find every byte; then a clean SIGTERM and a clean fsck.
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/errno.h"
#include "block/device.h"
#include "client/client.h"
#include "fs/volume.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "integration_tests/stress/stress.h"
#include "server/iomapd_process.h"

namespace {

namespace v1 = ::iomapd::v1;

class GrpcEndpoint : public stress::Endpoint {
 public:
  GrpcEndpoint(client::Client* c, int files) : c_(c) {
    for (int i = 0; i < files; ++i) {
      auto f = c_->OpenPath("", "/shared" + std::to_string(i),
                            v1::OPEN_FLAG_READ | v1::OPEN_FLAG_WRITE, true);
      EXPECT_TRUE(f.ok()) << f.status();
      files_.push_back(*f);
    }
  }
  ~GrpcEndpoint() override {
    for (const client::OpenFile& f : files_) c_->Close(f).IgnoreError();
  }
  int64_t Write(int f, int64_t off, const std::string& data) override {
    auto r = c_->Write(files_[f], off, data);
    return r.ok() ? *r : base::ErrnoOf(r.status());
  }
  int64_t Read(int f, int64_t off, int64_t len, std::string* out) override {
    auto r = c_->Read(files_[f], off, len);
    if (!r.ok()) return base::ErrnoOf(r.status());
    *out = std::move(*r);
    return static_cast<int64_t>(out->size());
  }
  int Truncate(int f, int64_t size) override {
    return base::ErrnoOf(c_->Truncate(files_[f], size));
  }
  int Fsync(int f) override {
    return base::ErrnoOf(c_->Fsync(files_[f], false));
  }

 private:
  client::Client* const c_;
  std::vector<client::OpenFile> files_;
};

std::string TmpPath(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return std::string(tmp ? tmp : "/tmp") + "/" + name;
}

std::string ReadWhole(client::Client* c, int i) {
  auto f = c->OpenPath("", "/shared" + std::to_string(i), v1::OPEN_FLAG_READ);
  EXPECT_TRUE(f.ok()) << f.status();
  std::string all;
  for (int64_t off = 0;; off += 1 << 20) {
    auto r = c->Read(*f, off, 1 << 20);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || r->empty()) break;
    all += *r;
  }
  c->Close(*f).IgnoreError();
  return all;
}

TEST(StressGrpcTest, EightClientsThenKillAndRestart) {
  const std::string image = TmpPath("grpc_stress.img");
  {
    block::OpenOptions o;
    o.create = true;
    o.create_size = 128ull << 20;
    auto dev = block::OpenDevice(image, o);
    ASSERT_TRUE(dev.ok()) << dev.status();
    fs::LayoutOptions layout;
    layout.device_bytes = (*dev)->limits().capacity_bytes;
    ASSERT_TRUE(fs::Volume::Format(**dev, layout).ok());
  }
  server::IomapdProcess server(server::IomapdProcess::RunfilesBinary(),
                               TmpPath("iomapd.log"));
  const int port = server.Start(image);
  ASSERT_GT(port, 0);
  stress::Options opt;
  opt.ops_per_client = 600;
  const char* seed = std::getenv("IOMAPD_SEED");
  opt.seed = seed ? std::strtoull(seed, nullptr, 10) : 1;
  // One channel per client, all alive until the end of the test (gRPC 1.51
  // dislikes channels re-created after others were torn down).
  client::ClientOptions co;
  co.target = "127.0.0.1:" + std::to_string(port);
  std::vector<std::unique_ptr<client::Client>> clients;
  for (int i = 0; i <= opt.clients; ++i) {
    auto c = client::Client::Connect(co);
    ASSERT_TRUE(c.ok()) << c.status();
    clients.push_back(std::move(*c));
  }
  stress::Result res = stress::Run(opt, [&](int i) {
    return std::make_unique<GrpcEndpoint>(clients[i].get(), opt.files);
  });
  for (const std::string& p : res.problems) ADD_FAILURE() << p;
  std::printf("seed %llu: %llu ops through iomapd\n",
              (unsigned long long)opt.seed, (unsigned long long)res.ops);

  client::Client* c = clients.back().get();
  std::vector<std::string> before;
  for (int i = 0; i < opt.files; ++i) {
    before.push_back(ReadWhole(c, i));
    auto f = c->OpenPath("", "/shared" + std::to_string(i), v1::OPEN_FLAG_READ);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(c->Fsync(*f, false).ok());
    c->Close(*f).IgnoreError();
  }
  EXPECT_EQ(server.Stop(SIGKILL), 128 + SIGKILL);
  ASSERT_EQ(server.Start(image, port), port);
  // The channels saw their connection drop; the first call after a restart
  // may fail with ENOTCONN while gRPC reconnects.
  for (int i = 0; i < 100 && !c->ListVolumes().ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (int i = 0; i < opt.files; ++i) {
    EXPECT_EQ(ReadWhole(c, i), before[i])
        << "file " << i << " changed across the crash";
  }
  EXPECT_EQ(server.Stop(SIGTERM), 0);
  block::OpenOptions o;
  auto dev = block::OpenDevice(image, o);
  ASSERT_TRUE(dev.ok());
  fs::FsckResult fsck = fs::FsckVolume(**dev);
  EXPECT_TRUE(fsck.clean()) << fsck.problems[0];
}

}  // namespace
