// An update's checks with real Ed25519 keys made here (OpenSSL): the right
// file passes; a corrupted byte, a wrong SHA-256, a wrong size, a signature
// by another key, a malformed signature, a file over the cap, and a pinned
// key that is not Ed25519 each fail as "verify", saying which.
#include "update/verify.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <gtest/gtest.h>

#include <memory>

#include "common/hex.hpp"
#include "common/pin_hash.hpp"
#include "temp_dir.hpp"

namespace secbox::update {
namespace {

using secbox::testing::TempDir;

struct Key {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey{EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"),
                                                           EVP_PKEY_free};
  std::string public_pem() const {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_PUBKEY(bio.get(), pkey.get());
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
  }
  std::string sign(const std::string& bytes) const {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get());
    unsigned char sig[64];
    std::size_t len = sizeof sig;
    EVP_DigestSign(ctx.get(), sig, &len, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    return base64_encode(std::string(reinterpret_cast<const char*>(sig), len));
  }
};

std::string sha256_hex(const std::string& bytes) {
  unsigned char d[32];
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), d, &n, EVP_sha256(), nullptr);
  return to_hex(d, n);
}

class VerifyTest : public ::testing::Test {
 protected:
  TempDir dir;
  Key pinned, other;
  std::string binary = std::string("\x7f" "ELF", 4) + std::string(200000, 'x');
  Expected good;
  void SetUp() override {
    ASSERT_TRUE(pinned.pkey && other.pkey);
    for (std::size_t i = 0; i < binary.size(); i += 997) binary[i] = static_cast<char>(i % 251);
    dir.write("secbox", binary);
    good = Expected{binary.size(), sha256_hex(binary), pinned.sign(binary)};
  }
  Result<void> check(const Expected& e, std::uint64_t cap = kMaxUpdateBytes) {
    return verify_update(dir.file("secbox"), e, pinned.public_pem(), cap);
  }
  static std::string why(const Result<void>& r) {
    EXPECT_FALSE(r);
    if (r) return "";
    EXPECT_EQ(r.error().code, Errc::invalid);
    return r.error().message;
  }
};

TEST_F(VerifyTest, TheSignedFilePasses) {
  auto r = check(good);
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  Expected upper = good;
  for (auto& c : upper.sha256_hex) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(check(upper));
  EXPECT_EQ(file_sha256(dir.file("secbox")).value(), good.sha256_hex);
}

TEST_F(VerifyTest, EachBadCaseFailsSayingWhich) {
  // A corrupted download: one byte changed, the announced figures the original's.
  std::string corrupted = binary;
  corrupted[1000] ^= 1;
  dir.write("secbox", corrupted);
  EXPECT_NE(why(check(good)).find("SHA-256"), std::string::npos);
  // The same bytes announced with their own SHA-256 but the original's signature.
  Expected resigned = good;
  resigned.sha256_hex = sha256_hex(corrupted);
  EXPECT_NE(why(check(resigned)).find("signature"), std::string::npos);
  dir.write("secbox", binary);

  Expected wrong_sha = good;
  wrong_sha.sha256_hex = sha256_hex("something else");
  EXPECT_NE(why(check(wrong_sha)).find("SHA-256"), std::string::npos);
  Expected wrong_size = good;
  wrong_size.size += 1;
  EXPECT_NE(why(check(wrong_size)).find("bytes, not the announced"), std::string::npos);
  Expected other_key = good;
  other_key.signature_b64 = other.sign(binary);
  EXPECT_NE(why(check(other_key)).find("pinned key"), std::string::npos);
  Expected garbled = good;
  garbled.signature_b64 = "not base64!";
  EXPECT_NE(why(check(garbled)).find("base64 of 64 bytes"), std::string::npos);
  Expected short_sig = good;
  short_sig.signature_b64 = base64_encode("short");
  EXPECT_NE(why(check(short_sig)).find("base64 of 64 bytes"), std::string::npos);
  Expected bad_hex = good;
  bad_hex.sha256_hex = "xyz";
  EXPECT_NE(why(check(bad_hex)).find("64 hexadecimal"), std::string::npos);
  // Over the cap: refused before it is read, whatever is announced.
  EXPECT_NE(why(check(good, 1000)).find("limit"), std::string::npos);
  Expected huge = good;
  huge.size = kMaxUpdateBytes + 1;
  EXPECT_NE(why(check(huge)).find("limit"), std::string::npos);
  // A pinned key that is no Ed25519 key.
  auto rsa = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", 2048),
                                                                  EVP_PKEY_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_PUBKEY(bio.get(), rsa.get());
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  auto r = verify_update(dir.file("secbox"), good, std::string(data, static_cast<std::size_t>(n)));
  EXPECT_NE(why(r).find("not an Ed25519"), std::string::npos);
  EXPECT_NE(why(verify_update(dir.file("secbox"), good, "not a key")).find("not an Ed25519"), std::string::npos);
  EXPECT_NE(why(verify_update(dir.file("missing"), good, pinned.public_pem())).find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace secbox::update
