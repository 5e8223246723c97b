#pragma once
// Opens a listening TCP socket for the box's servers (pairing form, LAN):
// "::" listens on IPv6 and IPv4 at once, and falls back to IPv4 alone on a
// system without IPv6. Port 0 takes any free port (read it back from the
// acceptor). Errc::config for an address that is not an IP address, Errc::io
// with the system's reason otherwise.
#include <boost/asio/ip/tcp.hpp>
#include <string>

#include "common/result.hpp"

namespace secbox {

Result<void> open_listener(boost::asio::ip::tcp::acceptor& acceptor,
                           const std::string& bind_address, int port);

}  // namespace secbox
