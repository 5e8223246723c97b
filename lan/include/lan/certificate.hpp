#pragma once
// The box's self-signed LAN certificate (ECDSA P-256, 825 days), kept in the
// state dir: made on first start, made again when it has under 30 days left,
// does not name the box's current addresses, or does not match its key. Its SHA-256 fingerprint is
// what the pairing page shows and `claim` sends.
//
// Blocking (files, key generation): call it off the loop.
#include <string>
#include <vector>

#include "common/result.hpp"

namespace secbox::lan {

struct LanCertificate {
  std::string cert_pem;
  std::string key_pem;
  std::string sha256;     // lowercase hex of the DER bytes
  std::string not_after;  // RFC 3339
  bool made_now = false;
};

struct LanCertificateRequest {
  std::string dir;  // holds cert.pem (0644) and key.pem (0600)
  std::string hostname;
  std::vector<std::string> addresses;  // IPv4/IPv6 text; 127.0.0.1 and ::1 are added
};

Result<LanCertificate> ensure_lan_certificate(const LanCertificateRequest& request);

}  // namespace secbox::lan
