// The QR JSON checks of cloud-protocol §2, field by field.
#include "pairing/qr.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace secbox::pairing {
namespace {

const std::string kGood =
    R"({"v":1,"cloudBaseUrl":"https://cloud.example.com","deviceId":"dev_7Q2x",
        "bootstrapToken":"bt_0123456789abcdef","gatewayUrl":"wss://gw.example.com/ws/device",
        "communityId":"com_1","extra":{"ignored":true}})";

std::vector<FieldError> errors_of(const std::string& text) {
  auto r = parse_qr(text);
  if (auto* e = std::get_if<std::vector<FieldError>>(&r)) return *e;
  return {};
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto p = s.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  return s.replace(p, from.size(), to);
}

TEST(Qr, AcceptsTheProtocolsExampleAndIgnoresUnknownFields) {
  auto r = parse_qr(kGood);
  ASSERT_TRUE(std::holds_alternative<QrCode>(r));
  const auto& qr = std::get<QrCode>(r);
  EXPECT_EQ(qr.cloud_base_url, "https://cloud.example.com");
  EXPECT_EQ(qr.gateway_url, "wss://gw.example.com/ws/device");
  EXPECT_EQ(qr.device_id, "dev_7Q2x");
  EXPECT_EQ(qr.bootstrap_token, "bt_0123456789abcdef");
  EXPECT_EQ(qr.community_id, "com_1");
}

TEST(Qr, PlainHttpAndWsOnlyForLoopback) {
  auto local = replace(replace(kGood, "https://cloud.example.com", "http://127.0.0.1:8766"),
                       "wss://gw.example.com/ws/device", "ws://localhost:8766/ws/device");
  EXPECT_TRUE(std::holds_alternative<QrCode>(parse_qr(local)));
  auto e = errors_of(replace(kGood, "https://cloud.example.com", "http://cloud.example.com"));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].field, "cloudBaseUrl");
  EXPECT_NE(e[0].message.find("https://"), std::string::npos);
  e = errors_of(replace(kGood, "wss://gw.example.com/ws/device", "ws://127.0.0.1.evil.com/ws"));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].field, "gatewayUrl");
  e = errors_of(
      replace(kGood, "wss://gw.example.com/ws/device", "https://gw.example.com/ws/device"));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].field, "gatewayUrl");
}

TEST(Qr, UrlsWithUserInfoBackslashesOrSpacesAreRefused) {
  for (const char* bad :
       {"https://evil.example\\@cloud.example.com", "https://cloud.example.com@evil.example",
        "https://cloud.example.com /x", "https://cloud.example.com\t"}) {
    auto e = errors_of(replace(kGood, "\"https://cloud.example.com\"", nlohmann::json(bad).dump()));
    ASSERT_EQ(e.size(), 1u) << bad;
    EXPECT_EQ(e[0].field, "cloudBaseUrl");
  }
}

TEST(Qr, EachBadFieldIsNamed) {
  struct Case {
    std::string from, to, field;
  } cases[] = {
      {R"("v":1)", R"("v":2)", "v"},
      {R"("v":1)", R"("v":"1")", "v"},
      {R"("v":1,)", "", "v"},
      {"dev_7Q2x", "d", "deviceId"},
      {"dev_7Q2x", "dev 7Q2x", "deviceId"},
      {"dev_7Q2x", std::string(65, 'a'), "deviceId"},
      {"bt_0123456789abcdef", "short", "bootstrapToken"},
      {"bt_0123456789abcdef", "bt_0123456789 abcdef", "bootstrapToken"},
      {"bt_0123456789abcdef", std::string(513, 'x'), "bootstrapToken"},
      {"bt_0123456789abcdef", "bt_0123456789abcdé", "bootstrapToken"},
      {R"("https://cloud.example.com")", "42", "cloudBaseUrl"},
      {"https://cloud.example.com", "https://", "cloudBaseUrl"},
      {R"("deviceId":"dev_7Q2x",)", "", "deviceId"},
  };
  for (const auto& c : cases) {
    auto e = errors_of(replace(kGood, c.from, c.to));
    ASSERT_EQ(e.size(), 1u) << c.to;
    EXPECT_EQ(e[0].field, c.field) << c.to;
    EXPECT_EQ(e[0].message.find("bt_0123"), std::string::npos) << "never the token";
  }
}

TEST(Qr, EveryProblemAtOnce) {
  auto e = errors_of(
      R"({"v":3,"cloudBaseUrl":"ftp://x","deviceId":"!","bootstrapToken":"x","gatewayUrl":1})");
  std::vector<std::string> fields;
  for (const auto& x : e) fields.push_back(x.field);
  EXPECT_EQ(fields, (std::vector<std::string>{"v", "cloudBaseUrl", "gatewayUrl", "deviceId",
                                              "bootstrapToken"}));
}

TEST(Qr, NotJsonOrTooLargeIsAboutTheWholeText) {
  for (const std::string& text :
       std::vector<std::string>{"", "   ", "hello", "[1,2]", "{\"v\":1", "2E45238", "{\"v\":1e999}",
                                std::string(8 * 1024 + 1, ' ')}) {
    auto e = errors_of(text);
    ASSERT_EQ(e.size(), 1u) << text.substr(0, 20);
    EXPECT_EQ(e[0].field, "qr");
  }
}

QrCode qr_for(const std::string& cloud, const std::string& gateway) {
  QrCode qr;
  qr.cloud_base_url = cloud;
  qr.gateway_url = gateway;
  return qr;
}

std::vector<std::string> fields_of(const std::vector<FieldError>& errors) {
  std::vector<std::string> f;
  for (const auto& e : errors) f.push_back(e.field);
  return f;
}

TEST(AllowedCloud, TheInstalledCloudAndItsGatewayFit) {
  const std::string allowed = "https://cloud.example.com";
  EXPECT_TRUE(check_allowed_cloud(
                  qr_for("https://cloud.example.com", "wss://gw.example.com/ws/device"), allowed)
                  .empty());
  EXPECT_TRUE(check_allowed_cloud(
                  qr_for("https://Cloud.Example.com:443", "wss://cloud.example.com/ws"), allowed)
                  .empty());
  EXPECT_TRUE(
      check_allowed_cloud(qr_for("https://cloud.example.com", "wss://a.b.example.com/ws"), allowed)
          .empty());
  EXPECT_TRUE(check_allowed_cloud(qr_for("https://cloud.example.com", "wss://example.com/ws"),
                                  "https://cloud.example.com/")
                  .empty());
  EXPECT_TRUE(check_allowed_cloud(qr_for("http://127.0.0.1:8766", "ws://localhost:8767/ws"),
                                  "http://127.0.0.1:8766")
                  .empty());
  EXPECT_TRUE(check_allowed_cloud(qr_for("https://198.51.100.4/t1", "wss://198.51.100.4:9000/ws"),
                                  "https://198.51.100.4/t1/")
                  .empty());
}

TEST(AllowedCloud, AnotherCloudIsRefusedWithAFieldError) {
  const std::string allowed = "https://cloud.example.com";
  for (const char* cloud :
       {"https://evil.example", "https://cloud.example.com.evil.example",
        "https://cloud.example.com:8443", "https://evil.example/@cloud.example.com",
        "https://cloud.example.com/other-tenant", "http://127.0.0.1:8766", "https://example.com",
        "https://gw.example.com"}) {
    auto e = check_allowed_cloud(qr_for(cloud, "wss://gw.example.com/ws"), allowed);
    ASSERT_EQ(fields_of(e), std::vector<std::string>{"cloudBaseUrl"}) << cloud;
    EXPECT_NE(e[0].message.find("https://cloud.example.com"), std::string::npos);
  }
  // A path-scoped cloud is one tenant: the same host's other path is another.
  EXPECT_EQ(fields_of(check_allowed_cloud(
                qr_for("https://cloud.example.com/t2", "wss://gw.example.com/ws"),
                "https://cloud.example.com/t1")),
            std::vector<std::string>{"cloudBaseUrl"});
}

TEST(AllowedCloud, AGatewayOffTheCloudsSiteIsRefused) {
  const std::string allowed = "https://cloud.example.com";
  for (const char* gw :
       {"wss://evil.example/ws", "wss://example.com.evil.example/ws", "wss://badexample.com/ws",
        "wss://198.51.100.4/ws", "ws://127.0.0.1:9/ws"}) {
    EXPECT_EQ(fields_of(check_allowed_cloud(qr_for("https://cloud.example.com", gw), allowed)),
              std::vector<std::string>{"gatewayUrl"})
        << gw;
  }
  // The site is the registrable domain by the public suffix list, not
  // everything after the first dot.
  for (const auto& [cloud, gw] : std::vector<std::pair<std::string, std::string>>{
           {"https://secbox.com.mx", "wss://attacker.com.mx/ws"},
           {"https://cloud.secbox.com.mx", "wss://attacker.com.mx/ws"},
           {"https://caseta.co.uk", "wss://evil.co.uk/ws"},
           {"https://box.github.io", "wss://evil.github.io/ws"},
           {"https://co.uk", "wss://evil.co.uk/ws"}}) {
    EXPECT_EQ(fields_of(check_allowed_cloud(qr_for(cloud, gw), cloud)),
              std::vector<std::string>{"gatewayUrl"})
        << cloud << " " << gw;
  }
  for (const auto& [cloud, gw] : std::vector<std::pair<std::string, std::string>>{
           {"https://cloud.secbox.com.mx", "wss://gw.secbox.com.mx/ws"},
           {"https://secbox.com.mx", "wss://gw.secbox.com.mx/ws"},
           {"https://caseta.co.uk", "wss://tunnel.caseta.co.uk/ws"},
           {"https://cloud.example.com", "wss://example.com/ws"}}) {
    EXPECT_TRUE(check_allowed_cloud(qr_for(cloud, gw), cloud).empty()) << cloud << " " << gw;
  }
  // A two-label cloud name is its own site: no parent domain to share.
  EXPECT_EQ(fields_of(check_allowed_cloud(qr_for("https://example.com", "wss://gw.com/ws"),
                                          "https://example.com")),
            std::vector<std::string>{"gatewayUrl"});
  EXPECT_EQ(fields_of(check_allowed_cloud(qr_for("https://198.51.100.4", "wss://198.51.100.5/ws"),
                                          "https://198.51.100.4")),
            std::vector<std::string>{"gatewayUrl"});
}

TEST(AllowedCloud, NoAllowedCloudPairsWithNone) {
  auto e = check_allowed_cloud(qr_for("https://cloud.example.com", "wss://gw.example.com/ws"), "");
  ASSERT_EQ(fields_of(e), std::vector<std::string>{"cloudBaseUrl"});
  EXPECT_NE(e[0].message.find("--cloud"), std::string::npos);
}

}  // namespace
}  // namespace secbox::pairing
