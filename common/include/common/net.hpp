#pragma once
// The box's own network addresses, as a guard or admin would type them.
#include <string>
#include <vector>

namespace secbox {

// Addresses of the interfaces that are up, loopback and IPv6 link-local
// excluded, IPv4 first; text form ("192.168.1.20", "fd00::5"). Reads the
// kernel's table (getifaddrs): cheap, no I/O that can block.
std::vector<std::string> lan_addresses();

// The host name (gethostname), "secbox" when it has none.
std::string host_name();

}  // namespace secbox
