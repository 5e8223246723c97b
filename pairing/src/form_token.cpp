#include "form_token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdlib>

#include "common/hex.hpp"

namespace secbox::pairing {

FormTokens::FormTokens() {
  if (RAND_bytes(key_.data(), static_cast<int>(key_.size())) != 1)
    std::abort();  // no randomness: nothing is safe
}

std::string FormTokens::mac(std::string_view issued) const {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
            reinterpret_cast<const unsigned char*>(issued.data()), issued.size(), digest,
            &length)) {
    std::abort();
  }
  return to_hex(digest, 16);
}

std::string FormTokens::issue(std::chrono::system_clock::time_point now) const {
  const std::string issued = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  return issued + "." + mac(issued);
}

bool FormTokens::valid(std::string_view token, std::chrono::system_clock::time_point now) const {
  const auto dot = token.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 12) return false;
  const std::string_view issued = token.substr(0, dot);
  if (issued.find_first_not_of("0123456789") != std::string_view::npos) return false;
  const std::string expected = mac(issued);
  const std::string_view given = token.substr(dot + 1);
  if (given.size() != expected.size() ||
      CRYPTO_memcmp(given.data(), expected.data(), expected.size()) != 0) {
    return false;
  }
  const auto at =
      std::chrono::system_clock::time_point(std::chrono::seconds(std::stoll(std::string(issued))));
  return at <= now + std::chrono::minutes(1) && now - at <= kLifetime;
}

}  // namespace secbox::pairing
