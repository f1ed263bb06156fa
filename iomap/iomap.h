// iomap core types: the mapping of a file range (Iomap), its types and flags,
// the operation flags passed to IomapBegin, the ops tables a filesystem
// implements, and Inode, the engine's view of a file.
//
// These mirror include/linux/iomap.h (see reference/iomap-kernel.md §1). The
// engine knows nothing about the filesystem; a filesystem derives its inode
// from iomap::Inode and implements IomapOps (and, as needed, IomapWriteOps,
// IomapWritebackOps, IomapDioOps).
//
// Stability: this header is shared by fs/ and every engine file. Changes are
// additive only.
#ifndef IOMAPD_IOMAP_IOMAP_H_
#define IOMAPD_IOMAP_IOMAP_H_

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "base/mutex.h"

namespace block {
class Device;
struct Bio;
}  // namespace block

namespace iomap {

class Folio;
class Mapping;
class PageCache;
class IomapIter;
struct WritepageCtx;
class Inode;

// IOMAP_NULL_ADDR: the address of a hole or a delalloc reservation.
inline constexpr uint64_t kNullAddr = ~uint64_t{0};

// ---------------------------------------------------------------------------
// IOMAP_F_* : flags of one mapping (Iomap::flags). Names, not bit numbers, are
// the contract (the kernel renumbered them between versions).

// Set by the filesystem in IomapBegin:
inline constexpr uint32_t kNew =
    1u << 0;  // fresh blocks: zero what is not written
inline constexpr uint32_t kDirty = 1u << 1;   // metadata not yet committed
inline constexpr uint32_t kShared = 1u << 2;  // shared blocks: COW destination
inline constexpr uint32_t kMerged = 1u << 3;  // reported to FIEMAP as merged
inline constexpr uint32_t kBufferHead = 1u
                                        << 4;  // kept for parity; unused here
inline constexpr uint32_t kXattr = 1u << 5;    // maps the attribute fork
inline constexpr uint32_t kBoundary =
    1u << 6;  // never merge an ioend across its start
inline constexpr uint32_t kAnonWrite = 1u << 7;  // no address yet (zoned)
inline constexpr uint32_t kAtomicBio = 1u << 8;  // hardware untorn write
inline constexpr uint32_t kIntegrity = 1u << 9;  // kept for parity; unused here
// Free for the filesystem's own use (IOMAP_F_PRIVATE).
inline constexpr uint32_t kPrivate = 1u << 12;
// Set by the engine:
inline constexpr uint32_t kSizeChanged = 1u
                                         << 13;  // a buffered write grew i_size
inline constexpr uint32_t kStale = 1u << 14;     // mapping found stale: remap
inline constexpr uint32_t kFolioBatch = 1u << 15;  // zeroing uses a folio batch

// ---------------------------------------------------------------------------
// IOMAP_* : operation flags passed to IomapBegin/IomapEnd (IomapIter::flags).
//
//   read_folio / readahead        0
//   buffered write                kWrite [| kNowait] [| kDontcache]
//   page_mkwrite                  kWrite | kFault
//   zero_range, truncate_page     kZero
//   unshare                       kWrite | kUnshare
//   direct I/O                    kDirect [| kWrite | kNowait |
//                                 kOverwriteOnly | kAtomic]
//   DAX read/write, fault         kDax [| kWrite | kNowait], kDax | kFault
//                                 [| kWrite]
//   seek                          kReport | kSeek
//   fiemap, bmap, swapfile        kReport
inline constexpr unsigned kWrite = 1u << 0;
inline constexpr unsigned kZero = 1u << 1;
inline constexpr unsigned kReport = 1u << 2;
inline constexpr unsigned kFault = 1u << 3;
inline constexpr unsigned kDirect = 1u << 4;
inline constexpr unsigned kNowait = 1u << 5;
inline constexpr unsigned kOverwriteOnly = 1u << 6;
inline constexpr unsigned kUnshare = 1u << 7;
inline constexpr unsigned kDax = 1u << 8;
inline constexpr unsigned kAtomic = 1u << 9;
inline constexpr unsigned kDontcache = 1u << 10;
// iomapd only: SeekData/SeekHole pass kReport | kSeek. The kernel gives
// seek its own iomap_ops (XFS: xfs_seek_iomap_ops, which reports COW-fork
// extents over data-fork holes as UNWRITTEN); here one IomapOps serves
// seek, FIEMAP, FIBMAP and swapfile, so seek says who it is.
inline constexpr unsigned kSeek = 1u << 16;

// ---------------------------------------------------------------------------
// struct iomap: what is at [offset, offset + length) of a file.
//
// A value type; a default-constructed Iomap is a HOLE of length 0 (the
// kernel's zeroed struct), so "no srcmap" means srcmap.type == kHole.
struct Iomap {
  enum class Type : uint16_t {
    kHole = 0,       // no blocks: reads return zeros
    kDelalloc = 1,   // reserved, not allocated: reads return zeros
    kMapped = 2,     // allocated and written
    kUnwritten = 3,  // allocated, reads as zeros until converted
    kInline = 4,     // data at inline_data (one only, at EOF)
  };

  uint64_t addr = kNullAddr;  // device byte address of `offset`, or kNullAddr
  int64_t offset = 0;         // file byte offset of the mapping
  uint64_t length = 0;        // bytes
  Type type = Type::kHole;
  uint32_t flags = 0;             // IOMAP_F_* (kNew, kShared, ...)
  block::Device* bdev = nullptr;  // the device `addr` refers to
  void* inline_data = nullptr;    // kInline: the data of `offset`
  void* private_data = nullptr;   // the filesystem's own
  uint64_t validity_cookie = 0;   // sampled for IomapWriteOps::IomapValid

  int64_t End() const { return offset + static_cast<int64_t>(length); }
  bool Contains(int64_t pos) const { return pos >= offset && pos < End(); }
  // The device byte address of file position `pos` (REQUIRES: Contains(pos)
  // and addr != kNullAddr).
  uint64_t DeviceAddr(int64_t pos) const {
    return addr + static_cast<uint64_t>(pos - offset);
  }
  // iomap_sector(): 512-byte sector of `pos`.
  uint64_t Sector(int64_t pos) const { return DeviceAddr(pos) >> 9; }
};

const char* IomapTypeName(Iomap::Type type);

// ---------------------------------------------------------------------------
// struct iomap_ops: the filesystem's answer to "what is at this offset?".
//
// Thread-safety: the engine calls these concurrently for different inodes and,
// where the caller's locks allow it, for the same inode.
class IomapOps {
 public:
  virtual ~IomapOps() = default;

  // Maps [pos, pos + len) (or a prefix of it) into *iomap, and into *srcmap
  // the source of the data when it differs (COW: iomap = new blocks, srcmap =
  // old data). Both arrive zeroed (HOLE, length 0). The returned mapping must
  // contain pos and have a non-zero length. Returns 0 or -errno.
  virtual int IomapBegin(Inode* inode, int64_t pos, int64_t len, unsigned flags,
                         Iomap* iomap, Iomap* srcmap) = 0;

  // Called once per mapping after the engine's step, with the start of the
  // mapping's range (`pos`), its trimmed length and the bytes the step
  // advanced (`written`). Its error is only reported when written == 0.
  // Optional: the default does nothing.
  virtual int IomapEnd(Inode* inode, int64_t pos, int64_t len, int64_t written,
                       unsigned flags, Iomap* iomap) {
    (void)inode, (void)pos, (void)len, (void)written, (void)flags, (void)iomap;
    return 0;
  }
};

// ---------------------------------------------------------------------------
// struct iomap_write_ops: optional hooks of the buffered write path. Every
// member has the documented default; override only what the filesystem needs.
// Thread-safety: as IomapOps.
class IomapWriteOps {
 public:
  virtual ~IomapWriteOps() = default;

  // Returns in *folio a locked folio, with a reference, caching `pos` (for
  // up to `len` bytes). Default: IomapGetFolio (FGP_WRITEBEGIN, + NOWAIT and
  // DONTCACHE from iter flags). Returns 0 or -errno (-EAGAIN under NOWAIT).
  virtual int GetFolio(IomapIter* iter, int64_t pos, size_t len, Folio** folio);

  // Unlocks and releases the folio after a pagecache operation; `copied`
  // bytes at `pos` were written. Default: folio->Unlock(); folio->Put().
  virtual void PutFolio(Inode* inode, int64_t pos, size_t copied, Folio* folio);

  // Whether `iomap` is still valid (compare iomap.validity_cookie with the
  // filesystem's sequence). Called with the folio locked. Default: true.
  virtual bool IomapValid(Inode* inode, const Iomap& iomap);

  // Synchronously reads [pos, pos + len) of `folio` from the iterator's
  // srcmap for read-modify-write. REQUIRES: folio locked. Default: a read bio
  // from srcmap. Returns 0 or -errno.
  virtual int ReadFolioRange(const IomapIter& iter, Folio* folio, int64_t pos,
                             size_t len);

  // The engine's defaults (usable when write_ops is null).
  static IomapWriteOps& Default();
};

// ---------------------------------------------------------------------------
// struct iomap_writeback_ops (implemented with the writeback engine; see
// iomap/writeback.h). Both members must be supplied by the filesystem.
class IomapWritebackOps {
 public:
  virtual ~IomapWritebackOps() = default;

  // Maps the dirty range [pos, pos + len) of `folio` (a file range; end_pos
  // is where the folio's valid data ends) into wpc->iomap and adds it to the
  // ioend being built. Returns bytes handled (0 < n <= len) or -errno.
  virtual int64_t WritebackRange(WritepageCtx* wpc, Folio* folio, uint64_t pos,
                                 unsigned len, uint64_t end_pos) = 0;

  // Submits the ioend built in wpc (error: the first error seen, or 0).
  virtual int WritebackSubmit(WritepageCtx* wpc, int error) = 0;
};

// ---------------------------------------------------------------------------
// struct iomap_dio_ops (used by the direct I/O engine).
class IomapDioOps {
 public:
  virtual ~IomapDioOps() = default;

  // IOMAP_DIO_* flags passed to EndIo.
  static constexpr unsigned kDioUnwritten = 1u << 0;  // convert to written
  static constexpr unsigned kDioCow = 1u << 1;        // COW: switch mappings

  // After the I/O completes (process context): `size` bytes done or `error`.
  // Returns 0 or -errno. Default: nothing to do.
  virtual int EndIo(Inode* inode, int64_t pos, int64_t size, int error,
                    unsigned dio_flags) {
    (void)inode, (void)pos, (void)size, (void)error, (void)dio_flags;
    return 0;
  }

  // Whether SubmitIo is overridden (the kernel's "->submit_io != NULL").
  virtual bool HasSubmitIo() const { return false; }

  // Submits `bio` (for file offset `file_offset`) in place of the engine.
  // Only called when HasSubmitIo() is true.
  virtual void SubmitIo(const IomapIter& iter, block::Bio* bio,
                        int64_t file_offset) {
    (void)iter, (void)bio, (void)file_offset;
  }
};

// ---------------------------------------------------------------------------
// The per-inode locks (DESIGN.md, "Locking"):
//   rwsem       i_rwsem / XFS IOLOCK
//   invalidate  invalidate_lock / XFS MMAPLOCK
// Order: rwsem -> invalidate -> folio lock -> mapping -> fs metadata.
struct InodeLocks {
  base::SharedMutex rwsem{base::LockRank::kRwsem};
  base::SharedMutex invalidate{base::LockRank::kInvalidate};
};

// The engine's view of a file. A filesystem derives its in-core inode from
// it. The Inode owns its Mapping (pagecache), which it creates in the
// constructor and destroys (dropping every cached folio) in the destructor.
//
// Thread-safety: the accessors are thread-safe; i_size is atomic (readers
// need no lock, writers hold rwsem exclusive or the folio lock of the EOF
// folio, as the kernel's i_size_write). Not copyable.
class Inode {
 public:
  // `blkbits`: log2 of the filesystem block size (9..16). `bdev`: the data
  // device (may be null for a filesystem without one, e.g. tests of inline
  // data). `cache`: the pagecache the mapping charges its memory to; null
  // means PageCache::Global().
  Inode(uint64_t ino, unsigned blkbits, block::Device* bdev,
        PageCache* cache = nullptr);
  virtual ~Inode();
  Inode(const Inode&) = delete;
  Inode& operator=(const Inode&) = delete;

  uint64_t ino() const { return ino_; }
  unsigned blkbits() const { return blkbits_; }
  uint32_t block_size() const { return 1u << blkbits_; }
  block::Device* bdev() const { return bdev_; }

  int64_t i_size_read() const {
    return i_size_.load(std::memory_order_acquire);
  }
  void i_size_write(int64_t size) {
    i_size_.store(size, std::memory_order_release);
  }

  InodeLocks& locks() { return locks_; }
  Mapping* mapping() const { return mapping_.get(); }

  // mapping_set_large_folios(): let the pagecache use folios above order 0.
  // Call while setting up the in-core inode, before any I/O.
  void SetLargeFolios();

 private:
  const uint64_t ino_;
  const unsigned blkbits_;
  block::Device* const bdev_;
  std::atomic<int64_t> i_size_{0};
  InodeLocks locks_;
  std::unique_ptr<Mapping> mapping_;
};

}  // namespace iomap

#endif  // IOMAPD_IOMAP_IOMAP_H_
