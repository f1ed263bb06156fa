// xfs_io(8) command-line parsing: GNU getopt over one command's words, and
// the argument parsers of the mapping commands (seek, fiemap, bmap) whose
// messages must match xfs_io's. iomapsh parses its other commands with
// GetOpts too.
//
// Thread-safety: pure functions.
#ifndef IOMAPD_CLIENT_XFS_IO_PARSE_H_
#define IOMAPD_CLIENT_XFS_IO_PARSE_H_

#include <string>
#include <utility>
#include <vector>

#include "client/xfs_io_format.h"

namespace xfs_io {

// Options and operands of one command, as GNU getopt(3) sees them:
// clustered flags ("-vp"), arguments attached or separate ("-S0xab",
// "-S 0xab"), options after operands (argv permutation), "--" ends options.
struct ParsedOpts {
  std::vector<std::pair<char, std::string>> opts;  // in order given
  std::vector<std::string> operands;
};

// Parses argv[1..] (argv[0] is the command name) against `optstring`
// ("ab:c": b takes an argument). On an unknown option or a missing argument
// returns false and sets *error to getopt's message
// ("iomapsh: invalid option -- 'x'\n").
bool GetOpts(const std::vector<std::string>& argv, const std::string& optstring,
             ParsedOpts* parsed, std::string* error);

// Block and sector size cvtnum() uses in iomapsh (xfs_io asks the open
// file's filesystem; iomapd volumes answer 4096/512 unless told otherwise).
struct NumUnits {
  int64_t block_size = 4096;
  int64_t sector_size = 512;
};

// `seek -a | -d | -h [-r] [-s] off`. Returns false with xfs_io's message in
// *out (usage on stdout) when the words are not a valid seek command.
bool ParseSeek(const std::vector<std::string>& argv, const NumUnits& units,
               SeekArgs* args, Output* out);

// `fiemap [-alv] [-n nx] [offset [len]]`.
bool ParseFiemap(const std::vector<std::string>& argv, const NumUnits& units,
                 FiemapArgs* args, Output* out);

// `bmap [-adelpv] [-n nx]` (-a, -c and -e are refused with a message).
bool ParseBmap(const std::vector<std::string>& argv, BmapArgs* args,
               Output* out);

}  // namespace xfs_io

#endif  // IOMAPD_CLIENT_XFS_IO_PARSE_H_
