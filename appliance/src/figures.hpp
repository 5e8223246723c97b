#pragma once
// What the box says about itself, three ways: /metrics (Prometheus text,
// docs/metrics.md), the guard app's status bar (/api/lan/status) and the
// state part of health.report (§7.1). The app gathers a BoxFigures from its
// components on the loop (figures already in memory only); rendering is pure,
// so it is tested with figures made up. What needs a system call (the disk,
// the process's memory and CPU time) is a HostSample taken on a worker.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "media/supervisor.hpp"
#include "replica/queue.hpp"
#include "replica/reads.hpp"

namespace secbox::appliance {

// Sampled on a worker every 10 s: a scrape never waits on a disk.
struct HostSample {
  std::optional<double> disk_free_ratio;  // of the state dir's file system
  double resident_bytes = 0;
  double cpu_seconds = 0;  // user and system
};
// Blocking (statvfs, /proc, getrusage): a worker only.
HostSample sample_host(const std::string& state_dir);

struct BoxFigures {
  std::string version, boot_id;
  std::chrono::seconds uptime{0};
  std::string pairing = "unpaired";  // needs-pairing, paired, unpaired
  std::string state = "starting";    // needs-pairing, running, starting
  bool has_cloud = false;
  std::string tunnel = "down";  // tunnel::to_string of the state
  bool welcomed = false;
  int reconnects = 0;
  std::optional<std::chrono::milliseconds> rtt;
  std::optional<std::chrono::system_clock::time_point> token_expires_at;
  std::optional<double> clock_skew_s;
  replica::QueueStats queue;
  std::map<std::string, replica::Freshness> freshness;
  std::optional<std::string> lan_cert_not_after;  // RFC 3339, the self-signed one's
  // §7.7: the name the cloud gave, the trusted certificate's end (none
  // served: nullopt), the port and addresses guards open it at.
  std::string lan_name;
  std::optional<std::string> lan_name_not_after;
  int lan_port = 8443;
  std::vector<std::string> lan_addresses;
  HostSample host;
  bool has_media = false;
  std::vector<media::CameraStatus> cameras;
  nlohmann::json media_health = nlohmann::json::array();  // MediaService::health()
  nlohmann::json streams = nlohmann::json::array();       // MediaService::streams()
  bool has_frigate = false;
  bool frigate_reachable = false;
  std::uint64_t camera_alarms = 0;
};

std::string render_metrics(const BoxFigures& f, std::chrono::system_clock::time_point now);
nlohmann::json render_status(const BoxFigures& f);
// The LAN name part of the status (§7.7): {name, trusted, notAfter?,
// addresses: the https://<a-b-c-d>.<name>:<port>/ guards open}.
nlohmann::json lan_view(const BoxFigures& f);
// health.report's figures that are the box's own (control adds the host's).
nlohmann::json render_health_state(const BoxFigures& f);

}  // namespace secbox::appliance
