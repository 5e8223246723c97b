#include "protocol/errors.hpp"

#include <array>
#include <utility>

namespace secbox::protocol {

namespace {
constexpr std::array<std::pair<ErrorCode, std::string_view>, 7> kNames{{
    {ErrorCode::bad_message, "bad_message"},
    {ErrorCode::invalid_args, "invalid_args"},
    {ErrorCode::not_found, "not_found"},
    {ErrorCode::forbidden, "forbidden"},
    {ErrorCode::unavailable, "unavailable"},
    {ErrorCode::busy, "busy"},
    {ErrorCode::internal, "internal"},
}};
}  // namespace

std::string_view wire_name(ErrorCode code) {
  for (const auto& [c, name] : kNames) {
    if (c == code) return name;
  }
  return "internal";
}

std::optional<ErrorCode> parse_error_code(std::string_view wire) {
  for (const auto& [c, name] : kNames) {
    if (name == wire) return c;
  }
  return std::nullopt;
}

ErrorCode wire_code_for(Errc code) {
  switch (code) {
    case Errc::invalid:
    case Errc::too_large:
      return ErrorCode::invalid_args;
    case Errc::not_found:
      return ErrorCode::not_found;
    case Errc::forbidden:
      return ErrorCode::forbidden;
    case Errc::busy:
    case Errc::queue_full:
      return ErrorCode::busy;
    case Errc::unavailable:
    case Errc::network:
    case Errc::timeout:
    case Errc::disconnected:
      return ErrorCode::unavailable;
    // Every case named, no default: a new Errc does not compile until it is
    // given its wire code here.
    case Errc::refused:
    case Errc::io:
    case Errc::spawn:
    case Errc::database:
    case Errc::schema_newer:
    case Errc::config:
    case Errc::internal:
      return ErrorCode::internal;
  }
  return ErrorCode::internal;
}

}  // namespace secbox::protocol
