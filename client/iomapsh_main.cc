// iomapsh [-s server] [-V volume] [-frdt] [-c cmd]... [path]
//
// Connects to iomapd, optionally opens `path` on the volume, then runs the
// -c commands in order, or reads commands interactively with readline
// history. Exits 1 if any command failed (or the server is unreachable).
#include <readline/history.h>
#include <readline/readline.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/iomapsh.h"

namespace {

struct Flags {
  client::ClientOptions options;
  std::string open_flags;
  std::vector<std::string> commands;
  std::string path;
};

void Usage() {
  fprintf(stderr,
          "usage: iomapsh [-s server] [-V volume] [-dfrt] [-c cmd]... "
          "[path]\n"
          "  -s  server address (default %s)\n"
          "  -V  volume (default %s)\n"
          "  -f  create path if missing; -r read-only; -d direct I/O; -t "
          "truncate\n"
          "  -c  run a command (repeatable); without -c, interactive\n",
          client::kDefaultTarget, client::kDefaultVolume);
  exit(1);
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  int c;
  while ((c = getopt(argc, argv, "c:dfrs:tV:h")) != -1) {
    switch (c) {
      case 'c':
        f.commands.push_back(optarg);
        break;
      case 'd':
      case 'f':
      case 'r':
      case 't':
        f.open_flags += static_cast<char>(c);
        break;
      case 's':
        f.options.target = optarg;
        break;
      case 'V':
        f.options.volume = optarg;
        break;
      default:
        Usage();
    }
  }
  if (optind < argc) f.path = argv[optind++];
  if (optind < argc) Usage();
  return f;
}

bool Print(const xfs_io::Output& out) {
  fputs(out.out.c_str(), stdout);
  fflush(stdout);
  fputs(out.err.c_str(), stderr);
  return !out.failed;
}

bool Interactive(iomapsh::Shell& shell) {
  bool ok = true;
  while (!shell.quit()) {
    char* line = readline("iomapsh> ");
    if (line == nullptr) break;
    if (*line) add_history(line);
    ok &= Print(shell.Execute(line));
    free(line);
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags = ParseFlags(argc, argv);
  auto client = client::Client::Connect(flags.options);
  if (!client.ok()) {
    fprintf(stderr, "iomapsh: %s\n",
            std::string(client.status().message()).c_str());
    return 1;
  }
  iomapsh::Shell shell(client->get(), flags.options.volume);
  bool ok = true;
  if (!flags.path.empty()) {
    ok = Print(shell.OpenInitial(flags.path, flags.open_flags));
    if (!ok) return 1;
  }
  if (flags.commands.empty()) return Interactive(shell) && ok ? 0 : 1;
  for (const std::string& cmd : flags.commands) {
    ok &= Print(shell.Execute(cmd));
    if (shell.quit()) break;
  }
  return ok ? 0 : 1;
}
