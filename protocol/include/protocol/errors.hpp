#pragma once
// The codes of the `error` reply (cloud-protocol §4.1), and the one place that
// maps them to and from their wire spelling.
//
// Pure functions; any thread.
#include <optional>
#include <string_view>

#include "common/result.hpp"

namespace secbox::protocol {

enum class ErrorCode {
  bad_message,
  invalid_args,
  not_found,
  forbidden,
  unavailable,
  busy,
  internal
};

// "bad_message", "invalid_args", …
std::string_view wire_name(ErrorCode code);

// The code of a wire spelling; nullopt for one §4.1 does not have.
std::optional<ErrorCode> parse_error_code(std::string_view wire);

// The code a module's error goes back to the cloud with: invalid and
// too_large are invalid_args; unavailable, network, timeout and disconnected
// are unavailable; not_found, forbidden and busy are themselves (queue_full
// is busy); everything else is internal.
ErrorCode wire_code_for(Errc code);

}  // namespace secbox::protocol
