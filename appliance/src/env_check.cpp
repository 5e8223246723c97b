#include <iomanip>
#include <ostream>

#include "appliance/cli.hpp"
#include "common/atomic_file.hpp"
#include "envfile/guards.hpp"

namespace secbox::appliance {
namespace {

void line(std::ostream& out, std::string_view phase, bool passed, const std::string& detail) {
  out << std::left << std::setw(26) << phase << (passed ? "ok    " : "FAIL  ") << detail << "\n";
}

}  // namespace

int env_check(const Config& config, const std::string& compose_file, std::ostream& out) {
  using namespace envfile;
  auto ensured = ensure_from_legacy(config.paths.env_file(), config.paths.legacy_env_file(),
                                    std::nullopt, /*dry_run=*/true);
  if (!ensured) {
    line(out, kPhaseEnvEnsure, false, ensured.error().message);
    return 1;
  }
  line(out, kPhaseEnvEnsure, true, ensured.value().detail);
  const EnvFile& env = ensured.value().env;
  if (auto r = check_required_keys(env); !r) {
    line(out, kPhaseMissingKeys, false, r.error().message);
    return 1;
  }
  line(out, kPhaseMissingKeys, true, "DEVICE_ID and CLOUD_BASE_URL are set");
  if (compose_file.empty()) {
    line(out, kPhaseUnresolvedVars, true, "skipped (no --compose FILE)");
    return 0;
  }
  auto text = read_file(compose_file, 4 * 1024 * 1024);
  if (!text) {
    line(out, kPhaseUnresolvedVars, false, text.error().message);
    return 1;
  }
  if (auto r = check_interpolation(text.value(), env); !r) {
    line(out, kPhaseUnresolvedVars, false, r.error().message);
    return 1;
  }
  line(out, kPhaseUnresolvedVars, true, "every variable in " + compose_file + " resolves");
  return 0;
}

}  // namespace secbox::appliance
