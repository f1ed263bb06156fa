#include "iomap/errseq.h"

#include <cerrno>

#include "gtest/gtest.h"

namespace iomap {
namespace {

TEST(ErrSeqTest, NoErrorReportsNothing) {
  ErrSeq seq;
  ErrSeq::Cursor c = seq.Sample();
  EXPECT_EQ(seq.Check(c), 0);
  EXPECT_EQ(seq.CheckAndAdvance(&c), 0);
}

TEST(ErrSeqTest, ThreeHandlesEachSeeErrorOnceThenZero) {
  ErrSeq seq;
  ErrSeq::Cursor a = seq.Sample(), b = seq.Sample(), c = seq.Sample();
  seq.Set(-EIO);
  for (ErrSeq::Cursor* h : {&a, &b, &c}) {
    EXPECT_EQ(seq.CheckAndAdvance(h), -EIO);
  }
  for (ErrSeq::Cursor* h : {&a, &b, &c}) {
    EXPECT_EQ(seq.CheckAndAdvance(h), 0);
  }
}

TEST(ErrSeqTest, LateOpenerSeesUnseenError) {
  ErrSeq seq;
  seq.Set(-EIO);
  ErrSeq::Cursor late = seq.Sample();  // opened after, nobody has seen it
  EXPECT_EQ(late, 0u);
  EXPECT_EQ(seq.CheckAndAdvance(&late), -EIO);
  EXPECT_EQ(seq.CheckAndAdvance(&late), 0);
}

TEST(ErrSeqTest, OpenerAfterErrorWasSeenDoesNotSeeIt) {
  ErrSeq seq;
  ErrSeq::Cursor first = seq.Sample();
  seq.Set(-EIO);
  EXPECT_EQ(seq.CheckAndAdvance(&first), -EIO);
  ErrSeq::Cursor later = seq.Sample();
  EXPECT_EQ(seq.CheckAndAdvance(&later), 0);
}

TEST(ErrSeqTest, NewErrorAfterSeenIsReportedAgain) {
  ErrSeq seq;
  ErrSeq::Cursor h = seq.Sample();
  seq.Set(-EIO);
  EXPECT_EQ(seq.CheckAndAdvance(&h), -EIO);
  seq.Set(-EIO);  // same errno, but a new event: the counter moves
  EXPECT_EQ(seq.CheckAndAdvance(&h), -EIO);
  EXPECT_EQ(seq.CheckAndAdvance(&h), 0);
}

TEST(ErrSeqTest, UnseenErrorIsReplacedNotCounted) {
  ErrSeq seq;
  ErrSeq::Cursor h = seq.Sample();
  seq.Set(-EIO);
  uint32_t v = seq.raw();
  seq.Set(-EIO);
  EXPECT_EQ(seq.raw(), v);  // nothing new to report
  seq.Set(-ENOSPC);
  EXPECT_EQ(seq.CheckAndAdvance(&h), -ENOSPC);  // the latest error wins
  EXPECT_EQ(seq.CheckAndAdvance(&h), 0);
}

TEST(ErrSeqTest, CheckDoesNotMarkSeen) {
  ErrSeq seq;
  ErrSeq::Cursor h = seq.Sample();
  seq.Set(-EIO);
  EXPECT_EQ(seq.Check(h), -EIO);
  EXPECT_EQ(seq.Sample(), 0u);  // still unseen: new openers will see it
}

TEST(ErrSeqTest, ZeroAndBogusErrorsIgnored) {
  ErrSeq seq;
  seq.Set(0);
  seq.Set(5);
  seq.Set(-100000);
  EXPECT_EQ(seq.raw(), 0u);
}

TEST(WbErrorTest, LegacyFlagsReportedOnce) {
  WbError e;
  EXPECT_EQ(e.TestAndClearLegacy(), 0);
  e.Set(-EIO);
  EXPECT_EQ(e.TestAndClearLegacy(), -EIO);
  EXPECT_EQ(e.TestAndClearLegacy(), 0);
  e.Set(-ENOSPC);
  EXPECT_EQ(e.TestAndClearLegacy(), -ENOSPC);
  ErrSeq::Cursor h = 0;
  EXPECT_EQ(e.seq().CheckAndAdvance(&h), -ENOSPC);
}

}  // namespace
}  // namespace iomap
