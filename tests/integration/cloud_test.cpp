// The real secbox against the cloud simulator: paired by its env file, it
// opens the tunnel, says hello first, and survives a 4401 by rotating.
#include <gtest/gtest.h>

#include "cloudsim/cloudsim.hpp"
#include "daemon.hpp"
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
  Daemon d(dir, {"DATABASE_URL=" + db.url()});
  d.start();
  ASSERT_TRUE(sim->wait_for_type("hello", 30s)) << d.log();
  ASSERT_TRUE(d.wait_for_log("The cloud welcomed the box.", 10s)) << d.log();
  sim->send_text(R"({"v":1,"type":"jwt.rotate","id":"c-3","ts":"2026-11-22T10:00:00Z"})");
  auto ack = sim->wait_for([](const cloudsim::Received& r) { return r.message.value("re", "") == "c-3"; }, 20s);
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

}  // namespace
}  // namespace secbox
