// A stand-in for podman-compose in the tests: it records every call (argv,
// environment, working directory) and behaves as the test told it in
// <state>/behaviour.json:
//   {"fail": ["up", "config", "ps", "restart"],  exit 1 for these subcommands
//    "hang": ["up"],                              sleep until killed
//    "unhealthy": ["web"],                        services whose health check fails
//    "exited": ["db"],                            services that never stay up
//    "fail_up_on_call": 2,                        only that `up` call fails
//    "render_literal": true}                      `config` leaves a "${" behind
// Usage: fake-compose --fake-state=DIR [compose arguments…]
#include <unistd.h>

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

std::string env_value(const std::string& env_text, const std::string& key) {
  std::istringstream in(env_text);
  std::string line;
  std::string found;
  while (std::getline(in, line)) {
    if (line.rfind(key + "=", 0) != 0) continue;
    found = line.substr(key.size() + 1);
    if (found.size() >= 2 && (found.front() == '\'' || found.front() == '"')) found = found.substr(1, found.size() - 2);
  }
  return found;
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
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--fake-state=", 0) == 0) {
      state = a.substr(13);
    } else {
      args.push_back(a);
    }
  }
  if (state.empty()) {
    std::cerr << "fake-compose: --fake-state=DIR is required\n";
    return 2;
  }
  nlohmann::json call{{"argv", args}, {"env", nlohmann::json::array()}};
  for (char** e = environ; *e; ++e) call["env"].push_back(*e);
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd)) call["cwd"] = cwd;
  {
    std::ofstream log(state + "/calls.jsonl", std::ios::app);
    log << call.dump() << "\n";
  }
  nlohmann::json behaviour = nlohmann::json::object();
  if (auto text = read(state + "/behaviour.json"); !text.empty()) behaviour = nlohmann::json::parse(text);

  std::string env_file, project, file, command;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--env-file" && i + 1 < args.size()) {
      env_file = args[++i];
    } else if (args[i] == "-p" && i + 1 < args.size()) {
      project = args[++i];
    } else if (args[i] == "-f" && i + 1 < args.size()) {
      file = args[++i];
    } else if (command.empty()) {
      command = args[i];
    }
  }
  if (listed(behaviour, "hang", command)) std::this_thread::sleep_for(std::chrono::hours(1));
  if (listed(behaviour, "fail", command)) {
    std::cerr << "fake-compose: " << command << " failed as told\n";
    return 1;
  }
  if (command == "config") {
    std::cout << render(read(file), read(env_file));
    if (behaviour.value("render_literal", false)) std::cout << "x-left-behind: ${NOT_RENDERED}\n";
    return 0;
  }
  if (command == "up") {
    int calls = 1;
    if (auto n = read(state + "/up-count"); !n.empty()) calls = std::stoi(n) + 1;
    std::ofstream(state + "/up-count") << calls;
    if (behaviour.value("fail_up_on_call", 0) == calls) {
      std::cerr << "fake-compose: up call " << calls << " failed as told\n";
      return 1;
    }
    nlohmann::json running = nlohmann::json::array();
    YAML::Node root = YAML::LoadFile(file);
    for (const auto& s : root["services"]) {
      running.push_back({{"service", s.first.as<std::string>()}, {"healthcheck", bool(s.second["healthcheck"])}});
    }
    std::ofstream(state + "/running-" + project + ".json") << running.dump();
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
        if (s["healthcheck"]) health = listed(behaviour, "unhealthy", name) ? "unhealthy" : "healthy";
        out.push_back({{"Name", project + "-" + name + "-1"},
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
