// server::Server: an iomapd instance, the volumes it serves, the engine
// executor and the gRPC server, with its start and its orderly stop. The
// iomapd binary (server/main.cc) is flags around this class; tests run it
// in process.
//
// Thread-safety: Start and Shutdown from one thread; the rest is
// thread-safe.
#ifndef IOMAPD_SERVER_SERVER_H_
#define IOMAPD_SERVER_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "server/executor.h"
#include "server/ops.h"
#include "server/service.h"
#include "server/submit.h"
#include "server/volumes.h"

namespace server {

struct ServerOptions {
  // host:port; port 0 picks a free one (see Server::port()).
  std::string listen = "127.0.0.1:7411";
  std::vector<VolumeSpec> volumes;
  VolumeSetOptions volume_set;
  // Engine executor threads; 0: max(4, 2 * hardware threads).
  int executor_threads = 0;
  OpsOptions ops;
  StreamOptions stream;
  // HTTP/2 settings (docs/protocol.md, "Transport settings").
  int http2_max_frame_size = (16 << 20) - 1;
  int http2_lookahead_bytes = 64 << 20;
  // How long Shutdown lets calls finish before cancelling them.
  int shutdown_grace_ms = 5000;
};

class Server {
 public:
  explicit Server(const ServerOptions& options);
  // Shutdown() if still running.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Mounts the volumes and starts listening. Fails (and leaves nothing
  // mounted) when a volume cannot be mounted or the address not bound.
  absl::Status Start();
  // Stops accepting calls, lets running ones finish for shutdown_grace_ms
  // and cancels the rest, drains the executor, closes open files (writing
  // back) and unmounts. Returns the first unmount error. Idempotent.
  absl::Status Shutdown();

  int port() const { return port_; }
  VolumeSet* volumes() { return volumes_.get(); }

 private:
  const ServerOptions options_;
  std::unique_ptr<VolumeSet> volumes_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<Ops> ops_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> grpc_;
  int port_ = 0;
  bool running_ = false;
};

}  // namespace server

#endif  // IOMAPD_SERVER_SERVER_H_
