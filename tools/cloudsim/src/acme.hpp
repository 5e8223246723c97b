#pragma once
// The simulator's side of cloud-protocol §7.7: publicly trusted LAN
// certificates, as the real cloud would get them, from a real ACME server:
// Debian's pebble, with pebble-challtestsrv as the zone's DNS (DNS-01 TXT
// records, and A records for <a-b-c-d>.<name>), and lego as the ACME client
// handed the box's own CSR. Every process runs on 127.0.0.1, on free ports,
// and is stopped with the issuer.
#include <memory>
#include <string>

#include "common/result.hpp"

namespace secbox::cloudsim {

class AcmeIssuer {
 public:
  // Starts pebble-challtestsrv and pebble, and fetches pebble's root into
  // <dir>/acme-root.pem. Error "unavailable" when pebble or lego is not
  // installed (the simulator then offers no LAN names), or they do not start.
  static Result<std::unique_ptr<AcmeIssuer>> start(const std::string& dir);
  ~AcmeIssuer();
  AcmeIssuer(const AcmeIssuer&) = delete;
  AcmeIssuer& operator=(const AcmeIssuer&) = delete;

  // What a phone must trust: pebble's root (a new one each start).
  const std::string& roots_file() const;
  // Blocking (seconds): a certificate for the request's names by DNS-01;
  // the chain as PEM, the box's certificate first.
  Result<std::string> issue(const std::string& csr_pem);
  // Stops pebble and its DNS (an issue in flight then fails at once).
  void shutdown();
  // The zone's DNS answers `host` with `address` (A).
  void add_a(const std::string& host, const std::string& address);

  struct Impl;

 private:
  explicit AcmeIssuer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace secbox::cloudsim
