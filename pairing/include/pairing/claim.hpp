#pragma once
// The claim call of cloud-protocol §2: POST {cloudBaseUrl}/api/devices/claim.
// Blocking (libcurl): run it from a BlockingPool task.
#include <chrono>
#include <string>

#include "pairing/qr.hpp"

namespace secbox::pairing {

struct ClaimRequest {
  QrCode qr;
  std::string hostname;
  std::string version;
  std::string lan_cert_sha256;  // lowercase hex of the LAN certificate's DER
  std::string ca_file;          // extra trusted CA (tests, private clouds); may be empty
  std::chrono::milliseconds timeout{15000};
};

struct ClaimOutcome {
  enum class Kind { paired, token_rejected, refused, unreachable } kind = Kind::unreachable;
  // paired: the token, its expiry, and the gateway to use (the answer's, else the QR's).
  std::string device_jwt;
  std::string expires_at;
  std::string gateway_url;
  // Otherwise: plain words for the form (never the bootstrap token).
  std::string message;
};

ClaimOutcome claim(const ClaimRequest& request);

}  // namespace secbox::pairing
