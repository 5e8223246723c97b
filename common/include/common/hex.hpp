#pragma once
// Lowercase hexadecimal of bytes (digests, MACs). Pure.
#include <cstddef>
#include <string>

namespace secbox {

std::string to_hex(const unsigned char* bytes, std::size_t size);

}  // namespace secbox
