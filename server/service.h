// server::Service: the gRPC face of iomapd (docs/protocol.md). Unary RPCs
// and the Submit stream, on gRPC's callback API.
//
// Reactors never block: each unary RPC hands its operation (server/ops.h)
// to the engine executor and finishes the call from there; Submit streams
// are SubmitReactor objects (server/submit.h) that do the same per request.
// A failed operation ends with wire::ErrnoToGrpcStatus, the errno and the
// response carried in the status details.
//
// Thread-safety: thread-safe; gRPC calls it from its own threads.
#ifndef IOMAPD_SERVER_SERVICE_H_
#define IOMAPD_SERVER_SERVICE_H_

#include "proto/iomapd.grpc.pb.h"
#include "server/executor.h"
#include "server/ops.h"
#include "server/submit.h"

namespace server {

// The generated CallbackService with Submit on gRPC's raw (ByteBuffer)
// callback API instead: the reactor decodes and encodes its messages
// itself (client/wire_encode.h), so read data goes out without a copy.
using ServiceBase = v1::Iomapd::WithCallbackMethod_ListVolumes<
    v1::Iomapd::WithCallbackMethod_StatFs<v1::Iomapd::WithCallbackMethod_Lookup<
        v1::Iomapd::WithCallbackMethod_Create<v1::Iomapd::WithCallbackMethod_Mkdir<v1::Iomapd::WithCallbackMethod_Readdir<
            v1::Iomapd::
                WithCallbackMethod_Rename<v1::Iomapd::WithCallbackMethod_Unlink<v1::Iomapd::WithCallbackMethod_Rmdir<
                    v1::Iomapd::
                        WithCallbackMethod_Stat<v1::Iomapd::WithCallbackMethod_SetAttr<v1::Iomapd::WithCallbackMethod_Open<
                            v1::Iomapd::
                                WithCallbackMethod_Close<v1::Iomapd::WithCallbackMethod_Read<v1::Iomapd::WithCallbackMethod_Write<
                                    v1::Iomapd::
                                        WithCallbackMethod_Fsync<v1::Iomapd::WithCallbackMethod_Seek<v1::Iomapd::WithCallbackMethod_Fiemap<
                                            v1::Iomapd::
                                                WithCallbackMethod_Bmap<v1::Iomapd::WithCallbackMethod_Unshare<
                                                    v1::Iomapd::
                                                        WithCallbackMethod_Truncate<v1::Iomapd::WithCallbackMethod_Fallocate<
                                                            v1::Iomapd::
                                                                WithCallbackMethod_CloneRange<v1::Iomapd::WithCallbackMethod_DedupeRange<
                                                                    v1::Iomapd::
                                                                        WithCallbackMethod_SwapActivate<v1::Iomapd::WithCallbackMethod_SwapDeactivate<
                                                                            v1::Iomapd::
                                                                                WithCallbackMethod_MapWrite<v1::Iomapd::WithRawCallbackMethod_Submit<
                                                                                    v1::Iomapd::
                                                                                        Service>>>>>>>>>>>>>>>>>>>>>>>>>>>>;

class Service final : public ServiceBase {
 public:
  // ops and executor must outlive the service and every call it started.
  Service(Ops* ops, Executor* executor, const StreamOptions& stream);

  using Reactor = grpc::ServerUnaryReactor;
  using Ctx = grpc::CallbackServerContext;

  Reactor* ListVolumes(Ctx* c, const v1::ListVolumesRequest* q,
                       v1::ListVolumesResponse* r) override;
  Reactor* StatFs(Ctx* c, const v1::StatFsRequest* q,
                  v1::StatFsResponse* r) override;
  Reactor* Lookup(Ctx* c, const v1::LookupRequest* q,
                  v1::LookupResponse* r) override;
  Reactor* Create(Ctx* c, const v1::CreateRequest* q,
                  v1::CreateResponse* r) override;
  Reactor* Mkdir(Ctx* c, const v1::MkdirRequest* q,
                 v1::MkdirResponse* r) override;
  Reactor* Readdir(Ctx* c, const v1::ReaddirRequest* q,
                   v1::ReaddirResponse* r) override;
  Reactor* Rename(Ctx* c, const v1::RenameRequest* q,
                  v1::RenameResponse* r) override;
  Reactor* Unlink(Ctx* c, const v1::UnlinkRequest* q,
                  v1::UnlinkResponse* r) override;
  Reactor* Rmdir(Ctx* c, const v1::RmdirRequest* q,
                 v1::RmdirResponse* r) override;
  Reactor* Stat(Ctx* c, const v1::StatRequest* q, v1::StatResponse* r) override;
  Reactor* SetAttr(Ctx* c, const v1::SetAttrRequest* q,
                   v1::SetAttrResponse* r) override;
  Reactor* Open(Ctx* c, const v1::OpenRequest* q, v1::OpenResponse* r) override;
  Reactor* Close(Ctx* c, const v1::CloseRequest* q,
                 v1::CloseResponse* r) override;
  Reactor* Read(Ctx* c, const v1::ReadRequest* q, v1::ReadResponse* r) override;
  Reactor* Write(Ctx* c, const v1::WriteRequest* q,
                 v1::WriteResponse* r) override;
  Reactor* Fsync(Ctx* c, const v1::FsyncRequest* q,
                 v1::FsyncResponse* r) override;
  Reactor* Seek(Ctx* c, const v1::SeekRequest* q, v1::SeekResponse* r) override;
  Reactor* Fiemap(Ctx* c, const v1::FiemapRequest* q,
                  v1::FiemapResponse* r) override;
  Reactor* Bmap(Ctx* c, const v1::BmapRequest* q, v1::BmapResponse* r) override;
  Reactor* Unshare(Ctx* c, const v1::UnshareRequest* q,
                   v1::UnshareResponse* r) override;
  Reactor* Truncate(Ctx* c, const v1::TruncateRequest* q,
                    v1::TruncateResponse* r) override;
  Reactor* Fallocate(Ctx* c, const v1::FallocateRequest* q,
                     v1::FallocateResponse* r) override;
  Reactor* CloneRange(Ctx* c, const v1::CloneRangeRequest* q,
                      v1::CloneRangeResponse* r) override;
  Reactor* DedupeRange(Ctx* c, const v1::DedupeRangeRequest* q,
                       v1::DedupeRangeResponse* r) override;
  Reactor* SwapActivate(Ctx* c, const v1::SwapActivateRequest* q,
                        v1::SwapActivateResponse* r) override;
  Reactor* SwapDeactivate(Ctx* c, const v1::SwapDeactivateRequest* q,
                          v1::SwapDeactivateResponse* r) override;
  Reactor* MapWrite(Ctx* c, const v1::MapWriteRequest* q,
                    v1::MapWriteResponse* r) override;

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Submit(
      Ctx* c) override;

 private:
  // Runs ops_->*op on the executor and finishes the call with its outcome.
  // `results_on_failure`: the response carries results even when the
  // operation fails (fiemap's bad_flags, dedupe's per-target results), so
  // it travels in the status details.
  template <typename Req, typename Resp>
  Reactor* Dispatch(Ctx* c, const Req* q, Resp* r,
                    Outcome (Ops::*op)(const Req&, Resp*),
                    bool results_on_failure = false);
  // Finishes a call that ran inline (on the gRPC thread) with `o`.
  template <typename Resp>
  Reactor* FinishInline(Ctx* c, const Outcome& o, Resp* r);

  Ops* const ops_;
  Executor* const executor_;
  const StreamOptions stream_;
};

}  // namespace server

#endif  // IOMAPD_SERVER_SERVICE_H_
