#include "common/url.hpp"

#include <algorithm>
#include <cctype>
#include <regex>

namespace secbox {

std::string url_host(const std::string& url) {
  auto start = url.find("://");
  if (start == std::string::npos) return "";
  start += 3;
  auto at = url.find('@', start);
  auto end = url.find_first_of("/?#", start);
  if (at != std::string::npos && (end == std::string::npos || at < end)) start = at + 1;
  std::string authority =
      url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (!authority.empty() && authority[0] == '[') {
    auto close = authority.find(']');
    return close == std::string::npos ? "" : authority.substr(0, close + 1);
  }
  return authority.substr(0, authority.find(':'));
}

std::string url_scheme(const std::string& url) {
  auto p = url.find("://");
  if (p == std::string::npos) return "";
  std::string s = url.substr(0, p);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool is_loopback_url(const std::string& url) {
  const std::string host = url_host(url);
  if (host == "localhost" || host == "[::1]") return true;
  static const std::regex kV4(R"(^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$)");
  return std::regex_match(host, kV4);
}

namespace {

// The authority of a URL without user info: "host:port", "[::1]:8443".
std::string authority_of(const std::string& url) {
  auto start = url.find("://");
  if (start == std::string::npos) return "";
  start += 3;
  auto end = url.find_first_of("/?#", start);
  std::string authority =
      url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (auto at = authority.rfind('@'); at != std::string::npos) authority.erase(0, at + 1);
  return authority;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

int url_port(const std::string& url) {
  const std::string authority = authority_of(url);
  std::string port;
  if (!authority.empty() && authority[0] == '[') {
    auto close = authority.find(']');
    if (close == std::string::npos) return -1;
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return -1;
      port = authority.substr(close + 2);
    }
  } else if (auto colon = authority.find(':'); colon != std::string::npos) {
    port = authority.substr(colon + 1);
  }
  if (port.empty()) {
    const std::string s = url_scheme(url);
    if (s == "http" || s == "ws") return 80;
    if (s == "https" || s == "wss") return 443;
    return -1;
  }
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return -1;
  const int n = std::stoi(port);
  return n >= 1 && n <= 65535 ? n : -1;
}

std::string url_origin(const std::string& url) {
  const std::string scheme = url_scheme(url);
  const std::string host = lower(url_host(url));
  const int port = url_port(url);
  if (scheme.empty() || host.empty() || host == "[]" || port < 0) return "";
  return scheme + "://" + host + ":" + std::to_string(port);
}

std::string url_path(const std::string& url) {
  auto start = url.find("://");
  if (start == std::string::npos) return "";
  auto slash = url.find_first_of("/?#", start + 3);
  if (slash == std::string::npos || url[slash] != '/') return "";
  std::string path = url.substr(slash, url.find_first_of("?#", slash) - slash);
  while (!path.empty() && path.back() == '/') path.pop_back();
  return path;
}

}  // namespace secbox
