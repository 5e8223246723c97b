#pragma once
// The one reading of a guard's PIN hash (cloud-protocol §5, `user.pinHash`):
// pbkdf2-sha256$<iterations>$<salt, base64>$<32-byte hash, base64>, with
// 10,000 to 2,000,000 iterations (fewer is too weak to keep; more would let
// one hostile row stall the box for seconds on every login), a salt of at
// least 16 bytes, and canonical, padded base64. The shape check of rows from
// the cloud and the PIN check at login both use it, so a hash the replica
// accepts is one a login can check.
#include <optional>
#include <string>
#include <string_view>

namespace secbox {

struct PinHash {
  long iterations = 0;
  std::string salt;  // bytes
  std::string hash;  // 32 bytes
};

inline constexpr long kMinPinIterations = 10'000;
inline constexpr long kMaxPinIterations = 2'000'000;

std::optional<PinHash> parse_pin_hash(std::string_view text);

}  // namespace secbox
