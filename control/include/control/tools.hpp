#pragma once
// Registered commands (cloud-protocol §7.4): what an installed tool declares
// in /etc/secbox/tools/<tool>.json, and the checks an `exec.run` passes
// before anything runs. docs/control.md shows the file format:
//
//   {"commands": {"<command>": {"argv": ["/abs/path", "--flag", "{name}", …],
//                               "args": {"<name>": "<full-match regex>"},
//                               "timeoutS": 30}}}
//
// An argument value must match its pattern whole, must not start with '-',
// holds no control character and is at most 256 bytes; it is substituted into
// the argument vector (never a shell).
//
// Values; parse/load are pure or read files (call load_tools off the loop).
#include <chrono>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace secbox::control {

inline constexpr std::size_t kMaxArgBytes = 256;

struct CommandSpec {
  std::string name;
  std::vector<std::string> argv;
  std::map<std::string, std::string> patterns;  // argument name -> its pattern's text
  std::map<std::string, std::shared_ptr<const std::regex>> compiled;
  std::chrono::milliseconds timeout{30000};
};

struct Tool {
  std::string name;
  std::map<std::string, CommandSpec> commands;
};

using ToolSet = std::map<std::string, Tool>;

struct ToolsLoaded {
  ToolSet tools;
  std::vector<std::string> problems;  // "ping.json: commands.x.argv[0] must be an absolute path"
};

// One file's text; `name` is its file name without ".json". Errc::invalid,
// naming the file and the field.
Result<Tool> parse_tool(const std::string& name, std::string_view json_text);

// Every <tool>.json in dir; invalid files are reported and skipped.
ToolsLoaded load_tools(const std::string& dir);

// The argument vector for one exec.run. Errors: Errc::not_found (tool or
// command), Errc::invalid (naming the argument, never quoting its value);
// protocol/ answers them as not_found and invalid_args.
Result<std::vector<std::string>> build_argv(const ToolSet& tools, const std::string& tool,
                                            const std::string& command, const nlohmann::json& args,
                                            std::chrono::milliseconds* timeout = nullptr);

}  // namespace secbox::control
