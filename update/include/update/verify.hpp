#pragma once
// Checking a downloaded bundle against its manifest (cloud-protocol §7.6)
// before anything is unpacked: its size and its SHA-256, read through the one
// descriptor that is then unpacked, so nothing can change between the check
// and the use. (The manifest's own signature: update/manifest.hpp.)
//
// Blocking (reads the whole file, up to the size cap): a worker only.
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace secbox::update {

inline constexpr std::uint64_t kMaxUpdateBytes = 256ull << 20;  // the largest file read as a whole

// The file at `fd` (read from its start) is `size` bytes with this SHA-256
// (64 lowercase hex); the descriptor is left at its start. Error "invalid"
// naming which check failed.
Result<void> check_bundle(int fd, std::uint64_t size, const std::string& sha256_hex);

// 64 hexadecimal digits, either case.
bool is_sha256_hex(std::string_view text);

// The SHA-256 of a file, lowercase hex (blocking).
Result<std::string> file_sha256(const std::string& path, std::uint64_t max_bytes = kMaxUpdateBytes);
// The same through a descriptor, from its start.
Result<std::string> fd_sha256(int fd, std::uint64_t max_bytes = kMaxUpdateBytes);

}  // namespace secbox::update
