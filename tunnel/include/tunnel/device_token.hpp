#pragma once
// The device JWT (cloud-protocol §3): its claims, where it is kept, and when
// to rotate it. The box cannot verify the token (it has no key); it decodes
// `exp` and `iat` only to plan the rotation.
#include <chrono>
#include <random>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace secbox::tunnel {

using WallClock = std::chrono::system_clock;

struct TokenClaims {
  std::string sub;
  WallClock::time_point iat;
  WallClock::time_point exp;
};

// Decodes the payload of a JWS compact token. Error code "bad_token"; the
// message never includes the token.
Result<TokenClaims> decode_claims(std::string_view jwt);

// When to rotate next: the earlier of a random minute between 02:00 and 04:00
// local time (the next such window after `now`) and the moment a quarter of
// the token's lifetime is left; `now` if that moment has passed. `utc_offset`
// is the local zone's offset at that time (see local_utc_offset()).
WallClock::time_point next_rotation(const TokenClaims& claims, WallClock::time_point now,
                                    std::chrono::seconds utc_offset, std::mt19937_64& rng);

// The offset from UTC of the system's local time zone at t.
std::chrono::seconds local_utc_offset(WallClock::time_point t);

// The token's file (state_dir/device.jwt, mode 0600). Blocking: call from a
// BlockingPool task. save() writes atomically, so the old token stays until
// the new one is on disk.
class TokenStore {
 public:
  explicit TokenStore(std::string path) : path_(std::move(path)) {}
  Result<std::string> load() const;  // code "not_found" when there is none
  Result<void> save(std::string_view jwt) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace secbox::tunnel
