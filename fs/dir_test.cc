#include "fs/dir.h"

#include <cerrno>
#include <string>
#include <vector>

#include "fs/format.h"
#include "gtest/gtest.h"

namespace fs {
namespace {

constexpr FileHandle kRoot{format::kRootIno, 1};

class NamespaceTest : public ::testing::Test {
 protected:
  NamespaceTest() : ns_(Options(), nullptr) {
    EXPECT_EQ(ns_.InitRoot(0755), 0);
  }
  static NamespaceOptions Options() {
    NamespaceOptions o;
    o.max_inodes = 64;
    return o;
  }
  void TearDown() override { ExpectClean(); }
  void ExpectClean() {
    std::vector<std::string> problems;
    ns_.Check(&problems);
    for (const auto& p : problems) ADD_FAILURE() << p;
  }
  static FileHandle H(const InodeAttr& a) { return {a.ino, a.generation}; }
  InodeAttr Attr(FileHandle h) {
    InodeAttr a;
    EXPECT_EQ(ns_.GetAttr(h, &a), 0);
    return a;
  }
  std::vector<std::string> Names(FileHandle dir) {
    std::vector<DirEntryInfo> out;
    bool eof;
    EXPECT_EQ(ns_.Readdir(dir, 0, 1000, &out, &eof), 0);
    std::vector<std::string> names;
    for (auto& e : out) names.push_back(e.name);
    return names;
  }
  Namespace ns_;
};

TEST_F(NamespaceTest, CreateExclusiveAndLookup) {
  InodeAttr a, b, c;
  ASSERT_EQ(ns_.Create(kRoot, "f", 0644, true, &a), 0);
  EXPECT_TRUE(S_ISREG(a.mode));
  EXPECT_EQ(a.mode & 07777, 0644u);
  EXPECT_EQ(a.nlink, 1u);
  EXPECT_EQ(ns_.Create(kRoot, "f", 0644, true, &b), -EEXIST);
  ASSERT_EQ(ns_.Create(kRoot, "f", 0600, false, &b), 0);  // opens the existing
  EXPECT_EQ(b.ino, a.ino);
  ASSERT_EQ(ns_.Lookup(kRoot, "f", &c), 0);
  EXPECT_EQ(c, a);
  EXPECT_EQ(ns_.Lookup(kRoot, "g", &c), -ENOENT);
  EXPECT_EQ(ns_.Lookup(H(a), "x", &c), -ENOTDIR);
  ASSERT_EQ(ns_.Mkdir(kRoot, "d", 0755, &c), 0);
  EXPECT_EQ(ns_.Create(kRoot, "d", 0644, false, &b), -EISDIR);
  EXPECT_EQ(Attr(kRoot).nlink, 3u);
}

TEST_F(NamespaceTest, NamesAreValidated) {
  InodeAttr a;
  EXPECT_EQ(ns_.Create(kRoot, std::string(256, 'n'), 0644, true, &a),
            -ENAMETOOLONG);
  EXPECT_EQ(ns_.Create(kRoot, std::string(255, 'n'), 0644, true, &a), 0);
  EXPECT_EQ(ns_.Create(kRoot, "a/b", 0644, true, &a), -EINVAL);
  EXPECT_EQ(ns_.Create(kRoot, std::string("a\0b", 3), 0644, true, &a), -EINVAL);
  EXPECT_EQ(ns_.Create(kRoot, ".", 0644, true, &a), -EINVAL);
  EXPECT_EQ(ns_.Mkdir(kRoot, "..", 0755, &a), -EINVAL);
  EXPECT_EQ(ns_.Create(kRoot, "", 0644, true, &a), -EINVAL);
  EXPECT_EQ(ns_.Rename(kRoot, "x", kRoot, "a/b"), -EINVAL);
}

TEST_F(NamespaceTest, ReaddirCookiesAreStable) {
  InodeAttr a;
  for (int i = 0; i < 10; ++i)
    ASSERT_EQ(ns_.Create(kRoot, "f" + std::to_string(i), 0644, true, &a), 0);
  std::vector<DirEntryInfo> page;
  bool eof;
  ASSERT_EQ(ns_.Readdir(kRoot, 0, 4, &page, &eof), 0);
  ASSERT_EQ(page.size(), 4u);
  EXPECT_FALSE(eof);
  EXPECT_EQ(page[0].cookie, format::kFirstDirCookie);
  const uint64_t resume = page.back().cookie;
  // Changes behind the cursor and new names do not disturb the walk.
  ASSERT_EQ(ns_.Unlink(kRoot, "f0"), 0);
  ASSERT_EQ(ns_.Create(kRoot, "late", 0644, true, &a), 0);
  std::vector<std::string> rest;
  for (uint64_t c = resume; !eof;) {
    ASSERT_EQ(ns_.Readdir(kRoot, c, 3, &page, &eof), 0);
    for (auto& e : page) rest.push_back(e.name), c = e.cookie;
  }
  EXPECT_EQ(rest, (std::vector<std::string>{"f4", "f5", "f6", "f7", "f8", "f9",
                                            "late"}));
}

TEST_F(NamespaceTest, UnlinkRmdirAndLinkCounts) {
  InodeAttr f, d, sub, g;
  ASSERT_EQ(ns_.Create(kRoot, "f", 0644, true, &f), 0);
  ASSERT_EQ(ns_.Mkdir(kRoot, "d", 0755, &d), 0);
  ASSERT_EQ(ns_.Link(H(f), H(d), "f2", &g), 0);
  EXPECT_EQ(g.nlink, 2u);
  EXPECT_EQ(ns_.Link(H(d), kRoot, "dl", &g), -EPERM);
  EXPECT_EQ(ns_.Unlink(kRoot, "d"), -EISDIR);
  EXPECT_EQ(ns_.Rmdir(kRoot, "f"), -ENOTDIR);
  EXPECT_EQ(ns_.Rmdir(kRoot, "d"), -ENOTEMPTY);
  ASSERT_EQ(ns_.Mkdir(H(d), "sub", 0755, &sub), 0);
  EXPECT_EQ(Attr(H(d)).nlink, 3u);
  ASSERT_EQ(ns_.Unlink(kRoot, "f"), 0);
  EXPECT_EQ(Attr(H(f)).nlink, 1u);
  ASSERT_EQ(ns_.Unlink(H(d), "f2"), 0);
  EXPECT_EQ(ns_.GetAttr(H(f), &g), -ESTALE);  // freed
  ASSERT_EQ(ns_.Rmdir(H(d), "sub"), 0);
  ASSERT_EQ(ns_.Rmdir(kRoot, "d"), 0);
  EXPECT_EQ(Attr(kRoot).nlink, 2u);
  EXPECT_EQ(ns_.inode_count(), 1u);
  EXPECT_EQ(ns_.Unlink(kRoot, "f"), -ENOENT);
}

TEST_F(NamespaceTest, StaleHandleAfterReuse) {
  InodeAttr a, b;
  ASSERT_EQ(ns_.Create(kRoot, "a", 0644, true, &a), 0);
  ASSERT_EQ(ns_.Unlink(kRoot, "a"), 0);
  ASSERT_EQ(ns_.Create(kRoot, "b", 0644, true, &b), 0);
  EXPECT_EQ(b.ino, a.ino);                // the inode number is reused...
  EXPECT_GT(b.generation, a.generation);  // ...under a new generation
  EXPECT_EQ(ns_.GetAttr(H(a), &b), -ESTALE);
  EXPECT_EQ(ns_.Open(H(a)), -ESTALE);
}

TEST_F(NamespaceTest, RenameSemantics) {
  InodeAttr a, b, d, e, sub, x;
  ASSERT_EQ(ns_.Create(kRoot, "a", 0644, true, &a), 0);
  ASSERT_EQ(ns_.Create(kRoot, "b", 0644, true, &b), 0);
  ASSERT_EQ(ns_.Mkdir(kRoot, "d", 0755, &d), 0);
  ASSERT_EQ(ns_.Mkdir(kRoot, "e", 0755, &e), 0);
  ASSERT_EQ(ns_.Mkdir(H(d), "sub", 0755, &sub), 0);
  EXPECT_EQ(ns_.Rename(kRoot, "a", kRoot, "d"), -EISDIR);
  EXPECT_EQ(ns_.Rename(kRoot, "d", kRoot, "a"), -ENOTDIR);
  EXPECT_EQ(ns_.Rename(kRoot, "e", kRoot, "d"), -ENOTEMPTY);
  EXPECT_EQ(ns_.Rename(kRoot, "d", H(sub), "loop"), -EINVAL);
  EXPECT_EQ(ns_.Rename(kRoot, "d", H(d), "self"), -EINVAL);
  EXPECT_EQ(ns_.Rename(kRoot, "nope", kRoot, "x"), -ENOENT);
  // File over file: the victim is freed.
  ASSERT_EQ(ns_.Rename(kRoot, "a", kRoot, "b"), 0);
  EXPECT_EQ(ns_.GetAttr(H(b), &x), -ESTALE);
  ASSERT_EQ(ns_.Lookup(kRoot, "b", &x), 0);
  EXPECT_EQ(x.ino, a.ino);
  // Directory across parents fixes both link counts; over an empty dir.
  ASSERT_EQ(ns_.Rename(H(d), "sub", H(e), "moved"), 0);
  EXPECT_EQ(Attr(H(d)).nlink, 2u);
  EXPECT_EQ(Attr(H(e)).nlink, 3u);
  ASSERT_EQ(ns_.Rename(kRoot, "d", H(e), "moved"), 0);
  EXPECT_EQ(ns_.GetAttr(H(sub), &x), -ESTALE);
  EXPECT_EQ(Attr(kRoot).nlink, 3u);
  EXPECT_EQ(Attr(H(e)).nlink, 3u);
  EXPECT_EQ(Names(kRoot), (std::vector<std::string>{"e", "b"}));
  // Rename onto another link of the same inode does nothing.
  ASSERT_EQ(ns_.Link(H(a), kRoot, "a2", &x), 0);
  ASSERT_EQ(ns_.Rename(kRoot, "a2", kRoot, "b"), 0);
  EXPECT_EQ(Attr(H(a)).nlink, 2u);
}

// renameat2 flags: NOREPLACE refuses any existing target; EXCHANGE swaps
// two existing names atomically, across directories and kinds.
TEST_F(NamespaceTest, RenameNoreplace) {
  constexpr unsigned kNoreplace = Namespace::kRenameNoreplace;
  InodeAttr a, b, x;
  ASSERT_EQ(ns_.Create(kRoot, "a", 0644, true, &a), 0);
  ASSERT_EQ(ns_.Create(kRoot, "b", 0644, true, &b), 0);
  EXPECT_EQ(ns_.Rename(kRoot, "a", kRoot, "b", kNoreplace), -EEXIST);
  EXPECT_EQ(ns_.Rename(kRoot, "a", kRoot, "a", kNoreplace), -EEXIST);
  ASSERT_EQ(ns_.Link(H(a), kRoot, "a2", &x), 0);
  EXPECT_EQ(ns_.Rename(kRoot, "a", kRoot, "a2", kNoreplace), -EEXIST);
  EXPECT_EQ(ns_.Rename(kRoot, "nope", kRoot, "c", kNoreplace), -ENOENT);
  ASSERT_EQ(ns_.Rename(kRoot, "a", kRoot, "c", kNoreplace), 0);
  ASSERT_EQ(ns_.Lookup(kRoot, "c", &x), 0);
  EXPECT_EQ(x.ino, a.ino);
  EXPECT_EQ(ns_.Lookup(kRoot, "b", &x), 0);
  EXPECT_EQ(x.ino, b.ino);
  EXPECT_EQ(ns_.Rename(kRoot, "c", kRoot, "d", 4), -EINVAL);  // WHITEOUT
  EXPECT_EQ(ns_.Rename(kRoot, "c", kRoot, "b",
                       kNoreplace | Namespace::kRenameExchange),
            -EINVAL);
}

TEST_F(NamespaceTest, RenameExchange) {
  constexpr unsigned kExchange = Namespace::kRenameExchange;
  InodeAttr f, g, d, e, sub, x;
  ASSERT_EQ(ns_.Create(kRoot, "f", 0644, true, &f), 0);
  ASSERT_EQ(ns_.Create(kRoot, "g", 0644, true, &g), 0);
  ASSERT_EQ(ns_.Mkdir(kRoot, "d", 0755, &d), 0);
  ASSERT_EQ(ns_.Mkdir(kRoot, "e", 0755, &e), 0);
  ASSERT_EQ(ns_.Mkdir(H(d), "sub", 0755, &sub), 0);
  EXPECT_EQ(ns_.Rename(kRoot, "f", kRoot, "none", kExchange), -ENOENT);
  EXPECT_EQ(ns_.Rename(kRoot, "none", kRoot, "f", kExchange), -ENOENT);
  // Neither side may end up under itself.
  EXPECT_EQ(ns_.Rename(kRoot, "d", H(d), "sub", kExchange), -EINVAL);
  EXPECT_EQ(ns_.Rename(H(d), "sub", kRoot, "d", kExchange), -EINVAL);
  // Two files of one directory: the names swap, both inodes survive.
  ASSERT_EQ(ns_.Rename(kRoot, "f", kRoot, "g", kExchange), 0);
  ASSERT_EQ(ns_.Lookup(kRoot, "f", &x), 0);
  EXPECT_EQ(x.ino, g.ino);
  ASSERT_EQ(ns_.Lookup(kRoot, "g", &x), 0);
  EXPECT_EQ(x.ino, f.ino);
  EXPECT_EQ(Attr(H(f)).nlink, 1u);
  // A non-empty directory with a file of another directory: no ENOTEMPTY,
  // ENOTDIR or EISDIR; the link counts follow the subdirectory.
  ASSERT_EQ(ns_.Rename(kRoot, "d", H(e), "z", 0), 0);
  ASSERT_EQ(ns_.Create(kRoot, "file", 0644, true, &x), 0);
  EXPECT_EQ(Attr(kRoot).nlink, 3u);  // root: e only
  ASSERT_EQ(ns_.Rename(H(e), "z", kRoot, "file", kExchange), 0);
  EXPECT_EQ(Attr(kRoot).nlink, 4u);  // root: e and d
  EXPECT_EQ(Attr(H(e)).nlink, 2u);   // e: none
  ASSERT_EQ(ns_.Lookup(kRoot, "file", &x), 0);
  EXPECT_EQ(x.ino, d.ino);
  ASSERT_EQ(ns_.Lookup(H(e), "z", &x), 0);
  EXPECT_TRUE(S_ISREG(x.mode));
  ASSERT_EQ(ns_.Lookup(H(d), "sub", &x), 0);  // d kept its contents
  EXPECT_EQ(x.ino, sub.ino);
  // Two directories of different parents.
  ASSERT_EQ(ns_.Rename(H(d), "sub", H(e), "z", kExchange), 0);
  ASSERT_EQ(ns_.Lookup(H(e), "z", &x), 0);
  EXPECT_EQ(x.ino, sub.ino);
  EXPECT_EQ(Attr(H(e)).nlink, 3u);
  EXPECT_EQ(Attr(H(d)).nlink, 2u);
  // Another link of the same inode: nothing to do.
  ASSERT_EQ(ns_.Link(H(f), kRoot, "g2", &x), 0);
  EXPECT_EQ(ns_.Rename(kRoot, "g", kRoot, "g2", kExchange), 0);
  EXPECT_EQ(Names(H(e)), (std::vector<std::string>{"z"}));
}

TEST_F(NamespaceTest, OrphansFreedAtLastClose) {
  InodeAttr a, x;
  ASSERT_EQ(ns_.Create(kRoot, "a", 0644, true, &a), 0);
  ASSERT_EQ(ns_.Open(H(a)), 0);
  ASSERT_EQ(ns_.Open(H(a)), 0);
  ASSERT_EQ(ns_.Unlink(kRoot, "a"), 0);
  EXPECT_EQ(ns_.orphans(), std::vector<uint64_t>{a.ino});
  EXPECT_EQ(ns_.GetAttr(H(a), &x), 0);  // still usable while open
  EXPECT_EQ(x.nlink, 0u);
  ExpectClean();
  ASSERT_EQ(ns_.Close(a.ino), 0);
  EXPECT_EQ(ns_.GetAttr(H(a), &x), 0);
  ASSERT_EQ(ns_.Close(a.ino), 0);
  EXPECT_EQ(ns_.GetAttr(H(a), &x), -ESTALE);
  EXPECT_TRUE(ns_.orphans().empty());
  EXPECT_EQ(ns_.Close(a.ino), -EBADF);
}

TEST_F(NamespaceTest, LimitsAndSetAttr) {
  InodeAttr a, v;
  ASSERT_EQ(ns_.Create(kRoot, "a", 0644, true, &a), 0);
  v.size = format::kMaxFileSize + 1;
  EXPECT_EQ(ns_.SetAttr(H(a), kSetSize, v, &a), -EFBIG);
  v.size = 12345;
  v.mode = 0600 | S_IFDIR;  // type bits are ignored
  v.uid = 7;
  ASSERT_EQ(ns_.SetAttr(H(a), kSetSize | kSetMode | kSetUid, v, &a), 0);
  EXPECT_EQ(a.size, 12345u);
  EXPECT_EQ(a.mode, S_IFREG | 0600u);
  EXPECT_EQ(a.uid, 7u);
  EXPECT_EQ(ns_.SetAttr(kRoot, kSetSize, v, &v), -EISDIR);
  // 64 inodes at most (root + 63).
  int made = 1;
  while (ns_.Create(kRoot, "n" + std::to_string(made), 0644, true, &v) == 0)
    ++made;
  EXPECT_EQ(ns_.inode_count(), 64u);
  EXPECT_EQ(ns_.Create(kRoot, "full", 0644, true, &v), -ENOSPC);
  EXPECT_EQ(ns_.Lookup(kRoot, "full", &v), -ENOENT);
}

TEST_F(NamespaceTest, SerializeLoadRoundTrip) {
  InodeAttr a, d;
  ASSERT_EQ(ns_.Mkdir(kRoot, "d", 0755, &d), 0);
  ASSERT_EQ(ns_.Create(H(d), "a", 0644, true, &a), 0);
  ASSERT_EQ(ns_.Open(H(a)), 0);
  ASSERT_EQ(ns_.Unlink(H(d), "a"), 0);
  ASSERT_EQ(ns_.Create(H(d), "b", 0644, true, &a), 0);
  std::string bytes, again;
  ns_.Serialize(&bytes);
  Namespace copy(Options(), nullptr);
  ASSERT_TRUE(copy.Load(bytes).ok());
  copy.Serialize(&again);
  EXPECT_EQ(again, bytes);
  EXPECT_EQ(copy.orphans().size(), 1u);
  EXPECT_EQ(copy.FreeOrphans(), 1);
  std::vector<std::string> problems;
  copy.Check(&problems);
  EXPECT_TRUE(problems.empty());
  Namespace bad(Options(), nullptr);
  EXPECT_FALSE(bad.Load(bytes.substr(0, bytes.size() - 3)).ok());
}

TEST_F(NamespaceTest, CheckFindsBrokenInvariants) {
  InodeAttr a;
  ASSERT_EQ(ns_.Create(kRoot, "a", 0644, true, &a), 0);
  TxnBuilder t;  // a record bumping nlink without an entry
  a.nlink = 5;
  t.InodeSet(a);
  ASSERT_EQ(ns_.ApplyTxn(t.bytes()), 0);
  std::vector<std::string> problems;
  ns_.Check(&problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("nlink 5 but 1 directory entries"),
            std::string::npos);
  a.nlink = 1;
  TxnBuilder fix;
  fix.InodeSet(a);
  ASSERT_EQ(ns_.ApplyTxn(fix.bytes()), 0);
  TxnBuilder garbage;
  garbage.Raw(200, "??");
  EXPECT_EQ(ns_.ApplyTxn(garbage.bytes()), -EUCLEAN);
  EXPECT_EQ(ns_.ApplyTxn("\x01\x00"), -EUCLEAN);
}

}  // namespace
}  // namespace fs
