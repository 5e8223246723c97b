// The URL readings the box's trust decisions rest on (the allowed cloud).
#include "common/url.hpp"

#include <gtest/gtest.h>

namespace secbox {
namespace {

TEST(Url, HostAndSchemeIgnoreUserInfoAndPort) {
  EXPECT_EQ(url_scheme("HTTPS://Cloud.Example.com/x"), "https");
  EXPECT_EQ(url_host("https://user:pw@cloud.example.com:8443/x"), "cloud.example.com");
  EXPECT_EQ(url_host("https://[::1]:8443/"), "[::1]");
  EXPECT_EQ(url_host("no scheme"), "");
}

TEST(Url, PortIsExplicitOrTheSchemesDefault) {
  EXPECT_EQ(url_port("https://a.example"), 443);
  EXPECT_EQ(url_port("wss://a.example/ws"), 443);
  EXPECT_EQ(url_port("http://a.example"), 80);
  EXPECT_EQ(url_port("http://a.example:8080/"), 8080);
  EXPECT_EQ(url_port("https://[::1]:9443/x"), 9443);
  EXPECT_EQ(url_port("https://[::1]"), 443);
  EXPECT_EQ(url_port("https://a.example:0"), -1);
  EXPECT_EQ(url_port("https://a.example:65536"), -1);
  EXPECT_EQ(url_port("https://a.example:12ab"), -1);
  EXPECT_EQ(url_port("https://[::1]x"), -1);
  EXPECT_EQ(url_port("ftp://a.example"), -1);
}

TEST(Url, OriginIsLowercaseWithThePortAlwaysWritten) {
  EXPECT_EQ(url_origin("https://Cloud.Example.COM/api"), "https://cloud.example.com:443");
  EXPECT_EQ(url_origin("https://cloud.example.com:443"), "https://cloud.example.com:443");
  EXPECT_EQ(url_origin("https://evil@cloud.example.com"), "https://cloud.example.com:443");
  EXPECT_NE(url_origin("https://cloud.example.com.evil.example"),
            url_origin("https://cloud.example.com"));
  EXPECT_NE(url_origin("http://cloud.example.com"), url_origin("https://cloud.example.com"));
  EXPECT_NE(url_origin("https://cloud.example.com:8443"), url_origin("https://cloud.example.com"));
  EXPECT_EQ(url_origin("https://"), "");
  EXPECT_EQ(url_origin("cloud.example.com"), "");
}

TEST(Url, PathDropsQueryFragmentAndTrailingSlashes) {
  EXPECT_EQ(url_path("https://a.example"), "");
  EXPECT_EQ(url_path("https://a.example/"), "");
  EXPECT_EQ(url_path("https://a.example/tenant/"), "/tenant");
  EXPECT_EQ(url_path("https://a.example/tenant//?x=1#y"), "/tenant");
  EXPECT_EQ(url_path("https://a.example?x=/y"), "");
}

}  // namespace
}  // namespace secbox
