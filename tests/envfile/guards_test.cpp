#include <sys/stat.h>

#include <gtest/gtest.h>

#include "envfile/guards.hpp"
#include "temp_dir.hpp"

namespace secbox::envfile {
namespace {

using secbox::testing::TempDir;

TEST(DeriveGatewayUrl, ReplacesTheLastSegment) {
  EXPECT_EQ(derive_gateway_url("wss://gw.example.com/ws/mgmt").value(),
            "wss://gw.example.com/ws/device");
  EXPECT_EQ(derive_gateway_url("wss://gw.example.com/mgmt").value(), "wss://gw.example.com/device");
  EXPECT_EQ(derive_gateway_url("wss://gw.example.com/ws/mgmt/").value(),
            "wss://gw.example.com/ws/device/");
  EXPECT_EQ(derive_gateway_url("wss://gw:8443/a/mgmt?x=mgmt#f").value(),
            "wss://gw:8443/a/device?x=mgmt#f");
  EXPECT_EQ(derive_gateway_url("ws://127.0.0.1:9000/mgmt/mgmt").value(),
            "ws://127.0.0.1:9000/mgmt/device");
}

TEST(DeriveGatewayUrl, FailsNamingTheSegmentWhenItIsNotMgmt) {
  for (const char* url :
       {"wss://gw.example.com/ws/agent", "wss://gw.example.com", "wss://gw.example.com/",
        "wss://gw/ws/mgmtx", "not a url", "wss://gw.example.com?mgmt"}) {
    auto r = derive_gateway_url(url);
    ASSERT_FALSE(r) << url;
    EXPECT_EQ(r.error().code, Errc::invalid);
    EXPECT_NE(r.error().message.find("MGMT_GATEWAY_URL"), std::string::npos);
  }
  EXPECT_NE(derive_gateway_url("wss://gw/ws/agent").error().message.find("\"agent\""),
            std::string::npos);
}

TEST(DeriveFromLegacy, CopiesTheThreeKeysAsTheyAreAndDerivesTheGateway) {
  EnvFile legacy;
  legacy.set("CLOUD_BASE_URL", "https://cloud.example.com");
  legacy.set("DEVICE_ID", "dev_7Q2x");
  legacy.set("BOOTSTRAP", "bt_abcdefghijklmnop");
  legacy.set("MGMT_GATEWAY_URL", "wss://gw.example.com/ws/mgmt");
  legacy.set("UNRELATED", "x");
  auto env = derive_from_legacy(legacy);
  ASSERT_TRUE(env) << env.error().message;
  EXPECT_EQ(env.value().get("CLOUD_BASE_URL"), "https://cloud.example.com");
  EXPECT_EQ(env.value().get("DEVICE_ID"), "dev_7Q2x");
  EXPECT_EQ(env.value().get("BOOTSTRAP"), "bt_abcdefghijklmnop");
  EXPECT_EQ(env.value().get("DEVICE_GATEWAY_URL"), "wss://gw.example.com/ws/device");
  EXPECT_FALSE(env.value().get("UNRELATED"));
  EXPECT_FALSE(env.value().get("MGMT_GATEWAY_URL"));
}

TEST(DeriveFromLegacy, BadGatewayFailsThePhase) {
  EnvFile legacy;
  legacy.set("DEVICE_ID", "d");
  legacy.set("MGMT_GATEWAY_URL", "wss://gw/ws/other");
  auto env = derive_from_legacy(legacy);
  ASSERT_FALSE(env);
  EXPECT_EQ(env.error().code, Errc::invalid);
}

class EnsureTest : public ::testing::Test {
 protected:
  TempDir dir;
  std::string env_path = dir.file("secbox.env");
  std::string legacy_path = dir.file("mgmt-agent.env");
  void write_legacy() {
    dir.write("mgmt-agent.env",
              "CLOUD_BASE_URL=https://cloud.example.com\nDEVICE_ID=dev_1\n"
              "BOOTSTRAP=bt_0123456789abcdef\nMGMT_GATEWAY_URL=wss://gw.example.com/ws/mgmt\n");
  }
};

TEST_F(EnsureTest, PresentFileIsUsedAsItIs) {
  dir.write("secbox.env", "DEVICE_ID=mine\n");
  write_legacy();
  auto r = ensure_from_legacy(env_path, legacy_path, std::nullopt, false);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r.value().created);
  EXPECT_EQ(r.value().env.get("DEVICE_ID"), "mine");
  EXPECT_EQ(TempDir::read(env_path), "DEVICE_ID=mine\n");
}

TEST_F(EnsureTest, MissingFileIsDerivedAndWrittenWithMode0600) {
  write_legacy();
  auto r = ensure_from_legacy(env_path, legacy_path, std::nullopt, false);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r.value().created);
  auto written = load(env_path);
  ASSERT_TRUE(written);
  EXPECT_EQ(written.value().get("DEVICE_GATEWAY_URL"), "wss://gw.example.com/ws/device");
  struct stat st {};
  ASSERT_EQ(::stat(env_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(EnsureTest, EmptyOrCommentOnlyFileIsDerived) {
  for (const char* content : {"", "\n\n", "# nothing yet\n"}) {
    dir.write("secbox.env", content);
    write_legacy();
    auto r = ensure_from_legacy(env_path, legacy_path, std::nullopt, false);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(r.value().created) << content;
    EXPECT_EQ(r.value().env.get("DEVICE_ID"), "dev_1");
  }
}

TEST_F(EnsureTest, DryRunWritesNothing) {
  write_legacy();
  auto r = ensure_from_legacy(env_path, legacy_path, std::nullopt, true);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r.value().created);
  EXPECT_NE(r.value().detail.find("would be derived"), std::string::npos);
  struct stat st {};
  EXPECT_NE(::stat(env_path.c_str(), &st), 0);
}

TEST_F(EnsureTest, NoLegacyFileFailsThePhase) {
  auto r = ensure_from_legacy(env_path, legacy_path, std::nullopt, false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::not_found);
  EXPECT_NE(r.error().message.find("mgmt-agent.env"), std::string::npos);
}

TEST_F(EnsureTest, UnparsableSecboxEnvFailsThePhaseAndIsKept) {
  dir.write("secbox.env", "DEVICE_ID='broken\n");
  write_legacy();
  auto r = ensure_from_legacy(env_path, legacy_path, std::nullopt, false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid);
  EXPECT_EQ(TempDir::read(env_path), "DEVICE_ID='broken\n");
}

TEST_F(EnsureTest, LegacyGatewayWithoutMgmtSegmentFailsAndWritesNothing) {
  dir.write("mgmt-agent.env", "DEVICE_ID=d\nMGMT_GATEWAY_URL=wss://gw/ws/agent\n");
  auto r = ensure_from_legacy(env_path, legacy_path, std::nullopt, false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid);
  struct stat st {};
  EXPECT_NE(::stat(env_path.c_str(), &st), 0);
}

TEST(RequiredKeys, BothPresentAndNonEmpty) {
  EnvFile env;
  env.set("DEVICE_ID", "d");
  env.set("CLOUD_BASE_URL", "https://c");
  EXPECT_TRUE(check_required_keys(env));
}

TEST(RequiredKeys, NamesEveryMissingOrEmptyKey) {
  EnvFile env;
  env.set("DEVICE_ID", "");
  auto r = check_required_keys(env);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid);
  EXPECT_NE(r.error().message.find("DEVICE_ID"), std::string::npos);
  EXPECT_NE(r.error().message.find("CLOUD_BASE_URL"), std::string::npos);
}

}  // namespace
}  // namespace secbox::envfile
