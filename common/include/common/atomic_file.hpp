#pragma once
// Files that must never be seen half-written (env file, device JWT, TLS key):
// written to a temp file in the same folder, fsynced, renamed over the target,
// and the folder fsynced, so a crash leaves either the old or the new file.
// Blocking: call from a BlockingPool task, or before the loop runs.
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>
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

// Reads a whole file of at most max_bytes. Errors: Errc::not_found when the
// file does not exist, Errc::too_large, Errc::io.
Result<std::string> read_file(const std::string& path, std::size_t max_bytes);

// The regular files of a folder whose names end with `extension`, read in
// name order (each at most max_bytes, at most max_files of them), for the
// loaders of a folder of settings (tools, cameras). A missing folder is no
// files and no problem; every other failure is a problem naming the file, and
// the other files are still read. Past max_files the folder is not listed
// further (which files were kept is then the listing's order, and the
// problem says so).
struct FolderFile {
  std::string stem;  // the name without the extension
  std::string filename;
  std::string text;
};
struct FolderRead {
  std::vector<FolderFile> files;
  std::vector<std::string> problems;
};
FolderRead read_folder(const std::string& dir, const std::string& extension, std::size_t max_bytes,
                       std::size_t max_files = 256);

}  // namespace secbox
