// A real iomapd Server in this test process, on a freshly formatted image
// in TEST_TMPDIR, with a client::Client connected to it. gRPC 1.51 does not
// like channels re-created after teardown, so each test binary makes one
// (TestServer::Get) and keeps it for all its tests.
#ifndef IOMAPD_SERVER_TEST_SERVER_H_
#define IOMAPD_SERVER_TEST_SERVER_H_

#include <memory>
#include <string>

#include "client/client.h"
#include "server/server.h"

namespace server {

struct TestServer {
  // Starts it on first use with these stream limits (later calls return
  // the same one): in-flight requests 64, in-flight bytes 4 MiB, 1 MiB
  // per request, so every limit is cheap to reach.
  static TestServer* Get();

  std::string image;
  std::unique_ptr<Server> server;
  std::unique_ptr<client::Client> client;
};

}  // namespace server

#endif  // IOMAPD_SERVER_TEST_SERVER_H_
