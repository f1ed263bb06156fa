// Data operations on open files (server/ops.h).
#include <linux/falloc.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "block/device.h"
#include "iomap/fiemap.h"
#include "iomap/iomap.h"
#include "server/ops.h"

namespace server {

namespace {

constexpr uint32_t kKnownIoFlags = v1::IO_FLAG_NOWAIT | v1::IO_FLAG_DONTCACHE |
                                   v1::IO_FLAG_DIRECT | v1::IO_FLAG_SYNC |
                                   v1::IO_FLAG_DSYNC | v1::IO_FLAG_HIPRI |
                                   v1::IO_FLAG_ATOMIC;

// The most extents one Fiemap may ask for (the kernel's own bound,
// FIEMAP_MAX_EXTENTS, is ~143 million; each costs memory here).
constexpr uint32_t kMaxFiemapExtents = 1u << 20;

// IoFlag bits (plus the open file's flags) -> fs request flags, with the
// checks kiocb_set_rw_flags and generic_atomic_write_valid make. HIPRI is
// accepted as a hint: completions are never polled here, as pwritev2
// ignores RWF_HIPRI where polling is not available.
Outcome IoFlags(uint32_t wire, int64_t done_before, bool write,
                uint32_t open_flags, unsigned* out) {
  *out = 0;
  if (wire & ~kKnownIoFlags) {
    return Fail(-EINVAL, absl::StrCat("unknown IoFlag bits 0x",
                                      absl::Hex(wire & ~kKnownIoFlags)));
  }
  const bool direct =
      (wire & v1::IO_FLAG_DIRECT) || (open_flags & v1::OPEN_FLAG_DIRECT);
  if (wire & v1::IO_FLAG_ATOMIC) {
    if (!write) return Fail(-EOPNOTSUPP, "IO_FLAG_ATOMIC is for writes");
    if (!direct) {
      return Fail(-EINVAL,
                  "IO_FLAG_ATOMIC needs direct I/O (IO_FLAG_DIRECT "
                  "or OPEN_FLAG_DIRECT)");
    }
    *out |= iomap::kAtomic;
  }
  if (done_before < 0 || (done_before != 0 && !direct)) {
    return Fail(-EINVAL, "done_before is for direct I/O only, and >= 0");
  }
  if (direct) *out |= iomap::kDirect;
  if (wire & v1::IO_FLAG_NOWAIT) *out |= iomap::kNowait;
  if (wire & v1::IO_FLAG_DONTCACHE) *out |= iomap::kDontcache;
  const uint32_t sync_open = v1::OPEN_FLAG_SYNC | v1::OPEN_FLAG_DSYNC;
  if (write && ((wire & (v1::IO_FLAG_SYNC | v1::IO_FLAG_DSYNC)) ||
                (open_flags & sync_open))) {
    *out |= fs::OpenFile::kSync;
  }
  return Outcome{};
}

// The result of a direct transfer that continues `done_before` bytes of
// the same request: they are included, and a failure after them reports
// them as a short count (what the syscall returns after partial progress).
int64_t WithDoneBefore(int64_t n, int64_t done_before) {
  if (n < 0) return done_before > 0 ? done_before : n;
  return n + done_before;
}

// Direct I/O goes to the device from an aligned buffer (the kernel's
// O_DIRECT buffer rule is about user memory, which a remote client does not
// control), so the server bounces through one.
constexpr size_t kDirectAlignment = 4096;

// rw_verify_area(): a negative offset or length, or an end past INT64_MAX,
// is EINVAL; a transfer larger than the request limit is EMSGSIZE.
Outcome CheckRange(int64_t offset, int64_t length, uint64_t max_bytes,
                   const char* what) {
  if (offset < 0) return Fail(-EINVAL, absl::StrCat(what, ": negative offset"));
  if (length < 0) return Fail(-EINVAL, absl::StrCat(what, ": negative length"));
  if (length > std::numeric_limits<int64_t>::max() - offset) {
    return Fail(-EINVAL, absl::StrCat(what, ": offset + length overflows"));
  }
  if (static_cast<uint64_t>(length) > max_bytes) {
    return Fail(-EMSGSIZE,
                absl::StrCat(what, ": ", length,
                             " bytes is more than max_bytes_per_request (",
                             max_bytes, ")"));
  }
  return Outcome{};
}

}  // namespace

Outcome Ops::GetFile(const v1::FileHandle& h, uint64_t open_id, uint32_t need,
                     int deny, FileRef* out) {
  if (open_id != 0) {
    int err = 0;
    out->entry = volumes_->Get(open_id, h, &err);
    if (out->entry == nullptr) {
      return Fail(err, absl::StrCat("open_id ", open_id,
                                    " is not an open file of this handle"));
    }
    if (need != 0 && !(out->entry->flags & need)) {
      return Fail(deny, need == v1::OPEN_FLAG_READ
                            ? "file is not open for reading"
                            : "file is not open for writing");
    }
    return Outcome{};
  }
  // Through the handle alone: an open for this operation.
  Resolved f;
  std::string why;
  if (int err = volumes_->Resolve(h, &f, &why); err < 0) return Fail(err, why);
  auto entry = std::make_shared<OpenEntry>();
  entry->volume = h.volume();
  entry->vol = f.vol;
  entry->flags = v1::OPEN_FLAG_READ | v1::OPEN_FLAG_WRITE;
  if (int err = f.vol->Open(f.fh, &entry->file); err < 0) {
    return FromErrno(err, "open");
  }
  out->entry = std::move(entry);
  return Outcome{};
}

Outcome Ops::Read(const v1::ReadRequest& q, v1::ReadResponse* r) {
  return DoRead(q, /*try_inline=*/false, nullptr, r);
}

bool Ops::TryReadNowait(const v1::ReadRequest& q, v1::ReadResponse* r,
                        Outcome* o) {
  if (q.open_id() == 0) return false;  // it would open (and maybe close)
  bool ran = false;
  *o = DoRead(q, /*try_inline=*/true, &ran, r);
  if (!ran) return false;
  if (q.flags() & v1::IO_FLAG_NOWAIT) return true;
  // Short: end of file, or NOWAIT stopped at a page not cached; only a
  // read that returned nothing is surely at EOF.
  const bool short_read =
      o->ok() && r->result() != 0 && r->result() < q.length();
  if (o->errnum != EAGAIN && !short_read) return true;
  r->Clear();
  return false;
}

Outcome Ops::DoRead(const v1::ReadRequest& q, bool try_inline, bool* ran,
                    v1::ReadResponse* r) {
  if (ran != nullptr) *ran = true;
  FileRef f;
  if (Outcome o =
          GetFile(q.handle(), q.open_id(), v1::OPEN_FLAG_READ, -EBADF, &f);
      !o.ok()) {
    return o;
  }
  unsigned flags;
  if (Outcome o =
          IoFlags(q.flags(), q.done_before(), false, f.entry->flags, &flags);
      !o.ok()) {
    return o;
  }
  // A direct read does device I/O even under NOWAIT: never inline.
  if (try_inline && (flags & iomap::kDirect)) {
    *ran = false;
    return Outcome{};
  }
  if (try_inline) flags |= iomap::kNowait;
  if (Outcome o = CheckRange(q.offset(), q.length(),
                             options_.max_bytes_per_request, "read");
      !o.ok()) {
    return o;
  }
  std::string* data = r->mutable_data();
  int64_t n;
  if (flags & iomap::kDirect) {
    const size_t len = static_cast<size_t>(q.length());
    block::AlignedBuffer buf = block::AllocAligned(len, kDirectAlignment);
    n = f.file()->Read(q.offset(), len, buf.get(), flags);
    if (n > 0) data->assign(reinterpret_cast<const char*>(buf.get()), n);
    n = WithDoneBefore(n, q.done_before());
  } else {
    data->resize(static_cast<size_t>(q.length()));
    n = f.file()->Read(q.offset(), data->size(),
                       reinterpret_cast<uint8_t*>(&(*data)[0]), flags);
    if (n >= 0) data->resize(static_cast<size_t>(n));
  }
  if (n < 0) {
    data->clear();
    return FromErrno(static_cast<int>(n), "read");
  }
  r->set_result(n);
  return Outcome{};
}

Outcome Ops::Write(const v1::WriteRequest& q, v1::WriteResponse* r) {
  return DoWrite(q, /*try_inline=*/false, nullptr, r);
}

bool Ops::TryWriteNowait(const v1::WriteRequest& q, v1::WriteResponse* r,
                         Outcome* o) {
  if (q.open_id() == 0) return false;  // it would open (and maybe close)
  bool ran = false;
  *o = DoWrite(q, /*try_inline=*/true, &ran, r);
  if (!ran) return false;
  if (q.flags() & v1::IO_FLAG_NOWAIT) return true;
  const bool short_write =
      o->ok() && r->result() < static_cast<int64_t>(q.data().size());
  if (o->errnum != EAGAIN && !short_write) return true;
  r->Clear();
  return false;
}

Outcome Ops::DoWrite(const v1::WriteRequest& q, bool try_inline, bool* ran,
                     v1::WriteResponse* r) {
  FileRef f;
  if (Outcome o =
          GetFile(q.handle(), q.open_id(), v1::OPEN_FLAG_WRITE, -EBADF, &f);
      !o.ok()) {
    if (ran != nullptr) *ran = true;
    return o;
  }
  unsigned flags;
  if (Outcome o =
          IoFlags(q.flags(), q.done_before(), true, f.entry->flags, &flags);
      !o.ok()) {
    if (ran != nullptr) *ran = true;
    return o;
  }
  // The inline attempt leaves to the executor what blocks anyway (a sync
  // write's fdatasync) and what it could not safely run twice (an append:
  // the executor reruns a short inline write from its start).
  const bool append = f.entry->flags & v1::OPEN_FLAG_APPEND;
  if (try_inline &&
      (append || (flags & (fs::OpenFile::kSync | iomap::kDirect)))) {
    return Outcome{};
  }
  if (ran != nullptr) *ran = true;
  if (try_inline) flags |= iomap::kNowait;
  const int64_t len = static_cast<int64_t>(q.data().size());
  // With OPEN_FLAG_APPEND fs writes at i_size (read under the rwsem) and
  // the offset is only checked, as pwrite(2) on an O_APPEND file does.
  if (append) flags |= fs::OpenFile::kAppend;
  if (Outcome o =
          CheckRange(q.offset(), len, options_.max_bytes_per_request, "write");
      !o.ok()) {
    return o;
  }
  int64_t n;
  if (flags & iomap::kDirect) {
    block::AlignedBuffer buf =
        block::AllocAligned(q.data().size(), kDirectAlignment);
    if (!q.data().empty()) memcpy(buf.get(), q.data().data(), q.data().size());
    n = WithDoneBefore(
        f.file()->Write(q.offset(), buf.get(), q.data().size(), flags),
        q.done_before());
  } else {
    n = f.file()->Write(q.offset(), q.data().data(), q.data().size(), flags);
  }
  if (n < 0) return FromErrno(static_cast<int>(n), "write");
  r->set_result(n);
  return Outcome{};
}

Outcome Ops::Fsync(const v1::FsyncRequest& q, v1::FsyncResponse*) {
  if (q.offset() < 0 || q.length() < 0) {
    return Fail(-EINVAL, "fsync: negative offset or length");
  }
  FileRef f;
  if (Outcome o = GetFile(q.handle(), q.open_id(), 0, 0, &f); !o.ok()) return o;
  int64_t end = std::numeric_limits<int64_t>::max();
  if (q.length() != 0 && q.length() - 1 <= end - q.offset()) {
    end = q.offset() + q.length() - 1;
  }
  int err = q.datasync() ? f.file()->Fdatasync(q.offset(), end)
                         : f.file()->Fsync(q.offset(), end);
  return FromErrno(err, q.datasync() ? "fdatasync" : "fsync");
}

Outcome Ops::Seek(const v1::SeekRequest& q, v1::SeekResponse* r) {
  if (q.whence() != v1::WHENCE_DATA && q.whence() != v1::WHENCE_HOLE) {
    return Fail(-EINVAL, "seek: whence must be WHENCE_DATA or WHENCE_HOLE");
  }
  FileRef f;
  if (Outcome o = GetFile(q.handle(), q.open_id(), 0, 0, &f); !o.ok()) return o;
  int64_t off = q.whence() == v1::WHENCE_DATA ? f.file()->SeekData(q.offset())
                                              : f.file()->SeekHole(q.offset());
  if (off < 0) return FromErrno(static_cast<int>(off), "seek");
  r->set_result(off);
  return Outcome{};
}

Outcome Ops::Fiemap(const v1::FiemapRequest& q, v1::FiemapResponse* r) {
  if (q.extent_count() > kMaxFiemapExtents) {
    return Fail(-EINVAL, absl::StrCat("fiemap: extent_count above the "
                                      "server's limit of ",
                                      kMaxFiemapExtents));
  }
  FileRef f;
  if (Outcome o = GetFile(q.handle(), q.open_id(), 0, 0, &f); !o.ok()) return o;
  iomap::FiemapRequest req;
  req.fm_start = static_cast<uint64_t>(q.start());
  req.fm_length = q.length() < 0 ? iomap::kFiemapMaxOffset
                                 : static_cast<uint64_t>(q.length());
  req.fm_flags = q.flags();
  req.fm_extent_count = q.extent_count();
  int err = f.file()->Fiemap(&req);
  if (err == -EBADR) r->set_bad_flags(req.fm_flags);
  if (err < 0) return FromErrno(err, "fiemap");
  r->set_mapped_extents(req.fm_mapped_extents);
  for (const iomap::FiemapExtent& e : req.fm_extents) {
    v1::FiemapExtent* out = r->add_extents();
    out->set_logical(e.fe_logical);
    out->set_physical(e.fe_physical);
    out->set_length(e.fe_length);
    out->set_flags(e.fe_flags);
  }
  return Outcome{};
}

Outcome Ops::Bmap(const v1::BmapRequest& q, v1::BmapResponse* r) {
  FileRef f;
  if (Outcome o = GetFile(q.handle(), 0, 0, 0, &f); !o.ok()) return o;
  r->set_result(static_cast<int64_t>(f.file()->Bmap(q.block())));
  return Outcome{};
}

Outcome Ops::Truncate(const v1::TruncateRequest& q, v1::TruncateResponse*) {
  if (q.size() < 0) return Fail(-EINVAL, "truncate: negative size");
  FileRef f;
  if (Outcome o =
          GetFile(q.handle(), q.open_id(), v1::OPEN_FLAG_WRITE, -EINVAL, &f);
      !o.ok()) {
    return o;
  }
  return FromErrno(f.file()->Truncate(q.size()), "truncate");
}

Outcome Ops::Fallocate(const v1::FallocateRequest& q, v1::FallocateResponse*) {
  FileRef f;
  if (Outcome o =
          GetFile(q.handle(), q.open_id(), v1::OPEN_FLAG_WRITE, -EBADF, &f);
      !o.ok()) {
    return o;
  }
  return FromErrno(
      f.file()->Fallocate(static_cast<int>(q.mode()), q.offset(), q.length()),
      "fallocate");
}

Outcome Ops::Unshare(const v1::UnshareRequest& q, v1::UnshareResponse*) {
  FileRef f;
  if (Outcome o =
          GetFile(q.handle(), q.open_id(), v1::OPEN_FLAG_WRITE, -EBADF, &f);
      !o.ok()) {
    return o;
  }
  return FromErrno(
      f.file()->Fallocate(FALLOC_FL_UNSHARE_RANGE, q.offset(), q.length()),
      "unshare");
}

}  // namespace server
