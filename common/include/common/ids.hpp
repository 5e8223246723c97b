#pragma once
// Identifiers: RFC 4122 version-4 UUIDs from OpenSSL's CSPRNG (the bootId of
// hello, the clientId of outbound events), and version-5 (name-based) UUIDs
// for events whose identity comes from elsewhere (a Frigate event's id): the
// same name always gives the same clientId. Any thread.
#include <cstddef>
#include <string>
#include <string_view>

namespace secbox {

std::string random_uuid();

// `bytes` bytes from the CSPRNG, in lowercase hex (session tokens). Like
// random_uuid, it aborts the process when there is no randomness.
std::string random_hex(std::size_t bytes);

// RFC 4122 §4.3, SHA-1, in SecBox's own namespace.
std::string name_uuid(std::string_view name);

}  // namespace secbox
