#include "client/client.h"

#include <cerrno>
#include <chrono>

#include "base/errno.h"
#include "base/status_macros.h"
#include "client/async.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "proto/wire_status.h"

namespace client {
namespace {

constexpr size_t kMaxNameBytes = 255;

template <typename Req, typename Resp>
using Method = grpc::Status (v1::Iomapd::Stub::*)(grpc::ClientContext*,
                                                  const Req&, Resp*);

void SetDeadline(const ClientOptions& options, grpc::ClientContext* ctx) {
  if (options.rpc_timeout_ms > 0) {
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(options.rpc_timeout_ms));
  }
}

// One unary RPC. A response whose errnum is set, or a failed status, is an
// error status carrying that errno.
template <typename Req, typename Resp>
absl::StatusOr<Resp> Call(v1::Iomapd::Stub* stub, const ClientOptions& options,
                          Method<Req, Resp> method, const Req& request,
                          const char* what) {
  grpc::ClientContext ctx;
  SetDeadline(options, &ctx);
  Resp response;
  grpc::Status status = (stub->*method)(&ctx, request, &response);
  RETURN_IF_ERROR(
      wire::ToStatus(status, status.ok() ? response.errnum() : 0, what));
  return response;
}

// As Call, but a filesystem-level failure comes back as the response with
// its errnum set (from ErrorDetail.response when the server sent one).
template <typename Req, typename Resp>
absl::StatusOr<Resp> CallRaw(v1::Iomapd::Stub* stub,
                             const ClientOptions& options,
                             Method<Req, Resp> method, const Req& request,
                             const char* what) {
  grpc::ClientContext ctx;
  SetDeadline(options, &ctx);
  Resp response;
  grpc::Status status = (stub->*method)(&ctx, request, &response);
  if (status.ok()) return response;
  if (wire::ResponseOf(status, &response)) return response;
  if (!status.error_details().empty()) {
    response.Clear();
    response.set_errnum(wire::ErrnumOf(status));
    return response;
  }
  return wire::ToStatus(status, 0, what);
}

absl::Status InvalidComponent(const std::string& component, int err,
                              const char* why) {
  return base::ErrnoStatus(-err, "path component '" + component + "' " + why);
}

}  // namespace

grpc::ChannelArguments MakeChannelArguments(const ClientOptions& options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  args.SetInt(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, options.http2_max_frame_size);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES,
              options.http2_lookahead_bytes);
  // The BDP probe would shrink the window we asked for on a quiet link.
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  // Each channel owns its connection. With gRPC 1.51's process-wide
  // subchannel pool, a channel created while an earlier one to the same
  // target was being torn down (a reconnect after the server went away)
  // tripped a refcount assertion ("prior > 0").
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return args;
}

absl::StatusOr<std::vector<std::string>> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    std::string c = path.substr(pos, slash - pos);
    pos = slash + 1;
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (parts.empty()) return InvalidComponent(c, ENOENT, "above the root");
      parts.pop_back();
      continue;
    }
    if (c.size() > kMaxNameBytes) {
      return InvalidComponent(c.substr(0, 32) + "...", ENAMETOOLONG,
                              "longer than 255 bytes");
    }
    if (c.find('\0') != std::string::npos) {
      return InvalidComponent(c, EINVAL, "contains a NUL byte");
    }
    parts.push_back(std::move(c));
  }
  return parts;
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(
    const ClientOptions& options) {
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      options.target, grpc::InsecureChannelCredentials(),
      MakeChannelArguments(options));
  const auto deadline = std::chrono::system_clock::now() +
                        std::chrono::milliseconds(options.connect_timeout_ms);
  if (!channel->WaitForConnected(deadline)) {
    return base::ErrnoStatus(
        -ENOTCONN, "cannot connect to iomapd at " + options.target +
                       " within " + std::to_string(options.connect_timeout_ms) +
                       " ms (is the server running? tools/dev up starts one)");
  }
  return std::make_unique<Client>(std::move(channel), options);
}

Client::Client(std::shared_ptr<grpc::Channel> channel,
               const ClientOptions& options)
    : options_(options),
      channel_(std::move(channel)),
      stub_(v1::Iomapd::NewStub(channel_)) {}

Client::~Client() = default;

std::string Client::VolumeName(const std::string& volume) const {
  return volume.empty() ? options_.volume : volume;
}

// ---------------------------------------------------------------- volumes

absl::StatusOr<std::vector<v1::VolumeInfo>> Client::ListVolumes() {
  ASSIGN_OR_RETURN(auto resp,
                   Call(stub_.get(), options_, &v1::Iomapd::Stub::ListVolumes,
                        v1::ListVolumesRequest(), "ListVolumes"));
  return std::vector<v1::VolumeInfo>(resp.volumes().begin(),
                                     resp.volumes().end());
}

absl::StatusOr<v1::StatFsResponse> Client::StatFs(const std::string& volume) {
  v1::StatFsRequest req;
  req.set_volume(VolumeName(volume));
  return Call(stub_.get(), options_, &v1::Iomapd::Stub::StatFs, req, "StatFs");
}

// ---------------------------------------------------------------- namespace

absl::StatusOr<v1::LookupResponse> Client::Lookup(const v1::FileHandle& parent,
                                                  const std::string& name) {
  v1::LookupRequest req;
  *req.mutable_parent() = parent;
  req.set_name(name);
  return Call(stub_.get(), options_, &v1::Iomapd::Stub::Lookup, req, "Lookup");
}

absl::StatusOr<v1::CreateResponse> Client::Create(const v1::FileHandle& parent,
                                                  const std::string& name,
                                                  uint32_t mode,
                                                  bool exclusive) {
  v1::CreateRequest req;
  *req.mutable_parent() = parent;
  req.set_name(name);
  req.set_mode(mode);
  req.set_exclusive(exclusive);
  return Call(stub_.get(), options_, &v1::Iomapd::Stub::Create, req, "Create");
}

absl::StatusOr<v1::MkdirResponse> Client::Mkdir(const v1::FileHandle& parent,
                                                const std::string& name,
                                                uint32_t mode) {
  v1::MkdirRequest req;
  *req.mutable_parent() = parent;
  req.set_name(name);
  req.set_mode(mode);
  return Call(stub_.get(), options_, &v1::Iomapd::Stub::Mkdir, req, "Mkdir");
}

absl::StatusOr<v1::ReaddirResponse> Client::Readdir(const v1::FileHandle& dir,
                                                    uint64_t cookie,
                                                    uint32_t max_entries) {
  v1::ReaddirRequest req;
  *req.mutable_dir() = dir;
  req.set_cookie(cookie);
  req.set_max_entries(max_entries);
  return Call(stub_.get(), options_, &v1::Iomapd::Stub::Readdir, req,
              "Readdir");
}

absl::StatusOr<std::vector<v1::DirEntry>> Client::ReaddirAll(
    const v1::FileHandle& dir) {
  std::vector<v1::DirEntry> all;
  uint64_t cookie = 0;
  for (;;) {
    ASSIGN_OR_RETURN(v1::ReaddirResponse page, Readdir(dir, cookie, 0));
    for (const v1::DirEntry& e : page.entries()) all.push_back(e);
    if (page.eof() || page.entries_size() == 0) return all;
    const uint64_t next = page.entries().rbegin()->cookie();
    if (next == cookie) {
      return base::ErrnoStatus(
          -EIO, "Readdir: server repeated cookie " + std::to_string(cookie));
    }
    cookie = next;
  }
}

absl::Status Client::Rename(const v1::FileHandle& src_parent,
                            const std::string& src_name,
                            const v1::FileHandle& dst_parent,
                            const std::string& dst_name, uint32_t flags) {
  v1::RenameRequest req;
  *req.mutable_src_parent() = src_parent;
  req.set_src_name(src_name);
  *req.mutable_dst_parent() = dst_parent;
  req.set_dst_name(dst_name);
  req.set_flags(flags);
  return Call(stub_.get(), options_, &v1::Iomapd::Stub::Rename, req, "Rename")
      .status();
}

absl::Status Client::Unlink(const v1::FileHandle& parent,
                            const std::string& name) {
  v1::UnlinkRequest req;
  *req.mutable_parent() = parent;
  req.set_name(name);
  return Call(stub_.get(), options_, &v1::Iomapd::Stub::Unlink, req, "Unlink")
      .status();
}

absl::Status Client::Rmdir(const v1::FileHandle& parent,
                           const std::string& name) {
  v1::RmdirRequest req;
  *req.mutable_parent() = parent;
  req.set_name(name);
  return Call(stub_.get(), options_, &v1::Iomapd::Stub::Rmdir, req, "Rmdir")
      .status();
}

absl::StatusOr<v1::Attr> Client::Stat(const v1::FileHandle& handle) {
  v1::StatRequest req;
  *req.mutable_handle() = handle;
  ASSIGN_OR_RETURN(auto resp, Call(stub_.get(), options_,
                                   &v1::Iomapd::Stub::Stat, req, "Stat"));
  return resp.attr();
}

absl::StatusOr<v1::Attr> Client::SetAttr(const v1::SetAttrRequest& request) {
  ASSIGN_OR_RETURN(auto resp,
                   Call(stub_.get(), options_, &v1::Iomapd::Stub::SetAttr,
                        request, "SetAttr"));
  return resp.attr();
}

// ---------------------------------------------------------------- open files

absl::StatusOr<OpenFile> Client::Open(const v1::FileHandle& handle,
                                      uint32_t flags) {
  v1::OpenRequest req;
  *req.mutable_handle() = handle;
  req.set_flags(flags);
  ASSIGN_OR_RETURN(auto resp, Call(stub_.get(), options_,
                                   &v1::Iomapd::Stub::Open, req, "Open"));
  return OpenFile{handle, resp.open_id(), resp.attr()};
}

absl::Status Client::Close(const OpenFile& file) {
  v1::CloseRequest req;
  *req.mutable_handle() = file.handle;
  req.set_open_id(file.open_id);
  return Call(stub_.get(), options_, &v1::Iomapd::Stub::Close, req, "Close")
      .status();
}

// ---------------------------------------------------------------- data

absl::StatusOr<std::string> Client::Read(const OpenFile& file, int64_t offset,
                                         int64_t length, uint32_t flags) {
  v1::ReadRequest req;
  *req.mutable_handle() = file.handle;
  req.set_open_id(file.open_id);
  req.set_offset(offset);
  req.set_length(length);
  req.set_flags(flags);
  ASSIGN_OR_RETURN(auto resp, Call(stub_.get(), options_,
                                   &v1::Iomapd::Stub::Read, req, "Read"));
  return std::move(*resp.mutable_data());
}

absl::StatusOr<int64_t> Client::Write(const OpenFile& file, int64_t offset,
                                      const std::string& data, uint32_t flags) {
  v1::WriteRequest req;
  *req.mutable_handle() = file.handle;
  req.set_open_id(file.open_id);
  req.set_offset(offset);
  req.set_data(data);
  req.set_flags(flags);
  ASSIGN_OR_RETURN(auto resp, Call(stub_.get(), options_,
                                   &v1::Iomapd::Stub::Write, req, "Write"));
  return resp.result();
}

absl::Status Client::Fsync(const OpenFile& file, bool datasync, int64_t offset,
                           int64_t length) {
  v1::FsyncRequest req;
  *req.mutable_handle() = file.handle;
  req.set_open_id(file.open_id);
  req.set_datasync(datasync);
  req.set_offset(offset);
  req.set_length(length);
  return Call(stub_.get(), options_, &v1::Iomapd::Stub::Fsync, req,
              datasync ? "Fsync(datasync)" : "Fsync")
      .status();
}

absl::StatusOr<int64_t> Client::Seek(const OpenFile& file, int64_t offset,
                                     v1::Whence whence) {
  v1::SeekRequest req;
  *req.mutable_handle() = file.handle;
  req.set_open_id(file.open_id);
  req.set_offset(offset);
  req.set_whence(whence);
  ASSIGN_OR_RETURN(auto resp, Call(stub_.get(), options_,
                                   &v1::Iomapd::Stub::Seek, req, "Seek"));
  return resp.result();
}

absl::StatusOr<v1::FiemapResponse> Client::Fiemap(
    const v1::FiemapRequest& request) {
  return Call(stub_.get(), options_, &v1::Iomapd::Stub::Fiemap, request,
              "Fiemap");
}

absl::StatusOr<v1::FiemapResponse> Client::FiemapRaw(
    const v1::FiemapRequest& request) {
  return CallRaw(stub_.get(), options_, &v1::Iomapd::Stub::Fiemap, request,
                 "Fiemap");
}

absl::StatusOr<int64_t> Client::Bmap(const v1::FileHandle& handle,
                                     uint64_t block) {
  v1::BmapRequest req;
  *req.mutable_handle() = handle;
  req.set_block(block);
  ASSIGN_OR_RETURN(auto resp, Call(stub_.get(), options_,
                                   &v1::Iomapd::Stub::Bmap, req, "Bmap"));
  return resp.result();
}

absl::Status Client::Unshare(const OpenFile& file, int64_t offset,
                             int64_t length) {
  v1::UnshareRequest req;
  *req.mutable_handle() = file.handle;
  req.set_open_id(file.open_id);
  req.set_offset(offset);
  req.set_length(length);
  return Call(stub_.get(), options_, &v1::Iomapd::Stub::Unshare, req, "Unshare")
      .status();
}

absl::Status Client::Truncate(const OpenFile& file, int64_t size) {
  v1::TruncateRequest req;
  *req.mutable_handle() = file.handle;
  req.set_open_id(file.open_id);
  req.set_size(size);
  return Call(stub_.get(), options_, &v1::Iomapd::Stub::Truncate, req,
              "Truncate")
      .status();
}

absl::Status Client::Fallocate(const OpenFile& file, uint32_t mode,
                               int64_t offset, int64_t length) {
  v1::FallocateRequest req;
  *req.mutable_handle() = file.handle;
  req.set_open_id(file.open_id);
  req.set_mode(mode);
  req.set_offset(offset);
  req.set_length(length);
  return Call(stub_.get(), options_, &v1::Iomapd::Stub::Fallocate, req,
              "Fallocate")
      .status();
}

absl::StatusOr<int64_t> Client::CloneRange(const v1::FileHandle& src,
                                           int64_t src_offset,
                                           const v1::FileHandle& dst,
                                           int64_t dst_offset, int64_t length) {
  v1::CloneRangeRequest req;
  *req.mutable_src() = src;
  *req.mutable_dst() = dst;
  req.set_src_offset(src_offset);
  req.set_dst_offset(dst_offset);
  req.set_length(length);
  ASSIGN_OR_RETURN(
      auto resp, Call(stub_.get(), options_, &v1::Iomapd::Stub::CloneRange, req,
                      "CloneRange"));
  return resp.result();
}

absl::StatusOr<v1::DedupeRangeResponse> Client::DedupeRange(
    const v1::DedupeRangeRequest& request) {
  return Call(stub_.get(), options_, &v1::Iomapd::Stub::DedupeRange, request,
              "DedupeRange");
}

absl::StatusOr<v1::SwapActivateResponse> Client::SwapActivate(
    const v1::FileHandle& handle) {
  v1::SwapActivateRequest req;
  *req.mutable_handle() = handle;
  return Call(stub_.get(), options_, &v1::Iomapd::Stub::SwapActivate, req,
              "SwapActivate");
}

absl::Status Client::SwapDeactivate(const v1::FileHandle& handle) {
  v1::SwapDeactivateRequest req;
  *req.mutable_handle() = handle;
  return Call(stub_.get(), options_, &v1::Iomapd::Stub::SwapDeactivate, req,
              "SwapDeactivate")
      .status();
}

absl::StatusOr<int64_t> Client::MapWrite(const OpenFile& file, int64_t offset,
                                         const std::string& data) {
  v1::MapWriteRequest req;
  *req.mutable_handle() = file.handle;
  req.set_open_id(file.open_id);
  req.set_offset(offset);
  req.set_data(data);
  ASSIGN_OR_RETURN(auto resp,
                   Call(stub_.get(), options_, &v1::Iomapd::Stub::MapWrite, req,
                        "MapWrite"));
  return resp.result();
}

// ---------------------------------------------------------------- paths

absl::StatusOr<v1::FileHandle> Client::VolumeRoot(const std::string& volume) {
  const std::string name = VolumeName(volume);
  {
    base::MutexLock lock(&roots_mu_);
    auto it = roots_.find(name);
    if (it != roots_.end()) return it->second;
  }
  ASSIGN_OR_RETURN(std::vector<v1::VolumeInfo> volumes, ListVolumes());
  for (const v1::VolumeInfo& v : volumes) {
    if (v.name() != name) continue;
    base::MutexLock lock(&roots_mu_);
    roots_[name] = v.root();
    return v.root();
  }
  return base::ErrnoStatus(-ENOENT, "no volume named '" + name + "'");
}

absl::StatusOr<v1::LookupResponse> Client::LookupPath(const std::string& volume,
                                                      const std::string& path) {
  ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitPath(path));
  ASSIGN_OR_RETURN(v1::FileHandle root, VolumeRoot(volume));
  v1::LookupResponse at;
  *at.mutable_handle() = root;
  if (parts.empty()) {
    ASSIGN_OR_RETURN(*at.mutable_attr(), Stat(root));
    return at;
  }
  for (const std::string& name : parts) {
    ASSIGN_OR_RETURN(at, Lookup(at.handle(), name));
  }
  return at;
}

absl::StatusOr<std::pair<v1::FileHandle, std::string>> Client::LookupParent(
    const std::string& volume, const std::string& path) {
  ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitPath(path));
  if (parts.empty()) {
    return base::ErrnoStatus(-EINVAL, "'" + path + "' names the volume root");
  }
  ASSIGN_OR_RETURN(v1::FileHandle dir, VolumeRoot(volume));
  for (size_t i = 0; i + 1 < parts.size(); i++) {
    ASSIGN_OR_RETURN(v1::LookupResponse next, Lookup(dir, parts[i]));
    dir = next.handle();
  }
  return std::make_pair(dir, parts.back());
}

absl::StatusOr<OpenFile> Client::OpenPath(const std::string& volume,
                                          const std::string& path,
                                          uint32_t flags, bool create,
                                          uint32_t create_mode) {
  if (!create) {
    ASSIGN_OR_RETURN(v1::LookupResponse found, LookupPath(volume, path));
    return Open(found.handle(), flags);
  }
  ASSIGN_OR_RETURN(auto parent, LookupParent(volume, path));
  ASSIGN_OR_RETURN(v1::CreateResponse made,
                   Create(parent.first, parent.second, create_mode, false));
  return Open(made.handle(), flags);
}

absl::StatusOr<std::unique_ptr<AsyncStream>> Client::OpenStream(
    const AsyncOptions& options) {
  return AsyncStream::Open(channel_, options);
}

}  // namespace client
