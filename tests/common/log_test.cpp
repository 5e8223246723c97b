#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/log.hpp"

namespace secbox::log {
namespace {

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    configure(Options{false, Level::debug});
    set_sink([this](std::string_view line) { lines.emplace_back(line); });
  }
  void TearDown() override {
    set_sink(nullptr);
    clear_secrets();
    configure(Options{});
  }
  std::string all() const {
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
  }
  std::vector<std::string> lines;
};

TEST_F(LogTest, JsonLineHasTheStandardFields) {
  Logger("replica").info("Applied a snapshot.", {{"entity", "unit"}, {"rows", 3}, {"ok", true}});
  ASSERT_EQ(lines.size(), 1u);
  auto j = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["component"], "replica");
  EXPECT_EQ(j["msg"], "Applied a snapshot.");
  EXPECT_EQ(j["entity"], "unit");
  EXPECT_EQ(j["rows"], 3);
  EXPECT_EQ(j["ok"], true);
  EXPECT_TRUE(j["ts"].get<std::string>().size() == 24 && j["ts"].get<std::string>().back() == 'Z');
}

// The database down: the same failure every second. At most the burst per
// window is written; the first line after says how many were held back.
TEST_F(LogTest, RepeatedWarningsAreRateLimitedAndCountedWhenTheyResume) {
  configure(Options{false, Level::debug, 3, std::chrono::milliseconds(300)});
  Logger l("replica");
  for (int i = 0; i < 50; ++i) l.error("The database is unreachable.", {{"attempt", i}});
  l.warn("Another problem.");
  for (int i = 0; i < 5; ++i) l.info("Not limited.");
  ASSERT_EQ(lines.size(), 3u + 1u + 5u) << all();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(nlohmann::json::parse(lines[i])["attempt"], i);
  EXPECT_FALSE(nlohmann::json::parse(lines[0]).contains("suppressed"));
  lines.clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(350));
  l.error("The database is unreachable.", {{"attempt", 50}});
  ASSERT_EQ(lines.size(), 1u);
  const auto resumed = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(resumed["suppressed"], 47);
  EXPECT_EQ(resumed["attempt"], 50);
  // The same message from another component is another line.
  Logger("tunnel").error("The database is unreachable.");
  EXPECT_EQ(lines.size(), 2u);
}

TEST_F(LogTest, RepeatTrackingStaysBoundedWithEndlesslyDifferentMessages) {
  configure(Options{false, Level::debug, 1, std::chrono::milliseconds(60000)});
  Logger l("lan");
  for (int i = 0; i < 5000; ++i) l.warn("Refused " + std::to_string(i));
  // Every distinct message is written once (none is a repeat) and the table
  // stops growing at its cap instead of holding 5000 keys.
  EXPECT_EQ(lines.size(), 5000u);
  l.warn("Refused 1");
  EXPECT_EQ(lines.size(), 5000u);  // one of the first 1024: still followed
}

TEST_F(LogTest, LevelFilter) {
  configure(Options{false, Level::warn});
  Logger l("x");
  l.debug("d");
  l.info("i");
  l.warn("w");
  l.error("e");
  EXPECT_EQ(lines.size(), 2u);
}

TEST_F(LogTest, HumanFormatIsOneReadableLine) {
  configure(Options{true, Level::debug});
  Logger("tunnel").warn("Tunnel closed.\nforged line", {{"code", 4401}, {"reason", "a b"}});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("WARN  [tunnel] Tunnel closed. forged line code=4401 reason=\"a b\""),
            std::string::npos)
      << lines[0];
}

TEST_F(LogTest, InvalidUtf8DoesNotBreakTheLine) {
  Logger("x").info("bad \xff bytes", {{"f", "\xc3"}});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(nlohmann::json::accept(lines[0]));
}

// The redaction rule: none of these secrets may reach any log line, whichever
// way a careless caller passes them, in either format.
TEST_F(LogTest, SecretsNeverReachALogLine) {
  const std::string jwt =
      "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJkZXZfN1EyeCIsImV4cCI6MTc5MDAwMDAwMH0.c2lnbmF0dXJlLWJ5dGVz";
  const std::string bootstrap = "bt_Zq81mNcv02LpX7wq";
  const std::string pin = "4821";
  const std::string pin_hash = "pbkdf2-sha256$100000$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaA==";
  const std::string env_value = "postgres://secbox:Sup3rS3cret@db/secbox";
  add_secret(bootstrap);
  add_secret(env_value);

  for (bool human : {false, true}) {
    configure(Options{human, Level::debug});
    Logger l("pairing");
    l.info("Claimed with token " + bootstrap + " and got " + jwt);
    l.info("Refresh sent", {{"authorization", "Bearer " + jwt}});
    l.info("header dump: Authorization: Bearer " + jwt + " X-Device-Id: dev_1");
    l.info("header dump: authorization: bearer opaque-token-123");
    l.info("Guard login", {{"guardId", "g1"}, {"pin", pin}, {"pinHash", pin_hash}});
    l.info("env set", {{"key", "DATABASE_URL"}, {"value", env_value}});
    l.info("Env changed", {{"detail", "DATABASE_URL=" + env_value}});
    l.info("Rotated", {{"deviceJwt", jwt}, {"bootstrapToken", bootstrap}, {"note", jwt}});
  }
  const std::string out = all();
  EXPECT_EQ(out.find(jwt), std::string::npos) << out;
  EXPECT_EQ(out.find("eyJhbGci"), std::string::npos) << out;
  EXPECT_EQ(out.find(bootstrap), std::string::npos) << out;
  EXPECT_EQ(out.find(pin_hash), std::string::npos) << out;
  EXPECT_EQ(out.find("Sup3rS3cret"), std::string::npos) << out;
  EXPECT_EQ(out.find("opaque-token-123"), std::string::npos) << out;
  EXPECT_EQ(out.find("\"4821\""), std::string::npos) << out;
  EXPECT_EQ(out.find("pin=4821"), std::string::npos) << out;
  // What is not secret stays readable.
  EXPECT_NE(out.find("DATABASE_URL"), std::string::npos);
  EXPECT_NE(out.find("X-Device-Id: dev_1"), std::string::npos);
  EXPECT_NE(out.find("g1"), std::string::npos);
}

TEST(LogRedaction, SecretFieldNames) {
  for (const char* k : {"jwt", "deviceJwt", "bootstrap_token", "pin", "pinHash", "PASSWORD",
                        "value", "Authorization", "sessionToken", "client-secret"}) {
    EXPECT_TRUE(is_secret_field_name(k)) << k;
  }
  for (const char* k : {"key", "ping_ms", "spinner", "deviceId", "valueless", "entity"}) {
    EXPECT_FALSE(is_secret_field_name(k)) << k;
  }
}

TEST(LogRedaction, ShortSecretsAreNotRegistered) {
  add_secret("ab");
  EXPECT_EQ(redact("abc"), "abc");
  clear_secrets();
}

// ffmpeg's own words about a camera: the URL's user and password go,
// registered or not; a URL without them, and an e-mail-like word, stay.
TEST(LogRedaction, UrlCredentialsAreScrubbed) {
  EXPECT_EQ(
      redact("rtsp://admin:hunter22@10.0.0.5:554/Streaming/101: Server returned 401 Unauthorized"),
      "rtsp://[redacted]@10.0.0.5:554/Streaming/101: Server returned 401 Unauthorized");
  EXPECT_EQ(redact("\"url\":\"https://u:p@cloud.example/x\""),
            "\"url\":\"https://[redacted]@cloud.example/x\"");
  EXPECT_EQ(redact("rtsp://10.0.0.5/live and ana@example.com"),
            "rtsp://10.0.0.5/live and ana@example.com");
  EXPECT_EQ(redact("a://b/c@d"), "a://b/c@d") << "an @ in the path is not credentials";
}

// Pasted QR codes and rotated tokens: the newest 32 are kept, the list
// stays bounded, and the lasting secrets (env values) stay registered.
TEST(LogRedaction, TransientSecretsAreBoundedAndNeverPushOutLastingOnes) {
  add_secret("env-value-lasting");
  for (int i = 0; i < 10000; ++i) add_transient_secret("bt_pasted_" + std::to_string(i));
  EXPECT_EQ(secret_count(), 33u);
  EXPECT_EQ(redact("env-value-lasting bt_pasted_9999"), "[redacted] [redacted]");
  EXPECT_EQ(redact("bt_pasted_0"), "bt_pasted_0") << "the oldest went";
  clear_secrets();
}

TEST(LogRedaction, LongestSecretReplacedWhole) {
  add_secret("abcd");
  add_secret("abcdefgh");
  EXPECT_EQ(redact("x abcdefgh y"), "x [redacted] y");
  clear_secrets();
}

}  // namespace
}  // namespace secbox::log
