#pragma once
// Guard PINs as the cloud stores them (cloud-protocol §5):
// pbkdf2-sha256$<iterations>$<salt, base64>$<32-byte hash, base64>.
// Checking costs the hash's iterations of HMAC-SHA256 (tens of ms): call it
// off the loop.
#include <string>
#include <string_view>

namespace secbox::lan {

// Constant-time in the hash comparison; false for a hash parse_pin_hash
// (common/pin_hash.hpp) refuses.
bool verify_pin(std::string_view pin_hash, std::string_view pin);

// A hash in the same format (tests, the demo cloud's guards).
std::string hash_pin(std::string_view pin, int iterations, std::string_view salt);

}  // namespace secbox::lan
