// Plates as the gate check and the camera alarms compare them.
#include "common/plates.hpp"

#include <gtest/gtest.h>

namespace secbox {
namespace {

TEST(Plates, NormalizedWithoutCaseSpacesDotsOrDashes) {
  EXPECT_EQ(normalize_plate(" abc-123 "), "ABC123");
  EXPECT_EQ(normalize_plate("Abc 1-2.3"), "ABC123");
  EXPECT_EQ(normalize_plate("\t-. "), "");
}

TEST(Plates, TheSameCharactersMatchExactly) {
  EXPECT_EQ(match_plate("abc 123", "ABC-123"), PlateMatch::exact);
}

TEST(Plates, ConfusableCharactersCountAsEqual) {
  EXPECT_EQ(match_plate("ABC-I23", "ABC-123"), PlateMatch::confusion);  // I for 1
  EXPECT_EQ(match_plate("0BS-Z12", "OB5-212"), PlateMatch::confusion);  // 0/O, S/5, Z/2
  EXPECT_EQ(match_plate("A8C123", "ABC123"), PlateMatch::confusion);    // 8 for B
  EXPECT_EQ(match_plate("XYZ0", "XYZO"), PlateMatch::confusion);        // short plates too
}

TEST(Plates, OneMisreadCharacterIsToleratedOnPlatesOfFiveOrMore) {
  EXPECT_EQ(match_plate("ABC-128", "ABC-123"), PlateMatch::misread);
  EXPECT_EQ(match_plate("XBC-I28", "ABC-123"), PlateMatch::none);  // two misreads (and a confusion)
  EXPECT_EQ(match_plate("AB13", "AB12"), PlateMatch::none);  // four characters: too many other cars
  EXPECT_EQ(match_plate("ABC1238", "ABC123"), PlateMatch::none);  // lengths differ
}

TEST(Plates, OtherPlatesAndEmptyReadsDoNotMatch) {
  EXPECT_EQ(match_plate("JKL-456", "ABC-123"), PlateMatch::none);
  EXPECT_EQ(match_plate("", "ABC-123"), PlateMatch::none);
  EXPECT_EQ(match_plate("ABC-123", " - "), PlateMatch::none);
  EXPECT_STREQ(wire_name(PlateMatch::misread), "misread");
}

}  // namespace
}  // namespace secbox
