#pragma once
// The QR JSON the super-admin pastes into the pairing form (cloud-protocol §2),
// checked field by field. Pure; any thread.
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace secbox::pairing {

constexpr std::size_t kMaxQrBytes = 8 * 1024;

struct QrCode {
  std::string cloud_base_url;
  std::string gateway_url;
  std::string device_id;
  std::string bootstrap_token;  // secret: never logged, never shown back
  std::string community_id;     // optional, informational
};

// One problem, named by the QR field it is about ("qr" for the whole text).
struct FieldError {
  std::string field;
  std::string message;  // plain words for the person pairing the box; never the token
};

// Every problem at once, so the form can show them all; unknown fields are
// ignored.
std::variant<QrCode, std::vector<FieldError>> parse_qr(std::string_view text);

// A parsed QR against the one cloud this box may pair with (the installer's
// pin, else the cloud it was paired with): cloudBaseUrl must have its origin
// and path, gatewayUrl must be on its site (the same IP, both loopback, or
// the same parent domain: cloud.example.com and gw.example.com). Empty when
// both fit.
std::vector<FieldError> check_allowed_cloud(const QrCode& qr, const std::string& allowed_cloud);

}  // namespace secbox::pairing
