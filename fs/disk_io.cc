#include "fs/disk_io.h"

#include <algorithm>
#include <cstring>

namespace fs {
namespace {

uint64_t ChunkLimit(block::Device& dev) {
  uint64_t lbs = dev.limits().logical_block_size;
  uint64_t max = std::max<uint64_t>(dev.limits().max_io_bytes, lbs);
  return max / lbs * lbs;
}

}  // namespace

int ReadDisk(block::Device& dev, uint64_t offset, uint64_t len,
             std::string* out) {
  out->resize(len);
  const uint64_t chunk = ChunkLimit(dev);
  block::AlignedBuffer buf =
      block::AllocAligned(std::min(chunk, std::max<uint64_t>(len, 1)));
  for (uint64_t done = 0; done < len;) {
    uint64_t n = std::min(chunk, len - done);
    block::Bio bio;
    bio.op = block::BioOp::kRead;
    bio.offset = offset + done;
    bio.AddSegment(buf.get(), n);
    int64_t r = block::SubmitAndWait(dev, &bio);
    if (r < 0) return static_cast<int>(r);
    std::memcpy(&(*out)[done], buf.get(), n);
    done += n;
  }
  return 0;
}

int WriteDisk(block::Device& dev, uint64_t offset, absl::string_view bytes,
              uint32_t bio_flags) {
  const uint64_t chunk = ChunkLimit(dev);
  block::AlignedBuffer buf = block::AllocAligned(
      std::min<uint64_t>(chunk, std::max<size_t>(bytes.size(), 1)));
  for (uint64_t done = 0; done < bytes.size();) {
    uint64_t n = std::min<uint64_t>(chunk, bytes.size() - done);
    std::memcpy(buf.get(), bytes.data() + done, n);
    block::Bio bio;
    bio.op = block::BioOp::kWrite;
    bio.flags = bio_flags | block::kBioSync;
    bio.offset = offset + done;
    bio.AddSegment(buf.get(), n);
    int64_t r = block::SubmitAndWait(dev, &bio);
    if (r < 0) return static_cast<int>(r);
    done += n;
  }
  return 0;
}

int FlushDisk(block::Device& dev) {
  block::Bio bio;
  bio.op = block::BioOp::kFlush;
  int64_t r = block::SubmitAndWait(dev, &bio);
  return r < 0 ? static_cast<int>(r) : 0;
}

}  // namespace fs
