#include "fs/ns_volume.h"

#include "absl/strings/str_cat.h"
#include "base/errno.h"
#include "fs/format.h"

namespace fs {

std::string NamespacePayload(const Namespace& ns) {
  std::string section, payload;
  ns.Serialize(&section);
  AppendSection(&payload, format::kSectionNamespace, section);
  return payload;
}

absl::StatusOr<Superblock> FormatNamespaceVolume(block::Device& dev,
                                                 const LayoutOptions& layout) {
  absl::StatusOr<Superblock> sb = MakeLayout(layout);
  if (!sb.ok()) return sb.status();
  NamespaceOptions nso;
  nso.max_inodes = sb->max_inodes;
  Namespace ns(nso, nullptr);
  if (int err = ns.InitRoot(0755); err < 0)
    return base::ErrnoStatus(err, "mkfs: creating the root directory failed");
  if (absl::Status s = MetaStore::Format(dev, *sb, NamespacePayload(ns));
      !s.ok())
    return s;
  return sb;
}

absl::StatusOr<NamespaceVolume> MountNamespaceVolume(
    block::Device& dev, const MetaStoreOptions& options,
    const NamespaceOptions& ns_options) {
  NamespaceVolume vol;
  Namespace* ns = nullptr;
  MetaCallbacks cb;
  cb.load = [&](absl::string_view payload) -> absl::Status {
    absl::StatusOr<std::map<uint32_t, absl::string_view>> sections =
        SplitSections(payload);
    if (!sections.ok()) return sections.status();
    auto it = sections->find(format::kSectionNamespace);
    if (it == sections->end())
      return absl::DataLossError("checkpoint: no namespace section");
    return ns->Load(it->second);
  };
  cb.replay = [&](uint64_t, absl::string_view txn) {
    return ns->ApplyTxn(txn);
  };
  cb.snapshot = [&](std::string* payload) { *payload = NamespacePayload(*ns); };
  // The inode limit is in the superblock, read by Mount; read it first.
  absl::StatusOr<Superblock> sb = ReadSuperblock(dev, options.read_only);
  if (!sb.ok()) return sb.status();
  NamespaceOptions nso = ns_options;
  nso.max_inodes = sb->max_inodes;
  vol.ns = std::make_unique<Namespace>(nso, nullptr);
  ns = vol.ns.get();
  absl::StatusOr<std::unique_ptr<MetaStore>> store =
      MetaStore::Mount(dev, options, cb);
  if (!store.ok()) return store.status();
  vol.store = std::move(*store);
  if (!options.allow_damaged_log) {
    std::vector<std::string> problems;
    vol.ns->Check(&problems);
    if (!problems.empty())
      return absl::DataLossError(absl::StrCat(
          "namespace is inconsistent (", problems.size(),
          " problems, first: ", problems[0], "); run iomapd-fsck"));
  }
  if (options.read_only) return vol;
  vol.ns->SetJournal(vol.store->journal());
  int freed = vol.ns->FreeOrphans();
  if (freed < 0)
    return base::ErrnoStatus(freed, "mount: freeing orphans failed");
  return vol;
}

absl::Status NamespaceVolume::Checkpoint() {
  std::string section, payload;
  JournalPosition covered = ns->Snapshot(&section);
  AppendSection(&payload, format::kSectionNamespace, section);
  return store->Checkpoint(payload, covered);
}

absl::Status NamespaceVolume::MaybeCheckpoint() {
  Journal* j = store->journal();
  if (j == nullptr || j->used_bytes() * 2 < j->capacity_bytes())
    return absl::OkStatus();
  return Checkpoint();
}

}  // namespace fs
