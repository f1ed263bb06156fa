#include "client/xfs_io_parse.h"

#include "gtest/gtest.h"

namespace xfs_io {
namespace {

std::vector<std::string> W(const std::string& line) { return BreakLine(line); }

TEST(GetOpts, ClustersAttachedAndSeparateArguments) {
  ParsedOpts p;
  std::string err;
  ASSERT_TRUE(GetOpts(W("pwrite -vS0xab -b 8k 0 64k"), "b:S:v", &p, &err));
  ASSERT_EQ(p.opts.size(), 3u);
  EXPECT_EQ(p.opts[0], std::make_pair('v', std::string()));
  EXPECT_EQ(p.opts[1], std::make_pair('S', std::string("0xab")));
  EXPECT_EQ(p.opts[2], std::make_pair('b', std::string("8k")));
  EXPECT_EQ(p.operands, (std::vector<std::string>{"0", "64k"}));
}

TEST(GetOpts, PermutesOptionsAfterOperands) {
  ParsedOpts p;
  std::string err;
  ASSERT_TRUE(GetOpts(W("seek 0 -a"), "adhrs", &p, &err));
  EXPECT_EQ(p.opts.size(), 1u);
  EXPECT_EQ(p.operands, std::vector<std::string>{"0"});
}

TEST(GetOpts, DoubleDashEndsOptions) {
  ParsedOpts p;
  std::string err;
  ASSERT_TRUE(GetOpts(W("rm -- -x"), "r", &p, &err));
  EXPECT_TRUE(p.opts.empty());
  EXPECT_EQ(p.operands, std::vector<std::string>{"-x"});
}

TEST(GetOpts, ErrorsMatchGetopt) {
  ParsedOpts p;
  std::string err;
  EXPECT_FALSE(GetOpts(W("seek -x 0"), "adhrs", &p, &err));
  EXPECT_EQ(err, "seek: invalid option -- 'x'\n");
  EXPECT_FALSE(GetOpts(W("pwrite 0 1 -b"), "b:", &p, &err));
  EXPECT_EQ(err, "pwrite: option requires an argument -- 'b'\n");
}

// Recorded: `seek -x 0`, `seek -a zz`, `seek 0 -a`.
TEST(ParseSeek, MatchesXfsIo) {
  SeekArgs a;
  Output out;
  EXPECT_FALSE(ParseSeek(W("seek -x 0"), NumUnits(), &a, &out));
  EXPECT_EQ(out.err, "seek: invalid option -- 'x'\n");
  EXPECT_EQ(out.out,
            "seek -a | -d | -h [-r] off -- locate the next data and/or "
            "hole\n");
  out = Output();
  EXPECT_FALSE(ParseSeek(W("seek -a zz"), NumUnits(), &a, &out));
  EXPECT_EQ(out.out,
            "seek -a | -d | -h [-r] off -- locate the next data and/or "
            "hole\n");
  out = Output();
  EXPECT_FALSE(ParseSeek(W("seek -r 0"), NumUnits(), &a, &out));
  ASSERT_TRUE(ParseSeek(W("seek 64k -a"), NumUnits(), &a, &out));
  EXPECT_TRUE(a.data && a.hole);
  EXPECT_FALSE(a.repeat);
  EXPECT_EQ(a.offset, 65536);
  ASSERT_TRUE(ParseSeek(W("seek -s -h -r 1"), NumUnits(), &a, &out));
  EXPECT_TRUE(a.hole && !a.data && a.repeat && a.show_start);
}

// Recorded: `fiemap zz`, `fiemap 0 zz`, `fiemap -q`.
TEST(ParseFiemap, MatchesXfsIo) {
  FiemapArgs a;
  Output out;
  EXPECT_FALSE(ParseFiemap(W("fiemap zz"), NumUnits(), &a, &out));
  EXPECT_EQ(out.out, "non-numeric offset argument -- zz\n");
  out = Output();
  EXPECT_FALSE(ParseFiemap(W("fiemap 0 zz"), NumUnits(), &a, &out));
  EXPECT_EQ(out.out, "non-numeric len argument -- zz\n");
  out = Output();
  EXPECT_FALSE(ParseFiemap(W("fiemap -q"), NumUnits(), &a, &out));
  EXPECT_EQ(out.err, "fiemap: invalid option -- 'q'\n");
  EXPECT_EQ(out.out,
            "fiemap [-alv] [-n nx] [offset [len]] -- print block mapping "
            "for a file\n");
  ASSERT_TRUE(ParseFiemap(W("fiemap -v -n 3 1b 2s"), NumUnits(), &a, &out));
  EXPECT_TRUE(a.verbose);
  EXPECT_EQ(a.max_extents, 3);
  EXPECT_EQ(a.offset, 4096);
  EXPECT_EQ(a.length, 1024);
  ASSERT_TRUE(ParseFiemap(W("fiemap -al"), NumUnits(), &a, &out));
  EXPECT_TRUE(a.xattr && a.lengths);
  EXPECT_EQ(a.length, -1);
}

TEST(ParseBmap, FlagsAndRefusals) {
  BmapArgs a;
  Output out;
  ASSERT_TRUE(ParseBmap(W("bmap -vvp -l -n 4"), &a, &out));
  EXPECT_EQ(a.verbose, 2);
  EXPECT_TRUE(a.prealloc && a.lengths);
  EXPECT_EQ(a.max_extents, 4);
  EXPECT_FALSE(ParseBmap(W("bmap -c"), &a, &out));
  EXPECT_TRUE(out.failed);
  EXPECT_NE(out.err.find("-c"), std::string::npos);
}

}  // namespace
}  // namespace xfs_io
