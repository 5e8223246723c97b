#include "common/ids.hpp"

#include <openssl/rand.h>
#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/hex.hpp"

namespace secbox {

namespace {
std::string format_uuid(const unsigned char* b) {
  char out[37];
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}
}  // namespace

std::string random_hex(std::size_t bytes) {
  std::string b(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(b.data()), static_cast<int>(b.size())) != 1)
    std::abort();
  return to_hex(reinterpret_cast<const unsigned char*>(b.data()), b.size());
}

std::string random_uuid() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) std::abort();  // no randomness: nothing is safe to do
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  return format_uuid(b);
}

std::string name_uuid(std::string_view name) {
  // SecBox's namespace: a fixed random UUID (5d0c2f3e-8a41-4c7b-9e36-b1f0a4d2c917).
  static const unsigned char kNamespace[16] = {0x5d, 0x0c, 0x2f, 0x3e, 0x8a, 0x41, 0x4c, 0x7b,
                                               0x9e, 0x36, 0xb1, 0xf0, 0xa4, 0xd2, 0xc9, 0x17};
  std::string input(reinterpret_cast<const char*>(kNamespace), sizeof kNamespace);
  input.append(name.data(), name.size());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &length, EVP_sha1(), nullptr) != 1)
    std::abort();
  digest[6] = static_cast<unsigned char>((digest[6] & 0x0f) | 0x50);
  digest[8] = static_cast<unsigned char>((digest[8] & 0x3f) | 0x80);
  return format_uuid(digest);
}

}  // namespace secbox
