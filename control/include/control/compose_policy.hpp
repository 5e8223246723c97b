#pragma once
// What a compose file may ask for, and the file the compose tool is given.
// A compose file is root on a box whose runtime is root's: `privileged: true`,
// a bind mount of `/`, `network_mode: host`, an added capability or device,
// a secret read from `/etc/shadow` each give a container the host. The site
// decides, per project, which of these a file may use (control.json's
// "compose" section, docs/control.md); the cloud's file cannot widen it.
//
// The file is read once, strictly (strict_yaml: no duplicate keys, anchors,
// merges, tags or ambiguous scalars), every key is checked against an
// allow-list of what compose may use with its type, the privileged ones
// against the allowance, and the tool is given the canonical file written
// from what was checked — never the cloud's bytes. Relative host paths are
// written out absolute. Value types; any thread; checked in the write phase
// of §7.3, before anything is written.
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace secbox::control {

// One project's allowance. `allow` holds keys from privileged_compose_keys();
// `mounts` (when present) lists the host paths that volumes, devices,
// env_file, secrets and configs may reach outside the project's own folder: a
// path is allowed when it is one of them or lies under one.
struct ComposeAllowance {
  std::set<std::string, std::less<>> allow;
  std::optional<std::vector<std::string>> mounts;
};

// privileged, network_mode, pid, ipc, uts, userns_mode, cgroupns_mode (any
// value that shares a namespace outside the project), cap_add, devices,
// device_cgroup_rules, security_opt, sysctls, logging (options or a driver
// other than the local ones), volumes, env_file, secrets, configs (a host
// path outside the project's folder).
const std::set<std::string, std::less<>>& privileged_compose_keys();

// Every key a service may have (the allow-list); anything else is refused.
const std::set<std::string, std::less<>>& compose_service_keys();

struct ServiceSpec {
  std::string name;
  bool has_healthcheck = false;
};

// A host path the file mounts or reads, absolute and normalised, and the
// folder that allowed it (the project's folder or an allowed mount): nothing
// below `allowed_by` on the way to it may be a link when the file is applied.
struct HostPath {
  std::string path;
  std::string allowed_by;
  std::string where;  // "service cam, volumes"
};

struct CheckedCompose {
  std::string canonical;              // the file the tool is given
  std::vector<ServiceSpec> services;  // what `up -d` starts (no profiles, not zero replicas)
  std::vector<HostPath> host_paths;
};

// Errc::invalid for a file that is not strict YAML or not of compose's shape
// (an unknown key named, a value of the wrong type, with its line);
// Errc::forbidden for a privileged option the allowance does not list,
// naming the service and the key. A value built from a variable (`${…}`)
// cannot be judged before interpolation and counts as the privileged case.
// `project_dir` is where relative paths resolve (the file's folder).
Result<CheckedCompose> check_compose(std::string_view yaml, const std::string& project_dir,
                                     const ComposeAllowance& allowance, const std::string& project);

// At apply time, just before the tool runs: no component of a host path
// below the folder that allowed it is a link (an earlier container of the
// project can turn `./data` into a link to `/`; the kernel follows it when it
// mounts). Errc::forbidden naming the link.
Result<void> check_host_paths_now(const std::vector<HostPath>& paths);

}  // namespace secbox::control
