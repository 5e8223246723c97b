#include "common/listen.hpp"

#include <boost/asio/ip/v6_only.hpp>

namespace secbox {

Result<void> open_listener(boost::asio::ip::tcp::acceptor& acceptor,
                           const std::string& bind_address, int port) {
  namespace asio = boost::asio;
  using tcp = asio::ip::tcp;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(bind_address, ec);
  if (ec) return Error{Errc::config, bind_address + " is not an IP address"};
  auto bind = [&](const tcp::endpoint& endpoint, bool dual_stack) {
    boost::system::error_code e;
    acceptor.open(endpoint.protocol(), e);
    if (!e && dual_stack) acceptor.set_option(asio::ip::v6_only(false), e);
    if (!e) acceptor.set_option(asio::socket_base::reuse_address(true), e);
    if (!e) acceptor.bind(endpoint, e);
    if (e) {
      boost::system::error_code ignored;
      acceptor.close(ignored);
    }
    return e;
  };
  const auto p = static_cast<unsigned short>(port);
  ec = bind(tcp::endpoint(address, p), address.is_v6());
  if (ec && address.is_v6() && address.to_v6().is_unspecified())
    ec = bind(tcp::endpoint(tcp::v4(), p), false);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error{Errc::io, "port " + std::to_string(port) + ": " + ec.message()};
  return ok();
}

}  // namespace secbox
