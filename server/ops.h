// server::Ops: every iomapd operation as a function from its request message
// to its response message, over the VolumeSet. The unary service and the
// Submit stream both call these, so an operation means the same thing on
// both paths (docs/protocol.md).
//
// Each operation checks its arguments the way the syscall does (EINVAL for
// negative offsets, EBADF for an open file that does not allow the access,
// EINVAL for unknown flag bits, EOPNOTSUPP with a message for flags whose
// feature has not landed), calls fs/ (which takes the per-inode locks),
// and fills the response, `errnum` included. The returned Outcome repeats
// the positive errno and says why in words; 0 means success.
//
// Operations block (I/O, locks, journal commits): call them from the
// engine executor, never from a gRPC reactor thread.
//
// Thread-safety: thread-safe.
#ifndef IOMAPD_SERVER_OPS_H_
#define IOMAPD_SERVER_OPS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "proto/iomapd.pb.h"
#include "server/volumes.h"

namespace server {

struct Outcome {
  int errnum = 0;  // positive errno, 0 on success
  std::string message;
  bool ok() const { return errnum == 0; }
};

struct OpsOptions {
  // Largest read length or write payload of one request; past it EMSGSIZE.
  uint64_t max_bytes_per_request = 64ull << 20;
  // Readdir entries per response when the request says 0, and the most
  // it ever returns.
  uint32_t readdir_default_entries = 512;
  uint32_t readdir_max_entries = 8192;
};

class Ops {
 public:
  Ops(VolumeSet* volumes, const OpsOptions& options);

  const OpsOptions& options() const { return options_; }

  // ---- volumes and namespace (ops_namespace.cc)
  Outcome ListVolumes(const v1::ListVolumesRequest& q,
                      v1::ListVolumesResponse* r);
  Outcome StatFs(const v1::StatFsRequest& q, v1::StatFsResponse* r);
  Outcome Lookup(const v1::LookupRequest& q, v1::LookupResponse* r);
  Outcome Create(const v1::CreateRequest& q, v1::CreateResponse* r);
  Outcome Mkdir(const v1::MkdirRequest& q, v1::MkdirResponse* r);
  Outcome Readdir(const v1::ReaddirRequest& q, v1::ReaddirResponse* r);
  Outcome Rename(const v1::RenameRequest& q, v1::RenameResponse* r);
  Outcome Unlink(const v1::UnlinkRequest& q, v1::UnlinkResponse* r);
  Outcome Rmdir(const v1::RmdirRequest& q, v1::RmdirResponse* r);
  Outcome Stat(const v1::StatRequest& q, v1::StatResponse* r);
  Outcome SetAttr(const v1::SetAttrRequest& q, v1::SetAttrResponse* r);
  Outcome Open(const v1::OpenRequest& q, v1::OpenResponse* r);
  Outcome Close(const v1::CloseRequest& q, v1::CloseResponse* r);

  // ---- data (ops_data.cc)
  Outcome Read(const v1::ReadRequest& q, v1::ReadResponse* r);
  // io_uring's inline attempt at a read of an open file: runs `q` with
  // NOWAIT (try-locks, cached pages, no I/O, never blocks; callable from a
  // gRPC thread). True when that settles it, with *r and *o filled:
  // success, 0 at EOF, an error other than EAGAIN, or any answer to a
  // client's own NOWAIT read. False when it must run again on the executor
  // (it would block, or came back short): *r is cleared then.
  bool TryReadNowait(const v1::ReadRequest& q, v1::ReadResponse* r, Outcome* o);
  Outcome Write(const v1::WriteRequest& q, v1::WriteResponse* r);
  // The same inline attempt for a write of an open file (buffered, into
  // the cache; the checkpoint it may make due runs on the volume's
  // checkpoint thread). Writes that block anyway (SYNC, DSYNC, an
  // OPEN_FLAG_SYNC/DSYNC file) and appends are left to the executor
  // (false). A write that comes back short or EAGAIN runs again on the
  // executor from its start: rewriting the same bytes at the same offset
  // is harmless, and the client sees only the second answer.
  bool TryWriteNowait(const v1::WriteRequest& q, v1::WriteResponse* r,
                      Outcome* o);
  Outcome Fsync(const v1::FsyncRequest& q, v1::FsyncResponse* r);
  Outcome Seek(const v1::SeekRequest& q, v1::SeekResponse* r);
  Outcome Fiemap(const v1::FiemapRequest& q, v1::FiemapResponse* r);
  Outcome Bmap(const v1::BmapRequest& q, v1::BmapResponse* r);
  Outcome Truncate(const v1::TruncateRequest& q, v1::TruncateResponse* r);
  Outcome Fallocate(const v1::FallocateRequest& q, v1::FallocateResponse* r);
  Outcome Unshare(const v1::UnshareRequest& q, v1::UnshareResponse* r);
  Outcome MapWrite(const v1::MapWriteRequest& q, v1::MapWriteResponse* r);

  // ---- sharing and swap (ops_remap.cc)
  Outcome CloneRange(const v1::CloneRangeRequest& q, v1::CloneRangeResponse* r);
  Outcome DedupeRange(const v1::DedupeRangeRequest& q,
                      v1::DedupeRangeResponse* r);
  Outcome SwapActivate(const v1::SwapActivateRequest& q,
                       v1::SwapActivateResponse* r);
  Outcome SwapDeactivate(const v1::SwapDeactivateRequest& q,
                         v1::SwapDeactivateResponse* r);

 private:
  // The open file an operation works on: the client's (open_id != 0, which
  // must belong to `h`), or one opened for this operation alone and closed
  // when the last reference goes. `need` is the OpenFlag the access
  // requires (OPEN_FLAG_READ / OPEN_FLAG_WRITE, 0 for none) and `deny` the
  // errno when the open file lacks it (EBADF for read/write, EINVAL for
  // ftruncate).
  struct FileRef {
    std::shared_ptr<OpenEntry> entry;
    fs::OpenFile* file() const { return entry->file.get(); }
  };
  Outcome GetFile(const v1::FileHandle& h, uint64_t open_id, uint32_t need,
                  int deny, FileRef* out);
  // Write and TryWriteNowait. With `try_inline` the write runs with NOWAIT,
  // or not at all when it must go to the executor; *ran (may be null when
  // !try_inline) says whether it ran.
  Outcome DoWrite(const v1::WriteRequest& q, bool try_inline, bool* ran,
                  v1::WriteResponse* r);
  // Read and TryReadNowait, the same way (a direct read never runs inline).
  Outcome DoRead(const v1::ReadRequest& q, bool try_inline, bool* ran,
                 v1::ReadResponse* r);
  Outcome ResolveDir(const v1::FileHandle& h, Resolved* out);
  void FillAttr(const fs::InodeAttr& a, fs::Volume* vol, v1::Attr* out);

  VolumeSet* const volumes_;
  const OpsOptions options_;
};

// Outcome for a negative errno from fs/ (0 -> success): "what: strerror".
Outcome FromErrno(int neg_errno, const char* what);
// Outcome with a message of its own. REQUIRES: neg_errno < 0.
Outcome Fail(int neg_errno, std::string message);

}  // namespace server

#endif  // IOMAPD_SERVER_OPS_H_
