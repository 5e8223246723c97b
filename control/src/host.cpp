#include "control/host.hpp"

#include <sys/statvfs.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace secbox::control {

std::optional<CpuTimes> read_cpu_times(const std::string& proc) {
  std::ifstream in(proc + "/stat");
  std::string label;
  if (!(in >> label) || label != "cpu") return std::nullopt;
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  std::uint64_t v[8] = {};
  for (auto& x : v) {
    if (!(in >> x)) return std::nullopt;
  }
  CpuTimes t;
  for (auto x : v) t.total += x;
  t.busy = t.total - v[3] - v[4];
  return t;
}

double cpu_usage_pct(const CpuTimes& a, const CpuTimes& b) {
  if (b.total <= a.total || b.busy < a.busy) return 0.0;
  double pct =
      100.0 * static_cast<double>(b.busy - a.busy) / static_cast<double>(b.total - a.total);
  return std::clamp(pct, 0.0, 100.0);
}

std::optional<double> read_load1(const std::string& proc) {
  std::ifstream in(proc + "/loadavg");
  double load = 0;
  if (!(in >> load)) return std::nullopt;
  return load;
}

std::optional<MemoryInfo> read_memory(const std::string& proc) {
  std::ifstream in(proc + "/meminfo");
  MemoryInfo m;
  bool total = false, available = false;
  std::string key, unit;
  std::uint64_t kb = 0;
  while (in >> key >> kb) {
    std::getline(in, unit);
    if (key == "MemTotal:") {
      m.total_bytes = kb * 1024;
      total = true;
    } else if (key == "MemAvailable:") {
      m.available_bytes = kb * 1024;
      available = true;
    }
  }
  if (!total || !available) return std::nullopt;
  return m;
}

nlohmann::json read_disks(const std::vector<std::string>& paths) {
  auto out = nlohmann::json::array();
  for (const auto& p : paths) {
    struct statvfs fs {};
    if (::statvfs(p.c_str(), &fs) != 0) continue;
    out.push_back({{"path", p},
                   {"totalBytes", static_cast<std::uint64_t>(fs.f_blocks) * fs.f_frsize},
                   {"freeBytes", static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize}});
  }
  return out;
}

nlohmann::json read_network(const std::vector<std::string>& only, const std::string& proc) {
  auto out = nlohmann::json::array();
  std::ifstream in(proc + "/net/dev");
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;  // the two header lines
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    if (only.empty() ? name == "lo" : std::find(only.begin(), only.end(), name) == only.end())
      continue;
    std::istringstream fields(line.substr(colon + 1));
    std::uint64_t v[9] = {};
    for (auto& x : v) fields >> x;
    if (!fields) continue;
    out.push_back({{"interface", name}, {"rxBytes", v[0]}, {"txBytes", v[8]}});
  }
  return out;
}

std::optional<std::uint64_t> read_uptime_s(const std::string& proc) {
  std::ifstream in(proc + "/uptime");
  double up = 0;
  if (!(in >> up)) return std::nullopt;
  return static_cast<std::uint64_t>(up);
}

}  // namespace secbox::control
