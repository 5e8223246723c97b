#pragma once
// The node-control permission file (cloud-protocol §7.5),
// /etc/secbox/control.json. Each feature is a section naming the operations
// it allows, and optionally the names it may touch:
//
//   {"metrics":    {"allow": ["get"]},
//    "containers": {"allow": ["list", "restart"], "names": ["frigate"]},
//    "units":      {"allow": ["status", "restart"], "names": ["frigate.service"]},
//    "journal":    {"allow": ["tail"], "names": ["secbox.service"]},
//    "env":        {"allow": ["set", "unset"], "names": ["FRIGATE_URL"]},
//    "jwt":        {"allow": ["rotate"]},
//    "compose":    {"projects": {"frigate": {"allow": ["devices", "volumes"],
//                                            "mounts": ["/dev/bus/usb", "/etc/localtime"]}}}}
//
// "compose" is not a gate on compose.snapshot (§7.3 has none): it lists what
// each project's file may use beyond an ordinary container (compose_policy).
//
// A missing section answers `unavailable`, an operation (or a name) it does
// not allow `forbidden`. A missing file has no sections; an invalid one is
// refused whole with an error naming the field (the caller keeps no sections:
// fail closed). Value type.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "control/compose_policy.hpp"

namespace secbox::control {

class Permissions {
 public:
  // Errc::invalid, the message saying what in control.json is wrong.
  static Result<Permissions> parse(std::string_view json_text);
  // A missing file gives no sections (not an error).
  static Result<Permissions> load(const std::string& path);

  // Whether the cloud may ask for section.operation (`name` is checked
  // against the section's "names" when it has one). Errors, their message a
  // sentence for the error reply: Errc::unavailable (the section is not
  // enabled), Errc::forbidden (it does not allow this).
  Result<void> check(std::string_view section, std::string_view operation,
                     std::optional<std::string_view> name = std::nullopt) const;
  bool empty() const { return sections_.empty() && compose_.empty(); }
  // Whether the section has a names list and it holds `name`.
  bool names_explicitly(std::string_view section, std::string_view name) const;
  // A project control.json does not name may use no privileged option.
  ComposeAllowance compose_allowance(std::string_view project) const;

 private:
  struct Section {
    std::set<std::string, std::less<>> allow;
    std::optional<std::set<std::string, std::less<>>> names;
  };
  std::map<std::string, Section, std::less<>> sections_;
  std::map<std::string, ComposeAllowance, std::less<>> compose_;
};

}  // namespace secbox::control
