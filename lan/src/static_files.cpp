#include "lan/static_files.hpp"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>

namespace secbox::lan {
namespace {

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size() || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0) return std::nullopt;
    out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
    i += 2;
  }
  return out;
}

std::optional<std::string> real_path(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) == nullptr) return std::nullopt;
  return std::string(buf);
}

}  // namespace

std::string content_type_for(const std::string& path) {
  static const std::map<std::string, std::string> kTypes = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".webmanifest", "application/manifest+json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"},
      {".m3u8", "application/vnd.apple.mpegurl"},
      {".ts", "video/mp2t"},
      {".m4s", "video/iso.segment"},
      {".mp4", "video/mp4"}};
  auto dot = path.rfind('.');
  auto slash = path.rfind('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash))
    return "application/octet-stream";
  std::string ext = path.substr(dot);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  auto it = kTypes.find(ext);
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

Result<StaticFile> resolve_static(const std::string& web_dir, const std::string& url_path) {
  auto decoded = percent_decode(url_path);
  if (!decoded) return Error{Errc::invalid, "the path has a malformed %-escape"};
  const std::string& p = *decoded;
  if (p.empty() || p[0] != '/') return Error{Errc::invalid, "the path must start with /"};
  if (p.find('\0') != std::string::npos) return Error{Errc::invalid, "the path holds a NUL byte"};
  if (p.find('\\') != std::string::npos) return Error{Errc::invalid, "the path holds a backslash"};
  // Segment by segment: no "." or ".." anywhere.
  for (std::size_t start = 1; start <= p.size();) {
    auto end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    const auto seg = p.substr(start, end - start);
    if (seg == ".." || seg == ".")
      return Error{Errc::invalid, "the path may not hold . or .. segments"};
    start = end + 1;
  }
  auto root = real_path(web_dir);
  if (!root) return Error{Errc::not_found, "the web dir does not exist"};
  std::string candidate = *root + p;
  if (candidate.back() == '/') candidate += "index.html";
  struct stat st {};
  if (::stat(candidate.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) candidate += "/index.html";
  auto real = real_path(candidate);
  // Symlinks are followed, and must land inside the web dir.
  if (!real || (real->compare(0, root->size() + 1, *root + "/") != 0)) {
    return Error{Errc::not_found, "no such file"};
  }
  if (::stat(real->c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    return Error{Errc::not_found, "no such file"};
  StaticFile f;
  f.path = *real;
  f.content_type = content_type_for(*real);
  const std::string rel = real->substr(root->size());
  if (rel.rfind("/assets/", 0) == 0) {
    f.cache_control = "public, max-age=31536000, immutable";  // content-hashed names from the build
  } else {
    f.cache_control = "no-cache";  // the app shell, the service worker, the manifest: revalidate
  }
  return f;
}

}  // namespace secbox::lan
