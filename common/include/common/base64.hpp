#pragma once
// Base64 (RFC 4648 §4) and base64url (§5). Pure; any thread.
#include <optional>
#include <string>
#include <string_view>

namespace secbox {

// Standard base64 with padding; nullopt for anything else (an empty text,
// a character outside the alphabet, padding anywhere but the end).
std::optional<std::string> base64_decode(std::string_view text);
std::string base64_encode(std::string_view bytes);

// base64url without padding (a JWT's parts); nullopt when it is not that.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace secbox
