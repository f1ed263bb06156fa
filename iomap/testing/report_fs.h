// ReportFs: a programmable filesystem for the reporting operations' tests
// (seek, fiemap, bmap, swapfile). It answers IomapBegin from an extent list
// the test writes (type, device address, IOMAP_F_* flags, device), with
// holes between extents, and trims each mapping to the block-rounded request
// range as XFS's xfs_read_iomap_begin does. It records every call's flags,
// can fail a chosen call, and counts write-and-wait / fsync hook calls.
//
// Also: CacheFolio(), which puts a folio with chosen uptodate and dirty
// blocks into an inode's pagecache (for the unwritten-extent seek rules).
//
// Thread-safety: thread-compatible (one test thread).
#ifndef IOMAPD_IOMAP_TESTING_REPORT_FS_H_
#define IOMAPD_IOMAP_TESTING_REPORT_FS_H_

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "block/device.h"
#include "iomap/iomap.h"

namespace iomap {
namespace testing {

// A device that does no I/O (every bio ends with -EIO). The reporting
// operations never touch data; tests use distinct instances as distinct
// devices (Iomap::bdev, SwapInfo::bdev).
class NullDevice : public block::Device {
 public:
  void Submit(block::Bio* bio) override;
  const block::DeviceLimits& limits() const override { return limits_; }
  std::string name() const override { return "null"; }
  uint64_t inflight() const override { return 0; }
  void Drain() override {}

 private:
  block::DeviceLimits limits_;
};

struct ReportExtent {
  int64_t offset = 0;  // file bytes
  int64_t length = 0;  // bytes
  Iomap::Type type = Iomap::Type::kHole;
  uint64_t addr = kNullAddr;      // device bytes of `offset`
  uint32_t flags = 0;             // IOMAP_F_*
  block::Device* bdev = nullptr;  // null: the ReportFs default device
};

class ReportFs : public IomapOps {
 public:
  // `blkbits`: the block size used to round requests; `bdev`: the device
  // put in mappings whose extent names none.
  ReportFs(unsigned blkbits, block::Device* bdev)
      : blkbits_(blkbits), bdev_(bdev) {}

  // Adds an extent (REQUIRES: it overlaps no other).
  void Add(int64_t offset, int64_t length, Iomap::Type type,
           uint64_t addr = kNullAddr, uint32_t flags = 0,
           block::Device* bdev = nullptr);
  void Clear() { extents_.clear(); }

  // Behaviour switches.
  bool trim_to_request = true;  // XFS trims mappings to the request
  int fail_call = -1;           // IomapBegin call number (0-based) to fail
  int fail_error = -EIO;        // the error it returns

  // Observations.
  std::vector<unsigned> begin_flags;  // flags of every IomapBegin call
  int begin_calls() const { return static_cast<int>(begin_flags.size()); }

  int IomapBegin(Inode* inode, int64_t pos, int64_t len, unsigned flags,
                 Iomap* iomap, Iomap* srcmap) override;

 private:
  // The extent containing pos, or the hole [pos, next extent) as an extent.
  ReportExtent Lookup(int64_t pos) const;

  const unsigned blkbits_;
  block::Device* const bdev_;
  std::map<int64_t, ReportExtent> extents_;  // keyed by offset
};

// A write-and-wait / fsync hook that counts its calls and returns `result`.
struct HookCounter {
  int calls = 0;
  int result = 0;
  int operator()(Inode*) {
    calls++;
    return result;
  }
};

// Caches a folio of `order` at byte `pos` (folio aligned) in the inode's
// mapping, with bytes [up_off, up_off + up_len) of it uptodate (block
// granular; the whole folio makes the folio uptodate) and, when `dirty`,
// those bytes dirty. Returns 0 or -errno.
int CacheFolio(Inode* inode, int64_t pos, unsigned order, size_t up_off,
               size_t up_len, bool dirty);

}  // namespace testing
}  // namespace iomap

#endif  // IOMAPD_IOMAP_TESTING_REPORT_FS_H_
