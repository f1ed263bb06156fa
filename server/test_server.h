// The real iomapd binary, started by a test on a freshly formatted image in
// TEST_TMPDIR, with a client::Client connected to it. gRPC 1.51 does not
// like channels re-created after teardown, so each test binary makes one
// (TestServer::Get) and keeps it for all its tests.
#ifndef IOMAPD_SERVER_TEST_SERVER_H_
#define IOMAPD_SERVER_TEST_SERVER_H_

#include <csignal>
#include <memory>
#include <string>

#include "client/client.h"
#include "server/iomapd_process.h"

namespace server {

struct TestServer {
  // Starts it on first use with small stream limits so that each is cheap
  // to reach: 64 requests and 4 MiB in flight, 1 MiB per request, 8 MiB
  // messages. It serves two volumes: "default" and "dax" (fsdax). Later
  // calls return the same one.
  static TestServer* Get();
  // SIGTERM; the exit status (0 after a clean unmount, non-zero if
  // LeakSanitizer found leaks in an ASAN build).
  int Stop() { return process->Stop(SIGTERM); }

  std::string image;
  std::unique_ptr<IomapdProcess> process;
  std::unique_ptr<client::Client> client;
};

}  // namespace server

#endif  // IOMAPD_SERVER_TEST_SERVER_H_
