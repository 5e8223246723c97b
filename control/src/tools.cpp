#include "control/tools.hpp"

#include <algorithm>
#include <filesystem>

#include "common/atomic_file.hpp"

namespace secbox::control {
namespace {

bool is_name(std::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max ||
      !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
    return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
  });
}

// The {name} placeholders of one argv element, in order.
Result<std::vector<std::string>> placeholders(const std::string& element) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < element.size(); ++i) {
    if (element[i] == '}') return Error{Errc::invalid, "a '}' without its '{'"};
    if (element[i] != '{') continue;
    auto end = element.find('}', i);
    if (end == std::string::npos) return Error{Errc::invalid, "a '{' without its '}'"};
    std::string name = element.substr(i + 1, end - i - 1);
    if (!is_name(name, 32) || name.find('.') != std::string::npos) {
      return Error{Errc::invalid,
                   "placeholder {" + name.substr(0, 40) + "} is not a name (a-z, 0-9, _ or -)"};
    }
    out.push_back(name);
    i = end;
  }
  return out;
}

bool has_control_char(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

}  // namespace

Result<Tool> parse_tool(const std::string& name, std::string_view text) {
  const std::string file = name + ".json";
  auto bad = [&](const std::string& what) { return Error{Errc::invalid, file + ": " + what}; };
  if (!is_name(name, 64)) return bad("the tool's name must match ^[a-z0-9][a-z0-9_.-]{0,63}$");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    return bad("not valid JSON");
  }
  if (!j.is_object() || !j.contains("commands") || !j["commands"].is_object() ||
      j["commands"].empty()) {
    return bad("needs a non-empty \"commands\" object");
  }
  Tool tool{name, {}};
  for (const auto& [cname, c] : j["commands"].items()) {
    const std::string at = "commands." + cname.substr(0, 64);
    if (!is_name(cname, 64))
      return bad(at + ": the command's name must match ^[a-z0-9][a-z0-9_.-]{0,63}$");
    if (!c.is_object()) return bad(at + " must be an object");
    CommandSpec spec;
    spec.name = cname;
    if (!c.contains("argv") || !c["argv"].is_array() || c["argv"].empty())
      return bad(at + ".argv must be a non-empty array");
    std::vector<std::string> used;
    for (std::size_t i = 0; i < c["argv"].size(); ++i) {
      const auto& a = c["argv"][i];
      const std::string where = at + ".argv[" + std::to_string(i) + "]";
      if (!a.is_string()) return bad(where + " must be a string");
      std::string s = a.get<std::string>();
      if (s.find('\0') != std::string::npos || has_control_char(s))
        return bad(where + " holds a control character");
      auto names = placeholders(s);
      if (!names) return bad(where + ": " + names.error().message);
      if (i == 0 && (s.empty() || s[0] != '/' || !names.value().empty())) {
        return bad(where + " must be an absolute path, without placeholders");
      }
      used.insert(used.end(), names.value().begin(), names.value().end());
      spec.argv.push_back(std::move(s));
    }
    if (c.contains("args")) {
      if (!c["args"].is_object()) return bad(at + ".args must be an object of patterns");
      for (const auto& [aname, pattern] : c["args"].items()) {
        if (!pattern.is_string())
          return bad(at + ".args." + aname.substr(0, 40) + " must be a pattern (a string)");
        try {
          spec.compiled[aname] = std::make_shared<const std::regex>(pattern.get<std::string>(),
                                                                    std::regex::ECMAScript);
        } catch (const std::regex_error&) {
          return bad(at + ".args." + aname.substr(0, 40) + " is not a valid regular expression");
        }
        spec.patterns[aname] = pattern.get<std::string>();
      }
    }
    for (const auto& u : used) {
      if (!spec.patterns.count(u))
        return bad(at + ": placeholder {" + u + "} has no pattern in args");
    }
    for (const auto& [aname, p] : spec.patterns) {
      if (std::find(used.begin(), used.end(), aname) == used.end()) {
        return bad(at + ".args." + aname.substr(0, 40) + " is declared but not used in argv");
      }
    }
    if (c.contains("timeoutS")) {
      if (!c["timeoutS"].is_number_integer() || c["timeoutS"].get<long>() < 1 ||
          c["timeoutS"].get<long>() > 3600) {
        return bad(at + ".timeoutS must be a whole number of seconds from 1 to 3600");
      }
      spec.timeout = std::chrono::seconds(c["timeoutS"].get<long>());
    }
    tool.commands.emplace(cname, std::move(spec));
  }
  return tool;
}

ToolsLoaded load_tools(const std::string& dir) {
  ToolsLoaded out;
  auto folder = read_folder(dir, ".json", 64 * 1024);
  out.problems = std::move(folder.problems);
  for (const auto& f : folder.files) {
    auto tool = parse_tool(f.stem, f.text);
    if (!tool) {
      out.problems.push_back(tool.error().message);
      continue;
    }
    out.tools.emplace(tool.value().name, std::move(tool).value());
  }
  return out;
}

Result<std::vector<std::string>> build_argv(const ToolSet& tools, const std::string& tool,
                                            const std::string& command, const nlohmann::json& args,
                                            std::chrono::milliseconds* timeout) {
  auto t = tools.find(tool);
  if (t == tools.end())
    return Error{Errc::not_found, "no installed tool is called \"" + tool.substr(0, 64) + "\""};
  auto c = t->second.commands.find(command);
  if (c == t->second.commands.end()) {
    return Error{Errc::not_found,
                 "tool " + tool + " has no command \"" + command.substr(0, 64) + "\""};
  }
  const CommandSpec& spec = c->second;
  if (!args.is_object()) return Error{Errc::invalid, "args must be an object of strings"};
  for (const auto& [name, value] : args.items()) {
    if (!spec.patterns.count(name)) {
      return Error{Errc::invalid,
                   "command " + command + " takes no argument \"" + name.substr(0, 64) + "\""};
    }
    if (!value.is_string()) return Error{Errc::invalid, "argument " + name + " must be a string"};
  }
  std::map<std::string, std::string> values;
  for (const auto& [name, re] : spec.compiled) {
    if (!args.contains(name)) return Error{Errc::invalid, "argument " + name + " is missing"};
    std::string v = args[name].get<std::string>();
    if (v.empty() || v.size() > kMaxArgBytes) {
      return Error{Errc::invalid, "argument " + name + " must be 1 to 256 bytes long"};
    }
    if (v[0] == '-') return Error{Errc::invalid, "argument " + name + " must not start with '-'"};
    if (v.find('\0') != std::string::npos || has_control_char(v)) {
      return Error{Errc::invalid, "argument " + name + " holds a control character"};
    }
    if (!std::regex_match(v, *re)) {
      return Error{Errc::invalid,
                   "argument " + name + " does not match its pattern " + spec.patterns.at(name)};
    }
    values[name] = std::move(v);
  }
  std::vector<std::string> argv;
  for (const auto& element : spec.argv) {
    std::string out;
    for (std::size_t i = 0; i < element.size(); ++i) {
      if (element[i] == '{') {
        auto end = element.find('}', i);
        out += values.at(element.substr(i + 1, end - i - 1));
        i = end;
      } else {
        out += element[i];
      }
    }
    argv.push_back(std::move(out));
  }
  if (timeout) *timeout = spec.timeout;
  return argv;
}

}  // namespace secbox::control
