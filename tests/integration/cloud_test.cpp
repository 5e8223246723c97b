// The real secbox against the cloud simulator: paired by its env file, it
// opens the tunnel, says hello first, and survives a 4401 by rotating.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <regex>

#include "cloudsim/cloudsim.hpp"
#include "daemon.hpp"
#include "http_call.hpp"
#include "https_client.hpp"
#include "temp_dir.hpp"
#include "test_database.hpp"

namespace secbox {
namespace {

using namespace std::chrono_literals;
using secbox::testing::Daemon;
using secbox::testing::TempDir;
using secbox::testing::TestDatabase;

class CloudE2E : public ::testing::Test {
 protected:
  TestDatabase db;
  TempDir dir;
  std::unique_ptr<cloudsim::CloudSim> sim;
  std::string token;

  void SetUp() override {
    ASSERT_TRUE(db.ok());
    ::mkdir(dir.file("sim").c_str(), 0700);
    sim = std::make_unique<cloudsim::CloudSim>(
        cloudsim::Options{dir.file("sim"), 0, cloudsim::CertMode::trusted, std::chrono::hours(24)});
    token = sim->issue_token("dev_7Q2x");
    ::mkdir(dir.file("etc").c_str(), 0700);
    ::mkdir(dir.file("state").c_str(), 0700);
    dir.write("etc/secbox.env", "DEVICE_ID=dev_7Q2x\nCLOUD_BASE_URL=" + sim->base_url() +
                                    "\nDEVICE_GATEWAY_URL=" + sim->gateway_url() +
                                    "\nCLOUD_CA_FILE=" + sim->ca_file() + "\n");
    dir.write("state/device.jwt", token + "\n");
  }
};

TEST_F(CloudE2E, ConnectsAndSaysHelloFirst) {
  Daemon d(dir, {"DATABASE_URL=" + db.url()});
  d.start();
  auto hello = sim->wait_for_type("hello", 30s);
  ASSERT_TRUE(hello) << d.log();
  EXPECT_EQ(sim->received().front().message["type"], "hello");
  const auto& p = hello->message["payload"];
  EXPECT_EQ(p["deviceId"], "dev_7Q2x");
  EXPECT_EQ(p["version"], "0.1.0");
  EXPECT_EQ(p["bootId"].get<std::string>().size(), 36u);
  EXPECT_EQ(p["cursors"].size(), 5u);
  EXPECT_EQ(p["cursors"]["banned_visitor"], 0);
  EXPECT_EQ(p["queue"]["depth"], 0);
  EXPECT_TRUE(p["queue"]["oldestAt"].is_null());
  EXPECT_EQ(sim->last_bearer(), token);
  EXPECT_EQ(sim->last_subprotocol(), "secbox.v1");
  ASSERT_TRUE(d.wait_for_log("The cloud welcomed the box.", 10s)) << d.log();
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait_exit(5s), 0) << d.log();
}

TEST_F(CloudE2E, GatewayRejectionWith4401IsRotatedAwayAndTheNewTokenIsOnDiskFirst) {
  // Under 60 s left: the gateway closes with 4401, refresh-jwt still accepts it.
  token = sim->issue_token("dev_7Q2x", 30s);
  dir.write("state/device.jwt", token + "\n");
  Daemon d(dir, {"DATABASE_URL=" + db.url()});
  d.start();
  // The simulator records nothing from a rejected session, so a hello can only
  // come from a session the gateway accepted: one with the new token.
  auto hello = sim->wait_for_type("hello", 30s);
  ASSERT_TRUE(hello) << d.log();
  EXPECT_NE(sim->last_bearer(), token);
  EXPECT_GE(sim->sessions_rejected(), 1);
  EXPECT_EQ(sim->refresh_calls(), 1);
  const std::string fresh = sim->last_bearer();
  auto on_disk = TempDir::read(dir.file("state/device.jwt"));
  EXPECT_EQ(on_disk.substr(0, on_disk.find('\n')), fresh);
  // Neither token reaches the log.
  EXPECT_EQ(d.log().find(token.substr(token.rfind('.'))), std::string::npos);
  EXPECT_EQ(d.log().find(fresh.substr(fresh.rfind('.'))), std::string::npos);
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait_exit(5s), 0) << d.log();
}

TEST_F(CloudE2E, JwtRotateRequestIsAcknowledgedOnceTheTokenIsOnDisk) {
  dir.write("etc/control.json", R"({"jwt": {"allow": ["rotate"]}})");  // §7.5: node control
  Daemon d(dir, {"DATABASE_URL=" + db.url()});
  d.start();
  ASSERT_TRUE(sim->wait_for_type("hello", 30s)) << d.log();
  ASSERT_TRUE(d.wait_for_log("The cloud welcomed the box.", 10s)) << d.log();
  sim->send_text(R"({"v":1,"type":"jwt.rotate","id":"c-3","ts":"2026-11-22T10:00:00Z"})");
  auto ack = sim->wait_for(
      [](const cloudsim::Received& r) { return r.message.value("re", "") == "c-3"; }, 20s);
  ASSERT_TRUE(ack) << d.log();
  EXPECT_EQ(ack->message["type"], "ack");
  EXPECT_NE(TempDir::read(dir.file("state/device.jwt")).substr(0, token.size()), token);
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait_exit(5s), 0) << d.log();
}

TEST_F(CloudE2E, RevokedTokenPutsTheBoxInNeedsPairingWithoutTheBootstrap) {
  Daemon d(dir, {"DATABASE_URL=" + db.url()});
  d.start();
  ASSERT_TRUE(sim->wait_for_type("hello", 30s)) << d.log();
  sim->send_text(R"({"v":1,"type":"jwt.rotate","id":"c-4","ts":"2026-11-22T10:00:00Z"})");
  sim->revoke(token);  // may race the rotation; then the 4401 below does it
  sim->close_device(4401, "revoked");
  ASSERT_TRUE(d.wait_for_log("needs pairing", 20s)) << d.log();
  const int opened = sim->sessions_opened();
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(sim->sessions_opened(), opened);  // stays disconnected
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait_exit(5s), 0) << d.log();
}

// The pairing form's port, from the box's log (PAIRING_PORT=0: any free port).
int pairing_port(const Daemon& d) {
  static const std::regex kPort(R"(Pairing form ready\.","port":(\d+))");
  std::smatch m;
  const std::string log = d.log();
  return std::regex_search(log, m, kPort) ? std::stoi(m[1]) : 0;
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_mode & 0777 : 0;
}

TEST_F(CloudE2E, PairedThroughTheFormTheTunnelComesUpWithoutARestartAndComesBackOnNeedsPairing) {
  // A fresh box: no device, no token; only the private cloud's CA is known.
  dir.write("etc/secbox.env", "CLOUD_CA_FILE=" + sim->ca_file() + "\n");
  // Installed for the simulator's cloud (install.sh --cloud).
  dir.write("etc/cloud", "# The one cloud this box pairs with.\n" + sim->base_url() + "\n");
  ::unlink(dir.file("state/device.jwt").c_str());
  const std::string bootstrap = "bt_first_boot_0123456789";
  sim->add_bootstrap("dev_new", bootstrap);
  Daemon d(dir, {"DATABASE_URL=" + db.url()});
  d.start();
  ASSERT_TRUE(d.wait_for_log("Pairing form ready.", 30s)) << d.log();
  const int port = pairing_port(d);
  ASSERT_GT(port, 0) << d.log();
  auto form = secbox::testing::http_call(port, "GET", "/");
  EXPECT_EQ(form.status, 200);
  const std::string qr = R"({"v":1,"cloudBaseUrl":")" + sim->base_url() +
                         R"(","deviceId":"dev_new","bootstrapToken":")" + bootstrap +
                         R"(","gatewayUrl":")" + sim->gateway_url() + R"(","communityId":"com_1"})";
  // The hijack: another cloud in the QR, or a post from another site.
  std::string foreign = qr;
  foreign.replace(foreign.find(sim->base_url()), sim->base_url().size(), "https://evil.example");
  auto refused = secbox::testing::http_call(port, "POST", "/pair", foreign, "application/json");
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_NE(refused.body.find("foreign_cloud"), std::string::npos);
  refused = secbox::testing::http_call(port, "POST", "/pair", qr, "application/json",
                                       {{"Origin", "http://evil.example"}});
  EXPECT_EQ(refused.status, 403) << refused.body;
  refused = secbox::testing::http_call(port, "POST", "/pair", qr, "application/json",
                                       {{"Host", "evil.example"}});
  EXPECT_EQ(refused.status, 421) << refused.body;
  EXPECT_TRUE(sim->last_claim().is_null());

  auto paired = secbox::testing::http_call(port, "POST", "/pair", qr, "application/json");
  ASSERT_EQ(paired.status, 200) << paired.body << d.log();

  auto hello = sim->wait_for_type("hello", 30s);
  ASSERT_TRUE(hello) << d.log();
  EXPECT_EQ(hello->message["payload"]["deviceId"], "dev_new");
  const auto env = TempDir::read(dir.file("etc/secbox.env"));
  EXPECT_NE(env.find("DEVICE_ID=dev_new"), std::string::npos);
  EXPECT_NE(env.find("CLOUD_BASE_URL=" + sim->base_url()), std::string::npos);
  EXPECT_NE(env.find("DEVICE_GATEWAY_URL=" + sim->gateway_url()), std::string::npos);
  EXPECT_NE(env.find("CLOUD_CA_FILE=" + sim->ca_file()), std::string::npos);  // kept
  EXPECT_EQ(env.find(bootstrap), std::string::npos);
  EXPECT_EQ(mode_of(dir.file("etc/secbox.env")), 0600u);
  EXPECT_EQ(mode_of(dir.file("state/device.jwt")), 0600u);
  const std::string first_token = sim->last_bearer();
  EXPECT_EQ(secbox::testing::http_call(port, "GET", "/").status, 410);
  EXPECT_EQ(d.log().find(bootstrap), std::string::npos);
  EXPECT_EQ(d.log().find(first_token.substr(first_token.rfind('.'))), std::string::npos);

  // The cloud revokes the token: needs-pairing, and the form is back.
  sim->revoke(first_token);
  sim->close_device(4401, "revoked");
  ASSERT_TRUE(d.wait_for_log("needs pairing", 20s)) << d.log();
  form = secbox::testing::http_call(port, "GET", "/");
  EXPECT_EQ(form.status, 200);
  EXPECT_NE(form.body.find("must be paired again"), std::string::npos);

  // Paired again with a new QR: a new session, with the new token.
  const std::string again = "bt_second_time_0123456789";
  sim->add_bootstrap("dev_new", again);
  sim->clear_received();
  std::string qr2 = qr;
  qr2.replace(qr2.find(bootstrap), bootstrap.size(), again);
  paired = secbox::testing::http_call(port, "POST", "/pair", qr2, "application/json");
  ASSERT_EQ(paired.status, 200) << paired.body << d.log();
  ASSERT_TRUE(sim->wait_for_type("hello", 30s)) << d.log();
  EXPECT_NE(sim->last_bearer(), first_token);
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait_exit(5s), 0) << d.log();
}

TEST_F(CloudE2E, TheLanServerAnswersHealthAndMetricsThatPromtoolAccepts) {
  Daemon d(dir, {"DATABASE_URL=" + db.url()});
  d.start();
  ASSERT_TRUE(d.wait_for_log("The cloud welcomed the box.", 30s)) << d.log();
  static const std::regex kPort(R"(LAN server ready\.","port":(\d+))");
  std::smatch m;
  const std::string log = d.log();
  ASSERT_TRUE(std::regex_search(log, m, kPort)) << log;
  const int port = std::stoi(m[1]);
  secbox::testing::HttpsClient c(port);
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.call("GET", "/healthz").status, 200);
  EXPECT_EQ(c.call("GET", "/api/lan/status").status, 401);
  auto metrics = c.call("GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  for (const char* name :
       {"secbox_tunnel_up 1", "secbox_paired 1", "secbox_queue_depth 0",
        "secbox_device_token_expiry_timestamp_seconds ",
        "secbox_lan_certificate_expiry_timestamp_seconds ",
        "secbox_replica_cursor{entity=\"banned_visitor\"} 0", "secbox_disk_free_ratio ",
        "secbox_process_resident_memory_bytes ",
        "secbox_http_requests_total{route=\"/api/lan/status\",status=\"401\"} 1"}) {
    EXPECT_NE(metrics.body.find(name), std::string::npos) << name << "\n" << metrics.body;
  }
  EXPECT_EQ(metrics.body.find(token.substr(token.rfind('.'))), std::string::npos);
  // Prometheus's own linter, when installed (scripts/install-deps --test installs it).
  if (::access("/usr/bin/promtool", X_OK) == 0) {
    const std::string file = dir.write("metrics.txt", metrics.body);
    EXPECT_EQ(std::system(("/usr/bin/promtool check metrics < " + file + " > " +
                           dir.file("promtool.out") + " 2>&1")
                              .c_str()),
              0)
        << TempDir::read(dir.file("promtool.out"));
  }
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait_exit(5s), 0) << d.log();
}

}  // namespace
}  // namespace secbox
