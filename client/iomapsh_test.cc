// iomapsh end to end through the client library, against an in-process
// fake iomapd that keeps files in memory (4 KiB blocks: written, unwritten,
// or dirty in the cache as delalloc or over unwritten until a sync). The fake
// is only a peer speaking docs/protocol.md; what is tested is iomapsh's
// parsing, its calls and its xfs_io-identical output. The shell's clock
// advances 66 us per reading, so the timing lines come out exactly as xfs_io
// printed them for the same elapsed time.
#include "client/iomapsh.h"

#include <cerrno>
#include <map>
#include <set>

#include "grpc/grpc.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "proto/wire_status.h"

namespace iomapsh {
namespace {

// gRPC 1.51 tears its library down when the last object goes away and
// builds it again for the next; a test binary that repeats suites
// (--gtest_repeat) hit a refcount assertion ("prior > 0") in that cycle.
// One grpc_init() for the whole process keeps the library up, as in any
// long-lived client.
const bool kGrpcKeptAlive = (grpc_init(), true);

constexpr int64_t kBlock = 4096;

// A block's state; the dirty ones turn kWritten at Fsync or a synced
// Fiemap.
enum class Block { kWritten, kUnwritten, kDelalloc, kDirtyUnwritten };

struct Node {
  bool dir = false;
  std::map<std::string, uint64_t> children;
  std::string data;                 // size == file size
  std::map<int64_t, Block> blocks;  // mapped (or delalloc) blocks
};

class FakeFs final : public v1::Iomapd::Service {
 public:
  FakeFs() { Reset(); }

  // An empty root directory. Calls are sequential (one shell), so the
  // fake needs no lock.
  void Reset() {
    nodes_.clear();
    nodes_[1].dir = true;
    next_ino_ = 100;
    fsync_errno = 0;
    bsize = 4096;
  }

  grpc::Status ListVolumes(grpc::ServerContext*, const v1::ListVolumesRequest*,
                           v1::ListVolumesResponse* r) override {
    auto* v = r->add_volumes();
    v->set_name("default");
    *v->mutable_root() = H(1);
    return grpc::Status::OK;
  }
  grpc::Status StatFs(grpc::ServerContext*, const v1::StatFsRequest*,
                      v1::StatFsResponse* r) override {
    r->set_bsize(bsize);
    r->set_blocks(262144);
    r->set_bavail(200000);
    r->set_files(65536);
    r->set_ffree(65000);
    r->set_flags(0x1020);
    return grpc::Status::OK;
  }
  grpc::Status Lookup(grpc::ServerContext*, const v1::LookupRequest* q,
                      v1::LookupResponse* r) override {
    auto& kids = nodes_[q->parent().inode()].children;
    auto it = kids.find(q->name());
    if (it == kids.end()) return wire::ErrnoToGrpcStatus(ENOENT, q->name());
    *r->mutable_handle() = H(it->second);
    Fill(it->second, r->mutable_attr());
    return grpc::Status::OK;
  }
  grpc::Status Create(grpc::ServerContext*, const v1::CreateRequest* q,
                      v1::CreateResponse* r) override {
    uint64_t ino = Make(q->parent().inode(), q->name(), false);
    *r->mutable_handle() = H(ino);
    return grpc::Status::OK;
  }
  grpc::Status Mkdir(grpc::ServerContext*, const v1::MkdirRequest* q,
                     v1::MkdirResponse* r) override {
    *r->mutable_handle() = H(Make(q->parent().inode(), q->name(), true));
    return grpc::Status::OK;
  }
  grpc::Status Readdir(grpc::ServerContext*, const v1::ReaddirRequest* q,
                       v1::ReaddirResponse* r) override {
    uint64_t n = 0;
    for (const auto& [name, ino] : nodes_[q->dir().inode()].children) {
      if (++n <= q->cookie()) continue;
      auto* e = r->add_entries();
      e->set_name(name);
      e->set_type(nodes_[ino].dir ? v1::FILE_TYPE_DIRECTORY
                                  : v1::FILE_TYPE_REGULAR);
      e->set_cookie(n);
      if (r->entries_size() == 2) return grpc::Status::OK;  // page of 2
    }
    r->set_eof(true);
    return grpc::Status::OK;
  }
  grpc::Status Unlink(grpc::ServerContext*, const v1::UnlinkRequest* q,
                      v1::UnlinkResponse*) override {
    if (!nodes_[q->parent().inode()].children.erase(q->name())) {
      return wire::ErrnoToGrpcStatus(ENOENT, q->name());
    }
    return grpc::Status::OK;
  }
  grpc::Status Rename(grpc::ServerContext*, const v1::RenameRequest* q,
                      v1::RenameResponse*) override {
    auto& src = nodes_[q->src_parent().inode()].children;
    auto it = src.find(q->src_name());
    if (it == src.end()) return wire::ErrnoToGrpcStatus(ENOENT, "src");
    uint64_t ino = it->second;
    src.erase(it);
    nodes_[q->dst_parent().inode()].children[q->dst_name()] = ino;
    return grpc::Status::OK;
  }
  grpc::Status Stat(grpc::ServerContext*, const v1::StatRequest* q,
                    v1::StatResponse* r) override {
    Fill(q->handle().inode(), r->mutable_attr());
    return grpc::Status::OK;
  }
  grpc::Status Open(grpc::ServerContext*, const v1::OpenRequest* q,
                    v1::OpenResponse* r) override {
    if (q->flags() & v1::OPEN_FLAG_TRUNC) Resize(q->handle().inode(), 0);
    r->set_open_id(++opens_);
    return grpc::Status::OK;
  }
  grpc::Status Close(grpc::ServerContext*, const v1::CloseRequest*,
                     v1::CloseResponse*) override {
    return grpc::Status::OK;
  }
  grpc::Status Read(grpc::ServerContext*, const v1::ReadRequest* q,
                    v1::ReadResponse* r) override {
    const std::string& d = nodes_[q->handle().inode()].data;
    if (q->offset() < static_cast<int64_t>(d.size())) {
      r->set_data(d.substr(q->offset(), q->length()));
    }
    r->set_result(r->data().size());
    return grpc::Status::OK;
  }
  grpc::Status Write(grpc::ServerContext*, const v1::WriteRequest* q,
                     v1::WriteResponse* r) override {
    if (q->flags() & v1::IO_FLAG_ATOMIC) {
      return wire::ErrnoToGrpcStatus(EOPNOTSUPP, "atomic writes later");
    }
    Store(q->handle().inode(), q->offset(), q->data(), true);
    r->set_result(q->data().size());
    return grpc::Status::OK;
  }
  grpc::Status Fsync(grpc::ServerContext*, const v1::FsyncRequest* q,
                     v1::FsyncResponse*) override {
    WriteBack(q->handle().inode());
    return fsync_errno ? wire::ErrnoToGrpcStatus(fsync_errno, "writeback")
                       : grpc::Status::OK;
  }
  grpc::Status Seek(grpc::ServerContext*, const v1::SeekRequest* q,
                    v1::SeekResponse* r) override {
    const Node& n = nodes_[q->handle().inode()];
    const int64_t size = n.data.size();
    if (q->offset() < 0 || q->offset() >= size) {
      return wire::ErrnoToGrpcStatus(ENXIO, "past EOF");
    }
    const bool want_data = q->whence() == v1::WHENCE_DATA;
    for (int64_t b = q->offset() / kBlock; b * kBlock < size; b++) {
      auto it = n.blocks.find(b);
      const bool data = it != n.blocks.end() && it->second != Block::kUnwritten;
      if (data == want_data) {
        r->set_result(std::max(q->offset(), b * kBlock));
        return grpc::Status::OK;
      }
    }
    if (want_data) return wire::ErrnoToGrpcStatus(ENXIO, "no data");
    r->set_result(size);
    return grpc::Status::OK;
  }
  grpc::Status Fiemap(grpc::ServerContext*, const v1::FiemapRequest* q,
                      v1::FiemapResponse* r) override;
  grpc::Status Truncate(grpc::ServerContext*, const v1::TruncateRequest* q,
                        v1::TruncateResponse*) override {
    Resize(q->handle().inode(), q->size());
    return grpc::Status::OK;
  }
  grpc::Status Fallocate(grpc::ServerContext*, const v1::FallocateRequest* q,
                         v1::FallocateResponse*) override;
  grpc::Status CloneRange(grpc::ServerContext*, const v1::CloneRangeRequest* q,
                          v1::CloneRangeResponse* r) override {
    // Linux refuses unaligned offsets and a file cloned onto itself.
    if (q->src_offset() % kBlock || q->dst_offset() % kBlock ||
        q->src().inode() == q->dst().inode()) {
      return wire::ErrnoToGrpcStatus(EINVAL, "clone range");
    }
    std::string src = nodes_[q->src().inode()].data;
    int64_t len = q->length() ? q->length() : src.size();
    Store(q->dst().inode(), q->dst_offset(), src.substr(q->src_offset(), len),
          true);
    r->set_result(len);
    return grpc::Status::OK;
  }
  grpc::Status DedupeRange(grpc::ServerContext*,
                           const v1::DedupeRangeRequest* q,
                           v1::DedupeRangeResponse* r) override {
    const std::string src =
        nodes_[q->src().inode()].data.substr(q->src_offset(), q->length());
    for (const v1::DedupeTarget& t : q->targets()) {
      const std::string dst =
          nodes_[t.dst().inode()].data.substr(t.dst_offset(), q->length());
      v1::DedupeResult* res = r->add_results();
      res->set_status(src == dst ? 0 : 1);
      res->set_bytes_deduped(src == dst ? q->length() : 0);
    }
    return grpc::Status::OK;
  }
  grpc::Status MapWrite(grpc::ServerContext*, const v1::MapWriteRequest* q,
                        v1::MapWriteResponse* r) override {
    Node& n = nodes_[q->handle().inode()];
    if (q->offset() + static_cast<int64_t>(q->data().size()) >
        static_cast<int64_t>(n.data.size())) {
      return wire::ErrnoToGrpcStatus(EFAULT, "store past EOF");
    }
    Store(q->handle().inode(), q->offset(), q->data(), true);
    r->set_result(q->data().size());
    return grpc::Status::OK;
  }

  int fsync_errno = 0;
  int64_t bsize = 4096;    // StatFs's block size
  int synced_fiemaps = 0;  // Fiemap calls with FIEMAP_FLAG_SYNC

 private:
  void WriteBack(uint64_t ino) {
    for (auto& [b, state] : nodes_[ino].blocks) {
      if (state != Block::kUnwritten) state = Block::kWritten;
    }
  }
  static v1::FileHandle H(uint64_t ino) {
    v1::FileHandle h;
    h.set_volume("default");
    h.set_inode(ino);
    h.set_generation(1);
    return h;
  }
  uint64_t Make(uint64_t parent, const std::string& name, bool dir) {
    auto& kids = nodes_[parent].children;
    auto it = kids.find(name);
    if (it != kids.end()) return it->second;
    uint64_t ino = next_ino_++;
    nodes_[ino].dir = dir;
    kids[name] = ino;
    return ino;
  }
  void Fill(uint64_t ino, v1::Attr* a) {
    const Node& n = nodes_[ino];
    a->set_inode(ino);
    a->set_type(n.dir ? v1::FILE_TYPE_DIRECTORY : v1::FILE_TYPE_REGULAR);
    a->set_size(n.data.size());
    a->set_blocks(n.blocks.size() * (kBlock / 512));
    a->set_blksize(kBlock);
  }
  void Resize(uint64_t ino, int64_t size) {
    Node& n = nodes_[ino];
    n.data.resize(size, '\0');
    n.blocks.erase(n.blocks.lower_bound((size + kBlock - 1) / kBlock),
                   n.blocks.end());
  }
  void Store(uint64_t ino, int64_t off, const std::string& bytes, bool extend) {
    Node& n = nodes_[ino];
    const int64_t end = off + bytes.size();
    if (extend && end > static_cast<int64_t>(n.data.size())) {
      n.data.resize(end, '\0');
    }
    n.data.replace(off, bytes.size(), bytes);
    for (int64_t b = off / kBlock; b * kBlock < end; b++) {
      auto [it, added] = n.blocks.emplace(b, Block::kDelalloc);
      if (!added && it->second == Block::kUnwritten) {
        it->second = Block::kDirtyUnwritten;
      }
    }
  }

  std::map<uint64_t, Node> nodes_;
  uint64_t next_ino_ = 100;
  uint64_t opens_ = 0;
};

grpc::Status FakeFs::Fiemap(grpc::ServerContext*, const v1::FiemapRequest* q,
                            v1::FiemapResponse* r) {
  if (q->flags() & ~1u) {
    r->set_errnum(EBADR);
    r->set_bad_flags(q->flags() & ~1u);
    return wire::ErrnoToGrpcStatus(EBADR, "flags", r);
  }
  if (q->flags() & 1) {
    synced_fiemaps++;
    WriteBack(q->handle().inode());
  }
  const Node& n = nodes_[q->handle().inode()];
  const uint64_t start = q->start();
  const uint64_t end = q->length() < 0 ? ~0ULL : start + q->length();
  std::vector<v1::FiemapExtent> all;
  for (const auto& [b, state] : n.blocks) {
    const uint64_t lo = b * kBlock;
    if (lo + kBlock <= start || lo >= end) continue;
    const bool unwritten =
        state == Block::kUnwritten || state == Block::kDirtyUnwritten;
    const uint32_t flags = state == Block::kDelalloc ? 0x6
                           : unwritten               ? 0x800
                                                     : 0;
    if (!all.empty() && all.back().logical() + all.back().length() == lo &&
        all.back().flags() == flags) {
      all.back().set_length(all.back().length() + kBlock);
      continue;
    }
    v1::FiemapExtent e;
    e.set_logical(lo);
    // The same for every file; delalloc has no address yet.
    e.set_physical(state == Block::kDelalloc ? 0 : lo + (1 << 20));
    e.set_length(kBlock);
    e.set_flags(flags);
    all.push_back(e);
  }
  r->set_mapped_extents(all.size());
  if (q->extent_count() == 0) return grpc::Status::OK;
  if (all.size() > q->extent_count()) {
    all.resize(q->extent_count());
  } else if (!all.empty()) {
    all.back().set_flags(all.back().flags() | 1);
  }
  for (auto& e : all) *r->add_extents() = e;
  r->set_mapped_extents(all.size());
  return grpc::Status::OK;
}

grpc::Status FakeFs::Fallocate(grpc::ServerContext*,
                               const v1::FallocateRequest* q,
                               v1::FallocateResponse*) {
  Node& n = nodes_[q->handle().inode()];
  const int64_t first = q->offset() / kBlock;
  const int64_t last = (q->offset() + q->length() - 1) / kBlock;
  switch (q->mode()) {
    case 0:
    case 1:
      for (int64_t b = first; b <= last; b++) {
        n.blocks.emplace(b, Block::kUnwritten);
      }
      if (q->mode() == 0 &&
          q->offset() + q->length() > static_cast<int64_t>(n.data.size())) {
        n.data.resize(q->offset() + q->length(), '\0');
      }
      return grpc::Status::OK;
    case 3:
      for (int64_t b = first; b <= last; b++) n.blocks.erase(b);
      return grpc::Status::OK;
    default:
      return wire::ErrnoToGrpcStatus(EOPNOTSUPP, "mode");
  }
}

class IomapshTest : public ::testing::Test {
 protected:
  // Once per process, never torn down (see client_test.cc).
  static void SetUpTestSuite() {
    if (fs_ != nullptr) return;
    fs_ = new FakeFs;
    grpc::ServerBuilder builder;
    builder.RegisterService(fs_);
    server_ = builder.BuildAndStart().release();
    client::ClientOptions options;
    client_ = new client::Client(
        server_->InProcessChannel(client::MakeChannelArguments(options)),
        options);
  }

  void SetUp() override {
    shell_ = std::make_unique<Shell>(client_, "");
    shell_->set_clock([this] {
      ticks_ += 66;
      return timeval{0, ticks_};
    });
    fs_->Reset();
  }

  // stdout + stderr of one line; EXPECTs its failure flag.
  std::string Run(const std::string& line, bool fail = false) {
    xfs_io::Output out = shell_->Execute(line);
    EXPECT_EQ(out.failed, fail) << line << "\n" << out.out << out.err;
    return out.out + out.err;
  }

  static FakeFs* fs_;
  static grpc::Server* server_;
  static client::Client* client_;
  std::unique_ptr<Shell> shell_;
  long ticks_ = 0;
};

FakeFs* IomapshTest::fs_ = nullptr;
grpc::Server* IomapshTest::server_ = nullptr;
client::Client* IomapshTest::client_ = nullptr;

TEST_F(IomapshTest, PwritePreadMatchXfsIoText) {
  EXPECT_EQ(Run("open -f /io"), "");
  EXPECT_EQ(Run("pwrite -S 0xab 0 64k"),
            "wrote 65536/65536 bytes at offset 0\n"
            "64 KiB, 16 ops; 0.0000 sec (946.970 MiB/sec and 242424.2424 "
            "ops/sec)\n");
  EXPECT_EQ(Run("pread -v 0 20"),
            "00000000:  ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab  "
            "................\n"
            "00000010:  ab ab ab ab  ....\n"
            "read 20/20 bytes at offset 0\n"
            "20.000000 bytes, 1 ops; 0.0000 sec (295.928 KiB/sec and "
            "15151.5152 ops/sec)\n");
  // A read past EOF stops short, as pread does.
  EXPECT_EQ(Run("pread -b 3000 60000 10000").substr(0, 63),
            "read 5536/10000 bytes at offset 60000\n5 KiB, 2 ops; 0.0000 sec ");
  EXPECT_EQ(Run("pwrite -q -b 1m 0 4k"), "");
  EXPECT_EQ(Run("pwrite -C 0 4k"),
            "4096,1,0:00:00.00,62060606.061,15151.515\n");
}

TEST_F(IomapshTest, SeekFiemapBmapOnSparseFile) {
  Run("open -f /sparse");
  Run("pwrite -q 0 64k");
  Run("pwrite -q 1m 8k");
  Run("falloc -k 2m 64k");
  EXPECT_EQ(Run("seek -a -r 0"),
            "Whence\tResult\nDATA\t0\nHOLE\t65536\nDATA\t1048576\n"
            "HOLE\t1056768\n");
  EXPECT_EQ(Run("seek -d 2m"), "Whence\tResult\nDATA\tEOF\n");
  EXPECT_EQ(Run("fiemap"),
            "/sparse:\n"
            "\t0: [0..127]: 2048..2175\n"
            "\t1: [128..2047]: hole\n"
            "\t2: [2048..2063]: 4096..4111\n"
            "\t3: [2064..4095]: hole\n"
            "\t4: [4096..4223]: 6144..6271\n");
  EXPECT_EQ(Run("fiemap -v 0 64k"),
            "/sparse:\n"
            " EXT: FILE-OFFSET      BLOCK-RANGE      TOTAL FLAGS\n"
            "   0: [0..127]:        2048..2175         128   0x1\n");
  EXPECT_EQ(
      Run("bmap -vp"),
      "/sparse:\n"
      " EXT: FILE-OFFSET      BLOCK-RANGE      AG AG-OFFSET        TOTAL "
      "FLAGS\n"
      "   0: [0..127]:        2048..2175        0 (2048..2175)       128 "
      "000000\n"
      "   1: [128..2047]:     hole                                  1920\n"
      "   2: [2048..2063]:    4096..4111        0 (4096..4111)        16 "
      "000000\n"
      "   3: [2064..4095]:    hole                                  2032\n"
      "   4: [4096..4223]:    6144..6271        0 (6144..6271)       128 "
      "010000\n");
  EXPECT_EQ(Run("bmap"),
            "/sparse:\n"
            "\t0: [0..127]: 2048..2175\n"
            "\t1: [128..2047]: hole\n"
            "\t2: [2048..2063]: 4096..4111\n"
            "\t3: [2064..4095]: hole\n"
            "\t4: [4096..4223]: 6144..6271\n");
  // FIEMAP flags the server refuses: EBADR, as the ioctl fails.
  EXPECT_EQ(Run("fiemap -a", true),
            "/sparse:\n"
            "iomapsh: ioctl(FS_IOC_FIEMAP) [\"/sparse\"]: Invalid request "
            "descriptor\n");
}

// The inode number depends on the tests before; replace it with "N".
std::string MaskIno(std::string s) {
  size_t at = s.find("stat.ino = ");
  if (at == std::string::npos) return s;
  at += 11;
  return s.replace(at, s.find('\n', at) - at, "N");
}

TEST_F(IomapshTest, StatAndStatfs) {
  Run("open -f /st");
  Run("pwrite -q 0 8k");
  EXPECT_EQ(MaskIno(Run("stat")),
            "fd.path = \"/st\"\n"
            "fd.flags = non-sync,non-direct,read-write\n"
            "stat.ino = N\n"
            "stat.type = regular file\n"
            "stat.size = 8192\n"
            "stat.blocks = 16\n");
  EXPECT_EQ(MaskIno(Run("open")), MaskIno(Run("stat")));
  EXPECT_EQ(Run("statfs"),
            "fd.path = \"/st\"\nstatfs.f_bsize = 4096\n"
            "statfs.f_blocks = 262144\nstatfs.f_bavail = 200000\n"
            "statfs.f_files = 65536\nstatfs.f_ffree = 65000\n"
            "statfs.f_flags = 0x1020\n");
}

TEST_F(IomapshTest, ErrorsAndExitStatus) {
  EXPECT_EQ(Run("pwrite 0 4k", true), "no files are open, try 'help open'\n");
  EXPECT_EQ(Run("bogus", true), "command \"bogus\" not found\n");
  EXPECT_EQ(Run("open /nonexistent", true),
            "/nonexistent: No such file or directory\n");
  Run("open -f /err");
  EXPECT_EQ(Run("pwrite", true),
            "bad argument count 0 to pwrite, expected at least 2 arguments\n");
  EXPECT_EQ(Run("pwrite -A 0 4k", true), "pwrite: Operation not supported\n");
  fs_->fsync_errno = EIO;
  EXPECT_EQ(Run("fsync", true), "fsync: Input/output error\n");
  EXPECT_EQ(Run("fdatasync", true), "fdatasync: Input/output error\n");
  EXPECT_EQ(Run("fcollapse 0 4k", true),
            "fallocate: Operation not supported\n");
  EXPECT_EQ(Run("seek -x 0"),
            "seek -a | -d | -h [-r] off -- locate the next data and/or hole\n"
            "seek: invalid option -- 'x'\n");
  EXPECT_EQ(Run("seek -d 0"), "Whence\tResult\nDATA\tEOF\n");
  EXPECT_EQ(Run("pwrite zz 4k", true), "non-numeric offset argument -- zz\n");
}

TEST_F(IomapshTest, NamespaceCommands) {
  EXPECT_EQ(Run("mkdir /d"), "");
  Run("open -f /d/one");
  Run("open -f /d/two");
  Run("open -f /d/three");
  EXPECT_EQ(Run("ls /d"), "one\nthree\ntwo\n");  // three pages of 2
  EXPECT_EQ(Run("mv /d/one /d/uno"), "");
  EXPECT_EQ(Run("rm /d/two"), "");
  EXPECT_EQ(Run("ls /d"), "three\nuno\n");
  EXPECT_EQ(Run("rm /d/two", true), "/d/two: No such file or directory\n");
  EXPECT_NE(Run("ls /").find("d/\n"), std::string::npos);
}

TEST_F(IomapshTest, MmapMwriteMread) {
  Run("open -f /m");
  Run("truncate 64k");
  EXPECT_EQ(Run("mwrite 0 4", true), "no mapped regions, try 'help mmap'\n");
  EXPECT_EQ(Run("mmap -rw 0 64k"), "");
  EXPECT_EQ(Run("mwrite -S 0x62 4096 20"), "");
  EXPECT_EQ(Run("mread -v 4096 20"),
            "00001000:  62 62 62 62 62 62 62 62 62 62 62 62 62 62 62 62  "
            "bbbbbbbbbbbbbbbb\n"
            "00001010:  62 62 62 62  bbbb\n");
  EXPECT_EQ(Run("mwrite 60k 8k"),
            "range (61440:8192) is beyond mapping (0:65536)\n");
  EXPECT_EQ(Run("msync"), "");
  EXPECT_EQ(Run("munmap"), "");
  EXPECT_EQ(Run("munmap", true), "no mapped regions, try 'help mmap'\n");
}

TEST_F(IomapshTest, ReflinkReports) {
  Run("open -f /src");
  Run("pwrite -q 0 64k");
  Run("open -f /dst");
  EXPECT_EQ(Run("reflink /src 0 64k 4k"),
            "linked 4096/4096 bytes at offset 65536\n"
            "4 KiB, 1 ops; 0.0000 sec (59.186 MiB/sec and 15151.5152 "
            "ops/sec)\n");
  EXPECT_EQ(Run("reflink /src").substr(0, 30),
            "linked 0/0 bytes at offset 0\n0");
  EXPECT_EQ(Run("reflink /nope", true), "/nope: No such file or directory\n");
}

TEST_F(IomapshTest, DedupeReports) {
  Run("open -f /a");
  Run("pwrite -q -S 0x61 0 8k");
  Run("open -f /b");
  Run("pwrite -q -S 0x61 0 4k");
  Run("pwrite -q -S 0x62 4k 4k");
  EXPECT_EQ(Run("dedupe /a 0 0 4k"),
            "deduped 4096/4096 bytes at offset 0\n"
            "4 KiB, 1 ops; 0.0000 sec (59.186 MiB/sec and 15151.5152 "
            "ops/sec)\n");
  EXPECT_EQ(Run("dedupe /a 4k 4k 4k", true),
            "XFS_IOC_FILE_EXTENT_SAME: Extents did not match.\n");
  EXPECT_EQ(Run("dedupe /a 0 0", true),
            "bad argument count 3 to dedupe, expected at least 4 "
            "arguments\n");
}

// Runs `line` as a -c command; EXPECTs its failure flag.
std::string RunEach(Shell& shell, const std::string& line, bool fail = false) {
  xfs_io::Output out = shell.ExecuteOnEachFile(line);
  EXPECT_EQ(out.failed, fail) << line << "\n" << out.out << out.err;
  return out.out + out.err;
}

TEST_F(IomapshTest, CommandLineCommandsRunOnEveryOpenFile) {
  Shell& sh = *shell_;
  // With no file open, a file command runs on none; one-shot ones run.
  EXPECT_EQ(RunEach(sh, "pwrite 0 4k"), "");
  EXPECT_EQ(RunEach(sh, "close", true), "no files are open, try 'help open'\n");
  EXPECT_EQ(RunEach(sh, "open -f /one"), "");
  EXPECT_EQ(RunEach(sh, "open -f /two"), "");
  EXPECT_EQ(RunEach(sh, "file"),
            " 000  /one           (foreign,non-sync,non-direct,read-write)\n"
            "[001] /two           (foreign,non-sync,non-direct,read-write)\n");
  EXPECT_EQ(RunEach(sh, "file 0"),
            "[000] /one           (foreign,non-sync,non-direct,read-write)\n"
            " 001  /two           (foreign,non-sync,non-direct,read-write)\n");
  EXPECT_EQ(RunEach(sh, "pwrite -q -S 0x12 0 4k"), "");
  EXPECT_EQ(RunEach(sh, "fiemap"),
            "/one:\n\t0: [0..7]: 2048..2055\n"
            "/two:\n\t0: [0..7]: 2048..2055\n");
  // The iteration leaves the last file current.
  EXPECT_EQ(RunEach(sh, "file"),
            " 000  /one           (foreign,non-sync,non-direct,read-write)\n"
            "[001] /two           (foreign,non-sync,non-direct,read-write)\n");
  // One-shot: reflink runs once, into the current file; stat runs on both.
  EXPECT_EQ(RunEach(sh, "reflink -q /one 0 4k 4k"), "");
  const std::string stats = RunEach(sh, "stat");
  const size_t one = stats.find("stat.size = 4096\n");
  ASSERT_NE(one, std::string::npos) << stats;
  EXPECT_NE(stats.find("stat.size = 8192\n", one), std::string::npos) << stats;
  // Interactive commands (Execute) run once, on the current file.
  EXPECT_EQ(Run("fiemap"), "/two:\n\t0: [0..15]: 2048..2063\n");
}

TEST_F(IomapshTest, CloseKeepsPositionAndListsFiles) {
  Run("open -f /a");
  Run("open -f /b");
  Run("open -f /c");
  Run("file 1");
  EXPECT_EQ(Run("close"),
            " 000  /a             (foreign,non-sync,non-direct,read-write)\n"
            "[001] /c             (foreign,non-sync,non-direct,read-write)\n");
  EXPECT_EQ(Run("close"),
            "[000] /a             (foreign,non-sync,non-direct,read-write)\n");
  EXPECT_EQ(Run("close"), "");
  EXPECT_EQ(Run("file", true), "no files are open, try 'help open'\n");
  EXPECT_EQ(Run("open", true), "no files are open, try 'help open'\n");
}

TEST_F(IomapshTest, ReflinkErrorsNameTheIoctl) {
  Run("open -f /src");
  Run("pwrite -q 0 64k");
  Run("open -f /dst");
  EXPECT_EQ(Run("reflink /src 1000 64k 4k", true),
            "XFS_IOC_CLONE_RANGE: Invalid argument\n");
  EXPECT_EQ(Run("reflink /dst", true), "XFS_IOC_CLONE: Invalid argument\n");
  EXPECT_EQ(Run("reflink /dst 0 0 0", true),
            "XFS_IOC_CLONE: Invalid argument\n");
  EXPECT_EQ(Run("reflink /nosuch 0 0 4k", true),
            "/nosuch: No such file or directory\n");
}

TEST_F(IomapshTest, PreadPassesNonNumbersOnAsXfsIo61) {
  Run("open -f /p");
  Run("pwrite -q 0 8k");
  EXPECT_EQ(Run("pread x 10", true), "pread: Invalid argument\n");
  EXPECT_EQ(Run("pread -q x 10", true), "pread: Invalid argument\n");
  EXPECT_EQ(Run("pread 0 x").substr(0, 57),
            "read 8192/8192 bytes at offset 0\n8 KiB, 2 ops; 0.0000 sec");
  EXPECT_EQ(Run("pread -b 1000 100 x").substr(0, 59),
            "read 8092/8092 bytes at offset 100\n8 KiB, 9 ops; 0.0000 sec");
  EXPECT_EQ(Run("pread 20k x").substr(0, 36),
            "read 0/0 bytes at offset 20480\n0.000");
  // The other numbers are still checked, with xfs_io's messages.
  EXPECT_EQ(Run("pread -b x 0 10", true), "non-numeric bsize -- x\n");
  EXPECT_EQ(Run("pwrite -b x 0 10", true), "non-numeric bsize -- x\n");
  EXPECT_EQ(Run("pwrite 0 x", true), "non-numeric length argument -- x\n");
  // A zero buffer size transfers nothing (and does not spin).
  EXPECT_EQ(Run("pwrite -b 0 0 10").substr(0, 52),
            "wrote 0/10 bytes at offset 0\n0.000000 bytes, 0 ops; ");
}

TEST_F(IomapshTest, BmapWritesBackOnlyForDelalloc) {
  Run("open -f /b");
  Run("falloc 0 16k");
  Run("pwrite -q 4k 4k");  // dirty over unwritten, inside EOF
  const int synced = fs_->synced_fiemaps;
  EXPECT_EQ(Run("bmap -vp"),
            "/b:\n"
            " EXT: FILE-OFFSET      BLOCK-RANGE      AG AG-OFFSET        TOTAL "
            "FLAGS\n"
            "   0: [0..31]:         2048..2079        0 (2048..2079)        32 "
            "010000\n");
  EXPECT_EQ(fs_->synced_fiemaps, synced);
  Run("pwrite -q 16k 4k");  // delalloc past the preallocation
  EXPECT_EQ(Run("bmap -p"),
            "/b:\n"
            "\t0: [0..7]: 2048..2055\n"
            "\t1: [8..15]: 2056..2063\n"
            "\t2: [16..31]: 2064..2079\n"
            "\t3: [32..39]: 2080..2087\n");
  EXPECT_EQ(fs_->synced_fiemaps, synced + 1);
}

TEST_F(IomapshTest, BlockUnitsAndBufferSizeFollowTheVolume) {
  fs_->bsize = 1024;
  Run("open -f /k");
  // "b" is a volume block; the default buffer is one block per op.
  EXPECT_EQ(Run("pwrite 0 3b").substr(0, 58),
            "wrote 3072/3072 bytes at offset 0\n3 KiB, 3 ops; 0.0000 sec");
  EXPECT_EQ(Run("pread 0 4k").substr(0, 57),
            "read 3072/4096 bytes at offset 0\n3 KiB, 3 ops; 0.0000 sec");
}

TEST_F(IomapshTest, HelpCoversEveryCommand) {
  for (const std::string& name : shell_->CommandNames()) {
    std::string help = Run("help " + name);
    EXPECT_EQ(help.rfind(name + " ", 0), 0u) << help;
    EXPECT_NE(help.find(" -- "), std::string::npos) << name;
    EXPECT_GT(help.size(), 40u) << name;
  }
  EXPECT_NE(Run("help").find("pwrite (or w) "), std::string::npos);
  EXPECT_EQ(Run("quit"), "");
  EXPECT_TRUE(shell_->quit());
}

}  // namespace
}  // namespace iomapsh
