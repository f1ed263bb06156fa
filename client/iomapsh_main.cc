// iomapsh [-s server] [-V volume] [-frdt] [-c cmd]... [-C cmd]... [path]
//
// Connects to iomapd, optionally opens `path` on the volume, then runs the
// -c and -C commands in order (-c on every open file, -C on the current
// one, as xfs_io), or reads commands interactively with readline
// history. Exits 1 if any command failed (or the server is unreachable).
#include <readline/history.h>
#include <readline/readline.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "client/client.h"
#include "client/iomapsh.h"

namespace {

struct Flags {
  client::ClientOptions options;
  std::string open_flags;
  // Each command line and whether it runs on every open file (-c).
  std::vector<std::pair<std::string, bool>> commands;
  std::string path;
};

void Usage() {
  fprintf(stderr,
          "usage: iomapsh [-s server] [-V volume] [-dfrt] [-c|-C cmd]... "
          "[path]\n"
          "  -s  server address (default %s)\n"
          "  -V  volume (default %s)\n"
          "  -f  create path if missing; -r read-only; -d direct I/O; -t "
          "truncate\n"
          "  -c  run a command on every open file (repeatable)\n"
          "  -C  run a command on the current file (repeatable)\n"
          "      without -c or -C, interactive\n",
          client::kDefaultTarget, client::kDefaultVolume);
  exit(1);
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  int c;
  while ((c = getopt(argc, argv, "c:C:dfrs:tV:h")) != -1) {
    switch (c) {
      case 'c':
      case 'C':
        f.commands.emplace_back(optarg, c == 'c');
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

// Command names for readline's completion of the first word.
std::vector<std::string>* g_names = nullptr;

char* NameGenerator(const char* text, int state) {
  static size_t next;
  if (state == 0) next = 0;
  const size_t len = strlen(text);
  while (g_names != nullptr && next < g_names->size()) {
    const std::string& name = (*g_names)[next++];
    if (name.compare(0, len, text) == 0) return strdup(name.c_str());
  }
  return nullptr;
}

char** Complete(const char* text, int start, int) {
  if (start != 0) return nullptr;  // file names for the other words
  return rl_completion_matches(text, NameGenerator);
}

// ~/.iomapsh_history, or "" without $HOME.
std::string HistoryFile() {
  const char* home = getenv("HOME");
  return home ? std::string(home) + "/.iomapsh_history" : std::string();
}

bool Interactive(iomapsh::Shell& shell) {
  std::vector<std::string> names = shell.CommandNames();
  g_names = &names;
  rl_attempted_completion_function = Complete;
  const std::string history = HistoryFile();
  if (!history.empty()) read_history(history.c_str());
  bool ok = true;
  while (!shell.quit()) {
    char* line = readline("iomapsh> ");
    if (line == nullptr) break;
    if (*line) add_history(line);
    ok &= Print(shell.Execute(line));
    free(line);
  }
  if (!history.empty()) write_history(history.c_str());
  g_names = nullptr;
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
  for (const auto& [cmd, each_file] : flags.commands) {
    ok &= Print(each_file ? shell.ExecuteOnEachFile(cmd) : shell.Execute(cmd));
    if (shell.quit()) break;
  }
  return ok ? 0 : 1;
}
