#pragma once
// Files that must never be seen half-written (env file, device JWT, TLS key):
// written to a temp file in the same folder, fsynced, renamed over the target,
// and the folder fsynced, so a crash leaves either the old or the new file.
// Blocking: call from a BlockingPool task, or before the loop runs.
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace secbox {

struct FileOwner {
  uid_t uid;
  gid_t gid;
};

struct AtomicWriteOptions {
  mode_t mode = 0600;
  std::optional<FileOwner> owner;
};

Result<void> write_file_atomically(const std::string& path, std::string_view content,
                                   const AtomicWriteOptions& options = {});

// Reads a whole file of at most max_bytes. Errors: code "not_found" when the
// file does not exist, "too-large", "io".
Result<std::string> read_file(const std::string& path, std::size_t max_bytes);

}  // namespace secbox
