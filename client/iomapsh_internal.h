// Pieces shared by iomapsh's command files; not part of the library API.
#ifndef IOMAPD_CLIENT_IOMAPSH_INTERNAL_H_
#define IOMAPD_CLIENT_IOMAPSH_INTERNAL_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/iomapsh.h"

namespace iomapsh {

using Args = std::vector<std::string>;
using CommandFn = xfs_io::Output (*)(Shell& shell, const Args& argv);

struct Shell::Command {
  const char* name;
  const char* altname;  // or nullptr
  int argmin;
  int argmax;  // -1: unbounded
  bool needs_file;
  const char* args;
  const char* oneline;
  const char* help;
  CommandFn fn;
  // Runs once per -c command instead of once per open file (xfs_io's
  // CMD_FLAG_ONESHOT).
  bool oneshot = false;
};

// The `oneshot` value of a one-shot command's table entry.
constexpr bool kOneShot = true;

// The positive errno of a failed status.
int ErrnumOf(const absl::Status& status);

// An Output holding perror(what) for `status`, marked failed.
xfs_io::Output Fail(const std::string& what, const absl::Status& status);

// Usage line of the command named argv[0].
xfs_io::Output UsageOf(const Args& argv);

// The command tables of each file, concatenated by iomapsh.cc.
std::vector<Shell::Command> IoCommands();
std::vector<Shell::Command> MapCommands();
std::vector<Shell::Command> FileCommands();
std::vector<Shell::Command> MmapCommands();

// Accessors the command functions use (friends of Shell).
struct Commands {
  static client::Client& Client(Shell& s) { return *s.client_; }
  static const std::string& Volume(Shell& s) { return s.volume_; }
  static ShellFile* Current(Shell& s) { return s.current(); }
  static std::vector<ShellFile>& Files(Shell& s) { return s.files_; }
  static size_t& CurrentIndex(Shell& s) { return s.current_; }
  static std::vector<Mapping>& Maps(Shell& s) { return s.maps_; }
  static size_t& CurrentMap(Shell& s) { return s.current_map_; }
  static void SetQuit(Shell& s) { s.quit_ = true; }
  static timeval Now(Shell& s) { return s.clock_(); }
  static timeval Elapsed(Shell& s, const timeval& t) { return s.Elapsed(t); }
};

// Block/sector units for cvtnum (the volume's block size when known).
xfs_io::NumUnits Units(Shell& shell);

}  // namespace iomapsh

#endif  // IOMAPD_CLIENT_IOMAPSH_INTERNAL_H_
