#pragma once
// Host figures from /proc and statvfs (cloud-protocol §7.1 and §7.5
// metrics.get). Each function reads files: call them off the loop. `proc` is
// the proc file system's root, so that tests can hand in their own.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace secbox::control {

struct CpuTimes {
  std::uint64_t busy = 0;
  std::uint64_t total = 0;
};

std::optional<CpuTimes> read_cpu_times(const std::string& proc = "/proc");
// Share of CPU time not idle between two samples, in percent (0–100).
double cpu_usage_pct(const CpuTimes& before, const CpuTimes& after);
std::optional<double> read_load1(const std::string& proc = "/proc");

struct MemoryInfo {
  std::uint64_t total_bytes = 0;
  std::uint64_t available_bytes = 0;
};
std::optional<MemoryInfo> read_memory(const std::string& proc = "/proc");

// [{"path","totalBytes","freeBytes"}] for the paths that exist.
nlohmann::json read_disks(const std::vector<std::string>& paths);

// [{"interface","rxBytes","txBytes"}]; every interface but lo when `only` is empty.
nlohmann::json read_network(const std::vector<std::string>& only,
                            const std::string& proc = "/proc");

std::optional<std::uint64_t> read_uptime_s(const std::string& proc = "/proc");

}  // namespace secbox::control
