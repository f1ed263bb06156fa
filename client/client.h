// The iomapd client library: a connection to one server, a synchronous
// absl::StatusOr facade over every unary RPC, and path helpers that walk
// Lookup from a volume's root. The asynchronous API over the Submit stream
// is client/async.h (Client::OpenStream).
//
// Errors: every failure is an absl::Status made with base::ErrnoStatus, so
// base::ErrnoOf(status) returns the exact -errno the server answered
// (-ENOENT, -ESTALE, -EBADR, ...), and transport failures map to -ENOTCONN
// (server unreachable), -ETIMEDOUT (deadline), -EMSGSIZE (message over the
// gRPC size limit). See docs/protocol.md.
//
// Thread-safety: a Client is thread-safe; any number of threads may call it
// at once (gRPC channels and stubs are). The volume root cache is guarded.
#ifndef IOMAPD_CLIENT_CLIENT_H_
#define IOMAPD_CLIENT_CLIENT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "grpcpp/channel.h"
#include "grpcpp/support/channel_arguments.h"
#include "proto/iomapd.grpc.pb.h"
#include "proto/iomapd.pb.h"

namespace client {

namespace v1 = ::iomapd::v1;

// Where tools/dev starts the server.
inline constexpr char kDefaultTarget[] = "127.0.0.1:7411";
inline constexpr char kDefaultVolume[] = "default";

struct ClientOptions {
  // host:port of the server (gRPC target syntax).
  std::string target = kDefaultTarget;
  // Volume used by the path helpers when a call names none.
  std::string volume = kDefaultVolume;
  // grpc.max_send_message_length and grpc.max_receive_message_length. Must
  // be at least the server's max_message_bytes. Default 80 MiB: a 64 MiB
  // read or write plus headers.
  int max_message_bytes = 80 << 20;
  // grpc.http2.max_frame_size: HTTP/2 SETTINGS_MAX_FRAME_SIZE we announce.
  // 16 MiB - 1 is the protocol maximum and what gRPC 1.51 accepts.
  int http2_max_frame_size = (16 << 20) - 1;
  // grpc.http2.lookahead_bytes: the per-stream receive window gRPC aims
  // for. The 1.51 defaults (64 KiB window, 16 KiB frames) cap 1 MiB
  // messages at ~110 MB/s on loopback; 64 MiB here with the frame size
  // above lifts that to ~1 GB/s.
  int http2_lookahead_bytes = 64 << 20;
  // How long Connect waits for the channel to become ready.
  int connect_timeout_ms = 3000;
  // Deadline of each unary RPC; 0 = none.
  int rpc_timeout_ms = 120000;
};

// The channel arguments ClientOptions stands for (exposed for tests and for
// tools that build their own channel).
grpc::ChannelArguments MakeChannelArguments(const ClientOptions& options);

// Splits "/a/b/c" (or "a/b/c": paths are relative to the volume root either
// way) into {"a", "b", "c"}. Empty and "." components are skipped, ".."
// removes the previous one (and is an error above the root: -ENOENT). A
// component longer than 255 bytes is -ENAMETOOLONG; one containing a NUL is
// -EINVAL.
absl::StatusOr<std::vector<std::string>> SplitPath(const std::string& path);

// An open file: the handle plus the server's open-file id, which owns the
// fsync error cursor. Close it with Client::Close.
struct OpenFile {
  v1::FileHandle handle;
  uint64_t open_id = 0;
  v1::Attr attr;
};

class AsyncStream;
struct AsyncOptions;

class Client {
 public:
  // Connects to options.target and waits up to connect_timeout_ms for the
  // channel. -ENOTCONN with the target in the message when it is not
  // reachable.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      const ClientOptions& options);

  // Over an existing channel (tests, in-process servers). Does not wait.
  Client(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options);
  ~Client();

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientOptions& options() const { return options_; }
  v1::Iomapd::StubInterface* stub() { return stub_.get(); }

  // ---- volumes
  absl::StatusOr<std::vector<v1::VolumeInfo>> ListVolumes();
  absl::StatusOr<v1::StatFsResponse> StatFs(const std::string& volume);

  // ---- namespace (handles)
  absl::StatusOr<v1::LookupResponse> Lookup(const v1::FileHandle& parent,
                                            const std::string& name);
  absl::StatusOr<v1::CreateResponse> Create(const v1::FileHandle& parent,
                                            const std::string& name,
                                            uint32_t mode, bool exclusive);
  absl::StatusOr<v1::MkdirResponse> Mkdir(const v1::FileHandle& parent,
                                          const std::string& name,
                                          uint32_t mode);
  // One page of entries after `cookie` (0: from the start).
  absl::StatusOr<v1::ReaddirResponse> Readdir(const v1::FileHandle& dir,
                                              uint64_t cookie,
                                              uint32_t max_entries);
  // Every entry, following cookies until eof.
  absl::StatusOr<std::vector<v1::DirEntry>> ReaddirAll(
      const v1::FileHandle& dir);
  absl::Status Rename(const v1::FileHandle& src_parent,
                      const std::string& src_name,
                      const v1::FileHandle& dst_parent,
                      const std::string& dst_name, uint32_t flags);
  absl::Status Unlink(const v1::FileHandle& parent, const std::string& name);
  absl::Status Rmdir(const v1::FileHandle& parent, const std::string& name);
  absl::StatusOr<v1::Attr> Stat(const v1::FileHandle& handle);
  absl::StatusOr<v1::Attr> SetAttr(const v1::SetAttrRequest& request);

  // ---- open files
  absl::StatusOr<OpenFile> Open(const v1::FileHandle& handle, uint32_t flags);
  absl::Status Close(const OpenFile& file);

  // ---- data. `flags` are v1::IoFlag bits.
  // The bytes read (shorter than `length` at EOF).
  absl::StatusOr<std::string> Read(const OpenFile& file, int64_t offset,
                                   int64_t length, uint32_t flags = 0);
  // Bytes written (may be short).
  absl::StatusOr<int64_t> Write(const OpenFile& file, int64_t offset,
                                const std::string& data, uint32_t flags = 0);
  // length 0: to the end of the file.
  absl::Status Fsync(const OpenFile& file, bool datasync, int64_t offset = 0,
                     int64_t length = 0);
  // SEEK_DATA / SEEK_HOLE: the offset found; -ENXIO at or past EOF.
  absl::StatusOr<int64_t> Seek(const OpenFile& file, int64_t offset,
                               v1::Whence whence);
  // The full response (mapped_extents, extents), or the failure.
  absl::StatusOr<v1::FiemapResponse> Fiemap(const v1::FiemapRequest& request);
  // As Fiemap, but a filesystem-level failure is returned as the response
  // with its errnum set (so EBADR's bad_flags can be read); the status is
  // non-OK only when no response arrived (transport failure).
  absl::StatusOr<v1::FiemapResponse> FiemapRaw(
      const v1::FiemapRequest& request);
  // The FIBMAP answer for file block `block`.
  absl::StatusOr<int64_t> Bmap(const v1::FileHandle& handle, uint64_t block);
  absl::Status Unshare(const OpenFile& file, int64_t offset, int64_t length);
  absl::Status Truncate(const OpenFile& file, int64_t size);
  absl::Status Fallocate(const OpenFile& file, uint32_t mode, int64_t offset,
                         int64_t length);
  // Bytes remapped.
  absl::StatusOr<int64_t> CloneRange(const v1::FileHandle& src,
                                     int64_t src_offset,
                                     const v1::FileHandle& dst,
                                     int64_t dst_offset, int64_t length);
  absl::StatusOr<v1::DedupeRangeResponse> DedupeRange(
      const v1::DedupeRangeRequest& request);
  absl::StatusOr<v1::SwapActivateResponse> SwapActivate(
      const v1::FileHandle& handle);
  absl::Status SwapDeactivate(const v1::FileHandle& handle);
  // Bytes stored through the mapped-write (page_mkwrite) path.
  absl::StatusOr<int64_t> MapWrite(const OpenFile& file, int64_t offset,
                                   const std::string& data);

  // ---- paths, relative to a volume's root ("" = options().volume)
  absl::StatusOr<v1::FileHandle> VolumeRoot(const std::string& volume);
  absl::StatusOr<v1::LookupResponse> LookupPath(const std::string& volume,
                                                const std::string& path);
  // The parent directory's handle and the last component.
  absl::StatusOr<std::pair<v1::FileHandle, std::string>> LookupParent(
      const std::string& volume, const std::string& path);
  // Lookup then Open; with `create`, Create (mode `create_mode`, not
  // exclusive: an existing file is opened) then Open.
  absl::StatusOr<OpenFile> OpenPath(const std::string& volume,
                                    const std::string& path, uint32_t flags,
                                    bool create = false,
                                    uint32_t create_mode = 0644);

  // ---- the Submit stream (client/async.h).
  absl::StatusOr<std::unique_ptr<AsyncStream>> OpenStream(
      const AsyncOptions& options);

 private:
  std::string VolumeName(const std::string& volume) const;

  const ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Iomapd::Stub> stub_;
  base::Mutex roots_mu_;
  std::map<std::string, v1::FileHandle> roots_ ABSL_GUARDED_BY(roots_mu_);
};

}  // namespace client

#endif  // IOMAPD_CLIENT_CLIENT_H_
