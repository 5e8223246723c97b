#include "protocol/errors.hpp"

#include <gtest/gtest.h>

namespace secbox::protocol {
namespace {

// §4.1 lists exactly these seven codes.
TEST(ErrorCodes, EveryCodeOfTheContractRoundTrips) {
  const char* wire[] = {"bad_message", "invalid_args", "not_found", "forbidden",
                        "unavailable", "busy",         "internal"};
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

namespace secbox::protocol {
namespace {

// A module's error goes back with the §4.1 code a cloud can act on.
TEST(ErrorCodes, AModulesErrorMapsToTheContractsCode) {
  EXPECT_EQ(wire_code_for(Errc::invalid), ErrorCode::invalid_args);
  EXPECT_EQ(wire_code_for(Errc::too_large), ErrorCode::invalid_args);
  EXPECT_EQ(wire_code_for(Errc::not_found), ErrorCode::not_found);
  EXPECT_EQ(wire_code_for(Errc::forbidden), ErrorCode::forbidden);
  EXPECT_EQ(wire_code_for(Errc::busy), ErrorCode::busy);
  EXPECT_EQ(wire_code_for(Errc::queue_full), ErrorCode::busy);
  for (Errc c : {Errc::unavailable, Errc::network, Errc::timeout, Errc::disconnected}) {
    EXPECT_EQ(wire_code_for(c), ErrorCode::unavailable) << c;
  }
  for (Errc c : {Errc::io, Errc::spawn, Errc::database, Errc::schema_newer, Errc::config,
                 Errc::refused, Errc::internal}) {
    EXPECT_EQ(wire_code_for(c), ErrorCode::internal) << c;
  }
}

}  // namespace
}  // namespace secbox::protocol
