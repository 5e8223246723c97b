#pragma once
// The pairing form's per-page token: a cross-site page can make a browser
// POST to the form, but cannot read the form to learn its token. Stateless:
// "<issued, seconds since the epoch>.<HMAC-SHA256 of it under a key made at
// start, 128 bits in hex>", valid for two hours (a restart makes a new key:
// an open form then asks to be sent again). Any thread.
#include <array>
#include <chrono>
#include <string>
#include <string_view>

namespace secbox::pairing {

class FormTokens {
 public:
  static constexpr std::chrono::seconds kLifetime{2 * 3600};

  FormTokens();  // a fresh random key
  std::string issue(
      std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) const;
  bool valid(std::string_view token,
             std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) const;

 private:
  std::string mac(std::string_view issued) const;
  std::array<unsigned char, 32> key_{};
};

}  // namespace secbox::pairing
