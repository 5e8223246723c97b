#pragma once
// The box's own network addresses, as a guard or admin would type them.
#include <optional>
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

// Whether an address is a public unicast one, reachable on the internet:
// false for loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7),
// carrier-grade NAT (100.64/10), link-local, multicast, unspecified,
// documentation and reserved ranges, and for text that is no address. An
// IPv4-mapped or NAT64 (64:ff9b::/96) IPv6 address counts as its IPv4.
bool is_public_address(const std::string& address);

// Addresses and blocks a client may come from ("127.0.0.1", "::1",
// "192.168.1.0/24", "fd00::/64"), as a setting names them. Value type.
class AddressList {
 public:
  // Comma- or blank-separated entries; nullopt (with the first bad entry in
  // `bad`) when one is no address or block.
  static std::optional<AddressList> parse(const std::string& text, std::string* bad = nullptr);
  // An IPv4-mapped IPv6 address counts as its IPv4.
  bool contains(const std::string& address) const;
  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    int family = 0;  // AF_INET or AF_INET6
    unsigned char bytes[16] = {};
    int prefix = 0;
  };
  std::vector<Entry> entries_;
};

}  // namespace secbox
