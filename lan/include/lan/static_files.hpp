#pragma once
// The guard app's files, served from the install's web dir: a request path
// is mapped to a file that is really inside that dir, or refused. Blocking
// (realpath, stat): the server calls it from its worker pool.
#include <string>

#include "common/result.hpp"

namespace secbox::lan {

struct StaticFile {
  std::string path;           // the real path, inside the web dir
  std::string content_type;   // by extension
  std::string cache_control;  // no-cache for the app shell, long for hashed assets
};

// `url_path` is the request target's path, still percent-encoded. Errors:
// Errc::invalid (NUL, a malformed escape, a `..` segment, a backslash: 400)
// and Errc::not_found (absent, a folder without index.html, or outside the web dir
// through a symlink: 404).
Result<StaticFile> resolve_static(const std::string& web_dir, const std::string& url_path);

std::string content_type_for(const std::string& path);

}  // namespace secbox::lan
