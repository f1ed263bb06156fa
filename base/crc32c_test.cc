#include "base/crc32c.h"

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace base {
namespace {

TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(Crc32c("", 0), 0u);
  EXPECT_EQ(Crc32c("a", 1), 0xC1D04330u);
  // RFC 3720 (iSCSI) B.4: 32 bytes of zeroes, of 0xff, ascending, descending.
  std::vector<uint8_t> buf(32, 0);
  EXPECT_EQ(Crc32c(buf.data(), 32), 0x8A9136AAu);
  std::memset(buf.data(), 0xff, 32);
  EXPECT_EQ(Crc32c(buf.data(), 32), 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) buf[i] = i;
  EXPECT_EQ(Crc32c(buf.data(), 32), 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) buf[i] = 31 - i;
  EXPECT_EQ(Crc32c(buf.data(), 32), 0x113FDB5Cu);
}

TEST(Crc32cTest, ExtendEqualsWhole) {
  std::string s = "The quick brown fox jumps over the lazy dog";
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    uint32_t a = Crc32c(s.data(), cut);
    EXPECT_EQ(Crc32cExtend(a, s.data() + cut, s.size() - cut),
              Crc32c(s.data(), s.size()));
  }
  EXPECT_EQ(Crc32c(s.data(), s.size()), 0x22620404u);
}

TEST(Crc32cTest, SoftwareMatchesDefaultPath) {
  const unsigned seed = 12345;
  std::mt19937 rng(seed);
  for (int iter = 0; iter < 200; ++iter) {
    size_t n = rng() % 5000;
    size_t skew = rng() % 8;  // unaligned starts
    std::vector<uint8_t> buf(n + skew);
    for (auto& b : buf) b = rng();
    ASSERT_EQ(Crc32cExtendSoftware(7, buf.data() + skew, n),
              Crc32cExtend(7, buf.data() + skew, n))
        << "seed " << seed << " iter " << iter;
  }
}

TEST(Crc32cTest, DetectsSingleBitFlips) {
  std::vector<uint8_t> buf(4096, 0x5a);
  uint32_t good = Crc32c(buf.data(), buf.size());
  for (size_t bit = 0; bit < buf.size() * 8; bit += 97) {
    buf[bit / 8] ^= 1u << (bit % 8);
    EXPECT_NE(Crc32c(buf.data(), buf.size()), good);
    buf[bit / 8] ^= 1u << (bit % 8);
  }
}

}  // namespace
}  // namespace base
