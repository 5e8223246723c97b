#pragma once
// The guarded compose restart of cloud-protocol §7.3, the outage this product
// exists to prevent: seven phases in order, stopping at the first that fails,
// so that no container is recreated from a file whose variables would reach it
// literally. The compose tool runs as an argument vector with a clean
// environment (variables come from the env file only), under a time limit.
//
// Files, per project, in <dir>/<project>/ (docs/control.md):
//   compose.yaml       the file in service
//   compose.yaml.new   the file being applied (write phase); kept when rejected
//   previous/          the last-known-good bundle: compose.yaml and secbox.env
//                      as they were before the last compose-up
//
// Everything here blocks (files, child processes, waits): call it from a
// worker thread. One operation per project directory at a time is the
// caller's rule (ControlPlane answers `busy`).
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/process.hpp"
#include "common/result.hpp"
#include "control/compose_policy.hpp"
#include "envfile/env_file.hpp"

namespace secbox::control {

struct ComposeSettings {
  std::vector<std::string> command{"podman-compose"};  // COMPOSE_CMD, split on blanks
  // CONTAINER_CMD: lists the project's containers when the compose tool has
  // no `ps --format json` (podman-compose 1.0.3, Debian 12's).
  std::vector<std::string> container_command{"podman"};
  // CONTAINER_HOST: podman's API socket (unix:///run/podman/podman.sock on an
  // installed box), given to podman and podman-compose, which then drive the
  // system's podman service instead of starting containers themselves.
  std::string container_host;
  std::string env_file;            // secbox.env
  std::string legacy_env_file;     // mgmt-agent.env
  std::string dir;                 // one folder per project
  std::optional<UserInfo> run_as;  // the container runtime's user: runs compose, owns the files
  std::chrono::milliseconds up_timeout{300000};
  std::chrono::milliseconds health_timeout{120000};
  std::chrono::milliseconds health_poll{2000};
  std::chrono::milliseconds tool_timeout{60000};  // config, ps
  bool render_check = true;  // render with the tool's `config` before compose-up
  // What this project's file may use beyond an ordinary container
  // (control.json's compose.projects.<project>); the caller fills it per call.
  ComposeAllowance allowance;
  std::shared_ptr<Cancellation> cancel;  // cancelled when the daemon stops
};

inline constexpr std::size_t kMaxComposeBytes = 1024 * 1024;

struct ComposeOutcome {
  bool ok = false;
  std::string phase;   // "done", or the phase that failed
  std::string detail;  // a sentence or two; never an env value
};

// Called (on the worker) as each phase ends, and for the rollback.
using PhaseObserver =
    std::function<void(std::string_view phase, bool ok, const std::string& detail)>;

ComposeOutcome run_compose_snapshot(const ComposeSettings& settings, const std::string& project,
                                    const std::string& yaml, const PhaseObserver& observe);

// Compose's own rule for project names: ^[a-z0-9][a-z0-9_-]*$, at most 63.
Result<void> validate_project_name(std::string_view project);

struct ContainerInfo {
  std::string id;  // Docker's ID, Podman's Id: a recreated container has a new one
  std::string name;
  std::string service;  // compose's service label; empty outside compose
  std::string project;
  std::string state;             // running, exited, created, …
  std::string health;            // healthy, unhealthy, starting, or empty
  std::optional<int> exit_code;  // of an exited container, where the tool says
};

// `compose ps --format json` or `podman|docker ps --format json`: a JSON
// array or JSON lines, in Docker's or Podman's field names.
Result<std::vector<ContainerInfo>> parse_ps_output(std::string_view text);

// <command> -p <project> -f <file> <args…>. No --env-file: Debian 12's
// podman-compose (1.0.3) refuses it. The values reach the tool through its
// environment instead (compose_environment), which every compose tool reads
// for interpolation.
// `up -d --force-recreate --remove-orphans`: every service is made again from
// the file being applied. Debian 12's podman-compose (1.0.3) keeps a running
// container whatever changed (its config-hash label is the constant 123), and
// the health phase trusts only containers that this apply created, so a
// tool's own change detection is never relied on (docs/control.md).
const std::vector<std::string>& compose_up_args();

// Where a program would be found: a path as it is, a bare name in the
// directories the tools' PATH lists. Empty when it is not installed.
std::string find_program(const std::string& name);

std::vector<std::string> compose_argv(const ComposeSettings& settings, const std::string& project,
                                      const std::string& file,
                                      const std::vector<std::string>& args);

// PATH, HOME, LANG and XDG_RUNTIME_DIR for the tool's user, and
// CONTAINER_HOST when one is set; nothing of the daemon's own environment.
std::vector<std::string> clean_environment(const std::optional<UserInfo>& user,
                                           const std::string& container_host = {});

// clean_environment plus, from env, each variable the file interpolates:
// exactly the values the guards checked.
std::vector<std::string> compose_environment(const std::optional<UserInfo>& user,
                                             std::string_view compose_text,
                                             const envfile::EnvFile& env,
                                             const std::string& container_host = {});

// Replaces every value of env (4 bytes or longer) in text with [redacted]:
// tool output goes into replies and logs, env values never do.
std::string scrub(std::string text, const envfile::EnvFile& env);

// The guards of steps 2–4 for a project's file in service (containers.restart
// goes through them too). A failure's message begins with the phase that
// failed ("env-unresolved-vars: …").
Result<void> guard_project(const ComposeSettings& settings, const std::string& project);

std::string project_file(const ComposeSettings& settings, const std::string& project);

}  // namespace secbox::control
