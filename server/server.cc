#include "server/server.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace server {

Server::Server(const ServerOptions& options) : options_(options) {}

Server::~Server() {
  if (running_) Shutdown().IgnoreError();
}

namespace {

int ExecutorThreads(int requested) {
  if (requested > 0) return requested;
  int hw = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(4, 2 * hw);
}

}  // namespace

absl::Status Server::Start() {
  volumes_ = std::make_unique<VolumeSet>(options_.volume_set);
  for (const VolumeSpec& spec : options_.volumes) {
    if (absl::Status s = volumes_->Add(spec); !s.ok()) {
      volumes_.reset();
      return s;
    }
  }
  executor_ =
      std::make_unique<Executor>(ExecutorThreads(options_.executor_threads));
  OpsOptions ops = options_.ops;
  ops.max_bytes_per_request = options_.stream.max_bytes_per_request;
  ops_ = std::make_unique<Ops>(volumes_.get(), ops);
  service_ =
      std::make_unique<Service>(ops_.get(), executor_.get(), options_.stream);

  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.listen, grpc::InsecureServerCredentials(),
                           &port_);
  builder.RegisterService(service_.get());
  const int max_message = static_cast<int>(options_.stream.max_message_bytes);
  builder.SetMaxReceiveMessageSize(max_message);
  builder.SetMaxSendMessageSize(max_message);
  builder.AddChannelArgument("grpc.http2.max_frame_size",
                             options_.http2_max_frame_size);
  builder.AddChannelArgument("grpc.http2.lookahead_bytes",
                             options_.http2_lookahead_bytes);
  builder.AddChannelArgument("grpc.http2.bdp_probe", 0);
  grpc_ = builder.BuildAndStart();
  if (grpc_ == nullptr || port_ == 0) {
    grpc_.reset();
    executor_->Shutdown();
    volumes_->CloseAll().IgnoreError();
    volumes_.reset();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options_.listen));
  }
  running_ = true;
  return absl::OkStatus();
}

absl::Status Server::Shutdown() {
  if (!running_) return absl::OkStatus();
  running_ = false;
  grpc_->Shutdown(std::chrono::system_clock::now() +
                  std::chrono::milliseconds(options_.shutdown_grace_ms));
  grpc_->Wait();
  executor_->Shutdown();
  return volumes_->CloseAll();
}

}  // namespace server
