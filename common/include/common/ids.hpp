#pragma once
// Random identifiers: RFC 4122 version-4 UUIDs from OpenSSL's CSPRNG (the
// bootId of hello, the clientId of every outbound event). Any thread.
#include <string>

namespace secbox {

std::string random_uuid();

}  // namespace secbox
