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

// What a LAN client is counted as: an IPv4 address as it is, an IPv6 one by
// its /64 ("fd00:1::/64"; one host picks any address of its prefix, and
// every link-local address shares one), an IPv4-mapped one as its IPv4.
// Text that is no IPv6 address comes back as it is.
std::string address_block(const std::string& address);

}  // namespace secbox
