// FakeFs: a small in-memory "filesystem" for the engine's tests. One inode,
// an extent list the test programs (hole, delalloc, mapped, unwritten,
// inline; NEW/SHARED flags), a sequence number as validity cookie, delalloc
// reservations on buffered writes into holes with a reservation counter, and
// iomap_end doing what XFS does after short writes (WriteDelallocRelease with
// a punch that removes only delalloc).
//
// Thread-safety: thread-safe (an internal lock of rank kFsInode).
#ifndef IOMAPD_IOMAP_TESTING_FAKE_FS_H_
#define IOMAPD_IOMAP_TESTING_FAKE_FS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "base/mutex.h"
#include "iomap/buffered_io.h"
#include "iomap/iomap.h"

namespace iomap {
namespace testing {

struct FakeExtent {
  int64_t offset = 0;
  int64_t length = 0;
  Iomap::Type type = Iomap::Type::kHole;
  uint64_t addr = kNullAddr;
  uint32_t flags = 0;
  // kShared extents: written data goes to a delalloc COW destination and the
  // extent itself is the srcmap (old data).
};

struct BeginCall {
  int64_t pos;
  int64_t len;
  unsigned flags;
};

struct EndCall {
  int64_t pos;
  int64_t len;
  int64_t written;
  unsigned flags;
  uint32_t iomap_flags;  // the IOMAP_F_* seen by IomapEnd (kSizeChanged...)
  Iomap::Type type;
};

class FakeInode : public Inode {
 public:
  FakeInode(unsigned blkbits, block::Device* dev, PageCache* cache)
      : Inode(42, blkbits, dev, cache) {}
};

class FakeFs : public IomapOps, public IomapWriteOps {
 public:
  FakeFs(block::Device* dev, unsigned blkbits, bool large_folios,
         PageCache* cache = nullptr);

  FakeInode* inode() { return &inode_; }

  // Replaces [offset, offset + length) with one extent (bumps the sequence).
  void SetExtent(int64_t offset, int64_t length, Iomap::Type type,
                 uint64_t addr = kNullAddr, uint32_t flags = 0);
  std::vector<FakeExtent> Extents();
  // Blocks reserved for delalloc extents.
  int64_t reserved_blocks();
  // Whether `pos` lies in a delalloc extent.
  bool IsDelalloc(int64_t pos);
  uint64_t seq();

  // Behaviour switches.
  bool delalloc_on_write = true;  // kWrite over a hole reserves delalloc
  // Called after the default GetFolio returned a locked folio.
  std::function<void(int64_t pos)> after_get_folio;
  // Returned by IomapBegin when set (then cleared if one_shot_error).
  int begin_error = 0;

  std::vector<BeginCall> begins();
  std::vector<EndCall> ends();
  void ClearCalls();

  // IomapOps
  int IomapBegin(Inode* inode, int64_t pos, int64_t len, unsigned flags,
                 Iomap* iomap, Iomap* srcmap) override;
  int IomapEnd(Inode* inode, int64_t pos, int64_t len, int64_t written,
               unsigned flags, Iomap* iomap) override;
  // IomapWriteOps
  int GetFolio(IomapIter* iter, int64_t pos, size_t len,
               Folio** folio) override;
  bool IomapValid(Inode* inode, const Iomap& iomap) override;

  // The punch callback (removes delalloc only).
  void Punch(int64_t offset, int64_t length);

 private:
  void RemoveRangeLocked(int64_t offset, int64_t length)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillFromExtent(const FakeExtent& e, Iomap* map)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t NextExtentStartLocked(int64_t pos) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  block::Device* dev_;
  FakeInode inode_;
  base::Mutex mu_{base::LockRank::kFsInode};
  std::map<int64_t, FakeExtent> extents_ ABSL_GUARDED_BY(mu_);
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<BeginCall> begins_ ABSL_GUARDED_BY(mu_);
  std::vector<EndCall> ends_ ABSL_GUARDED_BY(mu_);
};

}  // namespace testing
}  // namespace iomap

#endif  // IOMAPD_IOMAP_TESTING_FAKE_FS_H_
