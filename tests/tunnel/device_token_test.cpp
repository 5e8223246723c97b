#include <sys/stat.h>

#include <gtest/gtest.h>

#include <openssl/evp.h>

#include "temp_dir.hpp"
#include "tunnel/device_token.hpp"

namespace secbox::tunnel {
namespace {

using namespace std::chrono;

std::string b64url(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  for (auto& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

std::string make_jwt(const std::string& payload) {
  return b64url(R"({"alg":"ES256","typ":"JWT"})") + "." + b64url(payload) + "." + b64url("sig");
}

WallClock::time_point t(long long unix) { return WallClock::time_point(seconds(unix)); }

TEST(DeviceToken, DecodesClaims) {
  auto c = decode_claims(make_jwt(R"({"sub":"dev_7Q2x","iat":1795000000,"exp":1795086400})"));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c.value().sub, "dev_7Q2x");
  EXPECT_EQ(c.value().iat, t(1795000000));
  EXPECT_EQ(c.value().exp, t(1795086400));
}

TEST(DeviceToken, BadTokensAreRefusedWithoutEchoingThem) {
  const std::string secretish = "eyJzZWNyZXQiOjF9";
  const std::vector<std::string> bads = {std::string("notatoken"),
                                         "a.b",
                                         "a.b.c.d",
                                         "a.%%%.c",
                                         "a." + b64url("not json") + ".c",
                                         "a." + b64url(R"({"sub":"x"})") + ".c",
                                         "a." + b64url(R"({"exp":"soon"})") + ".c",
                                         "a." + b64url(R"({"iat":10,"exp":5})") + ".c",
                                         secretish + "." + secretish};
  for (const auto& bad : bads) {
    auto c = decode_claims(bad);
    ASSERT_FALSE(c) << bad;
    EXPECT_EQ(c.error().code, Errc::invalid);
    EXPECT_EQ(c.error().message.find(secretish), std::string::npos);
  }
}

TEST(DeviceToken, RotatesInTheNightlyWindow) {
  // A 30-day token issued now: the quarter point is far; the night comes first.
  const auto now = t(1795000000);  // 2026-11-18T07:06:40Z
  TokenClaims c{"d", now, now + hours(24 * 30)};
  std::mt19937_64 rng(1);
  for (int offset_h : {0, -6, 5}) {
    for (int i = 0; i < 50; ++i) {
      const auto next = next_rotation(c, now, hours(offset_h), rng);
      EXPECT_GT(next, now);
      EXPECT_LE(next, now + hours(24));
      const auto local =
          duration_cast<seconds>((next + hours(offset_h)).time_since_epoch()).count();
      const auto local_minute_of_day = (local % 86400) / 60;
      EXPECT_GE(local_minute_of_day, 120) << offset_h;
      EXPECT_LT(local_minute_of_day, 240) << offset_h;
    }
  }
}

TEST(DeviceToken, RotatesWhenAQuarterOfTheLifetimeIsLeft) {
  const auto iat = t(1795000000);
  TokenClaims c{"d", iat, iat + hours(4)};  // quarter left at iat + 3 h
  std::mt19937_64 rng(2);
  const auto now = iat + minutes(10);
  EXPECT_LE(next_rotation(c, now, hours(0), rng), iat + hours(3));
  // Past the quarter point (or expired), at once.
  EXPECT_EQ(next_rotation(c, iat + hours(3) + seconds(1), hours(0), rng),
            iat + hours(3) + seconds(1));
  EXPECT_EQ(next_rotation(c, iat + hours(9), hours(0), rng), iat + hours(9));
}

TEST(TokenStore, SavesAtomicallyWith0600AndLoads) {
  testing::TempDir dir;
  TokenStore store(dir.file("device.jwt"));
  EXPECT_EQ(store.load().error().code, Errc::not_found);
  ASSERT_TRUE(store.save("a.b.c"));
  ASSERT_TRUE(store.save("d.e.f"));
  EXPECT_EQ(store.load().value(), "d.e.f");
  struct stat st {};
  ASSERT_EQ(::stat(store.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_FALSE(store.save("a.b.c\nINJECT"));
  EXPECT_EQ(store.load().value(), "d.e.f");
}

}  // namespace
}  // namespace secbox::tunnel
