#include "common/plates.hpp"

#include <cctype>

namespace secbox {
namespace {

// One representative of each group of characters a plate reader confuses.
char canonical(char c) {
  switch (c) {
    case 'O':
      return '0';
    case 'I':
      return '1';
    case 'B':
      return '8';
    case 'S':
      return '5';
    case 'Z':
      return '2';
    default:
      return c;
  }
}

}  // namespace

std::string normalize_plate(const std::string& plate) {
  std::string out;
  out.reserve(plate.size());
  for (unsigned char c : plate) {
    if (c == ' ' || c == '-' || c == '\t' || c == '.') continue;
    out += static_cast<char>(std::toupper(c));
  }
  return out;
}

PlateMatch match_plate(const std::string& read, const std::string& banned) {
  const std::string a = normalize_plate(read), b = normalize_plate(banned);
  if (a.empty() || b.empty()) return PlateMatch::none;
  if (a == b) return PlateMatch::exact;
  if (a.size() != b.size()) return PlateMatch::none;
  std::size_t different = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (canonical(a[i]) != canonical(b[i]) && ++different > 1) return PlateMatch::none;
  }
  if (different == 0) return PlateMatch::confusion;
  return b.size() >= kMisreadMinLength ? PlateMatch::misread : PlateMatch::none;
}

const char* wire_name(PlateMatch m) {
  switch (m) {
    case PlateMatch::exact:
      return "exact";
    case PlateMatch::confusion:
      return "confusion";
    case PlateMatch::misread:
      return "misread";
    case PlateMatch::none:
      break;
  }
  return "none";
}

}  // namespace secbox
