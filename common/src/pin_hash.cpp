#include "common/pin_hash.hpp"

#include <openssl/evp.h>

#include <algorithm>

namespace secbox {

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '=') {
      if (i + 2 < text.size()) return std::nullopt;  // padding only at the end
      ++pad;
      continue;
    }
    if (pad) return std::nullopt;  // data after padding
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (!ok) return std::nullopt;
  }
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  out.resize(static_cast<std::size_t>(n) - pad);  // EVP_DecodeBlock counts padding as zero bytes
  return out;
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(bytes.data()),
                  static_cast<int>(bytes.size()));
  return out;
}

std::optional<PinHash> parse_pin_hash(std::string_view text) {
  constexpr std::string_view prefix = "pbkdf2-sha256$";
  if (text.substr(0, prefix.size()) != prefix) return std::nullopt;
  text.remove_prefix(prefix.size());
  const auto d1 = text.find('$');
  if (d1 == std::string_view::npos) return std::nullopt;
  const auto d2 = text.find('$', d1 + 1);
  if (d2 == std::string_view::npos || text.find('$', d2 + 1) != std::string_view::npos) return std::nullopt;
  const auto digits = text.substr(0, d1);
  if (digits.empty() || digits.size() > 7 || digits[0] == '0' ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  PinHash out;
  for (const char c : digits) out.iterations = out.iterations * 10 + (c - '0');
  if (out.iterations < kMinPinIterations || out.iterations > kMaxPinIterations) return std::nullopt;
  auto salt = base64_decode(text.substr(d1 + 1, d2 - d1 - 1));
  auto hash = base64_decode(text.substr(d2 + 1));
  if (!salt || salt->size() < 16 || !hash || hash->size() != 32) return std::nullopt;
  out.salt = std::move(*salt);
  out.hash = std::move(*hash);
  return out;
}

}  // namespace secbox
