// The LAN certificate: made once and kept, made again when the addresses
// change, under 30 days left, or beside a key that is not its own; its key
// private to the box.
#include "lan/certificate.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "common/certificates.hpp"
#include "common/hex.hpp"
#include "temp_dir.hpp"

namespace secbox {
namespace {

using secbox::testing::TempDir;

TEST(LanCertificate, MadeOnceKeptAndRemadeWhenTheAddressesChange) {
  TempDir dir;
  auto a = lan::ensure_lan_certificate({dir.file("lan"), "caseta", {"192.0.2.1"}});
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_TRUE(a.value().made_now);
  EXPECT_EQ(a.value().sha256.size(), 64u);
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("lan/key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto b = lan::ensure_lan_certificate({dir.file("lan"), "caseta", {"192.0.2.1"}});
  ASSERT_TRUE(b);
  EXPECT_FALSE(b.value().made_now);
  EXPECT_EQ(b.value().sha256, a.value().sha256);
  auto c = lan::ensure_lan_certificate({dir.file("lan"), "caseta", {"192.0.2.1", "2001:db8::1"}});
  ASSERT_TRUE(c);
  EXPECT_TRUE(c.value().made_now);
  EXPECT_NE(c.value().sha256, a.value().sha256);
  EXPECT_EQ(secbox::fingerprint_for_display("0aff"), "0A:FF");
}

TEST(LanCertificate, RemadeUnder30DaysLeftOrWhenTheKeyIsNotItsOwn) {
  TempDir dir;
  auto a = lan::ensure_lan_certificate({dir.file("lan"), "caseta", {"192.0.2.1"}});
  ASSERT_TRUE(a) << a.error().message;
  // 29 days left, the right names: renewed.
  auto near = make_self_signed({"caseta",
                                {"caseta", "secbox.local", "localhost"},
                                {"192.0.2.1", "127.0.0.1", "::1"},
                                std::chrono::hours(24 * 29),
                                false});
  ASSERT_TRUE(near);
  dir.write("lan/key.pem", near.value().key_pem);
  dir.write("lan/cert.pem", near.value().cert_pem);
  auto b = lan::ensure_lan_certificate({dir.file("lan"), "caseta", {"192.0.2.1"}});
  ASSERT_TRUE(b);
  EXPECT_TRUE(b.value().made_now);
  // A crash between the key's write and the certificate's: a valid
  // certificate beside another key. Kept, the LAN server could not start.
  auto other = make_self_signed({"x", {"x"}, {}, std::chrono::hours(24), false});
  ASSERT_TRUE(other);
  dir.write("lan/key.pem", other.value().key_pem);
  auto c = lan::ensure_lan_certificate({dir.file("lan"), "caseta", {"192.0.2.1"}});
  ASSERT_TRUE(c);
  EXPECT_TRUE(c.value().made_now);
  EXPECT_NE(c.value().sha256, b.value().sha256);
  auto d = lan::ensure_lan_certificate({dir.file("lan"), "caseta", {"192.0.2.1"}});
  ASSERT_TRUE(d);
  EXPECT_FALSE(d.value().made_now) << "a sound pair must be kept";
}

}  // namespace
}  // namespace secbox
