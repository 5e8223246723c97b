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

}  // namespace secbox
