#pragma once
// The first-boot pairing form (cloud-protocol §2) on plain HTTP, port 8080,
// on the appliance's loop (an httpd::Server with the form's handler):
//   GET  /      what the box is, its LAN addresses and LAN certificate
//               fingerprint, one text area for the QR JSON;
//   POST /pair  the QR JSON, as a form field `qr` or as the JSON body itself:
//               checked as §2 says, claimed off the loop (one claim at a time),
//               then persisted through the hook, also off the loop.
// Once paired every request gets 410 Gone with the LAN app's link; reopen()
// (needs-pairing, §3) brings the form back. Limits: 8 KiB bodies and headers,
// 16 connections, 30 s per request, one claim at a time bounded by
// claim_timeout.
//
// What it trusts (docs/install.md): only the cloud the box was installed for
// (allowed_cloud; a QR naming another gets a field error and no claim is
// made); requests whose Host is the box itself (an IP literal, localhost, its
// hostname, hostname.local/.lan/.home.arpa: 421 otherwise, which defeats DNS
// rebinding); posts from its own pages (Origin, else Sec-Fetch-Site, checked:
// 403 cross_site) carrying the form's own token (403 form_expired). A JSON
// post needs no token: a cross-site page cannot send one without a CORS
// preflight, which is never answered.
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/blocking.hpp"
#include "common/component.hpp"
#include "common/result.hpp"
#include "pairing/claim.hpp"

namespace secbox::pairing {

struct PairingSettings {
  std::string bind_address = "::";  // both IPv4 and IPv6 where the system has both
  int port = 8080;                  // 0: any (tests; see port())
  std::string hostname;
  std::string version;
  std::string ca_file;  // extra CA for the claim (private clouds, the simulator)
  int lan_port = 8443;
  // The one cloud this box pairs with: the installer's pin, else the cloud it
  // was paired with. Empty: it pairs with none, and the form says why.
  std::string allowed_cloud;
  std::chrono::milliseconds claim_timeout{15000};  // the whole claim call, connect included
  bool paired = false;                             // start in the "paired" state (410)
  bool needs_pairing = false;                      // the form says why it is back
};

struct PairingHooks {
  // Blocking, on a worker: the LAN certificate's fingerprint and the box's
  // addresses for the page and the claim (made on first use).
  std::function<Result<std::string>()> lan_fingerprint;
  std::function<std::vector<std::string>()> addresses;
  // Blocking, on a worker: persist the env file and the token (atomically).
  std::function<Result<void>(const QrCode&, const ClaimOutcome&)> persist;
  // On the loop, after persist succeeded: switch to normal mode.
  std::function<void()> on_paired;
  // On the loop, at each page: the guard app's named addresses, trusted by
  // phones (cloud-protocol §7.7: https://<a-b-c-d>.<name>:<port>/), listed
  // first; empty before the cloud installed a certificate.
  std::function<std::vector<std::string>()> named_links;
};

class PairingServer final : public Component {
 public:
  PairingServer(boost::asio::io_context& io, BlockingPool& workers, PairingSettings settings,
                PairingHooks hooks);
  ~PairingServer() override;

  std::string_view name() const override { return "pairing"; }
  void start() override;
  void stop(std::function<void()> on_stopped) override;

  // needs-pairing: the form again, with the reason.
  void reopen();
  bool paired() const;
  void set_lan_port(int port);  // once the LAN server has bound (it may be any free port)
  int port() const;             // the bound port once started

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace secbox::pairing
