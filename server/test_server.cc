#include "server/test_server.h"

#include <cstdlib>
#include <string>

#include "block/device.h"
#include "fs/volume.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace server {

namespace {

std::string FormatImage() {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = std::string(dir ? dir : "/tmp") + "/server_test.img";
  block::OpenOptions o;
  o.create = true;
  o.create_size = 256ull << 20;
  auto dev = block::OpenDevice(path, o);
  EXPECT_TRUE(dev.ok()) << dev.status();
  fs::LayoutOptions layout;
  layout.block_size = 4096;
  layout.device_bytes = (*dev)->limits().capacity_bytes;
  auto sb = fs::Volume::Format(**dev, layout);
  EXPECT_TRUE(sb.ok()) << sb.status();
  return path;
}

}  // namespace

TestServer* TestServer::Get() {
  static TestServer* ts = [] {
    auto* t = new TestServer;
    t->image = FormatImage();
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.volumes.push_back(VolumeSpec{"default", t->image});
    o.executor_threads = 8;
    o.stream.max_in_flight_requests = 64;
    o.stream.max_in_flight_bytes = 4 << 20;
    o.stream.max_bytes_per_request = 1 << 20;
    o.stream.max_message_bytes = 8 << 20;
    t->server = std::make_unique<Server>(o);
    absl::Status s = t->server->Start();
    EXPECT_TRUE(s.ok()) << s;
    client::ClientOptions co;
    co.target = "127.0.0.1:" + std::to_string(t->server->port());
    co.max_message_bytes = 8 << 20;
    auto channel =
        grpc::CreateCustomChannel(co.target, grpc::InsecureChannelCredentials(),
                                  client::MakeChannelArguments(co));
    t->client = std::make_unique<client::Client>(channel, co);
    return t;
  }();
  return ts;
}

}  // namespace server
