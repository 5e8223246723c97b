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
  std::string authority = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
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

}  // namespace secbox
