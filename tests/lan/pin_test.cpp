// Guard PINs in the cloud's PBKDF2 format: the right PIN verifies, any other
// does not, and a malformed or hostile hash is refused without a check.
#include "lan/pin.hpp"

#include <gtest/gtest.h>

#include <string>

namespace secbox::lan {
namespace {

TEST(Pin, VerifiesThePbkdf2FormatAndRefusesMalformedOrHostileHashes) {
  const auto h = hash_pin("2468", 10000, "saltsaltsaltsalt");
  EXPECT_TRUE(verify_pin(h, "2468"));
  EXPECT_FALSE(verify_pin(h, "2469"));
  EXPECT_FALSE(verify_pin(h, ""));
  // Another salt, another hash: the salt is used.
  EXPECT_NE(hash_pin("2468", 10000, "saltsaltsaltsalt"),
            hash_pin("2468", 10000, "othersaltothersa"));
  for (const std::string bad :
       {"", "sha1$1$a$b", "pbkdf2-sha256$abc$c2FsdA==$x", "pbkdf2-sha256$10000$!!!!$x",
        "pbkdf2-sha256$99999999$c2FsdHNhbHRzYWx0c2FsdA==$"
        "A6xnQhbz4Vx2HuGl4lXwZ5U2I8iziLRFnhP5eNfIRvQ=",
        "pbkdf2-sha256$10000$c2FsdA==$c2hvcnQ="}) {
    EXPECT_FALSE(verify_pin(bad, "1234")) << bad;
  }
}

}  // namespace
}  // namespace secbox::lan
