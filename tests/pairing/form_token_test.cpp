// The pairing form's token: valid for its lifetime under the key that made
// it, and nothing else is.
#include "form_token.hpp"

#include <gtest/gtest.h>

namespace secbox::pairing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

TEST(FormTokens, AFreshTokenIsValidForItsLifetimeOnly) {
  FormTokens t;
  const auto now = Clock::now();
  const auto token = t.issue(now);
  EXPECT_TRUE(t.valid(token, now));
  EXPECT_TRUE(t.valid(token, now + FormTokens::kLifetime - 1s));
  EXPECT_FALSE(t.valid(token, now + FormTokens::kLifetime + 1s));
  EXPECT_FALSE(t.valid(token, now - 2min)) << "a token from the future";
}

TEST(FormTokens, AnotherKeysTokenIsRefused) {
  FormTokens a, b;
  EXPECT_FALSE(b.valid(a.issue()));
}

TEST(FormTokens, AlteredOrMalformedTokensAreRefused) {
  FormTokens t;
  const auto now = Clock::now();
  std::string token = t.issue(now);
  std::string later = token;
  later[0] =
      later[0] == '9' ? '8' : static_cast<char>(later[0] + 1);  // another issue time, same MAC
  std::string flipped = token;
  flipped.back() = flipped.back() == '0' ? '1' : '0';
  for (const std::string& bad :
       {later, flipped, std::string(), std::string("."), std::string("123"), std::string(".abc"),
        token + "0", std::string("-1.") + token.substr(token.find('.') + 1),
        std::string("99999999999999999999.00"), std::string(token.size(), 'a')}) {
    EXPECT_FALSE(t.valid(bad, now)) << bad;
  }
}

}  // namespace
}  // namespace secbox::pairing
