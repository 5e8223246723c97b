// The env-file parser on arbitrary bytes: it must not crash, and whatever it
// accepts that the writer may write must read back the same.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "envfile/env_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace secbox::envfile;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = parse(text, "fuzz.env");
  if (!parsed) return 0;
  EnvFile writable;
  for (const auto& e : parsed.value().entries()) {
    if (validate_key(e.key) && validate_value(e.key, e.value)) writable.set(e.key, e.value);
  }
  auto written = serialize(writable);
  if (!written) std::abort();  // everything kept was valid
  auto again = parse(written.value(), "rewritten.env");
  if (!again || !(again.value() == writable)) std::abort();
  return 0;
}
