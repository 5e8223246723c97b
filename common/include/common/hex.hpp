#pragma once
// Hexadecimal of bytes (digests, MACs). Pure; any thread.
#include <cstddef>
#include <string>
#include <string_view>

namespace secbox {

std::string to_hex(const unsigned char* bytes, std::size_t size);

// SHA-256 of `data`, in lowercase hex.
std::string sha256_hex(std::string_view data);

// "AB:CD:…": the hex of a fingerprint in uppercase pairs, for people
// comparing it by eye (the pairing form, the guard app's setup page).
std::string fingerprint_for_display(std::string_view hex);

}  // namespace secbox
