// The one PIN-hash parser: the form, the iteration bounds, canonical base64.
#include "common/pin_hash.hpp"

#include <gtest/gtest.h>

#include "common/base64.hpp"

namespace secbox {
namespace {

const std::string kSalt = "c2FsdHNhbHRzYWx0c2FsdA==";                      // 16 bytes
const std::string kHash = "A6xnQhbz4Vx2HuGl4lXwZ5U2I8iziLRFnhP5eNfIRvQ=";  // 32 bytes

TEST(PinHash, ReadsTheFormWithinItsBounds) {
  auto h = parse_pin_hash("pbkdf2-sha256$10000$" + kSalt + "$" + kHash);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->iterations, 10000);
  EXPECT_EQ(h->salt, "saltsaltsaltsalt");
  EXPECT_EQ(h->hash.size(), 32u);
  EXPECT_TRUE(parse_pin_hash("pbkdf2-sha256$2000000$" + kSalt + "$" + kHash));
  for (const std::string& bad :
       {std::string(), "pbkdf2-sha256$9999$" + kSalt + "$" + kHash,
        "pbkdf2-sha256$2000001$" + kSalt + "$" + kHash,
        "pbkdf2-sha256$99999999$" + kSalt + "$" + kHash,
        "pbkdf2-sha256$010000$" + kSalt + "$" + kHash, "pbkdf2-sha256$1e5$" + kSalt + "$" + kHash,
        "pbkdf2-sha1$10000$" + kSalt + "$" + kHash,
        "pbkdf2-sha256$10000$c2FsdA==$" + kHash,                     // 4-byte salt
        "pbkdf2-sha256$10000$" + kSalt + "$" + kHash.substr(0, 40),  // short hash
        "pbkdf2-sha256$10000$" + kSalt + "$" + kHash + "$x", "pbkdf2-sha256$10000$" + kSalt,
        "pbkdf2-sha256$10000$" + kSalt + "$A6xn=hbz4Vx2HuGl4lXwZ5U2I8iziLRFnhP5eNfIRvQ="}) {
    EXPECT_FALSE(parse_pin_hash(bad)) << bad;
  }
}

TEST(Base64, StrictAndRoundTrips) {
  EXPECT_EQ(base64_decode("aGk="), "hi");
  EXPECT_EQ(base64_decode("aGVsbG8h"), "hello!");
  EXPECT_EQ(base64_encode("hello!"), "aGVsbG8h");
  for (const char* bad : {"", "aGk", "aG=k", "a===", "aGk=aGk=", "aG k", "aGk-"}) {
    EXPECT_FALSE(base64_decode(bad)) << bad;
  }
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_EQ(base64_decode(base64_encode(all)), all);
}

// A JWT's parts: the URL alphabet, no padding; base64's own characters refused.
TEST(Base64, UrlWithoutPadding) {
  EXPECT_EQ(base64url_decode("aGk"), "hi");
  EXPECT_EQ(base64url_decode("aGVsbG8h"), "hello!");
  EXPECT_EQ(base64url_decode("-_8"), std::string("\xfb\xff", 2));
  EXPECT_EQ(base64url_decode(""), "");
  for (const char* bad : {"a", "aGk=", "+_8", "/_8", "aG k", "aGVsbG8hx"}) {
    EXPECT_FALSE(base64url_decode(bad)) << bad;
  }
}

}  // namespace
}  // namespace secbox
