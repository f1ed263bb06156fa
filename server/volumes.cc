#include "server/volumes.h"

#include <cerrno>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace server {

OpenEntry::~OpenEntry() {
  if (file == nullptr) return;
  if (int err = file->Close(); err < 0) {
    std::fprintf(stderr, "iomapd: closing inode %llu of %s: errno %d\n",
                 static_cast<unsigned long long>(file->handle().ino),
                 volume.c_str(), -err);
  }
}

VolumeSet::VolumeSet(const VolumeSetOptions& options) : options_(options) {}

VolumeSet::~VolumeSet() {
  if (absl::Status s = CloseAll(); !s.ok()) {
    std::fprintf(stderr, "iomapd: %s\n", s.ToString().c_str());
  }
}

bool VolumeSet::ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

absl::Status VolumeSet::Add(const VolumeSpec& spec) {
  if (!ValidName(spec.name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("volume name '", spec.name,
                     "': use 1..64 characters of [A-Za-z0-9._-]"));
  }
  if (volumes_.count(spec.name) != 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("volume '", spec.name, "' given twice"));
  }
  Mounted m;
  m.path = spec.path;
  fs::VolumeOptions vo = options_.volume;
  vo.dax = spec.dax;
  if (spec.dax) {
    ASSIGN_OR_RETURN(m.dev, block::OpenDaxDevice(spec.path, options_.device));
  } else {
    ASSIGN_OR_RETURN(m.dev, block::OpenDevice(spec.path, options_.device));
  }
  absl::StatusOr<std::unique_ptr<fs::Volume>> vol =
      fs::Volume::Mount(*m.dev, vo);
  if (!vol.ok()) {
    return absl::Status(
        vol.status().code(),
        absl::StrCat("mounting ", spec.path, ": ", vol.status().message()));
  }
  m.vol = std::move(*vol);
  volumes_.emplace(spec.name, std::move(m));
  return absl::OkStatus();
}

absl::Status VolumeSet::CloseAll() {
  {
    absl::flat_hash_map<uint64_t, std::shared_ptr<OpenEntry>> open;
    {
      base::MutexLock l(&open_mu_);
      open.swap(open_);
    }
    // Entries close here, unless an operation still holds one (callers
    // drain operations first).
  }
  absl::Status first;
  for (auto& [name, m] : volumes_) {
    if (m.vol == nullptr) continue;
    absl::Status s = m.vol->Unmount();
    if (!s.ok() && first.ok()) {
      first = absl::Status(s.code(), absl::StrCat("unmounting volume ", name,
                                                  ": ", s.message()));
    }
    m.vol.reset();
    m.dev.reset();
  }
  return first;
}

std::vector<std::string> VolumeSet::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, m] : volumes_) names.push_back(name);
  return names;
}

fs::Volume* VolumeSet::Find(const std::string& name) const {
  auto it = volumes_.find(name);
  return it == volumes_.end() ? nullptr : it->second.vol.get();
}

int VolumeSet::Resolve(const v1::FileHandle& h, Resolved* out,
                       std::string* why) const {
  out->vol = Find(h.volume());
  if (out->vol == nullptr) {
    *why = absl::StrCat("no volume named '", h.volume(), "' on this server");
    return -ESTALE;
  }
  out->fh = fs::FileHandle{h.inode(), h.generation()};
  return 0;
}

v1::FileHandle VolumeSet::WireHandle(const std::string& volume, uint64_t ino,
                                     uint64_t generation) const {
  v1::FileHandle h;
  h.set_volume(volume);
  h.set_inode(ino);
  h.set_generation(generation);
  return h;
}

uint64_t VolumeSet::Publish(std::shared_ptr<OpenEntry> entry) {
  base::MutexLock l(&open_mu_);
  uint64_t id = next_open_id_++;
  open_.emplace(id, std::move(entry));
  return id;
}

namespace {

bool Owns(const OpenEntry& e, const v1::FileHandle& h) {
  fs::FileHandle fh = e.file->handle();
  return e.volume == h.volume() && fh.ino == h.inode() &&
         fh.generation == h.generation();
}

}  // namespace

std::shared_ptr<OpenEntry> VolumeSet::Get(uint64_t open_id,
                                          const v1::FileHandle& h,
                                          int* err) const {
  base::MutexLock l(&open_mu_);
  auto it = open_.find(open_id);
  if (it == open_.end() || !Owns(*it->second, h)) {
    *err = -EBADF;
    return nullptr;
  }
  return it->second;
}

int VolumeSet::Unpublish(uint64_t open_id, const v1::FileHandle& h) {
  std::shared_ptr<OpenEntry> entry;  // may close here, outside open_mu_
  base::MutexLock l(&open_mu_);
  auto it = open_.find(open_id);
  if (it == open_.end() || !Owns(*it->second, h)) return -EBADF;
  entry = std::move(it->second);
  open_.erase(it);
  return 0;
}

size_t VolumeSet::OpenCount() const {
  base::MutexLock l(&open_mu_);
  return open_.size();
}

}  // namespace server
