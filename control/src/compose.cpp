#include "control/compose.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/atomic_file.hpp"
#include "envfile/guards.hpp"

namespace secbox::control {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

std::optional<FileOwner> owner_of(const ComposeSettings& s) {
  if (!s.run_as) return std::nullopt;
  return FileOwner{s.run_as->uid, s.run_as->gid};
}

bool cancelled(const ComposeSettings& s) { return s.cancel && s.cancel->cancelled(); }

std::string tail(const std::string& text, std::size_t n) {
  std::string t = text.size() > n ? "…" + text.substr(text.size() - n) : text;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

Result<void> make_dir(const std::string& path, const ComposeSettings& s) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return Error{Errc::io, "cannot create " + path + ": " + ec.message()};
  // 0750, and the set-group-id bit a folder inherits from the compose root:
  // the container runtime's user reads the projects through that group.
  struct stat st {};
  const mode_t setgid = ::stat(path.c_str(), &st) == 0 ? (st.st_mode & S_ISGID) : 0;
  ::chmod(path.c_str(), setgid | 0750);
  if (s.run_as && ::geteuid() == 0 && ::chown(path.c_str(), s.run_as->uid, s.run_as->gid) != 0) {
    return Error{Errc::io,
                 "cannot give " + path + " to " + s.run_as->name + ": " + std::strerror(errno)};
  }
  return ok();
}

Result<void> copy_file(const std::string& from, const std::string& to, const ComposeSettings& s,
                       mode_t mode) {
  auto text = read_file(from, envfile::kMaxEnvFileBytes);
  if (!text) return text.error();
  return write_file_atomically(to, text.value(),
                               {mode, ::geteuid() == 0 ? owner_of(s) : std::nullopt});
}

// The checked env file of one compose file, and the environment the tools get
// from it (made once: the file's variables with the checked values).
struct Values {
  const envfile::EnvFile& env;  // also what scrub() hides in tool output
  std::vector<std::string> tool_env;
};

Values values_for(const ComposeSettings& s, std::string_view compose_text,
                  const envfile::EnvFile& env) {
  return {env, compose_environment(s.run_as, compose_text, env, s.container_host)};
}

// The compose tool (or, with `argv_override`, the container tool) on the
// project's file, with the checked values in its environment.
Result<ProcessResult> run_tool(const ComposeSettings& s, const std::string& project,
                               const std::string& file, const std::vector<std::string>& args,
                               std::chrono::milliseconds timeout, const Values& v,
                               const std::vector<std::string>* argv_override = nullptr) {
  ProcessOptions o;
  o.argv = argv_override ? *argv_override : compose_argv(s, project, file, args);
  if (s.run_as && ::geteuid() == 0) o.run_as = s.run_as;
  o.cwd = fs::path(file).parent_path().string();
  o.env = v.tool_env;
  // What the tool makes in the project's folder (a bind source it creates)
  // is the group's too: the container runtime's own user reaches the
  // projects through their group (docs/security.md).
  o.umask = 0007;
  o.timeout = timeout;
  o.cancel = s.cancel;
  return run_process(o);
}

// A usage error from the tool's argument parser (exit 2): the subcommand or
// flag does not exist in this version. podman-compose 1.0.3 answers `config`
// with "invalid choice: 'config'" and `ps --format json` with "unrecognized
// arguments" (checked by hand with Debian 12's package).
bool refused_as_usage(const Result<ProcessResult>& r) {
  if (!r || r.value().timed_out || r.value().exit_code != 2) return false;
  const std::string all = r.value().err + r.value().out;
  for (const char* m :
       {"invalid choice", "unrecognized arguments", "unknown command", "unknown flag"}) {
    if (all.find(m) != std::string::npos) return true;
  }
  return false;
}

std::string describe_run(const Result<ProcessResult>& r, const envfile::EnvFile& env) {
  if (!r) return r.error().message;
  std::string d = r.value().describe();
  if (r.value().err.empty() && !r.value().out.empty()) d += ": " + tail(r.value().out, 400);
  return scrub(d, env);
}

// Step 4's second half: the tool renders the file as it would start it; a
// `${` left anywhere in the result would reach a container literally. False
// when the tool has no `config` (podman-compose 1.0.3): our own reading of
// the file, just before, is then the only one.
Result<bool> check_render(const ComposeSettings& s, const std::string& project,
                          const std::string& file, const Values& v) {
  const envfile::EnvFile& env = v.env;
  auto r = run_tool(s, project, file, {"config"}, s.tool_timeout, v);
  if (refused_as_usage(r)) return false;
  if (!r || !r.value().succeeded()) {
    return Error{Errc::invalid,
                 "the compose tool could not render the file: " + describe_run(r, env)};
  }
  std::vector<int> lines;
  std::istringstream in(r.value().out);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find("${") != std::string::npos) lines.push_back(n);
  }
  if (lines.empty()) return true;
  std::string where;
  for (std::size_t i = 0; i < lines.size() && i < 10; ++i)
    where += (i ? ", " : "") + std::to_string(lines[i]);
  return Error{Errc::invalid,
               "the file as the compose tool renders it still holds \"${\" (rendered line " +
                   where + "); it would reach a container literally"};
}

// The project's containers as the tools see them now: the compose tool's
// JSON ps, or (when it has none, as podman-compose 1.0.3) the container tool's
// ps filtered on compose's project label. `by_container_tool` remembers which.
Result<std::vector<ContainerInfo>> project_containers(const ComposeSettings& s,
                                                      const std::string& project,
                                                      const std::string& file, const Values& v,
                                                      std::chrono::milliseconds limit,
                                                      bool& by_container_tool) {
  std::vector<std::string> container_ps = s.container_command;
  container_ps.insert(container_ps.end(), {"ps", "-a", "--format", "json", "--filter",
                                           "label=com.docker.compose.project=" + project});
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto r = by_container_tool ? run_tool(s, project, file, {}, limit, v, &container_ps)
                               : run_tool(s, project, file, {"ps", "--format", "json"}, limit, v);
    if (!by_container_tool && refused_as_usage(r)) {
      by_container_tool = true;  // this compose tool has no JSON ps: ask the container tool
      continue;
    }
    if (!r || !r.value().succeeded()) {
      return Error{Errc::spawn,
                   std::string(by_container_tool ? "the container tool's" : "the compose tool's") +
                       " ps failed: " + describe_run(r, v.env)};
    }
    auto parsed = parse_ps_output(r.value().out);
    if (!parsed) return parsed.error();
    std::vector<ContainerInfo> mine;
    for (auto& c : parsed.value()) {
      if (c.project.empty() || c.project == project) mine.push_back(std::move(c));
    }
    return mine;
  }
  return Error{Errc::spawn,
               "neither the compose tool nor the container tool lists containers as JSON"};
}

std::set<std::string> ids_of(const std::vector<ContainerInfo>& containers) {
  std::set<std::string> ids;
  for (const auto& c : containers) {
    if (!c.id.empty()) ids.insert(c.id);
  }
  return ids;
}

bool is_podman(const std::vector<std::string>& command) {
  return !command.empty() && fs::path(command.back()).filename() == "podman";
}

// Step 6: every service runs from a container this apply created (its id was
// not among the project's containers before `up`), and is healthy where it
// has a health check. A new container that has exited on two polls in a row
// fails the phase at once: it will not come up by waiting.
Result<void> wait_healthy(const ComposeSettings& s, const std::string& project,
                          const std::string& file, const std::vector<ServiceSpec>& services,
                          const Values& v, const std::set<std::string>& before) {
  const auto deadline = SteadyClock::now() + s.health_timeout;
  std::string last;
  bool by_container_tool = false;
  std::set<std::string> exited_once;
  for (;;) {
    auto remaining =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    const auto limit =
        std::max(std::chrono::milliseconds(1000), std::min(s.tool_timeout, remaining));
    auto listed = project_containers(s, project, file, v, limit, by_container_tool);
    if (!listed) {
      last = listed.error().message;
    } else {
      std::vector<std::string> waiting;
      std::vector<std::string> dead;
      std::vector<std::string> starting;
      std::set<std::string> exited_now;
      for (const auto& svc : services) {
        std::string seen = "no container";
        bool ready = false;
        for (const auto& c : listed.value()) {
          if (c.service != svc.name) continue;
          if (c.id.empty() || before.count(c.id)) {
            if (seen == "no container")
              seen = "only a container from before this apply (" + c.state + ")";
            continue;
          }
          seen = c.state.empty() ? "unknown state" : c.state;
          if (c.exit_code && c.state != "running")
            seen += " (exit code " + std::to_string(*c.exit_code) + ")";
          if (!c.health.empty()) seen += " (" + c.health + ")";
          if (c.state == "running" && (!svc.has_healthcheck || c.health == "healthy")) ready = true;
          if (c.state == "running" && svc.has_healthcheck && c.health == "starting")
            starting.push_back(c.id);
          if (c.state == "exited" || c.state == "dead") {
            exited_now.insert(c.id);
            if (exited_once.count(c.id)) dead.push_back(svc.name + ": " + seen);
          }
        }
        if (!ready) waiting.push_back(svc.name + ": " + seen);
      }
      if (waiting.empty()) return ok();
      last.clear();
      for (const auto& w : waiting) last += (last.empty() ? "" : "; ") + w;
      if (!dead.empty())
        return Error{Errc::unavailable, "a container of this apply stopped: " + last};
      exited_once = std::move(exited_now);
      // Podman runs health checks from systemd timers; where there is no
      // systemd session for it (a container, a box without lingering) they
      // never run, so the box runs each pending check itself.
      if (is_podman(s.container_command)) {
        for (const auto& id : starting) {
          std::vector<std::string> argv = s.container_command;
          argv.insert(argv.end(), {"healthcheck", "run", id});
          (void)run_tool(s, project, file, {}, limit, v, &argv);
        }
      }
    }
    if (cancelled(s)) return Error{Errc::unavailable, "the daemon is stopping; " + last};
    if (SteadyClock::now() + s.health_poll >= deadline) break;
    if (s.cancel) {
      s.cancel->wait_for(s.health_poll);  // ends at once when the daemon stops
    } else {
      std::this_thread::sleep_for(s.health_poll);
    }
  }
  return Error{Errc::unavailable, "not every service was up within " +
                                      std::to_string(s.health_timeout.count() / 1000) +
                                      " s: " + last};
}

// After a rollback the env file that runs is the previous bundle's.
void remember_applied(const ComposeSettings& s, const std::string& applied_dir,
                      const std::string& env_file) {
  if (!make_dir(applied_dir, s)) return;
  (void)copy_file(env_file, applied_dir + "/secbox.env", s, 0600);
}

std::string join_names(const std::vector<ServiceSpec>& services) {
  std::string out;
  for (const auto& s : services) out += (out.empty() ? "" : ", ") + s.name;
  return out;
}

}  // namespace

// Where a program would be found: a path as it is, a bare name on the PATH
// the tools run with. Empty when it is not installed.
std::string find_program(const std::string& name) {
  if (name.empty()) return {};
  if (name.find('/') != std::string::npos)
    return ::access(name.c_str(), X_OK) == 0 ? name : std::string();
  for (const char* dir :
       {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}) {
    std::string path = std::string(dir) + "/" + name;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return {};
}

Result<void> validate_project_name(std::string_view p) {
  auto ok_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  };
  if (p.empty() || p.size() > 63 || !std::all_of(p.begin(), p.end(), ok_char) || p[0] == '_' ||
      p[0] == '-') {
    return Error{Errc::invalid,
                 "the project name must match ^[a-z0-9][a-z0-9_-]*$ (at most 63 characters)"};
  }
  return ok();
}

Result<std::vector<ContainerInfo>> parse_ps_output(std::string_view text) {
  std::vector<nlohmann::json> items;
  auto trimmed = text;
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.front())))
    trimmed.remove_prefix(1);
  try {
    if (trimmed.empty()) return std::vector<ContainerInfo>{};
    if (trimmed.front() == '[') {
      auto arr = nlohmann::json::parse(trimmed);
      for (auto& item : arr) items.push_back(std::move(item));
    } else {
      std::istringstream in{std::string(trimmed)};
      std::string line;
      while (std::getline(in, line)) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        items.push_back(nlohmann::json::parse(line));
      }
    }
  } catch (const nlohmann::json::exception&) {
    return Error{Errc::invalid, "the container list is not JSON"};
  }
  auto str = [](const nlohmann::json& j, const char* key) -> std::string {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::vector<ContainerInfo> out;
  for (const auto& item : items) {
    if (!item.is_object())
      return Error{Errc::invalid, "an entry of the container list is not an object"};
    ContainerInfo c;
    // Docker: Name / Names (string, comma-separated); Podman: Names (array).
    c.name = str(item, "Name");
    if (c.name.empty()) {
      if (auto it = item.find("Names"); it != item.end()) {
        if (it->is_array() && !it->empty() && (*it)[0].is_string())
          c.name = (*it)[0].get<std::string>();
        if (it->is_string())
          c.name = it->get<std::string>().substr(0, it->get<std::string>().find(','));
      }
    }
    c.id = str(item, "ID");
    if (c.id.empty()) c.id = str(item, "Id");
    if (auto it = item.find("ExitCode"); it != item.end() && it->is_number_integer()) {
      c.exit_code = it->get<int>();
    }
    c.service = str(item, "Service");
    c.project = str(item, "Project");
    // Labels: an object (Podman) or "k=v,k=v" (Docker's ps).
    if (auto it = item.find("Labels"); it != item.end()) {
      auto label = [&](const std::string& key) -> std::string {
        if (it->is_object()) return str(*it, key.c_str());
        if (it->is_string()) {
          std::string all = "," + it->get<std::string>();
          auto pos = all.find("," + key + "=");
          if (pos == std::string::npos) return {};
          auto start = pos + key.size() + 2;
          return all.substr(start, all.find(',', start) - start);
        }
        return {};
      };
      if (c.service.empty()) c.service = label("com.docker.compose.service");
      if (c.project.empty()) c.project = label("com.docker.compose.project");
    }
    c.state = str(item, "State");
    std::transform(c.state.begin(), c.state.end(), c.state.begin(),
                   [](unsigned char ch) { return std::tolower(ch); });
    c.health = str(item, "Health");
    if (c.health.empty()) {
      auto status = str(item, "Status");
      for (const char* h : {"unhealthy", "healthy", "starting"}) {
        if (status.find(std::string("(") + h) != std::string::npos) {
          c.health = h;
          break;
        }
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

const std::vector<std::string>& compose_up_args() {
  static const std::vector<std::string> args{"up", "-d", "--force-recreate", "--remove-orphans"};
  return args;
}

std::vector<std::string> compose_argv(const ComposeSettings& s, const std::string& project,
                                      const std::string& file,
                                      const std::vector<std::string>& args) {
  std::vector<std::string> argv = s.command;
  argv.insert(argv.end(), {"-p", project, "-f", file});
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

std::vector<std::string> clean_environment(const std::optional<UserInfo>& user,
                                           const std::string& container_host) {
  std::vector<std::string> env{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                               "LANG=C.UTF-8"};
  if (!container_host.empty()) env.push_back("CONTAINER_HOST=" + container_host);
  auto who = user ? user : lookup_user(::geteuid());
  if (who) {
    env.push_back("HOME=" + who->home);
    env.push_back("USER=" + who->name);
    std::string runtime = "/run/user/" + std::to_string(who->uid);
    struct stat st {};
    if (::stat(runtime.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
      env.push_back("XDG_RUNTIME_DIR=" + runtime);
  }
  return env;
}

std::vector<std::string> compose_environment(const std::optional<UserInfo>& user,
                                             std::string_view compose_text,
                                             const envfile::EnvFile& env,
                                             const std::string& container_host) {
  auto out = clean_environment(user, container_host);
  for (const auto& name : envfile::referenced_variables(compose_text)) {
    if (envfile::is_reserved_variable(name)) continue;
    if (auto v = env.get(name)) out.push_back(name + "=" + *v);
  }
  return out;
}

std::string scrub(std::string text, const envfile::EnvFile& env) {
  for (const auto& e : env.entries()) {
    if (e.value.size() < 4) continue;
    for (auto pos = text.find(e.value); pos != std::string::npos;
         pos = text.find(e.value, pos + 10)) {
      text.replace(pos, e.value.size(), "[redacted]");
    }
  }
  return text;
}

std::string project_file(const ComposeSettings& s, const std::string& project) {
  return s.dir + "/" + project + "/compose.yaml";
}

Result<void> guard_project(const ComposeSettings& s, const std::string& project) {
  auto failed = [](std::string_view phase, const Error& e) {
    return Error{e.code, std::string(phase) + ": " + e.message};
  };
  if (auto v = validate_project_name(project); !v) return v.error();
  auto ensured = envfile::ensure_from_legacy(s.env_file, s.legacy_env_file, owner_of(s), false);
  if (!ensured) return failed(envfile::kPhaseEnvEnsure, ensured.error());
  const auto& env = ensured.value().env;
  if (auto keys = envfile::check_required_keys(env); !keys)
    return failed(envfile::kPhaseMissingKeys, keys.error());
  auto text = read_file(project_file(s, project), kMaxComposeBytes);
  if (!text)
    return Error{Errc::not_found, "project " + project + " has no compose file on this box"};
  // A restart mounts again: the file in service is held to today's policy,
  // and its host paths are looked at again for links.
  auto checked = check_compose(text.value(), s.dir + "/" + project, s.allowance, project);
  if (!checked) return failed("write", checked.error());
  if (auto paths = check_host_paths_now(checked.value().host_paths); !paths)
    return failed("compose-up", paths.error());
  if (auto vars = envfile::check_interpolation(text.value(), env); !vars) {
    return failed(envfile::kPhaseUnresolvedVars, vars.error());
  }
  return ok();
}

ComposeOutcome run_compose_snapshot(const ComposeSettings& s, const std::string& project,
                                    const std::string& cloud_yaml, const PhaseObserver& observe) {
  auto fail = [&](std::string_view phase, std::string detail) {
    observe(phase, false, detail);
    return ComposeOutcome{false, std::string(phase), std::move(detail)};
  };
  auto pass = [&](std::string_view phase, const std::string& detail) {
    observe(phase, true, detail);
  };

  // 1. write: beside the current file, never over it.
  // The file is read strictly once, checked, and written out canonical: the
  // tool is given what the policy saw, never the cloud's bytes.
  if (auto v = validate_project_name(project); !v) return fail("write", v.error().message);
  const std::string dir = s.dir + "/" + project;
  auto checked = check_compose(cloud_yaml, dir, s.allowance, project);
  if (!checked) return fail("write", checked.error().message);
  const std::string& yaml = checked.value().canonical;
  const std::vector<ServiceSpec>& services = checked.value().services;
  const std::string current = dir + "/compose.yaml";
  const std::string next = dir + "/compose.yaml.new";
  const std::string previous_dir = dir + "/previous";
  // The env file as the stack in service was last started with it: env.set
  // may have changed secbox.env since, and a rollback must bring back the
  // values that ran, not the ones that were never tried.
  const std::string applied_dir = dir + "/applied";
  if (auto made = make_dir(dir, s); !made) return fail("write", made.error().message);
  const auto file_owner = ::geteuid() == 0 ? owner_of(s) : std::nullopt;
  if (auto w = write_file_atomically(next, yaml, {0640, file_owner}); !w)
    return fail("write", w.error().message);
  // A .env beside the file would be read by the tool, and podman-compose
  // 1.0.3 lets it override the environment: only checked values may count.
  const bool stray_dotenv = ::unlink((dir + "/.env").c_str()) == 0;
  pass("write", "wrote the checked file (" + std::to_string(yaml.size()) +
                    " bytes) beside the current one; services: " + join_names(services) +
                    (stray_dotenv ? "; removed a stray .env from the project folder" : ""));

  // 2. env-ensure
  auto ensured = envfile::ensure_from_legacy(s.env_file, s.legacy_env_file, owner_of(s), false);
  if (!ensured) return fail(envfile::kPhaseEnvEnsure, ensured.error().message);
  const envfile::EnvFile env = ensured.value().env;
  pass(envfile::kPhaseEnvEnsure, ensured.value().detail);

  // 3. secbox-env-missing-keys: before any container is touched.
  if (auto keys = envfile::check_required_keys(env); !keys)
    return fail(envfile::kPhaseMissingKeys, keys.error().message);
  pass(envfile::kPhaseMissingKeys, "DEVICE_ID and CLOUD_BASE_URL are set");

  // 4. env-unresolved-vars: our reading of the file, then the tool's own.
  if (auto vars = envfile::check_interpolation(yaml, env); !vars) {
    return fail(envfile::kPhaseUnresolvedVars, vars.error().message);
  }
  const Values values = values_for(s, yaml, env);
  // A machine without the compose tool (a development box, scripts/run)
  // gets every check of the file, then a plain answer, and nothing changes.
  const std::string tool = s.command.empty() ? std::string() : s.command.front();
  const bool tool_missing = find_program(tool).empty();
  std::string rendered_note = "every variable resolves";
  if (tool_missing) {
    rendered_note += "; no compose tool is installed to render the file";
  } else if (s.render_check) {
    auto rendered = check_render(s, project, next, values);
    if (!rendered) return fail(envfile::kPhaseUnresolvedVars, rendered.error().message);
    rendered_note +=
        rendered.value()
            ? ", and the rendered file holds no \"${\""
            : "; the compose tool has no config command, so it did not render the file";
  }
  pass(envfile::kPhaseUnresolvedVars, rendered_note);

  // 5. compose-up: the file in service and the env file become the
  // last-known-good bundle, then the new file takes its place.
  if (tool_missing) {
    return fail(
        "compose-up",
        "no container runtime is installed here: the compose tool \"" + tool +
            "\" (COMPOSE_CMD) is not on PATH; install.sh installs podman and podman-compose. "
            "Nothing was started or changed.");
  }
  struct stat st {};
  const bool had_previous = ::stat(current.c_str(), &st) == 0;
  if (had_previous) {
    if (auto made = make_dir(previous_dir, s); !made)
      return fail("compose-up", made.error().message);
    if (auto c = copy_file(current, previous_dir + "/compose.yaml", s, 0640); !c) {
      return fail("compose-up", "cannot keep the previous file: " + c.error().message);
    }
    struct stat ast {};
    const bool have_applied = ::stat((applied_dir + "/secbox.env").c_str(), &ast) == 0;
    if (auto c = copy_file(have_applied ? applied_dir + "/secbox.env" : s.env_file,
                           previous_dir + "/secbox.env", s, 0600);
        !c) {
      return fail("compose-up", "cannot keep the previous env file: " + c.error().message);
    }
  }
  if (::rename(next.c_str(), current.c_str()) != 0) {
    return fail("compose-up",
                "cannot move the new file into place: " + std::string(std::strerror(errno)));
  }
  auto restore_file = [&]() -> Result<void> {
    if (!had_previous) {
      ::unlink(current.c_str());
      return ok();
    }
    return copy_file(previous_dir + "/compose.yaml", current, s, 0640);
  };
  // Just before the tool mounts them: no link on the way to a host path.
  if (auto paths = check_host_paths_now(checked.value().host_paths); !paths) {
    auto restored = restore_file();
    return fail("compose-up",
                paths.error().message + (restored ? ""
                                                  : "; the previous file could not be put back: " +
                                                        restored.error().message));
  }
  // The containers from before: the health phase counts none of them.
  bool by_container_tool = false;
  auto existing =
      project_containers(s, project, current, values, s.tool_timeout, by_container_tool);
  if (!existing) {
    auto restored = restore_file();
    return fail(
        "compose-up",
        "cannot list the project's containers before up: " + existing.error().message +
            (restored ? ""
                      : "; the previous file could not be put back: " + restored.error().message));
  }
  auto up = run_tool(s, project, current, compose_up_args(), s.up_timeout, values);
  if (!up || !up.value().succeeded()) {
    auto restored = restore_file();
    return fail("compose-up", "up -d failed: " + describe_run(up, env) +
                                  (restored ? (had_previous ? "; the previous file is back in place"
                                                            : "; the new file was removed")
                                            : "; the previous file could not be put back: " +
                                                  restored.error().message));
  }
  pass("compose-up", "up -d succeeded");

  // 6. health, with a rollback to the bundle when it fails.
  auto healthy = wait_healthy(s, project, current, services, values, ids_of(existing.value()));
  if (!healthy) {
    if (!had_previous)
      return fail("health", healthy.error().message + "; there is no previous file to go back to");
    observe("health", false, healthy.error().message + "; rolling back to the previous file");
    auto back = [&]() -> Result<void> {
      if (auto r = restore_file(); !r) return r.error();
      if (auto r = copy_file(previous_dir + "/secbox.env", s.env_file, s, 0600); !r)
        return r.error();
      auto prev_env = envfile::load(s.env_file);
      if (!prev_env) return prev_env.error();
      auto prev_text = read_file(current, kMaxComposeBytes);
      if (!prev_text) return prev_text.error();
      // The previous file is held to today's policy too, and what runs is
      // its canonical form.
      auto prev = check_compose(prev_text.value(), dir, s.allowance, project);
      if (!prev) return prev.error();
      if (prev.value().canonical != prev_text.value()) {
        if (auto w = write_file_atomically(current, prev.value().canonical, {0640, file_owner}); !w)
          return w.error();
      }
      if (auto paths = check_host_paths_now(prev.value().host_paths); !paths) return paths.error();
      const Values prev_values = values_for(s, prev.value().canonical, prev_env.value());
      bool by_tool = false;
      auto failed = project_containers(s, project, current, prev_values, s.tool_timeout, by_tool);
      if (!failed) return failed.error();
      auto again = run_tool(s, project, current, compose_up_args(), s.up_timeout, prev_values);
      if (!again || !again.value().succeeded()) {
        return Error{Errc::spawn, "up -d failed: " + describe_run(again, prev_env.value())};
      }
      return wait_healthy(s, project, current, prev.value().services, prev_values,
                          ids_of(failed.value()));
    }();
    if (!back) {
      return fail("rollback-failed",
                  healthy.error().message + "; the rollback failed too: " + back.error().message);
    }
    remember_applied(s, applied_dir, previous_dir + "/secbox.env");
    return fail("rollback", healthy.error().message +
                                "; rolled back: the previous file is in service and healthy");
  }
  pass("health", "every service runs: " + join_names(services));
  if (auto saved = make_dir(applied_dir, s); saved) {
    (void)envfile::save(applied_dir + "/secbox.env", env,
                        ::geteuid() == 0 ? owner_of(s) : std::nullopt);
  }

  // 7. done
  pass("done", "");
  return {true, "done", "every service runs: " + join_names(services)};
}

}  // namespace secbox::control
