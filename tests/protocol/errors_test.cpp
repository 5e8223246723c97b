#include "protocol/errors.hpp"

#include <gtest/gtest.h>

namespace secbox::protocol {
namespace {

// §4.1 lists exactly these seven codes.
TEST(ErrorCodes, EveryCodeOfTheContractRoundTrips) {
  const char* wire[] = {"bad_message", "invalid_args", "not_found", "forbidden", "unavailable", "busy", "internal"};
  for (const char* w : wire) {
    auto code = parse_error_code(w);
    ASSERT_TRUE(code) << w;
    EXPECT_EQ(wire_name(*code), w);
  }
}

TEST(ErrorCodes, ASpellingTheContractDoesNotHaveIsRefused) {
  for (const char* w : {"not-found", "NOT_FOUND", "", "timeout", "invalid", "busy "}) {
    EXPECT_FALSE(parse_error_code(w)) << w;
  }
}

}  // namespace
}  // namespace secbox::protocol
