#include "lan_certificate_keeper.hpp"

#include "common/net.hpp"

namespace secbox::appliance {
namespace {

// Blocking (getifaddrs).
lan::LanCertificateRequest request_for(const std::string& state_dir) {
  return {state_dir + "/lan", host_name(), lan_addresses()};
}

}  // namespace

LanCertificateKeeper::LanCertificateKeeper(boost::asio::io_context& loop, BlockingPool& workers,
                                           std::string state_dir, std::chrono::seconds every)
    : timer_(loop), workers_(workers), state_dir_(std::move(state_dir)), every_(every) {}

const std::optional<lan::LanCertificate>& LanCertificateKeeper::make_now() {
  auto cert = lan::ensure_lan_certificate(request_for(state_dir_));
  if (!cert) {
    log_.error("The LAN certificate cannot be made; the LAN server stays down.",
               {{"reason", cert.error().message}});
    return cert_;
  }
  if (cert.value().made_now) {
    log_.info("Made the LAN certificate.",
              {{"sha256", cert.value().sha256}, {"not_after", cert.value().not_after}});
  }
  cert_ = std::move(cert).value();
  return cert_;
}

void LanCertificateKeeper::start(Use use) {
  use_ = std::move(use);
  stopped_ = false;
  schedule();
}

void LanCertificateKeeper::stop() {
  stopped_ = true;
  timer_.cancel();
}

void LanCertificateKeeper::schedule() {
  timer_.expires_after(every_);
  timer_.async_wait([this, alive = std::weak_ptr<int>(alive_)](boost::system::error_code ec) {
    if (ec || alive.expired() || stopped_) return;
    workers_.run([state = state_dir_] { return lan::ensure_lan_certificate(request_for(state)); },
                 [this, alive](Result<lan::LanCertificate> cert) {
                   if (alive.expired() || stopped_) return;
                   if (!cert) {
                     log_.error("The LAN certificate cannot be renewed; the current one stays.",
                                {{"reason", cert.error().message}});
                   } else if (cert.value().made_now && use_ && use_(cert.value())) {
                     log_.info(
                         "Renewed the LAN certificate.",
                         {{"sha256", cert.value().sha256}, {"not_after", cert.value().not_after}});
                     cert_ = std::move(cert).value();
                   }
                   schedule();
                 });
  });
}

}  // namespace secbox::appliance
