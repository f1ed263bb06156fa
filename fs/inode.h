// Inode records and transactions of logical metadata ops.
//
// InodeAttr is the persistent part of an inode (docs/format.md, "Inode
// record"). The in-core file object the iomap engine works on (an
// iomap::Inode subclass, built by the fs integration layer) is created from
// an InodeAttr: ino, block size and i_size come from here, and size changes
// go back through Namespace::SetAttr.
//
// TxnBuilder collects the ops of one transaction; ForEachOp walks them. A
// transaction is written as one journal record and applied whole.
//
// Thread-safety: plain values and functions; no shared state.
#ifndef IOMAPD_FS_INODE_H_
#define IOMAPD_FS_INODE_H_

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "fs/codec.h"

namespace fs {

struct InodeAttr {
  uint64_t ino = 0;
  uint64_t generation = 0;
  uint32_t mode = 0;  // S_IFREG / S_IFDIR | permission bits
  uint32_t nlink = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;  // bytes
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint64_t flags = 0;

  bool is_dir() const { return S_ISDIR(mode); }
  bool operator==(const InodeAttr& o) const;
};

// A file handle: stale when the inode is gone or was reused (ESTALE).
struct FileHandle {
  uint64_t ino = 0;
  uint64_t generation = 0;
};

void EncodeInodeAttr(const InodeAttr& a, Encoder* e);
// False when the bytes run out.
bool DecodeInodeAttr(Decoder* d, InodeAttr* a);

// Checks a directory entry name: -ENAMETOOLONG past 255 bytes, -EINVAL for
// an empty name, "." or "..", or one containing '/' or NUL; else 0.
int ValidateName(absl::string_view name);

// Nanoseconds since the epoch (CLOCK_REALTIME).
int64_t NowNs();

class TxnBuilder {
 public:
  void InodeSet(const InodeAttr& a);
  void InodeFree(uint64_t ino);
  void DirentAdd(uint64_t dir, uint64_t cookie, uint64_t ino,
                 absl::string_view name);
  void DirentRemove(uint64_t dir, absl::string_view name);
  void OrphanAdd(uint64_t ino);
  void OrphanRemove(uint64_t ino);
  // An op of another layer (format::kOpFirstCoreOp..kOpLastCoreOp).
  void Raw(uint16_t op, absl::string_view body);

  const std::string& bytes() const { return bytes_; }
  bool empty() const { return bytes_.empty(); }

 private:
  void Op(uint16_t op, const std::string& body);
  std::string bytes_;
};

// Calls fn(op, body) for each op in order; stops at and returns fn's first
// non-zero result. -EUCLEAN for a malformed transaction.
int ForEachOp(
    absl::string_view txn,
    const std::function<int(uint16_t op, absl::string_view body)>& fn);

}  // namespace fs

#endif  // IOMAPD_FS_INODE_H_
