// On-device format constants of the iomapd filesystem. Constants only: the
// prose is docs/format.md, which must change in the same commit as this file.
//
// All integers on the device are little-endian. Every metadata structure
// carries a crc32c (base/crc32c.h). Journal records and checkpoints seed
// their crc with Crc32c(uuid), so blocks left by an earlier filesystem on the
// same device never validate.
#ifndef IOMAPD_FS_FORMAT_H_
#define IOMAPD_FS_FORMAT_H_

#include <cstdint>

namespace fs {
namespace format {

// ---- Geometry -------------------------------------------------------------
constexpr uint32_t kMinBlockSize = 512;
constexpr uint32_t kMaxBlockSize = 64 * 1024;
constexpr uint32_t kMaxNameLen = 255;          // bytes in one directory entry
constexpr uint64_t kMaxFileSize = 1ull << 50;  // bytes (1 PiB)
constexpr uint64_t kRootIno = 1;
constexpr uint64_t kFirstIno = 1;  // ino 0 is "no inode"

// ---- Superblock (block 0, bytes [0, 512)) --------------------------------
constexpr uint64_t kSuperblockMagic = 0x53464450414d4f49ull;  // "IOMAPDFS"
constexpr uint32_t kFormatVersion = 1;
constexpr uint64_t kSuperblockOffset = 0;
constexpr uint32_t kSuperblockBytes = 512;
// Byte offsets of the fields.
constexpr uint32_t kSbMagic = 0;              // u64
constexpr uint32_t kSbVersion = 8;            // u32
constexpr uint32_t kSbBlockSize = 12;         // u32
constexpr uint32_t kSbUuid = 16;              // 16 bytes
constexpr uint32_t kSbBlockCount = 32;        // u64, blocks in the filesystem
constexpr uint32_t kSbFeatCompat = 40;        // u64
constexpr uint32_t kSbFeatRoCompat = 48;      // u64
constexpr uint32_t kSbFeatIncompat = 56;      // u64
constexpr uint32_t kSbCheckpointStart = 64;   // u64, block of slot A
constexpr uint32_t kSbCheckpointBlocks = 72;  // u64, blocks per slot
constexpr uint32_t kSbJournalStart = 80;      // u64, block
constexpr uint32_t kSbJournalBlocks = 88;     // u64
constexpr uint32_t kSbDataStart = 96;         // u64, first data block
constexpr uint32_t kSbMaxInodes = 104;        // u64
constexpr uint32_t kSbRootIno = 112;          // u64
constexpr uint32_t kSbMkfsTimeNs = 120;       // u64, informational
constexpr uint32_t kSbCrc = 508;              // u32 crc32c of bytes [0, 508)

// Feature bits. No feature is defined by version 1; a set bit we do not know
// in incompat refuses mount, in ro_compat refuses a read-write mount, in
// compat is ignored.
constexpr uint64_t kFeatCompatSupported = 0;
constexpr uint64_t kFeatRoCompatSupported = 0;
constexpr uint64_t kFeatIncompatSupported = 0;

// ---- Checkpoint slots -----------------------------------------------------
// Two slots (A at kSbCheckpointStart, B right after it), written alternately.
// Each is a 64-byte header followed at once by the payload.
constexpr uint32_t kCheckpointMagic = 0x54504b43u;  // "CKPT"
constexpr uint32_t kCheckpointHeaderBytes = 64;
constexpr uint32_t kCpMagic = 0;       // u32
constexpr uint32_t kCpHeaderCrc = 4;   // u32 crc of bytes [8, 64), seeded
constexpr uint32_t kCpGeneration = 8;  // u64, >= 1; newest valid wins
constexpr uint32_t kCpJournalOffset =
    16;  // u64, log offset where replay starts
constexpr uint32_t kCpJournalLsn =
    24;  // u64, lsn of the first record to replay
constexpr uint32_t kCpPayloadBytes = 32;   // u64
constexpr uint32_t kCpPayloadCrc = 40;     // u32 crc of the payload, seeded
constexpr uint32_t kCpFormatVersion = 44;  // u32 == kFormatVersion
constexpr uint32_t kCpJournalEpoch = 48;  // u64, epoch of the records to replay

// Payload: a sequence of sections, each {u32 id, u32 zero, u64 bytes, bytes}.
constexpr uint32_t kSectionHeaderBytes = 16;
constexpr uint32_t kSectionNamespace = 1;  // inodes, directories, orphans
constexpr uint32_t kSectionExtents = 2;    // per-inode data and COW forks
constexpr uint32_t kSectionFreeSpace = 3;  // allocator
constexpr uint32_t kSectionRefcount = 4;   // shared-block refcounts

// ---- Journal --------------------------------------------------------------
// A circular byte log over [kSbJournalStart, +kSbJournalBlocks) blocks. A
// "log offset" grows forever; its place on the device is
// journal_start_byte + log_offset % journal_bytes.
constexpr uint32_t kRecordMagic = 0x4345524au;  // "JREC"
constexpr uint32_t kRecordHeaderBytes = 32;
constexpr uint32_t kRecordAlign = 8;  // records start at multiples of 8
constexpr uint32_t kRecMagic = 0;     // u32
// Record crcs are seeded with Crc32c(uuid) extended by the u64 journal epoch
// (the generation of the checkpoint written when the volume was mounted), so
// records an earlier mount left past the end of the log never validate.
constexpr uint32_t kRecCrc = 4;  // u32 crc of header [8,32) + payload, seeded
constexpr uint32_t kRecLsn = 8;  // u64, consecutive from 1
constexpr uint32_t kRecLogOffset = 16;  // u64, where this record starts
constexpr uint32_t kRecLength = 24;     // u32, payload bytes
constexpr uint32_t kRecType = 28;       // u16
constexpr uint32_t kRecFlags = 30;      // u16, kRecFlag* bits
constexpr uint32_t kMaxRecordPayload = 16u << 20;

// Record flags. The first record of every commit carries kRecFlagCommitStart.
// A commit is written only after the previous one is durable, so a valid
// commit start past a damaged record proves damage inside the log (not a torn
// end); mount then refuses and fsck reports it.
constexpr uint16_t kRecFlagCommitStart = 1u << 0;

// Record types.
constexpr uint16_t kRecordTxn = 1;  // a transaction: a sequence of ops
constexpr uint16_t kRecordPad = 2;  // fills a commit to its last block's end

// Ops inside a kRecordTxn: {u16 op, u16 zero, u32 bytes, bytes}, unpadded.
constexpr uint32_t kOpHeaderBytes = 8;
constexpr uint16_t kOpInodeSet = 1;   // an inode record (create or update)
constexpr uint16_t kOpInodeFree = 2;  // {u64 ino}
constexpr uint16_t kOpDirentAdd =
    3;  // {u64 dir, u64 cookie, u64 ino, u16 len, name}
constexpr uint16_t kOpDirentRemove = 4;  // {u64 dir, u16 len, name}
constexpr uint16_t kOpOrphanAdd = 5;     // {u64 ino}
constexpr uint16_t kOpOrphanRemove = 6;  // {u64 ino}
// Ops 32..127 belong to extent maps, the allocator and refcounts (fs core).
constexpr uint16_t kOpFirstCoreOp = 32;
constexpr uint16_t kOpLastCoreOp = 127;

// Inode record (kOpInodeSet payload and namespace section), 72 bytes.
constexpr uint32_t kInodeRecordBytes = 72;
// {u64 ino, u64 generation, u32 mode, u32 nlink, u32 uid, u32 gid,
//  u64 size, i64 atime_ns, i64 mtime_ns, i64 ctime_ns, u64 flags}

// Readdir cookies 1 and 2 are left for "." and ".."; entries start at 3.
constexpr uint64_t kFirstDirCookie = 3;

}  // namespace format
}  // namespace fs

#endif  // IOMAPD_FS_FORMAT_H_
