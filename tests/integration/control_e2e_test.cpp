// Cloud control end to end: the real secbox, the cloud simulator over WSS,
// and a fake compose tool. First the outage's replay (cloud-protocol §7.3):
// a compose.snapshot reaches a box whose secbox.env is missing.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <sstream>

#include "cloudsim/cloudsim.hpp"
#include "daemon.hpp"
#include "temp_dir.hpp"
#include "test_database.hpp"
#include "protocol/shapes.hpp"

namespace secbox {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using secbox::testing::Daemon;
using secbox::testing::TempDir;
using secbox::testing::TestDatabase;

class ControlE2E : public ::testing::Test {
 protected:
  TestDatabase db;
  TempDir dir;
  std::unique_ptr<cloudsim::CloudSim> sim;
  int next_id = 0;

  void SetUp() override {
    ASSERT_TRUE(db.ok());
    for (const char* d : {"sim", "etc", "state", "fake"}) ::mkdir(dir.file(d).c_str(), 0700);
    sim = std::make_unique<cloudsim::CloudSim>(
        cloudsim::Options{dir.file("sim"), 0, cloudsim::CertMode::trusted, std::chrono::hours(24)});
    dir.write("state/device.jwt", sim->issue_token("dev_7Q2x") + "\n");
  }

  // The box's own settings come from its environment here, so that
  // secbox.env can be missing, as it was in the outage.
  std::vector<std::string> box_env() const {
    return {"DATABASE_URL=" + db.url(),
            "DEVICE_ID=dev_7Q2x",
            "CLOUD_BASE_URL=" + sim->base_url(),
            "DEVICE_GATEWAY_URL=" + sim->gateway_url(),
            "CLOUD_CA_FILE=" + sim->ca_file(),
            std::string("COMPOSE_CMD=") + FAKE_COMPOSE + " --fake-state=" + dir.file("fake"),
            "COMPOSE_HEALTH_TIMEOUT_S=5",
            "CONTAINER_CMD=/bin/false"};
  }

  void write_legacy(bool with_device_id) {
    std::string gateway = sim->gateway_url();
    gateway = gateway.substr(0, gateway.rfind('/')) + "/mgmt";
    dir.write("etc/mgmt-agent.env",
              std::string("CLOUD_BASE_URL=") + sim->base_url() + "\n" +
                  (with_device_id ? "DEVICE_ID=dev_7Q2x\n" : "") +
                  "BOOTSTRAP=bt_outage_0123456789\nMGMT_GATEWAY_URL=" + gateway + "\n");
  }

  std::optional<cloudsim::Received> request(const std::string& type, const json& payload,
                                            std::chrono::milliseconds limit = 30s) {
    const std::string id = "c-" + std::to_string(++next_id);
    sim->send_text(json{
        {"v", 1}, {"type", type}, {"id", id}, {"ts", "2026-11-22T10:00:00Z"}, {"payload", payload}}
                       .dump());
    return sim->wait_for(
        [id](const cloudsim::Received& r) { return r.message.value("re", "") == id; }, limit);
  }

  std::vector<json> compose_calls() const {
    std::vector<json> out;
    std::istringstream in(TempDir::read(dir.file("fake/calls.jsonl")));
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
    return out;
  }

  static std::string outage_compose() {
    return TempDir::read(std::string(SECBOX_TEST_SOURCE_DIR) +
                         "/tests/golden/outage/docker-compose.yml");
  }
};

TEST_F(ControlE2E, OutageReplayTheBoxDerivesItsEnvFileAndBringsTheStackUp) {
  write_legacy(true);
  Daemon d(dir, box_env());
  d.start();
  ASSERT_TRUE(d.wait_for_log("The cloud welcomed the box.", 30s)) << d.log();
  auto r = request("compose.snapshot", {{"project", "caseta"}, {"yaml", outage_compose()}});
  ASSERT_TRUE(r) << d.log();
  const auto& p = r->message["payload"];
  EXPECT_EQ(r->message["type"], "compose.result");
  EXPECT_EQ(p["ok"], true) << p.dump() << d.log();
  EXPECT_EQ(p["phase"], "done");
  EXPECT_FALSE(protocol::shapes::check(*protocol::shapes::message("compose.result"), p));

  // secbox.env was derived: 0600, the gateway's last segment now "device".
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("etc/secbox.env").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string gateway = sim->gateway_url();
  EXPECT_NE(TempDir::read(dir.file("etc/secbox.env")).find("DEVICE_GATEWAY_URL=" + gateway),
            std::string::npos);

  // The tool rendered the file, listed the containers from before, started
  // the stack and listed it, with the derived env file's values in its
  // environment (never the daemon's own).
  auto calls = compose_calls();
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[0]["argv"][4], "config");
  EXPECT_EQ(calls[1]["argv"][4], "ps");
  EXPECT_EQ(calls[2]["argv"][4], "up");
  EXPECT_EQ(calls[2]["argv"][6], "--force-recreate");
  std::vector<std::string> env = calls[2]["env"];
  EXPECT_NE(std::find(env.begin(), env.end(), "DEVICE_GATEWAY_URL=" + gateway), env.end());
  EXPECT_NE(std::find(env.begin(), env.end(), "DEVICE_ID=dev_7Q2x"), env.end());

  // The outcome is also an event, and every phase is in the log.
  auto event = sim->wait_for(
      [](const cloudsim::Received& m) {
        if (m.message.value("type", "") != "events.batch") return false;
        for (const auto& e : m.message["payload"]["events"]) {
          if (e["type"] == "compose_result") return true;
        }
        return false;
      },
      20s);
  ASSERT_TRUE(event) << d.log();
  for (const char* phase :
       {"\"write\"", "\"env-ensure\"", "\"secbox-env-missing-keys\"", "\"env-unresolved-vars\"",
        "\"compose-up\"", "\"health\"", "\"done\""}) {
    EXPECT_NE(d.log().find(std::string("\"phase\":") + phase), std::string::npos) << phase;
  }
  EXPECT_EQ(d.log().find("bt_outage_0123456789"), std::string::npos)
      << "the bootstrap token reached the log";
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait_exit(5s), 0) << d.log();
}

// The same replay with the compose tool Debian 12 ships (podman-compose
// 1.0.3: no --env-file, no config, no JSON ps), as on a real caseta box.
TEST_F(ControlE2E, OutageReplayWithDebian12sPodmanCompose) {
  write_legacy(true);
  dir.write("fake/behaviour.json", R"({"flavor": "podman-compose-1.0.3"})");
  auto env = box_env();
  env.back() = std::string("CONTAINER_CMD=") + FAKE_COMPOSE + " --fake-state=" + dir.file("fake") +
               " --fake-podman";
  Daemon d(dir, env);
  d.start();
  ASSERT_TRUE(d.wait_for_log("The cloud welcomed the box.", 30s)) << d.log();
  auto r = request("compose.snapshot", {{"project", "caseta"}, {"yaml", outage_compose()}});
  ASSERT_TRUE(r) << d.log();
  const auto& p = r->message["payload"];
  EXPECT_EQ(p["ok"], true) << p.dump() << d.log();
  EXPECT_EQ(p["phase"], "done");
  int podman_ps = 0;
  for (const auto& c : compose_calls()) {
    if (c["tool"] == "podman") ++podman_ps;
  }
  EXPECT_GE(podman_ps, 1);
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait_exit(5s), 0) << d.log();
}

TEST_F(ControlE2E, OutageReplayWithoutDeviceIdInTheLegacyFileStopsBeforeComposeRuns) {
  write_legacy(false);
  Daemon d(dir, box_env());  // the daemon's own environment has DEVICE_ID: it must not count
  d.start();
  ASSERT_TRUE(d.wait_for_log("The cloud welcomed the box.", 30s)) << d.log();
  auto r = request("compose.snapshot", {{"project", "caseta"}, {"yaml", outage_compose()}});
  ASSERT_TRUE(r) << d.log();
  EXPECT_EQ(r->message["payload"]["ok"], false);
  EXPECT_EQ(r->message["payload"]["phase"], "secbox-env-missing-keys") << r->message.dump();
  EXPECT_TRUE(compose_calls().empty()) << "the fake compose ran";
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait_exit(5s), 0) << d.log();
}

TEST_F(ControlE2E, HealthReportNodeControlAndRegisteredCommandsOverTheTunnel) {
  ::mkdir(dir.file("etc/tools").c_str(), 0700);
  dir.write(
      "etc/tools/network.json",
      R"({"commands": {"ping": {"argv": ["/bin/echo", "{host}"], "args": {"host": "^[a-z0-9.-]+$"}}}})");
  dir.write("etc/control.json", R"({"metrics": {"allow": ["get"]},
      "env": {"allow": ["set"], "names": ["FRIGATE_URL", "COMPOSE_HEALTH_TIMEOUT_S"]}})");
  // A second box later in the test: every operation, with stand-in tools.
  dir.write("fake/systemctl",
            TempDir::read(std::string(SECBOX_TEST_SOURCE_DIR) + "/tests/control/fake-systemctl"),
            0755);
  dir.write(
      "fake/podman",
      "#!/bin/sh\necho \"$*\" >> \"$0.calls\"\n"
      "[ \"$1\" = ps ] && echo '[{\"Names\":[\"frigate\"],\"State\":\"running\",\"Status\":\"Up 1 "
      "hour (healthy)\"}]'\n"
      "exit 0\n",
      0755);
  dir.write("etc/secbox.env", "DEVICE_ID=dev_7Q2x\n");
  Daemon d(dir, box_env());
  d.start();
  auto health = sim->wait_for_type("health.report", 30s);
  ASSERT_TRUE(health) << d.log();
  const auto& h = health->message["payload"];
  EXPECT_FALSE(protocol::shapes::check(*protocol::shapes::message("health.report"), h)) << h.dump();
  for (const char* field : {"uptimeS", "version", "bootId", "state", "cpu", "memory", "disk",
                            "containers", "queue", "tunnel", "media", "jwt", "clockSkewS"}) {
    EXPECT_TRUE(h.contains(field)) << field << " missing from " << h.dump();
  }
  EXPECT_EQ(h["state"], "running");
  EXPECT_GT(h["memory"]["totalBytes"].get<std::uint64_t>(), 0u);
  EXPECT_TRUE(h["jwt"].contains("expiresAt"));

  for (const char* kind : {"units.status", "journal.tail", "containers.list"}) {
    json payload = std::string(kind) == "units.status" ? json{{"name", "frigate.service"}}
                   : std::string(kind) == "journal.tail"
                       ? json{{"unit", "secbox.service"}, {"lines", 2}}
                       : json::object();
    auto r = request(kind, payload);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->message["payload"]["code"], "unavailable")
        << kind << ": no section in control.json";
  }
  auto m = request("metrics.get", {{"kinds", {"host", "disk"}}});
  ASSERT_TRUE(m);
  EXPECT_EQ(m->message["type"], "metrics.result") << m->message.dump();
  auto denied = request("units.restart", {{"name", "secbox.service"}});
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->message["payload"]["code"], "unavailable");

  auto set = request("env.set", {{"key", "FRIGATE_URL"}, {"value", "http://127.0.0.1:5999"}});
  ASSERT_TRUE(set);
  EXPECT_EQ(set->message["type"], "ack");
  EXPECT_NE(TempDir::read(dir.file("etc/secbox.env")).find("FRIGATE_URL=http://127.0.0.1:5999"),
            std::string::npos);
  ASSERT_TRUE(d.wait_for_log("Configuration reloaded.", 10s)) << d.log();
  EXPECT_EQ(d.log().find("127.0.0.1:5999"), std::string::npos) << "an env value reached the log";
  // The Frigate clients were built with the old URL: the reply and the log say
  // it waits for a restart, never a silent no-op.
  EXPECT_EQ(set->message["payload"]["appliesAt"], "restart") << set->message.dump();
  ASSERT_TRUE(d.wait_for_log("take effect only at the next restart", 10s)) << d.log();
  EXPECT_NE(d.log().find("FRIGATE_URL", d.log().find("take effect only at the next restart")),
            std::string::npos);
  // Cloud control's own settings apply at once.
  auto live = request("env.set", {{"key", "COMPOSE_HEALTH_TIMEOUT_S"}, {"value", "30"}});
  ASSERT_TRUE(live);
  EXPECT_EQ(live->message["payload"]["appliesAt"], "now") << live->message.dump();

  const std::string id = "c-exec";
  sim->send_text(json{
      {"v", 1},
      {"type", "exec.run"},
      {"id", id},
      {"ts", "2026-11-22T10:00:00Z"},
      {"payload", {{"tool", "network"}, {"command", "ping"}, {"args", {{"host", "gw.local"}}}}}}
                     .dump());
  auto result = sim->wait_for(
      [&](const cloudsim::Received& r) {
        return r.message.value("type", "") == "exec.result" && r.message.value("re", "") == id;
      },
      20s);
  ASSERT_TRUE(result) << d.log();
  EXPECT_EQ(result->message["payload"]["stdout"], "gw.local\n");
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait_exit(5s), 0) << d.log();

  // Node control allowed, over the tunnel, with stand-ins for systemctl, journalctl and podman.
  dir.write("etc/control.json",
            R"({"units": {"allow": ["status", "restart"]}, "journal": {"allow": ["tail"]},
                                    "containers": {"allow": ["list", "restart"]}, "jwt": {"allow": ["rotate"]}})");
  auto env = box_env();
  env.push_back("SYSTEMCTL_CMD=" + dir.file("fake/systemctl"));
  env.push_back("JOURNALCTL_CMD=" + dir.file("fake/systemctl"));
  env.push_back("CONTAINER_CMD=" + dir.file("fake/podman"));
  for (auto& e : env) {
    if (e.rfind("CONTAINER_CMD=/bin/false", 0) == 0) e = "X_UNUSED=1";
  }
  Daemon d2(dir, env);
  d2.start();
  ASSERT_TRUE(d2.wait_for_log("The cloud welcomed the box.", 30s)) << d2.log();
  auto st = request("units.status", {{"name", "frigate.service"}});
  ASSERT_TRUE(st);
  EXPECT_EQ(st->message["type"], "units.result") << st->message.dump();
  EXPECT_EQ(st->message["payload"]["activeState"], "active");
  auto restart = request("units.restart", {{"name", "frigate.service"}});
  ASSERT_TRUE(restart);
  EXPECT_EQ(restart->message["type"], "ack");
  auto journal = request("journal.tail", {{"unit", "secbox.service"}, {"lines", 3}});
  ASSERT_TRUE(journal);
  EXPECT_EQ(journal->message["payload"]["lines"].size(), 3u);
  auto list = request("containers.list", json::object());
  ASSERT_TRUE(list);
  EXPECT_EQ(list->message["payload"]["containers"][0]["name"], "frigate");
  EXPECT_EQ(list->message["payload"]["containers"][0]["health"], "healthy");
  auto crestart = request("containers.restart", {{"name", "frigate"}});
  ASSERT_TRUE(crestart);
  EXPECT_EQ(crestart->message["type"], "ack") << crestart->message.dump();
  EXPECT_NE(TempDir::read(dir.file("fake/podman.calls")).find("restart frigate"),
            std::string::npos);
  auto rotate = request("jwt.rotate", json::object());
  ASSERT_TRUE(rotate);
  EXPECT_EQ(rotate->message["type"], "ack");
  d2.signal(SIGTERM);
  EXPECT_EQ(d2.wait_exit(5s), 0) << d2.log();
}

}  // namespace
}  // namespace secbox
