#include "fs/fsck.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "fs/checkpoint.h"
#include "fs/disk_io.h"
#include "fs/journal.h"
#include "fs/ns_volume.h"
#include "fs/superblock.h"

namespace fs {
namespace {

void CheckSlots(block::Device& dev, const Superblock& sb, FsckResult* r) {
  for (int slot = 0; slot < 2; ++slot) {
    std::string payload, head;
    SlotState st = ReadCheckpointSlot(dev, sb, slot, &payload);
    const char* name = slot == 0 ? "A" : "B";
    if (st.valid) {
      r->notes.push_back(absl::StrCat("checkpoint slot ", name, ": generation ",
                                      st.header.generation, ", ",
                                      payload.size(), " bytes"));
      continue;
    }
    ReadDisk(dev, sb.checkpoint_slot_offset(slot), sb.block_size, &head);
    if (std::all_of(head.begin(), head.end(), [](char c) { return c == 0; })) {
      r->notes.push_back(absl::StrCat("checkpoint slot ", name, ": empty"));
    } else {
      r->problems.push_back(
          absl::StrCat("checkpoint slot ", name, ": ", st.problem));
    }
  }
}

void CheckJournal(block::Device& dev, const Superblock& sb,
                  const MountInfo& info, FsckResult* r) {
  r->notes.push_back(absl::StrCat(
      "journal: replayed ", info.replayed_records, " records, ended at lsn ",
      info.replay_end.lsn, " (", info.replay_stop_reason, ")"));
  absl::StatusOr<uint64_t> later =
      FindRecordPastEnd(dev, sb, info.replay_epoch, info.replay_end);
  if (!later.ok()) {
    r->problems.push_back(absl::StrCat("journal: ", later.status().ToString()));
  } else if (*later != 0) {
    r->problems.push_back(
        absl::StrCat("journal: record at lsn ", info.replay_end.lsn,
                     " is damaged (", info.replay_stop_reason,
                     ") but record lsn ", *later, " after it is valid"));
  }
}

}  // namespace

FsckResult Fsck(block::Device& dev) {
  FsckResult r;
  absl::StatusOr<Superblock> sb = ReadSuperblock(dev, /*read_only=*/true);
  if (!sb.ok()) {
    r.problems.push_back(sb.status().ToString());
    return r;
  }
  CheckSlots(dev, *sb, &r);
  MetaStoreOptions options;
  options.read_only = true;
  options.allow_damaged_log = true;
  absl::StatusOr<NamespaceVolume> vol = MountNamespaceVolume(dev, options);
  if (!vol.ok()) {
    r.problems.push_back(vol.status().ToString());
    return r;
  }
  CheckJournal(dev, *sb, vol->store->mount_info(), &r);
  vol->ns->Check(&r.problems);
  r.notes.push_back(absl::StrCat("namespace: ", vol->ns->inode_count(),
                                 " inodes, ", vol->ns->orphans().size(),
                                 " orphans"));
  return r;
}

}  // namespace fs
