#include "fs/superblock.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "base/crc32c.h"
#include "base/errno.h"
#include "fs/codec.h"
#include "fs/disk_io.h"
#include "fs/format.h"

namespace fs {
namespace {

using namespace format;  // NOLINT: the field offsets read better unqualified

bool IsPow2(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

bool ValidBlockSize(uint32_t bs) {
  return IsPow2(bs) && bs >= kMinBlockSize && bs <= kMaxBlockSize;
}

uint64_t Clamp(uint64_t v, uint64_t lo, uint64_t hi) {
  return std::min(std::max(v, lo), hi);
}

void RandomUuid(std::array<uint8_t, 16>* uuid) {
  std::random_device rd;
  for (auto& b : *uuid) b = static_cast<uint8_t>(rd());
  (*uuid)[6] = ((*uuid)[6] & 0x0f) | 0x40;  // version 4
  (*uuid)[8] = ((*uuid)[8] & 0x3f) | 0x80;  // RFC 4122 variant
}

absl::Status CheckGeometry(const Superblock& sb) {
  if (!ValidBlockSize(sb.block_size))
    return absl::InvalidArgumentError(
        absl::StrCat("superblock: bad block size ", sb.block_size,
                     " (must be a power of two from 512 to 65536)"));
  const uint64_t cp_end = sb.checkpoint_start + 2 * sb.checkpoint_blocks;
  const uint64_t j_end = sb.journal_start + sb.journal_blocks;
  if (sb.checkpoint_start < 1 || sb.checkpoint_blocks == 0 ||
      sb.journal_start < cp_end || sb.journal_blocks == 0 ||
      sb.data_start < j_end || sb.data_start >= sb.block_count)
    return absl::InvalidArgumentError(absl::StrCat(
        "superblock: metadata areas do not fit: checkpoint ",
        sb.checkpoint_start, "+2x", sb.checkpoint_blocks, ", journal ",
        sb.journal_start, "+", sb.journal_blocks, ", data start ",
        sb.data_start, ", blocks ", sb.block_count));
  if (sb.max_inodes == 0 || sb.root_ino != kRootIno)
    return absl::InvalidArgumentError(
        absl::StrCat("superblock: bad inode limits: max_inodes ", sb.max_inodes,
                     " root ", sb.root_ino));
  return absl::OkStatus();
}

absl::Status CheckFeatures(const Superblock& sb, bool read_only) {
  uint64_t incompat = sb.feat_incompat & ~kFeatIncompatSupported;
  if (incompat != 0)
    return absl::FailedPreconditionError(
        absl::StrCat("superblock: unsupported incompatible features 0x",
                     absl::Hex(incompat)));
  uint64_t ro = sb.feat_ro_compat & ~kFeatRoCompatSupported;
  if (ro != 0 && !read_only)
    return absl::FailedPreconditionError(
        absl::StrCat("superblock: unsupported read-only-compatible features 0x",
                     absl::Hex(ro), "; mount read-only"));
  return absl::OkStatus();
}

}  // namespace

uint32_t Superblock::crc_seed() const {
  return base::Crc32c(uuid.data(), uuid.size());
}

absl::StatusOr<Superblock> MakeLayout(const LayoutOptions& o) {
  Superblock sb;
  sb.version = kFormatVersion;
  sb.block_size = o.block_size;
  if (!ValidBlockSize(o.block_size))
    return absl::InvalidArgumentError(
        absl::StrCat("mkfs: bad block size ", o.block_size,
                     " (must be a power of two from 512 to 65536)"));
  sb.block_count = o.device_bytes / o.block_size;
  sb.uuid = o.uuid;
  if (std::all_of(sb.uuid.begin(), sb.uuid.end(),
                  [](uint8_t b) { return b == 0; }))
    RandomUuid(&sb.uuid);
  sb.checkpoint_start = 1;
  const uint64_t min_cp = std::max<uint64_t>(1, (64 * 1024) / o.block_size);
  sb.checkpoint_blocks = o.checkpoint_blocks
                             ? o.checkpoint_blocks
                             : std::max(min_cp, sb.block_count / 32);
  sb.journal_start = sb.checkpoint_start + 2 * sb.checkpoint_blocks;
  sb.journal_blocks = o.journal_blocks ? o.journal_blocks
                                       : Clamp(sb.block_count / 16, 64, 16384);
  sb.data_start = sb.journal_start + sb.journal_blocks;
  sb.max_inodes =
      o.max_inodes ? o.max_inodes : Clamp(sb.block_count / 4, 64, 1u << 24);
  sb.root_ino = kRootIno;
  if (sb.data_start + 16 > sb.block_count)
    return absl::InvalidArgumentError(
        absl::StrCat("mkfs: device of ", o.device_bytes,
                     " bytes is too small: metadata needs ", sb.data_start,
                     " blocks of ", o.block_size, " plus 16 data blocks"));
  return sb;
}

std::string EncodeSuperblock(const Superblock& sb) {
  std::string out(kSuperblockBytes, '\0');
  auto* p = reinterpret_cast<uint8_t*>(&out[0]);
  Put64(p + kSbMagic, kSuperblockMagic);
  Put32(p + kSbVersion, sb.version);
  Put32(p + kSbBlockSize, sb.block_size);
  std::copy(sb.uuid.begin(), sb.uuid.end(), p + kSbUuid);
  Put64(p + kSbBlockCount, sb.block_count);
  Put64(p + kSbFeatCompat, sb.feat_compat);
  Put64(p + kSbFeatRoCompat, sb.feat_ro_compat);
  Put64(p + kSbFeatIncompat, sb.feat_incompat);
  Put64(p + kSbCheckpointStart, sb.checkpoint_start);
  Put64(p + kSbCheckpointBlocks, sb.checkpoint_blocks);
  Put64(p + kSbJournalStart, sb.journal_start);
  Put64(p + kSbJournalBlocks, sb.journal_blocks);
  Put64(p + kSbDataStart, sb.data_start);
  Put64(p + kSbMaxInodes, sb.max_inodes);
  Put64(p + kSbRootIno, sb.root_ino);
  Put64(p + kSbMkfsTimeNs, sb.mkfs_time_ns);
  Put32(p + kSbCrc, base::Crc32c(p, kSbCrc));
  return out;
}

absl::StatusOr<Superblock> DecodeSuperblock(absl::string_view bytes,
                                            bool read_only) {
  if (bytes.size() < kSuperblockBytes)
    return absl::DataLossError("superblock: short read");
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  if (Get64(p + kSbMagic) != kSuperblockMagic)
    return absl::DataLossError(
        "superblock: bad magic (not an iomapd filesystem)");
  uint32_t want = Get32(p + kSbCrc), got = base::Crc32c(p, kSbCrc);
  if (want != got)
    return absl::DataLossError(
        absl::StrCat("superblock: bad checksum (stored 0x", absl::Hex(want),
                     ", computed 0x", absl::Hex(got), ")"));
  Superblock sb;
  sb.version = Get32(p + kSbVersion);
  if (sb.version != kFormatVersion)
    return absl::FailedPreconditionError(
        absl::StrCat("superblock: unknown format version ", sb.version,
                     " (this build reads ", kFormatVersion, ")"));
  sb.block_size = Get32(p + kSbBlockSize);
  std::copy(p + kSbUuid, p + kSbUuid + 16, sb.uuid.begin());
  sb.block_count = Get64(p + kSbBlockCount);
  sb.feat_compat = Get64(p + kSbFeatCompat);
  sb.feat_ro_compat = Get64(p + kSbFeatRoCompat);
  sb.feat_incompat = Get64(p + kSbFeatIncompat);
  sb.checkpoint_start = Get64(p + kSbCheckpointStart);
  sb.checkpoint_blocks = Get64(p + kSbCheckpointBlocks);
  sb.journal_start = Get64(p + kSbJournalStart);
  sb.journal_blocks = Get64(p + kSbJournalBlocks);
  sb.data_start = Get64(p + kSbDataStart);
  sb.max_inodes = Get64(p + kSbMaxInodes);
  sb.root_ino = Get64(p + kSbRootIno);
  sb.mkfs_time_ns = Get64(p + kSbMkfsTimeNs);
  if (absl::Status s = CheckFeatures(sb, read_only); !s.ok()) return s;
  if (absl::Status s = CheckGeometry(sb); !s.ok()) return s;
  return sb;
}

absl::Status CheckDeviceFits(const Superblock& sb,
                             const block::DeviceLimits& limits) {
  if (limits.capacity_bytes < sb.bytes())
    return absl::OutOfRangeError(absl::StrCat(
        "device of ", limits.capacity_bytes, " bytes is smaller than the ",
        sb.bytes(), " bytes its superblock claims"));
  if (limits.logical_block_size > sb.block_size)
    return absl::InvalidArgumentError(
        absl::StrCat("device logical block size ", limits.logical_block_size,
                     " exceeds the filesystem block size ", sb.block_size));
  return absl::OkStatus();
}

absl::StatusOr<Superblock> ReadSuperblock(block::Device& dev, bool read_only) {
  const uint64_t len =
      std::max<uint64_t>(kSuperblockBytes, dev.limits().logical_block_size);
  if (dev.limits().capacity_bytes < len)
    return absl::OutOfRangeError("device smaller than a superblock");
  std::string bytes;
  if (int err = ReadDisk(dev, kSuperblockOffset, len, &bytes); err < 0)
    return base::ErrnoStatus(err, "superblock: read failed");
  absl::StatusOr<Superblock> sb = DecodeSuperblock(bytes, read_only);
  if (!sb.ok()) return sb;
  if (absl::Status s = CheckDeviceFits(*sb, dev.limits()); !s.ok()) return s;
  return sb;
}

absl::Status WriteSuperblock(block::Device& dev, const Superblock& sb) {
  std::string bytes = EncodeSuperblock(sb);
  bytes.resize(
      std::max<uint64_t>(kSuperblockBytes, dev.limits().logical_block_size),
      '\0');
  if (int err = WriteDisk(dev, kSuperblockOffset, bytes, block::kBioFua);
      err < 0)
    return base::ErrnoStatus(err, "superblock: write failed");
  return absl::OkStatus();
}

}  // namespace fs
