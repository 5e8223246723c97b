#include <gtest/gtest.h>

#include "common/time.hpp"

namespace secbox {
namespace {

TEST(Rfc3339, FormatsUtcWithZ) {
  auto t = parse_rfc3339("2026-11-22T10:00:00Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(format_rfc3339(*t), "2026-11-22T10:00:00Z");
  EXPECT_EQ(format_rfc3339_millis(*t), "2026-11-22T10:00:00.000Z");
}

TEST(Rfc3339, AcceptsFractionsAndOffsets) {
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2026-11-22T05:00:00-05:00")), "2026-11-22T10:00:00Z");
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2026-11-22T11:30:00+01:30")), "2026-11-22T10:00:00Z");
  EXPECT_EQ(format_rfc3339_millis(*parse_rfc3339("2026-11-22T10:00:00.25Z")),
            "2026-11-22T10:00:00.250Z");
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("1969-12-31T23:59:59Z")), "1969-12-31T23:59:59Z");
}

TEST(Rfc3339, RejectsMalformed) {
  for (const char* bad :
       {"", "2026-11-22", "2026-11-22T10:00:00", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
        "2025-02-29T00:00:00Z", "2026-11-22T10:00:00.Z", "2026-11-22T10:00:00Zjunk",
        "2026-11-22T24:00:00Z", "2026-11-22T10:00:00+5:00", "0000-01-01T00:00:00Z",
        "1500-01-01T00:00:00Z", "9999-12-31T23:59:59Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
  }
  EXPECT_TRUE(parse_rfc3339("2024-02-29T00:00:00Z"));
  EXPECT_TRUE(parse_rfc3339("1970-01-01T00:00:00Z"));
  EXPECT_TRUE(parse_rfc3339("2200-01-01T00:00:00Z"));
}

}  // namespace
}  // namespace secbox
