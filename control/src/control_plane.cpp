#include "control/control_plane.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <set>
#include <sstream>
#include <regex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/blocking.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/net.hpp"
#include "common/process.hpp"
#include "common/time.hpp"
#include "control/host.hpp"
#include "control/permissions.hpp"
#include "control/tools.hpp"
#include "envfile/env_file.hpp"
#include "protocol/held_replies.hpp"
#include "protocol/router.hpp"

namespace secbox::control {
namespace {

using protocol::Envelope;
using protocol::Reply;
using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kMaxOutput = 64 * 1024;

// Child output is bytes; JSON strings are UTF-8. Invalid sequences become U+FFFD.
std::string valid_utf8(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size();) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    std::size_t n = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xE  ? 3
                    : (c >> 3) == 0x1E ? 4
                                       : 0;
    bool good = n > 0 && i + n <= in.size();
    for (std::size_t k = 1; good && k < n; ++k)
      good = (static_cast<unsigned char>(in[i + k]) & 0xC0) == 0x80;
    if (good && n > 1 && envfile::is_valid_utf8(std::string_view(in).substr(i, n))) {
      out.append(in, i, n);
      i += n;
    } else if (good && n == 1) {
      out += in[i++];
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

bool is_unit_name(const std::string& s) {
  static const std::regex kUnit("^[A-Za-z0-9:_.@\\\\-]{1,200}$");
  return !s.empty() && s[0] != '-' && std::regex_match(s, kUnit);
}

nlohmann::json container_json(const std::vector<ContainerInfo>& list) {
  auto out = nlohmann::json::array();
  for (const auto& c : list) {
    nlohmann::json j{{"name", c.name}, {"state", c.state}};
    if (!c.health.empty()) j["health"] = c.health;
    out.push_back(std::move(j));
  }
  return out;
}

struct Job {
  std::string re;  // the exec.run's id
  bool done = false;
  nlohmann::json result;  // the exec.result fields
  SteadyClock::time_point done_at;
};

struct HostSample {
  nlohmann::json cpu, memory, disk, containers;
};

}  // namespace

struct ControlPlane::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::io_context& l, ControlSettings s, ControlHooks h)
      : loop(l), settings(std::move(s)), hooks(std::move(h)), compose_pool(l, 1), ops_pool(l, 2),
        health_timer(l), watch(l), reload_timer(l) {
    settings.compose.cancel = cancel;
  }

  boost::asio::io_context& loop;
  ControlSettings settings;
  ControlHooks hooks;
  std::shared_ptr<Cancellation> cancel = std::make_shared<Cancellation>();
  BlockingPool compose_pool;  // one compose operation at a time
  BlockingPool ops_pool;      // node control, health figures, reloads
  boost::asio::steady_timer health_timer;
  boost::asio::posix::stream_descriptor watch;
  boost::asio::steady_timer reload_timer;
  char watch_buf[4096];
  log::Logger log{"control"};

  Permissions permissions;
  bool permissions_loaded = false;
  ToolSet tools;
  protocol::Router* router = nullptr;
  protocol::HeldReplies held;  // replies waiting on a worker
  bool compose_busy = false;
  std::map<std::string, Job> jobs;
  std::size_t running_jobs = 0;
  std::optional<CpuTimes> last_cpu;
  bool welcomed = false;
  bool stopping = false;
  int in_flight = 0;
  std::function<void()> on_stopped;

  // ---- plumbing ----------------------------------------------------------

  // Runs fn on a pool; done runs on the loop unless the plane is stopping.
  template <class Fn, class Done>
  void run(BlockingPool& pool, Fn fn, Done done) {
    ++in_flight;
    pool.run(std::move(fn),
             [self = shared_from_this(), done = std::move(done)](auto result) mutable {
               --self->in_flight;
               if (self->stopping) {
                 self->maybe_stopped();
                 return;
               }
               done(std::move(result));
             });
  }

  // Runs a program on the loop (registered commands: no thread is held while
  // it runs); done runs on the loop unless the plane is stopping, whose
  // cancellation kills the child at once.
  template <class Done>
  void run_child(const ProcessOptions& o, Done done) {
    ++in_flight;
    start_process(
        loop, o,
        [self = shared_from_this(), done = std::move(done)](Result<ProcessResult> r) mutable {
          --self->in_flight;
          if (self->stopping) {
            self->maybe_stopped();
            return;
          }
          done(std::move(r));
        });
  }

  void maybe_stopped() {
    if (stopping && in_flight == 0 && on_stopped) {
      auto f = std::move(on_stopped);
      on_stopped = nullptr;
      f();
    }
  }

  std::uint64_t hold(Reply reply) { return held.hold(std::move(reply)); }
  // The reply, if its session is still attached.
  std::optional<Reply> take(std::uint64_t id) { return held.take(id); }

  bool permitted(Reply& reply, const char* section, const char* op,
                 std::optional<std::string_view> name = {}) {
    Verdict v = permissions.check(section, op, name);
    if (v == Verdict::allowed) return true;
    log.info("Refused a node-control request.",
             {{"operation", std::string(section) + "." + op},
              {"verdict", v == Verdict::unavailable ? "unavailable" : "forbidden"}});
    reply.error(v == Verdict::unavailable ? protocol::ErrorCode::unavailable
                                          : protocol::ErrorCode::forbidden,
                describe(v, section, op));
    return false;
  }

  // Worker side: these take what they need by value, never the plane itself
  // (a worker must not hold the last reference to what owns its pool).
  static Result<ProcessResult> run_tool(const std::shared_ptr<Cancellation>& cancel,
                                        const std::vector<std::string>& argv,
                                        std::chrono::milliseconds timeout,
                                        std::size_t max_output = kMaxOutput,
                                        const std::string& container_host = {}) {
    ProcessOptions o;
    o.argv = argv;
    o.env = clean_environment(std::nullopt, container_host);
    o.timeout = timeout;
    o.max_output = max_output;
    o.cancel = cancel;
    return run_process(o);
  }

  static std::vector<std::string> with(std::vector<std::string> argv,
                                       std::initializer_list<std::string> more) {
    argv.insert(argv.end(), more);
    return argv;
  }

  // ---- configuration -----------------------------------------------------

  void reload() {
    struct Loaded {
      Result<Permissions> permissions;
      ToolsLoaded tools;
    };
    auto s = settings;
    run(
        ops_pool,
        [s] {
          return Loaded{Permissions::load(s.permissions_file), load_tools(s.tools_dir)};
        },
        [this](Loaded loaded) {
          if (loaded.permissions) {
            permissions = std::move(loaded.permissions).value();
            permissions_loaded = true;
          } else {
            // Fail closed: an unreadable file allows nothing.
            permissions = Permissions{};
            permissions_loaded = false;
            log.error("control.json is invalid; node control is unavailable until it is fixed.",
                      {{"reason", loaded.permissions.error().message}});
          }
          for (const auto& p : loaded.tools.problems)
            log.warn("Skipped an invalid tool file.", {{"reason", p}});
          tools = std::move(loaded.tools.tools);
          log.info(
              "Read control.json and the registered tools.",
              {{"tools", static_cast<std::int64_t>(tools.size())},
               {"invalid_tool_files", static_cast<std::int64_t>(loaded.tools.problems.size())}});
        });
  }

  // The tools folder is watched; a change reloads (debounced), as SIGHUP does.
  void start_watch() {
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return;
    if (::inotify_add_watch(fd, settings.tools_dir.c_str(),
                            IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE) <
        0) {
      ::close(fd);
      log.info("The tools folder cannot be watched (absent?); SIGHUP re-reads it.",
               {{"dir", settings.tools_dir}});
      return;
    }
    watch.assign(fd);
    read_watch();
  }

  void read_watch() {
    watch.async_read_some(boost::asio::buffer(watch_buf),
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                            if (ec || self->stopping) return;
                            self->reload_timer.expires_after(std::chrono::milliseconds(200));
                            self->reload_timer.async_wait([self](boost::system::error_code e) {
                              if (!e && !self->stopping) self->reload();
                            });
                            self->read_watch();
                          });
  }

  // ---- §7.3 compose ------------------------------------------------------

  void compose_snapshot(const Envelope& req, Reply reply) {
    if (compose_busy)
      return reply.error(protocol::ErrorCode::busy,
                         "a compose operation is already running; try again when it ends");
    compose_busy = true;
    const std::string project = req.payload["project"];
    const std::string yaml = req.payload["yaml"];
    auto id = hold(std::move(reply));
    log.info("Compose snapshot received.",
             {{"project", project.substr(0, 64)}, {"bytes", yaml.size()}});
    auto s = settings.compose;
    s.allowance = permissions.compose_allowance(project);
    auto lg = log;
    run(
        compose_pool,
        [s, project, yaml, lg] {
          return run_compose_snapshot(
              s, project, yaml, [&](std::string_view phase, bool ok, const std::string& detail) {
                lg.write(
                    ok ? log::Level::info : log::Level::warn,
                    ok ? "Compose phase passed." : "Compose phase failed.",
                    {{"project", project.substr(0, 64)}, {"phase", phase}, {"detail", detail}});
              });
        },
        [this, id, project](ComposeOutcome outcome) {
          compose_busy = false;
          if (outcome.phase == "rollback-failed") {
            log.error("COMPOSE ROLLBACK FAILED: the stack may be down and needs a person.",
                      {{"project", project.substr(0, 64)}, {"detail", outcome.detail}});
          } else {
            log.write(
                outcome.ok ? log::Level::info : log::Level::warn, "Compose snapshot finished.",
                {{"project", project.substr(0, 64)}, {"ok", outcome.ok}, {"phase", outcome.phase}});
          }
          nlohmann::json result{
              {"ok", outcome.ok}, {"phase", outcome.phase}, {"detail", valid_utf8(outcome.detail)}};
          if (hooks.queue_event) {
            auto data = result;
            data["project"] = project;
            hooks.queue_event("compose_result", std::move(data));
          }
          if (auto r = take(id)) r->send("compose.result", std::move(result));
        });
  }

  // ---- §7.4 registered commands -----------------------------------------

  void purge_jobs() {
    const auto now = SteadyClock::now();
    for (auto it = jobs.begin(); it != jobs.end();) {
      it = it->second.done && now - it->second.done_at > settings.job_retention ? jobs.erase(it)
                                                                                : std::next(it);
    }
  }

  void exec_run(const Envelope& req, Reply reply) {
    purge_jobs();
    const std::string tool = req.payload["tool"];
    const std::string command = req.payload["command"];
    std::chrono::milliseconds timeout{};
    auto argv = build_argv(tools, tool, command, req.payload["args"], &timeout);
    if (!argv) {
      log.info("Refused an exec.run.", {{"tool", tool.substr(0, 64)},
                                        {"command", command.substr(0, 64)},
                                        {"reason", argv.error().message}});
      return reply.error(argv.error());
    }
    if (running_jobs >= settings.max_jobs) {
      return reply.error(protocol::ErrorCode::busy,
                         std::to_string(settings.max_jobs) + " commands are already running");
    }
    const std::string job_id = "job-" + random_uuid();
    jobs[job_id] = Job{req.id, false, nullptr, {}};
    ++running_jobs;
    reply.send("exec.accepted", {{"jobId", job_id}});
    log.info("Running a registered command.",
             {{"tool", tool}, {"command", command}, {"job_id", job_id}});
    ProcessOptions o;
    o.argv = std::move(argv).value();
    o.env = std::vector<std::string>{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"};
    o.timeout = timeout;
    o.max_output = kMaxOutput;
    o.cancel = cancel;
    run_child(o, [this, job_id](Result<ProcessResult> r) {
      --running_jobs;
      auto it = jobs.find(job_id);
      if (it == jobs.end()) return;
      nlohmann::json result{{"jobId", job_id}};
      if (r) {
        const auto& p = r.value();
        result["exitCode"] = p.signal != 0 ? 128 + p.signal : p.exit_code;
        result["stdout"] = valid_utf8(p.out);
        result["stderr"] = valid_utf8(p.err);
        result["durationMs"] = p.duration.count();
        result["timedOut"] = p.timed_out;
      } else {
        result["exitCode"] = 127;
        result["stdout"] = "";
        result["stderr"] = valid_utf8(r.error().message);
        result["durationMs"] = 0;
        result["timedOut"] = false;
      }
      it->second.done = true;
      it->second.result = result;
      it->second.done_at = SteadyClock::now();
      log.info("A registered command ended.",
               {{"job_id", job_id},
                {"exit_code", result["exitCode"].get<int>()},
                {"timed_out", result["timedOut"].get<bool>()},
                {"duration_ms", result["durationMs"].get<std::int64_t>()}});
      // Due while the tunnel is down: not sent later; the cloud asks with exec.job.
      if (router) router->send("exec.result", std::move(result), it->second.re);
    });
  }

  void exec_job(const Envelope& req, Reply reply) {
    purge_jobs();
    const std::string job_id = req.payload["jobId"];
    auto it = jobs.find(job_id);
    if (it == jobs.end())
      return reply.error(protocol::ErrorCode::not_found,
                         "no job " + job_id.substr(0, 128) + " (jobs are kept 5 minutes)");
    nlohmann::json out = it->second.done ? it->second.result : nlohmann::json{{"jobId", job_id}};
    out["state"] = it->second.done ? "done" : "running";
    reply.send("exec.job.result", std::move(out));
  }

  // ---- §7.5 node control --------------------------------------------------

  void metrics_get(const Envelope& req, Reply reply) {
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

  static Result<std::vector<ContainerInfo>> list_containers(
      const std::shared_ptr<Cancellation>& cancel, const std::vector<std::string>& container_cmd,
      const std::string& container_host) {
    const std::string tool = container_cmd.empty() ? std::string() : container_cmd.front();
    if (find_program(tool).empty()) {
      return Error{Errc::spawn,
                   "no container runtime is installed here: \"" + tool +
                       "\" (CONTAINER_CMD) is not on PATH; install.sh installs podman"};
    }
    auto r = run_tool(cancel, with(container_cmd, {"ps", "-a", "--format", "json"}),
                      std::chrono::seconds(20), 4 * 1024 * 1024, container_host);
    if (!r) return r.error();
    if (!r.value().succeeded())
      return Error{Errc::spawn, "the container tool failed: " + r.value().describe()};
    return parse_ps_output(r.value().out);
  }

  void containers_list(const Envelope&, Reply reply) {
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

  void containers_restart(const Envelope& req, Reply reply) {
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

  void units_status(const Envelope& req, Reply reply) {
    const std::string name = req.payload["name"];
    if (!is_unit_name(name))
      return reply.error(protocol::ErrorCode::invalid_args, "name is not a systemd unit name");
    if (!permitted(reply, "units", "status", name)) return;
    auto id = hold(std::move(reply));
    auto argv =
        with(settings.systemctl,
             {"show", "--no-pager",
              "--property=Id,LoadState,ActiveState,SubState,Description,ActiveEnterTimestamp", "--",
              name});
    run(
        ops_pool, [c = cancel, argv] { return run_tool(c, argv, std::chrono::seconds(15)); },
        [this, id, name](Result<ProcessResult> p) {
          auto r = take(id);
          if (!r) return;
          if (!p || !p.value().succeeded()) {
            return r->error(protocol::ErrorCode::unavailable,
                            "systemctl show failed: " +
                                valid_utf8(p ? p.value().describe() : p.error().message));
          }
          std::map<std::string, std::string> props;
          std::istringstream in(p.value().out);
          for (std::string line; std::getline(in, line);) {
            auto eq = line.find('=');
            if (eq != std::string::npos)
              props[line.substr(0, eq)] = valid_utf8(line.substr(eq + 1));
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

  void units_restart(const Envelope& req, Reply reply) {
    const std::string name = req.payload["name"];
    if (!is_unit_name(name))
      return reply.error(protocol::ErrorCode::invalid_args, "name is not a systemd unit name");
    if (!permitted(reply, "units", "restart", name)) return;
    auto id = hold(std::move(reply));
    auto argv = with(settings.systemctl, {"restart", "--", name});
    log.info("Restarting a unit.", {{"unit", name}});
    run(
        ops_pool, [c = cancel, argv] { return run_tool(c, argv, std::chrono::seconds(90)); },
        [this, id](Result<ProcessResult> p) {
          auto r = take(id);
          if (!r) return;
          if (!p || !p.value().succeeded()) {
            return r->error(protocol::ErrorCode::internal,
                            "systemctl restart failed: " +
                                valid_utf8(p ? p.value().describe() : p.error().message));
          }
          r->send("ack");
        });
  }

  void journal_tail(const Envelope& req, Reply reply) {
    const std::string unit = req.payload["unit"];
    if (!is_unit_name(unit))
      return reply.error(protocol::ErrorCode::invalid_args, "unit is not a systemd unit name");
    if (!permitted(reply, "journal", "tail", unit)) return;
    std::size_t asked = req.payload.value("lines", 100);
    std::size_t lines = std::min(asked, settings.journal_max_lines);
    auto id = hold(std::move(reply));
    auto argv = with(settings.journalctl,
                     {"-u", unit, "-n", std::to_string(lines), "--no-pager", "-o", "short-iso"});
    run(
        ops_pool,
        [c = cancel, argv] { return run_tool(c, argv, std::chrono::seconds(20), 512 * 1024); },
        [this, id, unit, asked, lines](Result<ProcessResult> p) {
          auto r = take(id);
          if (!r) return;
          if (!p || !p.value().succeeded()) {
            return r->error(
                protocol::ErrorCode::unavailable,
                "journalctl failed: " + valid_utf8(p ? p.value().describe() : p.error().message));
          }
          auto out = nlohmann::json::array();
          std::istringstream in(p.value().out);
          for (std::string line; std::getline(in, line);) out.push_back(valid_utf8(line));
          r->send("journal.result",
                  {{"unit", unit}, {"lines", std::move(out)}, {"truncated", asked > lines}});
        });
  }

  void env_change(const Envelope& req, Reply reply, bool set) {
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

  void jwt_rotate(const Envelope&, Reply reply) {
    if (!permitted(reply, "jwt", "rotate")) return;
    if (!hooks.rotate_jwt)
      return reply.error(protocol::ErrorCode::unavailable, "the box has no device token to rotate");
    auto id = hold(std::move(reply));
    hooks.rotate_jwt([self = shared_from_this(), id](RotateOutcome outcome) {
      auto r = self->take(id);
      if (!r) return;
      switch (outcome) {
        case RotateOutcome::rotated:
          return r->send("ack");
        case RotateOutcome::unavailable:
          return r->error(protocol::ErrorCode::unavailable,
                          "the cloud did not answer the refresh; retrying");
        case RotateOutcome::rejected:
          return r->error(protocol::ErrorCode::forbidden,
                          "the token is no longer accepted; the box needs pairing");
      }
    });
  }

  // ---- §7.1 health --------------------------------------------------------

  void send_health() {
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

  void schedule_health() {
    health_timer.expires_after(settings.health_interval);
    health_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopping || !self->welcomed) return;
      self->send_health();
      self->schedule_health();
    });
  }
};

ControlPlane::ControlPlane(boost::asio::io_context& loop, ControlSettings settings,
                           ControlHooks hooks)
    : impl_(std::make_shared<Impl>(loop, std::move(settings), std::move(hooks))) {}

ControlPlane::~ControlPlane() {
  impl_->cancel->cancel();
  impl_->stopping = true;
  impl_->reload_timer.cancel();
  boost::system::error_code ec;
  impl_->watch.close(ec);
  detach();
}

void ControlPlane::start() {
  impl_->reload();
  impl_->start_watch();
}

void ControlPlane::stop(std::function<void()> on_stopped) {
  auto& i = *impl_;
  i.stopping = true;
  i.cancel->cancel();  // children are killed at once; compose's waits end
  i.health_timer.cancel();
  i.reload_timer.cancel();
  boost::system::error_code ec;
  i.watch.close(ec);
  i.on_stopped = std::move(on_stopped);
  detach();
  boost::asio::post(i.loop, [self = impl_] { self->maybe_stopped(); });
}

void ControlPlane::attach(protocol::Router& d) {
  auto& i = *impl_;
  i.router = &d;
  std::weak_ptr<Impl> weak = impl_;
  auto route = [weak](void (Impl::*fn)(const Envelope&, Reply)) {
    return [weak, fn](const Envelope& e, Reply r) {
      if (auto self = weak.lock()) ((*self).*fn)(e, std::move(r));
    };
  };
  d.on_request("compose.snapshot", route(&Impl::compose_snapshot));
  d.on_request("exec.run", route(&Impl::exec_run));
  d.on_request("exec.job", route(&Impl::exec_job));
  d.on_request("metrics.get", route(&Impl::metrics_get));
  d.on_request("containers.list", route(&Impl::containers_list));
  d.on_request("containers.restart", route(&Impl::containers_restart));
  d.on_request("units.status", route(&Impl::units_status));
  d.on_request("units.restart", route(&Impl::units_restart));
  d.on_request("journal.tail", route(&Impl::journal_tail));
  d.on_request("env.set", [weak](const Envelope& e, Reply r) {
    if (auto self = weak.lock()) self->env_change(e, std::move(r), true);
  });
  d.on_request("env.unset", [weak](const Envelope& e, Reply r) {
    if (auto self = weak.lock()) self->env_change(e, std::move(r), false);
  });
  d.on_request("jwt.rotate", route(&Impl::jwt_rotate));
}

void ControlPlane::detach() {
  auto& i = *impl_;
  // Replies of a session that is going must not outlive its router.
  i.held.release_all();
  i.router = nullptr;
  i.welcomed = false;
  i.health_timer.cancel();
}

void ControlPlane::on_welcomed() {
  auto& i = *impl_;
  i.welcomed = true;
  i.send_health();
  i.schedule_health();
}

void ControlPlane::on_disconnected() {
  impl_->welcomed = false;
  impl_->health_timer.cancel();
}

void ControlPlane::reload() { impl_->reload(); }
void ControlPlane::reconfigure(ControlSettings settings) {
  const bool interval_changed = settings.health_interval != impl_->settings.health_interval;
  impl_->settings = std::move(settings);
  impl_->settings.compose.cancel = impl_->cancel;
  if (interval_changed)
    impl_->log.info("The health report interval changed; it applies from the next report.");
}
std::size_t ControlPlane::tool_count() const { return impl_->tools.size(); }
bool ControlPlane::permissions_loaded() const { return impl_->permissions_loaded; }
Verdict ControlPlane::permission(std::string_view section, std::string_view operation) const {
  return impl_->permissions.check(section, operation);
}

}  // namespace secbox::control
