#include "control/permissions.hpp"

#include <nlohmann/json.hpp>

#include "common/atomic_file.hpp"

namespace secbox::control {
namespace {

const std::map<std::string, std::set<std::string>>& known() {
  static const std::map<std::string, std::set<std::string>> k = {
      {"metrics", {"get"}},  {"containers", {"list", "restart"}}, {"units", {"status", "restart"}},
      {"journal", {"tail"}}, {"env", {"set", "unset"}},           {"jwt", {"rotate"}},
      {"update", {"apply"}},
  };
  return k;
}

}  // namespace

Result<Permissions> Permissions::parse(std::string_view text) {
  auto bad = [](const std::string& what) { return Error{Errc::invalid, "control.json: " + what}; };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    return bad("not valid JSON");
  }
  if (!j.is_object()) return bad("must be an object of sections");
  Permissions p;
  for (const auto& [name, body] : j.items()) {
    if (name == "compose") {
      if (!body.is_object()) return bad("compose must be an object");
      for (const auto& [key, value] : body.items()) {
        if (key != "projects") return bad("compose: unknown field \"" + key.substr(0, 40) + "\"");
        if (!value.is_object()) return bad("compose.projects must be an object of projects");
        for (const auto& [project, spec] : value.items()) {
          const std::string where = "compose.projects." + project.substr(0, 63);
          if (!spec.is_object()) return bad(where + " must be an object");
          ComposeAllowance a;
          for (const auto& [field, v] : spec.items()) {
            if (field != "allow" && field != "mounts")
              return bad(where + ": unknown field \"" + field.substr(0, 40) + "\"");
            if (!v.is_array()) return bad(where + "." + field + " must be an array of strings");
            if (field == "mounts") a.mounts.emplace();
            for (const auto& item : v) {
              if (!item.is_string())
                return bad(where + "." + field + " must be an array of strings");
              const auto text = item.get<std::string>();
              if (field == "allow") {
                if (!privileged_compose_keys().count(text)) {
                  std::string keys;
                  for (const auto& k : privileged_compose_keys())
                    keys += (keys.empty() ? "" : ", ") + k;
                  return bad(where + ".allow may hold only " + keys);
                }
                a.allow.insert(text);
              } else {
                if (text.empty() || text[0] != '/')
                  return bad(where + ".mounts must hold absolute paths");
                a.mounts->push_back(text);
              }
            }
          }
          p.compose_.emplace(project, std::move(a));
        }
      }
      continue;
    }
    auto k = known().find(name);
    if (k == known().end()) return bad("unknown section \"" + name.substr(0, 40) + "\"");
    if (!body.is_object()) return bad(name + " must be an object");
    Section s;
    if (!body.contains("allow") || !body["allow"].is_array())
      return bad(name + ".allow must be an array");
    for (const auto& op : body["allow"]) {
      if (!op.is_string() || !k->second.count(op.get<std::string>())) {
        std::string ops;
        for (const auto& o : k->second) ops += (ops.empty() ? "" : ", ") + o;
        return bad(name + ".allow may hold only " + ops);
      }
      s.allow.insert(op.get<std::string>());
    }
    for (const auto& [key, value] : body.items()) {
      if (key == "allow") continue;
      if (key != "names") return bad(name + ": unknown field \"" + key.substr(0, 40) + "\"");
      if (!value.is_array()) return bad(name + ".names must be an array of strings");
      s.names.emplace();
      for (const auto& n : value) {
        if (!n.is_string()) return bad(name + ".names must be an array of strings");
        s.names->insert(n.get<std::string>());
      }
    }
    p.sections_.emplace(name, std::move(s));
  }
  return p;
}

Result<Permissions> Permissions::load(const std::string& path) {
  auto text = read_file(path, 64 * 1024);
  if (!text) {
    if (text.error().code == Errc::not_found) return Permissions{};
    return Error{Errc::invalid, text.error().message};
  }
  return parse(text.value());
}

Result<void> Permissions::check(std::string_view section, std::string_view operation,
                                std::optional<std::string_view> name) const {
  auto it = sections_.find(section);
  if (it == sections_.end()) {
    return Error{Errc::unavailable, "node control's \"" + std::string(section) +
                                        "\" section is not enabled in control.json"};
  }
  const bool allowed = it->second.allow.count(operation) &&
                       !(name && it->second.names && !it->second.names->count(*name));
  if (!allowed) {
    return Error{Errc::forbidden, "control.json does not allow " + std::string(section) + "." +
                                      std::string(operation) + " here"};
  }
  return ok();
}

bool Permissions::names_explicitly(std::string_view section, std::string_view name) const {
  auto it = sections_.find(section);
  return it != sections_.end() && it->second.names && it->second.names->count(name) > 0;
}

ComposeAllowance Permissions::compose_allowance(std::string_view project) const {
  auto it = compose_.find(project);
  return it == compose_.end() ? ComposeAllowance{} : it->second;
}

}  // namespace secbox::control
