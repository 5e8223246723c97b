#include "control/compose_policy.hpp"

#include <filesystem>

#include <yaml-cpp/yaml.h>

namespace secbox::control {
namespace {

namespace fs = std::filesystem;

// Everything the policy refuses, a file it cannot check included.
constexpr Errc kCode = Errc::forbidden;

// Keys whose value "host" shares one of the host's namespaces.
const char* const kHostNamespaceKeys[] = {"network_mode", "pid", "ipc", "uts", "userns_mode", "cgroupns_mode"};
// Keys that are privileged whatever their value.
const char* const kAlwaysPrivileged[] = {"cap_add", "devices", "device_cgroup_rules", "security_opt"};

std::string scalar(const YAML::Node& n) { return n && n.IsScalar() ? n.Scalar() : std::string(); }

bool mentions_variable(const std::string& v) { return v.find('$') != std::string::npos; }

class Checker {
 public:
  Checker(const std::string& project_dir, const ComposeAllowance& a, const std::string& project)
      : dir_(fs::path(project_dir).lexically_normal().string()), allowance_(a), project_(project) {
    while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  }

  Result<void> service(const std::string& name, const YAML::Node& def, int depth = 0) {
    // YAML merge keys (`<<: *base`): compose merges them, yaml-cpp does not,
    // so what they bring in is checked as the service's own.
    if (auto merged = def["<<"]; merged && depth < 8) {
      if (merged.IsMap()) {
        if (auto r = service(name, merged, depth + 1); !r) return r;
      }
      if (merged.IsSequence()) {
        for (const auto& m : merged) {
          if (!m.IsMap()) continue;
          if (auto r = service(name, m, depth + 1); !r) return r;
        }
      }
    }
    if (auto ext = def["extends"]; ext && ext.IsMap() && ext["file"]) {
      return Error{kCode, name.substr(0, 64) + " extends a service of another file, which the box cannot check"};
    }
    if (auto p = def["privileged"]; p) {
      const std::string v = scalar(p);
      if (v != "false" && v != "False" && v != "no") {
        if (auto r = need(name, "privileged", "privileged: " + shown(v)); !r) return r;
      }
    }
    for (const char* key : kHostNamespaceKeys) {
      const std::string v = scalar(def[key]);
      if (v == "host" || mentions_variable(v)) {
        if (auto r = need(name, key, std::string(key) + ": " + shown(v)); !r) return r;
      }
    }
    for (const char* key : kAlwaysPrivileged) {
      if (def[key]) {
        if (auto r = need(name, key, key); !r) return r;
      }
    }
    if (auto vols = def["volumes"]; vols && vols.IsSequence()) {
      for (const auto& v : vols) {
        std::optional<std::string> source;
        if (v.IsScalar()) {
          const std::string spec = v.Scalar();
          const auto colon = spec.find(':');
          if (colon == std::string::npos) continue;  // an anonymous volume
          source = spec.substr(0, colon);
          if (!is_path(*source)) source.reset();  // a named volume
        } else if (v.IsMap()) {
          const std::string type = scalar(v["type"]);
          if (type == "bind" || type == "npipe" || mentions_variable(type)) source = scalar(v["source"]);
        }
        if (source) {
          if (auto r = host_path(name, "volumes", *source); !r) return r;
        }
      }
    }
    if (auto files = def["env_file"]; files) {
      std::vector<std::string> paths;
      if (files.IsScalar()) paths.push_back(files.Scalar());
      if (files.IsSequence()) {
        for (const auto& f : files) paths.push_back(f.IsMap() ? scalar(f["path"]) : scalar(f));
      }
      for (const auto& p : paths) {
        if (auto r = host_path(name, "env_file", p); !r) return r;
      }
    }
    return ok();
  }

  // A top-level volume with a driver's device (`o: bind`, `device: /`) mounts
  // the host as surely as a bind.
  Result<void> top_level_volume(const std::string& name, const YAML::Node& def) {
    if (!def || !def.IsMap()) return ok();
    auto opts = def["driver_opts"];
    if (!opts || !opts.IsMap()) return ok();
    const std::string device = scalar(opts["device"]);
    if (!device.empty()) return host_path("volume " + name, "volumes", device, /*relative_ok=*/false);
    return need("volume " + name, "volumes", "driver_opts");
  }

 private:
  static bool is_path(const std::string& s) {
    return !s.empty() && (s[0] == '/' || s[0] == '.' || s[0] == '~' || mentions_variable(s));
  }

  static std::string shown(const std::string& v) { return v.size() > 40 ? v.substr(0, 40) + "…" : v; }

  Result<void> need(const std::string& where, std::string_view key, const std::string& what) {
    if (allowance_.allow.count(key)) return ok();
    return Error{kCode, where.substr(0, 64) + " asks for " + what + ", which control.json does not allow for project " +
                            project_ + " (compose.projects." + project_ + ".allow must list \"" + std::string(key) +
                            "\")"};
  }

  Result<void> host_path(const std::string& where, std::string_view key, const std::string& source,
                         bool relative_ok = true) {
    if (mentions_variable(source)) {
      return Error{kCode, where.substr(0, 64) + ": the " + std::string(key) + " path \"" + shown(source) +
                              "\" is built from a variable, so the box cannot tell what it mounts"};
    }
    std::string path;
    if (!source.empty() && source[0] == '/') {
      path = fs::path(source).lexically_normal().string();
    } else if (!source.empty() && source[0] == '~') {
      path = "~";  // the compose tool's home: a host path in any case
    } else if (relative_ok) {
      path = (fs::path(dir_) / source).lexically_normal().string();
    } else {
      path = source;
    }
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    if (path == dir_ || path.rfind(dir_ + "/", 0) == 0) return ok();  // inside the project's folder
    if (auto r = need(where, key, std::string(key) + " from the host path " + shown(source)); !r) return r;
    if (!allowance_.mounts) return ok();
    for (const auto& m : *allowance_.mounts) {
      std::string allowed = fs::path(m).lexically_normal().string();
      while (allowed.size() > 1 && allowed.back() == '/') allowed.pop_back();
      if (path == allowed || allowed == "/" || path.rfind(allowed + "/", 0) == 0) return ok();
    }
    return Error{kCode, where.substr(0, 64) + " mounts the host path " + shown(source) +
                            ", which is not under compose.projects." + project_ + ".mounts in control.json"};
  }

  std::string dir_;
  const ComposeAllowance& allowance_;
  const std::string& project_;
};

}  // namespace

const std::set<std::string, std::less<>>& privileged_compose_keys() {
  static const std::set<std::string, std::less<>> keys = {
      "privileged",   "network_mode", "pid",     "ipc",     "uts",
      "userns_mode",  "cgroupns_mode", "cap_add", "devices", "device_cgroup_rules",
      "security_opt", "volumes",      "env_file"};
  return keys;
}

Result<void> check_compose_privileges(std::string_view yaml, const std::string& project_dir,
                                      const ComposeAllowance& allowance, const std::string& project) {
  Checker check(project_dir, allowance, project);
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    if (!root.IsMap()) return Error{kCode, "the file is not a YAML mapping"};
    if (auto services = root["services"]; services && services.IsMap()) {
      for (const auto& entry : services) {
        if (!entry.second.IsMap()) continue;
        if (auto r = check.service("service " + entry.first.as<std::string>(), entry.second); !r) return r;
      }
    }
    if (root["include"]) return Error{kCode, "the file includes other files, which the box cannot check"};
    if (auto volumes = root["volumes"]; volumes && volumes.IsMap()) {
      for (const auto& entry : volumes) {
        if (auto r = check.top_level_volume(entry.first.as<std::string>(), entry.second); !r) return r;
      }
    }
  } catch (const YAML::Exception& e) {
    return Error{kCode, "the file's structure cannot be read: " + e.msg};
  }
  return ok();
}

}  // namespace secbox::control
