#include "figures.hpp"

#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdio>

#include "common/prometheus.hpp"
#include "common/time.hpp"
#include "lan/named_certificate.hpp"

namespace secbox::appliance {

HostSample sample_host(const std::string& state_dir) {
  HostSample out;
  struct statvfs fs {};
  if (::statvfs(state_dir.c_str(), &fs) == 0 && fs.f_blocks > 0) {
    out.disk_free_ratio = static_cast<double>(fs.f_bavail) / static_cast<double>(fs.f_blocks);
  }
  long rss_pages = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    long size = 0;
    if (std::fscanf(f, "%ld %ld", &size, &rss_pages) != 2) rss_pages = 0;
    std::fclose(f);
  }
  out.resident_bytes =
      static_cast<double>(rss_pages) * static_cast<double>(::sysconf(_SC_PAGESIZE));
  rusage ru{};
  if (::getrusage(RUSAGE_SELF, &ru) == 0) {
    out.cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                      static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }
  return out;
}

std::string render_metrics(const BoxFigures& f, std::chrono::system_clock::time_point now) {
  PrometheusText out;
  auto age_of = [&](const std::optional<std::string>& at) -> std::optional<double> {
    if (!at) return std::nullopt;
    auto t = parse_rfc3339(*at);
    if (!t) return std::nullopt;
    return std::chrono::duration<double>(now - *t).count();
  };
  auto unix_time = [](std::chrono::system_clock::time_point t) {
    return std::chrono::duration<double>(t.time_since_epoch()).count();
  };
  const bool connected = f.has_cloud && f.tunnel == "connected" && f.welcomed;
  out.gauge("secbox_tunnel_up", "1 while the tunnel to the cloud is open and welcomed.",
            connected ? 1.0 : 0.0);
  out.counter("secbox_tunnel_reconnects_total",
              "Reconnections of the tunnel since the box started.",
              static_cast<double>(f.reconnects));
  out.gauge("secbox_paired", "1 while the box is paired and the cloud accepts its token.",
            f.pairing == "paired" ? 1.0 : 0.0);
  if (f.token_expires_at) {
    out.gauge("secbox_device_token_expiry_timestamp_seconds",
              "When the device token expires (Unix time).", unix_time(*f.token_expires_at));
  }
  if (f.clock_skew_s) {
    out.gauge("secbox_clock_skew_seconds",
              "The box's clock minus the cloud's, at the last welcome.", *f.clock_skew_s);
  }
  out.gauge("secbox_queue_depth", "Events waiting for the cloud's acknowledgement.",
            static_cast<double>(f.queue.depth));
  out.gauge("secbox_queue_bytes", "Serialized size of the waiting events.",
            static_cast<double>(f.queue.bytes));
  out.gauge("secbox_queue_oldest_age_seconds", "Age of the oldest waiting event (0 when none).",
            age_of(f.queue.oldest_at).value_or(0.0));
  std::vector<PrometheusText::Sample> cursors, ages;
  for (const auto& [entity, fr] : f.freshness) {
    const auto l = PrometheusText::labels({{"entity", entity}});
    cursors.emplace_back(l, static_cast<double>(fr.cursor));
    if (auto a = age_of(fr.last_applied_at)) ages.emplace_back(l, *a);
  }
  out.family("secbox_replica_cursor", "The replica's version of each entity.", "gauge", cursors);
  out.family("secbox_replica_age_seconds",
             "Time since the cloud last changed each entity on the box.", "gauge", ages);
  if (f.lan_cert_not_after) {
    if (auto t = parse_rfc3339(*f.lan_cert_not_after)) {
      out.gauge("secbox_lan_certificate_expiry_timestamp_seconds",
                "When the LAN certificate expires (Unix time).", unix_time(*t));
    }
  }
  if (f.host.disk_free_ratio) {
    out.gauge("secbox_disk_free_ratio", "Free share of the state dir's file system (0 to 1).",
              *f.host.disk_free_ratio);
  }
  if (f.has_media) {
    std::vector<PrometheusText::Sample> up, failed, fps, age, restarts;
    for (const auto& c : f.cameras) {
      const auto l = PrometheusText::labels({{"camera", c.id}});
      up.emplace_back(l, c.state == media::CameraState::live ? 1.0 : 0.0);
      failed.emplace_back(
          l, c.state == media::CameraState::failed || c.state == media::CameraState::unauthorized
                 ? 1.0
                 : 0.0);
      restarts.emplace_back(l, static_cast<double>(c.restarts));
      if (c.fps) fps.emplace_back(l, *c.fps);
      if (c.last_segment_at)
        age.emplace_back(l, std::chrono::duration<double>(now - *c.last_segment_at).count());
    }
    out.family("secbox_camera_up", "1 while the camera's HLS stream is live.", "gauge", up);
    out.family("secbox_camera_failed",
               "1 when the camera's ffmpeg failed too often within an hour.", "gauge", failed);
    out.family("secbox_camera_restarts_total",
               "ffmpeg restarts of the camera since the box started.", "counter", restarts);
    out.family("secbox_camera_fps", "Frames per second ffmpeg reports for the camera.", "gauge",
               fps);
    out.family("secbox_camera_last_segment_age_seconds",
               "Time since the camera's newest HLS segment.", "gauge", age);
  }
  if (f.has_frigate) {
    out.gauge("secbox_frigate_up", "1 while Frigate's events API answers.",
              f.frigate_reachable ? 1.0 : 0.0);
    out.counter("secbox_camera_alarms_total", "Camera ban alarms raised since the start.",
                static_cast<double>(f.camera_alarms));
  }
  out.counter("secbox_process_cpu_seconds_total", "CPU time of the daemon (user and system).",
              f.host.cpu_seconds);
  if (f.host.resident_bytes > 0) {
    out.gauge("secbox_process_resident_memory_bytes", "Resident memory of the daemon.",
              f.host.resident_bytes);
  }
  return out.take();
}

nlohmann::json lan_view(const BoxFigures& f) {
  nlohmann::json lan{{"name", f.lan_name.empty() ? nlohmann::json() : nlohmann::json(f.lan_name)},
                     {"trusted", f.lan_name_not_after.has_value()},
                     {"addresses", nlohmann::json::array()}};
  if (f.lan_name_not_after) {
    lan["notAfter"] = *f.lan_name_not_after;
    for (const auto& a : f.lan_addresses) {
      const auto address = lan::guard_address(f.lan_name, a, f.lan_port);
      if (!address.empty()) lan["addresses"].push_back(address);
    }
  }
  return lan;
}

nlohmann::json render_status(const BoxFigures& f) {
  nlohmann::json s;
  s["pairing"] = f.pairing;
  s["tunnel"] = f.has_cloud ? f.tunnel : "down";
  s["welcomed"] = f.has_cloud && f.welcomed;
  if (f.clock_skew_s) s["clockSkewSeconds"] = *f.clock_skew_s;
  s["queue"] = {{"depth", f.queue.depth},
                {"bytes", f.queue.bytes},
                {"oldestAt", f.queue.oldest_at ? nlohmann::json(*f.queue.oldest_at) : nullptr}};
  nlohmann::json fresh = nlohmann::json::object();
  for (const auto& [entity, fr] : f.freshness) {
    fresh[entity] = {
        {"cursor", fr.cursor},
        {"lastAppliedAt", fr.last_applied_at ? nlohmann::json(*fr.last_applied_at) : nullptr}};
  }
  s["replica"] = fresh;
  s["cameras"] = f.streams;
  s["frigate"] = {{"reachable", f.has_frigate && f.frigate_reachable}};
  s["lan"] = lan_view(f);
  return s;
}

nlohmann::json render_health_state(const BoxFigures& f) {
  nlohmann::json h;
  h["uptimeS"] = f.uptime.count();
  h["version"] = f.version;
  h["bootId"] = f.boot_id;
  h["state"] = f.state;
  h["queue"] = {{"depth", f.queue.depth}};
  if (f.queue.oldest_at) h["queue"]["oldestAt"] = *f.queue.oldest_at;
  h["tunnel"] = {{"reconnects", f.reconnects}};
  if (f.rtt) h["tunnel"]["rttMs"] = f.rtt->count();
  h["media"] = f.media_health;
  h["jwt"] = nlohmann::json::object();
  if (f.token_expires_at) h["jwt"]["expiresAt"] = format_rfc3339(*f.token_expires_at);
  if (f.clock_skew_s) h["clockSkewS"] = *f.clock_skew_s;
  if (!f.lan_name.empty()) {
    const auto not_after = f.lan_name_not_after ? f.lan_name_not_after : f.lan_cert_not_after;
    h["lanCert"] = {
        {"name", f.lan_name},
        {"notAfter", not_after ? nlohmann::json(*not_after)
                               : nlohmann::json(format_rfc3339(std::chrono::system_clock::now()))},
        {"trusted", f.lan_name_not_after.has_value()}};
  }
  return h;
}

}  // namespace secbox::appliance
