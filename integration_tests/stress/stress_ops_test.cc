// The stress run straight over server::Ops and a real volume image, with no
// gRPC in between, so that ThreadSanitizer sees every lock the server and
// the filesystem take (tagged "sanitize": it also runs under TSAN and ASAN).
#include <cstdlib>
#include <memory>
#include <string>

#include "block/device.h"
#include "fs/volume.h"
#include "gtest/gtest.h"
#include "integration_tests/stress/stress.h"
#include "server/ops.h"
#include "server/volumes.h"

namespace {

namespace v1 = ::iomapd::v1;

class OpsEndpoint : public stress::Endpoint {
 public:
  OpsEndpoint(server::Ops* ops, const std::vector<v1::FileHandle>& files)
      : ops_(ops) {
    for (const v1::FileHandle& h : files) {
      v1::OpenRequest q;
      *q.mutable_handle() = h;
      q.set_flags(v1::OPEN_FLAG_READ | v1::OPEN_FLAG_WRITE);
      v1::OpenResponse r;
      server::Outcome o = ops_->Open(q, &r);
      EXPECT_TRUE(o.ok()) << o.message;
      files_.push_back({h, r.open_id()});
    }
  }
  ~OpsEndpoint() override {
    for (const auto& [h, id] : files_) {
      v1::CloseRequest q;
      *q.mutable_handle() = h;
      q.set_open_id(id);
      v1::CloseResponse r;
      EXPECT_TRUE(ops_->Close(q, &r).ok());
    }
  }
  int64_t Write(int f, int64_t off, const std::string& data) override {
    v1::WriteRequest q;
    Target(f, &q);
    q.set_offset(off);
    q.set_data(data);
    v1::WriteResponse r;
    server::Outcome o = ops_->Write(q, &r);
    return o.ok() ? r.result() : -o.errnum;
  }
  int64_t Read(int f, int64_t off, int64_t len, std::string* out) override {
    v1::ReadRequest q;
    Target(f, &q);
    q.set_offset(off);
    q.set_length(len);
    v1::ReadResponse r;
    server::Outcome o = ops_->Read(q, &r);
    *out = r.data();
    return o.ok() ? r.result() : -o.errnum;
  }
  int Truncate(int f, int64_t size) override {
    v1::TruncateRequest q;
    Target(f, &q);
    q.set_size(size);
    v1::TruncateResponse r;
    return -ops_->Truncate(q, &r).errnum;
  }
  int Fsync(int f) override {
    v1::FsyncRequest q;
    Target(f, &q);
    v1::FsyncResponse r;
    return -ops_->Fsync(q, &r).errnum;
  }

 private:
  template <typename Q>
  void Target(int f, Q* q) {
    *q->mutable_handle() = files_[f].first;
    q->set_open_id(files_[f].second);
  }
  server::Ops* const ops_;
  std::vector<std::pair<v1::FileHandle, uint64_t>> files_;
};

TEST(StressOpsTest, EightClientsOverlappingOnSharedFiles) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string image = std::string(tmp ? tmp : "/tmp") + "/stress.img";
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
  server::VolumeSet volumes{server::VolumeSetOptions()};
  ASSERT_TRUE(volumes.Add({"v", image}).ok());
  server::Ops ops(&volumes, server::OpsOptions());
  v1::ListVolumesResponse lv;
  ASSERT_TRUE(ops.ListVolumes({}, &lv).ok());
  stress::Options opt;
  std::vector<v1::FileHandle> files;
  for (int i = 0; i < opt.files; ++i) {
    v1::CreateRequest q;
    *q.mutable_parent() = lv.volumes(0).root();
    q.set_name("shared" + std::to_string(i));
    q.set_mode(0644);
    v1::CreateResponse r;
    ASSERT_TRUE(ops.Create(q, &r).ok());
    files.push_back(r.handle());
  }
  const char* seed = std::getenv("IOMAPD_SEED");
  opt.seed = seed ? std::strtoull(seed, nullptr, 10) : 1;
  stress::Result res = stress::Run(
      opt, [&](int) { return std::make_unique<OpsEndpoint>(&ops, files); });
  for (const std::string& p : res.problems) ADD_FAILURE() << p;
  EXPECT_GT(res.writes, 1000u);
  EXPECT_GT(res.truncates, 100u);
  std::printf(
      "seed %llu: %llu ops (%llu writes, %llu reads, %llu truncates, "
      "%llu fsyncs)\n",
      (unsigned long long)opt.seed, (unsigned long long)res.ops,
      (unsigned long long)res.writes, (unsigned long long)res.reads,
      (unsigned long long)res.truncates, (unsigned long long)res.fsyncs);
  ASSERT_TRUE(volumes.CloseAll().ok());
  block::OpenOptions o;
  auto dev = block::OpenDevice(image, o);
  ASSERT_TRUE(dev.ok());
  fs::FsckResult fsck = fs::FsckVolume(**dev);
  EXPECT_TRUE(fsck.clean()) << fsck.problems[0];
}

}  // namespace
