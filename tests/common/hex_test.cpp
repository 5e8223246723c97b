// Lowercase hexadecimal, the one encoder digests and tokens use.
#include "common/hex.hpp"

#include <gtest/gtest.h>

namespace secbox {
namespace {

TEST(Hex, EveryByteIsTwoLowercaseDigits) {
  const unsigned char bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
  EXPECT_EQ(to_hex(bytes, sizeof bytes), "00017f80abff");
  EXPECT_EQ(to_hex(bytes, 0), "");
}

}  // namespace
}  // namespace secbox
