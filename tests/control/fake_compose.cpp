// A stand-in for podman-compose in the tests: it records every call (argv,
// environment, working directory) and behaves as the test told it in
// <state>/behaviour.json:
//   {"fail": ["up", "config", "ps", "restart"],  exit 1 for these subcommands
//    "hang": ["up"],                              sleep until killed
//    "unhealthy": ["web"],                        services whose health check fails
//    "exited": ["db"],                            services that never stay up
//    "fail_up_on_call": 2,                        only that `up` call fails
//    "noop": ["up"],                              exit 0 having done nothing
//    "render_literal": true,                      `config` leaves a "${" behind
//    "flavor": "podman-compose-1.0.3"}            Debian 12's podman-compose: no
//        --env-file, no `config`, no `ps --format json` (argparse's usage
//        error, exit 2), and a .env beside the file overrides the environment
// Variables are interpolated from the process environment, as every compose
// tool does.
// Usage: fake-compose --fake-state=DIR [compose arguments…]
//        fake-compose --fake-state=DIR --fake-podman ps -a --format json
//            --filter label=com.docker.compose.project=P   (podman's own ps)
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

extern char** environ;

namespace {

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool listed(const nlohmann::json& b, const char* key, const std::string& item) {
  if (!b.contains(key)) return false;
  for (const auto& v : b[key]) {
    if (v == item) return true;
  }
  return false;
}

std::string env_value(const std::string& dotenv_text, const std::string& key) {
  std::istringstream in(dotenv_text);
  std::string line;
  std::string found;
  bool in_dotenv = false;
  while (std::getline(in, line)) {
    if (line.rfind(key + "=", 0) != 0) continue;
    found = line.substr(key.size() + 1);
    in_dotenv = true;
  }
  if (in_dotenv) return found;
  const char* v = std::getenv(key.c_str());
  return v ? v : "";
}

int usage_error(const std::string& what) {
  std::cerr << "usage: podman-compose [-h] [-v] [-f file] [-p PROJECT_NAME]\n"
            << "podman-compose: error: " << what << "\n";
  return 2;
}

// ${VAR}, ${VAR:-default} and $$; anything else is left as it is.
std::string render(const std::string& text, const std::string& env_text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 2, "$$") == 0) {
      out += '$';
      ++i;
    } else if (text.compare(i, 2, "${") == 0 && text.find('}', i) != std::string::npos) {
      auto end = text.find('}', i);
      std::string inner = text.substr(i + 2, end - i - 2);
      auto dash = inner.find(":-");
      std::string name = inner.substr(0, dash);
      std::string value = env_value(env_text, name);
      if (value.empty() && dash != std::string::npos) value = inner.substr(dash + 2);
      if (value.empty() && dash == std::string::npos) {
        out += text.substr(i, end - i + 1);
      } else {
        out += value;
      }
      i = end;
    } else {
      out += text[i];
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string state;
  std::vector<std::string> args;
  bool podman = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--fake-state=", 0) == 0) {
      state = a.substr(13);
    } else if (a == "--fake-podman") {
      podman = true;
    } else {
      args.push_back(a);
    }
  }
  if (state.empty()) {
    std::cerr << "fake-compose: --fake-state=DIR is required\n";
    return 2;
  }
  nlohmann::json call{
      {"argv", args}, {"env", nlohmann::json::array()}, {"tool", podman ? "podman" : "compose"}};
  for (char** e = environ; *e; ++e) call["env"].push_back(*e);
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd)) call["cwd"] = cwd;
  {
    std::ofstream log(state + "/calls.jsonl", std::ios::app);
    log << call.dump() << "\n";
  }
  nlohmann::json behaviour = nlohmann::json::object();
  if (auto text = read(state + "/behaviour.json"); !text.empty())
    behaviour = nlohmann::json::parse(text);

  const bool old_podman_compose = behaviour.value("flavor", "") == "podman-compose-1.0.3";
  if (podman) {
    // podman ps -a --format json --filter label=com.docker.compose.project=P
    std::string filter_project;
    for (const auto& a : args) {
      const std::string label = "label=com.docker.compose.project=";
      if (a.rfind(label, 0) == 0) filter_project = a.substr(label.size());
    }
    nlohmann::json out = nlohmann::json::array();
    auto text = read(state + "/running-" + filter_project + ".json");
    if (args.size() == 3 && args[0] == "healthcheck" && args[1] == "run")
      return 0;  // recorded only
    if (args.empty() || args[0] != "ps" || filter_project.empty()) {
      std::cerr << "fake podman: only ps with a project filter\n";
      return 125;
    }
    if (!text.empty()) {
      for (const auto& s : nlohmann::json::parse(text)) {
        std::string name = s["service"];
        std::string status =
            listed(behaviour, "exited", name) ? "Exited (1) 2 seconds ago" : "Up 5 seconds";
        if (s["healthcheck"] && !listed(behaviour, "exited", name)) {
          status += listed(behaviour, "unhealthy", name) ? " (unhealthy)" : " (healthy)";
        }
        out.push_back({{"Id", s.value("id", "")},
                       {"Names", {filter_project + "_" + name + "_1"}},
                       {"ExitCode", listed(behaviour, "exited", name) ? 1 : 0},
                       {"State", listed(behaviour, "exited", name) ? "exited" : "running"},
                       {"Status", status},
                       {"Labels",
                        {{"com.docker.compose.project", filter_project},
                         {"com.docker.compose.service", name},
                         {"io.podman.compose.project", filter_project}}}});
      }
    }
    std::cout << out.dump() << "\n";
    return 0;
  }

  std::string project, file, command;
  std::vector<std::string> rest;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--env-file") {
      if (old_podman_compose) return usage_error("argument command: invalid choice: '--env-file'");
      ++i;  // the modern tools read it; this fake takes values from its environment only
    } else if (args[i] == "-p" && i + 1 < args.size()) {
      project = args[++i];
    } else if (args[i] == "-f" && i + 1 < args.size()) {
      file = args[++i];
    } else if (command.empty()) {
      command = args[i];
    } else {
      rest.push_back(args[i]);
    }
  }
  if (old_podman_compose) {
    if (command == "config") {
      return usage_error(
          "argument command: invalid choice: 'config' (choose from 'help', 'version', 'pull', "
          "'push', 'build', 'up', 'down', 'ps', 'run', 'exec', 'start', 'stop', 'restart', "
          "'logs')");
    }
    if (command == "ps" && !rest.empty())
      return usage_error("unrecognized arguments: --format json");
  }
  // podman-compose 1.0.3 reads .env beside the file and lets it win.
  std::string dotenv;
  if (old_podman_compose && !file.empty())
    dotenv = read(file.substr(0, file.rfind('/') + 1) + ".env");
  if (listed(behaviour, "hang", command)) std::this_thread::sleep_for(std::chrono::hours(1));
  if (listed(behaviour, "fail", command)) {
    std::cerr << "fake-compose: " << command << " failed as told\n";
    return 1;
  }
  if (command == "config") {
    std::cout << render(read(file), dotenv);
    if (behaviour.value("render_literal", false)) std::cout << "x-left-behind: ${NOT_RENDERED}\n";
    return 0;
  }
  if (listed(behaviour, "noop", command)) return 0;  // exits 0 having done nothing
  if (command == "up") {
    int calls = 1;
    if (auto n = read(state + "/up-count"); !n.empty()) calls = std::stoi(n) + 1;
    std::ofstream(state + "/up-count") << calls;
    if (behaviour.value("fail_up_on_call", 0) == calls) {
      std::cerr << "fake-compose: up call " << calls << " failed as told\n";
      return 1;
    }
    // Each container has an id; a recreated one gets a new id. podman-compose
    // 1.0.3 keeps an existing container whatever changed unless told
    // --force-recreate; the other tools recreate a service whose rendered
    // configuration changed.
    const bool force = std::find(rest.begin(), rest.end(), "--force-recreate") != rest.end();
    nlohmann::json before = nlohmann::json::array();
    if (auto text = read(state + "/running-" + project + ".json"); !text.empty())
      before = nlohmann::json::parse(text);
    nlohmann::json running = nlohmann::json::array();
    YAML::Node root = YAML::LoadFile(file);
    for (const auto& s : root["services"]) {
      const std::string name = s.first.as<std::string>();
      YAML::Emitter emitted;
      emitted << s.second;
      const std::string config = render(emitted.c_str(), dotenv);
      std::string id = "c" + std::to_string(calls) + "-" + name;
      for (const auto& old : before) {
        if (old["service"] != name) continue;
        if (!force && (old_podman_compose || old.value("config", "") == config))
          id = old.value("id", id);
      }
      running.push_back({{"service", name},
                         {"healthcheck", bool(s.second["healthcheck"])},
                         {"id", id},
                         {"config", config}});
    }
    std::ofstream(state + "/running-" + project + ".json") << running.dump();
    std::ofstream(state + "/up-rendered-" + project + ".yaml") << render(read(file), dotenv);
    std::cout << "fake-compose: started " << running.size() << " services\n";
    return 0;
  }
  if (command == "ps") {
    nlohmann::json out = nlohmann::json::array();
    auto text = read(state + "/running-" + project + ".json");
    if (!text.empty()) {
      for (const auto& s : nlohmann::json::parse(text)) {
        std::string name = s["service"];
        std::string health;
        if (s["healthcheck"])
          health = listed(behaviour, "unhealthy", name) ? "unhealthy" : "healthy";
        out.push_back({{"ID", s.value("id", "")},
                       {"Name", project + "-" + name + "-1"},
                       {"Service", name},
                       {"Project", project},
                       {"State", listed(behaviour, "exited", name) ? "exited" : "running"},
                       {"Health", health}});
      }
    }
    std::cout << out.dump() << "\n";
    return 0;
  }
  return 0;  // restart, down, …: recorded only
}
