// The control plane, §7.1: health.report after every welcome and every interval.
#include "plane.hpp"

namespace secbox::control {

void ControlPlane::Impl::send_health() {
  if (!welcomed || !router) return;
  auto previous = last_cpu;
  run(
      ops_pool,
      [c = cancel, disks = settings.disk_paths, cmd = settings.container_cmd,
       host = settings.compose.container_host, previous] {
        HostSample h;
        auto before = previous;
        if (!before) {
          before = read_cpu_times();
          std::this_thread::sleep_for(std::chrono::milliseconds(250));
        }
        auto now = read_cpu_times();
        h.cpu = {{"load1", read_load1().value_or(0.0)},
                 {"usagePct", before && now ? cpu_usage_pct(*before, *now) : 0.0}};
        if (now) h.cpu["_busy"] = now->busy, h.cpu["_total"] = now->total;
        auto m = read_memory().value_or(MemoryInfo{});
        h.memory = {{"totalBytes", m.total_bytes}, {"availableBytes", m.available_bytes}};
        h.disk = read_disks(disks);
        auto list = list_containers(c, cmd, host);
        h.containers = list ? container_json(list.value()) : nlohmann::json::array();
        return h;
      },
      [this](HostSample h) {
        if (h.cpu.contains("_busy")) {
          last_cpu =
              CpuTimes{h.cpu["_busy"].get<std::uint64_t>(), h.cpu["_total"].get<std::uint64_t>()};
          h.cpu.erase("_busy");
          h.cpu.erase("_total");
        }
        if (!welcomed || !router) return;
        nlohmann::json report =
            hooks.health_state ? hooks.health_state() : nlohmann::json::object();
        report["cpu"] = std::move(h.cpu);
        report["memory"] = std::move(h.memory);
        report["disk"] = std::move(h.disk);
        report["containers"] = std::move(h.containers);
        router->send("health.report", std::move(report));
      });
}

void ControlPlane::Impl::schedule_health() {
  health_timer.expires_after(settings.health_interval);
  health_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->life.stopping() || !self->welcomed) return;
    self->send_health();
    self->schedule_health();
  });
}

}  // namespace secbox::control
