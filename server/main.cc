// iomapd: serves iomapd volumes over gRPC (docs/server.md).
//
//   iomapd --listen=127.0.0.1:7411 --volume=default=var/default.img
//
// Each --volume is NAME=PATH, a device formatted by iomapd-mkfs; nothing is
// created. SIGINT or SIGTERM stop it cleanly: no new calls, running ones
// finish (or are cancelled after a grace period), open files are written
// back, every volume is unmounted.
#include <malloc.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "iomap/folio_pool.h"
#include "iomap/pagecache.h"
#include "server/server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7411",
          "host:port to listen on (port 0: any free port, printed)");
ABSL_FLAG(std::vector<std::string>, volume, {},
          "NAME=PATH of a volume to serve; repeat the flag (each "
          "occurrence counts) or separate with commas");
ABSL_FLAG(std::vector<std::string>, dax_volumes, {},
          "names of --volume entries to serve as fsdax volumes: the image is "
          "mapped MAP_SHARED and file data bypasses the page cache "
          "(docs/fs-volume.md)");
ABSL_FLAG(uint64_t, cache_mb, 0,
          "pagecache budget in MiB (0: the engine's default)");
ABSL_FLAG(uint64_t, dirty_background_mb, 0,
          "background writeback above this many dirty MiB (0: cache/10)");
ABSL_FLAG(uint64_t, dirty_mb, 0,
          "writers are throttled above this many dirty MiB (0: cache/5)");
ABSL_FLAG(int64_t, dirty_expire_ms, 30000,
          "dirty data older than this is written back");
ABSL_FLAG(int, executor_threads, 0,
          "engine executor threads (0: max(4, 2 x cores))");
ABSL_FLAG(uint32_t, max_in_flight_requests, 4096,
          "per Submit stream: requests in flight (past it: EAGAIN)");
ABSL_FLAG(uint64_t, max_in_flight_mb, 256,
          "per Submit stream: MiB of data in flight (past it: EAGAIN)");
ABSL_FLAG(uint64_t, max_request_mb, 64,
          "largest read or write of one request, MiB (past it: EMSGSIZE)");
ABSL_FLAG(uint64_t, max_message_mb, 80,
          "largest gRPC message either way, MiB; must exceed max_request_mb");
ABSL_FLAG(bool, keep_heap, true,
          "keep freed message buffers in the heap (no mmap/munmap per "
          "large buffer): large reads and writes stop paying page faults");
ABSL_FLAG(bool, prefill_cache, true,
          "populate the page cache's memory (its budget, in 2 MiB huge-page "
          "chunks) in the background at start, so that writes do not fault "
          "it in (docs/writeback.md)");
ABSL_FLAG(int, shutdown_grace_ms, 5000,
          "on SIGINT/SIGTERM, how long running calls may take to finish");

namespace {

int Fail(const std::string& msg) {
  std::fprintf(stderr, "iomapd: %s\n", msg.c_str());
  return 1;
}

// Every value of a list flag given several times: absl keeps only the
// last occurrence of a flag, so `--volume=a=x --volume=b=y` would serve b
// alone. Reads --NAME=V, -NAME=V and --NAME V forms; each value may itself
// be a comma-separated list.
std::vector<std::string> RepeatedListFlag(int argc, char** argv,
                                          const std::string& name) {
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (a == "--") break;
    if (!absl::ConsumePrefix(&a, "--")) absl::ConsumePrefix(&a, "-");
    if (!absl::ConsumePrefix(&a, name)) continue;
    absl::string_view value;
    if (absl::ConsumePrefix(&a, "=")) {
      value = a;
    } else if (a.empty() && i + 1 < argc) {
      value = argv[++i];
    } else {
      continue;  // another flag with this prefix
    }
    for (absl::string_view v : absl::StrSplit(value, ',', absl::SkipEmpty()))
      out.emplace_back(v);
  }
  return out;
}

bool ParseVolumes(const std::vector<std::string>& flags,
                  const std::vector<std::string>& dax_names,
                  std::vector<server::VolumeSpec>* out, std::string* err) {
  for (const std::string& v : flags) {
    size_t eq = v.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == v.size()) {
      *err = absl::StrCat("--volume=", v, ": expected NAME=PATH");
      return false;
    }
    out->push_back(server::VolumeSpec{v.substr(0, eq), v.substr(eq + 1)});
  }
  for (const std::string& name : dax_names) {
    auto it = std::find_if(
        out->begin(), out->end(),
        [&](const server::VolumeSpec& v) { return v.name == name; });
    if (it == out->end()) {
      *err = absl::StrCat("--dax_volumes=", name, ": no --volume of that name");
      return false;
    }
    it->dax = true;
  }
  if (out->empty()) {
    *err = "no volume to serve: give --volume=NAME=PATH";
    return false;
  }
  return true;
}

server::ServerOptions OptionsFromFlags() {
  server::ServerOptions o;
  o.listen = absl::GetFlag(FLAGS_listen);
  if (uint64_t mb = absl::GetFlag(FLAGS_cache_mb); mb != 0) {
    iomap::PageCache::Global()->set_budget_bytes(mb << 20);
  }
  iomap::FlusherOptions& f = o.volume_set.volume.flusher;
  f.dirty_background_bytes = absl::GetFlag(FLAGS_dirty_background_mb) << 20;
  f.dirty_bytes = absl::GetFlag(FLAGS_dirty_mb) << 20;
  f.dirty_expire_ms = absl::GetFlag(FLAGS_dirty_expire_ms);
  o.executor_threads = absl::GetFlag(FLAGS_executor_threads);
  o.stream.max_in_flight_requests = absl::GetFlag(FLAGS_max_in_flight_requests);
  o.stream.max_in_flight_bytes = absl::GetFlag(FLAGS_max_in_flight_mb) << 20;
  o.stream.max_bytes_per_request = absl::GetFlag(FLAGS_max_request_mb) << 20;
  o.stream.max_message_bytes = absl::GetFlag(FLAGS_max_message_mb) << 20;
  o.shutdown_grace_ms = absl::GetFlag(FLAGS_shutdown_grace_ms);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "iomapd --listen=HOST:PORT --volume=NAME=PATH [--volume=...]");
  const std::vector<std::string> volumes =
      RepeatedListFlag(argc, argv, "volume");
  const std::vector<std::string> dax_volumes =
      RepeatedListFlag(argc, argv, "dax_volumes");
  absl::ParseCommandLine(argc, argv);
  server::ServerOptions options = OptionsFromFlags();
  std::string err;
  if (options.stream.max_message_bytes <=
          options.stream.max_bytes_per_request ||
      options.stream.max_message_bytes > (1ull << 30)) {
    return Fail(
        "--max_message_mb must exceed --max_request_mb and be at "
        "most 1024");
  }
  if (!ParseVolumes(volumes, dax_volumes, &options.volumes, &err)) {
    return Fail(err);
  }
  if (absl::GetFlag(FLAGS_keep_heap)) {
    // glibc serves buffers above 128 KiB with fresh mmaps and unmaps them
    // on free, so every 1 MiB message faulted in 256 new pages (a quarter
    // of the server's cycles in large reads, docs/bench.md). Keep them.
    mallopt(M_MMAP_THRESHOLD, 128 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
  if (absl::GetFlag(FLAGS_prefill_cache)) {
    iomap::FolioPool::Global()->ReserveAsync(
        iomap::PageCache::Global()->budget_bytes());
  }
  // Every thread started from here on inherits the blocked mask, so the
  // signals reach only the sigwait below.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  server::Server srv(options);
  if (absl::Status s = srv.Start(); !s.ok()) return Fail(s.ToString());
  for (const server::VolumeSpec& v : options.volumes) {
    std::fprintf(stderr, "iomapd: serving volume %s from %s\n", v.name.c_str(),
                 v.path.c_str());
  }
  std::string host = options.listen.substr(0, options.listen.rfind(':'));
  std::fprintf(stderr, "iomapd: listening on %s:%d\n", host.c_str(),
               srv.port());
  std::fflush(stderr);

  int sig = 0;
  sigwait(&stop, &sig);
  std::fprintf(stderr, "iomapd: %s: shutting down\n",
               sig == SIGINT ? "SIGINT" : "SIGTERM");
  if (absl::Status s = srv.Shutdown(); !s.ok()) return Fail(s.ToString());
  std::fprintf(stderr, "iomapd: volumes unmounted cleanly\n");
  return 0;
}
