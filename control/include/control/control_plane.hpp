#pragma once
// What the cloud drives on the box over the tunnel (cloud-protocol §7.1,
// §7.3–§7.5): guarded compose restarts, registered commands, node control
// under control.json, and the health report after every welcome and every
// 60 s. Every blocking step (files, child processes, /proc) runs on the
// plane's own worker threads and comes back to the loop; a stop kills the
// children it started (their process groups) and waits for them.
//
// Loop thread only. It registers its request types on the router when made
// (jwt.rotate among them: node control decides whether the cloud may ask),
// reports health in every session, and stops reporting when it ends. The
// router outlives it.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/component.hpp"
#include "control/compose.hpp"
#include "control/permissions.hpp"

namespace boost::asio {
class io_context;
}
namespace secbox::protocol {
class Router;
}
namespace secbox::replica {
class EventSink;
}

namespace secbox::control {

struct ControlSettings {
  ComposeSettings compose;
  std::string tools_dir;         // /etc/secbox/tools
  std::string permissions_file;  // /etc/secbox/control.json
  std::vector<std::string> container_cmd{"podman"};
  std::vector<std::string> systemctl{"systemctl"};
  std::vector<std::string> journalctl{"journalctl"};
  std::vector<std::string> disk_paths{"/"};
  std::vector<std::string> interfaces;  // empty: every interface but lo
  std::chrono::milliseconds health_interval{60000};
  std::size_t max_jobs = 4;
  std::chrono::milliseconds job_retention{300000};
  std::size_t journal_max_lines = 1000;
  // The daemon's own settings: env.set/env.unset touches one only when
  // control.json's env section names it (a names list that holds it);
  // without names, env.set is for the stack's variables alone.
  std::function<bool(const std::string&)> is_daemon_setting;
};

struct ControlHooks {
  // The appliance's part of health.report: uptimeS, version, bootId, state,
  // queue, tunnel, media, jwt, clockSkewS.
  std::function<nlohmann::json()> health_state;
  // Rotates the device token (jwt.rotate): ok, Errc::unavailable (retry
  // later) or Errc::forbidden (the box needs pairing).
  std::function<void(std::function<void(Result<void>)>)> rotate_jwt;
  // secbox.env changed through env.set/env.unset: the appliance re-reads
  // it, applies what it can, and calls back with the keys that changed but
  // take effect only at the next restart.
  std::function<void(std::function<void(std::vector<std::string>)>)> env_changed;
};

class ControlPlane final : public Component {
 public:
  // Compose outcomes go to `events` as compose_result (§7.3).
  ControlPlane(boost::asio::io_context& loop, protocol::Router& router, replica::EventSink& events,
               ControlSettings settings, ControlHooks hooks);
  ~ControlPlane() override;

  std::string_view name() const override { return "control"; }
  void start() override;
  void stop(std::function<void()> on_stopped) override;

  void reload();  // SIGHUP: control.json and the tools again
  // New settings (SIGHUP, env.set): every later operation uses them; one
  // under way finishes with the settings it started with. Loop thread.
  void reconfigure(ControlSettings settings);

  std::size_t tool_count() const;
  bool permissions_loaded() const;
  // control.json's verdict on an operation another component serves
  // (update.apply); loop thread.
  Result<void> permission(std::string_view section, std::string_view operation) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace secbox::control
