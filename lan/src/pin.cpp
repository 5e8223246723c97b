#include "lan/pin.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/base64.hpp"
#include "common/pin_hash.hpp"

namespace secbox::lan {

bool verify_pin(std::string_view text, std::string_view pin) {
  const auto hash = parse_pin_hash(text);
  if (!hash) return false;
  unsigned char got[32];
  if (PKCS5_PBKDF2_HMAC(pin.data(), static_cast<int>(pin.size()),
                        reinterpret_cast<const unsigned char*>(hash->salt.data()),
                        static_cast<int>(hash->salt.size()), static_cast<int>(hash->iterations),
                        EVP_sha256(), sizeof got, got) != 1) {
    return false;
  }
  return CRYPTO_memcmp(got, hash->hash.data(), sizeof got) == 0;
}

std::string hash_pin(std::string_view pin, int iterations, std::string_view salt) {
  unsigned char out[32];
  PKCS5_PBKDF2_HMAC(pin.data(), static_cast<int>(pin.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), iterations, EVP_sha256(), sizeof out, out);
  return "pbkdf2-sha256$" + std::to_string(iterations) + "$" + base64_encode(salt) + "$" +
         base64_encode(std::string_view(reinterpret_cast<const char*>(out), sizeof out));
}

}  // namespace secbox::lan
