#pragma once
// Hexadecimal of bytes (digests, MACs). Pure.
#include <cstddef>
#include <string>
#include <string_view>

namespace secbox {

std::string to_hex(const unsigned char* bytes, std::size_t size);

// "AB:CD:…": the hex of a fingerprint in uppercase pairs, for people
// comparing it by eye (the pairing form, the guard app's setup page).
std::string fingerprint_for_display(std::string_view hex);

}  // namespace secbox
