#pragma once
// The guards run before any container is recreated (cloud-protocol §7.3 steps
// 2–4). They exist because an outage came from a compose restart without its
// env file: every `${CLOUD_BASE_URL:-…}` reached the containers literally.
// Each function is one phase; its caller names the phase (kPhase…) in what it
// reports. An error's code is the condition: invalid (the content fails the
// check), not_found (no env file to derive from), io. Values never appear in
// messages; variable names and line numbers do.
//
// Pure functions except ensure_from_legacy (file I/O: call off the loop).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "envfile/env_file.hpp"

namespace secbox::envfile {

inline constexpr std::string_view kPhaseEnvEnsure = "env-ensure";
inline constexpr std::string_view kPhaseMissingKeys = "secbox-env-missing-keys";
inline constexpr std::string_view kPhaseUnresolvedVars = "env-unresolved-vars";

// Step 2. MGMT_GATEWAY_URL with its last path segment `mgmt` replaced by `device`.
Result<std::string> derive_gateway_url(std::string_view mgmt_gateway_url);

// Step 2. The secbox.env content derived from mgmt-agent.env: CLOUD_BASE_URL,
// DEVICE_ID and BOOTSTRAP copied as they are, DEVICE_GATEWAY_URL derived.
Result<EnvFile> derive_from_legacy(const EnvFile& legacy);

struct EnsureOutcome {
  bool created = false;  // secbox.env was (or, in a dry run, would be) derived
  EnvFile env;           // the env file the next phases check
  std::string detail;    // a sentence for the log and the reply
};

// Step 2. If env_path is absent or holds no assignment, derives it from
// legacy_path and writes it atomically (mode 0600, owner if given) unless
// dry_run. Otherwise loads it as it is.
Result<EnsureOutcome> ensure_from_legacy(const std::string& env_path,
                                         const std::string& legacy_path,
                                         std::optional<FileOwner> owner, bool dry_run);

// Step 3. DEVICE_ID and CLOUD_BASE_URL present and non-empty.
Result<void> check_required_keys(const EnvFile& env);

// Step 4. One reference in a compose file that would not resolve.
struct UnresolvedReference {
  std::string variable;  // empty for a syntax error with no name
  int line = 0;
  std::string reason;
};

// Every problem in the text; empty when it all resolves from env alone.
std::vector<UnresolvedReference> find_unresolved(std::string_view compose_text, const EnvFile& env);

// The names a compose file interpolates ($NAME, ${NAME…}), read as
// find_unresolved reads them: $$ is a literal, comment lines are skipped.
std::vector<std::string> referenced_variables(std::string_view compose_text);

// Names that change how a program runs (PATH, LD_*, PYTHON*, DOCKER_*,
// COMPOSE_*, *_PROXY, …): the box never hands them to the compose tool from
// the env file, so a value set through env.set cannot run code in it.
bool is_reserved_variable(std::string_view name);

// Step 4 as a result: names every variable that would not resolve, or the
// first reserved name the file interpolates.
Result<void> check_interpolation(std::string_view compose_text, const EnvFile& env);

}  // namespace secbox::envfile
