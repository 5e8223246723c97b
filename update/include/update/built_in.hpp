#pragma once
// The version a daemon binary states about itself (cloud-protocol §7.6: the
// only version the box states). It lives in a fixed slot of the binary: a
// 16-byte mark, then the version and NULs up to 64 bytes. The build fills it
// with the project's version; the release tool stamps a release's version
// into a copy of the binary (in place, same size), so that one build can be
// released under the name its manifest gives, and the box reads the version
// back from the file before it acks an update, without running it.
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace secbox::update {

inline constexpr std::size_t kVersionSlotChars = 64;

// This process's built-in version.
std::string built_in_version();

// The version stamped in a daemon binary's bytes; an Error ("invalid") when
// the file has no slot, more than one, or a slot that holds no version.
Result<std::string> built_in_version_of(std::string_view binary_bytes);
// The same for a file (blocking; at most 256 MiB read).
Result<std::string> built_in_version_of_file(const std::string& path);

// `binary_bytes` with `version` in its slot (the release tool). The version
// must be a valid version name.
Result<std::string> stamp_version(std::string binary_bytes, const std::string& version);

}  // namespace secbox::update
