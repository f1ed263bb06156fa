#include "server/iomapd_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

extern char** environ;

namespace server {

IomapdProcess::IomapdProcess(std::string binary, std::string log)
    : binary_(std::move(binary)), log_(std::move(log)) {}

IomapdProcess::~IomapdProcess() {
  if (pid_ > 0) Stop(SIGKILL);
}

std::string IomapdProcess::RunfilesBinary() {
  const char* dir = std::getenv("TEST_SRCDIR");
  return std::string(dir ? dir : ".") + "/iomapd/server/iomapd";
}

namespace {

// The port from the log's "iomapd: listening on HOST:PORT" line, or 0.
int PortFromLog(const std::string& log) {
  std::ifstream in(log);
  std::string line;
  const std::string key = "iomapd: listening on ";
  while (std::getline(in, line)) {
    if (line.compare(0, key.size(), key) != 0) continue;
    return std::atoi(line.substr(line.rfind(':') + 1).c_str());
  }
  return 0;
}

}  // namespace

int IomapdProcess::Start(const std::string& image, int port,
                         const std::vector<std::string>& extra) {
  std::vector<std::string> args = {
      binary_, "--listen=127.0.0.1:" + std::to_string(port),
      "--volume=default=" + image, "--shutdown_grace_ms=2000"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(&a[0]);
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, log_.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int err =
      posix_spawn(&pid_, binary_.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (err != 0) {
    pid_ = -1;
    std::fprintf(stderr, "spawn %s: error %d\n", binary_.c_str(), err);
    return -1;
  }
  for (int i = 0; i < 400; ++i) {
    if (int p = PortFromLog(log_); p > 0) return p;
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::ifstream in(log_);
  std::stringstream ss;
  ss << in.rdbuf();
  std::fprintf(stderr, "iomapd did not start; its log:\n%s\n",
               ss.str().c_str());
  return -1;
}

int IomapdProcess::Stop(int sig) {
  if (pid_ <= 0) return -1;
  kill(pid_, sig);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

}  // namespace server
