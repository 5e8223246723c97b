#include "common/result.hpp"

#include <ostream>

namespace secbox {

std::string_view to_string(Errc code) {
  switch (code) {
    case Errc::invalid:
      return "invalid";
    case Errc::not_found:
      return "not_found";
    case Errc::too_large:
      return "too_large";
    case Errc::forbidden:
      return "forbidden";
    case Errc::busy:
      return "busy";
    case Errc::queue_full:
      return "queue_full";
    case Errc::unavailable:
      return "unavailable";
    case Errc::network:
      return "network";
    case Errc::timeout:
      return "timeout";
    case Errc::disconnected:
      return "disconnected";
    case Errc::refused:
      return "refused";
    case Errc::io:
      return "io";
    case Errc::spawn:
      return "spawn";
    case Errc::database:
      return "database";
    case Errc::schema_newer:
      return "schema_newer";
    case Errc::config:
      return "config";
    case Errc::internal:
      return "internal";
  }
  return "internal";
}

std::ostream& operator<<(std::ostream& out, Errc code) { return out << to_string(code); }

}  // namespace secbox
