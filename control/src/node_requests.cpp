// The control plane, §7.5: node control under control.json.
#include "plane.hpp"

namespace secbox::control {

void ControlPlane::Impl::metrics_get(const Envelope& req, Reply reply) {
  if (!permitted(reply, "metrics", "get")) return;
  std::set<std::string> kinds{"host", "cpu", "memory", "disk", "network"};
  if (req.payload.contains("kinds") && req.payload["kinds"].is_array()) {
    kinds.clear();
    for (const auto& k : req.payload["kinds"]) kinds.insert(k.get<std::string>());
  }
  auto id = hold(std::move(reply));
  auto s = settings;
  run(
      ops_pool,
      [s, kinds] {
        nlohmann::json out = nlohmann::json::object();
        if (kinds.count("host"))
          out["host"] = {{"hostname", host_name()}, {"uptimeS", read_uptime_s().value_or(0)}};
        if (kinds.count("cpu")) {
          auto a = read_cpu_times();
          std::this_thread::sleep_for(std::chrono::milliseconds(250));
          auto b = read_cpu_times();
          out["cpu"] = {{"load1", read_load1().value_or(0.0)},
                        {"usagePct", a && b ? cpu_usage_pct(*a, *b) : 0.0}};
        }
        if (kinds.count("memory")) {
          auto m = read_memory().value_or(MemoryInfo{});
          out["memory"] = {{"totalBytes", m.total_bytes}, {"availableBytes", m.available_bytes}};
        }
        if (kinds.count("disk")) out["disk"] = read_disks(s.disk_paths);
        if (kinds.count("network")) out["network"] = read_network(s.interfaces);
        return out;
      },
      [this, id](nlohmann::json out) {
        if (auto r = take(id)) r->send("metrics.result", std::move(out));
      });
}

Result<std::vector<ContainerInfo>> ControlPlane::Impl::list_containers(
    const std::shared_ptr<Cancellation>& cancel, const std::vector<std::string>& container_cmd,
    const std::string& container_host) {
  const std::string tool = container_cmd.empty() ? std::string() : container_cmd.front();
  if (find_program(tool).empty()) {
    return Error{Errc::spawn, "no container runtime is installed here: \"" + tool +
                                  "\" (CONTAINER_CMD) is not on PATH; install.sh installs podman"};
  }
  auto r = run_tool(cancel, with(container_cmd, {"ps", "-a", "--format", "json"}),
                    std::chrono::seconds(20), 4 * 1024 * 1024, container_host);
  if (!r) return r.error();
  if (!r.value().succeeded())
    return Error{Errc::spawn, "the container tool failed: " + r.value().describe()};
  return parse_ps_output(r.value().out);
}

void ControlPlane::Impl::containers_list(const Envelope&, Reply reply) {
  if (!permitted(reply, "containers", "list")) return;
  auto id = hold(std::move(reply));
  run(
      ops_pool,
      [c = cancel, cmd = settings.container_cmd, host = settings.compose.container_host] {
        return list_containers(c, cmd, host);
      },
      [this, id](Result<std::vector<ContainerInfo>> list) {
        auto r = take(id);
        if (!r) return;
        if (!list)
          return r->error(protocol::ErrorCode::unavailable, valid_utf8(list.error().message));
        r->send("containers.result", {{"containers", container_json(list.value())}});
      });
}

void ControlPlane::Impl::containers_restart(const Envelope& req, Reply reply) {
  const std::string name = req.payload["name"];
  if (!permitted(reply, "containers", "restart", name)) return;
  if (compose_busy)
    return reply.error(protocol::ErrorCode::busy,
                       "a compose operation is running; try again when it ends");
  compose_busy = true;
  auto id = hold(std::move(reply));
  run(
      compose_pool,
      [c = cancel, cmd = settings.container_cmd, compose = settings.compose,
       name]() -> Result<void> {
        auto list = list_containers(c, cmd, compose.container_host);
        if (!list) return Error{Errc::unavailable, list.error().message};
        auto it = std::find_if(list.value().begin(), list.value().end(),
                               [&](const ContainerInfo& c) { return c.name == name; });
        if (it == list.value().end())
          return Error{Errc::not_found, "no container is called " + name.substr(0, 128)};
        // A container of a project the box manages goes through the §7.3 guards.
        if (!it->project.empty() && validate_project_name(it->project) &&
            ::access(project_file(compose, it->project).c_str(), F_OK) == 0) {
          if (auto g = guard_project(compose, it->project); !g) {
            return Error{Errc::unavailable, g.error().message};
          }
        }
        auto r = run_tool(c, with(cmd, {"restart", name}), std::chrono::seconds(120), kMaxOutput,
                          compose.container_host);
        if (!r) return Error{Errc::internal, r.error().message};
        if (!r.value().succeeded())
          return Error{Errc::internal, "restart failed: " + r.value().describe()};
        return ok();
      },
      [this, id, name](Result<void> done) {
        compose_busy = false;
        log.write(
            done ? log::Level::info : log::Level::warn,
            done ? "Restarted a container." : "A container restart was refused or failed.",
            {{"container", name.substr(0, 128)}, {"reason", done ? "" : done.error().message}});
        auto r = take(id);
        if (!r) return;
        if (!done) return r->error(Error{done.error().code, valid_utf8(done.error().message)});
        r->send("ack");
      });
}

void ControlPlane::Impl::units_status(const Envelope& req, Reply reply) {
  const std::string name = req.payload["name"];
  if (!is_unit_name(name))
    return reply.error(protocol::ErrorCode::invalid_args, "name is not a systemd unit name");
  if (!permitted(reply, "units", "status", name)) return;
  auto id = hold(std::move(reply));
  auto argv = with(settings.systemctl,
                   {"show", "--no-pager",
                    "--property=Id,LoadState,ActiveState,SubState,Description,ActiveEnterTimestamp",
                    "--", name});
  run_child(
      tool(cancel, argv, std::chrono::seconds(15)), [this, id, name](Result<ProcessResult> p) {
        auto r = take(id);
        if (!r) return;
        if (!p || !p.value().succeeded()) {
          return r->error(
              protocol::ErrorCode::unavailable,
              "systemctl show failed: " + valid_utf8(p ? p.value().describe() : p.error().message));
        }
        std::map<std::string, std::string> props;
        std::istringstream in(p.value().out);
        for (std::string line; std::getline(in, line);) {
          auto eq = line.find('=');
          if (eq != std::string::npos) props[line.substr(0, eq)] = valid_utf8(line.substr(eq + 1));
        }
        nlohmann::json out{{"name", name},
                           {"loadState", props["LoadState"]},
                           {"activeState", props["ActiveState"]},
                           {"subState", props["SubState"]},
                           {"description", props["Description"]}};
        if (!props["ActiveEnterTimestamp"].empty()) out["since"] = props["ActiveEnterTimestamp"];
        r->send("units.result", std::move(out));
      });
}

void ControlPlane::Impl::units_restart(const Envelope& req, Reply reply) {
  const std::string name = req.payload["name"];
  if (!is_unit_name(name))
    return reply.error(protocol::ErrorCode::invalid_args, "name is not a systemd unit name");
  if (!permitted(reply, "units", "restart", name)) return;
  auto id = hold(std::move(reply));
  auto argv = with(settings.systemctl, {"restart", "--", name});
  log.info("Restarting a unit.", {{"unit", name}});
  run_child(tool(cancel, argv, std::chrono::seconds(90)), [this, id](Result<ProcessResult> p) {
    auto r = take(id);
    if (!r) return;
    if (!p || !p.value().succeeded()) {
      return r->error(
          protocol::ErrorCode::internal,
          "systemctl restart failed: " + valid_utf8(p ? p.value().describe() : p.error().message));
    }
    r->send("ack");
  });
}

void ControlPlane::Impl::journal_tail(const Envelope& req, Reply reply) {
  const std::string unit = req.payload["unit"];
  if (!is_unit_name(unit))
    return reply.error(protocol::ErrorCode::invalid_args, "unit is not a systemd unit name");
  if (!permitted(reply, "journal", "tail", unit)) return;
  std::size_t asked = req.payload.value("lines", 100);
  std::size_t lines = std::min(asked, settings.journal_max_lines);
  auto id = hold(std::move(reply));
  auto argv = with(settings.journalctl,
                   {"-u", unit, "-n", std::to_string(lines), "--no-pager", "-o", "short-iso"});
  run_child(tool(cancel, argv, std::chrono::seconds(20), 512 * 1024),
            [this, id, unit, asked, lines](Result<ProcessResult> p) {
              auto r = take(id);
              if (!r) return;
              if (!p || !p.value().succeeded()) {
                return r->error(protocol::ErrorCode::unavailable,
                                "journalctl failed: " +
                                    valid_utf8(p ? p.value().describe() : p.error().message));
              }
              auto out = nlohmann::json::array();
              std::istringstream in(p.value().out);
              for (std::string line; std::getline(in, line);) out.push_back(valid_utf8(line));
              r->send("journal.result",
                      {{"unit", unit}, {"lines", std::move(out)}, {"truncated", asked > lines}});
            });
}

void ControlPlane::Impl::env_change(const Envelope& req, Reply reply, bool set) {
  const std::string key = req.payload["key"];
  if (!permitted(reply, "env", set ? "set" : "unset", key)) return;
  // A daemon setting (COMPOSE_CMD, LAN_WEB_DIR, SECBOX_PG_BIN_DIR …) would
  // let the cloud choose what the box runs or serves: only by name.
  if (settings.is_daemon_setting && settings.is_daemon_setting(key) &&
      !permissions.names_explicitly("env", key)) {
    log.info(
        "Refused a node-control request.",
        {{"operation", set ? "env.set" : "env.unset"}, {"verdict", "forbidden"}, {"key", key}});
    return reply.error(protocol::ErrorCode::forbidden,
                       key +
                           " is one of the box's own settings; control.json's env.names must "
                           "name it before the cloud may change it");
  }
  std::optional<std::string> value;
  if (set) value = req.payload["value"].get<std::string>();
  auto id = hold(std::move(reply));
  const auto path = settings.compose.env_file;
  std::optional<FileOwner> owner;
  if (settings.compose.run_as && ::geteuid() == 0)
    owner = FileOwner{settings.compose.run_as->uid, settings.compose.run_as->gid};
  run(
      ops_pool,
      [path, key, value, owner]() -> Result<void> {
        auto env = envfile::load(path);
        if (!env && env.error().code != Errc::not_found)
          return Error{Errc::internal, env.error().message};
        envfile::EnvFile file = env ? std::move(env).value() : envfile::EnvFile();
        if (value) {
          if (auto v = envfile::validate_value(key, *value); !v)
            return Error{Errc::invalid, v.error().message};
          file.set(key, *value);
        } else if (!file.unset(key)) {
          return ok();  // already absent
        }
        if (auto saved = envfile::save(path, file, owner); !saved)
          return Error{Errc::internal, saved.error().message};
        return ok();
      },
      [this, id, key, set](Result<void> done) {
        // The key only: values are never logged nor echoed (§7.5).
        log.write(done ? log::Level::info : log::Level::warn,
                  done ? "Changed secbox.env." : "secbox.env was not changed.",
                  {{"operation", set ? "env.set" : "env.unset"},
                   {"key", key},
                   {"reason", done ? "" : done.error().message}});
        if (!done || !hooks.env_changed) {
          auto r = take(id);
          if (!r) return;
          if (!done) return r->error(done.error());
          return r->send("ack", {{"key", key}, {"appliesAt", "now"}});
        }
        // The ack says whether the box applied the change or needs a restart for it.
        hooks.env_changed(
            [self = shared_from_this(), id, key](std::vector<std::string> at_restart) {
              auto r = self->take(id);
              if (!r) return;
              const bool later =
                  std::find(at_restart.begin(), at_restart.end(), key) != at_restart.end();
              r->send("ack", {{"key", key}, {"appliesAt", later ? "restart" : "now"}});
            });
      });
}

void ControlPlane::Impl::jwt_rotate(const Envelope&, Reply reply) {
  if (!permitted(reply, "jwt", "rotate")) return;
  if (!hooks.rotate_jwt)
    return reply.error(protocol::ErrorCode::unavailable, "the box has no device token to rotate");
  auto id = hold(std::move(reply));
  hooks.rotate_jwt([self = shared_from_this(), id](Result<void> rotated) {
    auto r = self->take(id);
    if (!r) return;
    if (!rotated) return r->error(rotated.error());
    r->send("ack");
  });
}

}  // namespace secbox::control
