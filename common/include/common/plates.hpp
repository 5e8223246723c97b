#pragma once
// Licence plates as the box compares them, at the gate (a guard types one)
// and from a camera (Frigate reads one).
//
// normalize_plate: without case, spaces, tabs, dots or dashes ("abc-123" and
// "ABC 123" are "ABC123").
//
// match_plate: a plate as a camera read it against a banned one. Both are
// normalized, and the characters a reader confuses (O/0, I/1, B/8, S/5, Z/2)
// count as equal. Beyond that, one misread character (a substitution, the
// lengths equal) is tolerated when the banned plate has at least
// kMisreadMinLength characters: a four-character plate with one wrong is too
// many other cars.
#include <string>

namespace secbox {

std::string normalize_plate(const std::string& plate);

enum class PlateMatch {
  none,
  exact,      // the same characters
  confusion,  // the same but for confusable characters (O for 0, …)
  misread,    // one character different besides those
};

constexpr std::size_t kMisreadMinLength = 5;

PlateMatch match_plate(const std::string& read, const std::string& banned);

// "exact", "confusion", "misread" or "none".
const char* wire_name(PlateMatch m);

}  // namespace secbox
