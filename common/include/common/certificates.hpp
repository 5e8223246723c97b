#pragma once
// X.509 certificates made in code with OpenSSL 3: ECDSA P-256 keys, a CA, and
// leaf certificates with DNS and IP subject alternative names. The LAN server
// makes its self-signed certificate with these, and the cloud simulator its CA.
// Key generation takes milliseconds but is CPU work: call off the loop.
#include <chrono>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace secbox {

struct KeyAndCert {
  std::string key_pem;  // PKCS#8 private key
  std::string cert_pem;
};

struct CertRequest {
  std::string common_name;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;  // IPv4 or IPv6 text
  std::chrono::hours validity{24 * 825};
  bool is_ca = false;
  int path_length = 0;  // a CA's: how many CAs may stand below it
};

// Errors: Errc::network with OpenSSL's reason.
Result<KeyAndCert> make_self_signed(const CertRequest& request);
Result<KeyAndCert> make_signed(const CertRequest& request, const KeyAndCert& issuer);

// A new P-256 key and a PKCS#10 request for it, with these DNS names as its
// subject alternative names (cloud-protocol §7.7).
struct KeyAndRequest {
  std::string key_pem;  // PKCS#8
  std::string csr_pem;
};
Result<KeyAndRequest> make_request(const std::string& common_name,
                                   const std::vector<std::string>& dns_names);

// The DNS names a request asks for (its subject alternative names), after
// checking its signature. Error "invalid" when it is no request, or not
// signed by its own key.
Result<std::vector<std::string>> request_dns_names(const std::string& csr_pem);

// What a CA does with a request (tests and the cloud simulator): the
// request's signature checked, its key and DNS names certified for
// `validity` from `backdate` ago, as a server certificate.
struct SignOptions {
  std::chrono::seconds validity{std::chrono::hours(24 * 90)};
  std::chrono::seconds backdate{3600};
};
Result<std::string> sign_request(const std::string& csr_pem, const KeyAndCert& issuer,
                                 const SignOptions& options = {});

// Lowercase hex SHA-256 of the certificate's DER bytes (cloud-protocol §2).
Result<std::string> certificate_sha256(const std::string& cert_pem);

}  // namespace secbox
