// fsck: checks a volume without changing it (iomapd-fsck is its front end).
//
// Checks the superblock, both checkpoint slots, the journal (records replay
// cleanly; no valid record lies past a damaged one) and the namespace
// invariants (Namespace::Check: entries point at live inodes, link counts,
// reachability, orphans). Every problem is a line naming what is wrong.
//
// Thread-safety: a free function; the device must not be mounted elsewhere.
#ifndef IOMAPD_FS_FSCK_H_
#define IOMAPD_FS_FSCK_H_

#include <string>
#include <vector>

#include "block/device.h"

namespace fs {

struct FsckResult {
  std::vector<std::string> problems;  // empty: clean
  std::vector<std::string> notes;     // informational (replay, orphans...)
  bool clean() const { return problems.empty(); }
};

FsckResult Fsck(block::Device& dev);

}  // namespace fs

#endif  // IOMAPD_FS_FSCK_H_
