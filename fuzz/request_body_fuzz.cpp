// The validators that read request bodies from the LAN and the pairing form,
// on arbitrary bytes: the QR JSON of the pairing form (parse_qr) and the event
// data of the guard app's entries and notes (the queue checks them with the
// protocol's shapes). No crash, and whatever is accepted keeps the promises
// the callers rely on.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/url.hpp"
#include "pairing/qr.hpp"
#include "protocol/shapes.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto qr = secbox::pairing::parse_qr(input);
  if (auto* code = std::get_if<secbox::pairing::QrCode>(&qr)) {
    const auto& t = code->bootstrap_token;
    if (t.size() < 16 || t.size() > 512) std::abort();
    for (unsigned char c : t) {
      if (c < 0x21 || c > 0x7e) std::abort();
    }
    if (code->device_id.size() < 3 || code->device_id.size() > 64) std::abort();
    const auto s = secbox::url_scheme(code->cloud_base_url);
    if (s != "https" && !(s == "http" && secbox::is_loopback_url(code->cloud_base_url)))
      std::abort();
  } else if (std::get<std::vector<secbox::pairing::FieldError>>(qr).empty()) {
    std::abort();  // refused without a reason
  }
  auto j = nlohmann::json::parse(input, nullptr, false);
  if (!j.is_discarded()) {
    for (const char* type : {"visitor_entry", "guard_note", "ban_hit"}) {
      if (auto problem =
              secbox::protocol::shapes::check(*secbox::protocol::shapes::event_data(type), j)) {
        if (problem->describe().empty()) std::abort();
      }
    }
  }
  return 0;
}
