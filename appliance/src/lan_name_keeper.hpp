#pragma once
// The box's side of cloud-protocol §7.7: the name the cloud gives in
// welcome.lan, the request for *.<name> and <name> with a key that never
// leaves the box (lan_cert.request), the chain the cloud installs
// (lan_cert.install: every check, then kept atomically with its key and
// served from the next handshake), and renewal when a third of the
// certificate's lifetime is left. A request the cloud cannot take now
// (`unavailable`, no answer) is asked again later, 1 minute at first, twice
// as long each time, 6 hours at most.
//
// Kept in the state dir's lan/: `name` (the name last given), `named.pem`
// (key and chain, 0600), `named-request.key` (the last request's key, 0600:
// an install may come on a later connection, after a restart).
//
// Loop thread only, but for load_now(), which blocks and runs before the loop.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "common/blocking.hpp"
#include "lan/named_certificate.hpp"
#include "protocol/router.hpp"

namespace secbox::appliance {

struct LanNameSettings {
  std::string state_dir;
  std::string roots_file;  // extra trusted roots (LAN_CERT_ROOTS_FILE); the system's always
  std::chrono::seconds check_every{3600};
  std::chrono::seconds first_retry{60};
  std::chrono::seconds last_retry{6 * 3600};
  std::chrono::seconds request_timeout{30};
  std::chrono::seconds after_ack{3600};  // acknowledged but not installed: asked again after this
};

class LanNameKeeper {
 public:
  // `use` serves a checked certificate (nullptr: none) and says whether the
  // server took it.
  using Use = std::function<bool(const lan::NamedCertificate*)>;
  // It registers lan_cert.install on the router, and reads each welcome's
  // lan.name (§7.7), asking for a certificate when one is due.
  LanNameKeeper(boost::asio::io_context& io, BlockingPool& workers, protocol::Router& router,
                LanNameSettings settings, Use use);
  ~LanNameKeeper();

  // Blocking, before the loop: the name and certificate kept from before
  // (a certificate that fails its checks now is not served).
  void load_now();
  void stop();

  // The name given ("" before one), the certificate served for it, if any.
  const std::string& name() const;
  const std::optional<lan::NamedCertificate>& certificate() const;
  // What was last refused or failed, for `secbox doctor` and the logs.
  const std::string& last_problem() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace secbox::appliance
