// A multi-client stress run with content verification: N clients doing
// overlapping block-aligned writes, reads, truncates and fsyncs on a few
// shared files, every block stamped so that a torn, misplaced, stale or lost
// acknowledged write is caught (docs/testing.md, "Stress").
//
// The clients reach the files through an Endpoint: the gRPC client library
// against a real iomapd, or server::Ops directly (so the same run works
// under ThreadSanitizer, which cannot see inside Debian's gRPC).
//
// Thread-safety: Run() starts its own threads; an Endpoint is used by one
// thread only.
#ifndef IOMAPD_INTEGRATION_TESTS_STRESS_STRESS_H_
#define IOMAPD_INTEGRATION_TESTS_STRESS_STRESS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace stress {

inline constexpr int64_t kBlock = 4096;

// One client's view of the shared files (index 0..files-1), each opened
// read-write. Results follow the syscalls: bytes or -errno, 0 or -errno.
class Endpoint {
 public:
  virtual ~Endpoint() = default;
  virtual int64_t Write(int file, int64_t offset, const std::string& data) = 0;
  virtual int64_t Read(int file, int64_t offset, int64_t length,
                       std::string* out) = 0;
  virtual int Truncate(int file, int64_t size) = 0;
  virtual int Fsync(int file) = 0;
};

struct Options {
  int clients = 8;
  int files = 3;
  int64_t max_blocks = 128;  // file size bound (blocks)
  int ops_per_client = 1500;
  uint64_t seed = 1;
};

struct Result {
  uint64_t ops = 0, writes = 0, reads = 0, truncates = 0, fsyncs = 0;
  // Human-readable violations; empty when the run is correct.
  std::vector<std::string> problems;
};

// `make(i)` creates client i's endpoint (called on the client's thread).
// After the clients finish, `make(clients)` reads every file back for the
// final check.
Result Run(const Options& options,
           const std::function<std::unique_ptr<Endpoint>(int)>& make);

// The block a write by (client, seq) puts at block index `block` of `file`.
std::string StampBlock(uint32_t client, uint32_t seq, uint32_t file,
                       uint64_t block);

}  // namespace stress

#endif  // IOMAPD_INTEGRATION_TESTS_STRESS_STRESS_H_
