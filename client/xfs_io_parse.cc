#include "client/xfs_io_parse.h"

#include <cstdlib>

namespace xfs_io {
namespace {

// What `c` is in `optstring`: 0 unknown, 1 a flag, 2 takes an argument.
int OptKind(const std::string& optstring, char c) {
  if (c == ':') return 0;
  size_t pos = optstring.find(c);
  if (pos == std::string::npos) return 0;
  return (pos + 1 < optstring.size() && optstring[pos + 1] == ':') ? 2 : 1;
}

// Parses one "-abc" word starting at argv[*i]; may consume argv[*i + 1].
bool ParseCluster(const std::vector<std::string>& argv,
                  const std::string& optstring, size_t* i, ParsedOpts* parsed,
                  std::string* error) {
  const std::string& word = argv[*i];
  for (size_t j = 1; j < word.size(); j++) {
    const char c = word[j];
    const int kind = OptKind(optstring, c);
    if (kind == 0) {
      *error = argv[0] + ": invalid option -- '" + std::string(1, c) + "'\n";
      return false;
    }
    if (kind == 1) {
      parsed->opts.emplace_back(c, "");
      continue;
    }
    if (j + 1 < word.size()) {
      parsed->opts.emplace_back(c, word.substr(j + 1));
    } else if (*i + 1 < argv.size()) {
      parsed->opts.emplace_back(c, argv[++*i]);
    } else {
      *error = argv[0] + ": option requires an argument -- '" +
               std::string(1, c) + "'\n";
      return false;
    }
    return true;
  }
  return true;
}

void PrintUsage(const char* name, const char* args, const char* oneline,
                Output* out) {
  out->out += Usage(name, args, oneline);
}

constexpr char kSeekArgs[] = "-a | -d | -h [-r] off";
constexpr char kSeekLine[] = "locate the next data and/or hole";
constexpr char kFiemapArgs[] = "[-alv] [-n nx] [offset [len]]";
constexpr char kFiemapLine[] = "print block mapping for a file";
constexpr char kBmapArgs[] = "[-acelpv] [-n nx]";
constexpr char kBmapLine[] = "print block mapping for an XFS file";

}  // namespace

bool GetOpts(const std::vector<std::string>& argv, const std::string& optstring,
             ParsedOpts* parsed, std::string* error) {
  *parsed = ParsedOpts();
  bool options_done = false;
  for (size_t i = 1; i < argv.size(); i++) {
    const std::string& word = argv[i];
    if (options_done || word.size() < 2 || word[0] != '-') {
      parsed->operands.push_back(word);
    } else if (word == "--") {
      options_done = true;
    } else if (!ParseCluster(argv, optstring, &i, parsed, error)) {
      return false;
    }
  }
  return true;
}

bool ParseSeek(const std::vector<std::string>& argv, const NumUnits& units,
               SeekArgs* args, Output* out) {
  ParsedOpts p;
  std::string error;
  *args = SeekArgs();
  if (!GetOpts(argv, "adhrs", &p, &error)) {
    out->err += error;
    PrintUsage("seek", kSeekArgs, kSeekLine, out);
    return false;
  }
  for (const auto& [c, value] : p.opts) {
    if (c == 'a') args->data = args->hole = true;
    if (c == 'd') args->data = true;
    if (c == 'h') args->hole = true;
    if (c == 'r') args->repeat = true;
    if (c == 's') args->show_start = true;
  }
  int64_t off = -1;
  if (p.operands.size() == 1) {
    off = CvtNum(units.block_size, units.sector_size, p.operands[0]);
  }
  if (!(args->data || args->hole) || p.operands.size() != 1 || off < 0) {
    PrintUsage("seek", kSeekArgs, kSeekLine, out);
    return false;
  }
  args->offset = off;
  return true;
}

bool ParseFiemap(const std::vector<std::string>& argv, const NumUnits& units,
                 FiemapArgs* args, Output* out) {
  ParsedOpts p;
  std::string error;
  *args = FiemapArgs();
  if (!GetOpts(argv, "aln:v", &p, &error)) {
    out->err += error;
    PrintUsage("fiemap", kFiemapArgs, kFiemapLine, out);
    return false;
  }
  for (const auto& [c, value] : p.opts) {
    if (c == 'a') args->xattr = true;
    if (c == 'l') args->lengths = true;
    if (c == 'n') args->max_extents = atoi(value.c_str());
    if (c == 'v') args->verbose = true;
  }
  if (p.operands.size() >= 1) {
    args->offset = CvtNum(units.block_size, units.sector_size, p.operands[0]);
    if (args->offset < 0) {
      out->out += "non-numeric offset argument -- " + p.operands[0] + "\n";
      return false;
    }
  }
  if (p.operands.size() >= 2) {
    args->length = CvtNum(units.block_size, units.sector_size, p.operands[1]);
    if (args->length < 0) {
      out->out += "non-numeric len argument -- " + p.operands[1] + "\n";
      return false;
    }
  }
  return true;
}

bool ParseBmap(const std::vector<std::string>& argv, BmapArgs* args,
               Output* out) {
  ParsedOpts p;
  std::string error;
  *args = BmapArgs();
  if (!GetOpts(argv, "acdeln:pv", &p, &error)) {
    out->err += error;
    PrintUsage("bmap", kBmapArgs, kBmapLine, out);
    return false;
  }
  for (const auto& [c, value] : p.opts) {
    if (c == 'a' || c == 'c' || c == 'e') {
      out->err += std::string("bmap: -") + c +
                  " (attribute, CoW or delalloc fork maps) is not available "
                  "through iomapd\n";
      out->failed = true;
      return false;
    }
    if (c == 'l') args->lengths = true;
    if (c == 'n') args->max_extents = atoi(value.c_str());
    if (c == 'p') args->prealloc = true;
    if (c == 'v') args->verbose++;
  }
  return true;
}

}  // namespace xfs_io
