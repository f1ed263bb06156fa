// Mapped writes, block sharing and swap files (server/ops.h).
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "iomap/swapfile.h"
#include "server/ops.h"

namespace server {

Outcome Ops::MapWrite(const v1::MapWriteRequest& q, v1::MapWriteResponse* r) {
  // mmap(PROT_WRITE, MAP_SHARED) of a file not open for writing: EACCES.
  FileRef f;
  if (Outcome o =
          GetFile(q.handle(), q.open_id(), v1::OPEN_FLAG_WRITE, -EACCES, &f);
      !o.ok()) {
    return o;
  }
  if (q.offset() < 0) return Fail(-EINVAL, "map_write: negative offset");
  if (q.data().size() > options_.max_bytes_per_request) {
    return Fail(-EMSGSIZE, "map_write: more than max_bytes_per_request");
  }
  int64_t n = f.file()->MapWrite(q.offset(), q.data().data(), q.data().size());
  if (n < 0) return FromErrno(static_cast<int>(n), "map_write");
  r->set_result(n);
  return Outcome{};
}

Outcome Ops::CloneRange(const v1::CloneRangeRequest& q,
                        v1::CloneRangeResponse* r) {
  Resolved src, dst;
  if (Outcome o = ResolveDir(q.src(), &src); !o.ok()) return o;
  if (Outcome o = ResolveDir(q.dst(), &dst); !o.ok()) return o;
  if (src.vol != dst.vol) return Fail(-EXDEV, "clone: across volumes");
  int64_t n = dst.vol->CloneRange(src.fh, q.src_offset(), dst.fh,
                                  q.dst_offset(), q.length());
  if (n < 0) return FromErrno(static_cast<int>(n), "clone");
  r->set_result(n);
  return Outcome{};
}

// FIDEDUPERANGE: the source is checked once (a request-wide error), then
// each destination gets its own errnum, status and bytes_deduped.
Outcome Ops::DedupeRange(const v1::DedupeRangeRequest& q,
                         v1::DedupeRangeResponse* r) {
  Resolved src;
  if (Outcome o = ResolveDir(q.src(), &src); !o.ok()) return o;
  fs::InodeAttr a;
  if (int err = src.vol->GetAttr(src.fh, &a); err < 0) {
    return FromErrno(err, "dedupe source");
  }
  if (a.is_dir()) return Fail(-EISDIR, "dedupe: the source is a directory");
  if (q.src_offset() < 0 || q.length() < 0) {
    return Fail(-EINVAL, "dedupe: negative offset or length");
  }
  constexpr int32_t kSame = 0, kDiffers = 1;
  for (const v1::DedupeTarget& t : q.targets()) {
    v1::DedupeResult* out = r->add_results();
    Resolved dst;
    std::string why;
    if (int err = volumes_->Resolve(t.dst(), &dst, &why); err < 0) {
      out->set_errnum(-err);
      continue;
    }
    if (dst.vol != src.vol) {
      out->set_errnum(EXDEV);
      continue;
    }
    int64_t n = src.vol->DedupeRange(src.fh, q.src_offset(), dst.fh,
                                     t.dst_offset(), q.length());
    if (n == -EBADE) {
      out->set_status(kDiffers);
    } else if (n < 0) {
      out->set_errnum(static_cast<int32_t>(-n));
    } else {
      out->set_status(kSame);
      out->set_bytes_deduped(n);
    }
  }
  return Outcome{};
}

Outcome Ops::SwapActivate(const v1::SwapActivateRequest& q,
                          v1::SwapActivateResponse* r) {
  Resolved f;
  if (Outcome o = ResolveDir(q.handle(), &f); !o.ok()) return o;
  iomap::SwapInfo sis;
  int n = f.vol->SwapActivate(f.fh, &sis);
  if (n < 0) {
    Outcome o = FromErrno(n, "swapon");
    if (!sis.error.empty()) o.message = absl::StrCat("swapon: ", sis.error);
    return o;
  }
  r->set_result(n);
  for (const iomap::SwapExtent& e : sis.extents) {
    v1::SwapExtent* out = r->add_extents();
    out->set_start_page(e.start_page);
    out->set_nr_pages(e.nr_pages);
    out->set_start_block(e.start_block);
  }
  r->set_pages(sis.pages);
  r->set_span(sis.pagespan);
  return Outcome{};
}

Outcome Ops::SwapDeactivate(const v1::SwapDeactivateRequest& q,
                            v1::SwapDeactivateResponse*) {
  Resolved f;
  if (Outcome o = ResolveDir(q.handle(), &f); !o.ok()) return o;
  return FromErrno(f.vol->SwapDeactivate(f.fh), "swapoff");
}

}  // namespace server
