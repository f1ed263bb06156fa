// iomapd-fsck: checks an iomapd filesystem without changing it.
//
//   iomapd-fsck [--verbose] PATH
//
// Prints one line per problem and exits 1 if there is any, 0 when clean,
// 2 when PATH cannot be opened.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "block/device.h"
#include "fs/fsck.h"
#include "fs/volume.h"

ABSL_FLAG(bool, verbose, false, "also print informational notes");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("iomapd-fsck [--verbose] PATH");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::fprintf(stderr, "usage: iomapd-fsck [--verbose] PATH\n");
    return 2;
  }
  block::OpenOptions options;
  options.read_only = true;
  auto dev = block::OpenDevice(args[1], options);
  if (!dev.ok()) {
    std::fprintf(stderr, "iomapd-fsck: %s\n", dev.status().ToString().c_str());
    return 2;
  }
  fs::FsckResult r = fs::FsckVolume(**dev);
  if (absl::GetFlag(FLAGS_verbose))
    for (const std::string& n : r.notes) std::printf("note: %s\n", n.c_str());
  for (const std::string& p : r.problems)
    std::printf("PROBLEM: %s\n", p.c_str());
  std::printf("%s: %s (%zu problems)\n", args[1],
              r.clean() ? "clean" : "NOT CLEAN", r.problems.size());
  return r.clean() ? 0 : 1;
}
