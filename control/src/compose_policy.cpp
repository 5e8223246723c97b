#include "control/compose_policy.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <utility>

#include "strict_yaml.hpp"

namespace secbox::control {
namespace {

namespace fs = std::filesystem;
using yaml::Node;
using Kind = Node::Kind;

// Thrown inside the checker, caught once at its entry: the first refusal wins.
struct Refusal {
  Error error;
};

[[noreturn]] void refuse(Errc code, const Node& at, const std::string& what) {
  throw Refusal{Error{code, "line " + std::to_string(at.line) + ": " + what}};
}

std::string shown(const std::string& v) { return v.size() > 40 ? v.substr(0, 40) + "…" : v; }
bool mentions_variable(const std::string& v) { return v.find('$') != std::string::npos; }

Node make_string(std::string text, int line) {
  Node n;
  n.kind = Kind::string;
  n.text = std::move(text);
  n.line = line;
  return n;
}

std::string normal(const std::string& path) {
  std::string p = fs::path(path).lexically_normal().string();
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

bool under(const std::string& path, const std::string& folder) {
  return path == folder || folder == "/" || path.rfind(folder + "/", 0) == 0;
}

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 128 || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-')
      return false;
  }
  return true;
}

// A value's shape: a function from the input node (and where it is, for
// messages) to the node written to the canonical file.
class Checker;
using Shape = std::function<Node(Checker&, const Node&, const std::string&)>;
using Fields = std::vector<std::pair<std::string, Shape>>;

class Checker {
 public:
  Checker(const std::string& project_dir, const ComposeAllowance& a, const std::string& project)
      : dir_(normal(project_dir)), allowance_(a), project_(project) {}

  CheckedCompose run(const Node& root);

  // --- shapes -------------------------------------------------------------
  static Node text(Checker&, const Node& n, const std::string& where) {
    if (n.kind != Kind::string) refuse(Errc::invalid, n, where + " must be text");
    return n;
  }
  static Node scalar(Checker&, const Node& n, const std::string& where) {
    if (n.kind != Kind::string && n.kind != Kind::integer && n.kind != Kind::number) {
      refuse(Errc::invalid, n, where + " must be text or a number");
    }
    return n;
  }
  static Node integer(Checker&, const Node& n, const std::string& where) {
    if (n.kind != Kind::integer) refuse(Errc::invalid, n, where + " must be a whole number");
    return n;
  }
  static Node boolean(Checker&, const Node& n, const std::string& where) {
    if (n.kind != Kind::boolean) refuse(Errc::invalid, n, where + " must be true or false");
    return n;
  }
  static Node env_value(Checker&, const Node& n, const std::string& where) {
    if (!n.is_scalar()) refuse(Errc::invalid, n, where + " must be a single value");
    return n;
  }
  static Shape list(Shape item) {
    return [item](Checker& c, const Node& n, const std::string& where) {
      if (!n.is_seq()) refuse(Errc::invalid, n, where + " must be a list");
      Node out = n;
      for (std::size_t i = 0; i < n.items.size(); ++i) {
        out.items[i] = item(c, n.items[i], where + "[" + std::to_string(i) + "]");
      }
      return out;
    };
  }
  static Shape text_or_list() {
    return [](Checker& c, const Node& n, const std::string& where) {
      if (n.is_seq()) return list(scalar)(c, n, where);
      return scalar(c, n, where);
    };
  }
  // A mapping of names to one shape (environment, labels, sysctls …).
  static Shape map_of(Shape value) {
    return [value](Checker& c, const Node& n, const std::string& where) {
      if (!n.is_map()) refuse(Errc::invalid, n, where + " must be a mapping");
      Node out = n;
      for (auto& [k, v] : out.entries) v = value(c, v, where + "." + shown(k));
      return out;
    };
  }
  // environment, labels: a mapping of values, or a list of "NAME=value".
  static Shape map_or_list() {
    return [](Checker& c, const Node& n, const std::string& where) {
      if (n.is_seq()) return list(text)(c, n, where);
      return map_of(env_value)(c, n, where);
    };
  }
  static Shape fields(Fields known) {
    return [known](Checker& c, const Node& n, const std::string& where) {
      return c.mapping(n, where, known);
    };
  }
  static Shape one_of(std::vector<std::string> values) {
    return [values](Checker& c, const Node& n, const std::string& where) {
      Node out = text(c, n, where);
      if (mentions_variable(n.text)) return out;
      for (const auto& v : values) {
        if (n.text == v) return out;
      }
      std::string all;
      for (const auto& v : values) all += (all.empty() ? "" : ", ") + v;
      refuse(Errc::invalid, n, where + " is \"" + shown(n.text) + "\"; it may be one of " + all);
    };
  }

  Node mapping(const Node& n, const std::string& where, const Fields& known) {
    if (!n.is_map()) refuse(Errc::invalid, n, where + " must be a mapping");
    Node out = n;
    out.entries.clear();
    for (const auto& [key, value] : n.entries) {
      const Shape* shape = nullptr;
      for (const auto& [name, s] : known) {
        if (name == key) shape = &s;
      }
      if (!shape) {
        std::string names;
        for (const auto& f : known) names += (names.empty() ? "" : ", ") + f.first;
        refuse(Errc::invalid, value,
               where + " has the key \"" + shown(key) +
                   "\", which the box does not allow there (it allows " + names + ")");
      }
      out.entries.emplace_back(key, (*shape)(*this, value, where + "." + key));
    }
    return out;
  }

  // --- privilege ------------------------------------------------------------
  void need(const Node& at, const std::string& where, std::string_view key,
            const std::string& what) {
    if (allowance_.allow.count(key)) return;
    refuse(Errc::forbidden, at,
           where + " asks for " + what + ", which control.json does not allow for project " +
               project_ + " (compose.projects." + project_ + ".allow must list \"" +
               std::string(key) + "\")");
  }

  // A host path the file reads or mounts: judged after the tool's own
  // resolution (relative to the file's folder) and given back absolute.
  std::string host_path(const Node& at, const std::string& where, std::string_view key,
                        const std::string& source) {
    if (mentions_variable(source)) {
      refuse(Errc::forbidden, at,
             where + ": the path \"" + shown(source) +
                 "\" is built from a variable, so the box cannot tell what it reaches");
    }
    if (source.empty()) refuse(Errc::invalid, at, where + ": an empty path");
    if (source[0] == '~') {
      refuse(Errc::forbidden, at,
             where + ": the path \"" + shown(source) + "\" is in a home folder; write it absolute");
    }
    const std::string path = normal(source[0] == '/' ? source : dir_ + "/" + source);
    if (under(path, dir_) && dir_ != "/") {
      paths_.push_back({path, dir_, where});
      return path;
    }
    need(at, where, key, std::string(key) + " from the host path " + shown(source));
    if (!allowance_.mounts) {
      paths_.push_back({path, path, where});
      return path;
    }
    for (const auto& m : *allowance_.mounts) {
      const std::string allowed = normal(m);
      if (under(path, allowed)) {
        paths_.push_back({path, allowed, where});
        return path;
      }
    }
    refuse(Errc::forbidden, at,
           where + " reaches the host path " + shown(source) +
               ", which is not under compose.projects." + project_ + ".mounts in control.json");
  }

  // network_mode, pid, ipc, uts, userns_mode, cgroupns_mode: a namespace of
  // the container's own, or one of this file's services, needs nothing.
  Shape namespace_mode(std::string key, std::vector<std::string> safe) {
    return [key, safe](Checker& c, const Node& n, const std::string& where) {
      Node out = text(c, n, where);
      bool fine = !mentions_variable(n.text);
      if (fine) {
        fine = false;
        for (const auto& s : safe) fine = fine || n.text == s;
        if (n.text.rfind("service:", 0) == 0 && c.service_names_.count(n.text.substr(8)))
          fine = true;
      }
      if (!fine) c.need(n, where, key, key + ": " + shown(n.text));
      return out;
    };
  }

  Shape privileged_list(std::string key) {
    return [key](Checker& c, const Node& n, const std::string& where) {
      Node out = list(scalar)(c, n, where);
      if (!n.items.empty()) c.need(n, where, key, key);
      return out;
    };
  }

  Node service_volume(const Node& v, const std::string& where);
  Node devices(const Node& n, const std::string& where);
  Node env_file(const Node& n, const std::string& where);
  Node logging(const Node& n, const std::string& where);
  Node service(const std::string& name, const Node& def);
  Node top_level_volume(const std::string& name, const Node& def);
  Node top_level_file(const std::string& kind, const std::string& name, const Node& def);

  std::string dir_;
  const ComposeAllowance& allowance_;
  const std::string& project_;
  std::set<std::string, std::less<>> service_names_;
  std::vector<HostPath> paths_;
};

const std::set<std::string, std::less<>> kVolumeModes = {"ro",     "rw",      "z",       "Z",
                                                         "nocopy", "private", "rprivate"};

Node Checker::service_volume(const Node& v, const std::string& where) {
  if (v.kind == Kind::string) {
    const std::string& spec = v.text;
    std::vector<std::string> parts;
    for (std::size_t start = 0;;) {
      const auto colon = spec.find(':', start);
      parts.push_back(
          spec.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    if (parts.size() > 3)
      refuse(Errc::invalid, v, where + ": \"" + shown(spec) + "\" is not SOURCE:TARGET[:MODE]");
    if (parts.size() == 3) {
      for (std::size_t start = 0; start <= parts[2].size();) {
        const auto comma = parts[2].find(',', start);
        const std::string mode =
            parts[2].substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (!kVolumeModes.count(mode)) {
          refuse(Errc::forbidden, v,
                 where + ": the mount option \"" + shown(mode) +
                     "\" is not allowed (ro, rw, z, Z, nocopy, private, rprivate are)");
        }
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    }
    if (parts.size() == 1) return v;  // an anonymous volume
    const std::string& source = parts[0];
    const bool is_path =
        !source.empty() && (source[0] == '/' || source[0] == '.' || source[0] == '~' ||
                            mentions_variable(source) || source.find('/') != std::string::npos);
    if (!is_path) {
      if (!valid_name(source))
        refuse(Errc::invalid, v, where + ": \"" + shown(source) + "\" is not a volume name");
      return v;
    }
    std::string out = host_path(v, where, "volumes", source);
    for (std::size_t i = 1; i < parts.size(); ++i) out += ":" + parts[i];
    return make_string(out, v.line);
  }
  if (!v.is_map()) refuse(Errc::invalid, v, where + " must be text or a mapping");
  Node out = mapping(v, where,
                     {{"type", one_of({"bind", "volume", "tmpfs"})},
                      {"source", text},
                      {"target", text},
                      {"read_only", boolean},
                      {"bind", fields({{"propagation", one_of({"private", "rprivate"})},
                                       {"create_host_path", boolean},
                                       {"selinux", one_of({"z", "Z"})}})},
                      {"volume", fields({{"nocopy", boolean}})},
                      {"tmpfs", fields({{"size", scalar}, {"mode", integer}})},
                      {"consistency", text}});
  const Node* type = out.find("type");
  if (!type) refuse(Errc::invalid, v, where + " has no type (bind, volume or tmpfs)");
  if (mentions_variable(type->text))
    refuse(Errc::forbidden, *type, where + ".type is built from a variable");
  for (auto& [k, value] : out.entries) {
    if (k != "source") continue;
    if (type->text == "bind") {
      value = make_string(host_path(value, where + ".source", "volumes", value.text), value.line);
    } else if (type->text == "volume" && !valid_name(value.text)) {
      refuse(Errc::invalid, value,
             where + ".source \"" + shown(value.text) + "\" is not a volume name");
    }
  }
  if (type->text == "bind" && !out.find("source"))
    refuse(Errc::invalid, v, where + ": a bind mount has no source");
  return out;
}

Node Checker::devices(const Node& n, const std::string& where) {
  Node out = list(text)(*this, n, where);
  if (n.items.empty()) return out;
  need(n, where, "devices", "devices");
  for (auto& d : out.items) {
    const std::string host = d.text.substr(0, d.text.find(':'));
    if (host.empty() || host[0] != '/') {
      refuse(Errc::forbidden, d,
             where + ": the device \"" + shown(d.text) + "\" is not an absolute host path");
    }
    if (allowance_.mounts) {
      bool fine = false;
      for (const auto& m : *allowance_.mounts) fine = fine || under(normal(host), normal(m));
      if (!fine || mentions_variable(host)) {
        refuse(Errc::forbidden, d,
               where + ": the device " + shown(host) + " is not under compose.projects." +
                   project_ + ".mounts in control.json");
      }
    }
  }
  return out;
}

Node Checker::env_file(const Node& n, const std::string& where) {
  auto one = [&](const Node& item, const std::string& at) -> Node {
    if (item.kind == Kind::string)
      return make_string(host_path(item, at, "env_file", item.text), item.line);
    Node out = mapping(item, at, {{"path", text}, {"required", boolean}});
    const Node* path = out.find("path");
    if (!path) refuse(Errc::invalid, item, at + " has no path");
    for (auto& [k, v] : out.entries) {
      if (k == "path") v = make_string(host_path(v, at + ".path", "env_file", v.text), v.line);
    }
    return out;
  };
  if (n.kind == Kind::string) return one(n, where);
  if (!n.is_seq()) refuse(Errc::invalid, n, where + " must be a path or a list of paths");
  Node out = n;
  for (std::size_t i = 0; i < n.items.size(); ++i)
    out.items[i] = one(n.items[i], where + "[" + std::to_string(i) + "]");
  return out;
}

// Local drivers without options need nothing; options (a log file's path
// among them) or another driver are the site's to allow.
Node Checker::logging(const Node& n, const std::string& where) {
  Node out = mapping(n, where, {{"driver", text}, {"options", map_of(scalar)}});
  const Node* driver = out.find("driver");
  const Node* options = out.find("options");
  const bool local = !driver || driver->text == "journald" || driver->text == "k8s-file" ||
                     driver->text == "json-file" || driver->text == "none";
  if (!local || (options && !options->entries.empty())) {
    need(n, where, "logging",
         driver ? "the logging driver " + shown(driver->text) + (options ? " with options" : "")
                : "logging options");
  }
  return out;
}

Node Checker::service(const std::string& name, const Node& def) {
  const std::string where = "service " + shown(name);
  auto self = this;
  auto by = [self](Node (Checker::*f)(const Node&, const std::string&)) -> Shape {
    return [self, f](Checker&, const Node& n, const std::string& w) { return (self->*f)(n, w); };
  };
  const Shape privileged = [](Checker& c, const Node& n, const std::string& w) {
    Node out = boolean(c, n, w);
    if (n.text == "true") c.need(n, w, "privileged", "privileged: true");
    return out;
  };
  const Shape volumes = [](Checker& c, const Node& n, const std::string& w) {
    if (!n.is_seq()) refuse(Errc::invalid, n, w + " must be a list");
    Node out = n;
    for (std::size_t i = 0; i < n.items.size(); ++i) {
      out.items[i] = c.service_volume(n.items[i], w + "[" + std::to_string(i) + "]");
    }
    return out;
  };
  const Shape file_refs = [](Checker& c, const Node& n, const std::string& w) {
    if (!n.is_seq()) refuse(Errc::invalid, n, w + " must be a list");
    Node out = n;
    for (std::size_t i = 0; i < n.items.size(); ++i) {
      const std::string at = w + "[" + std::to_string(i) + "]";
      out.items[i] = n.items[i].kind == Kind::string ? n.items[i]
                                                     : c.mapping(n.items[i], at,
                                                                 {{"source", text},
                                                                  {"target", text},
                                                                  {"uid", scalar},
                                                                  {"gid", scalar},
                                                                  {"mode", integer}});
    }
    return out;
  };
  const Shape ports = list([](Checker& c, const Node& n, const std::string& w) {
    if (n.is_map()) {
      return c.mapping(n, w,
                       {{"target", scalar},
                        {"published", scalar},
                        {"protocol", one_of({"tcp", "udp"})},
                        {"host_ip", text},
                        {"mode", text}});
    }
    return scalar(c, n, w);
  });
  const Shape networks = [](Checker& c, const Node& n, const std::string& w) {
    if (n.is_seq()) return list(text)(c, n, w);
    return map_of([](Checker& c2, const Node& v, const std::string& w2) {
      if (v.kind == Kind::null) return v;
      return c2.mapping(v, w2,
                        {{"aliases", list(text)}, {"ipv4_address", text}, {"ipv6_address", text}});
    })(c, n, w);
  };
  const Shape depends_on = [](Checker& c, const Node& n, const std::string& w) {
    if (n.is_seq()) return list(text)(c, n, w);
    return map_of(fields({{"condition", one_of({"service_started", "service_healthy",
                                                "service_completed_successfully"})},
                          {"restart", boolean},
                          {"required", boolean}}))(c, n, w);
  };
  const Shape extra_hosts = [](Checker& c, const Node& n, const std::string& w) {
    if (n.is_seq()) return list(text)(c, n, w);
    return map_of(text)(c, n, w);
  };
  const Shape ulimits = map_of([](Checker& c, const Node& n, const std::string& w) {
    if (n.is_map()) return c.mapping(n, w, {{"soft", integer}, {"hard", integer}});
    return integer(c, n, w);
  });
  const Shape sysctls = [](Checker& c, const Node& n, const std::string& w) {
    Node out = n.is_seq() ? list(text)(c, n, w) : map_of(scalar)(c, n, w);
    if (!n.items.empty() || !n.entries.empty()) c.need(n, w, "sysctls", "sysctls");
    return out;
  };
  const Shape healthcheck = fields({{"test", text_or_list()},
                                    {"interval", scalar},
                                    {"timeout", scalar},
                                    {"retries", integer},
                                    {"start_period", scalar},
                                    {"start_interval", scalar},
                                    {"disable", boolean}});
  const Shape deploy = fields(
      {{"replicas", integer},
       {"resources",
        fields({{"limits", fields({{"cpus", scalar}, {"memory", scalar}, {"pids", integer}})},
                {"reservations", fields({{"cpus", scalar}, {"memory", scalar}})}})},
       {"restart_policy", fields({{"condition", one_of({"none", "on-failure", "any"})},
                                  {"delay", scalar},
                                  {"max_attempts", integer},
                                  {"window", scalar}})}});
  const Fields known = {
      {"image", text},
      {"container_name", text},
      {"hostname", text},
      {"domainname", text},
      {"command", text_or_list()},
      {"entrypoint", text_or_list()},
      {"environment", map_or_list()},
      {"env_file", by(&Checker::env_file)},
      {"labels", map_or_list()},
      {"restart", text},
      {"ports", ports},
      {"expose", list(scalar)},
      {"volumes", volumes},
      {"tmpfs", text_or_list()},
      {"networks", networks},
      {"network_mode", namespace_mode("network_mode", {"bridge", "none"})},
      {"depends_on", depends_on},
      {"links", list(text)},
      {"user", scalar},
      {"working_dir", text},
      {"healthcheck", healthcheck},
      {"stop_grace_period", scalar},
      {"stop_signal", text},
      {"shm_size", scalar},
      {"mem_limit", scalar},
      {"memswap_limit", scalar},
      {"mem_reservation", scalar},
      {"mem_swappiness", integer},
      {"cpus", scalar},
      {"cpu_shares", integer},
      {"cpu_quota", integer},
      {"cpu_period", integer},
      {"cpuset", text},
      {"pids_limit", integer},
      {"ulimits", ulimits},
      {"read_only", boolean},
      {"tty", boolean},
      {"stdin_open", boolean},
      {"init", boolean},
      {"extra_hosts", extra_hosts},
      {"dns", text_or_list()},
      {"dns_search", text_or_list()},
      {"dns_opt", list(text)},
      {"cap_drop", list(text)},
      {"group_add", list(scalar)},
      {"profiles", list(text)},
      {"deploy", deploy},
      {"platform", text},
      {"pull_policy", one_of({"always", "never", "missing", "newer", "build", "if_not_present"})},
      {"secrets", file_refs},
      {"configs", file_refs},
      {"logging", by(&Checker::logging)},
      {"privileged", privileged},
      {"pid", namespace_mode("pid", {})},
      {"ipc", namespace_mode("ipc", {"private", "shareable", "none"})},
      {"uts", namespace_mode("uts", {})},
      {"userns_mode", namespace_mode("userns_mode", {})},
      {"cgroupns_mode", namespace_mode("cgroupns_mode", {"private"})},
      {"cap_add", privileged_list("cap_add")},
      {"devices", by(&Checker::devices)},
      {"device_cgroup_rules", privileged_list("device_cgroup_rules")},
      {"security_opt", privileged_list("security_opt")},
      {"sysctls", sysctls},
      {"oom_score_adj", integer},
  };
  if (!def.is_map()) refuse(Errc::invalid, def, where + " is not a mapping");
  return mapping(def, where, known);
}

// A top-level volume with a driver's device (`o: bind`, `device: /`) mounts
// the host as surely as a bind.
Node Checker::top_level_volume(const std::string& name, const Node& def) {
  const std::string where = "volume " + shown(name);
  if (def.kind == Kind::null) return def;
  Node out = mapping(def, where,
                     {{"driver", one_of({"local"})},
                      {"driver_opts", map_of(scalar)},
                      {"external", boolean},
                      {"name", text},
                      {"labels", map_or_list()}});
  for (auto& [k, v] : out.entries) {
    if (k != "driver_opts" || v.entries.empty()) continue;
    bool device = false;
    for (auto& [opt, value] : v.entries) {
      if (opt == "device") {
        // The volume driver resolves a relative device against its own
        // folder, not the project's: only an absolute path can be judged.
        if (value.text.empty() || (value.text[0] != '/' && !mentions_variable(value.text))) {
          refuse(
              Errc::forbidden, value,
              where + ".driver_opts.device \"" + shown(value.text) + "\" is not an absolute path");
        }
        value = make_string(host_path(value, where + ".driver_opts.device", "volumes", value.text),
                            value.line);
        device = true;
      }
    }
    if (!device) need(v, where, "volumes", "driver_opts");
  }
  return out;
}

Node Checker::top_level_file(const std::string& kind, const std::string& name, const Node& def) {
  const std::string where = kind.substr(0, kind.size() - 1) + " " + shown(name);
  Node out = mapping(def, where, {{"file", text}, {"external", boolean}, {"name", text}});
  for (auto& [k, v] : out.entries) {
    if (k == "file") v = make_string(host_path(v, where + ".file", kind, v.text), v.line);
  }
  return out;
}

CheckedCompose Checker::run(const Node& root) {
  if (!root.is_map()) refuse(Errc::invalid, root, "the file is not a YAML mapping");
  const Node* services = root.find("services");
  if (!services || !services->is_map() || services->entries.empty()) {
    refuse(Errc::invalid, services ? *services : root, "the file has no `services` mapping");
  }
  for (const auto& [name, def] : services->entries) {
    if (!valid_name(name))
      refuse(Errc::invalid, def, "\"" + shown(name) + "\" is not a service name");
    service_names_.insert(name);
  }
  CheckedCompose checked;
  Node out = root;
  out.entries.clear();
  for (const auto& [key, value] : root.entries) {
    if (key.rfind("x-", 0) == 0) continue;  // extension fields: nothing reads them; left out
    if (key == "version") {
      out.entries.emplace_back(key, scalar(*this, value, "version"));
    } else if (key == "services") {
      Node s = value;
      for (auto& [name, def] : s.entries) def = service(name, def);
      out.entries.emplace_back(key, std::move(s));
    } else if (key == "networks") {
      out.entries.emplace_back(
          key, map_of([](Checker& c, const Node& n, const std::string& w) {
            if (n.kind == Kind::null) return n;
            return c.mapping(n, w,
                             {{"driver", one_of({"bridge"})},
                              {"internal", boolean},
                              {"external", boolean},
                              {"name", text},
                              {"labels", map_or_list()},
                              {"enable_ipv6", boolean},
                              {"attachable", boolean},
                              {"ipam", fields({{"driver", one_of({"default"})},
                                               {"config", list(fields({{"subnet", text},
                                                                       {"gateway", text},
                                                                       {"ip_range", text}}))}})}});
          })(*this, value, "networks"));
    } else if (key == "volumes") {
      if (!value.is_map()) refuse(Errc::invalid, value, "volumes must be a mapping");
      Node v = value;
      for (auto& [name, def] : v.entries) def = top_level_volume(name, def);
      out.entries.emplace_back(key, std::move(v));
    } else if (key == "secrets" || key == "configs") {
      if (!value.is_map()) refuse(Errc::invalid, value, key + " must be a mapping");
      Node v = value;
      for (auto& [name, def] : v.entries) def = top_level_file(key, name, def);
      out.entries.emplace_back(key, std::move(v));
    } else if (key == "include") {
      refuse(Errc::forbidden, value, "the file includes other files, which the box cannot check");
    } else {
      refuse(Errc::invalid, value,
             "the top-level key \"" + shown(key) +
                 "\" is not allowed (version, services, networks, volumes, secrets, configs and x- "
                 "fields are)");
    }
  }
  for (const auto& [name, def] : out.find("services")->entries) {
    if (def.find("profiles")) continue;  // not started by a plain `up`
    if (const Node* deploy = def.find("deploy")) {
      if (const Node* replicas = deploy->find("replicas"); replicas && replicas->text == "0")
        continue;
    }
    bool health = false;
    if (const Node* hc = def.find("healthcheck")) {
      const Node* disable = hc->find("disable");
      health = !(disable && disable->text == "true");
    }
    checked.services.push_back({name, health});
  }
  checked.canonical = yaml::write(out);
  checked.host_paths = std::move(paths_);
  return checked;
}

}  // namespace

const std::set<std::string, std::less<>>& privileged_compose_keys() {
  static const std::set<std::string, std::less<>> keys = {
      "privileged",   "network_mode",  "pid",     "ipc",     "uts",
      "userns_mode",  "cgroupns_mode", "cap_add", "devices", "device_cgroup_rules",
      "security_opt", "sysctls",       "logging", "volumes", "env_file",
      "secrets",      "configs"};
  return keys;
}

const std::set<std::string, std::less<>>& compose_service_keys() {
  static const std::set<std::string, std::less<>> keys = {"image",
                                                          "container_name",
                                                          "hostname",
                                                          "domainname",
                                                          "command",
                                                          "entrypoint",
                                                          "environment",
                                                          "env_file",
                                                          "labels",
                                                          "restart",
                                                          "ports",
                                                          "expose",
                                                          "volumes",
                                                          "tmpfs",
                                                          "networks",
                                                          "network_mode",
                                                          "depends_on",
                                                          "links",
                                                          "user",
                                                          "working_dir",
                                                          "healthcheck",
                                                          "stop_grace_period",
                                                          "stop_signal",
                                                          "shm_size",
                                                          "mem_limit",
                                                          "memswap_limit",
                                                          "mem_reservation",
                                                          "mem_swappiness",
                                                          "cpus",
                                                          "cpu_shares",
                                                          "cpu_quota",
                                                          "cpu_period",
                                                          "cpuset",
                                                          "pids_limit",
                                                          "ulimits",
                                                          "read_only",
                                                          "tty",
                                                          "stdin_open",
                                                          "init",
                                                          "extra_hosts",
                                                          "dns",
                                                          "dns_search",
                                                          "dns_opt",
                                                          "cap_drop",
                                                          "group_add",
                                                          "profiles",
                                                          "deploy",
                                                          "platform",
                                                          "pull_policy",
                                                          "secrets",
                                                          "configs",
                                                          "logging",
                                                          "privileged",
                                                          "pid",
                                                          "ipc",
                                                          "uts",
                                                          "userns_mode",
                                                          "cgroupns_mode",
                                                          "cap_add",
                                                          "devices",
                                                          "device_cgroup_rules",
                                                          "security_opt",
                                                          "sysctls",
                                                          "oom_score_adj"};
  return keys;
}

Result<CheckedCompose> check_compose(std::string_view text, const std::string& project_dir,
                                     const ComposeAllowance& allowance,
                                     const std::string& project) {
  auto root = yaml::parse(text);
  if (!root) return root.error();
  try {
    Checker checker(project_dir, allowance, project);
    return checker.run(root.value());
  } catch (const Refusal& r) {
    return r.error;
  }
}

Result<void> check_host_paths_now(const std::vector<HostPath>& paths) {
  for (const auto& p : paths) {
    if (p.path == p.allowed_by && p.allowed_by != "/") continue;  // allowed as it is, links and all
    struct stat st {};
    if (::lstat(p.allowed_by.c_str(), &st) == 0 && S_ISLNK(st.st_mode) && p.allowed_by != p.path) {
      return Error{Errc::forbidden, p.where + ": " + p.allowed_by + " is a link"};
    }
    std::string at = p.allowed_by == "/" ? std::string() : p.allowed_by;
    const std::string rest = p.path.substr(std::min(p.path.size(), p.allowed_by.size()));
    for (const auto& part : fs::path(rest)) {
      if (part == "/" || part.empty()) continue;
      at += "/" + part.string();
      if (::lstat(at.c_str(), &st) != 0) {
        if (errno == ENOENT) break;  // made by the tool, below a folder that is not a link
        return Error{Errc::io, p.where + ": cannot inspect " + at + ": " + std::strerror(errno)};
      }
      if (S_ISLNK(st.st_mode)) {
        return Error{Errc::forbidden,
                     p.where + ": " + at +
                         " is a link, which the kernel would follow when it mounts; the file "
                         "is not applied"};
      }
    }
  }
  return ok();
}

}  // namespace secbox::control
