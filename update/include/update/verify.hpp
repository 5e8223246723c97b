#pragma once
// Checking a downloaded update before anything is staged (cloud-protocol
// §7.6): its size, its SHA-256, and the Ed25519 signature of its bytes by the
// key the installer pinned (/etc/secbox/update.pub, PEM). No key from the
// cloud is ever used. Any failure is an Error with code "verify" and a
// sentence saying which check failed; nothing is changed on disk.
//
// Blocking (reads the whole file, up to the size cap): a worker only.
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace secbox::update {

inline constexpr std::uint64_t kMaxUpdateBytes = 256ull << 20;  // §7.6

struct Expected {
  std::uint64_t size = 0;
  std::string sha256_hex;     // 64 lowercase or uppercase hex digits
  std::string signature_b64;  // standard padded base64 of 64 bytes
};

Result<void> verify_update(const std::string& path, const Expected& expected, const std::string& public_key_pem,
                           std::uint64_t max_bytes = kMaxUpdateBytes);

// 64 hexadecimal digits, either case (what update.apply's sha256 must be).
bool is_sha256_hex(std::string_view text);

// The SHA-256 of a file, lowercase hex (blocking).
Result<std::string> file_sha256(const std::string& path, std::uint64_t max_bytes = kMaxUpdateBytes);

}  // namespace secbox::update
