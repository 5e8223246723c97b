// What Frigate answers, as the camera alarms read it: any bytes as an event
// (parse_frigate_event never crashes, and what it lets out is bounded: an id
// Frigate could have made, a plate of at most 32 bytes, a sub_label of at most
// 128), and its plate matched against banned ones (match_plate is symmetric
// in what it calls exact, and never matches an empty plate).
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "common/plates.hpp"
#include "media/frigate_events.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::string plate = text.substr(0, 40);
  const auto json = nlohmann::json::parse(text, nullptr, false);
  if (!json.is_discarded()) {
    if (auto e = secbox::media::parse_frigate_event(json)) {
      if (e->id.empty() || e->id.size() > 110 || e->plate.size() > 32 || e->sub_label.size() > 128)
        std::abort();
      plate = e->plate;
    }
  }
  for (const char* banned : {"ABC-123", "OB5-212", "AB12", ""}) {
    const auto m = secbox::match_plate(plate, banned);
    if ((m == secbox::PlateMatch::exact) !=
        (secbox::match_plate(banned, plate) == secbox::PlateMatch::exact))
      std::abort();
    if (m != secbox::PlateMatch::none &&
        (secbox::normalize_plate(plate).empty() || std::string(banned).empty())) {
      std::abort();
    }
  }
  return 0;
}
