// NamespaceVolume: the namespace mounted over a MetaStore, with its
// checkpoint section wiring. It is what iomapd-mkfs writes, what
// iomapd-fsck checks and what the namespace crash tests mount; the fs
// integration layer extends the same pattern with the extent maps,
// allocator and refcount sections (format::kSectionExtents..Refcount).
//
// Thread-safety: as Namespace and MetaStore.
#ifndef IOMAPD_FS_NS_VOLUME_H_
#define IOMAPD_FS_NS_VOLUME_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "block/device.h"
#include "fs/dir.h"
#include "fs/meta_store.h"
#include "fs/superblock.h"

namespace fs {

struct NamespaceVolume {
  // Destroyed after ns (members go in reverse order): the journal outlives
  // the namespace that appends to it.
  std::unique_ptr<MetaStore> store;
  std::unique_ptr<Namespace> ns;

  // Writes a checkpoint of the namespace and frees the journal before it.
  absl::Status Checkpoint();
  // Checkpoints when the journal is more than half full. Appends fail with
  // -ENOSPC once it is full, so the owner calls this regularly (after
  // operations, or from a background thread).
  absl::Status MaybeCheckpoint();
};

// Formats `dev`: superblock, an initial checkpoint with the root directory
// (mode 0755), an empty journal.
absl::StatusOr<Superblock> FormatNamespaceVolume(block::Device& dev,
                                                 const LayoutOptions& layout);

// Mounts: load, replay, check the namespace invariants (DATA_LOSS naming
// the first problem; skipped with options.allow_damaged_log, as fsck does),
// then (read-write) free orphans left by a crash.
// `ns_options` carries the hooks of other layers (on_free, apply_core_op);
// its max_inodes is replaced by the superblock's.
absl::StatusOr<NamespaceVolume> MountNamespaceVolume(
    block::Device& dev, const MetaStoreOptions& options,
    const NamespaceOptions& ns_options = NamespaceOptions());

// The checkpoint payload of a namespace (a one-section payload).
std::string NamespacePayload(const Namespace& ns);

}  // namespace fs

#endif  // IOMAPD_FS_NS_VOLUME_H_
