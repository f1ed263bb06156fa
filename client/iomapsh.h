// iomapsh: xfs_io(8)'s command language over the iomapd client library.
//
// A Shell keeps xfs_io's state (a table of open files with a current one,
// memory "mappings" of the current file) and executes one command line at a
// time, returning what xfs_io would print on stdout and stderr and whether
// it would set its exit code. The formatting is client/xfs_io_format.h; this
// class parses options, calls the server and feeds the formatter.
//
// Thread-safety: not thread-safe; one Shell per thread.
#ifndef IOMAPD_CLIENT_IOMAPSH_H_
#define IOMAPD_CLIENT_IOMAPSH_H_

#include <sys/time.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/xfs_io_format.h"
#include "client/xfs_io_parse.h"

namespace iomapsh {

namespace v1 = ::iomapd::v1;

// One file in the table (xfs_io's fileio_t).
struct ShellFile {
  std::string name;  // as the user typed it
  client::OpenFile file;
  bool read_only = false;
  bool sync = false;
  bool direct = false;
  bool append = false;
};

// A "mapping" made by mmap: mwrite/mread act on it through the MapWrite
// and Read RPCs, on the file that was current at mmap time (as a real
// mapping stays with its file whichever file is current later).
struct Mapping {
  std::string name;       // the mapped file's name, for the listing
  client::OpenFile file;  // the mapped file
  int64_t offset = 0;
  int64_t length = 0;
  bool read = true;
  bool write = true;
};

class Shell {
 public:
  // `client` must outlive the Shell. `volume` "" means the client's default.
  Shell(client::Client* client, std::string volume);

  // Runs one line (words separated by spaces, as xfs_io splits them) once,
  // on the current file: what xfs_io does with an interactive command and
  // with -C.
  xfs_io::Output Execute(const std::string& line);

  // Runs one line as xfs_io runs a -c command: a command that works on a
  // file runs on every open file in table order, each in turn becoming the
  // current file (the last one stays current), and the outputs are
  // concatenated; with no open file it runs on none and prints nothing.
  // One-shot commands (open, close, file, help, quit, reflink, dedupe,
  // mmap and the namespace commands) run once, as Execute.
  xfs_io::Output ExecuteOnEachFile(const std::string& line);

  // Opens `path` as `open` would with the option letters in `flags`
  // ("f", "r", "d", "s", "t", "a").
  xfs_io::Output OpenInitial(const std::string& path, const std::string& flags);

  bool quit() const { return quit_; }

  // The clock pread/pwrite reports use; tests replace it.
  void set_clock(std::function<timeval()> clock) { clock_ = std::move(clock); }

  // Every command's name, for completion and `help`.
  std::vector<std::string> CommandNames() const;

  // The volume's block size (StatFs, asked once; 4096 if that fails): the
  // unit of cvtnum's "b" suffix and pread/pwrite's default buffer size, as
  // xfs_io uses the filesystem's block size.
  int64_t BlockSize();

  struct Command;  // the table (iomapsh.cc)

 private:
  friend struct Commands;

  ShellFile* current() {
    return current_ < files_.size() ? &files_[current_] : nullptr;
  }
  xfs_io::Output Dispatch(const Command& cmd,
                          const std::vector<std::string>& argv);
  timeval Elapsed(const timeval& start) const;

  client::Client* const client_;
  const std::string volume_;
  std::vector<ShellFile> files_;
  size_t current_ = 0;
  std::vector<Mapping> maps_;
  size_t current_map_ = 0;
  bool quit_ = false;
  int64_t block_size_ = 0;  // 0 until BlockSize() asked the server
  std::function<timeval()> clock_;
};

}  // namespace iomapsh

#endif  // IOMAPD_CLIENT_IOMAPSH_H_
