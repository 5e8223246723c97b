// The signed manifest (update/manifest.hpp): any bytes as the manifest's
// JSON, and any base64 fields judged as an offer by a fixed pinned key. What
// parses keeps its rules; nothing unsigned is ever accepted.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "update/manifest.hpp"
#include "update/versions.hpp"

namespace {
// A fixed Ed25519 public key: no input below carries its signature.
constexpr const char* kKey =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAJywH/sGweQ6HW70FsI79S0yXm/waaNJAfZ0t6gEoiYY=\n"
    "-----END PUBLIC KEY-----\n";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto m = secbox::update::parse_manifest(text);
  if (m) {
    const auto& v = m.value();
    if (!secbox::update::VersionStore::valid_version(v.version) || v.size == 0 ||
        v.size > secbox::update::kMaxBundleBytes || v.expires_at <= v.issued_at ||
        v.sha256.size() != 64) {
      __builtin_trap();
    }
    // What parses writes back to what parses the same.
    auto again = secbox::update::parse_manifest(secbox::update::manifest_json(v));
    if (!again || again.value().version != v.version || again.value().counter != v.counter)
      __builtin_trap();
  }
  // The same bytes split as manifest|signature fields of an offer.
  const auto bar = text.find('|');
  secbox::update::BoxRecord box;
  box.running = "1.0.0";
  box.now = 1796000000;
  auto offer = secbox::update::check_offer(
      text.substr(0, bar), bar == std::string_view::npos ? "" : text.substr(bar + 1), kKey, box);
  if (offer) __builtin_trap();  // never signed by this key
  return 0;
}
