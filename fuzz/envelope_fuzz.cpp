// The protocol's text-envelope and binary-frame parsers on arbitrary bytes: no
// crash, and whatever parses re-serialises to something that parses the same.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "protocol/envelope.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace secbox::protocol;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_envelope(input);
  if (auto* e = std::get_if<Envelope>(&parsed)) {
    auto again = parse_envelope(serialize(*e));
    auto* e2 = std::get_if<Envelope>(&again);
    if (e2 == nullptr || e2->type != e->type || e2->id != e->id || e2->re != e->re) std::abort();
  } else if (const auto& m = std::get<Malformed>(parsed); m.re && !is_valid_id(*m.re)) {
    std::abort();
  }
  if (auto frame = decode_binary(input)) {
    // The decoded body is a view into its input: keep the encoding alive.
    const std::string encoded = encode_binary(frame.value().header, frame.value().body);
    auto again = decode_binary(encoded);
    if (!again || again.value().body != frame.value().body ||
        again.value().header.seq != frame.value().header.seq) {
      std::abort();
    }
  }
  return 0;
}
