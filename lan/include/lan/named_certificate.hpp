#pragma once
// The box's publicly trusted LAN certificate (cloud-protocol §7.7): the cloud
// gives the box a name (welcome.lan.name), the box asks for `*.<name>` and
// `<name>` with a key that never leaves it, and the cloud installs the chain
// it obtained. Guards then open https://<a>-<b>-<c>-<d>.<name>:8443/, a name
// their phones trust, and the guard app's service worker and installation
// work.
//
// Blocking (key generation, files): call off the loop. Pure otherwise.
#include <chrono>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace secbox::lan {

// A name as the cloud may give it: lowercase letters, digits and hyphens in
// labels of 1 to 63 characters, at least two labels, at most 190 characters
// (room for "<a-b-c-d>." and "*." within DNS's 253).
bool valid_lan_name(const std::string& name);

// What a request and its certificate name: "*.<name>", "<name>".
std::vector<std::string> lan_cert_names(const std::string& name);

// https://<a>-<b>-<c>-<d>.<name>:<port>/ for a private IPv4 address (10/8,
// 172.16/12, 192.168/16, 100.64/10: the cloud's DNS answers only these); ""
// for any other address.
std::string guard_address(const std::string& name, const std::string& ipv4, int port);

struct NamedCertificate {
  std::string name;
  std::string chain_pem;  // the box's certificate first, then intermediates
  std::string key_pem;
  std::chrono::system_clock::time_point not_before, not_after;
  std::string sha256;  // of the box's certificate, lowercase hex

  // Less than a third of its lifetime is left: time to ask for the next.
  bool renewal_due(std::chrono::system_clock::time_point now) const;
};

// lan_cert.install's checks, in this order; the first that fails is an
// Error (invalid) whose message starts with its name:
//   "chain: …"     not 1 to 10 PEM certificates, 64 KiB at most
//   "key: …"       the first certificate's key is not the request's key
//   "names: …"     its DNS names are not exactly *.<name> and <name>
//   "trust: …"     the chain does not verify, for a TLS server, to a root in
//                  the system's store or in roots_file (when not empty)
//   "validity: …"  a certificate of the chain is expired or not yet valid
Result<NamedCertificate> check_chain(const std::string& chain_pem, const std::string& key_pem,
                                     const std::string& name, const std::string& roots_file,
                                     std::chrono::system_clock::time_point now);

// The key and the chain in one file (0600, written atomically), so that the
// two are never seen apart; read back with the same checks (a file on disk is
// not trusted either).
Result<void> save_named(const std::string& path, const NamedCertificate& cert);
Result<NamedCertificate> load_named(const std::string& path, const std::string& roots_file,
                                    std::chrono::system_clock::time_point now);

}  // namespace secbox::lan
