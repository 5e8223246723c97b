// Media end to end with the real secbox: a testsrc camera goes live and shows
// in health.report; the cloud asks for a Frigate snapshot and a stream over
// the tunnel and gets binary frames; Frigate's events reach the cloud as
// frigate_event.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <map>

#include "../media/fake_frigate.hpp"
#include "cloudsim/cloudsim.hpp"
#include "common/ids.hpp"
#include "daemon.hpp"
#include "temp_dir.hpp"
#include "test_database.hpp"
#include "protocol/envelope.hpp"
#include "protocol/shapes.hpp"

namespace secbox {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using secbox::testing::Daemon;
using secbox::testing::FakeFrigate;
using secbox::testing::TempDir;
using secbox::testing::TestDatabase;

TEST(MediaE2E, CameraFrigateProxyAndEventsOverTheTunnel) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  TempDir dir;
  FakeFrigate frigate;
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  frigate.add_event({{"id", "ev-1"},
                     {"camera", "front"},
                     {"label", "car"},
                     {"start_time", now - 10},
                     {"end_time", now - 2},
                     {"data", {{"top_score", 0.91}}}});
  for (const char* d : {"sim", "etc", "etc/cameras", "state"}) ::mkdir(dir.file(d).c_str(), 0700);
  cloudsim::CloudSim sim(
      cloudsim::Options{dir.file("sim"), 0, cloudsim::CertMode::trusted, std::chrono::hours(24)});
  dir.write("etc/secbox.env", "DEVICE_ID=dev_media\nCLOUD_BASE_URL=" + sim.base_url() +
                                  "\nDEVICE_GATEWAY_URL=" + sim.gateway_url() +
                                  "\nCLOUD_CA_FILE=" + sim.ca_file() +
                                  "\nFRIGATE_URL=" + frigate.url() + "\nHEALTH_INTERVAL_S=1\n");
  dir.write("etc/cameras/gate.env", "INPUT=lavfi:testsrc\nSIZE=320x240\nFPS=10\nBITRATE=300k\n");
  dir.write("state/device.jwt", sim.issue_token("dev_media") + "\n");
  Daemon d(dir, {"DATABASE_URL=" + db.url()});
  d.start();
  ASSERT_TRUE(d.wait_for_log("The cloud welcomed the box.", 30s)) << d.log();

  // The camera is live in a health report.
  auto live = sim.wait_for(
      [](const cloudsim::Received& r) {
        if (r.message.value("type", "") != "health.report") return false;
        const auto& media = r.message["payload"]["media"];
        return media.size() == 1 && media[0]["state"] == "live";
      },
      30s);
  ASSERT_TRUE(live) << d.log();
  EXPECT_FALSE(protocol::shapes::check(*protocol::shapes::message("health.report"),
                                       live->message["payload"]));
  EXPECT_EQ(live->message["payload"]["media"][0]["camera"], "gate");

  // Frigate's event came through the queue.
  const std::string client_id = name_uuid("frigate-event:ev-1");
  auto event = sim.wait_for(
      [&](const cloudsim::Received& r) {
        if (r.message.value("type", "") != "events.batch") return false;
        for (const auto& e : r.message["payload"]["events"]) {
          if (e["type"] == "frigate_event" && e["clientId"] == client_id) return true;
        }
        return false;
      },
      30s);
  ASSERT_TRUE(event) << d.log();

  // A snapshot and a stream, as binary frames.
  sim.send_text(
      R"({"v":1,"type":"frigate.snapshot","id":"c-snap","ts":"2026-11-22T10:00:00Z","payload":{"camera":"front"}})");
  auto snap = sim.wait_for([](const cloudsim::Received& r) { return r.is_binary; }, 15s);
  ASSERT_TRUE(snap) << d.log();
  auto decoded = protocol::decode_binary(snap->binary);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded.value().header.type, protocol::BinaryType::frigate_snapshot_result);
  EXPECT_EQ(decoded.value().header.re, "c-snap");
  sim.send_text(
      R"({"v":1,"type":"frigate.stream.start","id":"c-st","ts":"2026-11-22T10:00:00Z","payload":{"camera":"front","fps":10}})");
  ASSERT_TRUE(sim.wait_for_type("frigate.stream.started", 15s)) << d.log();
  auto frames = [&] {
    int n = 0;
    for (const auto& r : sim.received()) {
      if (!r.is_binary) continue;
      auto f = protocol::decode_binary(r.binary);
      n += f && f.value().header.type == protocol::BinaryType::frigate_frame &&
           f.value().header.re == "c-st";
    }
    return n;
  };
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (frames() < 5 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  EXPECT_GE(frames(), 5) << d.log();
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait_exit(5s), 0) << d.log();
}

// 1,000 Frigate events while the box is down (Frigate answers newest first,
// at most `limit` a page, as it does): once the box is back, every one of them
// reaches the cloud as a frigate_event, and none is sent twice.
TEST(MediaE2E, AThousandFrigateEventsWhileTheBoxIsDownAllReachTheCloudOnce) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  TempDir dir;
  FakeFrigate frigate;
  for (const char* d : {"sim", "etc", "state"}) ::mkdir(dir.file(d).c_str(), 0700);
  cloudsim::CloudSim sim(
      cloudsim::Options{dir.file("sim"), 0, cloudsim::CertMode::trusted, std::chrono::hours(24)});
  dir.write("etc/secbox.env", "DEVICE_ID=dev_media\nCLOUD_BASE_URL=" + sim.base_url() +
                                  "\nDEVICE_GATEWAY_URL=" + sim.gateway_url() + "\nCLOUD_CA_FILE=" +
                                  sim.ca_file() + "\nFRIGATE_URL=" + frigate.url() + "\n");
  dir.write("state/device.jwt", sim.issue_token("dev_media") + "\n");
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  // The box ran before and read Frigate up to 40 minutes ago.
  char cursor[64];
  std::snprintf(cursor, sizeof cursor, "{\"after\":%.6f}\n", now - 2400);
  dir.write("state/frigate-events.json", cursor);
  for (int i = 0; i < 1000; ++i) {
    frigate.add_event({{"id", "gap-" + std::to_string(i)},
                       {"camera", i % 2 ? "front" : "gate"},
                       {"label", "person"},
                       {"start_time", now - 2300 + i * 2.0},
                       {"end_time", now - 2299 + i * 2.0},
                       {"data", {{"top_score", 0.8}}}});
  }
  frigate.ignore_sort();  // the hardest case: newest first whatever the box asks
  Daemon d(dir, {"DATABASE_URL=" + db.url()});
  d.start();
  ASSERT_TRUE(d.wait_for_log("The cloud welcomed the box.", 30s)) << d.log();
  auto frigate_events = [&] {
    std::map<std::string, int> seen;
    for (const auto& r : sim.received()) {
      if (r.is_binary || r.message.value("type", "") != "events.batch") continue;
      for (const auto& e : r.message["payload"]["events"]) {
        if (e["type"] == "frigate_event") ++seen[e["clientId"].get<std::string>()];
      }
    }
    return seen;
  };
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (frigate_events().size() < 1000 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  std::this_thread::sleep_for(1500ms);  // a second poll: nothing more comes
  const auto seen = frigate_events();
  EXPECT_EQ(seen.size(), 1000u) << d.log();
  for (int i = 0; i < 1000; ++i) {
    const auto it = seen.find(name_uuid("frigate-event:gap-" + std::to_string(i)));
    ASSERT_NE(it, seen.end()) << "gap-" << i << " never reached the cloud";
    EXPECT_EQ(it->second, 1) << "gap-" << i << " was sent " << it->second << " times";
  }
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait_exit(5s), 0) << d.log();
}

}  // namespace
}  // namespace secbox
