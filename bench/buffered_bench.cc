// Buffered write and cached read throughput of the iomap engine, in process,
// beside the same pattern of pwrite/pread on a host file in the kernel's page
// cache. Prints MB/s for both and the ratio (engine / kernel).
//
//   bazel run -c opt //bench:buffered_bench -- [--mib=N] [--rounds=N] [--dir=D]
//
// The engine runs over an in-memory device and the test filesystem (delalloc
// on write; nothing is written back, as the kernel's pwrite into the page
// cache does not wait for writeback either), with large folios, holding the
// inode's rwsem as the filesystem's file operations do.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "iomap/buffered_io.h"
#include "iomap/testing/fake_fs.h"
#include "iomap/testing/mem_device.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  int64_t mib = 128;  // file size
  int rounds = 4;     // passes over the file per measurement
  std::string dir = "/tmp";
};

double MBps(int64_t bytes, Clock::duration d) {
  double secs = std::chrono::duration<double>(d).count();
  return bytes / secs / 1e6;
}

class EngineFile {
 public:
  explicit EngineFile(int64_t size)
      : cache_(MakeOptions(size)),
        dev_(1 << 20, /*async=*/false),
        fs_(&dev_, 12, /*large_folios=*/true, &cache_) {}

  int64_t Write(int64_t pos, const uint8_t* buf, size_t len) {
    iomap::BufferSource src(buf, len);
    base::WriterLock l(&fs_.inode()->locks().rwsem);
    return iomap::FileBufferedWrite(fs_.inode(), pos, &src, 0, fs_, &fs_);
  }
  int64_t Read(int64_t pos, uint8_t* buf, size_t len) {
    base::ReaderLock l(&fs_.inode()->locks().rwsem);
    return iomap::FileBufferedRead(fs_.inode(), pos, len, buf, 0, fs_);
  }

 private:
  static iomap::PageCacheOptions MakeOptions(int64_t size) {
    iomap::PageCacheOptions o;
    o.budget_bytes = static_cast<uint64_t>(size) * 2;
    return o;
  }
  iomap::PageCache cache_;
  iomap::testing::MemDevice dev_;
  iomap::testing::FakeFs fs_;
};

class HostFile {
 public:
  explicit HostFile(const std::string& dir) {
    path_ = dir + "/buffered_bench." + std::to_string(getpid());
    fd_ = open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd_ < 0) {
      std::perror(path_.c_str());
      std::exit(1);
    }
  }
  ~HostFile() {
    close(fd_);
    unlink(path_.c_str());
  }
  int64_t Write(int64_t pos, const uint8_t* buf, size_t len) {
    return pwrite(fd_, buf, len, pos);
  }
  int64_t Read(int64_t pos, uint8_t* buf, size_t len) {
    return pread(fd_, buf, len, pos);
  }

 private:
  std::string path_;
  int fd_ = -1;
};

// Writes then reads the whole file `rounds` times in `io` byte requests;
// returns {write MB/s, read MB/s}. The first write pass populates the cache
// and is not timed.
template <typename File>
std::pair<double, double> Run(File& file, int64_t size, size_t io, int rounds) {
  std::vector<uint8_t> buf(io, 0x5a);
  for (int64_t pos = 0; pos < size; pos += io) {
    if (file.Write(pos, buf.data(), io) != static_cast<int64_t>(io)) {
      std::fprintf(stderr, "write failed at %lld\n", (long long)pos);
      std::exit(1);
    }
  }
  auto t0 = Clock::now();
  for (int r = 0; r < rounds; r++) {
    for (int64_t pos = 0; pos < size; pos += io) {
      buf[0] = static_cast<uint8_t>(r);
      file.Write(pos, buf.data(), io);
    }
  }
  auto t1 = Clock::now();
  for (int r = 0; r < rounds; r++) {
    for (int64_t pos = 0; pos < size; pos += io) {
      if (file.Read(pos, buf.data(), io) != static_cast<int64_t>(io)) {
        std::fprintf(stderr, "read failed at %lld\n", (long long)pos);
        std::exit(1);
      }
    }
  }
  auto t2 = Clock::now();
  return {MBps(size * rounds, t1 - t0), MBps(size * rounds, t2 - t1)};
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a.rfind("--mib=", 0) == 0) o.mib = std::atoll(a.c_str() + 6);
    if (a.rfind("--rounds=", 0) == 0) o.rounds = std::atoi(a.c_str() + 9);
    if (a.rfind("--dir=", 0) == 0) o.dir = a.substr(6);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  const int64_t size = o.mib << 20;
  std::printf("file %lld MiB, %d rounds, host file in %s\n", (long long)o.mib,
              o.rounds, o.dir.c_str());
  std::printf("%-8s %-6s %12s %12s %8s\n", "io", "op", "engine MB/s",
              "kernel MB/s", "ratio");
  for (size_t io : {size_t{4096}, size_t{1} << 20}) {
    std::pair<double, double> engine, kernel;
    {
      EngineFile f(size);
      engine = Run(f, size, io, o.rounds);
    }
    {
      HostFile f(o.dir);
      kernel = Run(f, size, io, o.rounds);
    }
    const char* name = io == 4096 ? "4KiB" : "1MiB";
    std::printf("%-8s %-6s %12.0f %12.0f %8.2f\n", name, "write", engine.first,
                kernel.first, engine.first / kernel.first);
    std::printf("%-8s %-6s %12.0f %12.0f %8.2f\n", name, "read", engine.second,
                kernel.second, engine.second / kernel.second);
  }
  return 0;
}
