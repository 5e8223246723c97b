#include "control/permissions.hpp"

#include <nlohmann/json.hpp>

#include "common/atomic_file.hpp"

namespace secbox::control {
namespace {

const std::map<std::string, std::set<std::string>>& known() {
  static const std::map<std::string, std::set<std::string>> k = {
      {"metrics", {"get"}},           {"containers", {"list", "restart"}}, {"units", {"status", "restart"}},
      {"journal", {"tail"}},          {"env", {"set", "unset"}},           {"jwt", {"rotate"}},
  };
  return k;
}

}  // namespace

Result<Permissions> Permissions::parse(std::string_view text) {
  auto bad = [](const std::string& what) { return Error{"invalid-permissions", "control.json: " + what}; };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    return bad("not valid JSON");
  }
  if (!j.is_object()) return bad("must be an object of sections");
  Permissions p;
  for (const auto& [name, body] : j.items()) {
    auto k = known().find(name);
    if (k == known().end()) return bad("unknown section \"" + name.substr(0, 40) + "\"");
    if (!body.is_object()) return bad(name + " must be an object");
    Section s;
    if (!body.contains("allow") || !body["allow"].is_array()) return bad(name + ".allow must be an array");
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
    if (text.error().code == "not-found") return Permissions{};
    return Error{"invalid-permissions", text.error().message};
  }
  return parse(text.value());
}

Verdict Permissions::check(std::string_view section, std::string_view operation,
                           std::optional<std::string_view> name) const {
  auto it = sections_.find(section);
  if (it == sections_.end()) return Verdict::unavailable;
  if (!it->second.allow.count(operation)) return Verdict::forbidden;
  if (name && it->second.names && !it->second.names->count(*name)) return Verdict::forbidden;
  return Verdict::allowed;
}

std::string describe(Verdict verdict, std::string_view section, std::string_view operation) {
  const std::string op = std::string(section) + "." + std::string(operation);
  if (verdict == Verdict::unavailable) {
    return "node control's \"" + std::string(section) + "\" section is not enabled in control.json";
  }
  return "control.json does not allow " + op + " here";
}

}  // namespace secbox::control
