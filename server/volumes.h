// server::VolumeSet: the volumes one iomapd serves, and the files clients
// have open on them.
//
// Each volume is a device (image file or block device) with a mounted
// fs::Volume, known to clients by name. Wire handles (volume name, inode,
// generation) resolve here to the fs::Volume and fs::FileHandle; a name
// nobody serves is ESTALE, as a handle from another server would be.
//
// Open files live in a table keyed by a server-chosen `open_id` (never 0,
// never reused while the server runs). Operations hold a shared reference
// to the entry while they run, so a concurrent Close only unpublishes the
// id: the fs::OpenFile closes when the last operation using it returns.
//
// Thread-safety: thread-safe.
#ifndef IOMAPD_SERVER_VOLUMES_H_
#define IOMAPD_SERVER_VOLUMES_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "base/mutex.h"
#include "block/device.h"
#include "fs/file.h"
#include "fs/volume.h"
#include "proto/iomapd.pb.h"

namespace server {

namespace v1 = ::iomapd::v1;

// A file open for a client. `file` is closed when the entry is destroyed.
struct OpenEntry {
  ~OpenEntry();
  std::string volume;
  fs::Volume* vol = nullptr;
  std::unique_ptr<fs::OpenFile> file;
  uint32_t flags = 0;  // v1::OpenFlag bits
};

// What a wire handle names: the volume and the fs handle in it.
struct Resolved {
  fs::Volume* vol = nullptr;
  fs::FileHandle fh;
};

struct VolumeSpec {
  std::string name;
  std::string path;  // image file or block device, formatted by iomapd-mkfs
  // fsdax: the image is mapped MAP_SHARED (block::OpenDaxDevice) and file
  // data is read and written through the mapping, never the page cache
  // (fs::VolumeOptions::dax). Needs an image file that can be mapped.
  bool dax = false;
};

struct VolumeSetOptions {
  block::OpenOptions device;
  fs::VolumeOptions volume;
};

class VolumeSet {
 public:
  explicit VolumeSet(const VolumeSetOptions& options);
  // Closes what is open and unmounts (errors are logged to stderr).
  ~VolumeSet();
  VolumeSet(const VolumeSet&) = delete;
  VolumeSet& operator=(const VolumeSet&) = delete;

  // Opens the device and mounts it. Creates nothing: a missing path is
  // NOT_FOUND, an unformatted or damaged one the mount's error. Names are
  // unique, 1..64 characters of [A-Za-z0-9._-].
  absl::Status Add(const VolumeSpec& spec);
  // Closes every open file (writing back) and unmounts every volume. The
  // first error is returned; every volume is still unmounted.
  absl::Status CloseAll();

  std::vector<std::string> Names() const;
  // Null when no volume has that name.
  fs::Volume* Find(const std::string& name) const;

  // 0, or -ESTALE for a volume nobody serves (message in *why). Whether
  // the inode still exists with that generation is fs's to say (-ESTALE
  // from the operation).
  int Resolve(const v1::FileHandle& h, Resolved* out, std::string* why) const;
  v1::FileHandle WireHandle(const std::string& volume, uint64_t ino,
                            uint64_t generation) const;

  // ---- open files
  uint64_t Publish(std::shared_ptr<OpenEntry> entry);
  // The entry for open_id if it belongs to handle `h`; null (with -EBADF
  // in *err) otherwise.
  std::shared_ptr<OpenEntry> Get(uint64_t open_id, const v1::FileHandle& h,
                                 int* err) const;
  // Unpublishes open_id. -EBADF when unknown or not `h`'s.
  int Unpublish(uint64_t open_id, const v1::FileHandle& h);
  size_t OpenCount() const;

 private:
  struct Mounted {
    std::string path;
    std::unique_ptr<block::Device> dev;
    std::unique_ptr<fs::Volume> vol;
  };
  static bool ValidName(const std::string& name);

  const VolumeSetOptions options_;
  std::map<std::string, Mounted> volumes_;  // written only before serving

  mutable base::Mutex open_mu_{base::LockRank::kLeaf};
  uint64_t next_open_id_ ABSL_GUARDED_BY(open_mu_) = 1;
  absl::flat_hash_map<uint64_t, std::shared_ptr<OpenEntry>> open_
      ABSL_GUARDED_BY(open_mu_);
};

}  // namespace server

#endif  // IOMAPD_SERVER_VOLUMES_H_
