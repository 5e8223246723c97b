// The compose policy (control/compose_policy.hpp): the strict YAML reader,
// the allow-list and privilege checks, and the canonical writer, over any
// bytes the cloud could send. What is accepted must be accepted again, word
// for word, when its canonical file is read back; it holds no key outside the
// allow-list; with nothing allowed it holds no privileged option; every host
// path lies under what allowed it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "control/compose_policy.hpp"
#include "strict_yaml.hpp"

namespace {

using secbox::control::ComposeAllowance;

void check_service_keys(const YAML::Node& root, bool nothing_allowed) {
  const auto& keys = secbox::control::compose_service_keys();
  const auto& privileged = secbox::control::privileged_compose_keys();
  for (const auto& service : root["services"]) {
    for (const auto& entry : service.second) {
      const auto key = entry.first.as<std::string>();
      if (!keys.count(key)) __builtin_trap();
      if (!nothing_allowed || !privileged.count(key)) continue;
      // With nothing allowed a privileged key may stand only in its harmless form.
      const YAML::Node& v = entry.second;
      if (key == "privileged" && v.as<std::string>() != "false") __builtin_trap();
      if ((key == "cap_add" || key == "devices" || key == "security_opt" ||
           key == "device_cgroup_rules") &&
          v.size() != 0) {
        __builtin_trap();
      }
      if (key == "network_mode" || key == "pid" || key == "uts" || key == "userns_mode") {
        const auto mode = v.as<std::string>();
        if (mode.rfind("service:", 0) != 0 && mode != "bridge" && mode != "none") __builtin_trap();
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte picks the allowance: nothing, or everything under /media.
  const bool nothing_allowed = (data[0] & 1) == 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  if (auto node = secbox::control::yaml::parse(text)) {
    const std::string once = secbox::control::yaml::write(node.value());
    auto back = secbox::control::yaml::parse(once);
    if (!back || secbox::control::yaml::write(back.value()) != once) __builtin_trap();
  }

  ComposeAllowance allowance;
  if (!nothing_allowed) {
    allowance.allow = secbox::control::privileged_compose_keys();
    allowance.mounts = std::vector<std::string>{"/media", "/dev/dri"};
  }
  const std::string dir = "/var/lib/secbox/compose/booth";
  auto r = secbox::control::check_compose(text, dir, allowance, "booth");
  if (!r) return 0;
  const std::string& canonical = r.value().canonical;
  for (unsigned char c : canonical) {
    if (c != '\n' && (c < 0x20 || c >= 0x7F)) __builtin_trap();
  }
  auto again = secbox::control::check_compose(canonical, dir, allowance, "booth");
  if (!again || again.value().canonical != canonical) __builtin_trap();
  if (again.value().services.size() != r.value().services.size()) __builtin_trap();
  for (const auto& p : r.value().host_paths) {
    if (p.path.empty() || p.path[0] != '/') __builtin_trap();
    if (p.path != p.allowed_by &&
        p.path.rfind(p.allowed_by == "/" ? "/" : p.allowed_by + "/", 0) != 0) {
      __builtin_trap();
    }
    if (nothing_allowed && p.allowed_by != dir) __builtin_trap();
  }
  try {
    check_service_keys(YAML::Load(canonical), nothing_allowed);
  } catch (const YAML::Exception&) {
    __builtin_trap();  // the canonical file is YAML to any reader
  }
  return 0;
}
