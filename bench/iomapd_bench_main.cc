// iomapd-bench: a fio-like load generator for iomapd.
//
//   iomapd-bench --server=127.0.0.1:7411 --volume=default
//                --file=/iomapd-bench.0 --rw=randread --bs=4k --iodepth=32
//                --numjobs=1 --size=1g --runtime=10 [--rwmixread=50]
//                [--direct=0] [--end_fsync] [--shared_connection]
//   iomapd-bench --hold_open ...   (lay out, read once, keep open)
//
// Creates the file if needed and lays it out (writes [0, size) and fsyncs,
// unless SEEK_HOLE shows it is already fully written) so that reads hit
// allocated data; the file stays open on the main connection until the end
// (fs/ drops a file's cached pages at its last close). Then `numjobs` jobs run
// at once, each with its own connection (one gRPC channel; --shared_connection
// puts every job's stream on one channel), its own open file and one Submit
// stream keeping `iodepth` requests in flight. Latency is measured per request
// from Submit to the completion callback (fio's "lat": submission plus
// completion).
// --hold_open runs no jobs: it keeps the file open, and so cached by the
// server, between runs of other iomapd-bench processes, as nbdkit keeps its
// file open (see bench/iomapd_vs_nbdkit.sh).
//
// Prints a fio-like summary, then one parseable line:
//   iomapd-bench rw=randread bs=4096 iodepth=32 numjobs=1 runtime_s=10.00
//     ios=N iops=N bw_bytes=N mb_s=N read_iops=N write_iops=N
//     p50_us=N p99_us=N p999_us=N errors=0
// Exit status 0 on success, 1 when any request failed, 2 on bad options.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "base/errno.h"
#include "base/mutex.h"
#include "base/status_macros.h"
#include "bench/load_job.h"
#include "client/async.h"
#include "client/client.h"

ABSL_FLAG(std::string, server, client::kDefaultTarget, "iomapd host:port");
ABSL_FLAG(std::string, volume, client::kDefaultVolume, "volume name");
ABSL_FLAG(std::string, file, "/iomapd-bench.0",
          "path of the file on the volume (created if missing)");
ABSL_FLAG(std::string, rw, "randread",
          "read, write, randread, randwrite or randrw");
ABSL_FLAG(std::string, bs, "4k", "bytes per request (k, m, g suffixes)");
ABSL_FLAG(uint32_t, iodepth, 32, "requests in flight per job");
ABSL_FLAG(uint32_t, numjobs, 1, "jobs (threads, streams) running at once");
ABSL_FLAG(std::string, size, "1g", "the file range each job covers");
ABSL_FLAG(double, runtime, 10,
          "seconds to run (time based); 0: one pass over size per job");
ABSL_FLAG(uint32_t, rwmixread, 50, "randrw: percentage of reads");
ABSL_FLAG(int, direct, 0, "1: direct I/O (not supported by iomapd yet)");
ABSL_FLAG(bool, end_fsync, false, "fsync the file when the jobs are done");
ABSL_FLAG(bool, shared_connection, false,
          "all jobs share one gRPC channel (one TCP connection)");
ABSL_FLAG(bool, layout, true,
          "write the file fully before the run unless it already is");

ABSL_FLAG(uint32_t, max_batch, 0,
          "at most this many requests per SubmitBatch message (0: about "
          "1 MiB of data, 1 to 256 requests)");
ABSL_FLAG(bool, keep_heap, true,
          "keep freed memory in the heap (mallopt: no mmap below 32 MiB, no "
          "trimming) instead of returning and faulting it back per message");
ABSL_FLAG(bool, hold_open, false,
          "no jobs: lay out, read the file once, then keep it open (and "
          "cached by the server) until SIGINT/SIGTERM");

namespace {

namespace v1 = ::iomapd::v1;

struct Options {
  client::ClientOptions client;
  std::string file;
  bench::JobSpec spec;
  uint32_t numjobs = 1;
  bool end_fsync = false;
  bool shared_connection = false;
  bool layout = true;
  bool hold_open = false;
};

// Flags to Options; prints the reason and returns false on bad values.
bool ParseOptions(Options* o) {
  o->client.target = absl::GetFlag(FLAGS_server);
  o->client.volume = absl::GetFlag(FLAGS_volume);
  o->file = absl::GetFlag(FLAGS_file);
  auto pattern = bench::ParsePattern(absl::GetFlag(FLAGS_rw));
  auto bs = bench::ParseSize(absl::GetFlag(FLAGS_bs));
  auto size = bench::ParseSize(absl::GetFlag(FLAGS_size));
  for (const absl::Status& st :
       {pattern.status(), bs.status(), size.status()}) {
    if (!st.ok()) {
      fprintf(stderr, "iomapd-bench: %s\n", std::string(st.message()).c_str());
      return false;
    }
  }
  bench::JobSpec& s = o->spec;
  s.pattern = *pattern;
  s.bs = *bs;
  s.size = *size;
  s.iodepth = absl::GetFlag(FLAGS_iodepth);
  s.runtime_s = absl::GetFlag(FLAGS_runtime);
  s.rwmixread = absl::GetFlag(FLAGS_rwmixread);
  o->numjobs = absl::GetFlag(FLAGS_numjobs);
  o->end_fsync = absl::GetFlag(FLAGS_end_fsync);
  o->shared_connection = absl::GetFlag(FLAGS_shared_connection);
  o->layout = absl::GetFlag(FLAGS_layout);
  o->hold_open = absl::GetFlag(FLAGS_hold_open);
  const char* bad = nullptr;
  if (s.bs == 0) bad = "--bs must be > 0";
  if (s.size < s.bs) bad = "--size must be at least --bs";
  if (s.iodepth == 0 || o->numjobs == 0) bad = "--iodepth/--numjobs >= 1";
  if (s.runtime_s < 0) bad = "--runtime must be >= 0";
  if (s.rwmixread > 100) bad = "--rwmixread is a percentage";
  if (absl::GetFlag(FLAGS_direct) != 0) {
    bad =
        "--direct=1 is not supported: iomapd answers EOPNOTSUPP for "
        "direct I/O until it lands (use --direct=0)";
  }
  if (bad) fprintf(stderr, "iomapd-bench: %s\n", bad);
  return bad == nullptr;
}

void Fail(const char* what, const absl::Status& st) {
  fprintf(stderr, "iomapd-bench: %s: %s\n", what, st.ToString().c_str());
}

constexpr uint32_t kOpenFlags = v1::OPEN_FLAG_READ | v1::OPEN_FLAG_WRITE;

// Requests per SubmitBatch message. Large batches of large writes travel
// as one message of tens of MiB that the server only starts on once it has
// fully arrived, so the queue drains and refills in lock step (1 MiB writes
// at QD32: 69 MB/s with 256 per message, 287 MB/s with 1 on the same
// server); about 1 MiB of data per message keeps requests flowing.
size_t MaxBatch(uint64_t bs) {
  if (uint32_t n = absl::GetFlag(FLAGS_max_batch); n != 0) return n;
  return std::clamp<uint64_t>((1 << 20) / std::max<uint64_t>(bs, 1), 1, 256);
}

client::AsyncOptions StreamOptions(uint64_t bs) {
  client::AsyncOptions o;
  o.max_requests_per_batch = MaxBatch(bs);
  // Completions resubmit from gRPC's callback threads, which must not block.
  o.when_full = client::AsyncOptions::WhenFull::kFail;
  return o;
}

// Opens (creating it if needed) and lays out the file through `c`. The
// caller keeps it open until the end: fs/ drops a file's in-core inode and
// its cached pages at the last close (fs/file.h OpenFile::Close), so closing
// between layout and the run would start the run with a cold cache.
absl::StatusOr<client::OpenFile> Prepare(client::Client* c, const Options& o) {
  auto file = c->OpenPath("", o.file, kOpenFlags, /*create=*/true);
  if (!file.ok() || !o.layout) return file;
  auto stream = c->OpenStream(StreamOptions(1 << 20));
  bool wrote = false;
  const auto t0 = std::chrono::steady_clock::now();
  absl::Status st =
      stream.ok() ? bench::LayOut(c, stream->get(), *file, o.spec.size, &wrote)
                  : stream.status();
  if (!st.ok()) {
    c->Close(*file).IgnoreError();
    return st;
  }
  if (wrote) {
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    fprintf(stderr,
            "iomapd-bench: laid out %s: %" PRIu64
            " MiB in %.1f s (%.0f MB/s)\n",
            o.file.c_str(), o.spec.size >> 20, s, o.spec.size / s / 1e6);
  }
  return file;
}

// --hold_open: reads [0, size) once (1 MiB requests) so the server caches
// it, then keeps `file` open until SIGINT or SIGTERM. REQUIRES: those
// signals blocked in every thread (main blocks them first).
int HoldOpen(client::Client* c, const Options& o,
             const client::OpenFile& file) {
  auto stream = c->OpenStream(StreamOptions(1 << 20));
  if (!stream.ok()) {
    Fail("stream", stream.status());
    return 1;
  }
  bench::JobSpec warm = o.spec;
  warm.pattern = bench::Pattern::kRead;
  warm.bs = std::min<uint64_t>(1 << 20, o.spec.size);
  warm.runtime_s = 0;
  warm.iodepth =
      std::max<uint32_t>(1, bench::FitDepth((*stream)->limits(), warm.bs, 4));
  const bench::JobResult r = bench::RunJob(stream->get(), file, warm);
  (*stream)->Close().IgnoreError();
  if (r.errors) {
    fprintf(stderr, "iomapd-bench: warm-up read: %s\n", r.first_error.c_str());
    return 1;
  }
  fprintf(stderr,
          "iomapd-bench: holding %s open (read %" PRIu64
          " MiB in %.1f s); SIGTERM ends\n",
          o.file.c_str(), r.read.bytes >> 20, r.elapsed_s);
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  int sig = 0;
  sigwait(&stop, &sig);
  return c->Close(file).ok() ? 0 : 1;
}

// Releases every job at once, after all of them connected and opened.
class StartGate {
 public:
  explicit StartGate(uint32_t parties) : waiting_(parties) {}
  void ArriveAndWait() {
    base::MutexLock lock(&mu_);
    if (--waiting_ == 0) cv_.SignalAll();
    while (waiting_ > 0) cv_.Wait(&mu_);
  }

 private:
  base::Mutex mu_;
  base::CondVar cv_;
  uint32_t waiting_ ABSL_GUARDED_BY(mu_);
};

// A job's connection (its own unless shared), open file and stream.
// Members are destroyed in reverse order: the stream before the client.
struct JobSetup {
  std::unique_ptr<client::Client> own;
  client::Client* c = nullptr;
  client::OpenFile file;
  bool file_open = false;
  std::unique_ptr<client::AsyncStream> stream;
  bench::JobSpec spec;
};

absl::Status SetUpJob(client::Client* shared, const Options& o, uint32_t index,
                      JobSetup* j) {
  j->c = shared;
  if (j->c == nullptr) {
    ASSIGN_OR_RETURN(j->own, client::Client::Connect(o.client));
    j->c = j->own.get();
  }
  ASSIGN_OR_RETURN(j->file, j->c->OpenPath("", o.file, kOpenFlags));
  j->file_open = true;
  ASSIGN_OR_RETURN(j->stream, j->c->OpenStream(StreamOptions(o.spec.bs)));
  j->spec = o.spec;
  j->spec.seed = 0x9e3779b97f4a7c15ull * (index + 1);
  j->spec.iodepth =
      bench::FitDepth(j->stream->limits(), o.spec.bs, o.spec.iodepth);
  if (j->spec.iodepth == 0) {
    return base::ErrnoStatus(-EMSGSIZE,
                             "--bs is over the server's max_bytes_per_request");
  }
  if (j->spec.iodepth != o.spec.iodepth) {
    fprintf(stderr, "iomapd-bench: job %u: iodepth %u -> %u (server limits)\n",
            index, o.spec.iodepth, j->spec.iodepth);
  }
  return absl::OkStatus();
}

// Counts a failure of the job's teardown.
void Note(bench::JobResult* r, const absl::Status& st) {
  if (!st.ok() && r->errors++ == 0) r->first_error = st.ToString();
}

// One job on `shared` (or on a new connection when it is null). Passes the
// gate even when setup failed, so that the other jobs start.
bench::JobResult RunOneJob(client::Client* shared, const Options& o,
                           uint32_t index, StartGate* gate) {
  JobSetup j;
  const absl::Status setup = SetUpJob(shared, o, index, &j);
  gate->ArriveAndWait();
  bench::JobResult result;
  if (setup.ok()) {
    result = bench::RunJob(j.stream.get(), j.file, j.spec);
    Note(&result, j.stream->Close());
    if (o.end_fsync) Note(&result, j.c->Fsync(j.file, /*datasync=*/false));
  } else {
    Note(&result, setup);
  }
  if (j.file_open) j.c->Close(j.file).IgnoreError();
  return result;
}

// gRPC and protobuf allocate every message's buffers afresh. With glibc's
// defaults, blocks of 128 KiB and more (and the heap top past 128 KiB) go
// back to the kernel when freed and are page-faulted in again for the next
// message; in this project's virtual machine that alone held 1 MiB reads to
// ~140 MB/s on the client side. fio allocates its I/O buffers once; keeping
// freed memory in the heap is the equivalent here.
void KeepHeap() {
  if (!mallopt(M_MMAP_THRESHOLD, 32 << 20) ||
      !mallopt(M_TRIM_THRESHOLD, 1 << 30)) {
    fprintf(stderr, "iomapd-bench: mallopt failed; heap not tuned\n");
  }
}

// fio's compact numbers: 51.2k, 1234.
std::string Compact(double v) {
  char buf[32];
  if (v >= 1e6) {
    snprintf(buf, sizeof(buf), "%.2fM", v / 1e6);
  } else if (v >= 1e4) {
    snprintf(buf, sizeof(buf), "%.1fk", v / 1e3);
  } else {
    snprintf(buf, sizeof(buf), "%.0f", v);
  }
  return buf;
}

void PrintDirection(const char* name, const bench::DirectionResult& d,
                    double secs) {
  if (d.ios == 0) return;
  const double bw = d.bytes / secs;
  printf("  %s: IOPS=%s, BW=%.1fMiB/s (%.1fMB/s)(%.1fMiB/%.0fmsec)\n", name,
         Compact(d.ios / secs).c_str(), bw / (1 << 20), bw / 1e6,
         d.bytes / double(1 << 20), secs * 1e3);
  const bench::LatencyHistogram& h = d.latency;
  printf("    lat (usec): min=%.1f, max=%.1f, avg=%.1f\n", h.min() / 1e3,
         h.max() / 1e3, h.mean() / 1e3);
  printf("    lat percentiles (usec): p50=%.1f, p99=%.1f, p99.9=%.1f\n",
         h.Percentile(50) / 1e3, h.Percentile(99) / 1e3,
         h.Percentile(99.9) / 1e3);
}

void PrintResult(const Options& o, const bench::JobResult& r) {
  const bench::JobSpec& s = o.spec;
  const double secs = r.elapsed_s > 0 ? r.elapsed_s : 1e-9;
  printf("jobs: rw=%s, bs=%" PRIu64 ", iodepth=%u, numjobs=%u, size=%" PRIu64
         ", server=%s, volume=%s, file=%s\n",
         bench::PatternName(s.pattern), s.bs, s.iodepth, o.numjobs, s.size,
         o.client.target.c_str(), o.client.volume.c_str(), o.file.c_str());
  PrintDirection("read", r.read, secs);
  PrintDirection("write", r.write, secs);
  if (r.errors)
    printf("  errors=%" PRIu64 ": %s\n", r.errors, r.first_error.c_str());
  bench::LatencyHistogram all = r.read.latency;
  all.Merge(r.write.latency);
  const uint64_t ios = r.read.ios + r.write.ios;
  const double bw = (r.read.bytes + r.write.bytes) / secs;
  printf("iomapd-bench rw=%s bs=%" PRIu64
         " iodepth=%u numjobs=%u "
         "runtime_s=%.2f ios=%" PRIu64
         " iops=%.0f bw_bytes=%.0f mb_s=%.1f "
         "read_iops=%.0f write_iops=%.0f p50_us=%.1f p99_us=%.1f "
         "p999_us=%.1f errors=%" PRIu64 "\n",
         bench::PatternName(s.pattern), s.bs, s.iodepth, o.numjobs, secs, ios,
         ios / secs, bw, bw / 1e6, r.read.ios / secs, r.write.ios / secs,
         all.Percentile(50) / 1e3, all.Percentile(99) / 1e3,
         all.Percentile(99.9) / 1e3, r.errors);
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "fio-like load generator for iomapd: --rw --bs --iodepth --numjobs "
      "--size --runtime --server --volume --file");
  absl::ParseCommandLine(argc, argv);
  Options o;
  if (!ParseOptions(&o)) return 2;
  if (absl::GetFlag(FLAGS_keep_heap)) KeepHeap();
  if (o.hold_open) {
    // Before any thread starts, so that only HoldOpen's sigwait sees them.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  }
  auto main_client = client::Client::Connect(o.client);
  if (!main_client.ok()) {
    Fail("connect", main_client.status());
    return 1;
  }
  absl::StatusOr<client::OpenFile> file = Prepare(main_client->get(), o);
  if (!file.ok()) {
    Fail(("prepare " + o.file).c_str(), file.status());
    return 1;
  }
  if (o.hold_open) return HoldOpen(main_client->get(), o, *file);
  client::Client* shared = o.shared_connection ? main_client->get() : nullptr;
  StartGate gate(o.numjobs);
  std::vector<bench::JobResult> results(o.numjobs);
  std::vector<std::thread> threads;
  for (uint32_t j = 0; j < o.numjobs; j++) {
    threads.emplace_back(
        [&, j] { results[j] = RunOneJob(shared, o, j, &gate); });
  }
  for (std::thread& t : threads) t.join();
  bench::JobResult total;
  for (const bench::JobResult& r : results) total.Merge(r);
  PrintResult(o, total);
  main_client->get()->Close(*file).IgnoreError();
  return total.errors == 0 ? 0 : 1;
}
