#pragma once
// The plain-HTTP twin of TlsStream: the same few calls the server's session
// makes, over the bare socket.
#include <boost/asio/ip/tcp.hpp>
#include <utility>

namespace secbox::httpd {

class PlainStream {
 public:
  using executor_type = boost::asio::ip::tcp::socket::executor_type;

  explicit PlainStream(boost::asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}

  executor_type get_executor() { return socket_.get_executor(); }
  boost::asio::ip::tcp::socket& socket() { return socket_; }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return socket_.async_read_some(buffers, std::forward<Token>(token));
  }
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return socket_.async_write_some(buffers, std::forward<Token>(token));
  }

  // As TlsStream's: pending and later operations fail; the descriptor stays
  // until close().
  void abort() {
    boost::system::error_code ignored;
    socket_.cancel(ignored);
    socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  }
  void close() {
    abort();
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

 private:
  boost::asio::ip::tcp::socket socket_;
};

}  // namespace secbox::httpd
