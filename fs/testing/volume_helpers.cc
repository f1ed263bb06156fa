#include "fs/testing/volume_helpers.h"

#include <random>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace fs {
namespace testing {

std::unique_ptr<Volume> FormatAndMount(MemDevice* dev, uint32_t bs) {
  LayoutOptions layout;
  layout.block_size = bs;
  layout.device_bytes = dev->limits().capacity_bytes;
  absl::StatusOr<Superblock> sb = Volume::Format(*dev, layout);
  EXPECT_TRUE(sb.ok()) << sb.status();
  return Remount(dev);
}

std::unique_ptr<Volume> Remount(MemDevice* dev) {
  absl::StatusOr<std::unique_ptr<Volume>> vol = Volume::Mount(*dev);
  EXPECT_TRUE(vol.ok()) << vol.status();
  return vol.ok() ? std::move(*vol) : nullptr;
}

FileHandle CreateFile(Volume* vol, const std::string& name) {
  InodeAttr a;
  EXPECT_EQ(vol->Create(vol->root(), name, 0644, true, &a), 0);
  return FileHandle{a.ino, a.generation};
}

std::unique_ptr<OpenFile> OpenOrDie(Volume* vol, FileHandle h) {
  std::unique_ptr<OpenFile> f;
  EXPECT_EQ(vol->Open(h, &f), 0);
  return f;
}

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (char& c : s) c = static_cast<char>(rng() | 1);
  return s;
}

std::string ReadAll(OpenFile* f, int64_t pos, size_t len) {
  std::string out(len, '\0');
  int64_t r = f->Read(pos, len, reinterpret_cast<uint8_t*>(&out[0]));
  EXPECT_GE(r, 0);
  out.resize(r < 0 ? 0 : static_cast<size_t>(r));
  return out;
}

void ExpectClean(Volume* vol) {
  std::vector<std::string> problems;
  vol->CheckLive(&problems);
  EXPECT_TRUE(problems.empty()) << problems[0];
}

}  // namespace testing
}  // namespace fs
