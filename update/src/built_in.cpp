#include "update/built_in.hpp"

#include <cstring>

#include "common/atomic_file.hpp"
#include "update/verify.hpp"
#include "update/versions.hpp"

#ifndef SECBOX_VERSION_STRING
#error "SECBOX_VERSION_STRING is set by update/CMakeLists.txt"
#endif

// The slot. volatile: the compiler must read it from the binary at run time
// (a stamped copy holds another version than the one compiled in); used: it
// stays in the binary whatever refers to it.
extern "C" {
__attribute__((used))
const volatile char secbox_version_slot[16 + secbox::update::kVersionSlotChars + 1] =
    "@(#)secbox-slot:" SECBOX_VERSION_STRING;
}

namespace secbox::update {
namespace {

constexpr std::size_t kMarkChars = 16;

// The mark, read from the slot itself: the binary holds its bytes only once,
// in the slot.
std::string mark() {
  std::string m(kMarkChars, '\0');
  for (std::size_t i = 0; i < kMarkChars; ++i) m[i] = secbox_version_slot[i];
  return m;
}

Error invalid(const std::string& why) { return Error{Errc::invalid, why}; }

// Offsets of the mark in `bytes`.
std::vector<std::size_t> find_marks(std::string_view bytes) {
  const std::string m = mark();
  std::vector<std::size_t> at;
  for (std::size_t pos = bytes.find(m); pos != std::string_view::npos;
       pos = bytes.find(m, pos + 1)) {
    at.push_back(pos);
    if (at.size() > 2) break;
  }
  return at;
}

}  // namespace

std::string built_in_version() {
  std::string v;
  for (std::size_t i = kMarkChars;
       i < kMarkChars + kVersionSlotChars && secbox_version_slot[i] != '\0'; ++i) {
    v.push_back(secbox_version_slot[i]);
  }
  return VersionStore::valid_version(v) ? v : "unknown";
}

Result<std::string> built_in_version_of(std::string_view bytes) {
  const auto at = find_marks(bytes);
  if (at.empty()) return invalid("the daemon has no built-in version (not a secbox binary)");
  if (at.size() > 1) return invalid("the daemon holds more than one version slot");
  const std::string_view rest = bytes.substr(at[0] + kMarkChars, kVersionSlotChars + 1);
  const auto end = rest.find('\0');
  if (end == std::string_view::npos) return invalid("the daemon's version slot is not terminated");
  const std::string v(rest.substr(0, end));
  if (!VersionStore::valid_version(v))
    return invalid("the daemon's built-in version is not a version name");
  return v;
}

Result<std::string> built_in_version_of_file(const std::string& path) {
  auto bytes = read_file(path, kMaxUpdateBytes);
  if (!bytes) return bytes.error();
  return built_in_version_of(bytes.value());
}

Result<std::string> stamp_version(std::string bytes, const std::string& version) {
  if (!VersionStore::valid_version(version))
    return invalid("\"" + version.substr(0, 64) + "\" is not a version name");
  const auto at = find_marks(bytes);
  if (at.size() != 1)
    return invalid(at.empty() ? "no version slot in the binary" : "more than one version slot");
  const std::size_t start = at[0] + kMarkChars;
  if (bytes.size() < start + kVersionSlotChars + 1) return invalid("the version slot is cut short");
  std::memset(&bytes[start], 0, kVersionSlotChars + 1);
  std::memcpy(&bytes[start], version.data(), version.size());
  return bytes;
}

}  // namespace secbox::update
