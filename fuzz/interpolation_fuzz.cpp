// The compose interpolation check and the gateway-URL derivation on arbitrary
// bytes. The input is "env text \0 compose text": the env half is parsed (when
// it parses) to give the variables.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "envfile/guards.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace secbox::envfile;
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const auto split = all.find('\0');
  const std::string_view env_text = split == std::string_view::npos ? "" : all.substr(0, split);
  const std::string_view compose = split == std::string_view::npos ? all : all.substr(split + 1);
  EnvFile env;
  if (auto parsed = parse(env_text)) env = parsed.value();
  auto problems = find_unresolved(compose, env);
  auto checked = check_interpolation(compose, env);
  // Every unresolved reference fails the check; a file where all resolve
  // fails only for a reserved name it interpolates (PATH, LD_*, …).
  if (!problems.empty() && checked) std::abort();
  if (problems.empty() && !checked) {
    bool reserved = false;
    for (const auto& name : referenced_variables(compose))
      reserved = reserved || is_reserved_variable(name);
    if (!reserved) std::abort();
  }
  for (const auto& p : problems) {
    if (p.line < 1) std::abort();
  }
  if (auto url = derive_gateway_url(compose)) {
    if (url.value().find("device") == std::string::npos) std::abort();
  }
  return 0;
}
