#pragma once
// Small, strict readings of the URLs the box is configured with. Pure.
#include <string>

namespace secbox {

// Lowercase scheme ("https"), or "" when there is no "://".
std::string url_scheme(const std::string& url);

// The host of a URL's authority, without user info or port; an IPv6 literal
// keeps its brackets ("[::1]"). "" when there is none.
std::string url_host(const std::string& url);

// Whether a URL's host is loopback (localhost, 127.0.0.0/8, [::1]).
bool is_loopback_url(const std::string& url);

// The port, explicit or the scheme's default (http/ws 80, https/wss 443);
// -1 when it is not a number from 1 to 65535 or the scheme has no default.
int url_port(const std::string& url);

// "scheme://host:port", lowercase, the port always written: two URLs with
// the same origin reach the same server. "" when the URL has no such parts.
std::string url_origin(const std::string& url);

// The path without query, fragment or trailing slashes ("" for the root).
std::string url_path(const std::string& url);

}  // namespace secbox
