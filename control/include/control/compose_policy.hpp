#pragma once
// What a compose file may ask for beyond an ordinary container. A compose
// file is root on the box: `privileged: true`, a bind mount of `/`,
// `network_mode: host`, `pid: host`, added capabilities or devices each give a
// container the host. The site decides, per project, which of these a file
// may use (control.json's "compose" section, docs/control.md); the cloud's
// file cannot widen it. Value types; checked in the write phase of §7.3,
// before anything is written.
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace secbox::control {

// One project's allowance. `allow` holds compose keys from
// privileged_compose_keys(); `mounts` (when present) lists the host paths that
// `volumes` (and `env_file`) may reach outside the project's own folder: a
// path is allowed when it is one of them or lies under one.
struct ComposeAllowance {
  std::set<std::string, std::less<>> allow;
  std::optional<std::vector<std::string>> mounts;
};

// privileged, network_mode, pid, ipc, uts, userns_mode, cgroupns_mode (each
// "host"), cap_add, devices, device_cgroup_rules, security_opt, volumes (a
// host path outside the project folder), env_file (likewise).
const std::set<std::string, std::less<>>& privileged_compose_keys();

// Refuses a file that uses a privileged option its allowance does not list,
// naming the service and the key (error code "privileged-option"). A value
// built from a variable (`${…}`) cannot be judged before interpolation and
// counts as the privileged case. `project_dir` is where relative paths
// resolve (compose resolves them against the file's folder).
Result<void> check_compose_privileges(std::string_view yaml, const std::string& project_dir,
                                      const ComposeAllowance& allowance, const std::string& project);

}  // namespace secbox::control
