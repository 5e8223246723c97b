#include "common/pin_hash.hpp"

#include <algorithm>

#include "common/base64.hpp"

namespace secbox {

std::optional<PinHash> parse_pin_hash(std::string_view text) {
  constexpr std::string_view prefix = "pbkdf2-sha256$";
  if (text.substr(0, prefix.size()) != prefix) return std::nullopt;
  text.remove_prefix(prefix.size());
  const auto d1 = text.find('$');
  if (d1 == std::string_view::npos) return std::nullopt;
  const auto d2 = text.find('$', d1 + 1);
  if (d2 == std::string_view::npos || text.find('$', d2 + 1) != std::string_view::npos)
    return std::nullopt;
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
