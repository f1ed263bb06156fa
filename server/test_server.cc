#include "server/test_server.h"

#include <csignal>
#include <cstdlib>
#include <string>

#include "block/device.h"
#include "fs/volume.h"
#include "gtest/gtest.h"

namespace server {

namespace {

std::string TmpDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

std::string FormatImage(const std::string& name) {
  std::string path = TmpDir() + "/" + name;
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
    t->image = FormatImage("server_test.img");
    const std::string dax_image = FormatImage("server_test_dax.img");
    t->process = std::make_unique<IomapdProcess>(
        IomapdProcess::RunfilesBinary(), TmpDir() + "/iomapd.log");
    int port = t->process->Start(
        t->image, 0,
        {"--executor_threads=8", "--max_in_flight_requests=64",
         "--max_in_flight_mb=4", "--max_request_mb=1", "--max_message_mb=8",
         "--volume=dax=" + dax_image, "--dax_volumes=dax"});
    EXPECT_GT(port, 0);
    client::ClientOptions co;
    co.target = "127.0.0.1:" + std::to_string(port);
    co.max_message_bytes = 8 << 20;
    auto c = client::Client::Connect(co);
    EXPECT_TRUE(c.ok()) << c.status();
    if (c.ok()) t->client = std::move(*c);
    return t;
  }();
  return ts;
}

}  // namespace server
