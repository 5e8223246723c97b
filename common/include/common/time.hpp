#pragma once
// RFC 3339 times as the cloud protocol writes them: UTC with a "Z".
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace secbox {

// "2026-11-22T10:00:00Z"
std::string format_rfc3339(std::chrono::system_clock::time_point t);
// "2026-11-22T10:00:00.123Z"
std::string format_rfc3339_millis(std::chrono::system_clock::time_point t);
// Accepts fractional seconds and "Z" or "±hh:mm" offsets; nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);

}  // namespace secbox
