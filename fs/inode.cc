#include "fs/inode.h"

#include <cerrno>
#include <chrono>

#include "fs/format.h"

namespace fs {

bool InodeAttr::operator==(const InodeAttr& o) const {
  return ino == o.ino && generation == o.generation && mode == o.mode &&
         nlink == o.nlink && uid == o.uid && gid == o.gid && size == o.size &&
         atime_ns == o.atime_ns && mtime_ns == o.mtime_ns &&
         ctime_ns == o.ctime_ns && flags == o.flags;
}

void EncodeInodeAttr(const InodeAttr& a, Encoder* e) {
  e->U64(a.ino);
  e->U64(a.generation);
  e->U32(a.mode);
  e->U32(a.nlink);
  e->U32(a.uid);
  e->U32(a.gid);
  e->U64(a.size);
  e->I64(a.atime_ns);
  e->I64(a.mtime_ns);
  e->I64(a.ctime_ns);
  e->U64(a.flags);
}

bool DecodeInodeAttr(Decoder* d, InodeAttr* a) {
  a->ino = d->U64();
  a->generation = d->U64();
  a->mode = d->U32();
  a->nlink = d->U32();
  a->uid = d->U32();
  a->gid = d->U32();
  a->size = d->U64();
  a->atime_ns = d->I64();
  a->mtime_ns = d->I64();
  a->ctime_ns = d->I64();
  a->flags = d->U64();
  return d->ok();
}

int ValidateName(absl::string_view name) {
  if (name.size() > format::kMaxNameLen) return -ENAMETOOLONG;
  if (name.empty() || name == "." || name == "..") return -EINVAL;
  if (name.find('/') != absl::string_view::npos) return -EINVAL;
  if (name.find('\0') != absl::string_view::npos) return -EINVAL;
  return 0;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void TxnBuilder::Op(uint16_t op, const std::string& body) {
  Encoder e(&bytes_);
  e.U16(op);
  e.U16(0);
  e.U32(body.size());
  e.Bytes(body);
}

void TxnBuilder::InodeSet(const InodeAttr& a) {
  std::string body;
  Encoder e(&body);
  EncodeInodeAttr(a, &e);
  Op(format::kOpInodeSet, body);
}

void TxnBuilder::InodeFree(uint64_t ino) {
  std::string body;
  Encoder(&body).U64(ino);
  Op(format::kOpInodeFree, body);
}

void TxnBuilder::DirentAdd(uint64_t dir, uint64_t cookie, uint64_t ino,
                           absl::string_view name) {
  std::string body;
  Encoder e(&body);
  e.U64(dir);
  e.U64(cookie);
  e.U64(ino);
  e.Name(name);
  Op(format::kOpDirentAdd, body);
}

void TxnBuilder::DirentRemove(uint64_t dir, absl::string_view name) {
  std::string body;
  Encoder e(&body);
  e.U64(dir);
  e.Name(name);
  Op(format::kOpDirentRemove, body);
}

void TxnBuilder::OrphanAdd(uint64_t ino) {
  std::string body;
  Encoder(&body).U64(ino);
  Op(format::kOpOrphanAdd, body);
}

void TxnBuilder::OrphanRemove(uint64_t ino) {
  std::string body;
  Encoder(&body).U64(ino);
  Op(format::kOpOrphanRemove, body);
}

void TxnBuilder::Raw(uint16_t op, absl::string_view body) {
  Op(op, std::string(body.data(), body.size()));
}

int ForEachOp(
    absl::string_view txn,
    const std::function<int(uint16_t op, absl::string_view body)>& fn) {
  Decoder d(txn);
  while (!d.done()) {
    uint16_t op = d.U16();
    d.U16();
    uint32_t len = d.U32();
    absl::string_view body = d.Bytes(len);
    if (!d.ok()) return -EUCLEAN;
    if (int err = fn(op, body); err != 0) return err;
  }
  return 0;
}

}  // namespace fs
