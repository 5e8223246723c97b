// The box's figures rendered three ways from made-up figures: /metrics names
// each as docs/metrics.md does (with its labels escaped), the status bar and
// health.report say what the components hold; and a host sample is real.
#include "figures.hpp"

#include <gtest/gtest.h>

#include "common/time.hpp"

namespace secbox::appliance {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

BoxFigures busy_box(std::chrono::system_clock::time_point now) {
  BoxFigures f;
  f.version = "1.2.3";
  f.boot_id = "boot-1";
  f.uptime = 3600s;
  f.pairing = "paired";
  f.state = "running";
  f.has_cloud = true;
  f.tunnel = "connected";
  f.welcomed = true;
  f.reconnects = 4;
  f.rtt = 35ms;
  f.token_expires_at = std::chrono::system_clock::time_point(std::chrono::seconds(1800000000));
  f.clock_skew_s = -1.5;
  f.queue = {12, 3400, format_rfc3339(now - 90s)};
  f.freshness["banned_visitor"] = replica::Freshness{42, format_rfc3339(now - 30s), std::nullopt};
  f.lan_cert_not_after = "2027-01-01T00:00:00Z";
  f.host = {0.25, 30e6, 12.5};
  f.has_media = true;
  media::CameraStatus gate;
  gate.id = "gate \"1\"";
  gate.state = media::CameraState::live;
  gate.fps = 15;
  gate.restarts = 2;
  f.cameras.push_back(gate);
  f.streams = json::array({{{"camera", "gate"}}});
  f.media_health = json::array({{{"camera", "gate"}, {"state", "live"}}});
  f.has_frigate = true;
  f.frigate_reachable = true;
  f.camera_alarms = 3;
  return f;
}

TEST(Figures, MetricsNameEveryFigureWithItsValue) {
  const auto now = std::chrono::system_clock::now();
  const std::string m = render_metrics(busy_box(now), now);
  for (const char* line :
       {"secbox_tunnel_up 1\n", "secbox_tunnel_reconnects_total 4\n", "secbox_paired 1\n",
        "secbox_device_token_expiry_timestamp_seconds 1800000000\n",
        "secbox_clock_skew_seconds -1.5\n", "secbox_queue_depth 12\n", "secbox_queue_bytes 3400\n",
        "secbox_replica_cursor{entity=\"banned_visitor\"} 42\n", "secbox_disk_free_ratio 0.25\n",
        "secbox_camera_up{camera=\"gate \\\"1\\\"\"} 1\n",
        "secbox_camera_restarts_total{camera=\"gate \\\"1\\\"\"} 2\n", "secbox_frigate_up 1\n",
        "secbox_camera_alarms_total 3\n", "secbox_process_cpu_seconds_total 12.5\n",
        "secbox_process_resident_memory_bytes 30000000\n"}) {
    EXPECT_NE(m.find(line), std::string::npos) << line << " in\n" << m;
  }
  EXPECT_NE(m.find("secbox_queue_oldest_age_seconds 9"), std::string::npos) << "90 s old";
  EXPECT_NE(m.find("# TYPE secbox_camera_alarms_total counter"), std::string::npos);
}

TEST(Figures, AnUnpairedBoxWithoutCamerasSaysSoAndNoMore) {
  BoxFigures f;
  const std::string m = render_metrics(f, std::chrono::system_clock::now());
  EXPECT_NE(m.find("secbox_tunnel_up 0\n"), std::string::npos);
  EXPECT_NE(m.find("secbox_paired 0\n"), std::string::npos);
  EXPECT_EQ(m.find("secbox_camera_up"), std::string::npos);
  EXPECT_EQ(m.find("secbox_frigate_up"), std::string::npos);
  EXPECT_EQ(m.find("secbox_device_token_expiry"), std::string::npos);
  const json s = render_status(f);
  EXPECT_EQ(s["pairing"], "unpaired");
  EXPECT_EQ(s["tunnel"], "down");
  EXPECT_EQ(s["welcomed"], false);
  EXPECT_TRUE(s["queue"]["oldestAt"].is_null());
  EXPECT_EQ(s["frigate"]["reachable"], false);
}

TEST(Figures, StatusAndHealthSayWhatTheComponentsHold) {
  const auto now = std::chrono::system_clock::now();
  const auto f = busy_box(now);
  const json s = render_status(f);
  EXPECT_EQ(s["pairing"], "paired");
  EXPECT_EQ(s["tunnel"], "connected");
  EXPECT_EQ(s["welcomed"], true);
  EXPECT_EQ(s["queue"]["depth"], 12);
  EXPECT_EQ(s["replica"]["banned_visitor"]["cursor"], 42);
  EXPECT_EQ(s["cameras"], f.streams);
  EXPECT_EQ(s["frigate"]["reachable"], true);
  const json h = render_health_state(f);
  EXPECT_EQ(h["uptimeS"], 3600);
  EXPECT_EQ(h["version"], "1.2.3");
  EXPECT_EQ(h["state"], "running");
  EXPECT_EQ(h["tunnel"]["rttMs"], 35);
  EXPECT_EQ(h["tunnel"]["reconnects"], 4);
  EXPECT_EQ(h["jwt"]["expiresAt"], "2027-01-15T08:00:00Z");
  EXPECT_EQ(h["clockSkewS"], -1.5);
  EXPECT_EQ(h["media"], f.media_health);
}

// §7.7: health.report.lanCert and the status's guard addresses, for private
// IPv4 addresses only, once a trusted certificate is served for the name.
TEST(Figures, TheLanNameGivesHealthItsCertificateAndGuardsTheirAddress) {
  BoxFigures f;
  f.lan_cert_not_after = "2029-01-01T00:00:00Z";
  EXPECT_FALSE(render_health_state(f).contains("lanCert")) << "no name, no lanCert";
  EXPECT_TRUE(render_status(f)["lan"]["name"].is_null());
  f.lan_name = "b7.box.example.com";
  f.lan_port = 8443;
  f.lan_addresses = {"192.168.1.20", "8.8.8.8", "fd00::5"};
  EXPECT_EQ(render_health_state(f)["lanCert"], (json{{"name", "b7.box.example.com"},
                                                     {"notAfter", "2029-01-01T00:00:00Z"},
                                                     {"trusted", false}}));
  EXPECT_EQ(render_status(f)["lan"]["addresses"], json::array())
      << "no trusted certificate yet: no named address";
  f.lan_name_not_after = "2027-03-01T00:00:00Z";
  EXPECT_EQ(render_health_state(f)["lanCert"], (json{{"name", "b7.box.example.com"},
                                                     {"notAfter", "2027-03-01T00:00:00Z"},
                                                     {"trusted", true}}));
  EXPECT_EQ(render_status(f)["lan"]["addresses"],
            json::array({"https://192-168-1-20.b7.box.example.com:8443/"}));
  EXPECT_TRUE(render_status(f)["lan"]["trusted"].get<bool>());
}

TEST(Figures, AHostSampleReadsThisProcess) {
  const auto s = sample_host("/");
  ASSERT_TRUE(s.disk_free_ratio);
  EXPECT_GE(*s.disk_free_ratio, 0.0);
  EXPECT_LE(*s.disk_free_ratio, 1.0);
  EXPECT_GT(s.resident_bytes, 1e6);
  EXPECT_GE(s.cpu_seconds, 0.0);
  EXPECT_FALSE(sample_host("/no/such/dir").disk_free_ratio);
}

}  // namespace
}  // namespace secbox::appliance
