// Listening sockets for the box's servers: any free port, "::" for both
// families, a bad address named as config, a taken port as listen.
#include "common/listen.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace secbox {
namespace {

using boost::asio::ip::tcp;

TEST(Listen, AnyFreePortBothFamiliesAndClearErrors) {
  boost::asio::io_context io;
  tcp::acceptor any(io);
  ASSERT_TRUE(open_listener(any, "127.0.0.1", 0));
  const auto port = any.local_endpoint().port();
  EXPECT_GT(port, 0);

  tcp::acceptor dual(io);
  ASSERT_TRUE(open_listener(dual, "::", 0));
  // Reachable over IPv4 too (or an IPv4-only system, which "::" falls back to).
  tcp::socket client(io);
  boost::system::error_code ec;
  client.connect({boost::asio::ip::make_address("127.0.0.1"), dual.local_endpoint().port()}, ec);
  EXPECT_FALSE(ec) << ec.message();

  tcp::acceptor bad(io);
  auto r = open_listener(bad, "not-an-address", 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::config);

  tcp::acceptor taken(io);
  auto t = open_listener(taken, "127.0.0.1", port);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, Errc::io);
}

}  // namespace
}  // namespace secbox
