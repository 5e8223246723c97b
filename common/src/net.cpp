#include "common/net.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace secbox {

namespace {

// The address's family and bytes; an IPv4-mapped IPv6 address as its IPv4.
bool parse_address(const std::string& text, int& family, unsigned char (&bytes)[16]) {
  in6_addr v6{};
  in_addr v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    family = AF_INET;
    std::memcpy(bytes, &v4, 4);
    return true;
  }
  if (::inet_pton(AF_INET6, text.c_str(), &v6) != 1) return false;
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    family = AF_INET;
    std::memcpy(bytes, v6.s6_addr + 12, 4);
    return true;
  }
  family = AF_INET6;
  std::memcpy(bytes, v6.s6_addr, 16);
  return true;
}

bool in_block(const unsigned char* bytes, const unsigned char* block, int prefix) {
  for (int bit = 0; bit < prefix; ++bit) {
    const unsigned char mask = static_cast<unsigned char>(0x80u >> (bit % 8));
    if ((bytes[bit / 8] & mask) != (block[bit / 8] & mask)) return false;
  }
  return true;
}

bool is_public_v4(const unsigned char* b) {
  struct Block {
    unsigned char bytes[4];
    int prefix;
  };
  static const Block kNotPublic[] = {
      {{0, 0, 0, 0}, 8},      {{10, 0, 0, 0}, 8},     {{100, 64, 0, 0}, 10},
      {{127, 0, 0, 0}, 8},    {{169, 254, 0, 0}, 16}, {{172, 16, 0, 0}, 12},
      {{192, 0, 0, 0}, 24},   {{192, 0, 2, 0}, 24},   {{192, 88, 99, 0}, 24},
      {{192, 168, 0, 0}, 16}, {{198, 18, 0, 0}, 15},  {{198, 51, 100, 0}, 24},
      {{203, 0, 113, 0}, 24}, {{224, 0, 0, 0}, 4},    {{240, 0, 0, 0}, 4},
  };
  for (const auto& block : kNotPublic) {
    if (in_block(b, block.bytes, block.prefix)) return false;
  }
  return true;
}

}  // namespace

bool is_public_address(const std::string& address) {
  int family = 0;
  unsigned char bytes[16] = {};
  if (!parse_address(address, family, bytes)) return false;
  if (family == AF_INET) return is_public_v4(bytes);
  static const unsigned char kNat64[12] = {0x00, 0x64, 0xff, 0x9b};
  if (in_block(bytes, kNat64, 96)) return is_public_v4(bytes + 12);
  // Global unicast is 2000::/3; within it, documentation (2001:db8::/32),
  // ORCHID and benchmarking blocks (2001::/23 holds the special-purpose
  // ones) and 6to4 relays' anycast are not a host to fetch from.
  static const unsigned char kGlobal[1] = {0x20};
  static const unsigned char kSpecial[3] = {0x20, 0x01, 0x00};
  static const unsigned char kDocumentation[4] = {0x20, 0x01, 0x0d, 0xb8};
  static const unsigned char k6to4[2] = {0x20, 0x02};
  if (!in_block(bytes, kGlobal, 3)) return false;
  if (in_block(bytes, kSpecial, 23) || in_block(bytes, kDocumentation, 32)) return false;
  if (in_block(bytes, k6to4, 16)) return is_public_v4(bytes + 2);
  return true;
}

std::optional<AddressList> AddressList::parse(const std::string& text, std::string* bad) {
  AddressList list;
  std::string item;
  auto take = [&]() -> bool {
    if (item.empty()) return true;
    Entry e;
    const auto slash = item.find('/');
    const std::string address = item.substr(0, slash);
    bool good = parse_address(address, e.family, e.bytes);
    const int bits = e.family == AF_INET ? 32 : 128;
    e.prefix = bits;
    if (good && slash != std::string::npos) {
      const std::string p = item.substr(slash + 1);
      good = !p.empty() && p.size() <= 3 && std::all_of(p.begin(), p.end(), ::isdigit) &&
             std::stoi(p) <= bits;
      if (good) e.prefix = std::stoi(p);
    }
    if (!good) {
      if (bad) *bad = item;
      return false;
    }
    list.entries_.push_back(e);
    item.clear();
    return true;
  };
  for (char c : text) {
    if (c == ',' || c == ' ' || c == '\t') {
      if (!take()) return std::nullopt;
    } else {
      item += c;
    }
  }
  if (!take()) return std::nullopt;
  return list;
}

bool AddressList::contains(const std::string& address) const {
  int family = 0;
  unsigned char bytes[16] = {};
  if (!parse_address(address, family, bytes)) return false;
  for (const auto& e : entries_) {
    if (e.family != family) continue;
    const int whole = e.prefix / 8;
    const int rest = e.prefix % 8;
    if (std::memcmp(bytes, e.bytes, static_cast<std::size_t>(whole)) != 0) continue;
    if (rest != 0) {
      const unsigned char mask = static_cast<unsigned char>(0xFF << (8 - rest));
      if ((bytes[whole] & mask) != (e.bytes[whole] & mask)) continue;
    }
    return true;
  }
  return false;
}

std::vector<std::string> lan_addresses() {
  std::vector<std::string> v4, v6;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return {};
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK))
      continue;
    char text[INET6_ADDRSTRLEN] = {};
    if (i->ifa_addr->sa_family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
      if (::inet_ntop(AF_INET, &a->sin_addr, text, sizeof text)) v4.emplace_back(text);
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(i->ifa_addr);
      if (IN6_IS_ADDR_LINKLOCAL(&a->sin6_addr) || IN6_IS_ADDR_LOOPBACK(&a->sin6_addr)) continue;
      if (::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text)) v6.emplace_back(text);
    }
  }
  ::freeifaddrs(list);
  for (auto& a : v6) v4.push_back(std::move(a));
  v4.erase(std::unique(v4.begin(), v4.end()), v4.end());
  return v4;
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "secbox";
  return name;
}

std::string address_block(const std::string& address) {
  std::string a = address.substr(0, address.find('%'));  // no zone id
  in6_addr v6{};
  if (::inet_pton(AF_INET6, a.c_str(), &v6) != 1) return a;
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    char v4[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &v6.s6_addr[12], v4, sizeof v4);
    return v4;
  }
  std::memset(&v6.s6_addr[8], 0, 8);
  char text[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET6, &v6, text, sizeof text);
  return std::string(text) + "/64";
}

}  // namespace secbox
