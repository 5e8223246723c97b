// lan_cert.install's chain and lan_cert.request's CSR (cloud-protocol §7.7):
// any bytes as the PEM chain the cloud installs, checked against a fixed
// request key and name, and as a certificate request. Nothing here is signed
// by a trusted root for that key, so nothing may ever be accepted.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/certificates.hpp"
#include "lan/named_certificate.hpp"

namespace {
// The box's last request's key: made once at start (no private key lives in
// the tree).
std::string key_pem;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  key_pem = secbox::make_request("b7f3k2.box.example.com",
                                 {"*.b7f3k2.box.example.com", "b7f3k2.box.example.com"})
                .value()
                .key_pem;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto checked = secbox::lan::check_chain(text, key_pem, "b7f3k2.box.example.com", "",
                                          std::chrono::system_clock::now());
  if (checked) __builtin_trap();  // accepted without a trusted signature
  (void)secbox::request_dns_names(text);
  if (secbox::lan::valid_lan_name(text)) {
    (void)secbox::lan::guard_address(text, "192.168.1.20", 8443);
    if (secbox::lan::lan_cert_names(text).size() != 2) __builtin_trap();
  }
  return 0;
}
