#include "lan/pin.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdlib>
#include <optional>
#include <vector>

namespace secbox::lan {
namespace {

constexpr long kMaxIterations = 2'000'000;

std::optional<std::vector<unsigned char>> base64_decode(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::vector<unsigned char> out(text.size() / 4 * 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  std::size_t size = static_cast<std::size_t>(n);
  // EVP_DecodeBlock counts the padding as zero bytes.
  if (text.back() == '=') --size;
  if (text.size() >= 2 && text[text.size() - 2] == '=') --size;
  out.resize(size);
  return out;
}

std::string base64_encode(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3), '\0');
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  return out;
}

}  // namespace

bool verify_pin(std::string_view hash, std::string_view pin) {
  constexpr std::string_view prefix = "pbkdf2-sha256$";
  if (hash.substr(0, prefix.size()) != prefix) return false;
  hash.remove_prefix(prefix.size());
  const auto d1 = hash.find('$');
  if (d1 == std::string_view::npos) return false;
  const auto d2 = hash.find('$', d1 + 1);
  if (d2 == std::string_view::npos) return false;
  const std::string iterations_text(hash.substr(0, d1));
  char* end = nullptr;
  const long iterations = std::strtol(iterations_text.c_str(), &end, 10);
  if (iterations_text.empty() || *end != '\0' || iterations < 1 || iterations > kMaxIterations) return false;
  auto salt = base64_decode(hash.substr(d1 + 1, d2 - d1 - 1));
  auto expected = base64_decode(hash.substr(d2 + 1));
  if (!salt || !expected || expected->size() != 32) return false;
  unsigned char got[32];
  if (PKCS5_PBKDF2_HMAC(pin.data(), static_cast<int>(pin.size()), salt->data(), static_cast<int>(salt->size()),
                        static_cast<int>(iterations), EVP_sha256(), sizeof got, got) != 1) {
    return false;
  }
  return CRYPTO_memcmp(got, expected->data(), sizeof got) == 0;
}

std::string hash_pin(std::string_view pin, int iterations, std::string_view salt) {
  unsigned char out[32];
  PKCS5_PBKDF2_HMAC(pin.data(), static_cast<int>(pin.size()), reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), iterations, EVP_sha256(), sizeof out, out);
  return "pbkdf2-sha256$" + std::to_string(iterations) + "$" +
         base64_encode(reinterpret_cast<const unsigned char*>(salt.data()), salt.size()) + "$" +
         base64_encode(out, sizeof out);
}

}  // namespace secbox::lan
