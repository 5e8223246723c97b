#pragma once
// The one owner of what the box says about itself: it gathers BoxFigures
// from the parts the app wired (each may be absent: not made, not paired)
// and keeps the host sample (the state dir's disk, the process's memory and
// CPU time) taken on a worker every 10 s. /metrics, the status bar and
// health.report's state all read it; none gathers figures of its own.
//
// Loop thread only. Owned by the app, which points it at the parts as it
// makes them.
#include <chrono>
#include <string>

#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "common/blocking.hpp"
#include "figures.hpp"

namespace secbox {
namespace tunnel {
class CloudSession;
}
namespace replica {
class OutboundQueue;
class ReplicaReader;
}  // namespace replica
namespace media {
class MediaService;
class FrigateEvents;
}  // namespace media
namespace alarms {
class CameraAlarms;
}
namespace httpd {
class Server;
}
}  // namespace secbox

namespace secbox::appliance {

class LanCertificateKeeper;
class LanNameKeeper;

class FigureSource {
 public:
  FigureSource(BlockingPool& workers, std::string state_dir, std::string version,
               std::string boot_id);

  // What the app points it at as it wires (null: not there).
  struct Parts {
    const replica::OutboundQueue* queue = nullptr;
    const replica::ReplicaReader* reader = nullptr;
    const LanCertificateKeeper* lan_cert = nullptr;
    const LanNameKeeper* lan_name = nullptr;
    const httpd::Server* lan_server = nullptr;
    int lan_port = 8443;        // configured; the server's own once it listens
    std::string lan_addresses;  // LAN_ADDRESSES; empty: the host's, read when asked
    const media::MediaService* media = nullptr;
    const media::FrigateEvents* frigate_events = nullptr;
    const alarms::CameraAlarms* camera_alarms = nullptr;
  };
  Parts parts;
  // The box's life, as the app moves it.
  tunnel::CloudSession* cloud = nullptr;  // replaced by a re-pairing
  bool needs_pairing = false;
  bool running = false;  // the database is ready

  // Blocking, before the loop runs: the first sample. Then every 10 s.
  void sample_now();
  void start_sampling();
  void stop();

  BoxFigures gather() const;
  nlohmann::json health_state() const { return render_health_state(gather()); }
  // What the guard app's status bar and /api/lan/status say.
  nlohmann::json status() const { return render_status(gather()); }
  // Prometheus text for /metrics (docs/metrics.md names each figure).
  std::string metrics() const;

 private:
  void schedule_sample(std::chrono::milliseconds in);

  BlockingPool& workers_;
  const std::string state_dir_, version_, boot_id_;
  const std::chrono::steady_clock::time_point started_at_ = std::chrono::steady_clock::now();
  HostSample host_;
  boost::asio::steady_timer timer_;
  bool stopped_ = false;
};

}  // namespace secbox::appliance
