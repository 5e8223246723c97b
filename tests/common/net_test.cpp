// The box's addresses and how a LAN client is counted: IPv4 as it is, IPv6 by
// its /64, IPv4-mapped as the IPv4 it is.
#include "common/net.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>

namespace secbox {
namespace {

TEST(Net, AddressBlocksCountAnIpv6HostByItsPrefix) {
  EXPECT_EQ(address_block("192.168.1.20"), "192.168.1.20");
  EXPECT_EQ(address_block("fd00:1:2:3:aaaa:bbbb:cccc:dddd"), "fd00:1:2:3::/64");
  EXPECT_EQ(address_block("fd00:1:2:3::1"), address_block("fd00:1:2:3:ffff::9"));
  EXPECT_NE(address_block("fd00:1:2:3::1"), address_block("fd00:1:2:4::1"));
}

TEST(Net, AnAddressListHoldsAddressesAndBlocks) {
  auto list = AddressList::parse("127.0.0.1, ::1 192.168.1.0/24,fd00:1::/32");
  ASSERT_TRUE(list);
  for (const char* in :
       {"127.0.0.1", "::1", "192.168.1.77", "::ffff:192.168.1.5", "fd00:1:ffff::9"}) {
    EXPECT_TRUE(list->contains(in)) << in;
  }
  for (const char* out :
       {"127.0.0.2", "192.168.2.1", "fd00:2::1", "::2", "", "localhost", "10.0.0.1"}) {
    EXPECT_FALSE(list->contains(out)) << out;
  }
  auto odd = AddressList::parse("10.1.2.3/9");
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->contains("10.127.0.1"));
  EXPECT_FALSE(odd->contains("10.128.0.1"));
  for (const char* bad :
       {"300.1.1.1", "10.0.0.0/33", "fd00::/129", "host.lan", "10.0.0.0/", "10.0.0.0/x"}) {
    std::string which;
    EXPECT_FALSE(AddressList::parse(std::string("127.0.0.1,") + bad, &which)) << bad;
    EXPECT_EQ(which, bad);
  }
  EXPECT_TRUE(AddressList::parse("")->empty());
  EXPECT_EQ(address_block("fe80::1"), address_block("fe80::abcd:1"));
  EXPECT_EQ(address_block("::ffff:10.0.0.7"), "10.0.0.7");
  EXPECT_EQ(address_block("not an address"), "not an address");
  EXPECT_EQ(address_block(""), "");
}

TEST(Net, TheBoxsAddressesAreRealAndNeverLoopbackOrLinkLocal) {
  bool v6_seen = false;
  for (const auto& a : lan_addresses()) {
    in_addr v4{};
    in6_addr v6{};
    if (::inet_pton(AF_INET, a.c_str(), &v4) == 1) {
      EXPECT_FALSE(v6_seen) << "IPv4 first";
      EXPECT_NE(a.rfind("127.", 0), 0u) << a;
    } else {
      ASSERT_EQ(::inet_pton(AF_INET6, a.c_str(), &v6), 1) << a;
      v6_seen = true;
      EXPECT_NE(a, "::1");
      EXPECT_NE(a.rfind("fe80:", 0), 0u) << a;
    }
  }
  EXPECT_FALSE(host_name().empty());
}

}  // namespace
}  // namespace secbox

// What a fetch on the cloud's word may connect to: public unicast only.
TEST(Net, OnlyPublicUnicastAddressesArePublic) {
  for (const char* a : {"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111",
                        "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"}) {
    EXPECT_TRUE(secbox::is_public_address(a)) << a;
  }
  for (const char* a : {"127.0.0.1",    "10.1.2.3",         "172.16.0.1",      "172.31.255.255",
                        "192.168.1.20", "169.254.169.254",  "100.64.0.1",      "0.0.0.0",
                        "224.0.0.1",    "255.255.255.255",  "192.0.2.1",       "::1",
                        "::",           "fe80::1",          "fd00::5",         "fc00::1",
                        "ff02::1",      "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1",
                        "2001:db8::1",  "2002:c0a8:101::1", "not an address",  ""}) {
    EXPECT_FALSE(secbox::is_public_address(a)) << a;
  }
}
