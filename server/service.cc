#include "server/service.h"

#include <cerrno>

#include "proto/wire_status.h"

namespace server {

Service::Service(Ops* ops, Executor* executor, const StreamOptions& stream)
    : ops_(ops), executor_(executor), stream_(stream) {}

template <typename Req, typename Resp>
Service::Reactor* Service::Dispatch(Ctx* c, const Req* q, Resp* r,
                                    Outcome (Ops::*op)(const Req&, Resp*),
                                    bool results_on_failure) {
  Reactor* reactor = c->DefaultReactor();
  bool queued = executor_->Run([this, q, r, op, reactor, results_on_failure] {
    Outcome o = (ops_->*op)(*q, r);
    r->set_errnum(o.errnum);
    const google::protobuf::Message* carried = results_on_failure ? r : nullptr;
    reactor->Finish(wire::ErrnoToGrpcStatus(o.errnum, o.message, carried));
  });
  if (!queued) {
    reactor->Finish(
        wire::ErrnoToGrpcStatus(ESHUTDOWN, "iomapd is shutting down"));
  }
  return reactor;
}

template <typename Resp>
Service::Reactor* Service::FinishInline(Ctx* c, const Outcome& o, Resp* r) {
  Reactor* reactor = c->DefaultReactor();
  r->set_errnum(o.errnum);
  reactor->Finish(wire::ErrnoToGrpcStatus(o.errnum, o.message));
  return reactor;
}

#define IOMAPD_UNARY(Name)                                            \
  Service::Reactor* Service::Name(Ctx* c, const v1::Name##Request* q, \
                                  v1::Name##Response* r) {            \
    return Dispatch(c, q, r, &Ops::Name);                             \
  }

IOMAPD_UNARY(ListVolumes)
IOMAPD_UNARY(StatFs)
IOMAPD_UNARY(Lookup)
IOMAPD_UNARY(Create)
IOMAPD_UNARY(Mkdir)
IOMAPD_UNARY(Readdir)
IOMAPD_UNARY(Rename)
IOMAPD_UNARY(Unlink)
IOMAPD_UNARY(Rmdir)
IOMAPD_UNARY(Stat)
IOMAPD_UNARY(SetAttr)
IOMAPD_UNARY(Open)
IOMAPD_UNARY(Close)
IOMAPD_UNARY(Fsync)
IOMAPD_UNARY(Seek)
IOMAPD_UNARY(Bmap)
IOMAPD_UNARY(Unshare)
IOMAPD_UNARY(Truncate)
IOMAPD_UNARY(Fallocate)
IOMAPD_UNARY(CloneRange)
IOMAPD_UNARY(SwapActivate)
IOMAPD_UNARY(SwapDeactivate)
IOMAPD_UNARY(MapWrite)

#undef IOMAPD_UNARY

// A read or write of an open file is first tried here with NOWAIT (cached
// data, no blocking), as the Submit stream does; the executor runs it
// otherwise.
Service::Reactor* Service::Read(Ctx* c, const v1::ReadRequest* q,
                                v1::ReadResponse* r) {
  Outcome o;
  if (!ops_->TryReadNowait(*q, r, &o)) return Dispatch(c, q, r, &Ops::Read);
  return FinishInline(c, o, r);
}

Service::Reactor* Service::Write(Ctx* c, const v1::WriteRequest* q,
                                 v1::WriteResponse* r) {
  Outcome o;
  if (!ops_->TryWriteNowait(*q, r, &o)) return Dispatch(c, q, r, &Ops::Write);
  return FinishInline(c, o, r);
}

Service::Reactor* Service::Fiemap(Ctx* c, const v1::FiemapRequest* q,
                                  v1::FiemapResponse* r) {
  return Dispatch(c, q, r, &Ops::Fiemap, /*results_on_failure=*/true);
}

Service::Reactor* Service::DedupeRange(Ctx* c, const v1::DedupeRangeRequest* q,
                                       v1::DedupeRangeResponse* r) {
  return Dispatch(c, q, r, &Ops::DedupeRange, /*results_on_failure=*/true);
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Service::Submit(
    Ctx*) {
  return new SubmitReactor(ops_, executor_, stream_);
}

}  // namespace server
