// fs::ExtentMap: one fork of one inode (the data fork or the COW fork), the
// in-memory counterpart of XFS's incore extent tree (xfs_iext_*, xfs_bmap).
//
// It maps file blocks to device blocks:
//   file block offset -> (device block, length in blocks, state)
// with state written, unwritten (allocated, reads as zeros) or delalloc
// (reserved in memory, no device block yet; data fork only by convention).
//
// Invariants (Check() verifies all of them):
//   - extents are non-empty, non-overlapping and lie in [0, kMaxFileBlocks);
//   - written/unwritten extents have a device block and lie within the
//     device range given to Check(); delalloc extents have none;
//   - the map is canonical: two neighbours that are contiguous in the file
//     (and on the device, for allocated states) with the same state are
//     always merged, so equal contents give equal extent lists;
//   - the per-state block counters equal the sums over the extents.
//
// Units: everything is in filesystem blocks, never bytes.
//
// Thread-safety: thread-compatible. The owner (the inode's ILOCK in fs/)
// serialises every call, except Sequence(), which may be read concurrently
// with a mutator (it is atomic), as iomap_valid does without the ILOCK.
//
// This file holds pure data structures: no I/O, no allocation of device
// blocks. Callers free / decref what Map()/Unmap() return.
#ifndef IOMAPD_FS_EXTENT_MAP_H_
#define IOMAPD_FS_EXTENT_MAP_H_

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

namespace fs {

// A run of blocks [start, start + len), used for free space and refcounts.
struct BlockRange {
  uint64_t start = 0;
  uint64_t len = 0;
  uint64_t end() const { return start + len; }
  bool operator==(const BlockRange& o) const {
    return start == o.start && len == o.len;
  }
  bool operator!=(const BlockRange& o) const { return !(*this == o); }
};

enum class ExtentState : uint8_t {
  kHole = 0,       // only in Lookup() results: nothing is mapped there
  kDelalloc = 1,   // reserved in memory, no device block (IOMAP_DELALLOC)
  kUnwritten = 2,  // allocated, reads as zeros (IOMAP_UNWRITTEN)
  kWritten = 3,    // allocated and written (IOMAP_MAPPED)
};

// "written", "unwritten", "delalloc", "hole".
const char* ExtentStateName(ExtentState state);

// dev_block of holes and delalloc extents.
inline constexpr uint64_t kNoDevBlock = ~uint64_t{0};
// File block offsets live in [0, kMaxFileBlocks).
inline constexpr uint64_t kMaxFileBlocks = uint64_t{1} << 62;
// Device blocks live in [0, kMaxDevBlocks).
inline constexpr uint64_t kMaxDevBlocks = uint64_t{1} << 62;

// One extent (xfs_bmbt_irec).
struct Extent {
  uint64_t file_off = 0;             // first file block
  uint64_t len = 0;                  // length in blocks
  uint64_t dev_block = kNoDevBlock;  // first device block, or kNoDevBlock
  ExtentState state = ExtentState::kHole;

  uint64_t file_end() const { return file_off + len; }
  // True for written and unwritten extents (they own device blocks).
  bool allocated() const {
    return state == ExtentState::kWritten || state == ExtentState::kUnwritten;
  }
  // The device block backing file block `off` (inside this extent), or
  // kNoDevBlock when the extent has no device blocks.
  uint64_t DevBlockAt(uint64_t off) const {
    return allocated() ? dev_block + (off - file_off) : kNoDevBlock;
  }
  BlockRange dev_range() const { return BlockRange{dev_block, len}; }
  // File blocks [off, off + n) of this extent (which must contain them),
  // with their device blocks and state.
  Extent Slice(uint64_t off, uint64_t n) const {
    Extent out = *this;
    out.file_off = off;
    out.len = n;
    out.dev_block = DevBlockAt(off);
    return out;
  }
  bool operator==(const Extent& o) const {
    return file_off == o.file_off && len == o.len && dev_block == o.dev_block &&
           state == o.state;
  }
  bool operator!=(const Extent& o) const { return !(*this == o); }
};

class ExtentMap {
 public:
  ExtentMap() = default;
  ExtentMap(const ExtentMap&) = delete;
  ExtentMap& operator=(const ExtentMap&) = delete;
  // Moves keep the sequence number; the source is left empty.
  ExtentMap(ExtentMap&& other) noexcept;
  ExtentMap& operator=(ExtentMap&& other) noexcept;

  // --- queries (what iomap_begin needs) ---

  // The whole extent containing file block `off` (not clipped to `off`), or,
  // when `off` is in a hole, a kHole extent [off, start of the next extent)
  // (up to kMaxFileBlocks when nothing follows). For off >= kMaxFileBlocks
  // returns a kHole extent of length 0.
  Extent Lookup(uint64_t off) const;

  // The first extent that ends after `off` (contains or follows it); false
  // when there is none.
  bool NextExtent(uint64_t off, Extent* out) const;

  // Calls fn for each extent overlapping [off, off + len), clipped to that
  // range, in file order. fn must not modify the map.
  void ForEachInRange(uint64_t off, uint64_t len,
                      absl::FunctionRef<void(const Extent&)> fn) const;

  // Calls fn for every extent in file order (for serialization).
  void ForEach(absl::FunctionRef<void(const Extent&)> fn) const;

  size_t NumExtents() const { return map_.size(); }
  bool empty() const { return map_.empty(); }
  // Blocks currently in `state` (kHole: 0).
  uint64_t BlocksInState(ExtentState state) const;
  // Bumped on every change of the map's contents (the iomap validity_cookie;
  // xfs_ifork::if_seq). Safe to read concurrently with a mutator.
  uint64_t Sequence() const { return seq_.load(std::memory_order_acquire); }

  // --- updates (each returns 0 or -errno and changes nothing on error) ---

  // Maps [off, off + len) to [dev_block, dev_block + len) in `state`,
  // replacing whatever was there (xfs_bmapi_write / xfs_bmap_add_extent).
  // The pieces that were replaced (clipped to the range) are appended to
  // `replaced` (may be null) in file order: the caller frees or decrefs
  // their device blocks and unreserves delalloc pieces.
  // state kDelalloc requires dev_block == kNoDevBlock; kWritten/kUnwritten
  // require a device range inside [0, kMaxDevBlocks). kHole is -EINVAL
  // (use Unmap). len == 0 or a range past kMaxFileBlocks: -EINVAL.
  int Map(uint64_t off, uint64_t len, uint64_t dev_block, ExtentState state,
          std::vector<Extent>* replaced);

  // Removes everything in [off, off + len) (xfs_bunmapi). Removed pieces,
  // clipped, are appended to `removed` (may be null). -EINVAL on a bad range.
  int Unmap(uint64_t off, uint64_t len, std::vector<Extent>* removed);

  // Converts the `from` pieces inside [off, off + len) to `to`, leaving the
  // rest alone. Only kUnwritten <-> kWritten are allowed (-EINVAL
  // otherwise). Returns the number of blocks converted, or -errno.
  int64_t ConvertState(uint64_t off, uint64_t len, ExtentState from,
                       ExtentState to);
  // ConvertState(off, len, kUnwritten, kWritten) (xfs_iomap_write_unwritten).
  int64_t ConvertUnwritten(uint64_t off, uint64_t len) {
    return ConvertState(off, len, ExtentState::kUnwritten,
                        ExtentState::kWritten);
  }

  // Removes only the delalloc pieces inside [off, off + len)
  // (xfs_bmap_punch_delalloc_range), appending them, clipped, to `punched`
  // (may be null). Returns the number of blocks punched, or -errno.
  int64_t PunchDelalloc(uint64_t off, uint64_t len,
                        std::vector<Extent>* punched);

  // Moves every extent at or after file block `off` by `delta` blocks
  // (xfs_bmap_collapse_extents: delta < 0; xfs_bmap_insert_extents:
  // delta > 0). Insert first splits an extent that straddles `off`
  // (xfs_bmap_split_extent); collapse merges the first moved extent with
  // its new left neighbour when they are contiguous on the device and in
  // the same state. Device blocks, states and block counters are
  // unchanged. -EINVAL (and no change) if a collapse would land on or split
  // extents below `off` (the caller unmaps [off + delta, off) first) or an
  // insert would move an extent past kMaxFileBlocks. Cost: O(log n + the
  // number of extents moved).
  int Shift(uint64_t off, int64_t delta);
  // What Shift(off, delta) would return (0 or -EINVAL), changing nothing.
  int CheckShift(uint64_t off, int64_t delta) const;

  // Adds one extent to an empty range (rebuild from a checkpoint or journal
  // replay), merging it with compatible neighbours. -EINVAL for a malformed
  // extent, -EEXIST if it overlaps an existing extent.
  int Insert(const Extent& extent);

  // Removes every extent.
  void Clear();

  // Verifies the invariants listed at the top of this file, with allocated
  // extents required to lie in [dev_first, dev_end). Returns OK or an
  // error (errno EUCLEAN) naming the first problem found.
  absl::Status Check(uint64_t dev_first = 0,
                     uint64_t dev_end = kMaxDevBlocks) const;

 private:
  friend class ExtentMapTestPeer;  // corrupts private state in tests
  struct Rec {
    uint64_t len;
    uint64_t dev_block;
    ExtentState state;
  };
  using Map_ = absl::btree_map<uint64_t, Rec>;
  using Iter = Map_::iterator;

  static Extent ToExtent(const Map_::value_type& kv);
  static bool ValidRange(uint64_t off, uint64_t len);
  static bool Mergeable(const Extent& a, const Extent& b);

  Iter Put(const Extent& e);
  Iter Erase(Iter it);
  void SplitAt(uint64_t off);
  Iter MergeWithNext(Iter it);
  void MergeRange(uint64_t off, uint64_t end);
  void RemoveRange(uint64_t off, uint64_t end, std::vector<Extent>* removed);
  void Bump() { seq_.fetch_add(1, std::memory_order_acq_rel); }
  absl::Status CheckCounters() const;

  Map_ map_;
  uint64_t blocks_[4] = {0, 0, 0, 0};  // indexed by ExtentState
  std::atomic<uint64_t> seq_{0};
};

}  // namespace fs

#endif  // IOMAPD_FS_EXTENT_MAP_H_
