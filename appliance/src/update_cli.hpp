#pragma once
// `secbox version` and `secbox update` (docs/updates.md): the versions side by
// side, and an update from files for a box without a tunnel, through the same
// checks, staging and trial as update.apply.
#include <ostream>
#include <string>
#include <vector>

namespace secbox::appliance {

int cmd_version(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int cmd_update(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace secbox::appliance
