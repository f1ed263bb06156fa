// The unary RPCs of a real in-process iomapd, through the client library:
// every RPC, with the errors the syscalls give for bad input.
#include <linux/falloc.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <string>

#include "base/errno.h"
#include "block/device.h"
#include "fs/volume.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/wire_status.h"
#include "server/test_server.h"

namespace server {
namespace {

namespace v1 = ::iomapd::v1;

using client::OpenFile;

constexpr uint32_t kRW = v1::OPEN_FLAG_READ | v1::OPEN_FLAG_WRITE;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ts_ = TestServer::Get();
    c_ = ts_->client.get();
    auto root = c_->VolumeRoot("default");
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = *root;
  }
  // A new empty file named after the running test, open read-write.
  OpenFile NewFile(const std::string& suffix = "") {
    std::string name =
        ::testing::UnitTest::GetInstance()->current_test_info()->name() +
        suffix;
    auto cr = c_->Create(root_, name, 0644, true);
    EXPECT_TRUE(cr.ok()) << cr.status();
    auto f = c_->Open(cr->handle(), kRW);
    EXPECT_TRUE(f.ok()) << f.status();
    return *f;
  }
  int Err(const absl::Status& s) { return -base::ErrnoOf(s); }
  template <typename T>
  int Err(const absl::StatusOr<T>& s) {
    return -base::ErrnoOf(s.status());
  }

  TestServer* ts_;
  client::Client* c_;
  v1::FileHandle root_;
};

TEST_F(ServerTest, ListVolumesAndStatFs) {
  auto vols = c_->ListVolumes();
  ASSERT_TRUE(vols.ok());
  ASSERT_EQ(vols->size(), 2u);  // "default" and the fsdax "dax"
  auto def = std::find_if(
      vols->begin(), vols->end(),
      [](const v1::VolumeInfo& v) { return v.name() == "default"; });
  ASSERT_NE(def, vols->end());
  EXPECT_EQ(def->block_size(), 4096u);
  EXPECT_NE(def->root().inode(), 0u);
  auto st = c_->StatFs("default");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->bsize(), 4096u);
  EXPECT_GT(st->blocks(), st->bfree() / 2);
  EXPECT_GT(st->files(), st->ffree() - 1);
  EXPECT_EQ(Err(c_->StatFs("nosuch")), ENOENT);
}

TEST_F(ServerTest, NamespaceRoundTrip) {
  auto d = c_->Mkdir(root_, "ns_dir", 0755);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->attr().type(), v1::FILE_TYPE_DIRECTORY);
  EXPECT_EQ(d->attr().mode(), 0755u);
  EXPECT_EQ(Err(c_->Mkdir(root_, "ns_dir", 0755)), EEXIST);
  auto f = c_->Create(d->handle(), "a", 0600, true);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->created());
  auto again = c_->Create(d->handle(), "a", 0600, false);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created());
  EXPECT_EQ(again->handle().inode(), f->handle().inode());
  EXPECT_EQ(Err(c_->Create(d->handle(), "a", 0600, true)), EEXIST);
  auto l = c_->Lookup(d->handle(), "a");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->attr().mode(), 0600u);
  EXPECT_EQ(Err(c_->Lookup(d->handle(), "missing")), ENOENT);
  EXPECT_EQ(Err(c_->Lookup(f->handle(), "x")), ENOTDIR);
  EXPECT_EQ(Err(c_->Rmdir(root_, "ns_dir")), ENOTEMPTY);
  EXPECT_EQ(Err(c_->Unlink(root_, "ns_dir")), EISDIR);
  ASSERT_TRUE(c_->Create(d->handle(), "other", 0600, true).ok());
  EXPECT_EQ(Err(c_->Rename(d->handle(), "a", d->handle(), "other", 1)),
            EEXIST);  // RENAME_NOREPLACE
  ASSERT_TRUE(c_->Rename(d->handle(), "a", d->handle(), "other", 2).ok());
  ASSERT_TRUE(c_->Rename(d->handle(), "a", d->handle(), "other", 2).ok());
  EXPECT_EQ(c_->Lookup(d->handle(), "a")->handle().inode(),
            f->handle().inode());  // exchanged twice: back in place
  EXPECT_EQ(Err(c_->Rename(d->handle(), "a", d->handle(), "other", 3)), EINVAL);
  ASSERT_TRUE(c_->Unlink(d->handle(), "other").ok());
  ASSERT_TRUE(c_->Rename(d->handle(), "a", d->handle(), "b", 0).ok());
  EXPECT_EQ(Err(c_->Rename(d->handle(), "b", d->handle(), "c", 4)), EINVAL);
  EXPECT_EQ(Err(c_->Lookup(d->handle(), "a")), ENOENT);
  ASSERT_TRUE(c_->Unlink(d->handle(), "b").ok());
  // The unlinked inode's handle is stale now.
  EXPECT_EQ(Err(c_->Stat(f->handle())), ESTALE);
  ASSERT_TRUE(c_->Rmdir(root_, "ns_dir").ok());
  EXPECT_EQ(Err(c_->Stat(d->handle())), ESTALE);
}

TEST_F(ServerTest, ReaddirPagesWithCookies) {
  auto d = c_->Mkdir(root_, "rd", 0755);
  ASSERT_TRUE(d.ok());
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(
        c_->Create(d->handle(), "f" + std::to_string(i), 0644, true).ok());
  }
  std::set<std::string> seen;
  uint64_t cookie = 0;
  for (int pages = 0;; ++pages) {
    ASSERT_LT(pages, 10);
    auto r = c_->Readdir(d->handle(), cookie, 10);
    ASSERT_TRUE(r.ok());
    EXPECT_LE(r->entries_size(), 10);
    for (const v1::DirEntry& e : r->entries()) {
      seen.insert(e.name());
      EXPECT_EQ(e.type(), v1::FILE_TYPE_REGULAR);
      EXPECT_TRUE(c_->Stat(e.handle()).ok());
      cookie = e.cookie();
    }
    if (r->eof()) break;
  }
  EXPECT_EQ(seen.size(), 25u);
}

TEST_F(ServerTest, StaleAndForeignHandles) {
  v1::FileHandle h = root_;
  h.set_volume("elsewhere");
  EXPECT_EQ(Err(c_->Stat(h)), ESTALE);
  h = root_;
  h.set_generation(root_.generation() + 100);
  EXPECT_EQ(Err(c_->Stat(h)), ESTALE);
  h = root_;
  h.set_inode(1u << 30);
  EXPECT_EQ(Err(c_->Lookup(h, "x")), ESTALE);
  EXPECT_EQ(Err(c_->Open(root_, kRW)), EISDIR);
}

TEST_F(ServerTest, SetAttrModeAndSize) {
  OpenFile f = NewFile();
  v1::SetAttrRequest q;
  *q.mutable_handle() = f.handle;
  q.set_valid(v1::SET_ATTR_MODE | v1::SET_ATTR_SIZE);
  q.set_mode(0640);
  q.set_size(12345);
  auto a = c_->SetAttr(q);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->mode(), 0640u);
  EXPECT_EQ(a->size(), 12345);
  q.set_size(-1);
  EXPECT_EQ(Err(c_->SetAttr(q)), EINVAL);
  q.set_valid(1u << 12);
  EXPECT_EQ(Err(c_->SetAttr(q)), EINVAL);
}

TEST_F(ServerTest, OpenFlagsAndAccessModes) {
  OpenFile f = NewFile();
  EXPECT_EQ(Err(c_->Open(f.handle, 0)), EINVAL);
  EXPECT_EQ(Err(c_->Open(f.handle, 1u << 10)), EINVAL);
  auto direct = c_->Open(f.handle, kRW | v1::OPEN_FLAG_DIRECT);
  ASSERT_TRUE(direct.ok());
  ASSERT_TRUE(c_->Close(*direct).ok());
  auto ro = c_->Open(f.handle, v1::OPEN_FLAG_READ);
  ASSERT_TRUE(ro.ok());
  auto wo = c_->Open(f.handle, v1::OPEN_FLAG_WRITE);
  ASSERT_TRUE(wo.ok());
  EXPECT_NE(ro->open_id, wo->open_id);
  EXPECT_EQ(Err(c_->Write(*ro, 0, "x")), EBADF);
  EXPECT_EQ(Err(c_->Truncate(*ro, 0)), EINVAL);
  EXPECT_EQ(Err(c_->Fallocate(*ro, 0, 0, 4096)), EBADF);
  EXPECT_EQ(Err(c_->MapWrite(*ro, 0, "x")), EACCES);
  EXPECT_EQ(Err(c_->Read(*wo, 0, 1)), EBADF);
  EXPECT_TRUE(c_->Fsync(*ro, false).ok());  // fsync needs no access mode
  // An open_id used with another file's handle, or after close.
  OpenFile other = NewFile("_other");
  OpenFile mixed = *ro;
  mixed.handle = other.handle;
  EXPECT_EQ(Err(c_->Read(mixed, 0, 1)), EBADF);
  ASSERT_TRUE(c_->Close(*ro).ok());
  EXPECT_EQ(Err(c_->Close(*ro)), EBADF);
  EXPECT_EQ(Err(c_->Read(*ro, 0, 1)), EBADF);
  ASSERT_TRUE(c_->Close(*wo).ok());
}

TEST_F(ServerTest, OpenTruncAndAppend) {
  OpenFile f = NewFile();
  ASSERT_EQ(*c_->Write(f, 0, std::string(1000, 'a')), 1000);
  auto ap = c_->Open(f.handle, v1::OPEN_FLAG_WRITE | v1::OPEN_FLAG_APPEND);
  ASSERT_TRUE(ap.ok());
  ASSERT_EQ(*c_->Write(*ap, 0, "tail"), 4);
  EXPECT_EQ(*c_->Read(f, 996, 100), "aaaatail");
  auto tr = c_->Open(f.handle, kRW | v1::OPEN_FLAG_TRUNC);
  ASSERT_TRUE(tr.ok());
  EXPECT_EQ(tr->attr.size(), 0);
  EXPECT_EQ(*c_->Read(f, 0, 100), "");
  EXPECT_EQ(Err(c_->Open(f.handle, v1::OPEN_FLAG_READ | v1::OPEN_FLAG_TRUNC)),
            EINVAL);
}

TEST_F(ServerTest, ReadWriteAndTheirErrors) {
  OpenFile f = NewFile();
  std::string data(300000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  ASSERT_EQ(*c_->Write(f, 5000, data), 300000);
  EXPECT_EQ(*c_->Read(f, 5000, 300000), data);
  EXPECT_EQ(*c_->Read(f, 0, 5000), std::string(5000, '\0'));
  EXPECT_EQ(c_->Read(f, 305000 - 10, 100)->size(), 10u);  // short at EOF
  EXPECT_EQ(*c_->Read(f, 1 << 30, 100), "");              // past EOF
  EXPECT_EQ(Err(c_->Read(f, -1, 10)), EINVAL);
  EXPECT_EQ(Err(c_->Read(f, 0, -10)), EINVAL);
  EXPECT_EQ(Err(c_->Read(f, INT64_MAX - 5, 10)), EINVAL);
  EXPECT_EQ(Err(c_->Write(f, -4096, "x")), EINVAL);
  EXPECT_EQ(Err(c_->Read(f, 0, (1 << 20) + 1)), EMSGSIZE);
  EXPECT_EQ(Err(c_->Write(f, 0, std::string((1 << 20) + 1, 'x'))), EMSGSIZE);
  EXPECT_EQ(Err(c_->Read(f, 0, 10, 1u << 9)), EINVAL);
  EXPECT_EQ(Err(c_->Read(f, 0, 10, v1::IO_FLAG_DIRECT)), EINVAL);  // unaligned
  EXPECT_EQ(Err(c_->Write(f, 0, "x", v1::IO_FLAG_ATOMIC)), EINVAL);  // buffered
  EXPECT_EQ(Err(c_->Read(f, 0, 4096, v1::IO_FLAG_ATOMIC | v1::IO_FLAG_DIRECT)),
            EOPNOTSUPP);
  EXPECT_EQ(*c_->Write(f, 0, "x", v1::IO_FLAG_HIPRI), 1);  // a hint
  // NOWAIT, DONTCACHE and DSYNC are honoured.
  EXPECT_EQ(*c_->Write(f, 0, "nowait", v1::IO_FLAG_NOWAIT), 6);
  EXPECT_EQ(*c_->Write(f, 6, "dsync", v1::IO_FLAG_DSYNC), 5);
  EXPECT_EQ(*c_->Read(f, 0, 11, v1::IO_FLAG_DONTCACHE), "nowaitdsync");
  // done_before without direct I/O.
  v1::ReadRequest q;
  *q.mutable_handle() = f.handle;
  q.set_open_id(f.open_id);
  q.set_length(1);
  q.set_done_before(1);
  v1::ReadResponse r;
  grpc::ClientContext ctx;
  grpc::Status s = c_->stub()->Read(&ctx, q, &r);
  EXPECT_EQ(wire::ErrnumOf(s), EINVAL);
  EXPECT_FALSE(s.error_message().empty());
}

// O_DIRECT through the binary: aligned transfers straight to the device,
// coherent with the page cache, the kernel's errors for the rest.
TEST_F(ServerTest, DirectIo) {
  OpenFile f = NewFile();
  auto d = c_->Open(f.handle, kRW | v1::OPEN_FLAG_DIRECT);
  ASSERT_TRUE(d.ok());
  std::string data(8192, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 13);
  ASSERT_EQ(*c_->Write(*d, 4096, data), 8192);
  EXPECT_EQ(*c_->Read(*d, 4096, 8192), data);
  EXPECT_EQ(*c_->Read(f, 0, 20000),
            std::string(4096, '\0') + data);  // buffered sees it
  ASSERT_EQ(*c_->Write(f, 0, std::string(4096, 'b')), 4096);  // dirty cache
  EXPECT_EQ(*c_->Read(*d, 0, 4096), std::string(4096, 'b'));  // flushed first
  EXPECT_EQ(c_->Read(*d, 8192, 65536)->size(), 4096u);        // short at EOF
  EXPECT_EQ(Err(c_->Write(*d, 100, std::string(4096, 'x'))), EINVAL);
  EXPECT_EQ(Err(c_->Write(*d, 0, std::string(100, 'x'))), EINVAL);
  EXPECT_EQ(Err(c_->Read(f, 512, 1000, v1::IO_FLAG_DIRECT)), EINVAL);
  // RWF_ATOMIC: a power of two, naturally aligned.
  EXPECT_EQ(*c_->Write(*d, 4096, std::string(4096, 'a'), v1::IO_FLAG_ATOMIC),
            4096);
  EXPECT_EQ(
      Err(c_->Write(*d, 4096, std::string(12288, 'a'), v1::IO_FLAG_ATOMIC)),
      EINVAL);
  EXPECT_EQ(*c_->Read(f, 4096, 4096), std::string(4096, 'a'));
  // done_before: counted in the result.
  v1::WriteRequest q;
  *q.mutable_handle() = f.handle;
  q.set_open_id(d->open_id);
  q.set_offset(12288);
  q.set_data(std::string(4096, 'z'));
  q.set_done_before(100);
  v1::WriteResponse r;
  grpc::ClientContext ctx;
  ASSERT_TRUE(c_->stub()->Write(&ctx, q, &r).ok());
  EXPECT_EQ(r.result(), 4096 + 100);
  EXPECT_EQ(*c_->Read(f, 12288, 4096), std::string(4096, 'z'));
  ASSERT_TRUE(c_->Close(*d).ok());
}

// An fsdax volume through the binary: reads, writes (buffered and direct
// requests alike go through the mapping), mapped stores, truncate zeroing
// and fsync; the page cache is never used (docs/fs-volume.md).
TEST_F(ServerTest, DaxVolume) {
  auto root = c_->VolumeRoot("dax");
  ASSERT_TRUE(root.ok()) << root.status();
  auto cr = c_->Create(*root, "d", 0644, true);
  ASSERT_TRUE(cr.ok()) << cr.status();
  auto f = c_->Open(cr->handle(), kRW);
  ASSERT_TRUE(f.ok());
  std::string data(20000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 3);
  ASSERT_EQ(*c_->Write(*f, 100, data), 20000);
  EXPECT_EQ(*c_->Read(*f, 100, 20000), data);
  EXPECT_EQ(*c_->Read(*f, 0, 100), std::string(100, '\0'));
  ASSERT_EQ(*c_->Write(*f, 0, std::string(4096, 'D'), v1::IO_FLAG_DIRECT),
            4096);
  ASSERT_EQ(*c_->MapWrite(*f, 8192, "mapped"), 6);
  EXPECT_EQ(*c_->Read(*f, 8192, 6), "mapped");
  ASSERT_TRUE(c_->Truncate(*f, 5000).ok());
  ASSERT_TRUE(c_->Truncate(*f, 9000).ok());
  EXPECT_EQ(*c_->Read(*f, 4096, 4904),
            data.substr(3996, 904) + std::string(4000, '\0'));
  EXPECT_TRUE(c_->Fsync(*f, false).ok());
  ASSERT_TRUE(c_->Close(*f).ok());
}

TEST_F(ServerTest, HandleOnlyOperations) {
  OpenFile f = NewFile();
  OpenFile h{f.handle, 0, {}};
  ASSERT_EQ(*c_->Write(h, 0, "through the handle"), 18);
  EXPECT_TRUE(c_->Fsync(h, true).ok());
  EXPECT_EQ(*c_->Read(h, 0, 100), "through the handle");
  EXPECT_EQ(*c_->Seek(h, 0, v1::WHENCE_HOLE), 18);
  ASSERT_TRUE(c_->Truncate(h, 7).ok());
  EXPECT_EQ(*c_->Read(f, 0, 100), "through");
}

TEST_F(ServerTest, FsyncRangesAndSeek) {
  OpenFile f = NewFile();
  ASSERT_EQ(*c_->Write(f, 1 << 20, std::string(8192, 'd')), 8192);
  EXPECT_TRUE(c_->Fsync(f, false, 0, 0).ok());
  EXPECT_TRUE(c_->Fsync(f, true, 1 << 20, 4096).ok());
  EXPECT_TRUE(c_->Fsync(f, true, INT64_MAX - 1, INT64_MAX).ok());
  EXPECT_EQ(Err(c_->Fsync(f, false, -1, 0)), EINVAL);
  EXPECT_EQ(*c_->Seek(f, 0, v1::WHENCE_DATA), 1 << 20);
  EXPECT_EQ(*c_->Seek(f, 0, v1::WHENCE_HOLE), 0);
  EXPECT_EQ(*c_->Seek(f, 1 << 20, v1::WHENCE_HOLE), (1 << 20) + 8192);
  EXPECT_EQ(Err(c_->Seek(f, (1 << 20) + 8192, v1::WHENCE_DATA)), ENXIO);
  EXPECT_EQ(Err(c_->Seek(f, -1, v1::WHENCE_DATA)), ENXIO);
  EXPECT_EQ(Err(c_->Seek(f, 0, v1::WHENCE_UNSPECIFIED)), EINVAL);
}

TEST_F(ServerTest, FiemapAndBmap) {
  OpenFile f = NewFile();
  ASSERT_EQ(*c_->Write(f, 0, std::string(8192, 'a')), 8192);
  ASSERT_TRUE(c_->Fallocate(f, FALLOC_FL_KEEP_SIZE, 65536, 65536).ok());
  v1::FiemapRequest q;
  *q.mutable_handle() = f.handle;
  q.set_open_id(f.open_id);
  q.set_length(-1);
  q.set_extent_count(16);
  q.set_flags(1);  // FIEMAP_FLAG_SYNC
  auto r = c_->Fiemap(q);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->mapped_extents(), 2u);
  EXPECT_EQ(r->extents(0).logical(), 0u);
  EXPECT_EQ(r->extents(0).length(), 8192u);
  EXPECT_EQ(r->extents(1).logical(), 65536u);
  EXPECT_EQ(r->extents(1).flags(), 0x800u | 0x1u);  // UNWRITTEN | LAST
  q.set_extent_count(0);
  r = c_->Fiemap(q);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->mapped_extents(), 2u);
  EXPECT_EQ(r->extents_size(), 0);
  q.set_flags(0x4 | 0x40);  // FIEMAP_FLAG_CACHE and an unknown bit
  auto raw = c_->FiemapRaw(q);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->errnum(), EBADR);
  EXPECT_EQ(raw->bad_flags(), 0x44u);
  auto b = c_->Bmap(f.handle, 0);
  ASSERT_TRUE(b.ok());
  EXPECT_GT(*b, 0);
  EXPECT_EQ(*c_->Bmap(f.handle, 16), 0);  // unwritten
  EXPECT_EQ(*c_->Bmap(f.handle, 5), 0);   // hole
}

TEST_F(ServerTest, TruncateFallocateUnshare) {
  OpenFile f = NewFile();
  ASSERT_TRUE(c_->Fallocate(f, 0, 0, 1 << 20).ok());
  EXPECT_EQ(c_->Stat(f.handle)->size(), 1 << 20);
  EXPECT_EQ(c_->Stat(f.handle)->blocks(), (1 << 20) / 512);
  EXPECT_EQ(Err(c_->Fallocate(f, FALLOC_FL_PUNCH_HOLE, 0, 4096)), EOPNOTSUPP);
  EXPECT_EQ(Err(c_->Fallocate(f, 0, 0, 0)), EINVAL);
  EXPECT_EQ(Err(c_->Fallocate(f, 0, -1, 10)), EINVAL);
  EXPECT_EQ(Err(c_->Fallocate(f, 0x80, 0, 4096)), EOPNOTSUPP);
  ASSERT_TRUE(
      c_->Fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 65536)
          .ok());
  EXPECT_EQ(c_->Stat(f.handle)->blocks(), ((1 << 20) - 65536) / 512);
  ASSERT_TRUE(c_->Truncate(f, 4096).ok());
  EXPECT_EQ(c_->Stat(f.handle)->size(), 4096);
  EXPECT_EQ(Err(c_->Truncate(f, -1)), EINVAL);
  // Nothing is shared: unshare has nothing to do and succeeds.
  EXPECT_TRUE(c_->Unshare(f, 0, 4096).ok());
  EXPECT_EQ(Err(c_->Unshare(f, -1, 4096)), EINVAL);
}

TEST_F(ServerTest, MapWrite) {
  OpenFile f = NewFile();
  ASSERT_TRUE(c_->Truncate(f, 10000).ok());
  EXPECT_EQ(*c_->MapWrite(f, 100, "mapped"), 6);
  EXPECT_EQ(*c_->Read(f, 100, 6), "mapped");
  EXPECT_EQ(Err(c_->MapWrite(f, 1 << 20, "x")), EFAULT);
  EXPECT_EQ(Err(c_->MapWrite(f, -1, "x")), EINVAL);
  EXPECT_EQ(c_->Stat(f.handle)->size(), 10000);
}

TEST_F(ServerTest, SwapActivateAndDeactivate) {
  OpenFile f = NewFile();
  ASSERT_EQ(*c_->Write(f, 0, std::string(16 * 4096, 's')), 16 * 4096);
  auto sw = c_->SwapActivate(f.handle);
  ASSERT_TRUE(sw.ok()) << sw.status();
  EXPECT_GE(sw->result(), 1);
  EXPECT_EQ(sw->pages(), 15u);
  EXPECT_EQ(Err(c_->SwapActivate(f.handle)), EBUSY);
  EXPECT_EQ(Err(c_->Write(f, 0, "x")), ETXTBSY);
  EXPECT_EQ(Err(c_->Fallocate(f, 0, 0, 4096)), ETXTBSY);
  ASSERT_TRUE(c_->SwapDeactivate(f.handle).ok());
  EXPECT_EQ(Err(c_->SwapDeactivate(f.handle)), EINVAL);
  EXPECT_EQ(*c_->Write(f, 0, "x"), 1);
  OpenFile holey = NewFile("_holey");
  ASSERT_TRUE(c_->Truncate(holey, 1 << 20).ok());
  EXPECT_EQ(Err(c_->SwapActivate(holey.handle)), EINVAL);
}

TEST_F(ServerTest, CloneSharesBlocksAndCopiesOnWrite) {
  OpenFile a = NewFile("_a");
  OpenFile b = NewFile("_b");
  ASSERT_EQ(*c_->Write(a, 0, std::string(65536, 'a')), 65536);
  auto n = c_->CloneRange(a.handle, 0, b.handle, 8192, 0);  // to src EOF
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 65536);
  EXPECT_EQ(c_->Stat(b.handle)->size(), 8192 + 65536);
  v1::FiemapRequest q;
  *q.mutable_handle() = b.handle;
  q.set_length(-1);
  q.set_extent_count(8);
  auto fm = c_->Fiemap(q);
  ASSERT_TRUE(fm.ok());
  ASSERT_EQ(fm->extents_size(), 1);
  EXPECT_NE(fm->extents(0).flags() & 0x2000u, 0u);  // SHARED
  ASSERT_EQ(*c_->Write(b, 8192, "copy"), 4);        // copy-on-write
  EXPECT_EQ(*c_->Read(a, 0, 4), "aaaa");
  EXPECT_EQ(*c_->Read(b, 8192, 6), "copyaa");
  EXPECT_EQ(Err(c_->CloneRange(a.handle, 1, b.handle, 0, 4096)), EINVAL);
  EXPECT_EQ(Err(c_->CloneRange(a.handle, 0, a.handle, 4096, 8192)), EINVAL);
  EXPECT_EQ(Err(c_->CloneRange(root_, 0, b.handle, 0, 4096)), EISDIR);
  v1::FileHandle elsewhere = b.handle;
  elsewhere.set_volume("other");
  EXPECT_EQ(Err(c_->CloneRange(a.handle, 0, elsewhere, 0, 4096)), ESTALE);
}

TEST_F(ServerTest, DedupePerTargetResults) {
  OpenFile a = NewFile("_a");
  OpenFile same = NewFile("_same");
  OpenFile differs = NewFile("_differs");
  ASSERT_EQ(*c_->Write(a, 0, std::string(8192, 'x')), 8192);
  ASSERT_EQ(*c_->Write(same, 0, std::string(8192, 'x')), 8192);
  ASSERT_EQ(*c_->Write(differs, 0, std::string(8192, 'y')), 8192);
  v1::DedupeRangeRequest q;
  *q.mutable_src() = a.handle;
  q.set_length(8192);
  *q.add_targets()->mutable_dst() = same.handle;
  *q.add_targets()->mutable_dst() = differs.handle;
  v1::DedupeTarget* stale = q.add_targets();
  *stale->mutable_dst() = same.handle;
  stale->mutable_dst()->set_generation(same.handle.generation() + 9);
  auto r = c_->DedupeRange(q);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->results_size(), 3);
  EXPECT_EQ(r->results(0).errnum(), 0);
  EXPECT_EQ(r->results(0).status(), 0);  // FILE_DEDUPE_RANGE_SAME
  EXPECT_EQ(r->results(0).bytes_deduped(), 8192);
  EXPECT_EQ(r->results(1).errnum(), 0);
  EXPECT_EQ(r->results(1).status(), 1);  // FILE_DEDUPE_RANGE_DIFFERS
  EXPECT_EQ(r->results(2).errnum(), ESTALE);
  *q.mutable_src() = root_;
  EXPECT_EQ(Err(c_->DedupeRange(q)), EISDIR);
}

// Last: the server stops cleanly on SIGTERM (exit 0, and in an ASAN build
// LeakSanitizer found nothing) and leaves a volume fsck calls clean.
TEST_F(ServerTest, ZzSigtermUnmountsCleanly) {
  EXPECT_EQ(ts_->Stop(), 0);
  block::OpenOptions o;
  auto dev = block::OpenDevice(ts_->image, o);
  ASSERT_TRUE(dev.ok());
  fs::FsckResult fsck = fs::FsckVolume(**dev);
  EXPECT_TRUE(fsck.clean()) << fsck.problems[0];
}

}  // namespace
}  // namespace server
