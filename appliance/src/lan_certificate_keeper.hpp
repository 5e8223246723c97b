#pragma once
// The LAN certificate over the box's life: made (or read) once before the
// loop runs, then checked again every `every` on a worker, since a box runs
// for years and its DHCP address may change. A new one (under 30 days left,
// or an address the old one does not name: lan::ensure_lan_certificate
// decides) goes to `use` without a restart; open connections keep the old.
//
// Loop thread only, but for make_now(), which blocks (getifaddrs, key
// generation) and runs before the loop.
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/blocking.hpp"
#include "common/log.hpp"
#include "lan/certificate.hpp"

namespace secbox::appliance {

class LanCertificateKeeper {
 public:
  // `use` installs a renewed pair and says whether the server took it.
  using Use = std::function<bool(const lan::LanCertificate&)>;

  LanCertificateKeeper(boost::asio::io_context& loop, BlockingPool& workers, std::string state_dir,
                       std::chrono::seconds every);

  // Blocking: before the loop runs. The certificate, or nullopt (logged).
  const std::optional<lan::LanCertificate>& make_now();
  // The next checks, every `every`, until stop().
  void start(Use use);
  void stop();
  const std::optional<lan::LanCertificate>& current() const { return cert_; }

 private:
  void schedule();

  boost::asio::steady_timer timer_;
  BlockingPool& workers_;
  std::string state_dir_;
  std::chrono::seconds every_;
  Use use_;
  std::optional<lan::LanCertificate> cert_;
  bool stopped_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  log::Logger log_{"appliance"};
};

}  // namespace secbox::appliance
