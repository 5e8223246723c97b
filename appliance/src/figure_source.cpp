#include "figure_source.hpp"

#include <malloc.h>

#include "alarms/camera_alarms.hpp"
#include "common/time.hpp"
#include "appliance/config.hpp"
#include "httpd/server.hpp"
#include "lan_certificate_keeper.hpp"
#include "lan_name_keeper.hpp"
#include "media/frigate_events.hpp"
#include "media/media_service.hpp"
#include "replica/queue.hpp"
#include "replica/reads.hpp"
#include "tunnel/cloud_session.hpp"

namespace secbox::appliance {

FigureSource::FigureSource(BlockingPool& workers, std::string state_dir, std::string version,
                           std::string boot_id)
    : workers_(workers), state_dir_(std::move(state_dir)), version_(std::move(version)),
      boot_id_(std::move(boot_id)), timer_(workers.loop()) {}

void FigureSource::sample_now() { host_ = sample_host(state_dir_); }

void FigureSource::start_sampling() { schedule_sample(std::chrono::seconds(10)); }

void FigureSource::stop() {
  stopped_ = true;
  timer_.cancel();
}

void FigureSource::schedule_sample(std::chrono::milliseconds in) {
  timer_.expires_after(in);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    workers_.run(
        [state = state_dir_] {
          // Memory freed since (a snapshot's rows, a large answer) goes back
          // to the system instead of waiting in malloc's free lists: the
          // box's resident size stays what it holds (docs/queue.md, Memory).
          ::malloc_trim(0);
          return sample_host(state);
        },
        [this](HostSample h) {
          host_ = h;
          if (!stopped_) schedule_sample(std::chrono::seconds(10));
        });
  });
}

std::string FigureSource::metrics() const {
  return render_metrics(gather(), std::chrono::system_clock::now());
}

BoxFigures FigureSource::gather() const {
  BoxFigures f;
  f.version = version_;
  f.boot_id = boot_id_;
  f.uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                              started_at_);
  f.pairing = needs_pairing ? "needs-pairing" : (cloud ? "paired" : "unpaired");
  f.state = needs_pairing ? "needs-pairing" : (running ? "running" : "starting");
  if (cloud) {
    f.has_cloud = true;
    f.tunnel = tunnel::to_string(cloud->tunnel().state());
    f.welcomed = cloud->welcomed();
    f.reconnects = cloud->tunnel().reconnects();
    f.rtt = cloud->tunnel().rtt();
    if (auto t = cloud->token_expires_at()) {
      f.token_expires_at = std::chrono::time_point_cast<std::chrono::system_clock::duration>(*t);
    }
    f.clock_skew_s = cloud->clock_skew_seconds();
  }
  if (parts.queue) f.queue = parts.queue->stats();
  if (parts.reader) f.freshness = parts.reader->freshness();
  if (parts.lan_cert && parts.lan_cert->current())
    f.lan_cert_not_after = parts.lan_cert->current()->not_after;
  if (parts.lan_name && !parts.lan_name->name().empty()) {
    f.lan_name = parts.lan_name->name();
    if (const auto& c = parts.lan_name->certificate(); c && c->name == f.lan_name) {
      f.lan_name_not_after = format_rfc3339(c->not_after);
    }
    f.lan_port = parts.lan_server ? parts.lan_server->port() : parts.lan_port;
    f.lan_addresses = guard_addresses(parts.lan_addresses);
  }
  f.host = host_;
  if (parts.media) {
    f.has_media = true;
    f.cameras = parts.media->cameras();
    f.media_health = parts.media->health();
    f.streams = parts.media->streams();
  }
  if (parts.frigate_events) {
    f.has_frigate = true;
    f.frigate_reachable = parts.frigate_events->reachable();
    if (parts.camera_alarms) f.camera_alarms = parts.camera_alarms->raised();
  }
  return f;
}

}  // namespace secbox::appliance
