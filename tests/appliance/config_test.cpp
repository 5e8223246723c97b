#include <gtest/gtest.h>

#include "appliance/config.hpp"
#include "common/log.hpp"
#include "temp_dir.hpp"

namespace secbox::appliance {
namespace {

using secbox::testing::TempDir;

class ConfigTest : public ::testing::Test {
 protected:
  TempDir etc;
  Environment env{{"SECBOX_ETC_DIR", etc.path()}, {"SECBOX_STATE_DIR", etc.path() + "/state"}};
  void TearDown() override { log::clear_secrets(); }

  Result<Config> load(const std::string& file_content) {
    etc.write("secbox.env", file_content);
    return load_config(env);
  }
};

TEST_F(ConfigTest, NoFileMeansUnpairedDefaults) {
  auto c = load_config(env);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_FALSE(c.value().env_file_present);
  EXPECT_FALSE(c.value().paired());
  EXPECT_EQ(c.value().lan_port, 8443);
  EXPECT_EQ(c.value().pairing_port, 8080);
  EXPECT_EQ(c.value().frigate_url, "http://127.0.0.1:5000");
  EXPECT_EQ(c.value().alarm_min_score_pct, 80);
  EXPECT_EQ(c.value().paths.env_file(), etc.path() + "/secbox.env");
  EXPECT_EQ(c.value().paths.jwt_file(), etc.path() + "/state/device.jwt");
}

TEST_F(ConfigTest, PairedFile) {
  auto c = load(
      "DEVICE_ID=dev_7Q2x\nCLOUD_BASE_URL=https://cloud.example.com\n"
      "DEVICE_GATEWAY_URL=wss://gw.example.com/ws/device\nLAN_PORT=9443\n");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c.value().paired());
  EXPECT_EQ(c.value().device_id, "dev_7Q2x");
  EXPECT_EQ(c.value().lan_port, 9443);
}

TEST_F(ConfigTest, TheAllowedCloudIsThePinElseThePairedCloudElseNone) {
  auto c = load("");
  ASSERT_TRUE(c);
  EXPECT_EQ(c.value().allowed_cloud(), "");
  c = load("DEVICE_ID=dev_7Q2x\nCLOUD_BASE_URL=https://cloud.example.com\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c.value().allowed_cloud(), "https://cloud.example.com");  // a box installed before pins
  etc.write("cloud",
            "# The one cloud this box pairs with (install.sh --cloud).\n\n  "
            "https://pinned.example.com/  \n");
  c = load("DEVICE_ID=dev_7Q2x\nCLOUD_BASE_URL=https://cloud.example.com\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c.value().pinned_cloud, "https://pinned.example.com");
  EXPECT_EQ(c.value().allowed_cloud(), "https://pinned.example.com");
  // A bad pin pairs with none, and does not stop the box.
  for (const char* bad :
       {"", "# only a comment\n", "ftp://x.example\n", "http://cloud.example.com\n",
        "https://a.example\nhttps://b.example\n", "https://a.example@evil.example\n"}) {
    etc.write("cloud", bad);
    c = load("DEVICE_ID=dev_7Q2x\nCLOUD_BASE_URL=https://cloud.example.com\n");
    ASSERT_TRUE(c) << bad;
    EXPECT_EQ(c.value().allowed_cloud(), "") << bad;
    EXPECT_NE(c.value().cloud_pin_error.find(etc.path() + "/cloud"), std::string::npos) << bad;
  }
  EXPECT_EQ(parse_cloud_pin("http://127.0.0.1:8766\n").value(), "http://127.0.0.1:8766");
}

TEST_F(ConfigTest, FileWinsOverTheProcessEnvironmentWhichFillsGaps) {
  env["LAN_PORT"] = "1111";
  env["PAIRING_PORT"] = "2222";
  auto c = load("LAN_PORT=3333\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c.value().lan_port, 3333);
  EXPECT_EQ(c.value().pairing_port, 2222);
}

TEST_F(ConfigTest, BadValuesNameTheKeyAndTheFileButNotTheValue) {
  struct Case {
    const char* file;
    const char* key;
  } cases[] = {
      {"LAN_PORT=70000\n", "LAN_PORT"},
      {"PAIRING_PORT=http\n", "PAIRING_PORT"},
      {"DEVICE_ID=x\nCLOUD_BASE_URL=https://c\n", "DEVICE_ID"},
      {"DEVICE_ID=dev_1\nCLOUD_BASE_URL=http://cloud.example.com\n", "CLOUD_BASE_URL"},
      {"DEVICE_GATEWAY_URL=ws://gw.example.com/ws\n", "DEVICE_GATEWAY_URL"},
      {"SECBOX_LOG_LEVEL=verbose\n", "SECBOX_LOG_LEVEL"},
      {"CLOUD_CA_FILE=relative/ca.pem\n", "CLOUD_CA_FILE"},
      {"DEVICE_ID=dev_1\n", "CLOUD_BASE_URL"},
      {"ALARM_MIN_SCORE=0.8\n", "ALARM_MIN_SCORE"},
      {"ALARM_MIN_SCORE=101\n", "ALARM_MIN_SCORE"},
      {"ALARM_MIN_SCORE=0\n", "ALARM_MIN_SCORE"},
      {"METRICS_ALLOW=127.0.0.1,prometheus.lan\n", "METRICS_ALLOW"},
      {"METRICS_ALLOW=10.0.0.0/40\n", "METRICS_ALLOW"},
      {"METRICS_TOKEN=short\n", "METRICS_TOKEN"},
  };
  for (const auto& tc : cases) {
    auto c = load(tc.file);
    ASSERT_FALSE(c) << tc.file;
    EXPECT_EQ(c.error().code, Errc::config);
    EXPECT_NE(c.error().message.find(tc.key), std::string::npos) << c.error().message;
    EXPECT_NE(c.error().message.find("secbox.env"), std::string::npos) << c.error().message;
  }
}

TEST_F(ConfigTest, TheCameraAlarmsMinimumScoreIsAPercentage) {
  auto c = load("ALARM_MIN_SCORE=65\n");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c.value().alarm_min_score_pct, 65);
}

TEST_F(ConfigTest, LoopbackMayUsePlainSchemes) {
  auto c = load(
      "DEVICE_ID=dev_1\nCLOUD_BASE_URL=http://127.0.0.1:9000\n"
      "DEVICE_GATEWAY_URL=ws://localhost:9001/ws/device\n");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(is_loopback_url("http://[::1]:80/x"));
  EXPECT_TRUE(is_loopback_url("ws://user@127.1.2.3/"));
  EXPECT_FALSE(is_loopback_url("http://127.0.0.1.evil.com/"));
  EXPECT_FALSE(is_loopback_url("http://localhost.evil.com/"));
  EXPECT_FALSE(is_loopback_url("http://evil.com/@127.0.0.1"));
}

TEST_F(ConfigTest, ParseErrorNamesTheLine) {
  auto c = load("A=1\nBROKEN='x\n");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("secbox.env line 2"), std::string::npos) << c.error().message;
}

TEST_F(ConfigTest, RelativeDirsAreRefused) {
  env["SECBOX_STATE_DIR"] = "state";
  EXPECT_FALSE(load_config(env));
}

TEST_F(ConfigTest, SecretValuesAreRegisteredWithTheRedaction) {
  auto c = load(
      "DEVICE_ID=dev_7Q2x\nCLOUD_BASE_URL=https://cloud.example.com\n"
      "BOOTSTRAP=bt_0123456789abcdef\nDATABASE_URL=postgres://u:pw123456@h/db\n"
      "SOME_API_SECRET=abcdef123456\n");
  ASSERT_TRUE(c);
  const std::string line = log::redact(
      "bt_0123456789abcdef postgres://u:pw123456@h/db abcdef123456 dev_7Q2x cloud.example.com");
  EXPECT_EQ(line.find("bt_0123"), std::string::npos) << line;
  EXPECT_EQ(line.find("pw123456"), std::string::npos) << line;
  EXPECT_EQ(line.find("abcdef123456"), std::string::npos) << line;
  EXPECT_NE(line.find("dev_7Q2x"), std::string::npos) << line;  // not secret
  EXPECT_NE(line.find("cloud.example.com"), std::string::npos) << line;
}

}  // namespace
}  // namespace secbox::appliance
