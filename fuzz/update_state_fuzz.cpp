// The update state and outcome files (update/state.hpp): read back by the
// daemon from a folder it can write, so their parsers take any bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "update/state.hpp"
#include "update/versions.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto s = secbox::update::parse_state(text);
  if (s) {
    // What is accepted keeps its rules: no version names a path outside the tree.
    if (!secbox::update::VersionStore::valid_version(s.value().to) ||
        s.value().to.find('/') != std::string::npos) {
      __builtin_trap();
    }
  }
  auto o = secbox::update::parse_outcome(text, "fuzz");
  if (o.detail.find('\n') != std::string::npos || !secbox::update::valid_attempt(o.attempt))
    __builtin_trap();
  (void)o.data().dump();
  auto l = secbox::update::parse_ledger(text);
  if (l) {
    for (const auto& [v, n] : l.value().rolled_back) {
      if (!secbox::update::VersionStore::valid_version(v)) __builtin_trap();
    }
  }
  return 0;
}
