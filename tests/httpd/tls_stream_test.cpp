// httpd/tls_stream on its own, on loopback against Asio's own TLS client: the
// handshake, a body much larger than the socket buffers written in one
// async_write while the client reads slowly, reads of what the client sends,
// abort() failing a pending read, close() sending close_notify, and a peer
// that speaks no TLS at all.
#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>
#include <thread>

#include "common/certificates.hpp"
#include "run_loop.hpp"
#include "tls_stream.hpp"

namespace secbox::httpd {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using secbox::testing::run_until;

class TlsStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto made = make_self_signed(
        {"127.0.0.1", {"localhost"}, {"127.0.0.1"}, std::chrono::hours(24), false});
    ASSERT_TRUE(made);
    cert = made.value();
    server_ctx.use_certificate_chain(asio::buffer(cert.cert_pem));
    server_ctx.use_private_key(asio::buffer(cert.key_pem), ssl::context::pem);
    client_ctx.add_certificate_authority(asio::buffer(cert.cert_pem));
    client_ctx.set_verify_mode(ssl::verify_peer);
    acceptor.open(tcp::v4());
    acceptor.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor.listen();
  }

  // Accepts one connection into a TlsStream (on the loop).
  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket s) {
      ASSERT_FALSE(ec);
      server = std::make_unique<TlsStream>(std::move(s), server_ctx.native_handle());
      server->async_handshake([this](boost::system::error_code e) {
        handshake_ec = e;
        handshaken = true;
      });
    });
  }

  // A TLS client on a thread of its own, with its own loop.
  std::thread client(std::function<void(ssl::stream<tcp::socket>&)> body) {
    return std::thread([this, body] {
      asio::io_context io;
      ssl::stream<tcp::socket> s(io, client_ctx);
      s.next_layer().connect(acceptor.local_endpoint());
      SSL_set_tlsext_host_name(s.native_handle(), "localhost");
      boost::system::error_code ec;
      s.handshake(ssl::stream_base::client, ec);
      client_handshake_ec = ec;
      if (!ec) body(s);
    });
  }

  KeyAndCert cert;
  asio::io_context loop;
  ssl::context server_ctx{ssl::context::tls_server};
  ssl::context client_ctx{ssl::context::tls_client};
  tcp::acceptor acceptor{loop};
  std::unique_ptr<TlsStream> server;
  bool handshaken = false;
  boost::system::error_code handshake_ec, client_handshake_ec;
};

TEST_F(TlsStreamTest, ALargeBodyWrittenInOneWriteArrivesWholeAtASlowReader) {
  accept();
  const std::string body(8 << 20, 'b');  // far more than the socket buffers hold
  std::string got;
  auto t = client([&](ssl::stream<tcp::socket>& s) {
    std::this_thread::sleep_for(300ms);  // let the server's writes block first
    boost::system::error_code ec;
    std::vector<char> buf(64 * 1024);
    while (got.size() < body.size()) {
      const auto n = s.read_some(asio::buffer(buf), ec);
      if (ec) break;
      got.append(buf.data(), n);
    }
  });
  ASSERT_TRUE(run_until(
      loop, [&] { return handshaken; }, 10s));
  ASSERT_FALSE(handshake_ec) << handshake_ec.message();
  bool written = false;
  std::size_t sent = 0;
  asio::async_write(*server, asio::buffer(body), [&](boost::system::error_code ec, std::size_t n) {
    EXPECT_FALSE(ec) << ec.message();
    sent = n;
    written = true;
  });
  EXPECT_TRUE(run_until(
      loop, [&] { return written; }, 30s));
  t.join();
  EXPECT_EQ(sent, body.size());
  EXPECT_EQ(got.size(), body.size());
  EXPECT_TRUE(got == body);
}

TEST_F(TlsStreamTest, ReadsWhatTheClientSendsAndClosesWithCloseNotify) {
  accept();
  boost::system::error_code client_end;
  auto t = client([&](ssl::stream<tcp::socket>& s) {
    asio::write(s, asio::buffer(std::string("hello over tls")));
    char c;
    s.read_some(asio::buffer(&c, 1), client_end);  // until the server closes
  });
  ASSERT_TRUE(run_until(
      loop, [&] { return handshaken; }, 10s));
  std::string got(14, '\0');
  bool read = false;
  asio::async_read(*server, asio::buffer(got), [&](boost::system::error_code ec, std::size_t) {
    EXPECT_FALSE(ec) << ec.message();
    read = true;
  });
  ASSERT_TRUE(run_until(
      loop, [&] { return read; }, 10s));
  EXPECT_EQ(got, "hello over tls");
  server->close();
  t.join();
  // close_notify first: the client sees a clean end, not a truncation.
  EXPECT_EQ(client_end, asio::error::eof) << client_end.message();
}

TEST_F(TlsStreamTest, AbortFailsAPendingReadAtOnce) {
  accept();
  std::atomic<bool> done{false};
  auto t = client([&](ssl::stream<tcp::socket>&) {
    while (!done) std::this_thread::sleep_for(10ms);  // connected, silent
  });
  ASSERT_TRUE(run_until(
      loop, [&] { return handshaken; }, 10s));
  char buf[16];
  bool failed = false;
  boost::system::error_code read_ec;
  server->async_read_some(asio::buffer(buf), [&](boost::system::error_code ec, std::size_t) {
    read_ec = ec;
    failed = true;
  });
  run_until(
      loop, [] { return false; }, 100ms);
  EXPECT_FALSE(failed) << "the read waits for data";
  server->abort();
  EXPECT_TRUE(run_until(
      loop, [&] { return failed; }, 2s));
  EXPECT_TRUE(read_ec) << "an aborted read fails";
  bool again = false;
  server->async_read_some(asio::buffer(buf), [&](boost::system::error_code ec, std::size_t) {
    EXPECT_TRUE(ec);
    again = true;
  });
  EXPECT_TRUE(run_until(
      loop, [&] { return again; }, 2s))
      << "and so does every later one";
  done = true;
  t.join();
}

TEST_F(TlsStreamTest, APeerThatSpeaksNoTlsFailsTheHandshake) {
  accept();
  std::thread t([this] {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(acceptor.local_endpoint());
    asio::write(s, asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
    char buf[256];
    boost::system::error_code ec;
    s.read_some(asio::buffer(buf), ec);  // whatever the server says, then its close
  });
  ASSERT_TRUE(run_until(
      loop, [&] { return handshaken; }, 10s));
  EXPECT_TRUE(handshake_ec) << "plain HTTP is not a TLS handshake";
  server->close();
  t.join();
}

TEST_F(TlsStreamTest, APeerThatLeavesMidHandshakeFailsIt) {
  accept();
  std::thread t([this] {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(acceptor.local_endpoint());
    const unsigned char partial_hello[] = {0x16, 0x03, 0x01,
                                           0x02, 0x00, 0x01};  // a record header, then nothing
    asio::write(s, asio::buffer(partial_hello));
    s.close();
  });
  ASSERT_TRUE(run_until(
      loop, [&] { return handshaken; }, 10s));
  EXPECT_TRUE(handshake_ec);
  t.join();
}

}  // namespace
}  // namespace secbox::httpd
