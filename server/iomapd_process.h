// The real iomapd binary as a child process of a test: started on an image,
// its port read from the "listening on" line, stopped with a signal.
//
// Thread-safety: thread-compatible.
#ifndef IOMAPD_SERVER_IOMAPD_PROCESS_H_
#define IOMAPD_SERVER_IOMAPD_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace server {

class IomapdProcess {
 public:
  // `binary`: path of iomapd; `log`: where its stderr goes.
  IomapdProcess(std::string binary, std::string log);
  // SIGKILL if still running.
  ~IomapdProcess();

  // Starts `iomapd --listen=127.0.0.1:PORT --volume=default=IMAGE` (port 0:
  // any) and waits up to 20 s for it to listen. The port, or -1 (with the
  // log's tail on stderr).
  // `extra` flags are appended.
  int Start(const std::string& image, int port = 0,
            const std::vector<std::string>& extra = {});
  // Sends `sig` and waits; the exit status (128 + signal when killed).
  int Stop(int sig);
  // The binary's runfiles path for tests (TEST_SRCDIR/iomapd/server/iomapd).
  static std::string RunfilesBinary();

 private:
  const std::string binary_, log_;
  pid_t pid_ = -1;
};

}  // namespace server

#endif  // IOMAPD_SERVER_IOMAPD_PROCESS_H_
